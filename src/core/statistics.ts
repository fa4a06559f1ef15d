import type { HandoffCounters } from './handoff-queue.js'

/**
 * What a collector reports about its own events, counted at the source. With the merge
 * buffer's counters it closes the books end to end, per registration:
 *
 *   produced = delivered + dropped (in the collector, by reason) + dropped (in the buffer, by reason)
 *              + queued (in the collector) + queued (in the buffer)
 *
 * `produced`, `dropped` and `counters` are cumulative over the instance's life and never go down;
 * `queued` and `gauges` are current values. The manager adds up the instances of one
 * registration (a fresh one per restart), so nothing is lost with a restart.
 */
export interface SourceStatistics {
  /** Events the source produced (for a kernel source: what the kernel tried to submit). */
  readonly produced: number
  /** Produced events lost before `events()` handed them out, by reason (`queue_full`, `kernel_ring_full`...). */
  readonly dropped: Readonly<Record<string, number>>
  /** Produced events not yet handed out and not dropped (in the collector's queue, a kernel ring...). */
  readonly queued: number
  /** The collector's own cumulative counters (relists, malformed records, reconnects...). */
  readonly counters: Readonly<Record<string, number>>
  /** The collector's own current values (pods cached, units tracked...). */
  readonly gauges?: Readonly<Record<string, number>>
}

export const EMPTY_SOURCE_STATISTICS: SourceStatistics = Object.freeze({
  produced: 0,
  dropped: Object.freeze({}),
  queued: 0,
  counters: Object.freeze({}),
})

/** Events handed out through `events()`: produced minus dropped minus queued. */
export function emittedOf(s: SourceStatistics): number {
  return s.produced - sumValues(s.dropped) - s.queued
}

export function sumValues(r: Readonly<Record<string, number>>): number {
  let n = 0
  for (const v of Object.values(r)) n += v
  return n
}

function addRecords(a: Readonly<Record<string, number>>, b: Readonly<Record<string, number>>): Record<string, number> {
  const out: Record<string, number> = { ...a }
  for (const [k, v] of Object.entries(b)) out[k] = (out[k] ?? 0) + v
  return out
}

/**
 * The statistics of a registration: the final figures of its retired instances plus those of the
 * current one. A retired instance's `queued` events will never be read: they count `abandoned`.
 */
export function addStatistics(retired: SourceStatistics, current: SourceStatistics): SourceStatistics {
  return {
    produced: retired.produced + current.produced,
    dropped: addRecords(retired.dropped, current.dropped),
    queued: retired.queued + current.queued,
    counters: addRecords(retired.counters, current.counters),
    ...(current.gauges ? { gauges: current.gauges } : {}),
  }
}

/** Fold an instance that will not be read again into the retired total. */
export function retire(retired: SourceStatistics, last: SourceStatistics): SourceStatistics {
  const dropped = addRecords(retired.dropped, last.dropped)
  if (last.queued > 0) dropped.abandoned = (dropped.abandoned ?? 0) + last.queued
  return {
    produced: retired.produced + last.produced,
    dropped,
    queued: retired.queued,
    counters: addRecords(retired.counters, last.counters),
  }
}

/** Statistics of a collector whose only losses happen in its hand-off queue. */
export function queueStatistics(
  q: HandoffCounters,
  counters: Readonly<Record<string, number>> = {},
  gauges?: Readonly<Record<string, number>>,
): SourceStatistics {
  const dropped: Record<string, number> = {}
  for (const [k, v] of Object.entries(q.dropped)) if (v > 0) dropped[k] = v
  return { produced: q.pushed, dropped, queued: q.queued, counters, ...(gauges ? { gauges } : {}) }
}

/** Whether a value has the SourceStatistics shape (collectors written before it return flat counters). */
export function isSourceStatistics(v: unknown): v is SourceStatistics {
  if (typeof v !== 'object' || v === null) return false
  const s = v as Record<string, unknown>
  return typeof s.produced === 'number' && typeof s.queued === 'number' && typeof s.dropped === 'object' && s.dropped !== null && typeof s.counters === 'object' && s.counters !== null
}
