import { afterEach, describe, expect, it } from 'vitest'
import { ManualClock } from '../../src/core/clock.js'
import { CollectorManager, type LifecycleEvent, type RestartStrategy } from '../../src/index.js'
import { Driven, type DrivenBehaviour, type Happening } from '../support/driven.js'

// Backoff without jitter: restart times are exact on the driven clock.
const policy = { backoff: { initialMs: 1000, maxMs: 60_000, factor: 2, jitter: 0 }, startTimeoutMs: 5000, stopTimeoutMs: 5000, maxRestarts: 10 } as const

interface Setup {
  clock: ManualClock
  mgr: CollectorManager
  log: Happening[]
  lifecycle: LifecycleEvent[]
  c: Record<string, Driven>
}

const managers: { mgr: CollectorManager; clock: ManualClock }[] = []
afterEach(async () => {
  for (const { mgr, clock } of managers.splice(0)) {
    const done = mgr.stop({ timeoutMs: 10_000 })
    await clock.advanceAsync(20_000)
    await done
  }
})

async function setup(strategy: RestartStrategy, names: string[], behaviour: Record<string, (n: number) => DrivenBehaviour> = {}, overrides = {}): Promise<Setup> {
  const clock = new ManualClock(1_000_000)
  const mgr = new CollectorManager({ clock, strategy, healthCheckIntervalMs: 3_600_000, random: () => 0.5 })
  managers.push({ mgr, clock })
  const log: Happening[] = []
  const lifecycle: LifecycleEvent[] = []
  mgr.on('lifecycle', (e) => lifecycle.push(e))
  const c: Record<string, Driven> = {}
  for (const n of names) {
    c[n] = new Driven(n, clock, log, behaviour[n])
    mgr.addCollector(n, c[n].factory, { ...policy, ...overrides })
  }
  const started = mgr.start().catch(() => {})
  await clock.advanceAsync(100)
  await started
  log.length = 0
  return { clock, mgr, log, lifecycle, c }
}

const steps = (log: Happening[]) => log.map((h) => `${h.at} ${h.what} ${h.name}`)

describe('OTP restart strategies on a driven clock', () => {
  it('one_for_all: stops the siblings in reverse start order, restarts all in start order after the backoff', async () => {
    const { clock, log, c } = await setup('one_for_all', ['a', 'b', 'c', 'd'])
    const t = clock.now()
    c.b?.current?.crash()
    await clock.advanceAsync(999)
    // The siblings are down during the failed one's backoff; nothing started yet.
    expect(steps(log)).toEqual([`${t} stop b`, `${t} stop d`, `${t} stop c`, `${t} stop a`])
    await clock.advanceAsync(1)
    expect(steps(log).slice(4)).toEqual([
      `${t + 1000} start a`, `${t + 1000} running a`,
      `${t + 1000} start b`, `${t + 1000} running b`,
      `${t + 1000} start c`, `${t + 1000} running c`,
      `${t + 1000} start d`, `${t + 1000} running d`,
    ])
    for (const d of Object.values(c)) expect(d.maxLive).toBe(1)
  })

  it('rest_for_one: only the failed one and those started after it, same order rules', async () => {
    const { clock, log, c, mgr } = await setup('rest_for_one', ['a', 'b', 'c', 'd'])
    const t = clock.now()
    c.b?.current?.crash()
    await clock.advanceAsync(1000)
    expect(steps(log)).toEqual([
      `${t} stop b`, `${t} stop d`, `${t} stop c`,
      `${t + 1000} start b`, `${t + 1000} running b`,
      `${t + 1000} start c`, `${t + 1000} running c`,
      `${t + 1000} start d`, `${t + 1000} running d`,
    ])
    expect(c.a?.instances).toBe(1)
    const st = mgr.statistics().collectors
    expect([st.a?.restarts, st.b?.restarts, st.c?.restarts, st.d?.restarts]).toEqual([0, 1, 1, 1])
  })

  it('each member settles before the next starts (a slow start delays the ones after it)', async () => {
    const { clock, log, c } = await setup('one_for_all', ['a', 'b', 'c'], { b: (n) => (n === 2 ? { startMs: 300 } : {}) })
    const t = clock.now()
    c.c?.current?.crash()
    await clock.advanceAsync(2000)
    expect(steps(log)).toEqual([
      `${t} stop c`, `${t} stop b`, `${t} stop a`,
      `${t + 1000} start a`, `${t + 1000} running a`,
      `${t + 1000} start b`, `${t + 1300} running b`,
      `${t + 1300} start c`, `${t + 1300} running c`,
    ])
  })

  it('a sibling that is still starting is included: its start is aborted and it restarts with the group', async () => {
    // c's second instance hangs in start; it is mid-start when a crashes.
    const { clock, log, c, mgr } = await setup('one_for_all', ['a', 'b', 'c'], { c: (n) => (n === 2 ? { startMs: Infinity } : {}) })
    const pending = mgr.restartCollector('c')
    await clock.advanceAsync(10)
    expect(mgr.statistics().collectors.c?.state).toBe('starting')
    const t = clock.now()
    log.length = 0
    c.a?.current?.crash()
    await clock.advanceAsync(1000)
    // c's aborted start never ran, so it has nothing to record on stop.
    expect(steps(log)).toEqual([
      `${t} stop a`, `${t} stop b`,
      `${t + 1000} start a`, `${t + 1000} running a`,
      `${t + 1000} start b`, `${t + 1000} running b`,
      `${t + 1000} start c`, `${t + 1000} running c`,
    ])
    await pending
    expect(c.c?.instances).toBe(3)
    expect(log.filter((h) => h.what === 'start' && h.name === 'c').map((h) => h.instance)).toEqual([3])
    expect(c.c?.maxLive).toBe(1)
  })

  it('the backoff of the group is the failed one\'s, growing while it keeps crashing early', async () => {
    const { clock, log, c } = await setup('rest_for_one', ['a', 'b'])
    const starts: number[] = []
    for (let i = 0; i < 3; i++) {
      const t = clock.now()
      c.a?.current?.crash()
      await clock.advanceAsync(10_000)
      starts.push((log.filter((h) => h.what === 'start' && h.name === 'a').at(-1)?.at ?? 0) - t)
    }
    expect(starts).toEqual([1000, 2000, 4000])
  })

  it('a member that fails to start ends the round; the next round restarts the rest; give-up releases them', async () => {
    const { clock, log, c, mgr } = await setup('rest_for_one', ['a', 'b'], { a: (n) => (n >= 2 ? { failStart: true } : {}) }, { maxRestarts: 2 })
    const t = clock.now()
    c.a?.current?.crash()
    await clock.advanceAsync(1000)
    // a's second instance fails to start: b is not started behind it.
    expect(steps(log)).toEqual([`${t} stop a`, `${t} stop b`, `${t + 1000} start a`, `${t + 1000} start-failed a`])
    expect(mgr.statistics().collectors.b?.state).toBe('suspended')
    await clock.advanceAsync(2000)
    // Second round (2 s backoff): a fails again; the intensity (2) is used up, a is given up on and b runs again.
    expect(steps(log).slice(4)).toEqual([`${t + 3000} start a`, `${t + 3000} start-failed a`, `${t + 3000} start b`, `${t + 3000} running b`])
    const st = mgr.statistics().collectors
    expect([st.a?.state, st.b?.state]).toEqual(['gaveUp', 'running'])
  })

  it('emits lifecycle events: failure, restart scheduled with its group, recovered', async () => {
    const { clock, lifecycle, c } = await setup('rest_for_one', ['a', 'b', 'c'])
    lifecycle.length = 0
    const t = clock.now()
    c.b?.current?.crash()
    await clock.advanceAsync(1000)
    const failed = lifecycle.find((e) => e.type === 'failed')
    expect(failed).toMatchObject({ type: 'failed', collector: 'b', at: t, exit: 'failure', wasRunning: true })
    expect(lifecycle.find((e) => e.type === 'restart-scheduled')).toEqual({
      type: 'restart-scheduled', collector: 'b', at: t, delayMs: 1000, attempt: 1, maxRestarts: 10, withinMs: 60_000,
      strategy: 'rest_for_one', group: ['b', 'c'],
    })
    const recovered = lifecycle.filter((e) => e.type === 'recovered')
    expect(recovered.map((e) => [e.collector, e.type === 'recovered' && e.downMs])).toEqual([['b', 1000], ['c', 1000]])
  })
})

describe('one restart count', () => {
  it('statistics(), health() and the actor context agree; manual restarts are counted and shown as manual', async () => {
    const { clock, mgr, c, lifecycle } = await setup('one_for_one', ['a'])
    const r1 = mgr.restartCollector('a')
    await clock.advanceAsync(10)
    await r1
    const r2 = mgr.restartCollector('a')
    await clock.advanceAsync(10)
    await r2
    c.a?.current?.crash()
    await clock.advanceAsync(1000)
    const st = mgr.statistics()
    expect(st.collectors.a?.restarts).toBe(3)
    expect(st.collectors.a?.manualRestarts).toBe(2)
    expect(st.restarts).toBe(3)
    expect(mgr.health().collectors.a?.restarts).toBe(3)
    expect(mgr.health().collectors.a?.manualRestarts).toBe(2)
    const ctx = mgr.actors().find((x) => x.id === 'collector:a')?.context
    expect([ctx?.restarts, ctx?.manualRestarts]).toEqual([3, 2])
    expect(lifecycle.filter((e) => e.type === 'manual-restart').length).toBe(2)
  })
})

describe('escalate counts intensity across the supervisor (OTP)', () => {
  it('three failures of two collectors exceed maxRestarts 2 together, though neither alone does', async () => {
    const { clock, mgr, c, lifecycle } = await setup('one_for_one', ['a', 'b'], {}, { maxRestarts: 2, withinMs: 60_000, onExceeded: 'escalate' })
    c.a?.current?.crash()
    await clock.advanceAsync(1000)
    c.b?.current?.crash()
    await clock.advanceAsync(1000)
    expect(mgr.escalated).toBeNull()
    c.a?.current?.crash()
    await clock.advanceAsync(1)
    expect(mgr.escalated).toMatch(/collector "a": restart intensity exceeded: 2 restarts within 60000 ms/)
    expect(lifecycle.some((e) => e.type === 'escalated' && e.collector === 'a')).toBe(true)
  })

  it('give-up (the default) keeps a window per collector', async () => {
    const { clock, mgr, c } = await setup('one_for_one', ['a', 'b'], {}, { maxRestarts: 2, withinMs: 60_000 })
    c.a?.current?.crash()
    await clock.advanceAsync(1000)
    c.b?.current?.crash()
    await clock.advanceAsync(1000)
    c.a?.current?.crash()
    await clock.advanceAsync(2000)
    const st = mgr.statistics().collectors
    expect([st.a?.state, st.b?.state]).toEqual(['running', 'running'])
  })

  it('restarts are allowed again once the window has passed', async () => {
    const { clock, mgr, c } = await setup('one_for_one', ['a'], {}, { maxRestarts: 1, withinMs: 10_000, resetAfterMs: 1_000_000 })
    c.a?.current?.crash()
    await clock.advanceAsync(1000)
    await clock.advanceAsync(9000)
    // 10 s after the first restart was granted, it has aged out of the window.
    c.a?.current?.crash()
    await clock.advanceAsync(5000)
    expect(mgr.statistics().collectors.a?.state).toBe('running')
    c.a?.current?.crash()
    await clock.advanceAsync(5000)
    expect(mgr.statistics().collectors.a?.state).toBe('gaveUp')
  })
})
