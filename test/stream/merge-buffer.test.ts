import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import type { TapioEvent } from '../../src/events/event.js'
import { sumDrops } from '../../src/stream/counters.js'
import { MergeBuffer, type OverflowPolicy, type Subscription } from '../../src/stream/merge-buffer.js'

const SOURCES = ['a', 'b', 'c'] as const

function batch(source: string, from: number, n: number): TapioEvent[] {
  return Array.from({ length: n }, (_, i) => ({
    id: `${source}-${from + i}`,
    timestamp: '1',
    type: 'synthetic.tick',
    source,
    severity: 'info',
    data: { seq: from + i, generation: 1 },
  })) as TapioEvent[]
}

type Op =
  | { kind: 'offer'; source: number; n: number }
  | { kind: 'take'; sub: number }
  | { kind: 'subscribe' }
  | { kind: 'unsubscribe'; sub: number }

const opArb: fc.Arbitrary<Op> = fc.oneof(
  { weight: 5, arbitrary: fc.record({ kind: fc.constant('offer' as const), source: fc.integer({ min: 0, max: 2 }), n: fc.integer({ min: 1, max: 40 }) }) },
  { weight: 4, arbitrary: fc.record({ kind: fc.constant('take' as const), sub: fc.integer({ min: 0, max: 3 }) }) },
  { weight: 1, arbitrary: fc.constant({ kind: 'subscribe' as const }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('unsubscribe' as const), sub: fc.integer({ min: 0, max: 3 }) }) },
)

function checkConservation(buf: MergeBuffer): void {
  const s = buf.stats()
  expect(s.accepted).toBe(s.delivered + sumDrops(s.dropped) + s.queued)
  for (const src of buf.sources()) {
    const c = buf.sourceCounters(src)
    if (!c) continue
    expect(c.accepted).toBe(c.delivered + sumDrops(c.dropped) + c.buffered)
  }
}

describe('MergeBuffer', () => {
  for (const policy of ['block', 'drop-newest', 'drop-oldest', 'sample'] as OverflowPolicy[]) {
    it(`${policy}: conserves events, keeps per-source order and stays within capacity`, async () => {
      await fc.assert(
        fc.asyncProperty(fc.array(opArb, { maxLength: 120 }), fc.integer({ min: 1, max: 64 }), async (ops, capacity) => {
          const buf = new MergeBuffer({ capacity, policy, maxBatch: 16, sample: { highWaterMark: 0.5, keepOneIn: 3 } })
          for (const s of SOURCES) buf.registerSource(s)
          const next: number[] = [0, 0, 0]
          const subs: { sub: Subscription; lastSeq: Map<string, number> }[] = [{ sub: buf.subscribe(), lastSeq: new Map() }]
          const pending: Promise<void>[] = []
          for (const op of ops) {
            if (op.kind === 'offer') {
              const src = SOURCES[op.source] as string
              const p = buf.offer(src, batch(src, next[op.source] as number, op.n))
              next[op.source] = (next[op.source] as number) + op.n
              if (p) pending.push(p)
            } else if (op.kind === 'take') {
              const s = subs[op.sub % Math.max(1, subs.length)]
              if (!s) continue
              const b = buf.take(s.sub)
              for (const e of b ?? []) {
                const seq = (e.data as { seq: number }).seq
                const last = s.lastSeq.get(e.source) ?? -1
                expect(seq).toBeGreaterThan(last)
                s.lastSeq.set(e.source, seq)
              }
            } else if (op.kind === 'subscribe') {
              subs.push({ sub: buf.subscribe(), lastSeq: new Map() })
            } else if (subs.length > 1) {
              const [gone] = subs.splice(op.sub % subs.length, 1)
              if (gone) buf.unsubscribe(gone.sub)
            }
            checkConservation(buf)
            expect(buf.size).toBeLessThanOrEqual(capacity)
          }
          // Drain: every accepted event ends up delivered or counted dropped.
          buf.close()
          const reader = subs[0] as (typeof subs)[number]
          for (const s of subs.slice(1)) buf.unsubscribe(s.sub)
          while (buf.take(reader.sub)) {}
          await Promise.all(pending)
          const st = buf.stats()
          expect(st.queued).toBe(0)
          expect(st.accepted).toBe(st.delivered + sumDrops(st.dropped))
          if (policy === 'block') {
            // Backpressure never drops; whatever was still blocked at close is counted `shutdown`.
            expect(st.dropped.buffer_full + st.dropped.evicted + st.dropped.sampled).toBe(0)
          }
        }),
        { numRuns: 150 },
      )
    })
  }

  it('takes round-robin across sources, so a flooding source cannot starve a quiet one', () => {
    const buf = new MergeBuffer({ capacity: 100_000, policy: 'block', maxBatch: 10 })
    buf.registerSource('flood')
    buf.registerSource('quiet')
    const sub = buf.subscribe()
    for (let i = 0; i < 100; i++) buf.offer('flood', batch('flood', i * 10, 10))
    buf.offer('quiet', batch('quiet', 0, 10))
    const first = buf.take(sub)
    const second = buf.take(sub)
    expect(new Set([first?.[0]?.source, second?.[0]?.source])).toEqual(new Set(['flood', 'quiet']))
  })

  it('drop-newest lets a quiet source claim its fair share from a flooding one', () => {
    const buf = new MergeBuffer({ capacity: 100, policy: 'drop-newest' })
    buf.registerSource('flood')
    buf.registerSource('quiet')
    buf.offer('flood', batch('flood', 0, 100))
    buf.offer('quiet', batch('quiet', 0, 10))
    expect(buf.sourceCounters('quiet')?.buffered).toBe(10)
    expect(buf.sourceCounters('flood')?.dropped.buffer_full).toBe(10)
    expect(buf.size).toBe(100)
  })

  it('drop-oldest evicts from the largest lane', () => {
    const buf = new MergeBuffer({ capacity: 50, policy: 'drop-oldest' })
    buf.registerSource('flood')
    buf.registerSource('quiet')
    buf.offer('quiet', batch('quiet', 0, 5))
    buf.offer('flood', batch('flood', 0, 45))
    buf.offer('flood', batch('flood', 45, 20))
    expect(buf.sourceCounters('quiet')?.dropped.evicted).toBe(0)
    expect(buf.sourceCounters('flood')?.dropped.evicted).toBe(20)
    const sub = buf.subscribe()
    const got: TapioEvent[] = []
    for (let b = buf.take(sub); b; b = buf.take(sub)) got.push(...b)
    const flood = got.filter((e) => e.source === 'flood').map((e) => (e.data as { seq: number }).seq)
    expect(flood[0]).toBe(20)
    expect(flood.at(-1)).toBe(64)
  })

  it('sample keeps 1 in N above the high-water mark and counts the rest', () => {
    const buf = new MergeBuffer({ capacity: 100, policy: 'sample', sample: { highWaterMark: 0.5, keepOneIn: 10 } })
    buf.registerSource('s')
    buf.offer('s', batch('s', 0, 50))
    buf.offer('s', batch('s', 50, 40))
    expect(buf.sourceCounters('s')?.buffered).toBe(54)
    expect(buf.sourceCounters('s')?.dropped.sampled).toBe(36)
  })

  it('block: a blocked offer is admitted once a consumer makes room, in FIFO order', async () => {
    const buf = new MergeBuffer({ capacity: 10, policy: 'block' })
    buf.registerSource('a')
    buf.registerSource('b')
    const sub = buf.subscribe()
    expect(buf.offer('a', batch('a', 0, 10))).toBeUndefined()
    const pa = buf.offer('a', batch('a', 10, 5))
    const pb = buf.offer('b', batch('b', 0, 5))
    expect(pa).toBeInstanceOf(Promise)
    expect(pb).toBeInstanceOf(Promise)
    expect(buf.stats().pendingOffers).toBe(2)
    buf.take(sub)
    await Promise.all([pa, pb])
    expect(buf.stats().pendingOffers).toBe(0)
    expect(buf.stats().queued).toBe(10)
  })

  it('several subscriptions each receive every event; the slowest holds capacity', () => {
    const buf = new MergeBuffer({ capacity: 20, policy: 'drop-newest' })
    buf.registerSource('a')
    const fast = buf.subscribe()
    const slow = buf.subscribe()
    buf.offer('a', batch('a', 0, 10))
    expect(buf.take(fast)?.length).toBe(10)
    expect(buf.size).toBe(10)
    buf.offer('a', batch('a', 10, 15))
    expect(buf.sourceCounters('a')?.dropped.buffer_full).toBe(5)
    expect(buf.take(slow)?.length).toBe(10)
    expect(buf.take(slow)?.length).toBe(10)
    expect(buf.take(fast)?.length).toBe(10)
    expect(buf.size).toBe(0)
  })
})
