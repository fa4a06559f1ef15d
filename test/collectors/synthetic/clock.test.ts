import { describe, expect, it } from 'vitest'
import { SyntheticCollector } from '../../../src/collectors/synthetic/index.js'
import { flushMicrotasks, ManualClock } from '../../../src/core/clock.js'
import type { EventInput } from '../../../src/events/event.js'

describe('synthetic collector on a driven clock', () => {
  it('paces batches at `rate` on its clock: each batch exactly batchSize / rate later', async () => {
    const clock = new ManualClock(0)
    // 10 events/s in batches of 5: one batch every 500 ms.
    const c = new SyntheticCollector({ rate: 10, batchSize: 5 }, undefined, { clock })
    await c.start(new AbortController().signal)
    const it = c.events()[Symbol.asyncIterator]()
    try {
      const seqs = (r: IteratorResult<unknown>) => (r.value as EventInput[]).map((e) => (e.data as { seq: number }).seq)
      expect(seqs(await it.next())).toEqual([0, 1, 2, 3, 4])
      for (const [i, at] of [500, 1000, 1500].entries()) {
        let got: IteratorResult<unknown> | undefined
        void it.next().then((r) => {
          got = r
        })
        await clock.advanceAsync(499)
        await flushMicrotasks()
        expect(got, `batch ${i + 1} before ${at} ms`).toBeUndefined()
        await clock.advanceAsync(1)
        await flushMicrotasks()
        expect(clock.now()).toBe(at)
        expect(got && seqs(got)).toEqual([5, 6, 7, 8, 9].map((n) => n + 5 * i))
      }
    } finally {
      await c.stop()
    }
    expect(clock.pending).toBe(0)
  })
})
