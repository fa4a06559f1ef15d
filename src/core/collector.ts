import type { EventInput } from '../events/event.js'
import type { SelfReportedStatus } from './status.js'

/** What a collector reports about itself. */
export interface CollectorHealth {
  readonly status: SelfReportedStatus
  /** Why, for anything but ok: "unavailable: tracefs not mounted; run as root or mount it". */
  readonly message?: string
  /** Collector-specific facts (connected, last sync, relists...). JSON-safe values only. */
  readonly details?: Readonly<Record<string, unknown>>
}

/** One item from a collector's event source: a single event or a batch (preferred at high rates). */
export type CollectorOutput = EventInput | readonly EventInput[]

/**
 * The contract a collector implements. It needs no Effect or XState knowledge.
 *
 * - `start(signal)` acquires resources and resolves when the collector is running. `signal` aborts
 *   when the start times out or the collector is stopped while starting.
 * - `events()` is called once per successful start; its items are events or arrays of events.
 *   The source ending while running counts as an exit (normal), throwing counts as a failure.
 * - `stop()` releases everything; it must be safe without a prior start and when called twice.
 * - `health()` is optional; `fatal_error` makes the supervisor treat the collector as failed.
 * - `statistics()` is optional: collector-specific counters (kernel drops, relists...).
 *
 * A collector instance is started again after a failure, unless it was registered through a
 * factory (`addCollector(name, () => new MyCollector())`), which gives every start a fresh one.
 */
export interface Collector {
  start(signal: AbortSignal): Promise<void> | void
  stop(): Promise<void> | void
  events(): AsyncIterable<CollectorOutput>
  health?(): CollectorHealth
  statistics?(): Readonly<Record<string, number>>
}

export type CollectorFactory = () => Collector

export function isCollector(value: unknown): value is Collector {
  if (typeof value !== 'object' || value === null) return false
  const c = value as Record<string, unknown>
  return typeof c.start === 'function' && typeof c.stop === 'function' && typeof c.events === 'function'
}
