import type { Collector, CollectorOutput } from '../core/collector.js'
import type { SourceStatistics } from '../core/statistics.js'
import type { EventInput } from '../events/event.js'
import type { Severity } from '../events/schema.js'
import type { LifecycleEvent } from '../supervisor/lifecycle-events.js'

/** The name the supervision events are published under (a reserved collector name). */
export const SUPERVISOR_EVENTS_SOURCE = 'tapio.supervisor'

const TYPES: Readonly<Record<LifecycleEvent['type'], string>> = {
  failed: 'tapio.supervisor.failed',
  'restart-scheduled': 'tapio.supervisor.restart_scheduled',
  'manual-restart': 'tapio.supervisor.manual_restart',
  recovered: 'tapio.supervisor.recovered',
  'gave-up': 'tapio.supervisor.gave_up',
  escalated: 'tapio.supervisor.escalated',
  stopped: 'tapio.supervisor.stopped',
}

function severityOf(e: LifecycleEvent): Severity {
  switch (e.type) {
    case 'failed':
      return e.exit === 'failure' ? 'warning' : 'info'
    case 'gave-up':
      return 'error'
    case 'escalated':
      return 'critical'
    default:
      return 'info'
  }
}

/** One lifecycle event as a stream event about the collector it concerns. */
export function supervisorEvent(e: LifecycleEvent): EventInput {
  const { type: _type, collector, at: _at, ...data } = e
  return { type: TYPES[e.type], severity: severityOf(e), entity: { kind: 'collector', name: collector }, data: { collector, ...data } }
}

/**
 * Puts the supervisor's lifecycle events into the stream (`supervisor.events: true`): a collector
 * like any other, so its events are merged, accounted and delivered to every output; it is
 * registered first, so it starts before and stops after the collectors it reports on.
 * Events that arrive while it is not running are counted as dropped (`not_running`).
 */
export class SupervisorEventsCollector implements Collector {
  private queue: EventInput[] = []
  private wake: (() => void) | undefined
  private running = false
  private produced = 0
  private notRunning = 0

  publish(e: LifecycleEvent): void {
    // Its own start and stop are not news.
    if (e.collector === SUPERVISOR_EVENTS_SOURCE) return
    this.produced += 1
    if (!this.running) {
      this.notRunning += 1
      return
    }
    this.queue.push(supervisorEvent(e))
    this.wake?.()
  }

  start(): void {
    this.running = true
  }

  stop(): void {
    this.running = false
    this.wake?.()
  }

  async *events(): AsyncGenerator<CollectorOutput> {
    while (this.running || this.queue.length > 0) {
      if (this.queue.length === 0) {
        await new Promise<void>((resolve) => (this.wake = resolve))
        this.wake = undefined
        continue
      }
      const batch = this.queue
      this.queue = []
      yield batch
    }
  }

  statistics(): SourceStatistics {
    return { produced: this.produced, dropped: this.notRunning > 0 ? { not_running: this.notRunning } : {}, queued: this.queue.length, counters: {} }
  }
}
