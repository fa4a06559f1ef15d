import { describe, expect, it } from 'vitest'
import { EbpfCollector } from '../../../src/collectors/ebpf/index.js'
import { Sink } from './helpers.js'

const small = { programs: { tcp: false, oom: false }, ringBufferBytes: 1 << 16 }

describe('ebpf collector lifecycle (the contract itself: conformance.test.ts)', () => {
  it('start() with an aborted signal gives up and loads nothing', async () => {
    const c = new EbpfCollector(small)
    const ac = new AbortController()
    ac.abort(new Error('gave up'))
    await expect(c.start(ac.signal)).rejects.toThrow('gave up')
    expect(() => c.events()).toThrow()
    await c.stop()
    expect(c.totals()).toEqual({ generated: 0, delivered: 0, droppedKernel: 0, droppedUser: 0, pending: 0 })
  })

  it('a consumer that breaks out early: the rest is counted as discarded, totals still add up', async () => {
    const c = new EbpfCollector(small)
    await c.start(AbortSignal.timeout(30_000))
    const { execFileSync } = await import('node:child_process')
    for (let i = 0; i < 5; i++) execFileSync('/bin/true')
    for await (const batch of c.events()) {
      expect(batch).toBeDefined()
      break
    }
    await c.stop()
    const t = c.totals()
    expect(t.delivered).toBeGreaterThan(0)
    expect(t.generated).toBe(t.delivered + t.droppedKernel + t.droppedUser)
    expect(t.pending).toBe(0)
  })
})
