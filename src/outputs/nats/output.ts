import { connect, createInbox, headers, type Msg, type MsgHdrs, type NatsConnection } from '@nats-io/transport-node'
import { jetstreamManager } from '@nats-io/jetstream'
import type { TapioEvent } from '../../events/event.js'
import { NdjsonBatch } from '../ndjson.js'
import type { NatsOutputConfig } from './config.js'
import { Deque } from './deque.js'
import { ensureStream } from './stream.js'
import { connectOptions, describeConnectError, diagnoseTls, explainTimeout, wantsTls } from './connection.js'
import { SubjectCache } from './subjects.js'
import { Backoff, type BackoffPolicy } from '../../core/backoff.js'
import { delay } from '../../core/delay.js'

import { NATS_FAILURE_REASONS, type NatsFailureReason } from './reasons.js'

export { NATS_FAILURE_REASONS, type NatsFailureReason }

export interface NatsOutputLogger {
  info(msg: string, fields?: Record<string, unknown>): void
  warn(msg: string, fields?: Record<string, unknown>): void
  error(msg: string, fields?: Record<string, unknown>): void
}

export interface NatsOutputOptions {
  /** Node name: the first token after the subject prefix. */
  readonly node: string
  readonly logger?: NatsOutputLogger
}

/** Counters are events unless named otherwise; all are monotonic for the output's lifetime. */
export interface NatsOutputStatistics {
  readonly connected: boolean
  readonly streamReady: boolean
  readonly server: string | null
  readonly lastError: string | null
  /** Events handed to `write` and not yet acknowledged or failed. */
  readonly pendingEvents: number
  readonly inFlightMessages: number
  readonly waitingMessages: number
  readonly publishedEvents: number
  readonly publishedMessages: number
  readonly ackedEvents: number
  readonly ackedMessages: number
  /** Acknowledged as duplicates: the stream already had them (a retry whose first send landed). */
  readonly duplicateEvents: number
  /** Events sent again (ack timeout, reconnect, error reply). */
  readonly retriedEvents: number
  /**
   * Events sent again after the stream's duplicate window had passed since their first send: if
   * an earlier send was stored (only its acknowledgement lost), the stream now holds another copy.
   * Every such resend counts (an upper bound of the extra copies); the first is logged.
   */
  readonly possiblyDuplicatedEvents: number
  readonly failedEvents: Readonly<Record<NatsFailureReason, number>> & { readonly total: number }
  readonly reconnects: number
  /** Connection attempts made while not connected (first connect and reconnects). */
  readonly connectAttempts: number
}

export interface OutputHealth {
  readonly ready: boolean
  readonly lastError: string | null
  readonly details: unknown
}

interface PendingMessage {
  readonly subject: string
  readonly payload: Uint8Array
  readonly headers: MsgHdrs
  readonly events: number
  attempts: number
  sentAt: number
  /** First send (ms); 0 until sent. */
  firstSentAt: number
  /** Already counted in possiblyDuplicatedEvents. */
  pastWindow: boolean
}

interface PubAckReply {
  readonly stream?: unknown
  readonly duplicate?: unknown
  readonly error?: { readonly code?: unknown; readonly description?: unknown }
}

const decoder = new TextDecoder()

/** Header with the publishing agent's node name as configured (the subject has it sanitized). */
export const NODE_HEADER = 'Tapio-Node'

/** Reserve for the headers when checking the payload against the server's max_payload. */
const HEADER_ROOM = 512

/**
 * Publishes batches of events to a JetStream stream with acknowledgements.
 *
 * - Subject per event: `<prefix>.<node>.<source>.<type>`. Events of one subject that arrive in the
 *   same batch are packed into one NDJSON message (up to `maxEventsPerMessage`).
 * - Every message carries `Nats-Msg-Id` (the event id, or `<first id>..<last id>` for a packed
 *   message), so a resend after a lost acknowledgement is stored once.
 * - Many messages are in flight at once; acknowledgements arrive on one wildcard inbox.
 * - `write` resolves at once while fewer than `maxPendingEvents` events are unacknowledged and
 *   waits otherwise: that is the backpressure that reaches the agent's buffer policy.
 * - Unacknowledged messages are resent with backoff (timeouts, error replies, reconnects) until
 *   acknowledged, given up by `retry.maxAttempts`, or `close()` times out; each event given up is
 *   counted with its reason.
 */
export class NatsOutput {
  readonly name = 'nats'
  private readonly subjects: SubjectCache
  private readonly node: string
  private readonly log: NatsOutputLogger | undefined
  private nc: NatsConnection | undefined
  private inbox = ''
  private nextSeq = 0
  private connected = false
  private streamReady = false
  private ensuringStream = false
  private server: string | null = null
  private lastError: string | null = null
  /** Since a publish was answered with an error or not at all, until the next acknowledgement. */
  private publishFailing = false
  private readonly waiting = new Deque<PendingMessage>()
  private readonly inFlight = new Map<number, PendingMessage>()
  private retryQueue: PendingMessage[] = []
  private retryAt = 0
  /** Delay before resending unacknowledged messages; starts over at the next acknowledgement. */
  private readonly retryBackoff: Backoff
  private pending = 0
  private roomWaiters: (() => void)[] = []
  private tickTimer: ReturnType<typeof setInterval> | undefined
  private started = false
  private closing = false
  private released = false
  private closed = false
  private connecting: Promise<void> | undefined
  private readonly abort = new AbortController()
  private maxPayload: number
  private diagnosing = false
  private warnedPastWindow = false
  private diagnosedAt = 0
  private readonly stats = {
    publishedEvents: 0,
    publishedMessages: 0,
    ackedEvents: 0,
    ackedMessages: 0,
    duplicateEvents: 0,
    retriedEvents: 0,
    possiblyDuplicatedEvents: 0,
    reconnects: 0,
    connectAttempts: 0,
  }
  private readonly failed: Record<NatsFailureReason, number> = { rejected: 0, too_large: 0, retries_exhausted: 0, shutdown: 0 }

  constructor(
    readonly config: NatsOutputConfig,
    options: NatsOutputOptions,
  ) {
    this.subjects = new SubjectCache(config.subjectPrefix, options.node)
    this.node = options.node
    this.log = options.logger
    this.retryBackoff = new Backoff(retryPolicy(config.retry))
    this.maxPayload = config.maxMessageBytes
  }

  /** Events stored in the stream (acknowledged). */
  get written(): number {
    return this.stats.ackedEvents
  }

  /** Connect in the background (retrying until it works); `write` may be called right away. */
  start(): void {
    if (this.started) return
    this.started = true
    this.connecting = this.connectLoop()
    const every = Math.max(20, Math.min(500, Math.floor(this.config.ackTimeoutMs / 4), Math.floor(this.config.retry.initialMs / 2)))
    this.tickTimer = setInterval(() => this.tick(), every)
  }

  /** Takes the events, or the shared serialised form the agent makes once for every output. */
  write(batch: readonly TapioEvent[] | NdjsonBatch): Promise<void> | undefined {
    if (!this.started) this.start()
    const b = NdjsonBatch.from(batch)
    if (this.closing) {
      // The agent drains before it closes outputs; a caller writing during close loses these, counted.
      this.fail(b.length, 'shutdown')
      return undefined
    }
    this.encode(b)
    this.flush()
    if (this.pending >= this.config.maxPendingEvents && !this.released) return new Promise((resolve) => this.roomWaiters.push(resolve))
    return undefined
  }

  /**
   * Stop making writers wait: the agent is shutting down and must not hang on an unreachable
   * server. What is still unacknowledged then gets `closeTimeoutMs` in `close()`, then is counted.
   */
  release(): void {
    this.released = true
    this.wakeWriters()
  }

  /** Wait for every outstanding acknowledgement (bounded by closeTimeoutMs), then disconnect. */
  async close(): Promise<void> {
    if (this.closed) return
    this.closing = true
    const deadline = Date.now() + this.config.closeTimeoutMs
    while (this.pending > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20))
    if (this.pending > 0) {
      let n = 0
      for (const m of [...this.inFlight.values(), ...this.retryQueue, ...this.waiting.drain()]) n += m.events
      this.inFlight.clear()
      this.retryQueue = []
      this.pending = 0
      this.failed.shutdown += n
      this.log?.error(`nats: ${n} events not acknowledged when closing (counted as failed: shutdown)`, { events: n })
    }
    this.closed = true
    this.abort.abort()
    if (this.tickTimer) clearInterval(this.tickTimer)
    this.tickTimer = undefined
    this.wakeWriters()
    await this.connecting?.catch(() => {})
    const nc = this.nc
    this.nc = undefined
    this.connected = false
    this.streamReady = false
    await nc?.close().catch(() => {})
  }

  statistics(): NatsOutputStatistics {
    const f = this.failed
    return {
      connected: this.connected,
      streamReady: this.streamReady,
      server: this.server,
      lastError: this.lastError,
      pendingEvents: this.pending,
      inFlightMessages: this.inFlight.size,
      waitingMessages: this.waiting.length + this.retryQueue.length,
      ...this.stats,
      failedEvents: { ...f, total: f.rejected + f.too_large + f.retries_exhausted + f.shutdown },
      reconnects: this.stats.reconnects,
      connectAttempts: this.stats.connectAttempts,
    }
  }

  /** Events handed to `write` and given up, by reason (the agent's per-output totals). */
  dropped(): Readonly<Record<NatsFailureReason, number>> {
    return { ...this.failed }
  }

  /**
   * Ready when connected, the stream is in place, and publishes are acknowledged: connected is not
   * enough (a cluster that lost its quorum takes connections and answers no publish).
   */
  health(): OutputHealth {
    const s = this.statistics()
    return { ready: s.connected && s.streamReady && !this.publishFailing, lastError: s.lastError, details: s }
  }

  // ---- encoding -------------------------------------------------------------------------------

  /**
   * Packs the batch's shared NDJSON bytes per subject. A run of consecutive events of one subject
   * (the usual shape: a collector's batch is mostly one kind) becomes a view of those bytes, not a
   * copy; only events of a subject spread over the batch are gathered.
   */
  private encode(batch: NdjsonBatch): void {
    const events = batch.events
    const n = events.length
    if (n === 0) return
    const max = this.config.maxEventsPerMessage
    const limit = Math.min(this.config.maxMessageBytes, this.maxPayload - HEADER_ROOM)
    const subjects = new Array<string>(n)
    let uniform = true
    for (let i = 0; i < n; i++) {
      const e = events[i] as TapioEvent
      subjects[i] = this.subjects.subject(e.source, e.type)
      if (uniform && subjects[i] !== subjects[0]) uniform = false
    }
    let order: Map<string, number[]> | undefined
    if (!uniform) {
      order = new Map()
      for (let i = 0; i < n; i++) {
        const s = subjects[i] as string
        const g = order.get(s)
        if (g) g.push(i)
        else order.set(s, [i])
      }
    }
    const groups: [string, readonly number[] | undefined][] = order ? [...order] : [[subjects[0] as string, undefined]]
    for (const [subject, members] of groups) {
      const count = members ? members.length : n
      const at = (k: number) => (members ? (members[k] as number) : k)
      let start = 0
      let bytes = 0
      for (let k = 0; k < count; k++) {
        const i = at(k)
        const size = batch.offset(i + 1) - batch.offset(i)
        const held = k - start
        if (held > 0 && (held >= max || bytes + size > limit)) {
          this.emitRange(batch, subject, members, start, k)
          start = k
          bytes = 0
        }
        bytes += size
      }
      if (count > start) this.emitRange(batch, subject, members, start, count)
    }
  }

  /** Events `members[from..to)` (or `from..to` of the batch) as one message. */
  private emitRange(batch: NdjsonBatch, subject: string, members: readonly number[] | undefined, from: number, to: number): void {
    const first = members ? (members[from] as number) : from
    const last = members ? (members[to - 1] as number) : to - 1
    let payload: Buffer
    if (last - first === to - from - 1) payload = batch.slice(first, last + 1)
    else {
      const parts: Buffer[] = []
      for (let k = from; k < to; k++) {
        const i = (members as readonly number[])[k] as number
        parts.push(batch.slice(i, i + 1))
      }
      payload = Buffer.concat(parts)
    }
    const events = batch.events
    this.emit(subject, payload, (events[first] as TapioEvent).id, (events[last] as TapioEvent).id, to - from)
  }

  private emit(subject: string, payload: Buffer, firstId: string, lastId: string, events: number): void {
    if (payload.length > this.maxPayload - HEADER_ROOM) {
      this.fail(events, 'too_large')
      this.setError(`an event of ${payload.length} bytes exceeds the message size limit (${this.maxPayload - HEADER_ROOM})`)
      return
    }
    const h = headers()
    h.set('Nats-Msg-Id', events === 1 ? firstId : `${firstId}..${lastId}`)
    // The subject token is made subject-safe; readers get the node's real name from here.
    h.set(NODE_HEADER, this.node)
    this.pending += events
    this.stats.publishedEvents += events
    this.stats.publishedMessages += 1
    this.waiting.push({ subject, payload, headers: h, events, attempts: 0, sentAt: 0, firstSentAt: 0, pastWindow: false })
  }

  // ---- sending and acknowledgements -----------------------------------------------------------

  private flush(): void {
    const nc = this.nc
    if (!nc || !this.connected || !this.streamReady) return
    const now = Date.now()
    const window = this.config.stream.duplicateWindowMs
    for (let m = this.waiting.shift(); m !== undefined; m = this.waiting.shift()) {
      const seq = ++this.nextSeq
      m.attempts += 1
      m.sentAt = now
      if (m.firstSentAt === 0) m.firstSentAt = now
      else if (now - m.firstSentAt > window) this.pastWindow(m, now - m.firstSentAt)
      this.inFlight.set(seq, m)
      try {
        nc.publish(m.subject, m.payload, { reply: `${this.inbox}.${seq}`, headers: m.headers })
      } catch (e) {
        // Closed or draining underneath us: keep it for after the reconnect.
        this.inFlight.delete(seq)
        m.attempts -= 1
        this.waiting.unshiftAll([m])
        this.setError(`publish failed: ${e instanceof Error ? e.message : String(e)}`)
        return
      }
    }
  }

  private onAck(msg: Msg): void {
    const seq = Number(msg.subject.slice(msg.subject.lastIndexOf('.') + 1))
    const m = this.inFlight.get(seq)
    // An answer to a send we already gave up on (timed out and resent): the resend decides.
    if (!m) return
    this.inFlight.delete(seq)
    if (msg.data.length === 0) {
      const code = msg.headers?.code ?? 0
      this.retry(m, code === 503 ? 'no JetStream stream answered (no responders)' : `empty reply (status ${code})`)
      if (code === 503 && this.config.stream.create) this.streamReady = false
      return
    }
    let reply: PubAckReply
    try {
      reply = JSON.parse(decoder.decode(msg.data)) as PubAckReply
    } catch {
      this.retry(m, 'unreadable acknowledgement')
      return
    }
    if (reply !== null && typeof reply === 'object' && reply.error !== undefined) {
      const code = typeof reply.error.code === 'number' ? reply.error.code : 0
      const text = `JetStream error ${code}: ${String(reply.error.description ?? 'unknown')}`
      // 4xx: the stream will never take this message (too large for max_msg_size, ...).
      if (code >= 400 && code < 500) {
        this.settle(m)
        this.fail(m.events, 'rejected')
        this.setError(text)
      } else this.retry(m, text)
      return
    }
    if (reply === null || typeof reply !== 'object' || typeof reply.stream !== 'string') {
      this.retry(m, 'unexpected acknowledgement')
      return
    }
    this.settle(m)
    // Recovered: the first acknowledgement after failing publishes clears their error (a message
    // rejected for its size says nothing about availability and stays reported).
    if (this.publishFailing) {
      this.publishFailing = false
      this.lastError = null
    }
    this.stats.ackedEvents += m.events
    this.stats.ackedMessages += 1
    if (reply.duplicate === true) this.stats.duplicateEvents += m.events
    this.retryBackoff.succeed()
  }

  /** The stream no longer remembers this message's id: say so (counted, logged). */
  private pastWindow(m: PendingMessage, age: number): void {
    // Every such resend may add a copy (the stream's window restarts at each stored one): an upper bound.
    this.stats.possiblyDuplicatedEvents += m.events
    if (m.pastWindow) return
    m.pastWindow = true
    const first = !this.warnedPastWindow
    this.warnedPastWindow = true
    const text = `resending ${m.events} events first sent ${age} ms ago, past the stream's duplicate window (${this.config.stream.duplicateWindowMs} ms): if that send was stored, they are stored twice (counted in possiblyDuplicatedEvents)`
    if (first) this.log?.warn(`nats: ${text}`, { output: 'nats', events: m.events })
  }

  /**
   * Reconnect, which reads the certificate, key, CA and credential files again: how a SIGHUP
   * makes rotated files take effect without restarting anything. Unacknowledged messages are sent
   * again on the new connection (same message ids).
   */
  async reconnect(): Promise<void> {
    const nc = this.nc
    if (!nc || this.closed) return
    this.log?.info('nats: reconnecting to re-read the TLS and credential files', { output: 'nats' })
    await nc.reconnect().catch((e: unknown) => this.setError(`reconnect: ${e instanceof Error ? e.message : String(e)}`))
  }

  /**
   * While reconnecting over TLS the client reports failed handshakes only as timeouts: find the
   * reason (at most one probe every 2 s) so /readyz names it.
   */
  private diagnose(): void {
    const now = Date.now()
    if (!wantsTls(this.config) || this.diagnosing || now - this.diagnosedAt < 2000) return
    this.diagnosing = true
    this.diagnosedAt = now
    void diagnoseTls(this.config)
      .then((e) => {
        if (e && !this.connected && !this.closed) this.setError(describeConnectError(e, this.config))
      })
      .finally(() => {
        this.diagnosing = false
      })
  }

  private settle(m: PendingMessage): void {
    this.pending -= m.events
    if (this.pending < this.config.maxPendingEvents) this.wakeWriters()
  }

  private retry(m: PendingMessage, why: string): void {
    this.publishFailing = true
    this.setError(why)
    const max = this.config.retry.maxAttempts
    if (max > 0 && m.attempts >= max) {
      this.settle(m)
      this.fail(m.events, 'retries_exhausted')
      return
    }
    this.stats.retriedEvents += m.events
    if (this.retryQueue.length === 0) {
      this.retryAt = Date.now() + this.retryBackoff.fail()
    }
    this.retryQueue.push(m)
  }

  private fail(events: number, reason: NatsFailureReason): void {
    this.failed[reason] += events
  }

  private wakeWriters(): void {
    const ws = this.roomWaiters
    this.roomWaiters = []
    for (const w of ws) w()
  }

  private setError(e: string): void {
    if (this.lastError !== e) this.log?.warn(`nats: ${e}`, { output: 'nats' })
    this.lastError = e
  }

  /** Timeouts, due retries and stream re-checks; one timer for everything. */
  private tick(): void {
    const now = Date.now()
    const timeout = this.config.ackTimeoutMs
    if (this.connected) {
      for (const [seq, m] of this.inFlight) {
        // Insertion order is send order, so the first one not yet late ends the scan.
        if (now - m.sentAt < timeout) break
        this.inFlight.delete(seq)
        this.retry(m, `no acknowledgement within ${timeout} ms`)
      }
    }
    if (this.connected && !this.streamReady && !this.ensuringStream && this.nc) void this.setUpStream(this.nc)
    if (this.retryQueue.length > 0 && now >= this.retryAt && this.connected && this.streamReady) {
      const due = this.retryQueue
      this.retryQueue = []
      this.waiting.unshiftAll(due)
    }
    this.flush()
  }

  // ---- connection -----------------------------------------------------------------------------

  private async connectLoop(): Promise<void> {
    const backoff = new Backoff(retryPolicy(this.config.retry))
    while (!this.closed) {
      let nc: NatsConnection
      this.stats.connectAttempts += 1
      try {
        nc = await connect({
          ...connectOptions(this.config),
          name: this.config.name,
          maxReconnectAttempts: -1,
          reconnectTimeWait: Math.min(1000, this.config.retry.maxMs),
          timeout: 5000,
          pingInterval: 10_000,
        })
      } catch (e) {
        this.setError(`cannot connect to ${this.config.servers.join(', ')}: ${describeConnectError(await explainTimeout(e, this.config), this.config)}`)
        await delay(backoff.fail(), this.abort.signal)
        continue
      }
      if (this.closed) {
        await nc.close().catch(() => {})
        return
      }
      this.nc = nc
      this.inbox = createInbox()
      this.maxPayload = nc.info?.max_payload ?? this.config.maxMessageBytes
      nc.subscribe(`${this.inbox}.*`, { callback: (err, msg) => (err ? this.setError(`ack subscription: ${err.message}`) : this.onAck(msg)) })
      this.connected = true
      this.server = nc.getServer()
      this.log?.info(`nats: connected to ${this.server}`, { output: 'nats', server: this.server })
      void this.watchStatus(nc)
      await this.setUpStream(nc)
      return
    }
  }

  private async setUpStream(nc: NatsConnection): Promise<void> {
    if (this.ensuringStream) return
    this.ensuringStream = true
    try {
      const jsm = await jetstreamManager(nc)
      const r = await ensureStream(jsm, this.config.stream, this.config.subjectPrefix)
      if (r.created) this.log?.info(`nats: created stream ${this.config.stream.name}`, { output: 'nats', stream: this.config.stream.name })
      for (const d of r.differences) this.log?.warn(`nats: stream ${this.config.stream.name}: ${d} (left as it is)`, { output: 'nats' })
      this.streamReady = true
      if (!this.publishFailing) this.lastError = null
      this.flush()
    } catch (e) {
      // tick() tries again while connected.
      this.setError(`stream ${this.config.stream.name}: ${e instanceof Error ? e.message : String(e)}`)
    } finally {
      this.ensuringStream = false
    }
  }

  private async watchStatus(nc: NatsConnection): Promise<void> {
    for await (const s of nc.status()) {
      switch (s.type) {
        case 'disconnect':
          this.connected = false
          this.setError(`disconnected from ${s.server}`)
          break
        case 'reconnect': {
          this.connected = true
          this.server = s.server
          this.stats.reconnects += 1
          this.log?.info(`nats: reconnected to ${s.server}`, { output: 'nats', server: s.server })
          if (!this.publishFailing) this.lastError = null
          // Replies to what was in flight went to the old connection: send it again now.
          const lost = [...this.inFlight.values()]
          this.inFlight.clear()
          for (const m of lost) this.stats.retriedEvents += m.events
          this.waiting.unshiftAll([...lost, ...this.retryQueue])
          this.retryQueue = []
          this.flush()
          break
        }
        case 'reconnecting':
          this.stats.connectAttempts += 1
          this.diagnose()
          break
        case 'error':
          this.setError(describeConnectError(s.error, this.config))
          break
        default:
          break
      }
    }
    // The status iterator ends when the connection closes for good.
    if (!this.closed && this.nc === nc) {
      this.connected = false
      this.nc = undefined
      this.connecting = this.connectLoop()
    }
  }

}

/** The configured retry timing as the one backoff (doubling, no jitter: retries are already spread by acks). */
function retryPolicy(retry: { readonly initialMs: number; readonly maxMs: number }): BackoffPolicy {
  return { initialMs: retry.initialMs, maxMs: retry.maxMs, factor: 2, jitter: 0 }
}
