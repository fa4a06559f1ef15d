/**
 * What the supervisor tells the outside world about a collector's life: one typed event per
 * decision, for logs, alerts and tests. `at` is the supervisor's clock (ms since the epoch with
 * the system clock). Listeners run synchronously; what they throw goes to `onError`, never into
 * the supervisor.
 */

import type { RestartStrategy } from './strategy.js'

export type LifecycleEvent =
  /** An instance ended: a failure (crash, failed start, start timeout, fatal health) or a normal end. */
  | {
      readonly type: 'failed'
      readonly collector: string
      readonly at: number
      readonly exit: 'failure' | 'normal'
      readonly error: string | null
      /** Whether it had reached running (false: the start failed). */
      readonly wasRunning: boolean
    }
  /** The policy granted a restart: it happens after `delayMs`. */
  | {
      readonly type: 'restart-scheduled'
      readonly collector: string
      readonly at: number
      readonly delayMs: number
      /** Restarts granted within the intensity window, this one included (attempt of maxRestarts). */
      readonly attempt: number
      readonly maxRestarts: number
      readonly withinMs: number
      readonly strategy: RestartStrategy
      /** Every collector restarted because of this failure, in start order (itself included). */
      readonly group: readonly string[]
    }
  /** An operator asked for a restart (`restartCollector`). */
  | { readonly type: 'manual-restart'; readonly collector: string; readonly at: number }
  /** Running again after a failure or a restart. */
  | {
      readonly type: 'recovered'
      readonly collector: string
      readonly at: number
      /** Time since the failure (or the restart request) that took it down. */
      readonly downMs: number
      readonly restarts: number
    }
  /** Restart intensity exceeded with `onExceeded: 'give-up'`: the collector stays down. */
  | { readonly type: 'gave-up'; readonly collector: string; readonly at: number; readonly reason: string }
  /** Restart intensity exceeded with `onExceeded: 'escalate'`: the whole supervisor stops. */
  | { readonly type: 'escalated'; readonly collector: string; readonly at: number; readonly reason: string }
  /** The collector reached `stopped`. */
  | {
      readonly type: 'stopped'
      readonly collector: string
      readonly at: number
      /** operator: stopCollector; removed: removeCollector; shutdown: manager.stop(); policy: temporary/transient exit. */
      readonly by: StopCause
      /** Its stop() did not finish within stopTimeoutMs and was abandoned. */
      readonly forced: boolean
    }

export type StopCause = 'operator' | 'removed' | 'shutdown' | 'policy'

export type LifecycleListener = (event: LifecycleEvent) => void
