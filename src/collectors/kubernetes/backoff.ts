/** Exponential backoff with multiplicative jitter (delay x [1, 1 + jitter)), capped at `maxMs`. */
export function backoffDelay(
  failures: number,
  opts: { readonly initialMs: number; readonly maxMs: number; readonly jitter: number },
  random: () => number = Math.random,
): number {
  if (failures <= 0) return 0
  const base = Math.min(opts.maxMs, opts.initialMs * 2 ** Math.min(failures - 1, 30))
  return Math.min(opts.maxMs, Math.round(base * (1 + opts.jitter * random())))
}

/** Resolves after `ms`, or at once (false) when `signal` aborts; leaves no timer behind. */
export function sleep(ms: number, signal: AbortSignal): Promise<boolean> {
  if (signal.aborted) return Promise.resolve(false)
  if (ms <= 0) return Promise.resolve(true)
  return new Promise((resolve) => {
    const onAbort = () => {
      clearTimeout(timer)
      resolve(false)
    }
    const timer = setTimeout(() => {
      signal.removeEventListener('abort', onAbort)
      resolve(true)
    }, ms)
    signal.addEventListener('abort', onAbort, { once: true })
  })
}
