/**
 * One clock for every timer in the library: the supervisor's actors (XState's `clock` option),
 * restart policies, the merge buffer and the collectors' own delays. Production uses the system
 * clock; tests drive a {@link ManualClock} and advance time instead of sleeping.
 */

/** Compatible with XState's `Clock` (so it can be passed to `createActor(..., { clock })`), plus `now()`. */
export interface Clock {
  now(): number
  setTimeout(fn: () => void, ms: number): unknown
  clearTimeout(handle: unknown): void
}

export const systemClock: Clock = Object.freeze({
  now: () => Date.now(),
  setTimeout: (fn: () => void, ms: number): unknown => setTimeout(fn, ms),
  clearTimeout: (handle: unknown): void => clearTimeout(handle as ReturnType<typeof setTimeout>),
})

interface Timer {
  readonly id: number
  readonly due: number
  readonly fn: () => void
}

/**
 * A clock that moves only when told to. Unlike XState's `SimulatedClock`, which fires every due
 * timer at the target time, `advance` fires timers one by one at their own due time, in due order
 * (ties in creation order), so code that reads `now()` inside a timer sees the time it asked for.
 */
export class ManualClock implements Clock {
  private current: number
  private nextId = 1
  private readonly timers = new Map<number, Timer>()

  constructor(start = 0) {
    this.current = start
  }

  now(): number {
    return this.current
  }

  setTimeout(fn: () => void, ms: number): number {
    const id = this.nextId++
    const delay = Number.isFinite(ms) && ms > 0 ? ms : 0
    this.timers.set(id, { id, due: this.current + delay, fn })
    return id
  }

  clearTimeout(handle: unknown): void {
    if (typeof handle === 'number') this.timers.delete(handle)
  }

  /** Timers waiting to fire. */
  get pending(): number {
    return this.timers.size
  }

  /** When the next timer is due, if any. */
  nextDue(): number | undefined {
    return this.next()?.due
  }

  /** Moves time forward by `ms`, firing due timers synchronously in order. */
  advance(ms: number): void {
    const target = this.current + Math.max(0, ms)
    for (let t = this.next(); t !== undefined && t.due <= target; t = this.next()) {
      this.timers.delete(t.id)
      this.current = Math.max(this.current, t.due)
      t.fn()
    }
    this.current = target
  }

  /**
   * Like `advance`, but lets promise callbacks run after each timer, so async code woken by one
   * timer can schedule the next before time moves on.
   */
  async advanceAsync(ms: number): Promise<void> {
    const target = this.current + Math.max(0, ms)
    await flushMicrotasks()
    for (let t = this.next(); t !== undefined && t.due <= target; t = this.next()) {
      this.timers.delete(t.id)
      this.current = Math.max(this.current, t.due)
      t.fn()
      await flushMicrotasks()
    }
    this.current = target
    await flushMicrotasks()
  }

  private next(): Timer | undefined {
    let best: Timer | undefined
    for (const t of this.timers.values()) if (best === undefined || t.due < best.due) best = t
    return best
  }
}

/** Lets every queued promise callback (and those they queue) run, without letting real time pass. */
export async function flushMicrotasks(rounds = 20): Promise<void> {
  for (let i = 0; i < rounds; i++) await Promise.resolve()
  await new Promise<void>((resolve) => setImmediate(resolve))
}
