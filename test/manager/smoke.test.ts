import { describe, expect, it } from 'vitest'
import { CollectorManager, SyntheticCollector } from '../../src/index.js'

describe('smoke', () => {
  it('runs two synthetic collectors and delivers all events', async () => {
    const mgr = new CollectorManager()
    mgr.addCollector('a', new SyntheticCollector({ rate: 0, batchSize: 100, total: 1000 }), { restart: 'transient' })
    mgr.addCollector('b', new SyntheticCollector({ rate: 0, batchSize: 10, total: 500 }), { restart: 'transient' })
    await mgr.start()
    const seen: Record<string, number> = {}
    const consume = (async () => {
      for await (const e of mgr.events()) seen[e.source] = (seen[e.source] ?? 0) + 1
    })()
    await new Promise((r) => setTimeout(r, 300))
    const summary = await mgr.stop()
    await consume
    expect(seen).toEqual({ a: 1000, b: 500 })
    expect(summary.drained).toBe(true)
    const st = mgr.statistics()
    expect(st.totalEvents).toBe(1500)
    expect(st.deliveredEvents).toBe(1500)
  })
})
