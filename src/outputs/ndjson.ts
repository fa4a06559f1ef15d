import type { TapioEvent } from '../events/event.js'
import { type Batch, DeferredBatch, encodedFormOf } from '../stream/deferred-batch.js'
import { encodeNdjson } from './json/event-encoder.js'

/**
 * One batch of events in its plain wire form (NDJSON: one `JSON.stringify(event)` per line), made
 * at most once and shared by every output and live-tail client that wants it. Everything is lazy:
 * a batch nobody serialises costs nothing, one serialised for the file output is reused by NATS
 * and by every `/events` client.
 *
 * The bytes come from the compiled per-type serialisers (`json/event-encoder.ts`: the same bytes
 * as `JSON.stringify`, written straight into one buffer), unless the batch was made with its bytes
 * already (`NdjsonBatch.encoded`, for a source that serialises its events itself).
 *
 * The events are read, never changed (see "Ownership" in docs/architecture.md): the lines stay
 * true to the events for as long as the batch lives. A deferred batch (the eBPF collector's kernel
 * records) brings its own NDJSON, made without event objects; so does the array of objects it
 * materialised, as long as it is that very array (a processor that changes anything returns another).
 */
export class NdjsonBatch {
  private lineCache: readonly string[] | undefined
  private byteCache: Buffer | undefined
  private offsetCache: Uint32Array | undefined

  private constructor(private readonly batch: Batch) {}

  /** A batch of events, or the shared form already made for it. */
  static from(batch: Batch | NdjsonBatch): NdjsonBatch {
    if (batch instanceof NdjsonBatch) return batch
    return new NdjsonBatch(batch instanceof DeferredBatch ? batch : (encodedFormOf(batch) ?? batch))
  }

  /** The events as objects (a deferred batch makes them now, once). */
  get events(): readonly TapioEvent[] {
    const b = this.batch
    return b instanceof DeferredBatch ? b.events() : b
  }

  /**
   * Events whose NDJSON was made elsewhere: `bytes` must be `JSON.stringify(events[i]) + "\n"` for
   * every event in order, and `offsets` (length + 1 entries) where each line starts and the end.
   */
  static encoded(events: readonly TapioEvent[], bytes: Buffer, offsets: Uint32Array): NdjsonBatch {
    if (offsets.length !== events.length + 1 || offsets[events.length] !== bytes.length) {
      throw new RangeError(`NdjsonBatch.encoded: ${events.length} events need ${events.length + 1} offsets ending at ${bytes.length}`)
    }
    const b = new NdjsonBatch(events)
    b.byteCache = bytes
    b.offsetCache = offsets
    return b
  }

  get length(): number {
    return this.batch.length
  }

  /** One JSON text per event, without the newline (decoded from the bytes: the tail's form). */
  get lines(): readonly string[] {
    if (this.lineCache === undefined) {
      const bytes = this.bytes
      const offsets = this.offsetCache as Uint32Array
      const n = this.length
      const lines = new Array<string>(n)
      for (let i = 0; i < n; i++) lines[i] = bytes.toString('utf8', offsets[i], (offsets[i + 1] as number) - 1)
      this.lineCache = lines
    }
    return this.lineCache
  }

  /** The whole batch as NDJSON bytes (UTF-8, a newline after every event). */
  get bytes(): Buffer {
    if (this.byteCache === undefined) this.encode()
    return this.byteCache as Buffer
  }

  /** Byte offset where event `i`'s line starts; `offset(length)` is the end of the bytes. */
  offset(i: number): number {
    if (this.offsetCache === undefined) this.encode()
    return (this.offsetCache as Uint32Array)[i] as number
  }

  /** NDJSON bytes of events `from` (inclusive) to `to` (exclusive): a view, not a copy. */
  slice(from: number, to: number): Buffer {
    return this.bytes.subarray(this.offset(from), this.offset(to))
  }

  private encode(): void {
    // A deferred batch brings its own bytes (made without objects).
    const e = this.batch instanceof DeferredBatch ? this.batch.ndjson() : encodeNdjson(this.events)
    this.byteCache = e.bytes
    this.offsetCache = e.offsets
  }
}

/** Lines written into one buffer, each between `prefix` and `suffix` (ASCII), with their offsets. */
export interface FramedLines {
  readonly bytes: Buffer
  /** Where frame `k` starts; `offsets[count]` is the end. */
  readonly offsets: Uint32Array
}

/**
 * One pass: every line (or the picked ones) written straight into one buffer, no joined
 * intermediate string, recording where each frame starts so callers can take runs as views.
 */
export function frameLines(lines: readonly string[], prefix: string, suffix: string, pick?: readonly number[]): FramedLines {
  const n = pick ? pick.length : lines.length
  const extra = prefix.length + suffix.length
  let chars = 0
  for (let k = 0; k < n; k++) chars += (lines[pick ? (pick[k] as number) : k] as string).length + extra
  // Room for ASCII text, the usual case; a line with wider characters grows the buffer.
  let buf = Buffer.allocUnsafe(chars)
  const offsets = new Uint32Array(n + 1)
  let at = 0
  let done = 0
  for (let k = 0; k < n; k++) {
    const line = lines[pick ? (pick[k] as number) : k] as string
    offsets[k] = at
    if (at + line.length * 3 + extra > buf.length) {
      const need = at + Buffer.byteLength(line) + extra
      if (need > buf.length) {
        // The rest may widen too: its characters at 3 bytes each is a bound.
        const grown = Buffer.allocUnsafe(need + (chars - done) * 3)
        buf.copy(grown, 0, 0, at)
        buf = grown
      }
    }
    if (prefix.length > 0) at += buf.write(prefix, at, 'latin1')
    at += buf.write(line, at)
    at += buf.write(suffix, at, 'latin1')
    done += line.length + extra
  }
  offsets[n] = at
  return { bytes: at === buf.length ? buf : buf.subarray(0, at), offsets }
}
