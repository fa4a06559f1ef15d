import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { HandoffQueue, HandoffTotals, type HandoffCounters } from '../../src/core/handoff-queue.js'
import type { EventInput } from '../../src/events/event.js'

let serial = 0
function batch(n: number): EventInput[] {
  return Array.from({ length: n }, () => ({ type: 't.e', data: { i: serial++ } }))
}

function conserved(c: HandoffCounters): boolean {
  return c.pushed === c.taken + c.dropped.queue_full + c.dropped.queue_evicted + c.dropped.discarded + c.queued
}

type Op = { kind: 'push'; n: number } | { kind: 'take' } | { kind: 'end' } | { kind: 'abandon' }

const op: fc.Arbitrary<Op> = fc.oneof(
  { weight: 5, arbitrary: fc.integer({ min: 0, max: 12 }).map((n) => ({ kind: 'push' as const, n })) },
  { weight: 4, arbitrary: fc.constant({ kind: 'take' as const }) },
  { weight: 1, arbitrary: fc.constant({ kind: 'end' as const }) },
  { weight: 1, arbitrary: fc.constant({ kind: 'abandon' as const }) },
)

describe('HandoffQueue', () => {
  it('conserves every event, keeps batches whole and in order, and stays within capacity', async () => {
    await fc.assert(
      fc.asyncProperty(fc.integer({ min: 1, max: 20 }), fc.constantFrom('newest' as const, 'oldest' as const), fc.array(op, { maxLength: 60 }), async (capacity, overflow, ops) => {
        let released = 0
        const q = new HandoffQueue({ capacity, overflow, onRelease: (n) => (released += n) })
        const it = q[Symbol.asyncIterator]()
        const pushed: EventInput[][] = []
        let lastTakenSeq = -1
        let batchesIn = 0
        let batchesTaken = 0
        for (const o of ops) {
          if (o.kind === 'push') {
            const b = batch(o.n)
            pushed.push(b)
            if (b.length > 0) batchesIn += 1
            q.push(b)
          } else if (o.kind === 'take') {
            if (q.queued === 0) continue
            const r = await it.next()
            expect(r.done).toBe(false)
            const got = r.value as readonly EventInput[]
            batchesTaken += 1
            const seqs = got.map((e) => (e.data as { i: number }).i)
            // Whole batches (or a contiguous cut of an oversized one), in push order.
            for (let i = 1; i < seqs.length; i++) expect(seqs[i]).toBe((seqs[i - 1] as number) + 1)
            expect(seqs[0] as number).toBeGreaterThan(lastTakenSeq)
            lastTakenSeq = seqs[seqs.length - 1] as number
            const source = pushed.find((b) => b.includes(got[0] as EventInput)) as EventInput[]
            if (source.length <= capacity) expect(got).toBe(source)
          } else if (o.kind === 'end') {
            q.end()
          } else {
            await it.return?.()
          }
          expect(q.queued).toBeLessThanOrEqual(capacity)
          expect(conserved(q.counters())).toBe(true)
        }
        await it.return?.()
        const c = q.counters()
        expect(conserved(c)).toBe(true)
        expect(c.queued).toBe(0)
        // Every batch that entered left exactly once: taken, dropped or discarded.
        expect(released).toBe(batchesIn)
        expect(batchesTaken).toBeLessThanOrEqual(batchesIn)
      }),
      { numRuns: 300 },
    )
  })

  it('drops the incoming batch under newest and the oldest batches under oldest', async () => {
    const newest = new HandoffQueue({ capacity: 5, overflow: 'newest' })
    const a = batch(3)
    newest.push(a)
    newest.push(batch(3))
    expect(newest.counters()).toMatchObject({ pushed: 6, queued: 3, dropped: { queue_full: 3 } })
    const oldest = new HandoffQueue({ capacity: 5, overflow: 'oldest' })
    oldest.push(batch(3))
    const b = batch(3)
    oldest.push(b)
    expect(oldest.counters()).toMatchObject({ pushed: 6, queued: 3, dropped: { queue_evicted: 3 } })
    expect((await oldest[Symbol.asyncIterator]().next()).value).toBe(b)
  })

  it('ends after what is queued, throws a failure after what is queued, and refuses a second reader', async () => {
    const q = new HandoffQueue({ capacity: 10, overflow: 'newest' })
    q.push(batch(2))
    q.fail(new Error('gone'))
    q.push(batch(1))
    const it = q[Symbol.asyncIterator]()
    expect((await it.next()).value).toHaveLength(2)
    await expect(it.next()).rejects.toThrow('gone')
    expect(q.counters().dropped.discarded).toBe(1)
    expect(() => q[Symbol.asyncIterator]()).toThrow('once per start')
    const e = new HandoffQueue({ capacity: 10, overflow: 'oldest' })
    e.push(batch(1))
    e.end()
    const r = e[Symbol.asyncIterator]()
    expect((await r.next()).done).toBe(false)
    expect((await r.next()).done).toBe(true)
  })

  it('wakes a waiting consumer on push and on end', async () => {
    const q = new HandoffQueue({ capacity: 10, overflow: 'newest' })
    const it = q[Symbol.asyncIterator]()
    const first = it.next()
    q.push(batch(1))
    expect((await first).value).toHaveLength(1)
    const second = it.next()
    q.end()
    expect((await second).done).toBe(true)
  })

  it('HandoffTotals keeps counting across the queues of several starts', () => {
    const totals = new HandoffTotals()
    const q1 = totals.open({ capacity: 2, overflow: 'newest' })
    q1.push(batch(2))
    q1.push(batch(1))
    const q2 = totals.open({ capacity: 2, overflow: 'newest' })
    q2.push(batch(1))
    // q1's two queued events were never read: discarded when it was replaced.
    expect(totals.counters()).toEqual({ pushed: 4, taken: 0, dropped: { queue_full: 1, queue_evicted: 0, discarded: 2 }, queued: 1 })
  })
})
