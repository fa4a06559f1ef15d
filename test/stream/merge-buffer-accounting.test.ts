import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { ManualClock } from '../../src/core/clock.js'
import type { TapioEvent } from '../../src/events/event.js'
import { sumDrops } from '../../src/stream/counters.js'
import { COMPACT_AFTER } from '../../src/stream/lanes.js'
import { MergeBuffer, type OverflowPolicy, type Subscription } from '../../src/stream/merge-buffer.js'

function batch(source: string, from: number, n: number): TapioEvent[] {
  return Array.from({ length: n }, (_, i) => ({
    id: `${source}-${from + i}`,
    timestamp: '1',
    type: 'synthetic.tick',
    source,
    severity: 'info',
    data: { seq: from + i },
  })) as TapioEvent[]
}

const seqs = (b: readonly TapioEvent[] | undefined) => (b ?? []).map((e) => (e.data as { seq: number }).seq)

function drainAll(buf: MergeBuffer, sub: Subscription): TapioEvent[] {
  const out: TapioEvent[] = []
  for (let b = buf.take(sub); b; b = buf.take(sub)) out.push(...b)
  return out
}

/** Lets resolved promise callbacks run. */
const tick = () => new Promise<void>((r) => setImmediate(r))

type Op =
  | { kind: 'offer'; source: number; n: number }
  | { kind: 'take'; sub: number }
  | { kind: 'subscribe' }
  | { kind: 'unsubscribe'; sub: number }
  | { kind: 'unregister'; source: number }
  | { kind: 'register'; source: number }
  | { kind: 'cancel'; source: number }

const SOURCES = ['a', 'b', 'c'] as const

const opArb: fc.Arbitrary<Op> = fc.oneof(
  { weight: 6, arbitrary: fc.record({ kind: fc.constant('offer' as const), source: fc.integer({ min: 0, max: 2 }), n: fc.integer({ min: 1, max: 60 }) }) },
  { weight: 5, arbitrary: fc.record({ kind: fc.constant('take' as const), sub: fc.nat(3) }) },
  { weight: 1, arbitrary: fc.constant({ kind: 'subscribe' as const }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('unsubscribe' as const), sub: fc.nat(3) }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('unregister' as const), source: fc.integer({ min: 0, max: 2 }) }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('register' as const), source: fc.integer({ min: 0, max: 2 }) }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('cancel' as const), source: fc.integer({ min: 0, max: 2 }) }) },
)

describe('MergeBuffer accounting (every offered event is accepted or counted)', () => {
  for (const policy of ['block', 'drop-newest', 'drop-oldest', 'sample'] as OverflowPolicy[]) {
    it(`${policy}: offered = accepted; every blocked offer completes or is counted by close; batches <= maxBatch`, async () => {
      await fc.assert(
        fc.asyncProperty(
          fc.array(opArb, { maxLength: 150 }),
          fc.integer({ min: 1, max: 48 }),
          fc.integer({ min: 1, max: 20 }),
          fc.boolean(),
          async (ops, capacity, maxBatch, abandon) => {
            const buf = new MergeBuffer({ capacity, policy, maxBatch, sample: { highWaterMark: 0.5, keepOneIn: 3 } })
            const registered = new Set<string>()
            for (const s of SOURCES) {
              buf.registerSource(s)
              registered.add(s)
            }
            let offered = 0
            const next = [0, 0, 0]
            const subs: Subscription[] = [buf.subscribe()]
            const blocked: { done: boolean }[] = []
            let delivered = 0
            for (const op of ops) {
              const src = SOURCES[op.kind === 'offer' || op.kind === 'unregister' || op.kind === 'register' || op.kind === 'cancel' ? op.source : 0] as string
              if (op.kind === 'offer') {
                if (!registered.has(src)) continue
                const p = buf.offer(src, batch(src, next[op.source] as number, op.n))
                next[op.source] = (next[op.source] as number) + op.n
                offered += op.n
                if (p) {
                  const state = { done: false }
                  blocked.push(state)
                  void p.then(() => (state.done = true))
                }
              } else if (op.kind === 'take') {
                const sub = subs[op.sub % subs.length]
                if (!sub) continue
                const b = buf.take(sub)
                if (b) {
                  expect(b.length).toBeGreaterThan(0)
                  expect(b.length).toBeLessThanOrEqual(maxBatch)
                  if (sub === subs[0]) delivered += b.length
                }
              } else if (op.kind === 'subscribe') {
                subs.push(buf.subscribe())
              } else if (op.kind === 'unsubscribe') {
                if (subs.length > 1) buf.unsubscribe(subs.splice(1 + (op.sub % (subs.length - 1)), 1)[0] as Subscription)
              } else if (op.kind === 'unregister') {
                buf.unregisterSource(src)
                registered.delete(src)
              } else if (op.kind === 'register') {
                buf.registerSource(src)
                registered.add(src)
              } else {
                buf.cancelPending(src)
              }
              const st = buf.stats()
              expect(st.size).toBeLessThanOrEqual(capacity)
              // accepted = delivered + dropped + queued, and the blocked rest is all that is not yet accepted.
              expect(st.accepted).toBe(st.delivered + sumDrops(st.dropped) + st.queued)
              if (policy !== 'block') expect(st.accepted).toBe(offered)
              else expect(st.accepted).toBeLessThanOrEqual(offered)
            }
            await tick()
            if (abandon) buf.abandon()
            else buf.close()
            await tick()
            // Every blocked offer completed: admitted, or counted `shutdown` at close.
            expect(blocked.filter((b) => !b.done)).toEqual([])
            for (const sub of subs.slice(1)) buf.unsubscribe(sub)
            delivered += drainAll(buf, subs[0] as Subscription).length
            const st = buf.stats()
            expect(st.accepted, 'every offered event accepted or counted').toBe(offered)
            expect(st.queued).toBe(0)
            expect(st.accepted).toBe(st.delivered + sumDrops(st.dropped))
            expect(delivered).toBeLessThanOrEqual(st.delivered)
            expect(buf.drained()).toBe(true)
            expect(buf.exhausted(subs[0] as Subscription)).toBe(true)
            if (policy === 'block') expect(st.dropped.buffer_full + st.dropped.evicted + st.dropped.sampled).toBe(0)
            // Unregistered lanes are gone once drained.
            expect(buf.sources().sort()).toEqual([...registered].sort())
          },
        ),
        { numRuns: 300 },
      )
    })
  }
})

describe('MergeBuffer block: batches larger than the capacity', () => {
  it('25 offered into capacity 10 are all accepted and delivered in order, in capacity-sized pieces', async () => {
    const buf = new MergeBuffer({ capacity: 10, policy: 'block', maxBatch: 100 })
    buf.registerSource('a')
    const sub = buf.subscribe()
    let done = false
    void buf.offer('a', batch('a', 0, 25))?.then(() => (done = true))
    expect(buf.stats().accepted).toBe(10)
    const got: number[] = []
    for (let i = 0; i < 5 && !done; i++) {
      got.push(...seqs(buf.take(sub)))
      await tick()
    }
    expect(done).toBe(true)
    got.push(...seqs(buf.take(sub)))
    expect(got).toEqual(Array.from({ length: 25 }, (_, i) => i))
    expect(buf.stats()).toMatchObject({ accepted: 25, delivered: 25, queued: 0, pendingOffers: 0 })
  })

  it('closing mid-way counts the part not admitted as shutdown, and the producer goes on', async () => {
    const buf = new MergeBuffer({ capacity: 10, policy: 'block' })
    buf.registerSource('a')
    const sub = buf.subscribe()
    const p = buf.offer('a', batch('a', 0, 25))
    buf.take(sub)
    expect(buf.stats().accepted).toBe(20)
    buf.close()
    await p
    const st = buf.stats()
    expect(st.accepted).toBe(25)
    expect(st.dropped.shutdown).toBe(5)
    expect(drainAll(buf, sub).length).toBe(10)
  })

  it('an interrupted pump (cancelPending) or a removed source frees its blocked offers, counted', async () => {
    const buf = new MergeBuffer({ capacity: 10, policy: 'block' })
    buf.registerSource('a')
    buf.registerSource('b')
    const sub = buf.subscribe()
    const big = buf.offer('a', batch('a', 0, 25))
    const small = buf.offer('b', batch('b', 0, 4))
    expect(buf.stats().pendingOffers).toBe(2)
    buf.cancelPending('a')
    await big
    expect(buf.sourceCounters('a')).toMatchObject({ accepted: 25, buffered: 10, dropped: { shutdown: 15 } })
    expect(buf.sourceCounters('b')).toMatchObject({ accepted: 0 })
    // b was queued behind a's offer: with a's withdrawn it goes in as soon as there is room.
    buf.take(sub)
    await small
    expect(buf.sourceCounters('b')).toMatchObject({ accepted: 4 })
    drainAll(buf, sub)
    expect(buf.sourceCounters('b')).toMatchObject({ accepted: 4, delivered: 4 })
    const blocked = buf.offer('b', batch('b', 4, 20))
    buf.unregisterSource('b')
    await blocked
    // Its first piece was admitted and still drains; the rest counts `shutdown`; then the lane goes.
    expect(buf.sourceCounters('b')).toMatchObject({ accepted: 24, buffered: 10, dropped: { shutdown: 10 } })
    expect(buf.sources()).toContain('b')
    drainAll(buf, sub)
    expect(buf.sources()).not.toContain('b')
    const st = buf.stats()
    expect(st.accepted).toBe(st.delivered + sumDrops(st.dropped) + st.queued)
    expect(st.accepted).toBe(49)
  })
})

describe('MergeBuffer policies', () => {
  it('drop-oldest evicts from the largest lane whatever the registration order', () => {
    fc.assert(
      fc.property(fc.shuffledSubarray(['p', 'q', 'r'], { minLength: 3, maxLength: 3 }), fc.integer({ min: 0, max: 2 }), fc.integer({ min: 1, max: 10 }), (order, bigIndex, extra) => {
        const buf = new MergeBuffer({ capacity: 60, policy: 'drop-oldest' })
        for (const s of order) buf.registerSource(s)
        const big = order[bigIndex] as string
        for (const s of order) buf.offer(s, batch(s, 0, s === big ? 30 : 15))
        const newcomer = order[(bigIndex + 1) % 3] as string
        buf.offer(newcomer, batch(newcomer, 15, extra))
        expect(buf.sourceCounters(big)?.dropped.evicted).toBe(extra)
        for (const s of order) if (s !== big) expect(buf.sourceCounters(s)?.dropped.evicted).toBe(0)
        // The oldest go first.
        const sub = buf.subscribe()
        const left = drainAll(buf, sub).filter((e) => e.source === big)
        expect(seqs(left)[0]).toBe(extra)
      }),
    )
  })

  it('drop-newest: a source below its fair share takes room from the largest lane, never below its own size', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 1 }), fc.integer({ min: 1, max: 60 }), (first, quietN) => {
        const buf = new MergeBuffer({ capacity: 100, policy: 'drop-newest' })
        const names = first === 0 ? ['flood', 'quiet'] : ['quiet', 'flood']
        for (const s of names) buf.registerSource(s)
        buf.offer('flood', batch('flood', 0, 100))
        buf.offer('quiet', batch('quiet', 0, quietN))
        // Fair share: 100 / 2 = 50 events each.
        const kept = Math.min(quietN, 50)
        expect(buf.sourceCounters('quiet')).toMatchObject({ buffered: kept, dropped: { buffer_full: quietN - kept } })
        expect(buf.sourceCounters('flood')).toMatchObject({ buffered: 100 - kept, dropped: { buffer_full: kept } })
        // The flood keeps its oldest events.
        const sub = buf.subscribe()
        const flood = drainAll(buf, sub).filter((e) => e.source === 'flood')
        expect(seqs(flood)).toEqual(Array.from({ length: 100 - kept }, (_, i) => i))
      }),
    )
  })

  it('drop-newest: a source at or above its fair share claims nothing', () => {
    const buf = new MergeBuffer({ capacity: 10, policy: 'drop-newest' })
    buf.registerSource('a')
    buf.registerSource('b')
    buf.offer('a', batch('a', 0, 5))
    buf.offer('b', batch('b', 0, 5))
    buf.offer('b', batch('b', 5, 3))
    expect(buf.sourceCounters('a')).toMatchObject({ buffered: 5, dropped: { buffer_full: 0 } })
    expect(buf.sourceCounters('b')).toMatchObject({ buffered: 5, dropped: { buffer_full: 3 } })
  })

  it('drop-newest: a source at its fair share claims nothing, also when another lane is larger', () => {
    const buf = new MergeBuffer({ capacity: 12, policy: 'drop-newest' })
    for (const n of ['a', 'b', 'c']) buf.registerSource(n)
    buf.offer('a', batch('a', 0, 7))
    buf.offer('b', batch('b', 0, 4))
    buf.offer('c', batch('c', 0, 1))
    // Full; b holds its share (12 / 3 = 4): its 2 more are dropped, a keeps its 7.
    buf.offer('b', batch('b', 4, 2))
    expect(buf.sourceCounters('a')).toMatchObject({ buffered: 7, dropped: { buffer_full: 0 } })
    expect(buf.sourceCounters('b')).toMatchObject({ buffered: 4, dropped: { buffer_full: 2 } })
  })

  it('sample: starts exactly at the high-water mark, keeps 1 in N per source', () => {
    for (const fill of [79, 80]) {
      const buf = new MergeBuffer({ capacity: 100, policy: 'sample', sample: { highWaterMark: 0.8, keepOneIn: 10 } })
      buf.registerSource('s')
      buf.registerSource('t')
      buf.offer('s', batch('s', 0, fill))
      buf.offer('t', batch('t', 0, 20))
      const t = buf.sourceCounters('t')
      if (fill < 80) expect(t).toMatchObject({ buffered: 20 - (fill + 20 - 100 > 0 ? fill + 20 - 100 : 0), dropped: { sampled: 0 } })
      else expect(t).toMatchObject({ buffered: 2, dropped: { sampled: 18 } })
    }
  })

  it('sample with keepOneIn 1 never samples; when still full, drops the newest', () => {
    const buf = new MergeBuffer({ capacity: 10, policy: 'sample', sample: { highWaterMark: 0, keepOneIn: 1 } })
    buf.registerSource('s')
    buf.offer('s', batch('s', 0, 15))
    expect(buf.sourceCounters('s')).toMatchObject({ buffered: 10, dropped: { sampled: 0, buffer_full: 5 } })
  })

  it('drop-oldest: a batch larger than the capacity keeps its newest events', () => {
    const buf = new MergeBuffer({ capacity: 10, policy: 'drop-oldest' })
    buf.registerSource('s')
    buf.offer('s', batch('s', 0, 25))
    const sub = buf.subscribe()
    expect(seqs(drainAll(buf, sub))).toEqual(Array.from({ length: 10 }, (_, i) => 15 + i))
    expect(buf.sourceCounters('s')?.dropped.evicted).toBe(15)
  })

  it('drop-oldest: unread events of a slow subscription cannot be evicted; the newcomer is dropped', () => {
    const buf = new MergeBuffer({ capacity: 10, policy: 'drop-oldest' })
    buf.registerSource('s')
    const fast = buf.subscribe()
    buf.subscribe()
    buf.offer('s', batch('s', 0, 10))
    buf.take(fast)
    buf.offer('s', batch('s', 10, 4))
    expect(buf.sourceCounters('s')).toMatchObject({ accepted: 14, buffered: 0, dropped: { buffer_full: 4 } })
  })
})

describe('MergeBuffer lanes and subscriptions', () => {
  it(`compacts a lane after ${COMPACT_AFTER} batches without re-delivering or losing any`, () => {
    const buf = new MergeBuffer({ capacity: 10_000, policy: 'block' })
    buf.registerSource('a')
    const sub = buf.subscribe()
    for (let i = 0; i < 300; i++) buf.offer('a', batch('a', i, 1))
    const got: number[] = []
    for (let i = 0; i < 100; i++) got.push(...seqs(buf.take(sub)))
    for (let i = 300; i < 400; i++) buf.offer('a', batch('a', i, 1))
    got.push(...seqs(drainAll(buf, sub)))
    expect(got).toEqual(Array.from({ length: 400 }, (_, i) => i))
  })

  it('splits batches larger than maxBatch in order', () => {
    const buf = new MergeBuffer({ capacity: 100, policy: 'block', maxBatch: 4 })
    buf.registerSource('a')
    const sub = buf.subscribe()
    buf.offer('a', batch('a', 0, 10))
    expect([seqs(buf.take(sub)), seqs(buf.take(sub)), seqs(buf.take(sub))]).toEqual([[0, 1, 2, 3], [4, 5, 6, 7], [8, 9]])
  })

  it('unsubscribing the slow subscription frees its unread batches: a blocked offer goes in', async () => {
    const buf = new MergeBuffer({ capacity: 10, policy: 'block' })
    buf.registerSource('a')
    const fast = buf.subscribe()
    const slow = buf.subscribe()
    buf.offer('a', batch('a', 0, 10))
    buf.take(fast)
    let admitted = false
    void buf.offer('a', batch('a', 10, 5))?.then(() => (admitted = true))
    await tick()
    expect(admitted).toBe(false)
    buf.unsubscribe(slow)
    await tick()
    expect(admitted).toBe(true)
    expect(seqs(buf.take(fast))).toEqual([10, 11, 12, 13, 14])
  })

  it('a subscription gets only what was delivered after it joined; an unknown one gets nothing', () => {
    const buf = new MergeBuffer({ capacity: 100, policy: 'block' })
    buf.registerSource('a')
    const first = buf.subscribe()
    buf.offer('a', batch('a', 0, 3))
    buf.take(first)
    const second = buf.subscribe()
    buf.offer('a', batch('a', 3, 3))
    expect(seqs(buf.take(second))).toEqual([3, 4, 5])
    expect(seqs(buf.take(first))).toEqual([3, 4, 5])
    expect(first.received).toBe(6)
    expect(second.received).toBe(3)
    buf.unsubscribe(second)
    expect(buf.take(second)).toBeUndefined()
    expect(buf.exhausted(second)).toBe(true)
  })

  it('a source registered again while its old lane drains starts fresh counters; the old events still flow', () => {
    const buf = new MergeBuffer({ capacity: 100, policy: 'block' })
    buf.registerSource('a')
    buf.offer('a', batch('a', 0, 5))
    buf.unregisterSource('a')
    buf.registerSource('a')
    expect(buf.sourceCounters('a')).toMatchObject({ accepted: 0, buffered: 0 })
    buf.offer('a', batch('a', 100, 2))
    const sub = buf.subscribe()
    expect(drainAll(buf, sub).length).toBe(7)
    expect(buf.sourceCounters('a')).toMatchObject({ accepted: 2, delivered: 2 })
    expect(buf.sources()).toEqual(['a'])
    expect(buf.stats()).toMatchObject({ accepted: 7, delivered: 7 })
  })

  it('stamps lastEventAt from its clock; rejects unknown sources and bad options by name', () => {
    const clock = new ManualClock(1234)
    const buf = new MergeBuffer({ capacity: 5 }, clock)
    buf.registerSource('a')
    buf.offer('a', batch('a', 0, 1))
    expect(buf.sourceCounters('a')?.lastEventAt).toBe(1234)
    expect(buf.offer('a', [])).toBeUndefined()
    expect(() => buf.offer('nope', batch('x', 0, 1))).toThrow(/unknown source "nope"/)
    expect(buf.sourceCounters('nope')).toBeUndefined()
    expect(() => new MergeBuffer({ capacity: 0 })).toThrow(/capacity/)
    expect(() => new MergeBuffer({ capacity: 1.5 })).toThrow(/capacity/)
    expect(() => new MergeBuffer({ maxBatch: 0 })).toThrow(/maxBatch/)
    expect(() => new MergeBuffer({ policy: 'lossy' as never })).toThrow('buffer policy: expected one of block, drop-newest, drop-oldest, sample, got lossy')
    // The bounds of the high-water mark are allowed.
    for (const highWaterMark of [0, 1]) expect(new MergeBuffer({ sample: { highWaterMark, keepOneIn: 2 } }).stats().capacity).toBeGreaterThan(0)
    expect(() => new MergeBuffer({ sample: { highWaterMark: 1.5, keepOneIn: 2 } })).toThrow(/highWaterMark/)
    expect(() => new MergeBuffer({ sample: { highWaterMark: -0.1, keepOneIn: 2 } })).toThrow(/highWaterMark/)
    expect(() => new MergeBuffer({ sample: { highWaterMark: 0.5, keepOneIn: 0 } })).toThrow(/keepOneIn/)
    expect(() => new MergeBuffer({ sample: { highWaterMark: 0.5, keepOneIn: 2.5 } })).toThrow(/keepOneIn/)
    buf.countInvalid('a', 3)
    buf.countInvalid('a', 0)
    buf.countInvalid('nope', 3)
    expect(buf.sourceCounters('a')).toMatchObject({ accepted: 4, dropped: { invalid: 3 } })
  })
})

describe('MergeBuffer drain and abandon (what CollectorManager.stop() uses)', () => {
  it('whenDrainedOrUnread resolves once every subscription has read everything', async () => {
    const buf = new MergeBuffer({ capacity: 100, policy: 'block' })
    buf.registerSource('a')
    const one = buf.subscribe()
    const two = buf.subscribe()
    buf.offer('a', batch('a', 0, 5))
    buf.close()
    let drained = false
    void buf.whenDrainedOrUnread().then(() => (drained = true))
    buf.take(one)
    await tick()
    expect(drained).toBe(false)
    expect(buf.drained()).toBe(false)
    buf.take(two)
    await tick()
    expect(drained).toBe(true)
    expect(buf.exhausted(one)).toBe(true)
  })

  it('whenDrainedOrUnread resolves when the last subscription leaves, and at once when already drained', async () => {
    const buf = new MergeBuffer({ capacity: 100, policy: 'block' })
    buf.registerSource('a')
    const sub = buf.subscribe()
    buf.offer('a', batch('a', 0, 5))
    let done = false
    void buf.whenDrainedOrUnread().then(() => (done = true))
    await tick()
    expect(done).toBe(false)
    buf.unsubscribe(sub)
    await tick()
    expect(done).toBe(true)
    const empty = new MergeBuffer()
    await empty.whenDrainedOrUnread()
  })

  it('abandon counts everything queued and unread as shutdown, wakes waiting consumers, completes them', async () => {
    const buf = new MergeBuffer({ capacity: 100, policy: 'block' })
    buf.registerSource('a')
    buf.registerSource('b')
    const fast = buf.subscribe()
    const slow = buf.subscribe()
    buf.offer('a', batch('a', 0, 5))
    buf.offer('b', batch('b', 0, 7))
    buf.take(fast)
    buf.unregisterSource('b')
    let woken = false
    void buf.whenData().then(() => (woken = true))
    let drained = false
    void buf.whenDrainedOrUnread().then(() => (drained = true))
    const n = buf.abandon()
    expect(n).toBe(7)
    await tick()
    expect(woken).toBe(true)
    expect(drained).toBe(true)
    expect(buf.closed).toBe(true)
    expect(buf.take(slow)).toBeUndefined()
    expect(buf.exhausted(slow)).toBe(true)
    expect(buf.exhausted(fast)).toBe(true)
    expect(buf.sources()).toEqual(['a'])
    const st = buf.stats()
    expect(st).toMatchObject({ accepted: 12, queued: 0, size: 0 })
    expect(st.dropped.shutdown).toBe(7)
    expect(st.accepted).toBe(st.delivered + sumDrops(st.dropped))
    // After close, offers are counted at once.
    expect(buf.offer('a', batch('a', 5, 2))).toBeUndefined()
    expect(buf.sourceCounters('a')).toMatchObject({ accepted: 7, dropped: { shutdown: 2 } })
  })
})
