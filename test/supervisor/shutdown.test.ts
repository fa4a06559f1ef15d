import { describe, expect, it } from 'vitest'
import { ManualClock } from '../../src/core/clock.js'
import { CollectorManager, type LifecycleEvent } from '../../src/index.js'
import { delay } from '../../src/core/delay.js'
import { Driven, type Happening } from '../support/driven.js'

/** CollectorManager.stop() on a driven clock: the drain and abandon path, and its bound. */
describe('stop(): drain or abandon, within its bound', () => {
  async function running(capacity = 100) {
    const clock = new ManualClock(0)
    const mgr = new CollectorManager({ clock, bufferCapacity: capacity, healthCheckIntervalMs: 3_600_000 })
    const log: Happening[] = []
    const lifecycle: LifecycleEvent[] = []
    mgr.on('lifecycle', (e) => lifecycle.push(e))
    const a = new Driven('a', clock, log, (n) => (n === 1 ? { stopMs: 400 } : {}))
    mgr.addCollector('a', a.factory, { stopTimeoutMs: 1000 })
    const started = mgr.start()
    await clock.advanceAsync(0)
    await started
    return { clock, mgr, a, log, lifecycle }
  }

  it('drains to a consumer that reads: everything delivered, nothing abandoned; stops are reported as shutdown', async () => {
    const { clock, mgr, a, lifecycle } = await running()
    const got: unknown[] = []
    const reading = (async () => {
      for await (const e of mgr.events()) got.push(e)
    })()
    a.current?.emit(30)
    await clock.advanceAsync(0)
    const stopping = mgr.stop({ timeoutMs: 5000 })
    await clock.advanceAsync(400)
    const summary = await stopping
    await reading
    expect(summary).toEqual({ drained: true, abandoned: 0, durationMs: 400 })
    expect(got.length).toBe(30)
    expect(lifecycle.filter((e) => e.type === 'stopped')).toEqual([{ type: 'stopped', collector: 'a', at: 400, by: 'shutdown', forced: false }])
    expect(mgr.state).toBe('stopped')
    expect(mgr.health().status).toBe('stopped')
  })

  it('a consumer that stops reading: after the bound the rest is counted shutdown and iterators complete', async () => {
    const { clock, mgr, a } = await running()
    const it = mgr.batches()
    a.current?.emit(10)
    a.current?.emit(15)
    await clock.advanceAsync(0)
    const first = await it.next()
    expect(first.done).toBe(false)
    const stopping = mgr.stop({ timeoutMs: 2000 })
    await clock.advanceAsync(1999)
    let done = false
    void stopping.then(() => (done = true))
    await clock.advanceAsync(0)
    expect(done).toBe(false)
    await clock.advanceAsync(1)
    const summary = await stopping
    expect(summary).toEqual({ drained: false, abandoned: 15, durationMs: 2000 })
    const st = mgr.statistics()
    expect(st.droppedEvents.shutdown).toBe(15)
    expect(st.totalEvents).toBe(st.deliveredEvents + st.droppedEvents.total)
    expect((await it.next()).done).toBe(true)
  })

  it('with no consumer, queued events stay readable after stop; stop twice is the same stop', async () => {
    const { clock, mgr, a } = await running()
    a.current?.emit(5)
    await clock.advanceAsync(0)
    const s1 = mgr.stop({ timeoutMs: 1000 })
    const s2 = mgr.stop()
    expect(s2).toBe(s1)
    await clock.advanceAsync(1000)
    expect(await s1).toMatchObject({ drained: true, abandoned: 0 })
    const rest: unknown[] = []
    for await (const e of mgr.events()) rest.push(e)
    expect(rest.length).toBe(5)
  })
})

describe('stop(): a consumer that reads slowly', () => {
  it('is waited for until it has read everything (within the bound), then the stop reports drained', async () => {
    const clock = new ManualClock(0)
    const mgr = new CollectorManager({ clock, maxBatch: 10, healthCheckIntervalMs: 3_600_000 })
    const a = new Driven('a', clock, [])
    mgr.addCollector('a', a.factory)
    const started = mgr.start()
    await clock.advanceAsync(0)
    await started
    const got: number[] = []
    const reading = (async () => {
      for await (const b of mgr.batches()) {
        got.push(b.length)
        await delay(100, undefined, clock)
      }
    })()
    a.current?.emit(30)
    await clock.advanceAsync(0)
    const stopping = mgr.stop({ timeoutMs: 5000 })
    await clock.advanceAsync(1000)
    expect(await stopping).toEqual({ drained: true, abandoned: 0, durationMs: 200 })
    await reading
    expect(got).toEqual([10, 10, 10])
  })
})
