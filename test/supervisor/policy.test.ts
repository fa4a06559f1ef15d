import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { CollectorManager, SyntheticCollector } from '../../src/index.js'
import { backoffDelay, DEFAULT_RESTART_POLICY, decide, EMPTY_HISTORY, type FailureHistory, InvalidPolicyError, markRunning, resolvePolicy } from '../../src/supervisor/policy.js'
import { restartGroup, siblingsToRestart } from '../../src/supervisor/strategy.js'

const policyArb = fc.record({
  maxRestarts: fc.integer({ min: 0, max: 10 }),
  withinMs: fc.integer({ min: 1, max: 10_000 }),
  initialMs: fc.integer({ min: 0, max: 1000 }),
  maxMs: fc.integer({ min: 0, max: 60_000 }),
  factor: fc.integer({ min: 100, max: 400 }).map((f) => f / 100),
  jitter: fc.integer({ min: 0, max: 99 }).map((j) => j / 100),
})

/** Uniform in [0, 1): fc.double's draws cluster near 0 (909 of 1,000 below 1e-6). */
const uniform = fc.noBias(fc.integer({ min: 0, max: 2 ** 24 - 1 })).map((i) => i / 2 ** 24)

describe('restart policy', () => {
  it('never grants more than maxRestarts within any window', () => {
    fc.assert(
      fc.property(policyArb, fc.array(fc.integer({ min: 0, max: 5000 }), { maxLength: 60 }), uniform, (p, gaps, r) => {
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
      fc.property(policyArb, fc.integer({ min: 1, max: 30 }), uniform, (p, n, r) => {
        const b = { initialMs: p.initialMs, maxMs: p.maxMs, factor: p.factor, jitter: p.jitter }
        const raw = Math.min(b.maxMs, b.initialMs * b.factor ** (n - 1))
        const d = backoffDelay(b, n, () => r)
        expect(d).toBeLessThanOrEqual(b.maxMs)
        expect(d).toBeGreaterThanOrEqual(Math.floor(raw * (1 - b.jitter)))
        expect(d).toBeLessThanOrEqual(Math.ceil(raw * (1 + b.jitter)))
        // Exactly: symmetric jitter around the raw value.
        expect(d).toBe(Math.max(0, Math.min(b.maxMs, Math.round(raw * (1 + b.jitter * (2 * r - 1))))))
      }),
      { numRuns: 1000 },
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

  it('restarts are allowed again once the oldest leaves the window (and not a millisecond before)', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 6 }), fc.integer({ min: 100, max: 100_000 }), fc.array(fc.integer({ min: 0, max: 5 }), { minLength: 6, maxLength: 6 }), (max, within, gaps) => {
        const policy = resolvePolicy({ maxRestarts: max, withinMs: within, backoff: { jitter: 0 } })
        let h = EMPTY_HISTORY
        let now = 0
        const granted: number[] = []
        for (let i = 0; i < max; i++) {
          now += gaps[i] as number
          const d = decide(policy, h, 'failure', now)
          expect(d.action).toBe('restart')
          h = d.history
          granted.push(now)
        }
        const oldest = granted[0] as number
        const tooSoon = decide(policy, h, 'failure', oldest + within - 1)
        expect(tooSoon.action).toBe('give-up')
        if (tooSoon.action === 'give-up') expect(tooSoon.reason).toBe(`restart intensity exceeded: ${max} restarts within ${within} ms (max ${max})`)
        const onTime = decide(policy, h, 'failure', oldest + within)
        expect(onTime.action).toBe('restart')
        // The aged-out restart is forgotten; the new one is remembered.
        expect(onTime.history.restartTimes).toEqual([...granted.filter((t) => t > oldest), oldest + within])
      }),
    )
  })

  it('backoff grows while a collector keeps crashing early, and resets only after a stable period', () => {
    // Each step: how long the instance ran before crashing (undefined: it never reached running).
    const step = fc.option(fc.integer({ min: 0, max: 3000 }), { nil: undefined })
    fc.assert(
      fc.property(fc.array(step, { minLength: 1, maxLength: 20 }), (runs) => {
        const policy = resolvePolicy({ backoff: { initialMs: 100, factor: 2, maxMs: 1_000_000, jitter: 0 }, resetAfterMs: 1000, maxRestarts: 1000 })
        let h = EMPTY_HISTORY
        let now = 0
        let expected = 0
        for (const ran of runs) {
          now += 1
          if (ran !== undefined) {
            h = markRunning(h, now)
            expect(h.runningSince).toBe(now)
            now += ran
          }
          expected = ran !== undefined && ran >= 1000 ? 1 : expected + 1
          const d = decide(policy, h, 'failure', now)
          if (d.action !== 'restart') throw new Error('expected a restart')
          expect(d.history.consecutive).toBe(expected)
          expect(d.delayMs).toBe(100 * 2 ** (expected - 1))
          // The next instance has not run yet.
          expect(d.history.runningSince).toBeUndefined()
          h = d.history
        }
      }),
    )
  })

  it('give-up and escalate keep the pruned window and the failure count', () => {
    const policy = resolvePolicy({ maxRestarts: 1, withinMs: 100 })
    const first = decide(policy, EMPTY_HISTORY, 'failure', 0)
    const second = decide(policy, first.history, 'failure', 50)
    expect(second).toMatchObject({ action: 'give-up', history: { restartTimes: [0], consecutive: 2 } })
    const esc = decide(resolvePolicy({ maxRestarts: 0, onExceeded: 'escalate' }), EMPTY_HISTORY, 'normal', 7)
    expect(esc).toMatchObject({ action: 'escalate', history: { restartTimes: [], consecutive: 1 } })
  })

  it('applies restart types: temporary never, transient only after failures', () => {
    const temporary = resolvePolicy({ restart: 'temporary' })
    const transient = resolvePolicy({ restart: 'transient' })
    expect(decide(temporary, EMPTY_HISTORY, 'failure', 0)).toEqual({ action: 'stop', reason: 'temporary collector exited (failure)', history: EMPTY_HISTORY })
    expect(decide(temporary, EMPTY_HISTORY, 'normal', 0)).toMatchObject({ action: 'stop', reason: 'temporary collector exited (normal)' })
    expect(decide(transient, EMPTY_HISTORY, 'normal', 0)).toEqual({ action: 'stop', reason: 'transient collector exited normally', history: EMPTY_HISTORY })
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

  it('validates every field through the library API, naming it', () => {
    const mgr = new CollectorManager()
    const bad: [Parameters<typeof resolvePolicy>[0], RegExp][] = [
      [{ maxRestarts: -1 }, /maxRestarts: expected a finite number >= 0, got -1/],
      [{ maxRestarts: Number.NaN }, /maxRestarts/],
      [{ withinMs: Number.POSITIVE_INFINITY }, /withinMs: expected a finite number >= 0, got Infinity/],
      [{ resetAfterMs: -5 }, /resetAfterMs/],
      [{ backoff: { initialMs: -1 } }, /backoff.initialMs/],
      [{ backoff: { maxMs: Number.NaN } }, /backoff.maxMs/],
      [{ backoff: { factor: 0.5 } }, /backoff.factor: expected a number >= 1, got 0.5/],
      [{ backoff: { factor: Number.NaN } }, /backoff.factor/],
      [{ backoff: { jitter: 1 } }, /backoff.jitter: expected a number in \[0, 1\), got 1/],
      [{ backoff: { jitter: -0.1 } }, /backoff.jitter/],
      [{ startTimeoutMs: 0 }, /startTimeoutMs: expected a number > 0, got 0/],
      [{ stopTimeoutMs: 0 }, /stopTimeoutMs: expected a number > 0, got 0/],
      [{ stopTimeoutMs: Number.NaN }, /stopTimeoutMs/],
      [{ startAttempts: 1.5 }, /startAttempts: expected an integer >= 1, got 1.5/],
      [{ onExceeded: 'panic' as never }, /onExceeded: expected give-up \| escalate, got panic/],
      [{ restart: 'sometimes' as never }, /restart: expected permanent \| transient \| temporary, got sometimes/],
    ]
    for (const [policy, why] of bad) {
      expect(() => mgr.addCollector('c', new SyntheticCollector(), policy)).toThrow(InvalidPolicyError)
      expect(() => mgr.addCollector('c', new SyntheticCollector(), policy)).toThrow(why)
      expect(() => new CollectorManager({ defaultPolicy: policy })).toThrow(why)
    }
    const err = (() => {
      try {
        resolvePolicy({ maxRestarts: -1 })
      } catch (e) {
        return e
      }
    })()
    expect(err).toBeInstanceOf(InvalidPolicyError)
    expect((err as Error).name).toBe('InvalidPolicyError')
    // Several problems at once are all named.
    expect(() => resolvePolicy({ maxRestarts: -1, stopTimeoutMs: 0 })).toThrow(/invalid restart policy: maxRestarts.*; stopTimeoutMs/)
    // Edge values that are allowed.
    expect(resolvePolicy({ maxRestarts: 0, withinMs: 0, resetAfterMs: 0, backoff: { initialMs: 0, maxMs: 0, factor: 1, jitter: 0 } })).toMatchObject({ maxRestarts: 0 })
    expect(mgr.collectorNames()).toEqual([])
  })

  it('overrides merge over the base, the backoff field by field', () => {
    const base = resolvePolicy({ maxRestarts: 7, backoff: { initialMs: 50 } })
    const p = resolvePolicy({ backoff: { factor: 3 } }, base)
    expect(p).toMatchObject({ maxRestarts: 7, backoff: { initialMs: 50, factor: 3, maxMs: 30_000, jitter: 0.2 } })
    expect(DEFAULT_RESTART_POLICY).toMatchObject({ restart: 'permanent', maxRestarts: 5, withinMs: 60_000, onExceeded: 'give-up', resetAfterMs: 60_000, startTimeoutMs: 10_000, stopTimeoutMs: 5_000, startAttempts: 1 })
  })

  it('chooses siblings by strategy', () => {
    const order = ['a', 'b', 'c', 'd']
    expect(siblingsToRestart('one_for_one', order, 'b')).toEqual([])
    expect(siblingsToRestart('one_for_all', order, 'b')).toEqual(['a', 'c', 'd'])
    expect(siblingsToRestart('rest_for_one', order, 'b')).toEqual(['c', 'd'])
    expect(restartGroup('one_for_one', order, 'b')).toEqual(['b'])
    expect(restartGroup('one_for_all', order, 'c')).toEqual(['a', 'b', 'c', 'd'])
    expect(restartGroup('rest_for_one', order, 'c')).toEqual(['c', 'd'])
    expect(restartGroup('rest_for_one', order, 'a')).toEqual(order)
    expect(restartGroup('one_for_all', order, 'zz')).toEqual(['zz'])
  })
})
