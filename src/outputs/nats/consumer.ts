import { AckPolicy, DeliverPolicy, type JsMsg, jetstream, jetstreamManager } from '@nats-io/jetstream'
import { connect, nanos, type NatsConnection } from '@nats-io/transport-node'
import * as Result from 'effect/Result'
import { type TapioEvent, validateEvent } from '../../events/event.js'
import { NATS_DEFAULTS } from './config.js'
import { NODE_HEADER } from './output.js'
import { connectOptions, describeConnectError, explainTimeout, type NatsConnectionSettings } from './connection.js'
import { parseEventSubject } from './subjects.js'
import { delay } from '../../core/delay.js'
import type { Clock } from '../../core/clock.js'

/** Servers, TLS and authentication as for the output (`outputs.nats`). */
export interface ConsumeEventsOptions extends NatsConnectionSettings {
  /** Durable consumer name: a restarted reader with the same name resumes where it stopped. */
  readonly durable: string
  /** Stream name (default TAPIO_EVENTS). */
  readonly stream?: string
  /** Subject prefix the agents publish under (default tapio.events); used to read node/source. */
  readonly subjectPrefix?: string
  /** Subject filter, e.g. `tapio.events.node-a.>` or `tapio.events.*.*.kernel.>`; all when absent. */
  readonly filter?: string
  /** Ends the iteration (after the events of the message in hand). */
  readonly signal?: AbortSignal
  /** Unacknowledged messages are redelivered after this long (default 30 s). */
  readonly ackWaitMs?: number
  /** Messages the server hands out before it waits for acknowledgements (default 1000). */
  readonly maxAckPending?: number
  /** Messages pulled per request (default 100). */
  readonly batch?: number
  /** Event ids remembered to skip redelivered copies of events already acknowledged (default 100,000). */
  readonly rememberIds?: number
  /** Times the retries while the stream does not exist yet (tests drive a ManualClock). Default: the system clock. */
  readonly clock?: Clock
}

/** One event read from the stream; call `ack()` after processing it. */
export interface ConsumedEvent {
  readonly event: TapioEvent
  /** The publishing agent's `node` (its Tapio-Node header; else the subject's node token). */
  readonly node: string
  readonly subject: string
  /** Stream sequence of the message that carried it. */
  readonly streamSequence: number
  readonly redelivered: boolean
  /**
   * Mark the event processed. The message that carried it is acknowledged (and the server's
   * confirmation awaited) once every event in it is acknowledged.
   */
  ack(): Promise<void>
  /** Ask for the whole message to be delivered again (after `delayMs`). */
  nak(delayMs?: number): void
}

export interface ConsumerStatistics {
  messages: number
  redeliveredMessages: number
  events: number
  ackedEvents: number
  /** Lines that were not valid TapioEvents (counted, skipped). */
  invalidEvents: number
  /** Messages with no valid event at all: terminated so the server never sends them again. */
  terminatedMessages: number
  /** Redelivered events this reader had already acknowledged (skipped: exactly once per id). */
  duplicateEvents: number
  lastInvalid: string | null
  /** Why the reader is not reading yet (stream missing, no JetStream leader), or null. */
  waiting: string | null
}

/** A running reader: iterate it once; `statistics()` at any time. */
export interface EventConsumer extends AsyncIterable<ConsumedEvent> {
  statistics(): Readonly<ConsumerStatistics>
  /** Reconnect, re-reading the TLS and credential files (SIGHUP in `tapio-agent consume`). */
  reconnect(): Promise<void>
}

class MessageAcks {
  remaining: number
  private done: Promise<void> | undefined
  constructor(
    readonly msg: JsMsg,
    count: number,
  ) {
    this.remaining = count
  }

  ackOne(): Promise<void> {
    this.remaining -= 1
    if (this.remaining > 0) return Promise.resolve()
    // ackAck waits for the server to confirm, so a reader that stops right after loses nothing.
    this.done ??= this.msg.ackAck().then(
      () => {},
      () => {},
    )
    return this.done
  }
}

/**
 * The last `max` ids, in a ring: evicting through a Set's iterator would rescan the deleted
 * entries at its front on every call (quadratic once full).
 */
class RecentIds {
  private readonly ids = new Set<string>()
  private readonly ring: (string | undefined)[]
  private next = 0
  constructor(private readonly max: number) {
    this.ring = new Array<string | undefined>(max)
  }
  has(id: string): boolean {
    return this.ids.has(id)
  }
  add(id: string): void {
    if (this.max === 0 || this.ids.has(id)) return
    const old = this.ring[this.next]
    if (old !== undefined) this.ids.delete(old)
    this.ring[this.next] = id
    this.ids.add(id)
    this.next = (this.next + 1) % this.max
  }
}

/** Split an NDJSON payload into validated events; counts what is not an event. */
export function decodeEventLines(text: string): { events: TapioEvent[]; invalid: string[] } {
  const events: TapioEvent[] = []
  const invalid: string[] = []
  for (const line of text.split('\n')) {
    if (line.trim() === '') continue
    let value: unknown
    try {
      value = JSON.parse(line)
    } catch (e) {
      invalid.push(`not JSON: ${(e as Error).message}`)
      continue
    }
    const r = validateEvent(value)
    if (Result.isSuccess(r)) events.push(r.success)
    else invalid.push(r.failure.detail)
  }
  return { events, invalid }
}

function isTransient(e: Error): boolean {
  return e.name === 'StreamNotFoundError' || e.name === 'TimeoutError' || e.name === 'NoRespondersError' || /timeout|no responders|not found|leader/i.test(e.message)
}

async function abortableDelay(ms: number, signal: AbortSignal | undefined, clock: Clock | undefined): Promise<void> {
  await delay(ms, signal, clock)
}

async function ensureDurable(nc: NatsConnection, stream: string, o: ConsumeEventsOptions): Promise<void> {
  const jsm = await jetstreamManager(nc)
  const existing = await jsm.consumers.info(stream, o.durable).catch((e: unknown) => {
    if (e instanceof Error && e.name === 'ConsumerNotFoundError') return undefined
    throw e
  })
  if (existing) {
    const have = existing.config.filter_subject ?? ''
    if ((o.filter ?? '') !== have)
      throw new Error(`durable consumer ${o.durable} exists with filter ${JSON.stringify(have)}, asked for ${JSON.stringify(o.filter ?? '')}: use another name`)
    return
  }
  await jsm.consumers.add(stream, {
    durable_name: o.durable,
    ack_policy: AckPolicy.Explicit,
    deliver_policy: DeliverPolicy.All,
    ack_wait: nanos(o.ackWaitMs ?? 30_000),
    max_ack_pending: o.maxAckPending ?? 1000,
    ...(o.filter ? { filter_subject: o.filter } : {}),
  })
}

/**
 * Read the events that agents published, through a durable JetStream consumer: every event of
 * every node, each validated with `validateEvent` (malformed ones are counted and skipped; a
 * message with nothing valid is terminated). Events are delivered at least once by the server;
 * this reader skips redelivered events it already acknowledged, and a reader restarted with the
 * same `durable` resumes after the last acknowledged message.
 */
export function consumeEvents(options: ConsumeEventsOptions): EventConsumer {
  const stats: ConsumerStatistics = {
    messages: 0,
    redeliveredMessages: 0,
    events: 0,
    ackedEvents: 0,
    invalidEvents: 0,
    terminatedMessages: 0,
    duplicateEvents: 0,
    lastInvalid: null,
    waiting: null,
  }
  const stream = options.stream ?? NATS_DEFAULTS.stream.name
  const prefix = options.subjectPrefix ?? NATS_DEFAULTS.subjectPrefix
  const seen = new RecentIds(options.rememberIds ?? 100_000)
  let iterated = false
  let current: NatsConnection | undefined

  async function* run(): AsyncGenerator<ConsumedEvent> {
    const signal = options.signal
    if (signal?.aborted) return
    const nc = await connect({
      ...connectOptions(options),
      name: `tapio-consumer-${options.durable}`,
      maxReconnectAttempts: -1,
      reconnectTimeWait: 500,
    }).catch(async (e: unknown) => {
      throw new Error(`cannot connect to ${options.servers.join(', ')}: ${describeConnectError(await explainTimeout(e, options), options)}`, { cause: e })
    })
    current = nc
    const open = new Set<MessageAcks>()
    let onAbort: (() => void) | undefined
    try {
      // Readers may start before any agent created the stream: wait for it rather than fail.
      for (let delay = 100; ; delay = Math.min(5000, delay * 2)) {
        try {
          await ensureDurable(nc, stream, options)
          break
        } catch (e) {
          if (!(e instanceof Error) || !isTransient(e)) throw e
          stats.waiting = `${e.message} (retrying)`
          await abortableDelay(delay, signal, options.clock)
          if (signal?.aborted) return
        }
      }
      stats.waiting = null
      const consumer = await jetstream(nc).consumers.get(stream, options.durable)
      // Pulls that expire after 5 s (heartbeats every 2.5 s) rather than the client's 30 s: when the
      // consumer's JetStream leader is killed, the reader notices within seconds, not half a minute
      // (measured by bench/fleet.ts: a leader kill stalled readers ~30 s with the default).
      const messages = await consumer.consume({ max_messages: options.batch ?? 100, expires: 5000 })
      onAbort = () => void messages.stop()
      signal?.addEventListener('abort', onAbort, { once: true })
      if (signal?.aborted) void messages.stop()
      for await (const msg of messages) {
        // After stop() the client still hands over what it had buffered: give it back at once
        // so the next reader does not wait for ack_wait.
        if (signal?.aborted) {
          msg.nak()
          continue
        }
        stats.messages += 1
        if (msg.redelivered) stats.redeliveredMessages += 1
        const { events, invalid } = decodeEventLines(msg.string())
        if (invalid.length > 0) {
          stats.invalidEvents += invalid.length
          stats.lastInvalid = `${msg.subject} #${msg.seq}: ${invalid[0]}`
        }
        const fresh = events.filter((e) => {
          if (!seen.has(e.id)) return true
          stats.duplicateEvents += 1
          return false
        })
        if (events.length === 0) {
          stats.terminatedMessages += 1
          msg.term('not a tapio event')
          continue
        }
        if (fresh.length === 0) {
          await msg.ackAck().catch(() => false)
          continue
        }
        const acks = new MessageAcks(msg, fresh.length)
        open.add(acks)
        const node = msg.headers?.get(NODE_HEADER) || parseEventSubject(prefix, msg.subject)?.node || ''
        for (const event of fresh) {
          stats.events += 1
          let acked = false
          yield {
            event,
            node,
            subject: msg.subject,
            streamSequence: msg.seq,
            redelivered: msg.redelivered,
            ack: () => {
              if (acked) return Promise.resolve()
              acked = true
              seen.add(event.id)
              stats.ackedEvents += 1
              const p = acks.ackOne()
              if (acks.remaining <= 0) open.delete(acks)
              return p
            },
            nak: (delayMs?: number) => {
              open.delete(acks)
              msg.nak(delayMs)
            },
          }
        }
      }
    } finally {
      if (onAbort) signal?.removeEventListener('abort', onAbort)
      // Whatever was handed out and not fully acknowledged goes back at once, not after ack_wait.
      for (const a of open) a.msg.nak()
      current = undefined
      await nc.drain().catch(() => nc.close())
    }
  }

  return {
    statistics: () => stats,
    reconnect: async () => {
      await current?.reconnect()
    },
    [Symbol.asyncIterator]() {
      if (iterated) throw new Error('consumeEvents: iterate the consumer once (start another for a second reader)')
      iterated = true
      return run()
    },
  }
}
