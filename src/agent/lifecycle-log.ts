import type { LifecycleEvent } from './lifecycle.js'
import type { Logger } from './logger.js'

/** Why a collector stopped, as far as the agent knows (it asked for operator, reload and shutdown stops). */
export type StopCause = 'operator' | 'reload' | 'shutdown' | 'policy'

function seconds(ms: number): string {
  return ms % 1000 === 0 ? `${ms / 1000} s` : `${(ms / 1000).toFixed(1)} s`
}

/**
 * One log line per supervision fact. Every line carries `event` (`collector.failed`,
 * `collector.restart_scheduled`, ...) and `collector`, so a log pipeline can select them.
 */
export function logLifecycle(log: Logger, e: LifecycleEvent, stopCause: StopCause = 'policy'): void {
  switch (e.type) {
    case 'failed':
      if (e.exit === 'normal') log.warn(`${e.collector}: exited (${e.error})`, { event: 'collector.exited', collector: e.collector, error: e.error })
      else log.warn(`${e.collector}: failed: ${e.error}`, { event: 'collector.failed', collector: e.collector, error: e.error })
      return
    case 'restart-scheduled':
      log.info(`${e.collector}: restart ${e.restart} of ${e.maxRestarts} within ${seconds(e.withinMs)}, in ${e.delayMs} ms`, {
        event: 'collector.restart_scheduled',
        collector: e.collector,
        delayMs: e.delayMs,
        restart: e.restart,
        maxRestarts: e.maxRestarts,
        withinMs: e.withinMs,
      })
      return
    case 'recovered':
      log.info(`${e.collector}: recovered (running again after ${e.afterFailures} failure${e.afterFailures === 1 ? '' : 's'})`, {
        event: 'collector.recovered',
        collector: e.collector,
        afterFailures: e.afterFailures,
      })
      return
    case 'gave-up':
      log.error(`${e.collector}: gave up: ${e.reason}`, { event: 'collector.gave_up', collector: e.collector, reason: e.reason })
      return
    case 'escalated':
      log.error(`supervisor escalated: ${e.reason}; stopping every collector`, { event: 'supervisor.escalated', reason: e.reason })
      return
    case 'stopped': {
      const fields = { event: 'collector.stopped', collector: e.collector, by: stopCause, forced: e.forced }
      const forced = e.forced ? ' (force-stopped: its stop timed out)' : ''
      if (stopCause === 'operator') log.info(`${e.collector}: stopped by an operator${forced}`, fields)
      else if (stopCause === 'policy') log.info(`${e.collector}: stopped (its restart policy does not restart it)${forced}`, fields)
      else if (stopCause === 'reload') log.info(`${e.collector}: stopped (config reload)${forced}`, fields)
      // Shutdown stops every collector; the agent's own "stopped" line sums it up.
      else log.debug(`${e.collector}: stopped${forced}`, fields)
      return
    }
  }
}
