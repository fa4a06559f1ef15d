import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import type { TapioEvent } from '../../src/events/event.js'
import { EventSampler } from '../../src/inspector/sampler.js'
import { DEFAULT_RESTART_POLICY, decide, EMPTY_HISTORY, type FailureHistory, resolvePolicy, restartBudget } from '../../src/supervisor/policy.js'

function ev(source: string, seq: number): TapioEvent {
  return { id: `${source}-${seq}`, timestamp: String(BigInt(seq) * 1_000_000n), type: 't', source, severity: 'info', data: { seq } } as TapioEvent
}

describe('EventSampler (the cards\' live event samples)', () => {
  it('keeps the newest perSource events of each watched collector, in order, and nothing of others', () => {
    fc.assert(
      fc.property(fc.array(fc.array(fc.constantFrom('a', 'b', 'c'), { maxLength: 40 }), { maxLength: 20 }), (batches) => {
        const s = new EventSampler(5)
        const stopA = s.watch('a')
        s.watch('b')
        let seq = 0
        const all: TapioEvent[] = []
        for (const sources of batches) {
          const batch = sources.map((src) => ev(src, seq++))
          all.push(...batch)
          s.observe(batch)
        }
        for (const src of ['a', 'b']) {
          const want = all.filter((e) => e.source === src).slice(-5).map((e) => e.id)
          const got = s.take(src)
          expect(got.events.map((e) => e.id)).toEqual(want)
          expect(got.fresh).toBe(want.length > 0)
          // Taken: not fresh again until new events come.
          expect(s.take(src).fresh).toBe(false)
        }
        expect(s.take('c').events).toEqual([])
        stopA()
        expect(s.watching).toBe(1)
      }),
    )
  })

  it('does nothing while no one watches, and stops when the last watcher goes', () => {
    const s = new EventSampler(3)
    s.observe([ev('a', 1)])
    expect(s.take('a')).toEqual({ events: [], fresh: false })
    const one = s.watch('a')
    const two = s.watch('a')
    one()
    one()
    s.observe([ev('a', 2)])
    expect(s.take('a').events.map((e) => e.id)).toEqual(['a-2'])
    two()
    expect(s.watching).toBe(0)
    s.observe([ev('a', 3)])
    expect(s.take('a').events).toEqual([])
  })

  it('sends a preview of the data, cut to a bounded length', () => {
    const s = new EventSampler(1)
    s.watch('a')
    s.observe([{ ...ev('a', 1), data: { text: 'x'.repeat(10_000) } } as TapioEvent])
    const [e] = s.take('a').events
    expect(e?.data.length).toBe(240)
    expect(e?.data.endsWith('…')).toBe(true)
    expect(e?.data.startsWith('{"text":"xxx')).toBe(true)
  })
})

describe('restartBudget', () => {
  it('is maxRestarts minus the restarts decide() granted inside the window, at any time', () => {
    const policy = resolvePolicy({ maxRestarts: 3, withinMs: 10_000, backoff: { initialMs: 1, maxMs: 1, jitter: 0 } })
    fc.assert(
      fc.property(fc.array(fc.integer({ min: 0, max: 6_000 }), { minLength: 1, maxLength: 12 }), (gaps) => {
        let h: FailureHistory = EMPTY_HISTORY
        let now = 0
        for (const gap of gaps) {
          now += gap
          const before = restartBudget(policy, h, now)
          const d = decide(policy, h, 'failure', now)
          // A restart is granted exactly when budget is left.
          expect(d.action === 'restart').toBe(before.remaining > 0)
          h = d.history
          const after = restartBudget(policy, h, now)
          expect(after.used).toBeLessThanOrEqual(3)
          expect(after.used + after.remaining).toBe(3)
          if (d.action === 'restart') expect(after.remaining).toBe(before.remaining - 1)
        }
      }),
    )
  })

  it('reports the policy window and refills as restarts leave it', () => {
    const p = DEFAULT_RESTART_POLICY
    const h: FailureHistory = { restartTimes: [0, 1_000], consecutive: 2 }
    expect(restartBudget(p, h, 1_000)).toEqual({ maxRestarts: p.maxRestarts, withinMs: p.withinMs, used: 2, remaining: p.maxRestarts - 2 })
    expect(restartBudget(p, h, p.withinMs).remaining).toBe(p.maxRestarts - 1)
    expect(restartBudget(p, h, p.withinMs + 1_000).remaining).toBe(p.maxRestarts)
  })
})

describe('EventSampler cost ceiling', () => {
  it('looks at no more than 20,000 events per 100 ms, then samples again in the next window', () => {
    let now = 0
    const s = new EventSampler(2, () => now)
    s.watch('a')
    const batch = (src: string, n: number, from: number) => Array.from({ length: n }, (_, i) => ev(src, from + i))
    // 19,990 events of another collector use up the window's budget but for 10.
    s.observe(batch('b', 19_990, 0))
    s.observe([...batch('a', 5, 100_000), ...batch('b', 20, 200_000)])
    // Only the last 10 of that batch were looked at: none of them from "a".
    expect(s.take('a').fresh).toBe(false)
    s.observe(batch('a', 3, 300_000))
    expect(s.take('a').fresh).toBe(false)
    now = 100
    s.observe(batch('a', 3, 400_000))
    expect(s.take('a').events.map((e) => e.id)).toEqual(['a-400001', 'a-400002'])
  })
})
