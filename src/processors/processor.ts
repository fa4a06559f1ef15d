import type { TapioEvent } from '../events/event.js'

/**
 * What a processor is handed with each batch: `drop(e)` counts an event it removes, under the
 * processor's name, for the event's source; `emit(e)` counts an event it adds (the correlate
 * processor's incidents) for the added event's source. Together they keep the conservation law
 * through the stage: per source, received + emitted = delivered + Σ dropped.
 */
export interface ProcessorContext {
  drop(e: TapioEvent): void
  /** Count an event this processor adds; the processor also returns it in its batch. */
  emit(e: TapioEvent): void
  /** Milliseconds since the epoch for this batch (rate limits); one clock read per batch. */
  readonly now: number
}

/**
 * One step of the processor stage. Synchronous and batch-wide (no promise per event): it returns
 * the batch it passes on, which may be the input itself, a subset (each removed event reported
 * through `ctx.drop`), copies, or the input with new events inserted (each reported through
 * `ctx.emit`; a processor adds events only after the events that caused them). Events are shared with other consumers: never change them in
 * place, copy what you change (copy-on-write).
 */
export interface Processor {
  /** Unique in a chain; the drop reason in statistics and /metrics. */
  readonly name: string
  /** filter, sample, drop, rename, enrich, route, or your own. */
  readonly type: string
  process(batch: readonly TapioEvent[], ctx: ProcessorContext): readonly TapioEvent[]
  /**
   * True when `process` would return the next batch as it is without reading its events (the
   * enricher with no pod metadata at all): a deferred batch then stays encoded instead of being
   * made into objects for this processor.
   */
  passesUnread?(): boolean
  /** Own counters (cumulative), e.g. the enricher's hits and misses. */
  statistics?(): Readonly<Record<string, number>>
}

/**
 * A processor that decides where events go (the `route` processor): the last step of a chain.
 * `assign` returns, for each output name, the events it receives; an event sent to no output is
 * reported through `ctx.drop`.
 */
export interface Router extends Processor {
  assign(batch: readonly TapioEvent[], ctx: ProcessorContext): ReadonlyMap<string, readonly TapioEvent[]>
  /** Output names this router may send to (checked against the configured outputs). */
  readonly outputs: readonly string[]
}

export function isRouter(p: Processor): p is Router {
  return typeof (p as Partial<Router>).assign === 'function'
}
