/**
 * A small typed face of dbus-next. Its bundled typings are incomplete (the MessageType enum has
 * the wrong values, bodies are `any[]`, the connection's close is not surfaced at all and pending
 * calls never settle when the socket drops), so everything dbus-next specific lives here and the
 * rest of the collector sees plain typed values.
 */
import { EventEmitter } from 'node:events'
import { Message, sessionBus, type MessageBus } from 'dbus-next'
import { type Clock, systemClock } from '../../core/clock.js'
import { isAbstractAddress, socketPathOf } from './address.js'

/** Wire values of the D-Bus message types (dbus-next's typed enum starts at 0, the wire at 1). */
const METHOD_CALL = 1
const METHOD_RETURN = 2
const ERROR = 3
const SIGNAL = 4
/** Header flag: do not let the bus start the destination service for this call. */
const NO_AUTO_START = 2

export interface BusSignal {
  /** Position in this connection's incoming stream (see Reply.seq). */
  readonly seq: number
  readonly sender: string
  readonly destination: string | undefined
  readonly path: string
  readonly interface: string
  readonly member: string
  readonly signature: string
  readonly body: readonly unknown[]
}

export interface MethodCall {
  readonly destination: string
  readonly path: string
  readonly interface: string
  readonly member: string
  readonly signature?: string
  readonly body?: readonly unknown[]
}

export class BusError extends Error {
  override readonly name = 'BusError'
  constructor(
    message: string,
    /** The D-Bus error name for error replies (org.freedesktop.DBus.Error.*), else undefined. */
    readonly dbusName?: string,
  ) {
    super(message)
  }
}

export interface Reply {
  readonly body: readonly unknown[]
  /**
   * Position of the reply in the incoming stream. The bus keeps one sender's messages in order,
   * so a signal with a lower seq happened before the state this reply describes.
   */
  readonly seq: number
}

export interface BusConnection {
  /** The unique name the bus gave this connection (":1.42"). */
  readonly uniqueName: string
  readonly address: string
  call(req: MethodCall, timeoutMs: number): Promise<Reply>
  /** Signals addressed to or matched by this connection. Returns an unsubscribe function. */
  onSignal(listener: (signal: BusSignal) => void): () => void
  /** Called once when the connection is lost (not after close()). */
  onLost(listener: (reason: string) => void): void
  readonly closed: boolean
  close(): void
}

interface StreamLike {
  on(event: 'close', listener: () => void): unknown
  destroy(): void
}

/** The only private field used: dbus-next keeps the socket at `bus._connection.stream`. */
function streamOf(bus: MessageBus): StreamLike | undefined {
  const conn: unknown = Reflect.get(bus, '_connection')
  if (typeof conn !== 'object' || conn === null) return undefined
  const stream: unknown = Reflect.get(conn, 'stream')
  if (stream instanceof EventEmitter && typeof Reflect.get(stream, 'destroy') === 'function') {
    return stream as EventEmitter & StreamLike
  }
  return undefined
}

function describe(err: unknown): string {
  if (err instanceof Error) {
    const code = Reflect.get(err, 'code')
    return typeof code === 'string' && !err.message.includes(code) ? `${err.message} (${code})` : err.message
  }
  return String(err)
}

/**
 * Connect and complete the Hello handshake. Rejects with a clear reason when the socket is missing,
 * refused, the handshake fails, `timeoutMs` passes or `signal` aborts. The handshake's and every
 * call's timeout run on `clock`.
 */
export function connectBus(address: string, signal: AbortSignal, timeoutMs: number, clock: Clock = systemClock): Promise<BusConnection> {
  if (isAbstractAddress(address) && socketPathOf(address) === undefined) {
    return Promise.reject(
      new BusError(`cannot use ${address}: dbus-next supports unix:path= and tcp: addresses, not abstract sockets`),
    )
  }
  return new Promise<BusConnection>((resolve, reject) => {
    let bus: MessageBus
    try {
      bus = sessionBus({ busAddress: address })
    } catch (err) {
      reject(new BusError(`cannot connect to ${address}: ${describe(err)}`))
      return
    }
    const stream = streamOf(bus)
    let settled = false
    const fail = (reason: string): void => {
      if (settled) return
      settled = true
      cleanup()
      shutdown(bus, stream)
      reject(new BusError(reason))
    }
    const onAbort = (): void => fail(`connecting to ${address} aborted`)
    const onError = (err: unknown): void => fail(`cannot connect to ${address}: ${describe(err)}`)
    const onClose = (): void => fail(`${address} closed the connection during the handshake`)
    const timer = clock.setTimeout(() => fail(`no answer from ${address} within ${timeoutMs} ms`), timeoutMs)
    const cleanup = (): void => {
      clock.clearTimeout(timer)
      signal.removeEventListener('abort', onAbort)
      bus.removeListener('error', onError)
    }
    if (signal.aborted) {
      // dbus-next has already opened the socket; close it through the same path.
      queueMicrotask(onAbort)
    } else {
      signal.addEventListener('abort', onAbort, { once: true })
    }
    bus.on('error', onError)
    stream?.on('close', onClose)
    bus.once('connect', () => {
      if (settled) return
      settled = true
      cleanup()
      const uniqueName = Reflect.get(bus, 'name')
      resolve(new DbusNextConnection(bus, stream, address, typeof uniqueName === 'string' ? uniqueName : '', clock))
    })
  })
}

function shutdown(bus: MessageBus, stream: StreamLike | undefined): void {
  try {
    bus.disconnect()
  } catch {
    // already closed
  }
  // end() only half-closes; destroy so no socket handle keeps the process alive.
  stream?.destroy()
}

class DbusNextConnection implements BusConnection {
  #closed = false
  #lost = false
  readonly #pending = new Set<(err: BusError) => void>()
  readonly #lostListeners: Array<(reason: string) => void> = []
  readonly #signals = new Set<(signal: BusSignal) => void>()
  #seq = 0
  /** reply serial -> seq, filled before dbus-next settles the call (its listener runs after ours). */
  readonly #replySeq = new Map<number, number>()

  constructor(
    private readonly bus: MessageBus,
    private readonly stream: StreamLike | undefined,
    readonly address: string,
    readonly uniqueName: string,
    /** Times the calls' reply timeouts. */
    private readonly clock: Clock,
  ) {
    // A listener must stay attached: an 'error' event without one would throw out of the socket.
    bus.on('error', (err: unknown) => this.#markLost(`connection to ${address} failed: ${describe(err)}`))
    stream?.on('close', () => this.#markLost(`connection to ${address} closed (bus daemon gone?)`))
    bus.on('message', (msg: Message) => {
      const seq = ++this.#seq
      const type: number = msg.type
      if (type === METHOD_RETURN || type === ERROR) {
        this.#replySeq.set(Number(msg.replySerial), seq)
        return
      }
      if (type !== SIGNAL) return
      const s: BusSignal = {
        seq,
        sender: String(msg.sender ?? ''),
        destination: typeof msg.destination === 'string' ? msg.destination : undefined,
        path: String(msg.path ?? ''),
        interface: String(msg.interface ?? ''),
        member: String(msg.member ?? ''),
        signature: String(msg.signature ?? ''),
        body: Array.isArray(msg.body) ? (msg.body as unknown[]) : [],
      }
      for (const l of this.#signals) l(s)
    })
  }

  get closed(): boolean {
    return this.#closed || this.#lost
  }

  call(req: MethodCall, timeoutMs: number): Promise<Reply> {
    if (this.closed) return Promise.reject(new BusError(`${req.member}: connection to ${this.address} is closed`))
    return new Promise<Reply>((resolve, reject) => {
      // Built first: an invalid path or signature throws here, before a timer exists.
      const msg = new Message({
        type: METHOD_CALL,
        destination: req.destination,
        path: req.path,
        interface: req.interface,
        member: req.member,
        signature: req.signature ?? '',
        body: req.body ? [...req.body] : [],
        flags: NO_AUTO_START,
      })
      let serial: number | null = null
      const abort = (err: BusError): void => {
        this.clock.clearTimeout(timer)
        this.#pending.delete(abort)
        if (serial !== null) this.#replySeq.delete(serial)
        reject(err)
      }
      const timer = this.clock.setTimeout(
        () => abort(new BusError(`${req.interface}.${req.member} got no reply within ${timeoutMs} ms`)),
        timeoutMs,
      )
      this.#pending.add(abort)
      const settled = this.bus.call(msg)
      serial = msg.serial
      settled.then(
        (reply) => {
          const seq = serial !== null ? this.#replySeq.get(serial) : undefined
          if (serial !== null) this.#replySeq.delete(serial)
          if (!this.#pending.delete(abort)) return
          this.clock.clearTimeout(timer)
          resolve({ body: reply && Array.isArray(reply.body) ? (reply.body as unknown[]) : [], seq: seq ?? this.#seq })
        },
        (err: unknown) => {
          if (!this.#pending.has(abort)) return
          const name = typeof Reflect.get(Object(err), 'type') === 'string' ? String(Reflect.get(Object(err), 'type')) : undefined
          const text = Reflect.get(Object(err), 'text')
          abort(new BusError(`${req.interface}.${req.member}: ${typeof text === 'string' ? text : describe(err)}`, name))
        },
      )
    })
  }

  onSignal(listener: (signal: BusSignal) => void): () => void {
    this.#signals.add(listener)
    return () => this.#signals.delete(listener)
  }

  onLost(listener: (reason: string) => void): void {
    this.#lostListeners.push(listener)
  }

  close(): void {
    if (this.#closed) return
    this.#closed = true
    this.#rejectPending(`connection to ${this.address} closed`)
    this.#signals.clear()
    shutdown(this.bus, this.stream)
    this.bus.removeAllListeners('message')
  }

  #markLost(reason: string): void {
    if (this.#closed || this.#lost) return
    this.#lost = true
    this.#rejectPending(reason)
    shutdown(this.bus, this.stream)
    for (const l of this.#lostListeners) l(reason)
  }

  #rejectPending(reason: string): void {
    const pending = [...this.#pending]
    this.#pending.clear()
    for (const abort of pending) abort(new BusError(reason))
  }
}

export { isAbstractAddress, socketPathOf }
