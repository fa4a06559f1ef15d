/** Why an event accepted from a collector did not reach a consumer. */
export type DropReason =
  /** drop-newest (and sample when full): the buffer had no room for it. */
  | 'buffer_full'
  /** drop-oldest: pushed out by newer events. */
  | 'evicted'
  /** sample: not among the 1 in N kept above the high-water mark. */
  | 'sampled'
  /** stop() gave up draining after its timeout, or the pump was interrupted mid-offer. */
  | 'shutdown'
  /** The collector yielded something that is not an event (counted, skipped). */
  | 'invalid'

export const DROP_REASONS: readonly DropReason[] = ['buffer_full', 'evicted', 'sampled', 'shutdown', 'invalid']

export type DropCounts = Record<DropReason, number>

export function emptyDropCounts(): DropCounts {
  return { buffer_full: 0, evicted: 0, sampled: 0, shutdown: 0, invalid: 0 }
}

export function sumDrops(d: Readonly<DropCounts>): number {
  return d.buffer_full + d.evicted + d.sampled + d.shutdown + d.invalid
}

/** Counters kept per source; `accepted = delivered + dropped + buffered` at every instant. */
export interface SourceCounters {
  accepted: number
  delivered: number
  dropped: DropCounts
  buffered: number
  lastEventAt: number | null
}

export function emptySourceCounters(): SourceCounters {
  return { accepted: 0, delivered: 0, dropped: emptyDropCounts(), buffered: 0, lastEventAt: null }
}
