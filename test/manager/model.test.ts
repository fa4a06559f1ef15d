import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import type { InspectionEvent } from 'xstate'
import { getAdjacencyMap } from 'xstate/graph'
import { collectorLifecycleMachine } from '../../machines/collector-lifecycle.js'
import { backoffDelay } from '../../src/core/backoff.js'
import { ManualClock } from '../../src/core/clock.js'
import { sumValues } from '../../src/core/statistics.js'
import { delay } from '../../src/core/delay.js'
import {
  CollectorManager,
  type LifecycleEvent,
  type OverflowPolicy,
  type RestartStrategy,
  resolvePolicy,
  sumDrops,
  type TapioEvent,
} from '../../src/index.js'
import { Driven, type DrivenBehaviour, type Happening } from '../support/driven.js'

/**
 * The manager as a whole, in virtual time: thousands of random sequences of add / remove / start /
 * emit / crash / hang / manual restart / operator stop / time passing, on a ManualClock. After each
 * sequence: lifecycle states only moved along declared transitions, never two live instances, and
 * every restart decision and restart time is checked exactly against the policy by an
 * independent oracle (backoff band, reset after a stable period, intensity window, strategy order);
 * every event a collector yielded was accepted or counted, and delivered = what the consumer saw.
 */

/** Pairs of state values (`from -> to`) the lifecycle machine declares, from its graph. */
function allowedStatePairs(): Set<string> {
  const machine = collectorLifecycleMachine.provide({
    actions: { notifyRunning: () => {}, notifyExited: () => {}, notifyStopped: () => {}, notifyGaveUp: () => {} },
  })
  const events = [
    'START', 'STOP', 'RESTART', 'SUSPEND', 'RESUME', 'xstate.done.actor.start', 'xstate.error.actor.start', 'xstate.done.actor.release',
    'xstate.error.actor.release', 'xstate.done.actor.stop', 'xstate.error.actor.stop',
    'xstate.after.startTimeout.collector.starting', 'xstate.after.stopTimeout.collector.stopping',
    'xstate.after.stopTimeout.collector.failed.releasing', 'xstate.after.stopTimeout.collector.restarting.releasing',
    'xstate.after.stopTimeout.collector.suspended.releasing',
    'xstate.after.restartDelay.collector.restarting.waiting',
  ].map((type) => ({ type }))
  const more = [
    { type: 'RESTART_AFTER', delayMs: 1 },
    { type: 'GIVE_UP', reason: 'x' },
    { type: 'SOURCE_ENDED', generation: 1 },
    { type: 'SOURCE_FAILED', generation: 1, error: 'x' },
    { type: 'FAULT', generation: 1, error: 'x' },
  ]
  const adj = getAdjacencyMap(machine, {
    events: [...events, ...more],
    input: { name: 'm', startTimeoutMs: 1, stopTimeoutMs: 1 },
    serializeState: (s: { value: unknown }) => JSON.stringify(s.value),
  } as never)
  const pairs = new Set<string>()
  for (const { state, transitions } of Object.values(adj)) {
    for (const step of Object.values(transitions)) {
      const to = (step as { state: unknown }).state
      pairs.add(`${JSON.stringify((state as { value: unknown }).value)} -> ${JSON.stringify((to as { value: unknown }).value)}`)
    }
  }
  return pairs
}

type Conduct = 'ok' | 'failStart' | 'hangStart' | 'slowStart' | 'hangStop' | 'throwStop'
const CONDUCT: Record<Conduct, DrivenBehaviour> = {
  ok: {},
  failStart: { failStart: true },
  hangStart: { startMs: Infinity },
  slowStart: { startMs: 300 },
  hangStop: { stopMs: Infinity },
  throwStop: { throwInStop: true },
}

const POLICY = {
  maxRestarts: 3,
  withinMs: 20_000,
  resetAfterMs: 5_000,
  backoff: { initialMs: 100, maxMs: 2_000, factor: 2, jitter: 0.3 },
  startTimeoutMs: 1_000,
  stopTimeoutMs: 1_000,
} as const

interface Real {
  clock: ManualClock
  mgr: CollectorManager
  log: Happening[]
  drivens: Map<string, Driven>
  /** Every registration, also those removed since. */
  all: Driven[]
  consumerDelayMs: { value: number }
  pending: Promise<unknown>[]
}
interface Model {
  names: string[]
  started: boolean
}

/** Let time pass until `p` settles (every hang is bounded by a timeout), at most `limitMs`. */
async function settle(r: Real, p: Promise<unknown>, limitMs = 60_000): Promise<void> {
  let done = false
  void p.then(
    () => (done = true),
    () => (done = true),
  )
  await r.clock.advanceAsync(0)
  for (let waited = 0; !done && waited < limitMs; waited += 100) await r.clock.advanceAsync(100)
}

const pick = (m: Readonly<Model>, i: number) => m.names[i % m.names.length] as string

class Add implements fc.AsyncCommand<Model, Real> {
  constructor(
    readonly name: string,
    readonly plan: readonly Conduct[],
  ) {}
  check(m: Readonly<Model>) {
    return !m.names.includes(this.name)
  }
  async run(m: Model, r: Real) {
    const d = new Driven(this.name, r.clock, r.log, (n) => CONDUCT[this.plan[n - 1] ?? 'ok'])
    try {
      r.mgr.addCollector(this.name, d.factory, POLICY)
    } catch {
      return // the manager is stopping after an escalation
    }
    r.drivens.set(this.name, d)
    r.all.push(d)
    m.names.push(this.name)
    await r.clock.advanceAsync(0)
  }
  toString() {
    return `add(${this.name}, [${this.plan.join(',')}])`
  }
}

class Remove implements fc.AsyncCommand<Model, Real> {
  constructor(readonly index: number) {}
  check(m: Readonly<Model>) {
    return m.names.length > 0
  }
  async run(m: Model, r: Real) {
    const name = pick(m, this.index)
    await settle(r, r.mgr.removeCollector(name))
    m.names = m.names.filter((n) => n !== name)
  }
  toString() {
    return `remove(#${this.index})`
  }
}

class Start implements fc.AsyncCommand<Model, Real> {
  check(m: Readonly<Model>) {
    return !m.started
  }
  async run(m: Model, r: Real) {
    r.pending.push(r.mgr.start().catch(() => {}))
    m.started = true
    await r.clock.advanceAsync(0)
  }
  toString() {
    return 'start'
  }
}

class Emit implements fc.AsyncCommand<Model, Real> {
  constructor(
    readonly index: number,
    readonly n: number,
  ) {}
  check(m: Readonly<Model>) {
    return m.names.length > 0
  }
  async run(m: Model, r: Real) {
    r.drivens.get(pick(m, this.index))?.current?.emit(this.n)
    await r.clock.advanceAsync(0)
  }
  toString() {
    return `emit(#${this.index}, ${this.n})`
  }
}

class Crash implements fc.AsyncCommand<Model, Real> {
  constructor(readonly index: number) {}
  check(m: Readonly<Model>) {
    return m.names.length > 0
  }
  async run(m: Model, r: Real) {
    r.drivens.get(pick(m, this.index))?.current?.crash()
    await r.clock.advanceAsync(0)
  }
  toString() {
    return `crash(#${this.index})`
  }
}

class RestartOne implements fc.AsyncCommand<Model, Real> {
  constructor(readonly index: number) {}
  check(m: Readonly<Model>) {
    return m.started && m.names.length > 0
  }
  async run(m: Model, r: Real) {
    // Resolves when it runs again, rejects when it cannot: the invariants are checked after.
    r.pending.push(r.mgr.restartCollector(pick(m, this.index)).catch(() => {}))
    await r.clock.advanceAsync(0)
  }
  toString() {
    return `restart(#${this.index})`
  }
}

class StopOne implements fc.AsyncCommand<Model, Real> {
  constructor(readonly index: number) {}
  check(m: Readonly<Model>) {
    return m.names.length > 0
  }
  async run(m: Model, r: Real) {
    r.pending.push(r.mgr.stopCollector(pick(m, this.index)).catch(() => {}))
    await r.clock.advanceAsync(0)
  }
  toString() {
    return `stopOne(#${this.index})`
  }
}

class Advance implements fc.AsyncCommand<Model, Real> {
  constructor(readonly ms: number) {}
  check() {
    return true
  }
  async run(_: Model, r: Real) {
    await r.clock.advanceAsync(this.ms)
  }
  toString() {
    return `advance(${this.ms})`
  }
}

class SlowConsumer implements fc.AsyncCommand<Model, Real> {
  constructor(readonly delayMs: number) {}
  check() {
    return true
  }
  async run(_: Model, r: Real) {
    r.consumerDelayMs.value = this.delayMs
    await r.clock.advanceAsync(0)
  }
  toString() {
    return `consumerDelay(${this.delayMs})`
  }
}

const conduct = fc.constantFrom<Conduct>('ok', 'ok', 'ok', 'ok', 'failStart', 'hangStart', 'slowStart', 'hangStop', 'throwStop')
const commands = [
  fc.tuple(fc.constantFrom('c1', 'c2', 'c3', 'c4'), fc.array(conduct, { maxLength: 6 })).map(([n, plan]) => new Add(n, plan)),
  fc.nat(8).map((i) => new Remove(i)),
  fc.constant(new Start()),
  fc.constant(new Start()),
  fc.constant(new Start()),
  fc.tuple(fc.nat(8), fc.integer({ min: 1, max: 40 })).map(([i, n]) => new Emit(i, n)),
  fc.nat(8).map((i) => new Crash(i)),
  fc.nat(8).map((i) => new Crash(i)),
  fc.nat(8).map((i) => new Crash(i)),
  fc.nat(8).map((i) => new Crash(i)),
  fc.nat(8).map((i) => new RestartOne(i)),
  fc.nat(8).map((i) => new StopOne(i)),
  // Around every threshold of the policy: backoff steps, stable period, window, timeouts.
  fc.constantFrom(1, 50, 99, 100, 150, 400, 999, 1000, 2000, 4999, 5000, 6000, 20_000, 25_000).map((ms) => new Advance(ms)),
  fc.constantFrom(100, 200, 400, 800, 1600, 3000).map((ms) => new Advance(ms)),
  fc.constantFrom(0, 0, 1, 20).map((d) => new SlowConsumer(d)),
]

/** What the oracle remembers per collector registration (mirrors the policy's definition, not its code). */
interface Track {
  reg: number
  restartTimes: number[]
  consecutive: number
}

/**
 * Checks every decision in the lifecycle log against the restart policy. `draws` are the random
 * numbers the manager drew, in order (one per restart granted).
 */
function checkDecisions(
  events: readonly LifecycleEvent[],
  logIndex: (e: LifecycleEvent) => number,
  log: readonly Happening[],
  draws: readonly number[],
  strategy: RestartStrategy,
  onExceeded: 'give-up' | 'escalate',
  orderOf: (e: LifecycleEvent) => readonly string[],
  timed: { count: number },
): number {
  const tracks = new Map<string, Track>()
  const supervisorTimes: number[] = []
  const gaveUp = new Set<string>()
  const track = (n: string, reg: number) => {
    let t = tracks.get(n)
    if (!t || t.reg !== reg) {
      tracks.set(n, (t = { reg, restartTimes: [], consecutive: 0 }))
      // A new registration under the name: the given-up one is gone with its removal.
      gaveUp.delete(n)
    }
    return t
  }
  let draw = 0
  let checked = 0
  for (let i = 0; i < events.length; i++) {
    const e = events[i] as LifecycleEvent
    if (e.type === 'manual-restart' && gaveUp.has(e.collector)) {
      // A given-up collector restarted by hand starts its policy afresh.
      tracks.delete(e.collector)
      gaveUp.delete(e.collector)
    }
    if (e.type !== 'failed') continue
    // The instance that failed: the last one started at or before the failure.
    const last = log.slice(0, logIndex(e)).filter((h) => h.name === e.collector && h.what === 'start').at(-1)
    if (!last) throw new Error(`${e.collector}@${e.at}: failed without a start`)
    const t = track(e.collector, last.reg)
    const running = log.find((h) => h.reg === last.reg && h.what === 'running' && h.instance === last.instance)
    const stable = running !== undefined && e.at - running.at >= POLICY.resetAfterMs
    expect(e.wasRunning, `${e.collector}@${e.at}: wasRunning`).toBe(running !== undefined)
    const consecutive = (stable ? 0 : t.consecutive) + 1
    const times = onExceeded === 'escalate' ? supervisorTimes : t.restartTimes
    const recent = times.filter((x) => e.at - x < POLICY.withinMs)
    const next = events.slice(i + 1).find((x) => x.collector === e.collector && x.type !== 'stopped')
    if (recent.length >= POLICY.maxRestarts) {
      expect(next?.type, `${e.collector}@${e.at}: ${recent.length} restarts within the window`).toBe(onExceeded === 'escalate' ? 'escalated' : 'gave-up')
      if (onExceeded === 'give-up') gaveUp.add(e.collector)
      t.consecutive = consecutive
      checked += 1
      if (onExceeded === 'escalate') return checked
      continue
    }
    expect(next?.type, `${e.collector}@${e.at}: restart expected`).toBe('restart-scheduled')
    if (next?.type !== 'restart-scheduled') continue
    const r = draws[draw++] as number
    const expected = backoffDelay(POLICY.backoff, consecutive, () => r)
    expect(next.delayMs, `${e.collector}@${e.at}: backoff for failure #${consecutive}`).toBe(expected)
    expect(next.at).toBe(e.at)
    expect(next.attempt).toBe(recent.length + 1)
    // Within the jitter band of the exponential value.
    const raw = Math.min(POLICY.backoff.maxMs, POLICY.backoff.initialMs * POLICY.backoff.factor ** (consecutive - 1))
    expect(next.delayMs).toBeGreaterThanOrEqual(Math.floor(raw * (1 - POLICY.backoff.jitter)))
    expect(next.delayMs).toBeLessThanOrEqual(Math.min(POLICY.backoff.maxMs, Math.ceil(raw * (1 + POLICY.backoff.jitter))))
    const order = orderOf(e)
    const group = strategy === 'one_for_one' ? [e.collector] : strategy === 'one_for_all' ? [...order] : order.slice(order.indexOf(e.collector))
    expect(next.group).toEqual(group)
    if (checkRestartTimes(events, log.slice(logIndex(next)), i, next, group)) timed.count += 1
    t.restartTimes = [...recent, e.at]
    supervisorTimes.push(e.at)
    t.consecutive = consecutive
    checked += 1
  }
  expect(draw, 'one random draw per restart granted').toBe(draws.length)
  return checked
}

/**
 * The restart happens at the failure time plus the backoff: exactly, for one_for_one; for a group,
 * no member starts before that, they stop in reverse start order and start in start order.
 * Only checked when nothing else touched the group meanwhile (operator, removal, shutdown).
 */
function checkRestartTimes(
  events: readonly LifecycleEvent[],
  log: readonly Happening[],
  i: number,
  scheduled: Extract<LifecycleEvent, { type: 'restart-scheduled' }>,
  group: readonly string[],
): boolean {
  const due = scheduled.at + scheduled.delayMs
  // `log`: what happened after the restart was scheduled.
  const firstStart = log.find((h) => h.name === scheduled.collector && h.what === 'start')
  if (!firstStart) return false // the run ended before the restart was due
  const until = firstStart.at + (group.length - 1) * (POLICY.startTimeoutMs + POLICY.stopTimeoutMs)
  // Anything else that touched the group meanwhile (operator, removal, shutdown, another failure).
  const cause = events[i]
  const slack = (n: number) => n * (POLICY.startTimeoutMs + POLICY.stopTimeoutMs)
  const disturbed = events.some(
    (x) =>
      x !== cause &&
      x !== scheduled &&
      x.at <= until &&
      x.type !== 'recovered' &&
      // Something else that touched the group meanwhile, or another group restart still under way
      // (group restarts run one after another).
      ((x.at >= scheduled.at && group.includes(x.collector)) ||
        (x.type === 'restart-scheduled' && x.group.some((n) => group.includes(n)) && x.at + x.delayMs + slack(x.group.length) >= scheduled.at)),
  )
  if (disturbed) return false
  if (group.length === 1) {
    expect(firstStart.at, `${scheduled.collector}: restart at failure + backoff`).toBe(due)
    return true
  }
  const window = log.filter((h) => h.at <= firstStart.at + group.length * POLICY.startTimeoutMs && group.includes(h.name))
  const starts = window.filter((h) => h.what === 'start' && h.at >= due)
  // (A first start is never a restart: a collector added at the moment of the failure may begin one.)
  expect(window.filter((h) => h.what === 'start' && h.at < due && h.instance > 1), 'nothing of the group restarts before the backoff').toEqual([])
  const startedOrder = starts.map((h) => h.name).filter((n, k, a) => a.indexOf(n) === k)
  expect(startedOrder, 'group starts in start order').toEqual(group.filter((n) => startedOrder.includes(n)))
  const stops = window.filter((h) => h.what === 'stop' && h.at < (starts[0]?.at ?? Number.POSITIVE_INFINITY) && h.name !== scheduled.collector)
  const stopOrder = stops.map((h) => h.name)
  expect(stopOrder, 'group stops in reverse start order').toEqual([...group].reverse().filter((n) => stopOrder.includes(n)))
  return true
}

describe('CollectorManager model (virtual time)', () => {
  const allowed = allowedStatePairs()
  const stats = { runs: 0, decisions: 0, commands: 0 }
  const timedCounter = { count: 0 }

  const modelProperty = () =>
    fc.asyncProperty(
      fc.commands(commands, { maxCommands: 40, size: 'large' }),
      fc.constantFrom<OverflowPolicy>('block', 'drop-newest', 'drop-oldest', 'sample'),
      fc.constantFrom<RestartStrategy>('one_for_one', 'one_for_one', 'one_for_all', 'rest_for_one'),
      fc.constantFrom<'give-up' | 'escalate'>('give-up', 'give-up', 'give-up', 'escalate'),
      fc.noBias(fc.integer({ min: 0, max: 2 ** 30 })),
      async (cmds, overflow, strategy, onExceeded, seed) => {
        const clock = new ManualClock(1_000_000)
        const transitions = new Map<string, unknown[]>()
        const draws: number[] = []
        let state = seed
        const random = () => {
          // A small LCG: uniform in [0, 1), reproducible from the seed fast-check shrinks.
          state = (Math.imul(state, 1103515245) + 12345) >>> 0
          const r = state / 2 ** 32
          draws.push(r)
          return r
        }
        const mgr = new CollectorManager({
          clock,
          random,
          bufferCapacity: 64,
          overflow,
          strategy,
          defaultPolicy: { onExceeded },
          healthCheckIntervalMs: 3_600_000,
          stopTimeoutMs: 10_000,
          inspect: (e: InspectionEvent) => {
            const ref = e.actorRef as unknown as { id: string; sessionId: string }
            if (e.type !== '@xstate.snapshot' || ref.id === 'supervisor') return
            const value = (e.snapshot as { value?: unknown }).value
            const key = `${ref.id}#${ref.sessionId}`
            const list = transitions.get(key) ?? []
            if (JSON.stringify(list.at(-1)) !== JSON.stringify(value)) list.push(value)
            transitions.set(key, list)
          },
        })
        const real: Real = { clock, mgr, log: [], drivens: new Map(), all: [], consumerDelayMs: { value: 0 }, pending: [] }
        const lifecycle: LifecycleEvent[] = []
        const orders = new Map<LifecycleEvent, string[]>()
        const logAt = new Map<LifecycleEvent, number>()
        mgr.on('lifecycle', (e) => {
          lifecycle.push(e)
          logAt.set(e, real.log.length)
          if (e.type === 'failed') orders.set(e, mgr.collectorNames())
        })
        const received: TapioEvent[] = []
        const consumer = (async () => {
          for await (const batch of mgr.batches()) {
            received.push(...batch)
            if (real.consumerDelayMs.value > 0) await delay(real.consumerDelayMs.value, undefined, clock)
          }
        })()
        try {
          await fc.asyncModelRun(() => ({ model: { names: [], started: false }, real }), cmds)
        } finally {
          const stopped = mgr.stop({ timeoutMs: 10_000 })
          await settle(real, stopped, 120_000)
          const summary = await Promise.race([stopped, Promise.resolve(undefined)])
          // stop() completes within its bound in virtual time.
          expect(summary, 'stop() completed').toBeDefined()
          expect(summary?.durationMs).toBeLessThanOrEqual(10_000)
          await settle(real, consumer)
          await settle(real, Promise.allSettled(real.pending))
        }
        stats.runs += 1
        stats.commands += [...cmds].length
        // Lifecycle states only change along declared transitions.
        for (const [id, values] of transitions) {
          for (let i = 1; i < values.length; i++) {
            const pair = `${JSON.stringify(values[i - 1])} -> ${JSON.stringify(values[i])}`
            expect(allowed.has(pair), `${id}: ${pair}`).toBe(true)
          }
        }
        // Never two live instances of one collector.
        for (const d of real.all) expect(d.maxLive, d.name).toBeLessThanOrEqual(1)
        // Every restart decision and restart time, against the policy.
        stats.decisions += checkDecisions(lifecycle, (e) => logAt.get(e) ?? 0, real.log, draws, strategy, onExceeded, (e) => orders.get(e) ?? [], timedCounter)
        // Every event a collector yielded was accepted (then delivered or dropped with a reason).
        const st = mgr.statistics()
        let yielded = 0
        for (const d of real.all) yielded += d.yielded
        expect(st.totalEvents, 'every yielded event accepted or counted').toBe(yielded)
        expect(st.totalEvents).toBe(st.deliveredEvents + st.droppedEvents.total + st.buffer.queued)
        expect(st.buffer.queued).toBe(0)
        expect(received.length).toBe(st.deliveredEvents)
        // Accounting from the source, per registration still registered (the collector contract):
        // produced = delivered + dropped in the collector + dropped in the buffer + queued in both.
        for (const [name, c] of Object.entries(st.collectors)) {
          const src = c.source
          if ((real.drivens.get(name)?.instances ?? 0) > 0) expect(src, `${name}: source statistics`).toBeDefined()
          if (!src) continue
          expect(src.produced, `${name}: produced`).toBe(c.delivered + sumValues(src.dropped) + c.droppedTotal + src.queued + c.queued)
        }
        expect(sumDrops(st.droppedEvents)).toBe(st.droppedEvents.total)
        // Per-collector order is kept.
        const last = new Map<string, number>()
        for (const e of received) {
          const { seq, reg } = e.data as { seq: number; reg: number }
          const key = `${e.source}#${reg}`
          expect(seq).toBeGreaterThan(last.get(key) ?? -1)
          last.set(key, seq)
        }
      },
    )

  it('keeps its invariants and the restart policy exactly, over thousands of sequences', async () => {
    const t0 = performance.now()
    await fc.assert(
      modelProperty(),
      // MODEL_SEED and MODEL_PATH replay a failure fast-check reported (its seed and path).
      { numRuns: RUNS, ...(process.env.MODEL_SEED ? { seed: Number(process.env.MODEL_SEED), path: process.env.MODEL_PATH, endOnFailure: true } : {}) },
    )
    const seconds = (performance.now() - t0) / 1000
    // The count and time for docs/testing.md (and the closing note).
    console.log(JSON.stringify({ modelTest: { sequences: stats.runs, commands: stats.commands, decisionsChecked: stats.decisions, restartTimesChecked: timedCounter.count, seconds: Number(seconds.toFixed(1)) } }))
    expect(stats.runs).toBeGreaterThanOrEqual(RUNS)
    expect(stats.decisions).toBeGreaterThan(RUNS / 2)
    expect(timedCounter.count).toBeGreaterThan(RUNS / 10)
  }, 600_000)

  // Counterexamples fast-check found, replayed every run (seed and path of the failing sequence):
  // - 1917: a member failing to start during a one_for_all restart had its give-up decision
  //   overtaken by the next queued group restart's SUSPEND, and was restarted past its intensity;
  // - 25893: a collector removed after giving up and added again, then restarted by hand (the
  //   oracle took the new registration for the given-up one and reset its backoff).
  it.each([
    { seed: -1153729643, path: '1917' },
    { seed: 2077722584, path: '25893' },
  ])('replays counterexample seed $seed path $path', async ({ seed, path }) => {
    await fc.assert(modelProperty(), { seed, path, endOnFailure: true })
  }, 60_000)
})

const RUNS = Number(process.env.MODEL_RUNS ?? 2000)

// Policy used by every collector, resolved once to catch typos in the test itself.
resolvePolicy(POLICY)
