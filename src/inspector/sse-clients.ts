import type { ServerResponse } from 'node:http'
import { type Clock, systemClock } from '../core/clock.js'

/** Bounds for one Server-Sent-Events endpoint. */
export interface SseLimits {
  /** Clients connected at once; one more is answered 503 with `retry-after`. */
  readonly maxClients: number
  /**
   * Bytes a client may have waiting in the agent (what its socket has not taken yet). A client
   * over it is dropped: its browser reconnects and starts over from a fresh `hello`, which is
   * better than an incomplete log, and the agent holds at most this much per client.
   */
  readonly maxQueuedBytes: number
  /** A client whose socket takes nothing for this long is dropped (frees its memory and socket). */
  readonly stuckMs: number
}

export const DEFAULT_SSE_LIMITS: SseLimits = Object.freeze({ maxClients: 16, maxQueuedBytes: 256 * 1024, stuckMs: 15_000 })

export type SseDropReason = 'slow' | 'stuck'

export interface SseCounts {
  /** Connected now. */
  readonly clients: number
  readonly accepted: number
  /** Turned away because `maxClients` were connected. */
  readonly rejected: number
  readonly dropped: Readonly<Record<SseDropReason, number>>
}

/**
 * How a frame may be treated when its client is behind: `essential` frames (log entries) are
 * queued up to the byte bound; `latest` frames (snapshots, samples) are superseded by the next one,
 * so a client that is behind skips them and gets a fresh one when its socket drains.
 */
export type FrameKind = 'essential' | 'latest'

/** One SSE frame, serialised once for every client it goes to. */
export function sseFrame(event: string, data: unknown): string {
  return `event: ${event}\ndata: ${JSON.stringify(data)}\n\n`
}

export class SseClient {
  /** When the socket last refused more (write returned false); undefined while it keeps up. */
  blockedSince: number | undefined
  /** A `latest` frame was skipped while blocked: send a fresh one on drain. */
  owesLatest = false

  constructor(
    readonly res: ServerResponse,
    private readonly owner: SseClients,
  ) {}

  get open(): boolean {
    return !this.res.destroyed && !this.res.writableEnded
  }

  send(frame: string, kind: FrameKind): void {
    if (!this.open) return
    if (this.blockedSince !== undefined) {
      if (kind === 'latest') {
        this.owesLatest = true
        return
      }
      if (this.res.writableLength + Buffer.byteLength(frame) > this.owner.limits.maxQueuedBytes) {
        this.owner.drop(this, 'slow')
        return
      }
    }
    if (!this.res.write(frame) && this.blockedSince === undefined) {
      this.blockedSince = this.owner.clock.now()
      this.res.once('drain', () => {
        this.blockedSince = undefined
        if (this.owesLatest && this.open) {
          this.owesLatest = false
          this.owner.onDrain?.(this)
        }
      })
    }
  }
}

/**
 * The clients of one SSE endpoint, bounded in number and each in the memory it can hold: the
 * agent's memory does not depend on how fast, or whether, its readers read.
 */
export class SseClients {
  private readonly clients = new Set<SseClient>()
  private accepted = 0
  private rejected = 0
  private readonly dropped: Record<SseDropReason, number> = { slow: 0, stuck: 0 }
  /** Called when a client that skipped a `latest` frame catches up. */
  onDrain: ((client: SseClient) => void) | undefined

  constructor(
    readonly limits: SseLimits = DEFAULT_SSE_LIMITS,
    readonly clock: Clock = systemClock,
  ) {}

  get size(): number {
    return this.clients.size
  }

  /** Starts the event stream on `res`, or answers 503 when `maxClients` are connected. */
  open(res: ServerResponse, preamble = ''): SseClient | undefined {
    if (this.clients.size >= this.limits.maxClients) {
      this.rejected += 1
      res.writeHead(503, { 'content-type': 'text/plain; charset=utf-8', 'retry-after': '5', 'cache-control': 'no-store' })
      res.end(`too many stream clients (at most ${this.limits.maxClients}); try again later\n`)
      return undefined
    }
    res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache', connection: 'keep-alive' })
    const client = new SseClient(res, this)
    this.clients.add(client)
    this.accepted += 1
    res.on('close', () => this.clients.delete(client))
    if (preamble) client.send(preamble, 'essential')
    return client
  }

  broadcast(frame: string, kind: FrameKind): void {
    for (const c of this.clients) c.send(frame, kind)
  }

  /** Drops clients whose socket has taken nothing for `stuckMs`; call it periodically. */
  sweep(): void {
    const now = this.clock.now()
    for (const c of this.clients) if (c.blockedSince !== undefined && now - c.blockedSince >= this.limits.stuckMs) this.drop(c, 'stuck')
  }

  drop(client: SseClient, reason: SseDropReason): void {
    if (!this.clients.delete(client)) return
    this.dropped[reason] += 1
    // destroy, not end: end would wait for the queued bytes to be read, which is the problem.
    client.res.destroy()
  }

  counts(): SseCounts {
    return { clients: this.clients.size, accepted: this.accepted, rejected: this.rejected, dropped: { ...this.dropped } }
  }

  closeAll(): void {
    for (const c of this.clients) c.res.end()
    this.clients.clear()
  }
}
