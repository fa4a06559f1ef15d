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

