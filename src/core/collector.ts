import type { EventInput } from '../events/event.js'
import type { SourceStatistics } from './statistics.js'
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
 * The contract a collector implements. It needs no Effect or XState knowledge. Every built-in
 * collector answers the same way, and `tapio-collector-manager/testing` checks any collector
 * against these rules (docs/collectors/contract.md):
 *
 * - `start(signal)` acquires resources and resolves when the collector is running.
 *   - `signal` aborts when the start times out or the collector is stopped while starting: the
 *     start then rejects, and whatever it had acquired is released;
 *   - a second `start()` while started (or starting) rejects with a {@link CollectorStateError};
 *   - after `stop()` has resolved the instance may be started again.
 * - `events()` is called once per successful start and returns that run's items (events or
 *   arrays of events). The source ending counts as an exit (normal), throwing as a failure. After
 *   `stop()` it ends once what was already produced has been read. Called before any successful
 *   start it throws a {@link CollectorStateError}.
 * - `stop()` releases everything and returns a promise. Without a prior start it resolves at
 *   once; called twice, both calls resolve once the release is done.
 * - `health()` is optional; `fatal_error` makes the supervisor treat the collector as failed.
 * - `statistics()` is optional: see {@link SourceStatistics}. An instance's statistics cover its
 *   whole life and stay readable after `stop()`; the manager adds up the instances of one
 *   registration, so counters survive restarts.
 *
 * Register collectors through a factory (`addCollector(name, () => new MyCollector())`): every
 * start gets a fresh instance. A plain instance is started again after a failure.
 */
export interface Collector {
  start(signal: AbortSignal): Promise<void> | void
  stop(): Promise<void> | void
  events(): AsyncIterable<CollectorOutput>
  health?(): CollectorHealth
  statistics?(): SourceStatistics
}

/** A call the contract does not allow in the collector's current state (start twice, events() before start). */
export class CollectorStateError extends Error {
  override readonly name = 'CollectorStateError'
}

export type CollectorFactory = () => Collector

export function isCollector(value: unknown): value is Collector {
  if (typeof value !== 'object' || value === null) return false
  const c = value as Record<string, unknown>
  return typeof c.start === 'function' && typeof c.stop === 'function' && typeof c.events === 'function'
}
