import { once } from 'node:events'
import { createWriteStream, existsSync, renameSync, rmSync, statSync, type WriteStream } from 'node:fs'
import type { Writable } from 'node:stream'
import type { TapioEvent } from '../events/event.js'
import { NdjsonBatch } from '../outputs/ndjson.js'

/**
 * Where the agent writes the unified stream. `write` resolves when the sink accepted the batch.
 * The agent hands every output the same `NdjsonBatch`, so the batch is serialised once for all.
 */
export interface Output {
  readonly name: string
  write(batch: readonly TapioEvent[] | NdjsonBatch): Promise<void> | undefined
  close(): Promise<void>
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
}

export interface OutputHealth {
  readonly ready: boolean
  readonly lastError: string | null
  readonly details: unknown
}

/** NDJSON to a stream; waits for `drain` so a slow reader backpressures the whole pipeline. */
export class StreamOutput implements Output {
  written = 0
  bytes = 0
  errors = 0
  /** Events handed to this output after its stream failed: not written. */
  lost = 0
  private failed = false
  private waiting: (() => void) | undefined
  constructor(
    readonly name: string,
    private readonly stream: Writable,
    private readonly closeStream = false,
  ) {}

  write(batch: readonly TapioEvent[] | NdjsonBatch): Promise<void> | undefined {
    if (this.failed) {
      this.lost += batch.length
      return undefined
    }
    const b = NdjsonBatch.from(batch)
    this.written += b.length
    if (b.length === 0) return undefined
    const text = b.bytes
    this.bytes += text.length
    if (this.stream.write(text)) return undefined
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
   * wait forever) and count what comes after as lost.
   */
  fail(): void {
    if (!this.failed) this.errors += 1
    this.failed = true
    this.waiting?.()
  }

  async close(): Promise<void> {
    if (!this.closeStream) return
    this.stream.end()
    await once(this.stream, 'finish')
  }
}

/** NDJSON to a file, rotated by size: path, path.1 ... path.(maxFiles-1). */
export class RotatingFileOutput implements Output {
  readonly name = 'file'
  written = 0
  /** Bytes written since start (all files). */
  bytes = 0
  private stream: WriteStream
  /** Size of the current file. */
  private fileBytes: number

  constructor(
    private readonly path: string,
    private readonly maxBytes: number,
    private readonly maxFiles: number,
  ) {
    this.fileBytes = existsSync(path) ? statSync(path).size : 0
    this.stream = createWriteStream(path, { flags: 'a' })
  }

  write(batch: readonly TapioEvent[] | NdjsonBatch): Promise<void> | undefined {
    const b = NdjsonBatch.from(batch)
    this.written += b.length
    if (b.length === 0) return undefined
    const text = b.bytes
    const size = text.length
    if (this.fileBytes > 0 && this.fileBytes + size > this.maxBytes) return this.rotate().then(() => this.append(text, size))
    return this.append(text, size)
  }

  private append(text: Buffer, size: number): Promise<void> | undefined {
    this.fileBytes += size
    this.bytes += size
    if (this.stream.write(text)) return undefined
    return once(this.stream, 'drain').then(() => {})
  }

  private async rotate(): Promise<void> {
    this.stream.end()
    await once(this.stream, 'finish')
    for (let i = this.maxFiles - 1; i >= 1; i--) {
      const from = i === 1 ? this.path : `${this.path}.${i - 1}`
      const to = `${this.path}.${i}`
      if (existsSync(from)) {
        if (i === this.maxFiles - 1 && existsSync(to)) rmSync(to)
        renameSync(from, to)
      }
    }
    if (this.maxFiles === 1) rmSync(this.path, { force: true })
    this.stream = createWriteStream(this.path, { flags: 'a' })
    this.fileBytes = 0
  }

  async close(): Promise<void> {
    this.stream.end()
    await once(this.stream, 'finish')
  }
}
