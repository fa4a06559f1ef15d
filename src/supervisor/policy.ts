/**
 * Restart policies as pure functions: (policy, failure history, now) -> decision.
 * OTP's restart types and intensity/period; Akka's choice of giving up on the child instead of
 * escalating; exponential backoff with jitter that resets after a stable period.
 */

export type RestartType = 'permanent' | 'transient' | 'temporary'
export type OnIntensityExceeded = 'give-up' | 'escalate'

import { type BackoffPolicy, backoffDelay, DEFAULT_BACKOFF } from '../core/backoff.js'

export { type BackoffPolicy, backoffDelay } from '../core/backoff.js'

export interface RestartPolicy {
  /** permanent: always restart; transient: only after a failure; temporary: never. */
  readonly restart: RestartType
  /** At most this many restarts within `withinMs` (OTP intensity/period). */
  readonly maxRestarts: number
  readonly withinMs: number
  /** Give up on this collector (default) or stop the whole supervisor. */
  readonly onExceeded: OnIntensityExceeded
  readonly backoff: BackoffPolicy
  /** After running this long without failing, the backoff starts again from `initialMs`. */
  readonly resetAfterMs: number
  /** A start that takes longer fails (and is aborted through its signal). */
  readonly startTimeoutMs: number
  /** A stop that takes longer is abandoned: the collector is force-stopped. */
  readonly stopTimeoutMs: number
  /** Failed starts `manager.start()` waits through before rejecting for this collector. */
  readonly startAttempts: number
}

export const DEFAULT_RESTART_POLICY: RestartPolicy = Object.freeze({
  restart: 'permanent',
  maxRestarts: 5,
  withinMs: 60_000,
  onExceeded: 'give-up',
  backoff: DEFAULT_BACKOFF,
  resetAfterMs: 60_000,
  startTimeoutMs: 10_000,
  stopTimeoutMs: 5_000,
  startAttempts: 1,
})

export type PolicyOverrides = Partial<Omit<RestartPolicy, 'backoff'>> & { readonly backoff?: Partial<BackoffPolicy> }

export class InvalidPolicyError extends Error {
  override readonly name = 'InvalidPolicyError'
}

export function resolvePolicy(overrides?: PolicyOverrides, base: RestartPolicy = DEFAULT_RESTART_POLICY): RestartPolicy {
  const policy: RestartPolicy = {
    ...base,
    ...overrides,
    backoff: { ...base.backoff, ...overrides?.backoff },
  }
  const problems: string[] = []
  const nonNegative = (path: string, v: number) => {
    if (!Number.isFinite(v) || v < 0) problems.push(`${path}: expected a finite number >= 0, got ${v}`)
  }
  if (!['permanent', 'transient', 'temporary'].includes(policy.restart))
    problems.push(`restart: expected permanent | transient | temporary, got ${String(policy.restart)}`)
  if (!['give-up', 'escalate'].includes(policy.onExceeded))
    problems.push(`onExceeded: expected give-up | escalate, got ${String(policy.onExceeded)}`)
  nonNegative('maxRestarts', policy.maxRestarts)
  nonNegative('withinMs', policy.withinMs)
  nonNegative('resetAfterMs', policy.resetAfterMs)
  nonNegative('backoff.initialMs', policy.backoff.initialMs)
  nonNegative('backoff.maxMs', policy.backoff.maxMs)
  if (!(policy.backoff.factor >= 1)) problems.push(`backoff.factor: expected a number >= 1, got ${policy.backoff.factor}`)
  if (!(policy.backoff.jitter >= 0 && policy.backoff.jitter < 1))
    problems.push(`backoff.jitter: expected a number in [0, 1), got ${policy.backoff.jitter}`)
  if (!(policy.startTimeoutMs > 0)) problems.push(`startTimeoutMs: expected a number > 0, got ${policy.startTimeoutMs}`)
  if (!(policy.stopTimeoutMs > 0)) problems.push(`stopTimeoutMs: expected a number > 0, got ${policy.stopTimeoutMs}`)
  if (!(Number.isInteger(policy.startAttempts) && policy.startAttempts >= 1))
    problems.push(`startAttempts: expected an integer >= 1, got ${policy.startAttempts}`)
  if (problems.length) throw new InvalidPolicyError(`invalid restart policy: ${problems.join('; ')}`)
  return policy
}

/** What the supervisor remembers about one collector's failures. */
export interface FailureHistory {
  /** Times (ms) of restarts granted, oldest first; only those inside the window matter. */
  readonly restartTimes: readonly number[]
  /** Consecutive failures since the last stable period, drives the backoff exponent. */
  readonly consecutive: number
  /** When the current instance reached running, if it did. */
  readonly runningSince?: number
}

export const EMPTY_HISTORY: FailureHistory = { restartTimes: [], consecutive: 0 }

export type ExitKind = 'failure' | 'normal'

export type Decision =
  | { readonly action: 'restart'; readonly delayMs: number; readonly history: FailureHistory }
  | { readonly action: 'stop'; readonly reason: string; readonly history: FailureHistory }
  | { readonly action: 'give-up'; readonly reason: string; readonly history: FailureHistory }
  | { readonly action: 'escalate'; readonly reason: string; readonly history: FailureHistory }

/** Decide what follows an exit of a collector at time `now`. */
export function decide(
  policy: RestartPolicy,
  history: FailureHistory,
  exit: ExitKind,
  now: number,
  random: () => number = Math.random,
): Decision {
  if (policy.restart === 'temporary') {
    return { action: 'stop', reason: `temporary collector exited (${exit})`, history }
  }
  if (policy.restart === 'transient' && exit === 'normal') {
    return { action: 'stop', reason: 'transient collector exited normally', history }
  }
  const stable = history.runningSince !== undefined && now - history.runningSince >= policy.resetAfterMs
  const consecutive = (stable ? 0 : history.consecutive) + 1
  const recent = history.restartTimes.filter((t) => now - t < policy.withinMs)
  if (recent.length >= policy.maxRestarts) {
    const reason = `restart intensity exceeded: ${recent.length} restarts within ${policy.withinMs} ms (max ${policy.maxRestarts})`
    const next: FailureHistory = { restartTimes: recent, consecutive }
    return policy.onExceeded === 'escalate'
      ? { action: 'escalate', reason, history: next }
      : { action: 'give-up', reason, history: next }
  }
  return {
    action: 'restart',
    delayMs: backoffDelay(policy.backoff, consecutive, random),
    history: { restartTimes: [...recent, now], consecutive },
  }
}

/** How many automatic restarts the intensity window still allows at `now`. */
export interface RestartBudget {
  readonly maxRestarts: number
  readonly withinMs: number
  /** Restarts granted within the window ending at `now`. */
  readonly used: number
  readonly remaining: number
}

/** The restart budget left at `now`: `maxRestarts` minus the restarts inside the sliding window. */
export function restartBudget(policy: RestartPolicy, history: FailureHistory, now: number): RestartBudget {
  const used = history.restartTimes.filter((t) => now - t < policy.withinMs).length
  return { maxRestarts: policy.maxRestarts, withinMs: policy.withinMs, used, remaining: Math.max(0, policy.maxRestarts - used) }
}

/** Record that the collector reached running at `now` (starts the stability clock). */
export function markRunning(history: FailureHistory, now: number): FailureHistory {
  return { ...history, runningSince: now }
}
