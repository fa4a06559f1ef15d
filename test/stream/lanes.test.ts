import { describe, expect, it } from 'vitest'
import type { TapioEvent } from '../../src/events/event.js'
import { COMPACT_AFTER, Lanes } from '../../src/stream/lanes.js'
import { MergeBuffer } from '../../src/stream/merge-buffer.js'
import { SubscriptionLog } from '../../src/stream/subscription-log.js'

const ev = (source: string, seq: number) => ({ id: `${source}-${seq}`, timestamp: '1', type: 't', source, severity: 'info', data: { seq } }) as TapioEvent
const batch = (source: string, from: number, n: number) => Array.from({ length: n }, (_, i) => ev(source, from + i))
const seqs = (b: readonly TapioEvent[] | undefined) => (b ?? []).map((e) => (e.data as { seq: number }).seq)
const tick = () => new Promise<void>((r) => setImmediate(r))

describe('Lanes', () => {
  it(`keeps a lane's array small: cleared when all is taken, compacted after ${COMPACT_AFTER} taken batches once half is taken`, () => {
    const lanes = new Lanes()
    const a = lanes.register('a')
    for (let i = 0; i < 127; i++) lanes.push(a, batch('a', i, 1))
    for (let i = 0; i < COMPACT_AFTER - 1; i++) lanes.pull(10)
    expect([a.head, a.queue.length]).toEqual([COMPACT_AFTER - 1, 127])
    lanes.pull(10)
    // head 64, 64 * 2 >= 127: the taken part is dropped.
    expect([a.head, a.queue.length]).toEqual([0, 127 - COMPACT_AFTER])
    for (let i = 0; i < 200; i++) lanes.push(a, batch('a', 127 + i, 1))
    // 263 batches: after 64 taken, 128 < 263 — not yet.
    for (let i = 0; i < COMPACT_AFTER; i++) lanes.pull(10)
    expect([a.head, a.queue.length]).toEqual([COMPACT_AFTER, 263])
    const rest: number[] = []
    for (let p = lanes.pull(10); p; p = lanes.pull(10)) rest.push(...seqs(p.batch))
    expect(rest).toEqual(Array.from({ length: 199 }, (_, i) => 128 + i))
    expect([a.head, a.offset, a.queue.length, a.size, lanes.queued]).toEqual([0, 0, 0, 0, 0])
  })

  it('hands out a batch that fits maxBatch as it is (no copy), a larger one in pieces', () => {
    const lanes = new Lanes()
    const a = lanes.register('a')
    const exact = batch('a', 0, 4)
    lanes.push(a, exact)
    expect(lanes.pull(4)?.batch).toBe(exact)
    const big = batch('a', 4, 5)
    lanes.push(a, big)
    const first = lanes.pull(4)?.batch
    expect(first).not.toBe(big)
    expect([seqs(first), seqs(lanes.pull(4)?.batch)]).toEqual([[4, 5, 6, 7], [8]])
    expect(a.counters.delivered).toBe(9)
  })

  it('the largest lane is the first registered among equals', () => {
    const lanes = new Lanes()
    const a = lanes.register('a')
    const b = lanes.register('b')
    lanes.push(a, batch('a', 0, 3))
    lanes.push(b, batch('b', 0, 3))
    expect(lanes.largest()).toBe(a)
    expect(lanes.largest(a)).toBe(b)
    lanes.push(b, batch('b', 3, 1))
    expect(lanes.largest()).toBe(b)
    expect(new Lanes().largest()).toBeUndefined()
  })

  it('round-robin stays fair when a lane goes away before the next one due', () => {
    const lanes = new Lanes()
    const [a, b, c] = ['a', 'b', 'c'].map((n) => lanes.register(n))
    for (const l of [a, b, c]) lanes.push(l!, batch(l!.source, 0, 2))
    expect(lanes.pull(1)?.lane.source).toBe('a')
    expect(lanes.pull(1)?.lane.source).toBe('b')
    // Next due: c. Remove a (before c in the list): c must still come next, then a's gone, then b.
    lanes.evictOldest(a!, 1)
    lanes.unregister(a!)
    expect(lanes.sources()).toEqual(['b', 'c'])
    expect(lanes.pull(1)?.lane.source).toBe('c')
    expect(lanes.pull(1)?.lane.source).toBe('b')
    // Removing the last lane while it is due wraps to the first.
    lanes.push(b!, batch('b', 2, 1))
    lanes.unregister(c!)
    expect(lanes.pull(1)?.lane.source).toBe('c')
    expect(lanes.sources()).toEqual(['b'])
    expect(lanes.pull(1)?.lane.source).toBe('b')
  })

  it('an unregistered lane that drained is forgotten: unknown to offers and counters', () => {
    const buf = new MergeBuffer({ capacity: 10 })
    buf.registerSource('a')
    buf.offer('a', batch('a', 0, 2))
    buf.unregisterSource('a')
    expect(buf.sourceCounters('a')?.buffered).toBe(2)
    const sub = buf.subscribe()
    buf.take(sub)
    expect(buf.sourceCounters('a')).toBeUndefined()
    expect(() => buf.offer('a', batch('a', 2, 1))).toThrow(/unknown source "a"/)
  })
})

describe('SubscriptionLog', () => {
  it('keeps a batch until every subscription has read it; reports freed room', () => {
    const log = new SubscriptionLog()
    const one = log.subscribe()
    const two = log.subscribe()
    const b = batch('a', 0, 3)
    log.delivered(one, b)
    expect(log.unread).toBe(3)
    expect(log.caughtUp(one)).toBe(true)
    expect(log.caughtUp(two)).toBe(false)
    expect(log.trim()).toBe(false)
    expect(log.readLogged(two)).toBe(b)
    expect(log.readLogged(two)).toBeUndefined()
    expect(log.trim()).toBe(true)
    expect(log.unread).toBe(0)
    expect(log.trim()).toBe(false)
    expect([one.received, two.received]).toEqual([3, 3])
  })

  it('a single subscription logs nothing; a late one starts at the end; leaving frees what only it had left', () => {
    const log = new SubscriptionLog()
    const one = log.subscribe()
    log.delivered(one, batch('a', 0, 2))
    expect(log.unread).toBe(0)
    const two = log.subscribe()
    log.delivered(one, batch('a', 2, 2))
    const late = log.subscribe()
    expect(log.caughtUp(late)).toBe(true)
    expect(log.readLogged(late)).toBeUndefined()
    expect(log.unread).toBe(2)
    expect(log.unsubscribe(two)).toBe(true)
    expect(log.unread).toBe(0)
    expect(log.unsubscribe(two)).toBe(false)
    expect(log.has(two)).toBe(false)
    expect(log.count).toBe(2)
  })

  it('discard (abandon) leaves every subscription caught up and new batches readable', () => {
    const log = new SubscriptionLog()
    const one = log.subscribe()
    const two = log.subscribe()
    log.delivered(one, batch('a', 0, 2))
    log.delivered(one, batch('a', 2, 2))
    log.discard()
    expect([log.unread, log.caughtUp(one), log.caughtUp(two)]).toEqual([0, true, true])
    const b = batch('a', 4, 1)
    log.delivered(one, b)
    expect(log.readLogged(two)).toBe(b)
  })
})

describe('MergeBuffer edge cases', () => {
  it('drop-newest cutting all that is left of a partly taken batch leaves nothing empty behind', () => {
    const buf = new MergeBuffer({ capacity: 12, policy: 'drop-newest', maxBatch: 8 })
    buf.registerSource('a')
    buf.registerSource('b')
    const sub = buf.subscribe()
    buf.offer('a', batch('a', 0, 12))
    expect(seqs(buf.take(sub))).toEqual([0, 1, 2, 3, 4, 5, 6, 7])
    // b claims its fair share (6): a's remaining 4 go.
    buf.offer('b', batch('b', 0, 12))
    expect(buf.sourceCounters('a')).toMatchObject({ buffered: 0, dropped: { buffer_full: 4 } })
    buf.offer('a', batch('a', 12, 2))
    const got: TapioEvent[][] = []
    for (let b = buf.take(sub); b; b = buf.take(sub)) got.push([...b])
    expect(got.every((b) => b.length > 0)).toBe(true)
    expect(seqs(got.flat().filter((e) => e.source === 'a'))).toEqual([12, 13])
  })

  it('drop-newest claims only the room it needs, counting what the claimer already holds', () => {
    const buf = new MergeBuffer({ capacity: 100, policy: 'drop-newest' })
    buf.registerSource('flood')
    buf.registerSource('quiet')
    buf.offer('flood', batch('flood', 0, 85))
    buf.offer('quiet', batch('quiet', 0, 5))
    buf.offer('quiet', batch('quiet', 5, 20))
    // Free 10; quiet holds 5 of its share of 50: it needs 10 more and takes just those from the flood.
    expect(buf.sourceCounters('flood')).toMatchObject({ buffered: 75, dropped: { buffer_full: 10 } })
    expect(buf.sourceCounters('quiet')).toMatchObject({ buffered: 25, dropped: { buffer_full: 0 } })
    const kept = batch('quiet', 25, 1)
    const loose = new MergeBuffer({ capacity: 10, policy: 'drop-newest' })
    loose.registerSource('q')
    loose.offer('q', kept)
    expect(loose.take(loose.subscribe())).toBe(kept)
  })

  it('block keeps FIFO: a batch that fits waits behind one that does not', async () => {
    const buf = new MergeBuffer({ capacity: 10, policy: 'block' })
    buf.registerSource('a')
    buf.registerSource('b')
    const sub = buf.subscribe()
    buf.offer('a', batch('a', 0, 8))
    const big = buf.offer('a', batch('a', 8, 5))
    const small = buf.offer('b', batch('b', 0, 2))
    expect(small).toBeInstanceOf(Promise)
    expect(buf.stats()).toMatchObject({ pendingOffers: 2, queued: 8 })
    buf.take(sub)
    await Promise.all([big, small])
    expect(buf.stats()).toMatchObject({ pendingOffers: 0, queued: 7 })
  })

  it('closed is not exhausted while batches are still queued for the subscription', () => {
    const buf = new MergeBuffer({ capacity: 10, maxBatch: 2 })
    buf.registerSource('a')
    const sub = buf.subscribe()
    buf.offer('a', batch('a', 0, 3))
    buf.close()
    expect(buf.exhausted(sub)).toBe(false)
    expect(buf.take(sub)?.length).toBe(2)
    expect(buf.exhausted(sub)).toBe(false)
    expect(buf.take(sub)?.length).toBe(1)
    expect(buf.exhausted(sub)).toBe(true)
  })

  it('block: a waiting batch admitted whole is handed out as it is (no copy)', async () => {
    const buf = new MergeBuffer({ capacity: 10, policy: 'block' })
    buf.registerSource('a')
    const sub = buf.subscribe()
    buf.offer('a', batch('a', 0, 8))
    const waiting = batch('a', 8, 5)
    const offered = buf.offer('a', waiting)
    buf.take(sub)
    await offered
    expect(buf.take(sub)).toBe(waiting)
  })

  it('an empty offer changes nothing; consumers waiting for data are woken by an offer', async () => {
    const buf = new MergeBuffer({ capacity: 10 })
    buf.registerSource('a')
    const sub = buf.subscribe()
    buf.offer('a', [])
    expect(buf.take(sub)).toBeUndefined()
    expect(buf.stats().accepted).toBe(0)
    let woken = false
    void buf.whenData().then(() => (woken = true))
    await tick()
    expect(woken).toBe(false)
    buf.offer('a', batch('a', 0, 1))
    await tick()
    expect(woken).toBe(true)
  })

  it('a slow subscription catching up admits a blocked offer at once', async () => {
    const buf = new MergeBuffer({ capacity: 10, policy: 'block' })
    buf.registerSource('a')
    const fast = buf.subscribe()
    const slow = buf.subscribe()
    buf.offer('a', batch('a', 0, 10))
    buf.take(fast)
    let admitted = false
    void buf.offer('a', batch('a', 10, 3))?.then(() => (admitted = true))
    buf.take(slow)
    await tick()
    expect(admitted).toBe(true)
    expect(buf.stats().queued).toBe(3)
  })

  it('a slow subscription is not exhausted while it has logged batches to read', () => {
    const buf = new MergeBuffer({ capacity: 10 })
    buf.registerSource('a')
    const fast = buf.subscribe()
    const slow = buf.subscribe()
    buf.offer('a', batch('a', 0, 3))
    buf.take(fast)
    buf.close()
    expect(buf.exhausted(fast)).toBe(true)
    expect(buf.exhausted(slow)).toBe(false)
    expect(seqs(buf.take(slow))).toEqual([0, 1, 2])
    expect(buf.exhausted(slow)).toBe(true)
  })

  it('a subscription that left gets nothing, and takes nothing from the others', () => {
    const buf = new MergeBuffer({ capacity: 10 })
    buf.registerSource('a')
    const stays = buf.subscribe()
    const gone = buf.subscribe()
    buf.unsubscribe(gone)
    buf.unsubscribe(gone)
    buf.offer('a', batch('a', 0, 2))
    expect(buf.take(gone)).toBeUndefined()
    expect(seqs(buf.take(stays))).toEqual([0, 1])
  })

  it('close with blocked offers: counted, and the buffer still drains to drained()', () => {
    const buf = new MergeBuffer({ capacity: 4, policy: 'block' })
    buf.registerSource('a')
    const sub = buf.subscribe()
    buf.offer('a', batch('a', 0, 4))
    void buf.offer('a', batch('a', 4, 2))
    buf.close()
    buf.close()
    expect(buf.stats()).toMatchObject({ pendingOffers: 0, dropped: { shutdown: 2 } })
    buf.take(sub)
    expect(buf.drained()).toBe(true)
  })

  it('drop-oldest: what a slow subscription still holds cannot be evicted, and nothing empty is queued', () => {
    const buf = new MergeBuffer({ capacity: 10, policy: 'drop-oldest' })
    buf.registerSource('s')
    const fast = buf.subscribe()
    const slow = buf.subscribe()
    buf.offer('s', batch('s', 0, 10))
    buf.take(fast)
    buf.offer('s', batch('s', 10, 4))
    expect(buf.take(fast)).toBeUndefined()
    expect(seqs(buf.take(slow))).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9])
    expect(buf.take(slow)).toBeUndefined()
  })
})
