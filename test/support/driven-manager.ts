import { ManualClock } from '../../src/core/clock.js'
import { CollectorManager, type LifecycleEvent } from '../../src/index.js'
import { Driven, type DrivenBehaviour, type Happening } from './driven.js'

/** Backoff without jitter (restart times are exact), short timeouts. */
export const POLICY = { backoff: { initialMs: 100, factor: 2, maxMs: 1000, jitter: 0 }, startTimeoutMs: 500, stopTimeoutMs: 500 } as const

/**
 * A CollectorManager on a ManualClock at 0 with what the supervision tests read: its lifecycle
 * events, what went to `onError`, the driven collectors' log, and (state, status) per collector.
 */
export function drivenManager(opts: ConstructorParameters<typeof CollectorManager>[0] = {}) {
  const clock = new ManualClock(0)
  const errors: unknown[] = []
  const mgr = new CollectorManager({ clock, healthCheckIntervalMs: 1000, onError: (e) => errors.push(e), ...opts })
  const lifecycle: LifecycleEvent[] = []
  mgr.on('lifecycle', (e) => lifecycle.push(e))
  const log: Happening[] = []
  const driven = (name: string, behaviour?: (n: number) => DrivenBehaviour) => new Driven(name, clock, log, behaviour)
  const start = async () => {
    const started = mgr.start().catch(() => {})
    await clock.advanceAsync(0)
    await started
  }
  const stop = async () => {
    const p = mgr.stop({ timeoutMs: 5000 })
    await clock.advanceAsync(5000)
    await p
  }
  const status = (name: string) => {
    const c = mgr.statistics().collectors[name]
    return [c?.state, c?.status]
  }
  return { clock, mgr, lifecycle, log, errors, driven, start, stop, status }
}
