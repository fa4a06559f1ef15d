import type { TapioEvent } from '../events/event.js'
import { emptySourceCounters, type SourceCounters } from './counters.js'

/** What a lane holds: arrays of events, or batches that can say their length and be cut (deferred ones). */
export interface SizedBatch {
  readonly length: number
  slice(start?: number, end?: number): SizedBatch
}

/** One source's queue of batches inside the merge buffer. */
export interface Lane<Batch extends SizedBatch = readonly TapioEvent[]> {
  readonly source: string
  /** Batches in arrival order; `head` is the first one not fully taken, `offset` events into it. */
  queue: Batch[]
  head: number
  offset: number
  /** Events in the lane (not yet taken). */
  size: number
  /** Position in the 1-in-N sampling cycle (policy `sample`). */
  sampleTick: number
  /** False once the source is unregistered: the lane goes when it is empty. */
  registered: boolean
  readonly counters: SourceCounters
}

/** A head index past which a lane's array is compacted (so a long-lived lane does not grow). */
export const COMPACT_AFTER = 64

/**
 * The per-source lanes of the merge buffer: where batches wait, how they are taken (round-robin
 * across lanes, at most `maxBatch` events at a time) and how they are evicted (oldest or newest
 * events of the largest lane). Counting drops is the caller's business: every method that removes
 * events says how many.
 */
export class Lanes<Batch extends SizedBatch = readonly TapioEvent[]> {
  private readonly bySource = new Map<string, Lane<Batch>>()
  private list: Lane<Batch>[] = []
  private rr = 0
  /** Events in all lanes. */
  queued = 0

  get(source: string): Lane<Batch> | undefined {
    return this.bySource.get(source)
  }

  /**
   * Registers `source`. Counters are per registration: a source registered again while its old
   * lane still drains gets a new lane; the old one is detached and goes once empty.
   */
  register(source: string): Lane<Batch> {
    const existing = this.bySource.get(source)
    if (existing?.registered) return existing
    const lane: Lane<Batch> = { source, queue: [], head: 0, offset: 0, size: 0, sampleTick: 0, registered: true, counters: emptySourceCounters() }
    this.bySource.set(source, lane)
    this.list.push(lane)
    return lane
  }

  /** Marks the source gone; its lane is removed now if empty, else once drained. */
  unregister(lane: Lane<Batch>): void {
    lane.registered = false
    this.removeIfDone(lane)
  }

  sources(): string[] {
    return this.list.map((l) => l.source)
  }

  /**
   * Lanes that take part in the fair share: registered ones and those still draining (a lane is
   * removed once it is unregistered and empty, so that is every lane there is).
   */
  activeCount(): number {
    return this.list.length
  }

  /** The lane holding the most events (first registered among equals), other than `exclude`. */
  largest(exclude?: Lane<Batch>): Lane<Batch> | undefined {
    let best: Lane<Batch> | undefined
    for (const l of this.list) if (l !== exclude && l.size > 0 && (best === undefined || l.size > best.size)) best = l
    return best
  }

  push(lane: Lane<Batch>, events: Batch): void {
    lane.queue.push(events)
    lane.size += events.length
    this.queued += events.length
  }

  /** Removes up to `count` of the lane's oldest events; returns how many. */
  evictOldest(lane: Lane<Batch>, count: number): number {
    let left = count
    while (left > 0 && lane.size > 0) {
      const b = lane.queue[lane.head] as Batch
      const k = Math.min(left, b.length - lane.offset)
      lane.offset += k
      if (lane.offset >= b.length) this.advanceHead(lane)
      lane.size -= k
      this.queued -= k
      left -= k
    }
    this.removeIfDone(lane)
    return count - left
  }

  /**
   * Removes up to `count` of the newest events of the largest lanes other than `claimer`, never
   * making one smaller than the claimer; calls `evicted(lane, n)` for each cut.
   */
  evictNewestFromLargest(claimer: Lane<Batch>, count: number, evicted: (lane: Lane<Batch>, n: number) => void): void {
    let left = count
    while (left > 0) {
      const victim = this.largest(claimer)
      if (victim === undefined || victim.size <= claimer.size) return
      const tailIndex = victim.queue.length - 1
      const tail = victim.queue[tailIndex] as Batch
      const available = tailIndex === victim.head ? tail.length - victim.offset : tail.length
      const k = Math.min(left, available, victim.size - claimer.size)
      // The whole tail batch, or all that is left of it when it is also the head: drop it (never
      // leave a batch with nothing left to read, which a consumer would receive empty).
      if (k === tail.length || k === available) victim.queue.pop()
      else victim.queue[tailIndex] = tail.slice(0, tail.length - k) as Batch
      if (victim.head >= victim.queue.length) {
        victim.queue = []
        victim.head = 0
        victim.offset = 0
      }
      victim.size -= k
      this.queued -= k
      evicted(victim, k)
      this.removeIfDone(victim)
      left -= k
    }
  }

  /**
   * Takes the next batch round-robin across lanes, at most `maxBatch` events (a larger batch is
   * handed out in pieces). Counts it delivered on the lane.
   */
  pull(maxBatch: number): { readonly lane: Lane<Batch>; readonly batch: Batch } | undefined {
    const n = this.list.length
    for (let k = 0; k < n; k++) {
      const i = (this.rr + k) % n
      const lane = this.list[i] as Lane<Batch>
      if (lane.size === 0) continue
      this.rr = (i + 1) % n
      const b = lane.queue[lane.head] as Batch
      let out: Batch
      if (lane.offset === 0 && b.length <= maxBatch) {
        out = b
        this.advanceHead(lane)
      } else {
        const end = Math.min(b.length, lane.offset + maxBatch)
        out = b.slice(lane.offset, end) as Batch
        lane.offset = end
        if (end >= b.length) this.advanceHead(lane)
      }
      lane.size -= out.length
      this.queued -= out.length
      lane.counters.delivered += out.length
      this.removeIfDone(lane)
      return { lane, batch: out }
    }
    return undefined
  }

  /** Empties every lane (stop gave up draining); returns the events removed per lane. */
  clear(): { readonly lane: Lane<Batch>; readonly n: number }[] {
    const out: { lane: Lane<Batch>; n: number }[] = []
    for (const lane of [...this.list]) {
      if (lane.size > 0) {
        out.push({ lane, n: lane.size })
        this.queued -= lane.size
        lane.size = 0
        lane.queue = []
        lane.head = 0
        lane.offset = 0
      }
      this.removeIfDone(lane)
    }
    return out
  }

  private removeIfDone(lane: Lane<Batch>): void {
    if (lane.registered || lane.size > 0) return
    const i = this.list.indexOf(lane)
    if (i < 0) return
    if (this.bySource.get(lane.source) === lane) this.bySource.delete(lane.source)
    this.list.splice(i, 1)
    if (this.rr > i) this.rr -= 1
    if (this.rr >= this.list.length) this.rr = 0
  }

  private advanceHead(lane: Lane<Batch>): void {
    lane.head += 1
    lane.offset = 0
    if (lane.head === lane.queue.length) {
      lane.queue = []
      lane.head = 0
    } else if (lane.head >= COMPACT_AFTER && lane.head * 2 >= lane.queue.length) {
      lane.queue = lane.queue.slice(lane.head)
      lane.head = 0
    }
  }
}
