import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import type { InspectionEvent } from 'xstate'
import { getAdjacencyMap } from 'xstate/graph'
import { collectorLifecycleMachine } from '../../machines/collector-lifecycle.js'
import { type Collector, CollectorManager, type EventInput, type OverflowPolicy, sumDrops, type TapioEvent } from '../../src/index.js'
import { sleep } from '../support/wait.js'

/** Pairs of state values (`from -> to`) the lifecycle machine declares, from its graph. */
function allowedStatePairs(): Set<string> {
  const machine = collectorLifecycleMachine.provide({
    actions: { notifyRunning: () => {}, notifyExited: () => {}, notifyStopped: () => {}, notifyGaveUp: () => {} },
  })
  const events = [
    'START', 'STOP', 'RESTART', 'xstate.done.actor.start', 'xstate.error.actor.start', 'xstate.done.actor.release',
    'xstate.error.actor.release', 'xstate.done.actor.stop', 'xstate.error.actor.stop',
    'xstate.after.startTimeout.collector.starting', 'xstate.after.stopTimeout.collector.stopping',
    'xstate.after.stopTimeout.collector.failed.releasing', 'xstate.after.stopTimeout.collector.restarting.releasing',
    'xstate.after.stopTimeout.collector.suspended.releasing', 'SUSPEND', 'RESUME',
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

type Behaviour = 'normal' | 'failAtStart' | 'hangInStart' | 'hangInStop'

/** A collector whose instances the test drives: emit, crash, and checks for two live instances. */
class Puppet {
  live = 0
  maxLive = 0
  seq = 0
  current: PuppetInstance | undefined
  constructor(
    readonly name: string,
    readonly behaviour: Behaviour,
  ) {}
  factory = (): Collector => new PuppetInstance(this)
}

class PuppetInstance implements Collector {
  private started = false
  private ended = false
  private crashed = false
  private wake: (() => void) | undefined
  private pending: EventInput[][] = []
  constructor(private readonly p: Puppet) {}

  async start(signal: AbortSignal): Promise<void> {
    if (this.p.behaviour === 'failAtStart') throw new Error('puppet: start failure')
    if (this.p.behaviour === 'hangInStart') {
      await new Promise<void>((_, reject) => signal.addEventListener('abort', () => reject(new Error('aborted')), { once: true }))
    }
    this.started = true
    this.p.live += 1
    this.p.maxLive = Math.max(this.p.maxLive, this.p.live)
    this.p.current = this
  }

  async stop(): Promise<void> {
    if (this.started) {
      this.started = false
      this.p.live -= 1
    }
    if (this.p.current === this) this.p.current = undefined
    this.ended = true
    this.wake?.()
    if (this.p.behaviour === 'hangInStop') await new Promise(() => {})
  }

  emit(n: number): void {
    if (!this.started || this.ended) return
    const batch: EventInput[] = []
    for (let i = 0; i < n; i++) batch.push({ type: 'model.tick', data: { seq: this.p.seq++ } })
    this.pending.push(batch)
    this.wake?.()
  }

  crash(): void {
    this.crashed = true
    this.wake?.()
  }

  async *events(): AsyncGenerator<EventInput[]> {
    for (;;) {
      while (this.pending.length > 0) yield this.pending.shift() as EventInput[]
      if (this.crashed) throw new Error('puppet: crashed')
      if (this.ended) return
      await new Promise<void>((r) => {
        this.wake = r
      })
      this.wake = undefined
    }
  }
}

interface Real {
  mgr: CollectorManager
  puppets: Map<string, Puppet>
  received: TapioEvent[]
  consumerDelayMs: { value: number }
  transitions: Map<string, unknown[]>
}
interface Model {
  names: string[]
  started: boolean
}

const MAX_RESTARTS = 3
const policy = { maxRestarts: MAX_RESTARTS, withinMs: 600_000, backoff: { initialMs: 1, maxMs: 5, jitter: 0.2 }, startTimeoutMs: 150, stopTimeoutMs: 150 }

class Add implements fc.AsyncCommand<Model, Real> {
  constructor(readonly name: string, readonly behaviour: Behaviour) {}
  check(m: Readonly<Model>) {
    return !m.names.includes(this.name)
  }
  async run(m: Model, r: Real) {
    const p = new Puppet(this.name, this.behaviour)
    r.puppets.set(this.name, p)
    r.mgr.addCollector(this.name, p.factory, policy)
    m.names.push(this.name)
  }
  toString() {
    return `add(${this.name}, ${this.behaviour})`
  }
}

class Remove implements fc.AsyncCommand<Model, Real> {
  constructor(readonly index: number) {}
  check(m: Readonly<Model>) {
    return m.names.length > 0
  }
  async run(m: Model, r: Real) {
    const name = m.names[this.index % m.names.length] as string
    await r.mgr.removeCollector(name)
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
    await r.mgr.start().catch(() => {})
    m.started = true
  }
  toString() {
    return 'start'
  }
}

class Emit implements fc.AsyncCommand<Model, Real> {
  constructor(readonly index: number, readonly n: number) {}
  check(m: Readonly<Model>) {
    return m.names.length > 0
  }
  async run(m: Model, r: Real) {
    const p = r.puppets.get(m.names[this.index % m.names.length] as string)
    ;(p?.current as PuppetInstance | undefined)?.emit(this.n)
    await sleep(1)
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
    const p = r.puppets.get(m.names[this.index % m.names.length] as string)
    ;(p?.current as PuppetInstance | undefined)?.crash()
    await sleep(5)
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
    // Resolves when it runs again, rejects when it cannot: both are fine, invariants are checked after.
    await r.mgr.restartCollector(m.names[this.index % m.names.length] as string).catch(() => {})
  }
  toString() {
    return `restart(#${this.index})`
  }
}

class SlowConsumer implements fc.AsyncCommand<Model, Real> {
  constructor(readonly delayMs: number) {}
  check() {
    return true
  }
  async run(_: Model, r: Real) {
    r.consumerDelayMs.value = this.delayMs
    await sleep(10)
  }
  toString() {
    return `consumerDelay(${this.delayMs})`
  }
}

const commands = [
  fc.tuple(fc.constantFrom('c1', 'c2', 'c3', 'c4'), fc.constantFrom<Behaviour>('normal', 'normal', 'normal', 'failAtStart', 'hangInStart', 'hangInStop')).map(
    ([n, b]) => new Add(n, b),
  ),
  fc.nat(8).map((i) => new Remove(i)),
  fc.constant(new Start()),
  fc.tuple(fc.nat(8), fc.integer({ min: 1, max: 50 })).map(([i, n]) => new Emit(i, n)),
  fc.nat(8).map((i) => new Crash(i)),
  fc.nat(8).map((i) => new RestartOne(i)),
  fc.constantFrom(0, 0, 1, 5).map((d) => new SlowConsumer(d)),
]

describe('CollectorManager model', () => {
  const allowed = allowedStatePairs()

  it('keeps its invariants under random add/remove/start/emit/crash/restart/hang/slow-consumer sequences', async () => {
    await fc.assert(
      fc.asyncProperty(fc.commands(commands, { maxCommands: 25 }), fc.constantFrom('block', 'drop-newest', 'drop-oldest', 'sample') as fc.Arbitrary<OverflowPolicy>, async (cmds, overflow) => {
        const transitions = new Map<string, unknown[]>()
        // Restarts the policy granted, per actor instance (a given-up collector that is restarted by
        // hand gets a fresh actor and a fresh policy window).
        const granted = new Map<string, number>()
        const mgr = new CollectorManager({
          bufferCapacity: 64,
          overflow,
          stopTimeoutMs: 2000,
          inspect: (e: InspectionEvent) => {
            const ref = e.actorRef as unknown as { id: string; sessionId: string }
            if (e.type !== '@xstate.snapshot' || ref.id === 'supervisor') return
            const value = (e.snapshot as { value?: unknown }).value
            const key = `${ref.id}#${ref.sessionId}`
            const list = transitions.get(key) ?? []
            if (JSON.stringify(list.at(-1)) !== JSON.stringify(value)) list.push(value)
            transitions.set(key, list)
            if (e.event.type === 'RESTART_AFTER') granted.set(key, (granted.get(key) ?? 0) + 1)
          },
        })
        const real: Real = { mgr, puppets: new Map(), received: [], consumerDelayMs: { value: 0 }, transitions }
        const consumer = (async () => {
          for await (const e of mgr.events()) {
            real.received.push(e)
            if (real.consumerDelayMs.value > 0) await sleep(real.consumerDelayMs.value)
          }
        })()
        try {
          await fc.asyncModelRun(() => ({ model: { names: [], started: false }, real }), cmds)
        } finally {
          const t0 = Date.now()
          await mgr.stop({ timeoutMs: 2000 })
          // stop() always completes within its timeout (plus scheduling slack on a busy machine).
          expect(Date.now() - t0).toBeLessThan(2000 + 1500)
          await consumer
        }
        // Lifecycle states only change along declared transitions.
        for (const [id, values] of transitions) {
          for (let i = 1; i < values.length; i++) {
            const pair = `${JSON.stringify(values[i - 1])} -> ${JSON.stringify(values[i])}`
            expect(allowed.has(pair), `${id}: ${pair}`).toBe(true)
          }
        }
        // Never two live instances of one collector.
        for (const p of real.puppets.values()) expect(p.maxLive, p.name).toBeLessThanOrEqual(1)
        // Restarts never exceed the policy within its window.
        for (const [key, n] of granted) expect(n, key).toBeLessThanOrEqual(MAX_RESTARTS)
        // Conservation: accepted = delivered + dropped; the consumer saw exactly what was delivered.
        const st = mgr.statistics()
        expect(st.totalEvents).toBe(st.deliveredEvents + st.droppedEvents.total)
        expect(real.received.length).toBe(st.deliveredEvents)
        expect(sumDrops(st.droppedEvents)).toBe(st.droppedEvents.total)
        // Per-collector order is kept.
        const last = new Map<string, number>()
        for (const e of real.received) {
          const seq = (e.data as { seq: number }).seq
          expect(seq).toBeGreaterThan(last.get(e.source) ?? -1)
          last.set(e.source, seq)
        }
      }),
      { numRuns: 100, interruptAfterTimeLimit: 120_000 },
    )
  }, 180_000)
})
