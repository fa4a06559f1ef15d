import { type Clock, systemClock } from '../core/clock.js'
import type { TapioEvent } from '../events/event.js'
import { type DropCounts, type DropReason, emptyDropCounts, emptySourceCounters, type SourceCounters } from './counters.js'

/**
 * What happens when the buffer is full.
 * - block: the offering collector waits (backpressure); the default.
 * - drop-newest: incoming events that do not fit are dropped.
 * - drop-oldest: the oldest events of the largest lane make room.
 * - sample: above the high-water mark only 1 in N incoming events per collector is kept.
 */
export type OverflowPolicy = 'block' | 'drop-newest' | 'drop-oldest' | 'sample'
export const OVERFLOW_POLICIES: readonly OverflowPolicy[] = ['block', 'drop-newest', 'drop-oldest', 'sample']

export interface SampleOptions {
  /** Fraction of capacity above which sampling starts (0..1). */
  readonly highWaterMark: number
  /** Keep one event in this many. */
  readonly keepOneIn: number
}

export interface MergeBufferOptions {
  readonly capacity: number
  readonly policy: OverflowPolicy
  readonly sample: SampleOptions
  /** Largest batch handed to a consumer; larger collector batches are split. */
  readonly maxBatch: number
}

export const DEFAULT_BUFFER_OPTIONS: MergeBufferOptions = Object.freeze({
  capacity: 10_000,
  policy: 'block',
  sample: Object.freeze({ highWaterMark: 0.8, keepOneIn: 10 }),
  maxBatch: 4096,
})

type Batch = readonly TapioEvent[]

/** One collector's queue of batches inside the buffer. */
interface Lane {
  readonly source: string
  queue: Batch[]
  head: number
  offset: number
  size: number
  sampleTick: number
  registered: boolean
  readonly counters: SourceCounters
}

interface PendingOffer {
  readonly lane: Lane
  readonly events: Batch
  readonly resolve: () => void
}

/** A consumer's position; every subscription receives every event delivered after it joined. */
export interface Subscription {
  readonly id: number
  /** Events handed to this subscription. */
  received: number
}

interface SubscriptionState extends Subscription {
  cursor: number
}

export interface BufferTotals {
  readonly accepted: number
  readonly delivered: number
  readonly dropped: Readonly<DropCounts>
  /** Events waiting in lanes (not yet delivered). accepted = delivered + dropped + queued. */
  readonly queued: number
  /** Capacity in use: queued plus delivered events a slower subscription has not read yet. */
  readonly size: number
  readonly capacity: number
  readonly policy: OverflowPolicy
  readonly subscriptions: number
  readonly pendingOffers: number
}

const EMPTY: Batch = Object.freeze([]) as Batch

/**
 * The bounded, fair merge point of the data plane. Collectors offer batches into per-collector
 * lanes; consumers take batches round-robin across lanes, so a flooding collector cannot starve
 * the others; every event is counted accepted, then delivered or dropped with a reason.
 *
 * Written by hand rather than with Effect's Queue/PubSub: those count capacity per queue, not
 * fairly per source, cannot tell which source an evicted event came from (needed for exact
 * per-collector drop counts), and have no sampling policy. Effect streams feed it and read it.
 */
export class MergeBuffer {
  readonly options: MergeBufferOptions
  private readonly lanes = new Map<string, Lane>()
  private laneList: Lane[] = []
  private rr = 0
  private queued = 0
  private waiting: PendingOffer[] = []
  private dataWaiters: (() => void)[] = []
  private drainWaiters: (() => void)[] = []
  private readonly subs = new Map<number, SubscriptionState>()
  private nextSubId = 1
  /** Batches delivered to one subscription that others have not read yet (only with >1 subscription). */
  private log: Batch[] = []
  private logBase = 0
  private logEvents = 0
  private closedFlag = false
  private readonly totals = { accepted: 0, delivered: 0, dropped: emptyDropCounts() }

  /** `clock` stamps `lastEventAt` (tests drive a ManualClock). */
  constructor(
    options?: Partial<MergeBufferOptions>,
    private readonly clock: Clock = systemClock,
  ) {
    this.options = { ...DEFAULT_BUFFER_OPTIONS, ...options, sample: { ...DEFAULT_BUFFER_OPTIONS.sample, ...options?.sample } }
    const { capacity, maxBatch, sample, policy } = this.options
    if (!Number.isInteger(capacity) || capacity < 1) throw new RangeError(`buffer capacity: expected an integer >= 1, got ${capacity}`)
    if (!Number.isInteger(maxBatch) || maxBatch < 1) throw new RangeError(`buffer maxBatch: expected an integer >= 1, got ${maxBatch}`)
    if (!OVERFLOW_POLICIES.includes(policy)) throw new RangeError(`buffer policy: expected one of ${OVERFLOW_POLICIES.join(', ')}, got ${String(policy)}`)
    if (!(sample.highWaterMark >= 0 && sample.highWaterMark <= 1))
      throw new RangeError(`buffer sample.highWaterMark: expected a fraction in [0, 1], got ${sample.highWaterMark}`)
    if (!Number.isInteger(sample.keepOneIn) || sample.keepOneIn < 1)
      throw new RangeError(`buffer sample.keepOneIn: expected an integer >= 1, got ${sample.keepOneIn}`)
  }

  get closed(): boolean {
    return this.closedFlag
  }

  /** Capacity in use (queued + unread by some subscription). */
  get size(): number {
    return this.queued + this.logEvents
  }

  // ---- sources -------------------------------------------------------------------------

  registerSource(source: string): void {
    const existing = this.lanes.get(source)
    if (existing) {
      existing.registered = true
      return
    }
    const lane: Lane = {
      source,
      queue: [],
      head: 0,
      offset: 0,
      size: 0,
      sampleTick: 0,
      registered: true,
      counters: emptySourceCounters(),
    }
    this.lanes.set(source, lane)
    this.laneList.push(lane)
  }

  /** The source's queued events are still delivered; its lane goes once it is empty. */
  unregisterSource(source: string): void {
    const lane = this.lanes.get(source)
    if (!lane) return
    lane.registered = false
    this.cancelPending(source)
    if (lane.size === 0) this.dropLane(lane)
  }

  sourceCounters(source: string): Readonly<SourceCounters> | undefined {
    const lane = this.lanes.get(source)
    if (!lane) return undefined
    return { ...lane.counters, dropped: { ...lane.counters.dropped }, buffered: lane.size }
  }

  sources(): string[] {
    return this.laneList.map((l) => l.source)
  }

  private dropLane(lane: Lane): void {
    this.lanes.delete(lane.source)
    const i = this.laneList.indexOf(lane)
    if (i >= 0) {
      this.laneList.splice(i, 1)
      if (this.rr > i) this.rr -= 1
      if (this.rr >= this.laneList.length) this.rr = 0
    }
  }

  // ---- producers -----------------------------------------------------------------------

  /**
   * Offer a batch from `source`. Returns undefined when handled at once, or a promise that
   * resolves when a blocked batch has been admitted (policy `block`).
   */
  offer(source: string, events: Batch): Promise<void> | undefined {
    const n = events.length
    if (n === 0) return undefined
    const lane = this.lanes.get(source)
    if (!lane) throw new Error(`merge buffer: unknown source "${source}"`)
    lane.counters.lastEventAt = this.clock.now()
    if (this.closedFlag) {
      this.count(lane, n)
      this.drop(lane, 'shutdown', n)
      return undefined
    }
    switch (this.options.policy) {
      case 'block':
        return this.offerBlocking(lane, events)
      case 'drop-newest':
        this.count(lane, n)
        this.admitOrDropNewest(lane, events)
        return undefined
      case 'drop-oldest':
        this.count(lane, n)
        this.admitEvictingOldest(lane, events)
        return undefined
      case 'sample':
        this.count(lane, n)
        this.admitSampled(lane, events)
        return undefined
    }
  }

  /** Count events that reached the manager from a collector but were not events at all. */
  countInvalid(source: string, n: number): void {
    const lane = this.lanes.get(source)
    if (!lane || n <= 0) return
    this.count(lane, n)
    this.drop(lane, 'invalid', n)
  }

  /** Forget blocked offers of a source (its pump was interrupted); they count as dropped. */
  cancelPending(source: string): void {
    if (!this.waiting.some((w) => w.lane.source === source)) return
    const keep: PendingOffer[] = []
    for (const w of this.waiting) {
      if (w.lane.source === source) {
        this.count(w.lane, w.events.length)
        this.drop(w.lane, 'shutdown', w.events.length)
        w.resolve()
      } else keep.push(w)
    }
    this.waiting = keep
  }

  private offerBlocking(lane: Lane, events: Batch): Promise<void> | undefined {
    if (this.closedFlag) {
      this.count(lane, events.length)
      this.drop(lane, 'shutdown', events.length)
      return undefined
    }
    const cap = this.options.capacity
    if (events.length > cap) {
      // Larger than the whole buffer: admit it in capacity-sized pieces, in order.
      return (async () => {
        for (let i = 0; i < events.length; i += cap) {
          const p = this.offerBlocking(lane, events.slice(i, i + cap))
          if (p) await p
        }
      })()
    }
    if (this.waiting.length === 0 && this.size + events.length <= cap) {
      this.count(lane, events.length)
      this.push(lane, events)
      return undefined
    }
    return new Promise<void>((resolve) => {
      this.waiting.push({ lane, events, resolve })
    })
  }

  private admitWaiters(): void {
    const cap = this.options.capacity
    while (this.waiting.length > 0) {
      const w = this.waiting[0] as PendingOffer
      if (this.size + w.events.length > cap) return
      this.waiting.shift()
      this.count(w.lane, w.events.length)
      this.push(w.lane, w.events)
      w.resolve()
    }
  }

  private admitOrDropNewest(lane: Lane, events: Batch): void {
    const cap = this.options.capacity
    let free = cap - this.size
    if (events.length > free) {
      // A collector below its fair share takes room from the largest lane's newest events,
      // so one flooding collector cannot lock the others out.
      const share = Math.floor(cap / Math.max(1, this.activeLaneCount()))
      const claim = Math.min(events.length - free, Math.max(0, share - lane.size))
      if (claim > 0) this.evictNewestFromLargest(lane, claim)
      free = cap - this.size
    }
    const take = Math.max(0, Math.min(events.length, free))
    if (take > 0) this.push(lane, take === events.length ? events : events.slice(0, take))
    if (take < events.length) this.drop(lane, 'buffer_full', events.length - take)
  }

  private admitEvictingOldest(lane: Lane, events: Batch): void {
    const cap = this.options.capacity
    let batch = events
    if (batch.length > cap) {
      this.drop(lane, 'evicted', batch.length - cap)
      batch = batch.slice(batch.length - cap)
    }
    let need = this.size + batch.length - cap
    while (need > 0) {
      const victim = this.largestLane()
      if (!victim) break
      need -= this.evictOldest(victim, need)
    }
    if (need > 0) {
      // Only unread delivered batches remain (slow subscription): those cannot be evicted.
      this.drop(lane, 'buffer_full', need)
      batch = batch.slice(need)
    }
    if (batch.length > 0) this.push(lane, batch)
  }

  private admitSampled(lane: Lane, events: Batch): void {
    const { highWaterMark, keepOneIn } = this.options.sample
    if (this.size < highWaterMark * this.options.capacity || keepOneIn === 1) {
      this.admitOrDropNewest(lane, events)
      return
    }
    const kept: TapioEvent[] = []
    for (const e of events) {
      if (lane.sampleTick % keepOneIn === 0) kept.push(e)
      lane.sampleTick += 1
    }
    this.drop(lane, 'sampled', events.length - kept.length)
    if (kept.length > 0) this.admitOrDropNewest(lane, kept)
  }

  private activeLaneCount(): number {
    let n = 0
    for (const l of this.laneList) if (l.registered || l.size > 0) n += 1
    return n
  }

  private largestLane(exclude?: Lane): Lane | undefined {
    let best: Lane | undefined
    for (const l of this.laneList) if (l !== exclude && l.size > 0 && (!best || l.size > best.size)) best = l
    return best
  }

  private evictNewestFromLargest(claimer: Lane, count: number): void {
    let left = count
    while (left > 0) {
      const victim = this.largestLane(claimer)
      if (!victim || victim.size <= claimer.size) return
      const tailIndex = victim.queue.length - 1
      const tail = victim.queue[tailIndex] as Batch
      const available = tailIndex === victim.head ? tail.length - victim.offset : tail.length
      const k = Math.min(left, available, victim.size - claimer.size)
      if (k <= 0) return
      if (k === tail.length) victim.queue.pop()
      else victim.queue[tailIndex] = tail.slice(0, tail.length - k)
      if (victim.head >= victim.queue.length) {
        victim.queue = []
        victim.head = 0
        victim.offset = 0
      }
      victim.size -= k
      this.queued -= k
      this.drop(victim, 'buffer_full', k)
      left -= k
    }
  }

  private evictOldest(lane: Lane, count: number): number {
    let left = count
    while (left > 0 && lane.size > 0) {
      const b = lane.queue[lane.head] as Batch
      const k = Math.min(left, b.length - lane.offset)
      lane.offset += k
      if (lane.offset >= b.length) this.advanceHead(lane)
      lane.size -= k
      this.queued -= k
      this.drop(lane, 'evicted', k)
      left -= k
    }
    if (lane.size === 0 && !lane.registered) this.dropLane(lane)
    return count - left
  }

  private count(lane: Lane, n: number): void {
    lane.counters.accepted += n
    this.totals.accepted += n
  }

  private drop(lane: Lane, reason: DropReason, n: number): void {
    if (n <= 0) return
    lane.counters.dropped[reason] += n
    this.totals.dropped[reason] += n
  }

  private push(lane: Lane, events: Batch): void {
    lane.queue.push(events)
    lane.size += events.length
    this.queued += events.length
    if (this.dataWaiters.length > 0) this.wakeConsumers()
  }

  private advanceHead(lane: Lane): void {
    lane.head += 1
    lane.offset = 0
    if (lane.head === lane.queue.length) {
      lane.queue = []
      lane.head = 0
    } else if (lane.head >= 64 && lane.head * 2 >= lane.queue.length) {
      lane.queue = lane.queue.slice(lane.head)
      lane.head = 0
    }
  }

  // ---- consumers -----------------------------------------------------------------------

  subscribe(): Subscription {
    const sub: SubscriptionState = { id: this.nextSubId++, received: 0, cursor: this.logBase + this.log.length }
    this.subs.set(sub.id, sub)
    return sub
  }

  unsubscribe(sub: Subscription): void {
    if (!this.subs.delete(sub.id)) return
    this.trimLog()
    if (this.subs.size === 0) this.wakeConsumers()
    this.checkDrained()
  }

  /** The next batch for `sub`, or undefined when nothing is available right now. */
  take(sub: Subscription): Batch | undefined {
    const s = this.subs.get(sub.id)
    if (!s) return undefined
    const idx = s.cursor - this.logBase
    if (idx < this.log.length) {
      const b = this.log[idx] as Batch
      s.cursor += 1
      s.received += b.length
      this.trimLog()
      if (this.drainWaiters.length > 0) this.checkDrained()
      return b
    }
    const b = this.pullFromLanes()
    if (b === undefined) return undefined
    s.received += b.length
    if (this.subs.size > 1) {
      this.log.push(b)
      this.logEvents += b.length
      s.cursor += 1
      this.trimLog()
    }
    this.admitWaiters()
    if (this.drainWaiters.length > 0) this.checkDrained()
    return b
  }

  /**
   * Resolves when every queued event has been taken and read by every subscription, or when
   * no subscription is left to read them.
   */
  whenDrainedOrUnread(): Promise<void> {
    return new Promise<void>((resolve) => {
      this.drainWaiters.push(resolve)
      this.checkDrained()
    })
  }

  private checkDrained(): void {
    if (!(this.drained() || this.subs.size === 0)) return
    const ws = this.drainWaiters
    this.drainWaiters = []
    for (const w of ws) w()
  }

  /** True when `sub` will never get another batch (closed and drained for it). */
  exhausted(sub: Subscription): boolean {
    const s = this.subs.get(sub.id)
    if (!s) return true
    return this.closedFlag && this.queued === 0 && s.cursor - this.logBase >= this.log.length
  }

  /** Resolves on the next admission, close or abandon. */
  whenData(): Promise<void> {
    return new Promise<void>((resolve) => this.dataWaiters.push(resolve))
  }

  private wakeConsumers(): void {
    const ws = this.dataWaiters
    this.dataWaiters = []
    for (const w of ws) w()
  }

  private pullFromLanes(): Batch | undefined {
    const lanes = this.laneList
    const n = lanes.length
    for (let k = 0; k < n; k++) {
      const i = (this.rr + k) % n
      const lane = lanes[i] as Lane
      if (lane.size === 0) continue
      this.rr = (i + 1) % n
      const b = lane.queue[lane.head] as Batch
      const max = this.options.maxBatch
      let out: Batch
      if (lane.offset === 0 && b.length <= max) {
        out = b
        this.advanceHead(lane)
      } else {
        const end = Math.min(b.length, lane.offset + max)
        out = b.slice(lane.offset, end)
        lane.offset = end
        if (end >= b.length) this.advanceHead(lane)
      }
      lane.size -= out.length
      this.queued -= out.length
      lane.counters.delivered += out.length
      this.totals.delivered += out.length
      if (lane.size === 0 && !lane.registered) this.dropLane(lane)
      return out
    }
    return undefined
  }

  private trimLog(): void {
    if (this.log.length === 0) return
    let min = Number.POSITIVE_INFINITY
    for (const s of this.subs.values()) if (s.cursor < min) min = s.cursor
    if (min === Number.POSITIVE_INFINITY) min = this.logBase + this.log.length
    let dropCount = 0
    while (this.logBase + dropCount < min && dropCount < this.log.length) {
      this.logEvents -= (this.log[dropCount] as Batch).length
      dropCount += 1
    }
    if (dropCount > 0) {
      this.log = this.log.slice(dropCount)
      this.logBase += dropCount
      this.admitWaiters()
    }
  }

  // ---- shutdown ------------------------------------------------------------------------

  /** No more offers; consumers drain what is queued, then complete. */
  close(): void {
    if (this.closedFlag) return
    this.closedFlag = true
    for (const w of this.waiting) {
      this.count(w.lane, w.events.length)
      this.drop(w.lane, 'shutdown', w.events.length)
      w.resolve()
    }
    this.waiting = []
    this.wakeConsumers()
  }

  /** Give up draining: everything still queued is counted dropped (`shutdown`). */
  abandon(): number {
    this.close()
    let n = 0
    for (const lane of [...this.laneList]) {
      if (lane.size > 0) {
        n += lane.size
        this.drop(lane, 'shutdown', lane.size)
        this.queued -= lane.size
        lane.size = 0
        lane.queue = []
        lane.head = 0
        lane.offset = 0
      }
      if (!lane.registered) this.dropLane(lane)
    }
    this.logBase += this.log.length
    this.log = []
    this.logEvents = 0
    for (const s of this.subs.values()) s.cursor = this.logBase
    this.wakeConsumers()
    this.checkDrained()
    return n
  }

  /** Whether everything accepted has left the lanes and every subscription has read it. */
  drained(): boolean {
    return this.queued === 0 && this.logEvents === 0 && this.waiting.length === 0
  }

  stats(): BufferTotals {
    return {
      accepted: this.totals.accepted,
      delivered: this.totals.delivered,
      dropped: { ...this.totals.dropped },
      queued: this.queued,
      size: this.size,
      capacity: this.options.capacity,
      policy: this.options.policy,
      subscriptions: this.subs.size,
      pendingOffers: this.waiting.length,
    }
  }

  static readonly EMPTY_BATCH: Batch = EMPTY
}
