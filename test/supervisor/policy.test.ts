import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { backoffDelay, DEFAULT_RESTART_POLICY, decide, EMPTY_HISTORY, type FailureHistory, markRunning, resolvePolicy } from '../../src/supervisor/policy.js'
import { siblingsToRestart } from '../../src/supervisor/strategy.js'

const policyArb = fc.record({
  maxRestarts: fc.integer({ min: 0, max: 10 }),
  withinMs: fc.integer({ min: 1, max: 10_000 }),
  initialMs: fc.integer({ min: 0, max: 1000 }),
  maxMs: fc.integer({ min: 0, max: 60_000 }),
  factor: fc.double({ min: 1, max: 4, noNaN: true }),
  jitter: fc.double({ min: 0, max: 0.99, noNaN: true }),
})

describe('restart policy', () => {
  it('never grants more than maxRestarts within any window', () => {
    fc.assert(
      fc.property(policyArb, fc.array(fc.integer({ min: 0, max: 5000 }), { maxLength: 60 }), fc.double({ min: 0, max: 1, noNaN: true }), (p, gaps, r) => {
        const policy = resolvePolicy({ maxRestarts: p.maxRestarts, withinMs: p.withinMs, backoff: { initialMs: p.initialMs, maxMs: p.maxMs, factor: p.factor, jitter: p.jitter } })
        let history: FailureHistory = EMPTY_HISTORY
        let now = 0
        const granted: number[] = []
        for (const gap of gaps) {
          now += gap
          const d = decide(policy, history, 'failure', now, () => r)
          history = d.history
          if (d.action === 'restart') {
            granted.push(now)
            expect(d.delayMs).toBeGreaterThanOrEqual(0)
            expect(d.delayMs).toBeLessThanOrEqual(policy.backoff.maxMs)
          } else {
            expect(d.action).toBe('give-up')
          }
          const inWindow = granted.filter((t) => now - t < policy.withinMs)
          expect(inWindow.length).toBeLessThanOrEqual(policy.maxRestarts)
        }
      }),
      { numRuns: 300 },
    )
  })

  it('backoff grows exponentially within the jitter band and is capped', () => {
    fc.assert(
      fc.property(policyArb, fc.integer({ min: 1, max: 30 }), fc.double({ min: 0, max: 1, noNaN: true }), (p, n, r) => {
        const b = { initialMs: p.initialMs, maxMs: p.maxMs, factor: p.factor, jitter: p.jitter }
        const raw = Math.min(b.maxMs, b.initialMs * b.factor ** (n - 1))
        const d = backoffDelay(b, n, () => r)
        expect(d).toBeLessThanOrEqual(b.maxMs)
        expect(d).toBeGreaterThanOrEqual(Math.floor(raw * (1 - b.jitter)) - 1)
        expect(d).toBeLessThanOrEqual(Math.ceil(raw * (1 + b.jitter)) + 1)
      }),
    )
  })

  it('resets the backoff after a stable period', () => {
    const policy = resolvePolicy({ backoff: { initialMs: 100, factor: 2, jitter: 0, maxMs: 10_000 }, resetAfterMs: 1000, maxRestarts: 100 })
    let h = EMPTY_HISTORY
    const delays: number[] = []
    for (let i = 0; i < 4; i++) {
      const d = decide(policy, h, 'failure', i * 10, () => 0.5)
      if (d.action !== 'restart') throw new Error('expected restart')
      delays.push(d.delayMs)
      h = d.history
    }
    expect(delays).toEqual([100, 200, 400, 800])
    h = markRunning(h, 100)
    const after = decide(policy, h, 'failure', 5000, () => 0.5)
    expect(after.action === 'restart' && after.delayMs).toBe(100)
  })

  it('applies restart types: temporary never, transient only after failures', () => {
    const temporary = resolvePolicy({ restart: 'temporary' })
    const transient = resolvePolicy({ restart: 'transient' })
    expect(decide(temporary, EMPTY_HISTORY, 'failure', 0).action).toBe('stop')
    expect(decide(transient, EMPTY_HISTORY, 'normal', 0).action).toBe('stop')
    expect(decide(transient, EMPTY_HISTORY, 'failure', 0).action).toBe('restart')
    expect(decide(DEFAULT_RESTART_POLICY, EMPTY_HISTORY, 'normal', 0).action).toBe('restart')
  })

  it('escalates instead of giving up when asked to', () => {
    const policy = resolvePolicy({ maxRestarts: 1, onExceeded: 'escalate' })
    const first = decide(policy, EMPTY_HISTORY, 'failure', 0)
    expect(first.action).toBe('restart')
    expect(decide(policy, first.history, 'failure', 1).action).toBe('escalate')
  })

  it('rejects invalid policies with the field named', () => {
    expect(() => resolvePolicy({ backoff: { jitter: 2 } })).toThrow(/backoff.jitter/)
    expect(() => resolvePolicy({ startAttempts: 0 })).toThrow(/startAttempts/)
    expect(() => resolvePolicy({ restart: 'sometimes' as never })).toThrow(/restart: expected/)
  })

  it('chooses siblings by strategy', () => {
    const order = ['a', 'b', 'c', 'd']
    expect(siblingsToRestart('one_for_one', order, 'b')).toEqual([])
    expect(siblingsToRestart('one_for_all', order, 'b')).toEqual(['a', 'c', 'd'])
    expect(siblingsToRestart('rest_for_one', order, 'b')).toEqual(['c', 'd'])
  })
})
