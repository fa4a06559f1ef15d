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
import { type Clock, systemClock } from '../../core/clock.js'
import { createActor } from 'xstate'
import {
  type NatsConnectionContext,
  type NatsConnectionEvent,
  type NatsConnectionView,
  natsCanPublish,
  natsConnectionMachine,
  natsConnectionView,
  natsReady,
} from '../../../machines/nats-connection.js'

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
  /** Every timer and timestamp of the output (ack timeouts, retry times, the close bound); default the system clock. */
  readonly clock?: Clock
}

/** Counters are events unless named otherwise; all are monotonic for the output's lifetime. */
export interface NatsOutputStatistics {
  /** The connection machine's state (machines/nats-connection.ts). */
  readonly connection: NatsConnectionView
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
  /** What the output is doing when not ready, in words (/readyz names it). */
  readonly state?: string
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
  /**
   * The connection's state: connected, stream verified, publishes failing, closing... The output
   * reports what happens as events and reads the machine's answer from `view` / `context`.
   */
  private readonly machine = createActor(natsConnectionMachine)
  private view: NatsConnectionView
  private context: NatsConnectionContext
  private readonly waiting = new Deque<PendingMessage>()
  private readonly inFlight = new Map<number, PendingMessage>()
  private retryQueue: PendingMessage[] = []
  private retryAt = 0
  /** Delay before resending unacknowledged messages; starts over at the next acknowledgement. */
  private readonly retryBackoff: Backoff
  private pending = 0
  private roomWaiters: (() => void)[] = []
  private readonly clock: Clock
  private tickTimer: unknown
  /** Set while close() waits for the last acknowledgements: called when none is outstanding. */
  private onDrained: (() => void) | undefined
  private closing: Promise<void> | undefined
  private connecting: Promise<void> | undefined
  private readonly abort = new AbortController()
  private maxPayload: number
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
    this.clock = options.clock ?? systemClock
    this.retryBackoff = new Backoff(retryPolicy(config.retry))
    this.maxPayload = config.maxMessageBytes
    this.machine.subscribe((s) => {
      this.view = natsConnectionView(s)
      this.context = s.context
    })
    this.machine.start()
    const s = this.machine.getSnapshot()
    this.view = natsConnectionView(s)
    this.context = s.context
  }

  /** Tell the machine; log an error it now reports (once per distinct text). */
  private report(event: NatsConnectionEvent): void {
    const before = this.context.lastError
    this.machine.send(event)
    const after = this.context.lastError
    if (after !== null && after !== before) this.log?.warn(`nats: ${after}`, { output: 'nats' })
  }

  /** A method, not a narrowed field read: the phase changes across awaits. */
  private isClosed(): boolean {
    return this.view.phase === 'closed'
  }

  private setError(e: string): void {
    this.report({ type: 'ERROR', error: e })
  }

  /** Events stored in the stream (acknowledged). */
  get written(): number {
    return this.stats.ackedEvents
  }

  /** Connect in the background (retrying until it works); `write` may be called right away. */
  start(): void {
    if (this.view.phase !== 'idle') return
    this.machine.send({ type: 'START' })
    this.connecting = this.connectLoop()
    const every = Math.max(20, Math.min(500, Math.floor(this.config.ackTimeoutMs / 4), Math.floor(this.config.retry.initialMs / 2)))
    this.scheduleTick(every)
  }

  /** One timer for everything (see tick()), re-armed until the output is closed. */
  private scheduleTick(every: number): void {
    this.tickTimer = this.clock.setTimeout(() => {
      try {
        this.tick()
      } finally {
        if (!this.isClosed()) this.scheduleTick(every)
      }
    }, every)
  }

  /** Takes the events, or the shared serialised form the agent makes once for every output. */
  write(batch: readonly TapioEvent[] | NdjsonBatch): Promise<void> | undefined {
    if (this.view.phase === 'idle') this.start()
    const b = NdjsonBatch.from(batch)
    if (this.view.phase !== 'running') {
      // The agent drains before it closes outputs; a caller writing during close loses these, counted.
      this.fail(b.length, 'shutdown')
      return undefined
    }
    this.encode(b)
    this.flush()
    if (this.pending >= this.config.maxPendingEvents && !this.context.released) return new Promise((resolve) => this.roomWaiters.push(resolve))
    return undefined
  }

  /**
   * Stop making writers wait: the agent is shutting down and must not hang on an unreachable
   * server. What is still unacknowledged then gets `closeTimeoutMs` in `close()`, then is counted.
   */
  release(): void {
    this.machine.send({ type: 'RELEASE' })
    this.wakeWriters()
  }

  /** Wait for every outstanding acknowledgement (bounded by closeTimeoutMs), then disconnect. Twice is the same close. */
  close(): Promise<void> {
    this.closing ??= this.closeOnce()
    return this.closing
  }

  private async closeOnce(): Promise<void> {
    this.machine.send({ type: 'CLOSE' })
    if (this.pending > 0) {
      const drained = new AbortController()
      this.onDrained = () => drained.abort()
      await delay(this.config.closeTimeoutMs, drained.signal, this.clock)
      this.onDrained = undefined
    }
    if (this.pending > 0) {
      let n = 0
      for (const m of [...this.inFlight.values(), ...this.retryQueue, ...this.waiting.drain()]) n += m.events
      this.inFlight.clear()
      this.retryQueue = []
      this.pending = 0
      this.failed.shutdown += n
      this.log?.error(`nats: ${n} events not acknowledged when closing (counted as failed: shutdown)`, { events: n })
    }
    this.machine.send({ type: 'CLOSED' })
    this.abort.abort()
    if (this.tickTimer !== undefined) this.clock.clearTimeout(this.tickTimer)
    this.tickTimer = undefined
    this.wakeWriters()
    await this.connecting?.catch(() => {})
    const nc = this.nc
    this.nc = undefined
    await nc?.close().catch(() => {})
  }

  statistics(): NatsOutputStatistics {
    const f = this.failed
    return {
      connection: this.view,
      connected: this.view.link === 'connected',
      streamReady: this.view.stream === 'ready',
      server: this.context.server,
      lastError: this.context.lastError,
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
    const ready = natsReady(this.view)
    return { ready, lastError: s.lastError, ...(ready ? {} : { state: natsStateText(this.view) }), details: s }
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
    if (!nc || !natsCanPublish(this.view)) return
    const now = this.clock.now()
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
      if (code === 503 && this.config.stream.create) this.machine.send({ type: 'STREAM_LOST' })
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
    if (this.view.publish === 'failing') this.machine.send({ type: 'ACKED' })
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
    if (!nc || this.isClosed()) return
    this.log?.info('nats: reconnecting to re-read the TLS and credential files', { output: 'nats' })
    await nc.reconnect().catch((e: unknown) => this.setError(`reconnect: ${e instanceof Error ? e.message : String(e)}`))
  }

  /**
   * While reconnecting over TLS the client reports failed handshakes only as timeouts: find the
   * reason (at most one probe every 2 s) so /readyz names it.
   */
  private diagnose(): void {
    const now = this.clock.now()
    if (!wantsTls(this.config) || now - this.diagnosedAt < 2000) return
    // One probe at a time, and only while not connected: the machine says whether one may start.
    if (!this.machine.getSnapshot().can({ type: 'PROBE_START' })) return
    this.machine.send({ type: 'PROBE_START' })
    this.diagnosedAt = now
    void diagnoseTls(this.config, undefined, this.clock).then(
      (e) => this.report({ type: 'PROBE_DONE', error: e ? describeConnectError(e, this.config) : null }),
      () => this.report({ type: 'PROBE_DONE', error: null }),
    )
  }

  private settle(m: PendingMessage): void {
    this.pending -= m.events
    if (this.pending < this.config.maxPendingEvents) this.wakeWriters()
    if (this.pending === 0) this.onDrained?.()
  }

  private retry(m: PendingMessage, why: string): void {
    this.report({ type: 'PUBLISH_FAILED', error: why })
    const max = this.config.retry.maxAttempts
    if (max > 0 && m.attempts >= max) {
      this.settle(m)
      this.fail(m.events, 'retries_exhausted')
      return
    }
    this.stats.retriedEvents += m.events
    if (this.retryQueue.length === 0) {
      this.retryAt = this.clock.now() + this.retryBackoff.fail()
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

  /** Timeouts, due retries and stream re-checks; one timer for everything. */
  private tick(): void {
    const now = this.clock.now()
    const timeout = this.config.ackTimeoutMs
    if (this.view.link === 'connected') {
      for (const [seq, m] of this.inFlight) {
        // Insertion order is send order, so the first one not yet late ends the scan.
        if (now - m.sentAt < timeout) break
        this.inFlight.delete(seq)
        this.retry(m, `no acknowledgement within ${timeout} ms`)
      }
    }
    if (this.view.stream === 'unchecked' && this.nc) void this.setUpStream(this.nc)
    if (this.retryQueue.length > 0 && now >= this.retryAt && natsCanPublish(this.view)) {
      const due = this.retryQueue
      this.retryQueue = []
      this.waiting.unshiftAll(due)
    }
    this.flush()
  }

  // ---- connection -----------------------------------------------------------------------------

  private async connectLoop(): Promise<void> {
    const backoff = new Backoff(retryPolicy(this.config.retry))
    while (!this.isClosed()) {
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
        await delay(backoff.fail(), this.abort.signal, this.clock)
        continue
      }
      if (this.isClosed()) {
        await nc.close().catch(() => {})
        return
      }
      this.nc = nc
      this.inbox = createInbox()
      this.maxPayload = nc.info?.max_payload ?? this.config.maxMessageBytes
      nc.subscribe(`${this.inbox}.*`, { callback: (err, msg) => (err ? this.setError(`ack subscription: ${err.message}`) : this.onAck(msg)) })
      const server = nc.getServer()
      this.machine.send({ type: 'CONNECTED', server })
      this.log?.info(`nats: connected to ${server}`, { output: 'nats', server })
      void this.watchStatus(nc)
      await this.setUpStream(nc)
      return
    }
  }

  private async setUpStream(nc: NatsConnection): Promise<void> {
    // One check at a time, only while connected: the machine says whether one may start.
    if (!this.machine.getSnapshot().can({ type: 'STREAM_CHECK' })) return
    this.machine.send({ type: 'STREAM_CHECK' })
    try {
      const jsm = await jetstreamManager(nc)
      const r = await ensureStream(jsm, this.config.stream, this.config.subjectPrefix)
      if (r.created) this.log?.info(`nats: created stream ${this.config.stream.name}`, { output: 'nats', stream: this.config.stream.name })
      for (const d of r.differences) this.log?.warn(`nats: stream ${this.config.stream.name}: ${d} (left as it is)`, { output: 'nats' })
      this.machine.send({ type: 'STREAM_READY' })
      this.flush()
    } catch (e) {
      // tick() tries again while connected.
      this.report({ type: 'STREAM_FAILED', error: `stream ${this.config.stream.name}: ${e instanceof Error ? e.message : String(e)}` })
    }
  }

  private async watchStatus(nc: NatsConnection): Promise<void> {
    for await (const s of nc.status()) {
      switch (s.type) {
        case 'disconnect':
          this.report({ type: 'DISCONNECTED', error: `disconnected from ${s.server}` })
          break
        case 'reconnect': {
          this.machine.send({ type: 'RECONNECTED', server: s.server })
          this.stats.reconnects += 1
          this.log?.info(`nats: reconnected to ${s.server}`, { output: 'nats', server: s.server })
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
    if (!this.isClosed() && this.nc === nc) {
      this.machine.send({ type: 'CONNECTION_LOST' })
      this.nc = undefined
      this.connecting = this.connectLoop()
    }
  }

}

/** The configured retry timing as the one backoff (doubling, no jitter: retries are already spread by acks). */
function retryPolicy(retry: { readonly initialMs: number; readonly maxMs: number }): BackoffPolicy {
  return { initialMs: retry.initialMs, maxMs: retry.maxMs, factor: 2, jitter: 0 }
}

/** The state in words, for /readyz when the output is not ready. */
export function natsStateText(view: NatsConnectionView): string {
  if (view.phase === 'idle') return 'not started'
  if (view.phase === 'closed') return 'closed'
  if (view.link === 'connecting') return 'connecting'
  if (view.link === 'disconnected') return 'disconnected, reconnecting'
  if (view.stream === 'ensuring') return 'connected, checking the stream'
  if (view.stream !== 'ready') return 'connected, the stream not verified'
  if (view.publish === 'failing') return 'connected, publishes not acknowledged'
  return view.phase === 'closing' ? 'closing' : 'ready'
}
