import type { Batch } from './deferred-batch.js'

/** A consumer's position; every subscription receives every event delivered after it joined. */
export interface Subscription {
  readonly id: number
  /** Events handed to this subscription. */
  received: number
}

interface SubscriptionState extends Subscription {
  /** Index (absolute, from the first batch ever logged) of the next logged batch it reads. */
  cursor: number
}

/**
 * The subscriptions of the merge buffer and the log that lets several of them read every batch:
 * a batch one subscription took from the lanes is kept here until every other subscription has
 * read it too (only while there is more than one). Logged events still count against capacity.
 */
export class SubscriptionLog {
  private readonly subs = new Map<number, SubscriptionState>()
  private nextId = 1
  private log: Batch[] = []
  /** Absolute index of `log[0]`. */
  private base = 0
  /** Events in the log (read by some subscription, not yet by all). */
  unread = 0

  get count(): number {
    return this.subs.size
  }

  subscribe(): Subscription {
    const sub: SubscriptionState = { id: this.nextId++, received: 0, cursor: this.base + this.log.length }
    this.subs.set(sub.id, sub)
    return sub
  }

  /** Returns false when `sub` was not subscribed. Trims what only it had left to read. */
  unsubscribe(sub: Subscription): boolean {
    if (!this.subs.delete(sub.id)) return false
    this.trim()
    return true
  }

  has(sub: Subscription): boolean {
    return this.subs.has(sub.id)
  }

  /** The next logged batch `sub` has not read, if any (and moves its cursor past it). */
  readLogged(sub: Subscription): Batch | undefined {
    const s = this.subs.get(sub.id)
    if (s === undefined) return undefined
    const idx = s.cursor - this.base
    if (idx >= this.log.length) return undefined
    const b = this.log[idx] as Batch
    s.cursor += 1
    s.received += b.length
    return b
  }

  /** `sub` took `b` from the lanes: log it for the others when there are others. */
  delivered(sub: Subscription, b: Batch): void {
    const s = this.subs.get(sub.id)
    if (s === undefined) return
    s.received += b.length
    if (this.subs.size > 1) {
      this.log.push(b)
      this.unread += b.length
      s.cursor += 1
    }
  }

  /** Whether `sub` has read every logged batch. */
  caughtUp(sub: Subscription): boolean {
    const s = this.subs.get(sub.id)
    return s === undefined || s.cursor - this.base >= this.log.length
  }

  /** Forgets batches every subscription has read; returns whether room was freed. */
  trim(): boolean {
    if (this.log.length === 0) return false
    let min = this.base + this.log.length
    for (const s of this.subs.values()) if (s.cursor < min) min = s.cursor
    const n = min - this.base
    if (n <= 0) return false
    for (let i = 0; i < n; i++) this.unread -= (this.log[i] as Batch).length
    this.log = this.log.slice(n)
    this.base += n
    return true
  }

  /** Drops the whole log (stop gave up draining): every subscription is caught up. */
  discard(): void {
    this.base += this.log.length
    this.log = []
    this.unread = 0
    for (const s of this.subs.values()) s.cursor = this.base
  }
}
