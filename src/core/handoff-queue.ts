import type { EventInput } from '../events/event.js'

/**
 * What a full hand-off queue gives up:
 * - `newest`: the incoming batch (its events counted `queue_full`);
 * - `oldest`: the oldest queued batches, until the incoming one fits (counted `queue_evicted`).
 */
export type HandoffOverflow = 'newest' | 'oldest'

/** Why the hand-off queue lost an event. */
export type HandoffDropReason =
  /** `newest`: no room for the incoming batch. */
  | 'queue_full'
  /** `oldest`: pushed out by a newer batch. */
  | 'queue_evicted'
  /** Produced after the consumer went away or the queue ended; nobody will read it. */
  | 'discarded'

export interface HandoffQueueOptions {
  /** Most events queued at once (`Infinity` when the producer bounds itself). */
  readonly capacity: number
  readonly overflow: HandoffOverflow
  /**
   * Told how many batches left the queue (taken, evicted or discarded); lets a source with its own
   * flow control (the eBPF ring's batches in flight) hand buffers back.
   */
  readonly onRelease?: (batches: number) => void
}

/** The standard counters every collector's queue reports. `pushed = taken + dropped + queued` always. */
export interface HandoffCounters {
  /** Events offered by the producer. */
  readonly pushed: number
  /** Events handed to the consumer of `events()`. */
  readonly taken: number
  readonly dropped: Readonly<Record<HandoffDropReason, number>>
  /** Events waiting for the consumer now. */
  readonly queued: number
}

/** What the queue holds: an array of events, or any batch that can say its length and be cut. */
export interface QueueableBatch {
  readonly length: number
  slice(start?: number, end?: number): QueueableBatch
}

const DONE: IteratorReturnResult<undefined> = Object.freeze({ done: true, value: undefined })

/**
 * The one hand-off between a collector's producers (watch callbacks, bus signals, native threads)
 * and the single consumer of its `events()`. Batches stay whole (a batch is queued, taken or
 * dropped as one), memory is bounded by `capacity` events, `end()` lets the consumer finish after
 * what is queued and `fail(error)` makes it throw after what is queued. If the consumer stops
 * reading (its iterator's `return()`, as when the pump is interrupted), what is queued and what
 * is pushed later is counted `discarded`.
 *
 * Hand-written rather than an Effect `Queue`: it must count every event it loses by reason, drop
 * whole batches, and answer `next()` without allocating a promise when a batch is ready.
 */
export class HandoffQueue<Batch extends QueueableBatch = readonly EventInput[]> implements AsyncIterable<Batch> {
  private batches: Batch[] = []
  private head = 0
  private size = 0
  private waiter: (() => void) | undefined
  private ended = false
  private failure: Error | undefined
  private consumerGone = false
  private iterated = false
  private pushedCount = 0
  private takenCount = 0
  private readonly drops: Record<HandoffDropReason, number> = { queue_full: 0, queue_evicted: 0, discarded: 0 }

  constructor(private readonly options: HandoffQueueOptions) {
    if (!(options.capacity >= 1)) throw new RangeError(`hand-off queue capacity: expected >= 1, got ${options.capacity}`)
  }

  /**
   * Offer a batch; it is queued whole or counted dropped. Only a batch larger than the whole
   * capacity is cut (to its first events under `newest`, its last under `oldest`), so memory stays
   * bounded. The queue keeps the array: don't reuse it.
   */
  push(batch: Batch): void {
    const n = batch.length
    if (n === 0) return
    this.pushedCount += n
    if (this.ended || this.failure !== undefined || this.consumerGone) {
      this.drop('discarded', n, 1)
      return
    }
    const { capacity, overflow } = this.options
    if (this.size + n > capacity) {
      if (overflow === 'newest' && this.size > 0) {
        this.drop('queue_full', n, 1)
        return
      }
      while (this.size > 0 && this.size + n > capacity) {
        const old = this.shift() as Batch
        this.drop('queue_evicted', old.length, 1)
      }
      if (n > capacity) {
        this.drops[overflow === 'newest' ? 'queue_full' : 'queue_evicted'] += n - capacity
        batch = (overflow === 'newest' ? batch.slice(0, capacity) : batch.slice(n - capacity)) as Batch
      }
    }
    this.batches.push(batch)
    this.size += batch.length
    this.wake()
  }

  /** The consumer ends after what is queued. */
  end(): void {
    this.ended = true
    this.wake()
  }

  /** The consumer throws `error` after what is queued (the first failure wins; none after end). */
  fail(error: Error): void {
    if (this.ended || this.failure !== undefined) return
    this.failure = error
    this.wake()
  }

  /** The error given to `fail()`, if any. */
  get failedWith(): Error | undefined {
    return this.failure
  }

  get isEnded(): boolean {
    return this.ended || this.failure !== undefined
  }

  /** Events waiting for the consumer. */
  get queued(): number {
    return this.size
  }

  counters(): HandoffCounters {
    return { pushed: this.pushedCount, taken: this.takenCount, dropped: { ...this.drops }, queued: this.size }
  }

  /** One consumer per queue: a second iteration is a caller bug and throws. */
  [Symbol.asyncIterator](): AsyncIterator<Batch> {
    if (this.iterated) throw new Error('hand-off queue: events() may be read once per start')
    this.iterated = true
    return {
      next: () => this.next(),
      return: () => {
        this.abandon()
        return Promise.resolve(DONE)
      },
    }
  }

  private next(): Promise<IteratorResult<Batch>> {
    const batch = this.shift()
    if (batch !== undefined) {
      this.takenCount += batch.length
      this.options.onRelease?.(1)
      return Promise.resolve({ done: false, value: batch })
    }
    if (this.failure !== undefined) return Promise.reject(this.failure)
    if (this.ended || this.consumerGone) return Promise.resolve(DONE)
    return new Promise<void>((resolve) => {
      this.waiter = resolve
    }).then(() => this.next())
  }

  /** The consumer is gone: what is queued will never be read. */
  private abandon(): void {
    this.consumerGone = true
    let batches = 0
    let events = 0
    for (let b = this.shift(); b !== undefined; b = this.shift()) {
      batches += 1
      events += b.length
    }
    if (batches > 0) this.drop('discarded', events, batches)
    this.wake()
  }

  private shift(): Batch | undefined {
    if (this.head >= this.batches.length) return undefined
    const b = this.batches[this.head] as Batch
    this.batches[this.head] = EMPTY as unknown as Batch
    this.head += 1
    this.size -= b.length
    if (this.head === this.batches.length) {
      this.batches = []
      this.head = 0
    } else if (this.head > 1024 && this.head * 2 > this.batches.length) {
      this.batches = this.batches.slice(this.head)
      this.head = 0
    }
    return b
  }

  private drop(reason: HandoffDropReason, events: number, batches: number): void {
    this.drops[reason] += events
    this.options.onRelease?.(batches)
  }

  private wake(): void {
    const w = this.waiter
    this.waiter = undefined
    w?.()
  }
}

const EMPTY: readonly EventInput[] = Object.freeze([])

/**
 * The counters of every queue one collector instance has used (one per start), so a restarted
 * instance keeps counting where it left off.
 */
export class HandoffTotals {
  private pushed = 0
  private taken = 0
  private readonly drops: Record<HandoffDropReason, number> = { queue_full: 0, queue_evicted: 0, discarded: 0 }
  private current: HandoffQueue | undefined

  /** A new queue for a new start; the previous one's counters are kept. */
  open(options: HandoffQueueOptions): HandoffQueue {
    this.retireCurrent()
    this.current = new HandoffQueue(options)
    return this.current
  }

  counters(): HandoffCounters {
    const c = this.current?.counters()
    const dropped = { ...this.drops }
    if (c) for (const k of Object.keys(dropped) as HandoffDropReason[]) dropped[k] += c.dropped[k]
    return {
      pushed: this.pushed + (c?.pushed ?? 0),
      taken: this.taken + (c?.taken ?? 0),
      dropped,
      queued: c?.queued ?? 0,
    }
  }

  private retireCurrent(): void {
    const q = this.current
    if (!q) return
    const c = q.counters()
    this.pushed += c.pushed
    this.taken += c.taken
    for (const k of Object.keys(this.drops) as HandoffDropReason[]) this.drops[k] += c.dropped[k]
    // A replaced queue's leftovers are never read.
    this.drops.discarded += c.queued
    this.current = undefined
  }
}
