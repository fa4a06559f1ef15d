import type { EventInput } from '../../events/event.js'

/**
 * A single-consumer queue between the watch callbacks and `events()`. Whatever accumulated
 * since the consumer last looked is handed over as one batch. Beyond `capacity` queued events
 * new ones are dropped and counted: the API server can outrun a stalled consumer, and the
 * collector must not grow without bound.
 */
export class EventQueue {
  private pending: EventInput[] = []
  private waiter: (() => void) | undefined
  private ended = false
  dropped = 0

  constructor(private readonly capacity: number) {}

  push(events: readonly EventInput[]): void {
    if (this.ended || events.length === 0) return
    const room = this.capacity - this.pending.length
    if (room <= 0) {
      this.dropped += events.length
      return
    }
    if (events.length > room) {
      this.dropped += events.length - room
      for (let i = 0; i < room; i++) this.pending.push(events[i] as EventInput)
    } else {
      for (const e of events) this.pending.push(e)
    }
    this.wake()
  }

  get size(): number {
    return this.pending.length
  }

  /** The iterable returns after the queued events are drained. */
  end(): void {
    this.ended = true
    this.wake()
  }

  private wake(): void {
    const w = this.waiter
    this.waiter = undefined
    w?.()
  }

  async *drain(): AsyncGenerator<readonly EventInput[]> {
    for (;;) {
      if (this.pending.length > 0) {
        const batch = this.pending
        this.pending = []
        yield batch
        continue
      }
      if (this.ended) return
      await new Promise<void>((resolve) => {
        this.waiter = resolve
      })
    }
  }
}
