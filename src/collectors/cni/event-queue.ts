import type { CollectorOutput } from '../../core/collector.js'
import type { EventInput } from '../../events/event.js'

/**
 * Hands batches from several producers (netlink thread callbacks, directory scans) to the one
 * consumer of events(). Bounded: beyond `capacity` queued events new ones are dropped and
 * counted, because a stalled consumer must not grow memory without limit.
 */
export class EventQueue {
  private batches: EventInput[][] = []
  private queued = 0
  private waiter: (() => void) | undefined
  private ended = false
  private failure: Error | undefined
  dropped = 0

  constructor(private readonly capacity: number) {}

  push(batch: readonly EventInput[]): void {
    if (this.ended || this.failure || batch.length === 0) return
    const room = this.capacity - this.queued
    if (room <= 0) {
      this.dropped += batch.length
      return
    }
    const accepted = batch.length > room ? batch.slice(0, room) : [...batch]
    this.dropped += batch.length - accepted.length
    this.batches.push(accepted)
    this.queued += accepted.length
    this.wake()
  }

  /** The consumer loop ends after what is queued. */
  end(): void {
    this.ended = true
    this.wake()
  }

  /** The consumer loop throws `error` after what is queued. */
  fail(error: Error): void {
    if (this.ended || this.failure) return
    this.failure = error
    this.wake()
  }

  get isEnded(): boolean {
    return this.ended
  }

  get size(): number {
    return this.queued
  }

  private wake(): void {
    const w = this.waiter
    this.waiter = undefined
    w?.()
  }

  async *iterate(): AsyncGenerator<CollectorOutput> {
    for (;;) {
      const next = this.batches.shift()
      if (next) {
        this.queued -= next.length
        yield next
        continue
      }
      if (this.failure) throw this.failure
      if (this.ended) return
      await new Promise<void>((resolve) => {
        this.waiter = resolve
      })
    }
  }
}
