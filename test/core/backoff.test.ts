import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { Backoff, backoffDelay, DEFAULT_BACKOFF } from '../../src/core/backoff.js'

/** Uniform draws in [0, 1): fc.double (and a biased fc.integer) favour tiny values; an unbiased integer, scaled, does not. */
const uniform = fc.noBias(fc.integer({ min: 0, max: 2 ** 24 - 1 })).map((i) => i / 2 ** 24)

const policyArb = fc.record({
  initialMs: fc.integer({ min: 1, max: 5000 }),
  maxMs: fc.integer({ min: 1, max: 120_000 }),
  factor: fc.integer({ min: 100, max: 400 }).map((f) => f / 100),
  jitter: fc.integer({ min: 0, max: 99 }).map((j) => j / 100),
})

describe('backoffDelay', () => {
  it('is the exponential value capped at maxMs, scaled by 1 + jitter * (2r - 1), never above maxMs', () => {
    fc.assert(
      fc.property(policyArb, fc.integer({ min: 1, max: 40 }), uniform, (b, n, r) => {
        const raw = Math.min(b.maxMs, b.initialMs * b.factor ** (n - 1))
        const expected = Math.max(0, Math.min(b.maxMs, Math.round(raw * (1 + b.jitter * (2 * r - 1)))))
        expect(backoffDelay(b, n, () => r)).toBe(expected)
      }),
      { numRuns: 2000 },
    )
  })

  it('jitter spreads both ways: over uniform draws, about half the delays fall below the raw value', () => {
    const b = { initialMs: 1000, maxMs: 1_000_000, factor: 2, jitter: 0.5 }
    const draws = fc.sample(uniform, { numRuns: 4000, seed: 42 })
    // The draws themselves are uniform (the check fc.double({min:0,max:1}) would fail).
    expect(draws.filter((r) => r < 0.25).length / draws.length).toBeGreaterThan(0.2)
    expect(draws.filter((r) => r < 1e-6).length).toBeLessThan(5)
    const delays = draws.map((r) => backoffDelay(b, 1, () => r))
    const below = delays.filter((d) => d < 1000).length / delays.length
    expect(below).toBeGreaterThan(0.45)
    expect(below).toBeLessThan(0.55)
    expect(Math.min(...delays)).toBeGreaterThanOrEqual(500)
    expect(Math.max(...delays)).toBeLessThanOrEqual(1500)
    expect(Math.min(...delays)).toBeLessThan(520)
    expect(Math.max(...delays)).toBeGreaterThan(1480)
  })

  it('grows by factor per attempt without jitter; attempts below 1 count as the first', () => {
    const b = { initialMs: 100, maxMs: 1000, factor: 2, jitter: 0 }
    expect([0, 1, 2, 3, 4, 5, 6].map((n) => backoffDelay(b, n))).toEqual([100, 100, 200, 400, 800, 1000, 1000])
    expect(backoffDelay(b, 1e9)).toBe(1000)
  })
})

describe('Backoff', () => {
  it('counts consecutive failures, returns the growing delay, resets on success', () => {
    const b = new Backoff({ initialMs: 10, maxMs: 1000, factor: 3, jitter: 0 })
    expect(b.attempts).toBe(0)
    expect([b.fail(), b.fail(), b.fail()]).toEqual([10, 30, 90])
    expect(b.attempts).toBe(3)
    b.succeed()
    expect(b.attempts).toBe(0)
    expect(b.fail()).toBe(10)
  })

  it('uses its random source and the default policy values', () => {
    const b = new Backoff(DEFAULT_BACKOFF, () => 1)
    expect(b.fail()).toBe(Math.round(200 * 1.2))
    expect(DEFAULT_BACKOFF).toEqual({ initialMs: 200, maxMs: 30_000, factor: 2, jitter: 0.2 })
  })
})
