import { Effect, Stream } from 'effect'
import { afterEach, describe, expect, it } from 'vitest'
import type { InspectionEvent } from 'xstate'
import { ManualClock } from '../../src/core/clock.js'
import { type Collector, CollectorManager, type EventInput, type TapioEvent } from '../../src/index.js'
import { Driven, type DrivenBehaviour, type Happening } from '../support/driven.js'

/**
 * CollectorManager supervision through its public API, on a driven clock: every timer (backoff,
 * start and stop timeouts, health checks, the bound of stop()) runs on a ManualClock the test
 * moves, so nothing sleeps and restart times are exact. Cases that were exact duplicates of the
 * driven-clock tests in test/supervisor/ are there only (start failures named, fatal_error,
 * host safety: runtime.test.ts; one_for_all / rest_for_one: strategies.test.ts).
 */

const fast = { backoff: { initialMs: 5, maxMs: 20, factor: 2, jitter: 0 }, startTimeoutMs: 300, stopTimeoutMs: 300 } as const

const running: { mgr: CollectorManager; clock: ManualClock }[] = []
afterEach(async () => {
  for (const { mgr, clock } of running.splice(0)) {
    const done = mgr.stop({ timeoutMs: 3000 })
    await clock.advanceAsync(5000)
    await done
  }
})

function setup(opts: ConstructorParameters<typeof CollectorManager>[0] = {}) {
  const clock = new ManualClock(0)
  const mgr = new CollectorManager({ clock, stopTimeoutMs: 3000, healthCheckIntervalMs: 3_600_000, ...opts })
  running.push({ mgr, clock })
  const log: Happening[] = []
  const driven = (name: string, behaviour?: (n: number) => DrivenBehaviour) => new Driven(name, clock, log, behaviour)
  return { clock, mgr, log, driven }
}

/** Start the manager, letting its actors run on the driven clock. */
async function start(mgr: CollectorManager, clock: ManualClock): Promise<unknown> {
  const started = mgr.start().catch((e: unknown) => e)
  await clock.advanceAsync(0)
  return started
}

/** Let the pumps and consumers run (event-loop turns, no time passes) until `cond` holds. */
async function settle(clock: ManualClock, cond: () => boolean, what: string): Promise<void> {
  for (let i = 0; i < 200 && !cond(); i++) await clock.advanceAsync(0)
  if (!cond()) throw new Error(`not reached after 200 turns of the event loop: ${what}`)
}

function collect<T>(it: AsyncIterable<T>): { items: T[]; done: Promise<void> } {
  const items: T[] = []
  const done = (async () => {
    for await (const x of it) items.push(x)
  })()
  return { items, done }
}

describe('CollectorManager supervision (driven clock)', () => {
  it('restarts a failing collector with backoff at the policy\'s times, gives up, and loses nothing it accepted', async () => {
    const { clock, mgr, log, driven } = setup()
    const flaky = driven('flaky')
    mgr.addCollector('flaky', flaky.factory, { ...fast, maxRestarts: 3, withinMs: 60_000 })
    await start(mgr, clock)
    const { items, done } = collect(mgr.events())
    for (let i = 0; i < 4; i++) {
      await settle(clock, () => flaky.current !== undefined, `instance ${i + 1} running`)
      flaky.current?.emit(50)
      await settle(clock, () => items.length === 50 * (i + 1), `the 50 events of instance ${i + 1} delivered`)
      flaky.current?.crash()
      await clock.advanceAsync(i === 3 ? 0 : fast.backoff.initialMs * 2 ** i)
    }
    expect(mgr.health().collectors.flaky?.status).toBe('permanent_error')
    // Crashes at t=0, 5, 15; each restart exactly one backoff (5, 10, 20 ms) after its crash.
    expect(log.filter((h) => h.what === 'running').map((h) => h.at)).toEqual([0, 5, 15, 35])
    const stopping = mgr.stop()
    await clock.advanceAsync(3000)
    await stopping
    await done
    expect(flaky.instances).toBe(4)
    const st = mgr.statistics()
    expect(st.collectors.flaky?.restarts).toBe(3)
    expect(items.length).toBe(200)
    expect(st.totalEvents).toBe(200)
    expect(st.deliveredEvents).toBe(200)
    expect(mgr.health().collectors.flaky?.lastError).toMatch(/restart intensity exceeded.*driven flaky#4: crashed/)
  })

  it('a manual restart of a given-up collector gets a fresh policy window; one count, manual shown as manual', async () => {
    const { clock, mgr, driven } = setup()
    const doomed = driven('doomed', () => ({ failStart: true }))
    mgr.addCollector('doomed', doomed.factory, { ...fast, maxRestarts: 2 })
    await start(mgr, clock)
    await clock.advanceAsync(100)
    expect(mgr.health().collectors.doomed?.status).toBe('permanent_error')
    expect(mgr.statistics().collectors.doomed?.restarts).toBe(2)
    const restarting = mgr.restartCollector('doomed').then(
      () => 'resolved',
      (e: unknown) => e,
    )
    await clock.advanceAsync(100)
    expect(String(await restarting)).toMatch(/CollectorStartError: .*doomed/)
    expect(mgr.health().collectors.doomed?.status).toBe('permanent_error')
    // 2 granted before, the operator's restart, 2 more after it: the window starts again, the one
    // count goes on (manual restarts counted, and shown as manual).
    expect(doomed.instances).toBe(6)
    const st = mgr.statistics().collectors.doomed
    expect(st?.restarts).toBe(5)
    expect(st?.manualRestarts).toBe(1)
    expect(mgr.health().collectors.doomed?.restarts).toBe(5)
    const ctx = mgr.actors().find((a) => a.id === 'collector:doomed')?.context
    expect(ctx?.restarts).toBe(5)
    expect(ctx?.manualRestarts).toBe(1)
  })

  it('force-stops a collector that hangs in stop after its stop timeout; stop() completes then', async () => {
    const { clock, mgr, driven } = setup()
    mgr.addCollector('stuck', driven('stuck', () => ({ stopMs: Infinity })).factory, fast)
    mgr.addCollector('fine', driven('fine').factory, fast)
    await start(mgr, clock)
    const stopping = mgr.stop({ timeoutMs: 5000 })
    await clock.advanceAsync(5000)
    const summary = await stopping
    // Reverse start order: 'fine' stops at once, 'stuck' is abandoned after its 300 ms.
    expect(summary.durationMs).toBe(300)
    expect(mgr.health().status).toBe('stopped')
    expect(mgr.actors().find((a) => a.id === 'collector:stuck')?.context.forcedStops).toBe(1)
  })

  it('escalates (OTP style): beyond the intensity the supervisor stops every collector and itself', async () => {
    const { clock, mgr, driven } = setup()
    const ok = driven('ok')
    const crashy = driven('crashy')
    mgr.addCollector('ok', ok.factory, fast)
    mgr.addCollector('crashy', crashy.factory, { ...fast, maxRestarts: 1, onExceeded: 'escalate' })
    await start(mgr, clock)
    crashy.current?.crash()
    await clock.advanceAsync(5)
    expect(crashy.instances).toBe(2)
    crashy.current?.crash()
    await clock.advanceAsync(1000)
    expect(mgr.state).toBe('stopped')
    expect(mgr.escalated).toMatch(/crashy.*restart intensity exceeded/)
    expect(ok.live).toBe(0)
    expect(mgr.health().status).toBe('stopped')
  })

  it('adds and removes collectors while running; duplicate and bad names are an error', async () => {
    const { clock, mgr, driven } = setup()
    const a = driven('a')
    mgr.addCollector('a', a.factory, fast)
    await start(mgr, clock)
    expect(() => mgr.addCollector('a', driven('a2').factory)).toThrow(/already registered/)
    expect(() => mgr.addCollector('bad name!', driven('x').factory)).toThrow(/collector name/)
    const { items } = collect(mgr.events())
    const b = driven('b')
    mgr.addCollector('b', b.factory, fast)
    await settle(clock, () => b.current !== undefined, 'the added collector running')
    a.current?.emit(3)
    b.current?.emit(2)
    await settle(clock, () => items.length === 5, 'events from both')
    const removing = mgr.removeCollector('a')
    await clock.advanceAsync(0)
    await removing
    expect(mgr.collectorNames()).toEqual(['b'])
    expect(a.live).toBe(0)
    b.current?.emit(1)
    await settle(clock, () => items.length === 6, 'the remaining collector still delivers')
    expect(items.filter((e) => e.source === 'a').length).toBe(3)
    await expect(mgr.removeCollector('a')).rejects.toThrow(/not registered/)
  })

  it('stamps id, timestamp and source; a collector cannot impersonate another', async () => {
    const { clock, mgr } = setup()
    const events: EventInput[] = [
      { type: 'acme.widget.spun', data: { rpm: 3 } },
      { type: 'acme.widget.spun', source: 'someone-else', severity: 'warning', data: { rpm: 4 } },
    ]
    const c: Collector = {
      start() {},
      stop() {},
      async *events() {
        yield events[0] as EventInput
        yield [events[1] as EventInput, 42 as unknown as EventInput]
      },
    }
    mgr.addCollector('acme', c, { ...fast, restart: 'transient' })
    await start(mgr, clock)
    const got: TapioEvent[] = []
    for await (const e of mgr.events()) {
      got.push(e)
      if (got.length === 2) break
    }
    expect(got.map((e) => e.source)).toEqual(['acme', 'acme'])
    expect(got[0]?.id).toMatch(/^[0-9a-f]{12}-[0-9a-z]+$/)
    expect(got[0]?.timestamp).toMatch(/^\d{19}$/)
    expect(got[0]?.severity).toBe('info')
    expect(got[1]?.severity).toBe('warning')
    await settle(clock, () => mgr.statistics().droppedEvents.invalid === 1, 'the non-event counted invalid')
  })

  it('serves several consumers, batches and an Effect Stream, each every event of a finite source', async () => {
    const { clock, mgr, driven } = setup()
    const s = driven('s')
    mgr.addCollector('s', s.factory, { ...fast, restart: 'transient' })
    const a = collect(mgr.events())
    const b = collect(mgr.batches())
    const viaEffect = Effect.runPromise(Stream.runCount(mgr.stream))
    await start(mgr, clock)
    for (let i = 0; i < 20; i++) s.current?.emit(50)
    s.current?.finish()
    await settle(clock, () => mgr.statistics().collectors.s?.state === 'stopped', 'the finite source to finish')
    const stopping = mgr.stop()
    await clock.advanceAsync(3000)
    await stopping
    await Promise.all([a.done, b.done])
    expect(a.items.length).toBe(1000)
    expect(b.items.flat().length).toBe(1000)
    expect(await viaEffect).toBe(1000)
  })

  it('passes an inspector to XState that sees the supervisor and every collector actor', async () => {
    const seen = new Set<string>()
    const { clock, mgr, driven } = setup({ inspect: (e: InspectionEvent) => seen.add((e.actorRef as unknown as { id: string }).id) })
    mgr.addCollector('x', driven('x').factory, fast)
    await start(mgr, clock)
    expect(seen.has('supervisor')).toBe(true)
    expect(seen.has('x')).toBe(true)
    expect(mgr.actors().map((a) => [a.id, a.state])).toEqual([
      ['supervisor', 'running'],
      ['collector:x', 'running'],
    ])
  })

  it('keeps events accepted before the first consumer and gives them to it, in order', async () => {
    const { clock, mgr, driven } = setup()
    const early = driven('early')
    mgr.addCollector('early', early.factory, { ...fast, restart: 'transient' })
    await start(mgr, clock)
    for (let i = 0; i < 10; i++) early.current?.emit(10)
    early.current?.finish()
    await settle(clock, () => mgr.statistics().totalEvents === 100, 'all accepted')
    const got: TapioEvent[] = []
    for await (const e of mgr.events()) {
      got.push(e)
      if (got.length === 100) break
    }
    expect(got.map((e) => (e.data as { seq: number }).seq)).toEqual(Array.from({ length: 100 }, (_, i) => i))
  })
})
