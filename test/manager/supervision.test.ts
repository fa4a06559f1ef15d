import { Effect, Stream } from 'effect'
import { afterEach, describe, expect, it } from 'vitest'
import type { InspectionEvent } from 'xstate'
import {
  type Collector,
  CollectorManager,
  CollectorStartError,
  type EventInput,
  SyntheticCollector,
  type TapioEvent,
} from '../../src/index.js'
import { collect, sleep, waitFor } from '../support/wait.js'

const fast = { backoff: { initialMs: 5, maxMs: 20, jitter: 0 }, startTimeoutMs: 300, stopTimeoutMs: 300 } as const

const managers: CollectorManager[] = []
function manager(opts: ConstructorParameters<typeof CollectorManager>[0] = {}): CollectorManager {
  const m = new CollectorManager({ stopTimeoutMs: 3000, ...opts })
  managers.push(m)
  return m
}
afterEach(async () => {
  await Promise.all(managers.splice(0).map((m) => m.stop()))
})

describe('CollectorManager supervision', () => {
  it('rejects start() naming each collector that failed, while the others keep running', async () => {
    const mgr = manager()
    mgr.addCollector('good', new SyntheticCollector({ rate: 2000, batchSize: 10 }), fast)
    mgr.addCollector('bad', new SyntheticCollector({ failAtStart: true }), { ...fast, maxRestarts: 0 })
    mgr.addCollector('slow', new SyntheticCollector({ hangInStart: true }), { ...fast, maxRestarts: 0 })
    const err = await mgr.start().catch((e: unknown) => e)
    expect(err).toBeInstanceOf(CollectorStartError)
    const failures = (err as CollectorStartError).failures
    expect(Object.keys(failures).sort()).toEqual(['bad', 'slow'])
    expect(failures.bad).toMatch(/injected start failure/)
    expect(failures.slow).toMatch(/timed out after 300 ms/)
    const { items } = collect(mgr.events())
    await waitFor(() => items.length >= 50, 'events from the good collector')
    const h = mgr.health()
    expect(h.collectors.good?.status).toBe('ok')
    expect(h.collectors.bad?.status).toBe('permanent_error')
    expect(h.status).toBe('permanent_error')
  })

  it('restarts a failing collector with backoff and loses nothing it accepted', async () => {
    const mgr = manager()
    let made = 0
    mgr.addCollector('flaky', () => {
      made += 1
      return new SyntheticCollector({ rate: 0, batchSize: 7, failAfter: 50 })
    }, { ...fast, maxRestarts: 3, withinMs: 60_000 })
    await mgr.start()
    const { items, done } = collect(mgr.events())
    await waitFor(() => mgr.health().collectors.flaky?.status === 'permanent_error', 'giving up after 3 restarts')
    await mgr.stop()
    await done
    expect(made).toBe(4)
    const st = mgr.statistics()
    expect(st.collectors.flaky?.restarts).toBe(3)
    expect(items.length).toBe(200)
    expect(st.totalEvents).toBe(200)
    expect(st.deliveredEvents).toBe(200)
    expect(mgr.health().collectors.flaky?.lastError).toMatch(/restart intensity exceeded.*injected failure after 50 events/)
  })

  it('a manual restart of a given-up collector gets a fresh policy window', async () => {
    const mgr = manager()
    mgr.addCollector('doomed', new SyntheticCollector({ failAtStart: true }), { ...fast, maxRestarts: 2 })
    await mgr.start().catch(() => {})
    await waitFor(() => mgr.health().collectors.doomed?.status === 'permanent_error', 'giving up')
    expect(mgr.statistics().collectors.doomed?.restarts).toBe(2)
    await expect(mgr.restartCollector('doomed')).rejects.toThrow(/doomed/)
    await waitFor(() => mgr.health().collectors.doomed?.status === 'permanent_error', 'giving up again')
    // 2 granted before, the operator's restart, 2 more after it: the window starts again, the one
    // count goes on (manual restarts counted, and shown as manual).
    const st = mgr.statistics().collectors.doomed
    expect(st?.restarts).toBe(5)
    expect(st?.manualRestarts).toBe(1)
    expect(mgr.health().collectors.doomed?.restarts).toBe(5)
    const ctx = mgr.actors().find((a) => a.id === 'collector:doomed')?.context
    expect(ctx?.restarts).toBe(5)
    expect(ctx?.manualRestarts).toBe(1)
  })

  it('force-stops a collector that hangs in stop, and stop() still completes in time', async () => {
    const mgr = manager()
    mgr.addCollector('stuck', new SyntheticCollector({ rate: 100, batchSize: 1, hangInStop: true }), fast)
    mgr.addCollector('fine', new SyntheticCollector({ rate: 100, batchSize: 1 }), fast)
    await mgr.start()
    const t0 = Date.now()
    const summary = await mgr.stop({ timeoutMs: 5000 })
    expect(Date.now() - t0).toBeLessThan(5000)
    expect(summary.durationMs).toBeLessThan(5000)
    expect(mgr.health().status).toBe('stopped')
    const actors = mgr.actors()
    expect(actors.find((a) => a.id === 'collector:stuck')?.context.forcedStops).toBe(1)
  })

  it('escalates (OTP style) and stops everything when told to', async () => {
    const mgr = manager()
    mgr.addCollector('ok', new SyntheticCollector({ rate: 100 }), fast)
    mgr.addCollector('crashy', () => new SyntheticCollector({ rate: 0, failAfter: 1 }), { ...fast, maxRestarts: 1, onExceeded: 'escalate' })
    await mgr.start()
    await waitFor(() => mgr.state === 'stopped', 'the manager to stop after escalation')
    expect(mgr.escalated).toMatch(/crashy.*restart intensity exceeded/)
    expect(mgr.health().status).toBe('stopped')
  })

  it('one_for_all restarts the siblings of a failed collector; rest_for_one only later ones', async () => {
    for (const strategy of ['one_for_all', 'rest_for_one'] as const) {
      const mgr = manager({ strategy })
      let firstStarts = 0
      let lastStarts = 0
      mgr.addCollector('first', () => {
        firstStarts += 1
        return new SyntheticCollector({ rate: 50 })
      }, fast)
      let crashyStarts = 0
      mgr.addCollector('crashy', () => new SyntheticCollector(++crashyStarts === 1 ? { rate: 0, failAfter: 5 } : { rate: 50 }), fast)
      mgr.addCollector('last', () => {
        lastStarts += 1
        return new SyntheticCollector({ rate: 50 })
      }, fast)
      await mgr.start().catch(() => {})
      collect(mgr.events())
      await waitFor(() => lastStarts === 2, `${strategy}: the later sibling restarted`)
      await waitFor(() => mgr.statistics().activeCollectors === 3, `${strategy}: all running again`)
      expect(firstStarts).toBe(strategy === 'one_for_all' ? 2 : 1)
      await mgr.stop()
    }
  })

  it('adds and removes collectors while running; duplicate names are an error', async () => {
    const mgr = manager()
    mgr.addCollector('a', new SyntheticCollector({ rate: 500, batchSize: 5 }), fast)
    await mgr.start()
    expect(() => mgr.addCollector('a', new SyntheticCollector())).toThrow(/already registered/)
    expect(() => mgr.addCollector('bad name!', new SyntheticCollector())).toThrow(/collector name/)
    const { items } = collect(mgr.events())
    mgr.addCollector('b', new SyntheticCollector({ rate: 500, batchSize: 5 }), fast)
    await waitFor(() => items.some((e) => e.source === 'b'), 'events from the added collector')
    await mgr.removeCollector('a')
    expect(mgr.collectorNames()).toEqual(['b'])
    const countA = items.filter((e) => e.source === 'a').length
    await sleep(100)
    expect(items.filter((e) => e.source === 'a').length).toBe(countA)
    await expect(mgr.removeCollector('a')).rejects.toThrow(/not registered/)
  })

  it('stamps id, timestamp and source; a collector cannot impersonate another', async () => {
    const mgr = manager()
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
    await mgr.start()
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
    await waitFor(() => mgr.statistics().droppedEvents.invalid === 1, 'the non-event counted invalid')
  })

  it('treats a self-reported fatal_error as a failure and restarts the collector', async () => {
    const mgr = manager({ healthCheckIntervalMs: 20 })
    let starts = 0
    mgr.addCollector('sick', () => {
      starts += 1
      const inner = new SyntheticCollector({ rate: 100 })
      const sick = starts === 1
      return Object.assign(Object.create(inner) as SyntheticCollector, {
        health: () => (sick ? { status: 'fatal_error' as const, message: 'disk gone' } : inner.health()),
      })
    }, fast)
    await mgr.start()
    await waitFor(() => starts === 2 && mgr.health().collectors.sick?.status === 'ok', 'restart after fatal_error')
    expect(mgr.statistics().collectors.sick?.restarts).toBe(1)
  })

  it('never lets a collector crash the host: sync throws, rejected starts and broken sources', async () => {
    const mgr = manager()
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
    const brokenSource: Collector = {
      start() {},
      stop() {},
      events() {
        return {
          [Symbol.asyncIterator]() {
            return { next: () => Promise.reject(new Error('source boom')) }
          },
        }
      },
    }
    mgr.addCollector('throwing', throwing, { ...fast, maxRestarts: 2 })
    mgr.addCollector('broken', brokenSource, { ...fast, maxRestarts: 2 })
    await mgr.start().catch(() => {})
    await waitFor(
      () => ['throwing', 'broken'].every((n) => mgr.health().collectors[n]?.status === 'permanent_error'),
      'both given up',
    )
    expect(mgr.health().collectors.broken?.lastError).toMatch(/source boom/)
    expect(mgr.health().collectors.throwing?.lastError).toMatch(/sync boom/)
  })

  it('serves several consumers, batches and an Effect Stream', async () => {
    const mgr = manager()
    mgr.addCollector('s', new SyntheticCollector({ rate: 0, batchSize: 50, total: 1000 }), { ...fast, restart: 'transient' })
    const a = collect(mgr.events())
    const b = collect(mgr.batches())
    const viaEffect = Effect.runPromise(Stream.runCount(mgr.stream))
    await mgr.start()
    await waitFor(() => mgr.statistics().collectors.s?.state === 'stopped', 'the finite source to finish')
    await mgr.stop()
    await Promise.all([a.done, b.done])
    expect(a.items.length).toBe(1000)
    expect(b.items.flat().length).toBe(1000)
    expect(await viaEffect).toBe(1000)
  })

  it('passes an inspector to XState that sees the supervisor and every collector actor', async () => {
    const seen = new Set<string>()
    const mgr = manager({ inspect: (e: InspectionEvent) => seen.add((e.actorRef as unknown as { id: string }).id) })
    mgr.addCollector('x', new SyntheticCollector({ rate: 10 }), fast)
    await mgr.start()
    expect(seen.has('supervisor')).toBe(true)
    expect(seen.has('x')).toBe(true)
    expect(mgr.actors().map((a) => [a.id, a.state])).toEqual([
      ['supervisor', 'running'],
      ['collector:x', 'running'],
    ])
  })

  it('keeps events accepted before the first consumer and gives them to it', async () => {
    const mgr = manager()
    mgr.addCollector('early', new SyntheticCollector({ rate: 0, batchSize: 10, total: 100 }), { ...fast, restart: 'transient' })
    await mgr.start()
    await waitFor(() => mgr.statistics().totalEvents === 100, 'all accepted')
    const got: TapioEvent[] = []
    for await (const e of mgr.events()) {
      got.push(e)
      if (got.length === 100) break
    }
    expect(got.map((e) => (e.data as { seq: number }).seq)).toEqual(Array.from({ length: 100 }, (_, i) => i))
  })
})
