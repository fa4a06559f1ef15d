import { once } from 'node:events'
import { accessSync, constants, createWriteStream, existsSync, mkdirSync, renameSync, rmSync, statSync, type WriteStream } from 'node:fs'
import { dirname, resolve } from 'node:path'
import type { Writable } from 'node:stream'
import type { TapioEvent } from '../events/event.js'
import { NdjsonBatch } from '../outputs/ndjson.js'
import { Backoff, type BackoffPolicy } from '../core/backoff.js'
import { delay } from '../core/delay.js'

/**
 * Where the agent writes the unified stream. `write` resolves when the sink accepted the batch.
 * The agent hands every output the same `NdjsonBatch`, so the batch is serialised once for all.
 */
export interface Output {
  readonly name: string
  write(batch: readonly TapioEvent[] | NdjsonBatch): Promise<void> | undefined
  /** Flush and close, within `timeoutMs` where the output bounds it; what is left is counted. */
  close(timeoutMs?: number): Promise<void>
  readonly written: number
  /** Bytes written (NDJSON), when the output counts them. */
  readonly bytes?: number
  /** Write errors, when the output counts them. */
  readonly errors?: number
  /** Outputs that can be unavailable (a network sink) say so; readiness reports them. */
  health?(): OutputHealth
  /** Shutting down: stop blocking `write` (close() bounds and counts what is left). */
  release?(): void
  /** SIGHUP: re-read certificate and credential files (the NATS output reconnects). */
  reconnect?(): Promise<void>
  /** Events handed to this output and not written, by reason (`shutdown`, `write_error`, ...). */
  dropped?(): Readonly<Record<string, number>>
}

export interface OutputHealth {
  readonly ready: boolean
  readonly lastError: string | null
  /** What the output is doing when not ready, in words (NATS: its connection machine's state); /readyz shows it. */
  readonly state?: string
  readonly details: unknown
}

/** Why an output did not write events it was handed. */
export type OutputDropReason = 'shutdown' | 'write_error'

/**
 * Events handed to a sink and not yet confirmed by it (the stream's write callback): each write is
 * one entry, settled once — written, failed (`write_error`) or given up at close (`shutdown`).
 * That is what makes `written + dropped = handed` hold at every instant and at exit.
 */
class WriteLedger {
  written = 0
  readonly dropped: Record<OutputDropReason, number> = { shutdown: 0, write_error: 0 }
  private readonly open = new Set<{ n: number }>()
  private idle: (() => void) | undefined

  get pending(): number {
    let n = 0
    for (const e of this.open) n += e.n
    return n
  }

  /** A write of `n` events: call the returned function with the stream's callback error. */
  begin(n: number): (err?: Error | null) => void {
    const entry = { n }
    this.open.add(entry)
    return (err) => {
      if (!this.open.delete(entry)) return
      if (err) this.dropped.write_error += n
      else this.written += n
      if (this.open.size === 0) this.idle?.()
    }
  }

  /** Count every unconfirmed write as dropped for `reason` (their late callbacks are ignored). */
  abandon(reason: OutputDropReason): number {
    let n = 0
    for (const e of this.open) n += e.n
    this.open.clear()
    this.dropped[reason] += n
    this.idle?.()
    return n
  }

  /** Resolves true when every write is confirmed, false when `ms` passed first. */
  async settled(ms: number): Promise<boolean> {
    if (this.open.size === 0) return true
    const ac = new AbortController()
    const idle = new Promise<void>((resolve) => (this.idle = resolve))
    const timedOut = await Promise.race([idle.then(() => false), delay(ms, ac.signal)])
    ac.abort()
    this.idle = undefined
    return !timedOut && this.open.size === 0
  }
}

function message(e: unknown): string {
  return e instanceof Error ? e.message : String(e)
}

/**
 * NDJSON to a stream (stdout); waits for `drain` so a slow reader backpressures the whole
 * pipeline. `written` counts what the stream took (its write callback), not what it was handed;
 * `close()` waits (bounded) until the stream took everything, and counts the rest as `shutdown`.
 * A failing stream (EPIPE: the reader went away) never throws: what it did not take, and
 * everything after, is counted as `write_error`.
 */
export class StreamOutput implements Output {
  bytes = 0
  errors = 0
  private readonly ledger = new WriteLedger()
  private failed = false
  private released = false
  private lastError: string | null = null
  private waiting: (() => void) | undefined
  constructor(
    readonly name: string,
    private readonly stream: Writable,
    private readonly closeStream = false,
  ) {
    stream.on('error', (e) => this.fail(e))
  }

  get written(): number {
    return this.ledger.written
  }

  /** Events handed to this output that it did not write (any reason). */
  get lost(): number {
    return this.ledger.dropped.shutdown + this.ledger.dropped.write_error
  }

  dropped(): Readonly<Record<OutputDropReason, number>> {
    return { ...this.ledger.dropped }
  }

  health(): OutputHealth {
    return { ready: !this.failed, lastError: this.lastError, details: { pending: this.ledger.pending, dropped: this.dropped() } }
  }

  write(batch: readonly TapioEvent[] | NdjsonBatch): Promise<void> | undefined {
    if (this.failed) {
      this.ledger.dropped.write_error += batch.length
      return undefined
    }
    const b = NdjsonBatch.from(batch)
    if (b.length === 0) return undefined
    const text = b.bytes
    this.bytes += text.length
    if (this.stream.write(text, this.ledger.begin(b.length)) || this.released) return undefined
    return new Promise<void>((resolve) => {
      const done = () => {
        this.stream.off('drain', done)
        this.waiting = undefined
        resolve()
      }
      this.waiting = done
      this.stream.on('drain', done)
    })
  }

  /**
   * The stream failed (a closed pipe): stop writing, release a write waiting for `drain` (it would
   * wait forever) and count what it had not taken, and what comes after, as `write_error`.
   */
  fail(error?: Error): void {
    if (!this.failed) this.errors += 1
    this.failed = true
    if (error) this.lastError = error.message
    this.ledger.abandon('write_error')
    this.waiting?.()
  }

  /** Stopping: a write waiting for `drain` returns (close() bounds the flush). */
  release(): void {
    this.released = true
    this.waiting?.()
  }

  /** Waits until the stream took every event, at most `timeoutMs`; the rest counts as `shutdown`. */
  async close(timeoutMs = 5_000): Promise<void> {
    this.release()
    if (!(await this.ledger.settled(timeoutMs))) this.ledger.abandon('shutdown')
    if (this.closeStream && !this.failed) {
      this.stream.end()
      await Promise.race([once(this.stream, 'finish').catch(() => {}), delay(timeoutMs)])
    }
  }
}

/**
 * Bytes the file stream takes before `write` waits for `drain`. Node's 16 KiB default is less than
 * one batch (about 150 KiB for 1,000 events), so every batch waited for its write to finish before
 * the next was serialised, and events waited in the buffer long enough to be promoted to the old
 * generation. With 1 MiB the next batches are serialised while the last is written (writes queued
 * meanwhile go out as one writev); measured in docs/performance.md.
 */
export const FILE_HIGH_WATER_MARK = 1 << 20

/** Reopening a file output that failed. */
const FILE_RETRY: BackoffPolicy = { initialMs: 500, maxMs: 30_000, factor: 2, jitter: 0.2 }

/**
 * NDJSON to a file, rotated by size: path, path.1 ... path.(maxFiles-1). A file that cannot be
 * opened or written (missing directory, permissions, disk full, EIO) never crashes the agent: the
 * output turns unready with the error, counts what it cannot write as `write_error` (the pipeline
 * keeps flowing to the other outputs), and reopens the file with backoff.
 */
export class RotatingFileOutput implements Output {
  readonly name = 'file'
  /** Bytes written since start (all files). */
  bytes = 0
  errors = 0
  private readonly ledger = new WriteLedger()
  private stream: WriteStream | undefined
  /** Size of the current file. */
  private fileBytes = 0
  private lastError: string | null = null
  private broken = false
  private closed = false
  private released = false
  private readonly backoff = new Backoff(FILE_RETRY)
  private readonly retryAbort = new AbortController()
  private retrying = false
  private waiting: (() => void) | undefined

  constructor(
    private readonly path: string,
    private readonly maxBytes: number,
    private readonly maxFiles: number,
    private readonly onError?: (message: string) => void,
  ) {
    this.open()
  }

  get written(): number {
    return this.ledger.written
  }

  dropped(): Readonly<Record<OutputDropReason, number>> {
    return { ...this.ledger.dropped }
  }

  health(): OutputHealth {
    return { ready: !this.broken, lastError: this.lastError, details: { path: this.path, pending: this.ledger.pending, dropped: this.dropped() } }
  }

  private open(): void {
    try {
      mkdirSync(dirname(this.path), { recursive: true })
      this.fileBytes = existsSync(this.path) ? statSync(this.path).size : 0
      const stream = createWriteStream(this.path, { flags: 'a', highWaterMark: FILE_HIGH_WATER_MARK })
      stream.on('error', (e) => this.failed(stream, e))
      stream.once('open', () => {
        if (this.stream !== stream) return
        this.backoff.succeed()
        this.broken = false
        this.lastError = null
      })
      this.stream = stream
    } catch (e) {
      this.failed(undefined, e)
    }
  }

  private failed(stream: WriteStream | undefined, e: unknown): void {
    if (stream !== undefined && stream !== this.stream) return
    this.errors += 1
    const text = `${this.path}: ${message(e)}`
    if (!this.broken || this.lastError !== text) this.onError?.(text)
    this.broken = true
    this.lastError = text
    this.stream = undefined
    stream?.destroy()
    this.ledger.abandon('write_error')
    this.waiting?.()
    this.scheduleReopen()
  }

  private scheduleReopen(): void {
    if (this.retrying || this.closed) return
    this.retrying = true
    void delay(this.backoff.fail(), this.retryAbort.signal).then((due) => {
      this.retrying = false
      if (due && !this.closed && this.stream === undefined) this.open()
    })
  }

  write(batch: readonly TapioEvent[] | NdjsonBatch): Promise<void> | undefined {
    if (this.stream === undefined || this.closed) {
      this.ledger.dropped.write_error += batch.length
      return undefined
    }
    const b = NdjsonBatch.from(batch)
    if (b.length === 0) return undefined
    const text = b.bytes
    const size = text.length
    if (this.fileBytes > 0 && this.fileBytes + size > this.maxBytes) return this.rotate().then(() => this.append(text, b.length))
    return this.append(text, b.length)
  }

  private append(text: Buffer, events: number): Promise<void> | undefined {
    const stream = this.stream
    if (stream === undefined) {
      this.ledger.dropped.write_error += events
      return undefined
    }
    this.fileBytes += text.length
    this.bytes += text.length
    if (stream.write(text, this.ledger.begin(events)) || this.released) return undefined
    return new Promise<void>((resolve) => {
      const done = () => {
        stream.off('drain', done)
        this.waiting = undefined
        resolve()
      }
      this.waiting = done
      stream.on('drain', done)
    })
  }

  private async rotate(): Promise<void> {
    const old = this.stream
    if (old === undefined) return
    try {
      old.end()
      await once(old, 'finish')
      for (let i = this.maxFiles - 1; i >= 1; i--) {
        const from = i === 1 ? this.path : `${this.path}.${i - 1}`
        const to = `${this.path}.${i}`
        if (existsSync(from)) {
          if (i === this.maxFiles - 1 && existsSync(to)) rmSync(to)
          renameSync(from, to)
        }
      }
      if (this.maxFiles === 1) rmSync(this.path, { force: true })
    } catch (e) {
      this.failed(old, e)
      return
    }
    this.open()
  }

  release(): void {
    this.released = true
    this.waiting?.()
  }

  /** Waits until the file took every event, at most `timeoutMs`; the rest counts as `shutdown`. */
  async close(timeoutMs = 5_000): Promise<void> {
    this.release()
    this.closed = true
    this.retryAbort.abort()
    const stream = this.stream
    if (stream) {
      stream.end()
      const finished = once(stream, 'finish').then(() => true, () => false)
      await Promise.race([finished, delay(timeoutMs).then(() => false)])
    }
    if (!(await this.ledger.settled(0))) this.ledger.abandon('shutdown')
  }
}

/**
 * For `check-config`: why the file output could not write at `path`, or undefined when the path
 * is a writable file or its directory exists (writable) or can be created. Nothing is created.
 */
export function fileOutputProblem(path: string): string | undefined {
  const abs = resolve(path)
  if (existsSync(abs)) {
    if (statSync(abs).isDirectory()) return `${path} is a directory`
    return writable(abs) ? undefined : `${path} is not writable`
  }
  let dir = dirname(abs)
  while (!existsSync(dir)) {
    const up = dirname(dir)
    if (up === dir) break
    dir = up
  }
  if (!statSync(dir).isDirectory()) return `cannot create the directory of ${path}: ${dir} is not a directory`
  if (!writable(dir)) return `cannot ${dir === dirname(abs) ? 'create files in' : 'create the directory of the file in'} ${dir}: not writable`
  return undefined
}

function writable(p: string): boolean {
  try {
    accessSync(p, constants.W_OK)
    return true
  } catch {
    return false
  }
}
