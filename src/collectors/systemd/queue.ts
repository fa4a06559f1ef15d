import type { EventInput } from '../../events/event.js'

/**
 * The hand-off between D-Bus callbacks and the consumer of events(): whatever accumulated since
 * the last pull is yielded as one batch. It ends after end() once drained, and throws the error
 * given to fail() once drained. Beyond `capacity` the oldest events are dropped and counted.
 */
export class EventQueue implements AsyncIterable<readonly EventInput[]> {
  #items: EventInput[] = []
  #done = false
  #error: Error | undefined
  #wake: (() => void) | undefined
  dropped = 0

  constructor(private readonly capacity: number) {}

  push(events: readonly EventInput[]): void {
    if (this.#done || events.length === 0) return
    this.#items.push(...events)
    const excess = this.#items.length - this.capacity
    if (excess > 0) {
      this.#items.splice(0, excess)
      this.dropped += excess
    }
    this.#notify()
  }

  end(): void {
    this.#done = true
    this.#notify()
  }

  fail(error: Error): void {
    if (this.#done) return
    this.#error = error
    this.#done = true
    this.#notify()
  }

  get pending(): number {
    return this.#items.length
  }

  #notify(): void {
    const wake = this.#wake
    this.#wake = undefined
    wake?.()
  }

  async *[Symbol.asyncIterator](): AsyncIterator<readonly EventInput[]> {
    for (;;) {
      if (this.#items.length > 0) {
        const batch = this.#items
        this.#items = []
        yield batch
        continue
      }
      if (this.#done) {
        if (this.#error) throw this.#error
        return
      }
      await new Promise<void>((resolve) => {
        this.#wake = resolve
      })
    }
  }
}
