import type * as Stream from 'effect/Stream'
import { lazyModule } from '../core/lazy-module.js'
import type { TapioEvent } from '../events/event.js'
import type { Batch as AnyBatch } from './deferred-batch.js'
import type { MergeBuffer, Subscription } from './merge-buffer.js'

type Batch = readonly TapioEvent[]

const DONE: IteratorReturnResult<undefined> = Object.freeze({ done: true, value: undefined })

/**
 * Batches for one subscription; completes when the buffer is closed and drained. `take` says in
 * which form: events (`batches()`), or deferred batches left encoded (the agent's NDJSON outputs).
 */
class BatchIterator<B extends AnyBatch> implements AsyncIterableIterator<B> {
  private finished = false
  constructor(
    private readonly buffer: MergeBuffer,
    private readonly sub: Subscription,
    private readonly take: (buffer: MergeBuffer, sub: Subscription) => B | undefined,
  ) {}

  [Symbol.asyncIterator](): AsyncIterableIterator<B> {
    return this
  }

  async next(): Promise<IteratorResult<B>> {
    while (!this.finished) {
      const b = this.take(this.buffer, this.sub)
      if (b !== undefined) return { done: false, value: b }
      if (this.buffer.exhausted(this.sub)) break
      await this.buffer.whenData()
    }
    this.finish()
    return DONE
  }

  async return(): Promise<IteratorResult<B>> {
    this.finish()
    return DONE
  }

  private finish(): void {
    if (this.finished) return
    this.finished = true
    this.buffer.unsubscribe(this.sub)
  }
}

const takeEvents = (buffer: MergeBuffer, sub: Subscription): Batch | undefined => buffer.take(sub)
const takeAsIs = (buffer: MergeBuffer, sub: Subscription): AnyBatch | undefined => buffer.takeBatch(sub)

/**
 * Single events for one subscription. Hand-written rather than an async generator: it answers
 * from the current batch with an already-resolved promise, which is what makes millions of
 * events per second possible through `for await`.
 */
class EventIterator implements AsyncIterableIterator<TapioEvent> {
  private batch: Batch = []
  private i = 0
  private finished = false
  constructor(
    private readonly buffer: MergeBuffer,
    private readonly sub: Subscription,
  ) {}

  [Symbol.asyncIterator](): AsyncIterableIterator<TapioEvent> {
    return this
  }

  next(): Promise<IteratorResult<TapioEvent>> {
    if (this.i < this.batch.length) {
      return Promise.resolve({ done: false, value: this.batch[this.i++] as TapioEvent })
    }
    if (!this.finished) {
      const b = this.buffer.take(this.sub)
      if (b !== undefined && b.length > 0) {
        this.batch = b
        this.i = 1
        return Promise.resolve({ done: false, value: b[0] as TapioEvent })
      }
    }
    return this.slowNext()
  }

  private async slowNext(): Promise<IteratorResult<TapioEvent>> {
    while (!this.finished) {
      const b = this.buffer.take(this.sub)
      if (b !== undefined && b.length > 0) {
        this.batch = b
        this.i = 1
        return { done: false, value: b[0] as TapioEvent }
      }
      if (this.buffer.exhausted(this.sub)) break
      await this.buffer.whenData()
    }
    this.finish()
    return DONE
  }

  async return(): Promise<IteratorResult<TapioEvent>> {
    this.finish()
    return DONE
  }

  private finish(): void {
    if (this.finished) return
    this.finished = true
    this.batch = []
    this.i = 0
    this.buffer.unsubscribe(this.sub)
  }
}

/**
 * Each call is its own subscription, receiving every event delivered after it subscribed; the
 * subscription starts at the call (not at the first `next()`), so nothing slips in between.
 */
export function batchesOf(buffer: MergeBuffer): AsyncIterableIterator<Batch> {
  return new BatchIterator(buffer, buffer.subscribe(), takeEvents)
}

/** Like `batchesOf`, with deferred batches as they are: whoever reads them asks for objects or NDJSON. */
export function encodedBatchesOf(buffer: MergeBuffer): AsyncIterableIterator<AnyBatch> {
  return new BatchIterator(buffer, buffer.subscribe(), takeAsIs)
}

export function eventsOf(buffer: MergeBuffer): AsyncIterableIterator<TapioEvent> {
  return new EventIterator(buffer, buffer.subscribe())
}

// Loaded when the merged stream is first asked for as an Effect Stream (lazy-module.ts).
const streamModule = lazyModule('effect/Stream')

/** The merged stream as an Effect Stream; batches become its chunks. Subscribes when run. */
export function streamOf(buffer: MergeBuffer): Stream.Stream<TapioEvent> {
  const Stream = streamModule()
  return Stream.suspend(() =>
    Stream.fromAsyncIterable(batchesOf(buffer), (e) => e).pipe(
      Stream.filter((b): b is readonly [TapioEvent, ...TapioEvent[]] => b.length > 0),
      Stream.flattenArray,
      Stream.orDie,
    ),
  )
}
