import { Effect, Stream } from 'effect'
import { describe, expect, it } from 'vitest'
import { ManualClock } from '../../src/core/clock.js'
import { type Collector, CollectorManager, CollectorStartError, type LifecycleEvent, ManagerStateError, type TapioEvent } from '../../src/index.js'
import { Driven, type Happening } from '../support/driven.js'

/** The supervision runtime's paths on a driven clock: health, start failures, host safety, removal. */
function setup(opts: ConstructorParameters<typeof CollectorManager>[0] = {}) {
  const clock = new ManualClock(0)
  const errors: unknown[] = []
  const mgr = new CollectorManager({ clock, healthCheckIntervalMs: 1000, onError: (e) => errors.push(e), ...opts })
  const lifecycle: LifecycleEvent[] = []
  mgr.on('lifecycle', (e) => lifecycle.push(e))
  const log: Happening[] = []
  return { clock, mgr, lifecycle, log, errors }
}
const policy = { backoff: { initialMs: 100, factor: 2, maxMs: 1000, jitter: 0 }, startTimeoutMs: 500, stopTimeoutMs: 500 }

describe('supervision runtime (driven clock)', () => {
  it('a self-reported fatal_error fails the collector at the next health check; the message is kept', async () => {
    const { clock, mgr, log, lifecycle } = setup()
    const d = new Driven('sick', clock, log)
    let sick = false
    mgr.addCollector('sick', () => Object.assign(d.factory(), { health: () => (sick ? { status: 'fatal_error' as const, message: 'disk gone' } : { status: 'ok' as const }) }), policy)
    const started = mgr.start()
    await clock.advanceAsync(0)
    await started
    expect(mgr.health().collectors.sick?.status).toBe('ok')
    await clock.advanceAsync(999)
    expect(lifecycle.filter((e) => e.type === 'failed')).toEqual([])
    sick = true
    await clock.advanceAsync(1)
    expect(lifecycle.find((e) => e.type === 'failed')).toMatchObject({ at: 1000, error: 'collector reported fatal_error: disk gone' })
    sick = false
    await clock.advanceAsync(100)
    expect(mgr.statistics().collectors.sick).toMatchObject({ state: 'running', restarts: 1 })
    await stop(mgr, clock)
  })

  it('health() reads the collector, also when health() throws; degraded is shown', async () => {
    const { clock, mgr, log } = setup()
    const d = new Driven('h', clock, log)
    let health: () => { status: 'degraded'; message: string } = () => ({ status: 'degraded', message: 'slow' })
    mgr.addCollector('h', () => Object.assign(d.factory(), { health: () => health() }), policy)
    const started = mgr.start()
    await clock.advanceAsync(0)
    await started
    expect(mgr.health().collectors.h).toMatchObject({ status: 'degraded', message: 'slow' })
    health = () => {
      throw new Error('oops')
    }
    expect(mgr.health().collectors.h).toMatchObject({ status: 'recoverable_error', message: 'health() threw: oops' })
    await stop(mgr, clock)
  })

  it('start() names every collector that could not start, after startAttempts, while the rest run', async () => {
    const { clock, mgr, log } = setup()
    const ok = new Driven('ok', clock, log)
    const bad = new Driven('bad', clock, log, () => ({ failStart: true }))
    const slow = new Driven('slow', clock, log, () => ({ startMs: Infinity }))
    mgr.addCollector('ok', ok.factory, policy)
    mgr.addCollector('bad', bad.factory, { ...policy, startAttempts: 3 })
    mgr.addCollector('slow', slow.factory, { ...policy, maxRestarts: 0 })
    const started = mgr.start().catch((e: unknown) => e)
    await clock.advanceAsync(2000)
    const err = await started
    expect(err).toBeInstanceOf(CollectorStartError)
    const failures = (err as CollectorStartError).failures
    expect(failures).toEqual({ bad: 'start failed: driven bad#3: start failure', slow: 'start timed out after 500 ms' })
    // The third failed start settled it; the policy goes on restarting it afterwards.
    expect(bad.instances).toBeGreaterThanOrEqual(3)
    expect(mgr.state).toBe('running')
    expect(mgr.statistics().collectors.ok?.state).toBe('running')
    expect(mgr.health().status).toBe('permanent_error')
    await stop(mgr, clock)
  })

  it('never lets a collector crash the host: sync throws, a bad factory, a broken source', async () => {
    const { clock, mgr, errors } = setup()
    const throwing: Collector = {
      start() {
        throw new Error('sync boom')
      },
      stop() {
        throw new Error('stop boom')
      },
      events() {
        throw new Error('events boom')
      },
    }
    const broken: Collector = {
      start() {},
      stop() {},
      events: () => ({ [Symbol.asyncIterator]: () => ({ next: () => Promise.reject(new Error('source boom')) }) }),
    }
    mgr.addCollector('throwing', throwing, { ...policy, maxRestarts: 1 })
    mgr.addCollector('broken', broken, { ...policy, maxRestarts: 1 })
    mgr.addCollector('factory', () => ({ nope: true }) as unknown as Collector, { ...policy, maxRestarts: 0 })
    const started = mgr.start().catch(() => {})
    await clock.advanceAsync(1000)
    await started
    const h = mgr.health().collectors
    expect(h.throwing).toMatchObject({ status: 'permanent_error' })
    expect(h.throwing?.lastError).toMatch(/sync boom/)
    expect(h.broken?.lastError).toMatch(/event source failed: source boom/)
    expect(h.factory?.lastError).toMatch(/factory for collector "factory" did not return a Collector/)
    expect(errors).toEqual([])
    await stop(mgr, clock)
  })

  it('a plain instance (not a factory) is started again after a failure', async () => {
    const { clock, mgr } = setup()
    let starts = 0
    let fail: (() => void) | undefined
    const c: Collector = {
      start() {
        starts += 1
      },
      stop() {
        fail?.()
      },
      async *events() {
        await new Promise<void>((_, reject) => (fail = () => reject(new Error('gone'))))
      },
    }
    mgr.addCollector('plain', c, policy)
    const started = mgr.start()
    await clock.advanceAsync(0)
    await started
    fail?.()
    await clock.advanceAsync(100)
    expect(starts).toBe(2)
    expect(mgr.statistics().collectors.plain?.state).toBe('running')
    await stop(mgr, clock)
  })

  it('removing and stopping collectors; operator stops and removals are reported as such', async () => {
    const { clock, mgr, log, lifecycle } = setup()
    for (const n of ['a', 'b']) mgr.addCollector(n, new Driven(n, clock, log).factory, policy)
    const started = mgr.start()
    await clock.advanceAsync(0)
    await started
    const stopping = mgr.stopCollector('a')
    await clock.advanceAsync(0)
    await stopping
    const removing = mgr.removeCollector('b')
    await clock.advanceAsync(0)
    await removing
    expect(lifecycle.filter((e) => e.type === 'stopped').map((e) => e.type === 'stopped' && [e.collector, e.by])).toEqual([
      ['a', 'operator'],
      ['b', 'removed'],
    ])
    expect(mgr.collectorNames()).toEqual(['a'])
    await expect(mgr.removeCollector('b')).rejects.toThrow(ManagerStateError)
    await expect(mgr.restartCollector('zz')).rejects.toThrow(/not registered/)
    const restarting = mgr.restartCollector('a')
    await clock.advanceAsync(0)
    await restarting
    expect(mgr.statistics().collectors.a).toMatchObject({ state: 'running', restarts: 1, manualRestarts: 1 })
    await stop(mgr, clock)
    await expect(mgr.restartCollector('a')).rejects.toThrow(/the manager is stopped/)
    expect(() => mgr.addCollector('c', new Driven('c', clock, log).factory)).toThrow(/the manager is stopped/)
  })

  it('a temporary collector that exits is stopped, not restarted (stop by policy)', async () => {
    const { clock, mgr, log, lifecycle } = setup()
    const d = new Driven('t', clock, log)
    mgr.addCollector('t', d.factory, { ...policy, restart: 'temporary' })
    const started = mgr.start()
    await clock.advanceAsync(0)
    await started
    d.current?.crash()
    await clock.advanceAsync(1000)
    expect(d.instances).toBe(1)
    expect(mgr.statistics().collectors.t?.state).toBe('stopped')
    expect(lifecycle.find((e) => e.type === 'stopped')).toMatchObject({ by: 'policy' })
    await stop(mgr, clock)
  })

  it('transient: a normal end is not restarted, a failure is; give-up says why', async () => {
    const { clock, mgr, log, lifecycle } = setup()
    const d = new Driven('tr', clock, log)
    mgr.addCollector('tr', d.factory, { ...policy, restart: 'transient', maxRestarts: 1 })
    const started = mgr.start()
    await clock.advanceAsync(0)
    await started
    d.current?.crash()
    await clock.advanceAsync(100)
    expect(d.instances).toBe(2)
    d.current?.finish()
    await clock.advanceAsync(1000)
    expect(d.instances).toBe(2)
    expect(lifecycle.filter((e) => e.type === 'failed').map((e) => e.type === 'failed' && e.exit)).toEqual(['failure', 'normal'])
    expect(mgr.statistics().collectors.tr?.state).toBe('stopped')
    expect(lifecycle.find((e) => e.type === 'stopped')).toMatchObject({ by: 'policy', forced: false })
    // A permanent one that keeps failing is given up on, with the reason and the last error.
    const p = new Driven('p', clock, log)
    mgr.addCollector('p', p.factory, { ...policy, maxRestarts: 0 })
    await clock.advanceAsync(0)
    p.current?.crash()
    await clock.advanceAsync(0)
    const reason = 'restart intensity exceeded: 0 restarts within 60000 ms (max 0); last error: event source failed: driven p#1: crashed'
    expect(lifecycle.find((e) => e.type === 'gave-up')).toEqual({ type: 'gave-up', collector: 'p', at: clock.now(), reason })
    expect(mgr.health().collectors.p).toMatchObject({ status: 'permanent_error', lastError: reason })
    await stop(mgr, clock)
  })

  it('an Effect Stream and several consumers see the same events; the inspector sees every actor', async () => {
    const seen = new Set<string>()
    const { clock, mgr, log } = setup({ inspect: (e) => seen.add((e.actorRef as unknown as { id: string }).id) })
    const d = new Driven('s', clock, log)
    mgr.addCollector('s', d.factory, policy)
    const viaEffect = Effect.runPromise(Stream.runCount(mgr.stream))
    const batches: (readonly TapioEvent[])[] = []
    const reading = (async () => {
      for await (const b of mgr.batches()) batches.push(b)
    })()
    const started = mgr.start()
    await clock.advanceAsync(0)
    await started
    d.current?.emit(20)
    await clock.advanceAsync(0)
    await stop(mgr, clock)
    await reading
    expect(await viaEffect).toBe(20)
    expect(batches.flat().length).toBe(20)
    // The supervisor, the collector actor, and the actors it invokes (start, stop).
    expect([...seen].sort()).toEqual(['s', 'start', 'stop', 'supervisor'])
    expect(mgr.actors().map((a) => a.id)).toEqual(['supervisor', 'collector:s'])
  })
})

async function stop(mgr: CollectorManager, clock: ManualClock): Promise<void> {
  const p = mgr.stop({ timeoutMs: 5000 })
  await clock.advanceAsync(5000)
  await p
}
