import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { DROP_REASONS, type DropCounts, emptyDropCounts, emptySourceCounters, sumDrops } from '../../src/stream/counters.js'

describe('drop counters', () => {
  it('DROP_REASONS names every reason a drop count has, each once', () => {
    expect([...DROP_REASONS].sort()).toEqual(Object.keys(emptyDropCounts()).sort())
    expect(new Set(DROP_REASONS).size).toBe(DROP_REASONS.length)
  })

  it('start at zero', () => {
    expect(Object.values(emptyDropCounts()).every((n) => n === 0)).toBe(true)
    expect(emptySourceCounters()).toEqual({ accepted: 0, delivered: 0, dropped: emptyDropCounts(), buffered: 0, lastEventAt: null })
    // Fresh objects: counting into one does not touch another.
    const a = emptySourceCounters()
    a.dropped.evicted += 1
    expect(emptySourceCounters().dropped.evicted).toBe(0)
  })

  it('sumDrops adds every reason', () => {
    const counts = fc.record(Object.fromEntries(DROP_REASONS.map((r) => [r, fc.nat(1_000_000)])) as Record<keyof DropCounts, fc.Arbitrary<number>>)
    fc.assert(
      fc.property(counts, (d) => {
        expect(sumDrops(d)).toBe(DROP_REASONS.reduce((n, r) => n + d[r], 0))
      }),
    )
    expect(sumDrops({ buffer_full: 1, evicted: 10, sampled: 100, shutdown: 1000, invalid: 10000 })).toBe(11111)
  })
})
