import type { LifecycleEvent } from '../supervisor/lifecycle-events.js'
import type { Logger } from './logger.js'

function seconds(ms: number): string {
  return ms % 1000 === 0 ? `${ms / 1000} s` : `${(ms / 1000).toFixed(1)} s`
}

/**
 * One log line per supervision fact (the manager's lifecycle events). Every line carries `event`
 * (`collector.failed`, `collector.restart_scheduled`, ...) and `collector`, so a log pipeline can
 * select them.
 */
export function logLifecycle(log: Logger, e: LifecycleEvent): void {
  switch (e.type) {
    case 'failed': {
      const error = e.error ?? 'no error given'
      if (e.exit === 'normal') log.warn(`${e.collector}: exited (${error})`, { event: 'collector.exited', collector: e.collector, error })
      else log.warn(`${e.collector}: failed: ${error}`, { event: 'collector.failed', collector: e.collector, error, wasRunning: e.wasRunning })
      return
    }
    case 'restart-scheduled': {
      const others = e.group.filter((n) => n !== e.collector)
      const group = others.length > 0 ? ` (${e.strategy}: with ${others.join(', ')})` : ''
      log.info(`${e.collector}: restart ${e.attempt} of ${e.maxRestarts} within ${seconds(e.withinMs)}, in ${e.delayMs} ms${group}`, {
        event: 'collector.restart_scheduled',
        collector: e.collector,
        delayMs: e.delayMs,
        attempt: e.attempt,
        maxRestarts: e.maxRestarts,
        withinMs: e.withinMs,
        ...(others.length > 0 ? { strategy: e.strategy, group: e.group } : {}),
      })
      return
    }
    case 'manual-restart':
      log.info(`${e.collector}: restart requested by an operator`, { event: 'collector.manual_restart', collector: e.collector })
      return
    case 'recovered':
      log.info(`${e.collector}: recovered (running again after ${e.downMs} ms down)`, {
        event: 'collector.recovered',
        collector: e.collector,
        downMs: e.downMs,
        restarts: e.restarts,
      })
      return
    case 'gave-up':
      log.error(`${e.collector}: gave up: ${e.reason}`, { event: 'collector.gave_up', collector: e.collector, reason: e.reason })
      return
    case 'escalated':
      log.error(`supervisor escalated: ${e.reason}; stopping every collector`, {
        event: 'supervisor.escalated',
        collector: e.collector,
        reason: e.reason,
      })
      return
    case 'stopped': {
      const fields = { event: 'collector.stopped', collector: e.collector, by: e.by, forced: e.forced }
      const forced = e.forced ? ' (force-stopped: its stop timed out)' : ''
      if (e.by === 'operator') log.info(`${e.collector}: stopped by an operator${forced}`, fields)
      else if (e.by === 'policy') log.info(`${e.collector}: stopped (its restart policy does not restart it)${forced}`, fields)
      else if (e.by === 'removed') log.info(`${e.collector}: stopped (removed from the configuration)${forced}`, fields)
      // Shutdown stops every collector; the agent's own "stopped" line sums it up.
      else log.debug(`${e.collector}: stopped${forced}`, fields)
      return
    }
  }
}
