import { type Clock, systemClock } from '../core/clock.js'
import type { TapioEvent } from '../events/event.js'
import { type DropCounts, type DropReason, emptyDropCounts, type SourceCounters } from './counters.js'
import { type Batch, eventsOf } from './deferred-batch.js'
import { type Lane as LaneOf, Lanes } from './lanes.js'
import { type Subscription, SubscriptionLog } from './subscription-log.js'

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

interface PendingOffer {
  readonly lane: Lane
  readonly events: Batch
  /** Events of `events` admitted so far (a batch larger than the capacity goes in pieces). */
  admitted: number
  readonly resolve: () => void
}

export type { Subscription } from './subscription-log.js'

type Lane = LaneOf<Batch>

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

const EMPTY: Batch = Object.freeze([]) as readonly TapioEvent[]

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
  private readonly lanes = new Lanes<Batch>()
  private readonly subs = new SubscriptionLog()
  /** Blocked offers (policy `block`), admitted in FIFO order. */
  private waiting: PendingOffer[] = []
  private dataWaiters: (() => void)[] = []
  private drainWaiters: (() => void)[] = []
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
    return this.lanes.queued + this.subs.unread
  }

  // ---- sources -------------------------------------------------------------------------

  registerSource(source: string): void {
    this.lanes.register(source)
  }

  /** The source's queued events are still delivered; its lane goes once it is empty. */
  unregisterSource(source: string): void {
    const lane = this.lanes.get(source)
    if (!lane) return
    this.cancelPending(source)
    this.lanes.unregister(lane)
  }

  sourceCounters(source: string): Readonly<SourceCounters> | undefined {
    const lane = this.lanes.get(source)
    if (!lane) return undefined
    return { ...lane.counters, dropped: { ...lane.counters.dropped }, buffered: lane.size }
  }

  sources(): string[] {
    return this.lanes.sources()
  }

  // ---- producers -----------------------------------------------------------------------

  /**
   * Offer a batch from `source`. Returns undefined when handled at once, or a promise that
   * resolves when a blocked batch has been admitted (policy `block`), or counted dropped
   * (`shutdown`) because the buffer closed or the source's pump was interrupted.
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

  /** Forget blocked offers of a source (its pump was interrupted); what was not admitted counts dropped. */
  cancelPending(source: string): void {
    if (!this.waiting.some((w) => w.lane.source === source)) return
    const keep: PendingOffer[] = []
    for (const w of this.waiting) {
      if (w.lane.source === source) this.refuse(w)
      else keep.push(w)
    }
    this.waiting = keep
    // The head of the queue may have changed: those behind a cancelled offer may fit now.
    this.admitWaiters()
  }

  /** A blocked offer that will not be admitted: its remaining events count `shutdown`; the offerer goes on. */
  private refuse(w: PendingOffer): void {
    const rest = w.events.length - w.admitted
    this.count(w.lane, rest)
    this.drop(w.lane, 'shutdown', rest)
    w.resolve()
  }

  private offerBlocking(lane: Lane, events: Batch): Promise<void> | undefined {
    if (this.waiting.length === 0 && this.size + events.length <= this.options.capacity) {
      this.count(lane, events.length)
      this.push(lane, events)
      return undefined
    }
    return new Promise<void>((resolve) => {
      this.waiting.push({ lane, events, admitted: 0, resolve })
      // A batch larger than the capacity may start at once with its first piece.
      this.admitWaiters()
    })
  }

  /**
   * Admit blocked offers in FIFO order while they fit. A batch that fits the capacity goes in
   * whole; a larger one goes in capacity-sized pieces, each as soon as the buffer has room for it.
   */
  private admitWaiters(): void {
    const cap = this.options.capacity
    while (this.waiting.length > 0) {
      const w = this.waiting[0] as PendingOffer
      const piece = Math.min(cap, w.events.length - w.admitted)
      if (this.size + piece > cap) return
      const part = piece === w.events.length ? w.events : w.events.slice(w.admitted, w.admitted + piece)
      w.admitted += piece
      this.count(w.lane, piece)
      this.push(w.lane, part)
      if (w.admitted < w.events.length) continue
      this.waiting.shift()
      w.resolve()
    }
  }

  private admitOrDropNewest(lane: Lane, events: Batch): void {
    const cap = this.options.capacity
    let free = cap - this.size
    if (events.length > free) {
      // A collector below its fair share takes room from the largest lane's newest events,
      // so one flooding collector cannot lock the others out.
      const share = Math.floor(cap / Math.max(1, this.lanes.activeCount()))
      const claim = Math.min(events.length - free, share - lane.size)
      if (claim > 0) this.lanes.evictNewestFromLargest(lane, claim, (victim, k) => this.drop(victim, 'buffer_full', k))
      free = cap - this.size
    }
    const take = Math.max(0, Math.min(events.length, free))
    if (take > 0) this.push(lane, take === events.length ? events : events.slice(0, take))
    this.drop(lane, 'buffer_full', events.length - take)
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
      const victim = this.lanes.largest()
      if (!victim) break
      const n = this.lanes.evictOldest(victim, need)
      this.drop(victim, 'evicted', n)
      need -= n
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
    // Sampling picks single events: a deferred batch becomes objects here.
    for (const e of eventsOf(events)) {
      if (lane.sampleTick % keepOneIn === 0) kept.push(e)
      lane.sampleTick += 1
    }
    this.drop(lane, 'sampled', events.length - kept.length)
    if (kept.length > 0) this.admitOrDropNewest(lane, kept)
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
    this.lanes.push(lane, events)
    if (this.dataWaiters.length > 0) this.wakeConsumers()
  }

  // ---- consumers -----------------------------------------------------------------------

  subscribe(): Subscription {
    return this.subs.subscribe()
  }

  unsubscribe(sub: Subscription): void {
    if (!this.subs.unsubscribe(sub)) return
    // What only it had left to read is forgotten: room for blocked offers.
    this.admitWaiters()
    if (this.subs.count === 0) this.wakeConsumers()
    this.checkDrained()
  }

  /** The next batch for `sub` as events, or undefined when nothing is available right now. */
  take(sub: Subscription): readonly TapioEvent[] | undefined {
    const b = this.takeBatch(sub)
    return b === undefined ? undefined : eventsOf(b)
  }

  /** Like `take`, a deferred batch left as it is (for consumers that want its NDJSON, not objects). */
  takeBatch(sub: Subscription): Batch | undefined {
    if (!this.subs.has(sub)) return undefined
    const logged = this.subs.readLogged(sub)
    if (logged !== undefined) {
      if (this.subs.trim()) this.admitWaiters()
      this.checkDrained()
      return logged
    }
    const pulled = this.lanes.pull(this.options.maxBatch)
    if (pulled === undefined) return undefined
    this.totals.delivered += pulled.batch.length
    this.subs.delivered(sub, pulled.batch)
    this.subs.trim()
    this.admitWaiters()
    this.checkDrained()
    return pulled.batch
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
    if (this.drainWaiters.length === 0 || !(this.drained() || this.subs.count === 0)) return
    const ws = this.drainWaiters
    this.drainWaiters = []
    for (const w of ws) w()
  }

  /** True when `sub` will never get another batch (closed and drained for it). */
  exhausted(sub: Subscription): boolean {
    if (!this.subs.has(sub)) return true
    return this.closedFlag && this.lanes.queued === 0 && this.subs.caughtUp(sub)
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

  // ---- shutdown ------------------------------------------------------------------------

  /** No more offers (blocked ones count `shutdown`); consumers drain what is queued, then complete. */
  close(): void {
    if (this.closedFlag) return
    this.closedFlag = true
    for (const w of this.waiting) this.refuse(w)
    this.waiting = []
    this.wakeConsumers()
  }

  /** Give up draining: everything still queued is counted dropped (`shutdown`). */
  abandon(): number {
    this.close()
    let n = 0
    for (const { lane, n: k } of this.lanes.clear()) {
      n += k
      this.drop(lane, 'shutdown', k)
    }
    this.subs.discard()
    this.wakeConsumers()
    this.checkDrained()
    return n
  }

  /** Whether everything accepted has left the lanes and every subscription has read it. */
  drained(): boolean {
    return this.lanes.queued === 0 && this.subs.unread === 0 && this.waiting.length === 0
  }

  stats(): BufferTotals {
    return {
      accepted: this.totals.accepted,
      delivered: this.totals.delivered,
      dropped: { ...this.totals.dropped },
      queued: this.lanes.queued,
      size: this.size,
      capacity: this.options.capacity,
      policy: this.options.policy,
      subscriptions: this.subs.count,
      pendingOffers: this.waiting.length,
    }
  }

  static readonly EMPTY_BATCH: Batch = EMPTY
}
