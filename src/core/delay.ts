import { type Clock, systemClock } from './clock.js'

/**
 * The one cancellable delay: resolves `true` after `ms`, or `false` at once when `signal` aborts
 * (before or during the wait). Leaves no timer or listener behind either way.
 */
export function delay(ms: number, signal?: AbortSignal, clock: Clock = systemClock): Promise<boolean> {
  if (signal?.aborted) return Promise.resolve(false)
  return new Promise((resolve) => {
    const onAbort = () => {
      clock.clearTimeout(handle)
      resolve(false)
    }
    const handle = clock.setTimeout(() => {
      signal?.removeEventListener('abort', onAbort)
      resolve(true)
    }, Math.max(0, ms))
    signal?.addEventListener('abort', onAbort, { once: true })
  })
}
