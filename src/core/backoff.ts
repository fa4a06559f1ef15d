/**
 * The one backoff: exponential, capped, with symmetric multiplicative jitter. Used by restart
 * policies, by collectors that retry their source (watches, buses) and by outputs that reconnect.
 */

export interface BackoffPolicy {
  readonly initialMs: number
  readonly maxMs: number
  readonly factor: number
  /** 0.2 = each delay is scaled by a random factor in [0.8, 1.2]. */
  readonly jitter: number
}

export const DEFAULT_BACKOFF: BackoffPolicy = Object.freeze({ initialMs: 200, maxMs: 30_000, factor: 2, jitter: 0.2 })

/**
 * Delay before attempt `consecutive` (1 = first retry): `initialMs * factor^(consecutive-1)`
 * capped at `maxMs`, scaled by `1 + jitter * (2 * random() - 1)`, never above `maxMs`.
 */
export function backoffDelay(backoff: BackoffPolicy, consecutive: number, random: () => number = Math.random): number {
  const exp = Math.min(Math.max(0, consecutive - 1), 1024)
  const raw = Math.min(backoff.maxMs, backoff.initialMs * backoff.factor ** exp)
  const scale = 1 + backoff.jitter * (2 * random() - 1)
  return Math.max(0, Math.min(backoff.maxMs, Math.round(raw * scale)))
}

/** Counts consecutive failures of one retried operation and says how long to wait before the next. */
export class Backoff {
  private failures = 0

  constructor(
    private readonly policy: BackoffPolicy,
    private readonly random: () => number = Math.random,
  ) {}

  /** Consecutive failures since the last success. */
  get attempts(): number {
    return this.failures
  }

  /** Records a failure and returns the delay before the next attempt. */
  fail(): number {
    this.failures++
    return backoffDelay(this.policy, this.failures, this.random)
  }

  succeed(): void {
    this.failures = 0
  }
}
