/**
 * JSON text written straight into bytes, exactly as `Buffer.from(JSON.stringify(value))` would be:
 * no intermediate string per value or per line. Each writer here takes only the values whose
 * `JSON.stringify` form it reproduces byte for byte (an ASCII string without characters to escape,
 * a finite number, a boolean); the callers fall back to `JSON.stringify` for everything else.
 */
export class ByteWriter {
  buf: Buffer
  /** The next byte to write. */
  at = 0

  constructor(initialBytes = 1 << 16) {
    this.buf = Buffer.allocUnsafe(initialBytes)
  }

  /** Room for `n` more bytes. */
  reserve(n: number): void {
    if (this.at + n > this.buf.length) this.grow(n)
  }

  private grow(n: number): void {
    const next = Buffer.allocUnsafe(Math.max(this.buf.length * 2, this.at + n + 1024))
    this.buf.copy(next, 0, 0, this.at)
    this.buf = next
  }

  /** Text that `JSON.stringify` made (any characters): UTF-8, as `Buffer.from` encodes it. */
  text(s: string): void {
    this.reserve(s.length * 3)
    this.at += this.buf.write(s, this.at, 'utf8')
  }

  /** Bytes prepared beforehand (keys, punctuation). */
  raw(bytes: Uint8Array): void {
    const n = bytes.length
    if (this.at + n > this.buf.length) this.grow(n)
    const buf = this.buf
    let at = this.at
    for (let i = 0; i < n; i++) buf[at++] = bytes[i] as number
    this.at = at
  }

  byte(c: number): void {
    if (this.at >= this.buf.length) this.grow(1)
    this.buf[this.at++] = c
  }

  /** A copy of what was written from `from` on, sized to it. */
  copyOut(from: number): Buffer {
    const out = Buffer.allocUnsafe(this.at - from)
    this.buf.copy(out, 0, from, this.at)
    return out
  }
}

const QUOTE = 0x22

/** 1 for the ASCII characters JSON.stringify writes as they are: not a control, `"` or `\\`. */
const PLAIN = new Uint8Array(128)
for (let c = 0x20; c < 0x80; c++) PLAIN[c] = 1
PLAIN[0x22] = 0
PLAIN[0x5c] = 0

/** Where the native scan and copy start to pay (measured: about 32 characters). */
const LONG_STRING = 32
/** A character JSON.stringify escapes, or one outside ASCII. */
const ESCAPED_OR_WIDE = /[\u0000-\u001f"\\\u0080-\uffff]/

/**
 * A string as JSON: printable ASCII (and DEL, which JSON.stringify leaves as it is) byte by byte;
 * a string with anything to escape or wider characters goes through `JSON.stringify` (its escapes,
 * its `\udXXX` for lone surrogates), then UTF-8.
 */
export function writeString(w: ByteWriter, s: string): void {
  const n = s.length
  const start = w.at
  if (start + n + 2 > w.buf.length) w.reserve(n + 2)
  const buf = w.buf
  if (n >= LONG_STRING) {
    // Long text: one native scan and one native copy beat a character loop.
    if (ESCAPED_OR_WIDE.test(s)) {
      w.text(JSON.stringify(s))
      return
    }
    buf[start] = QUOTE
    buf.write(s, start + 1, n, 'latin1')
    buf[start + n + 1] = QUOTE
    w.at = start + n + 2
    return
  }
  let at = start
  buf[at++] = QUOTE
  for (let i = 0; i < n; i++) {
    const c = s.charCodeAt(i)
    if (c >= 0x80 || PLAIN[c] === 0) {
      w.at = start
      w.text(JSON.stringify(s))
      return
    }
    buf[at++] = c
  }
  buf[at++] = QUOTE
  w.at = at
}

/** Integers whose digits plain float arithmetic gets right. */
const MAX_DIGIT_LOOP = 2 ** 53

/** A number as JSON: `String(n)` for finite numbers (so `-0` is `0`), `null` otherwise. */
export function writeNumber(w: ByteWriter, v: number): void {
  if (w.at + 32 > w.buf.length) w.reserve(32)
  const buf = w.buf
  let at = w.at
  let x = v
  if (x < 0) {
    if (x > -MAX_DIGIT_LOOP && Math.floor(x) === x) {
      buf[at++] = 0x2d
      x = -x
    } else {
      writeAscii(w, v)
      return
    }
  } else if (!(x <= MAX_DIGIT_LOOP && Math.floor(x) === x)) {
    writeAscii(w, v)
    return
  }
  // x is now a non-negative integer up to 2^53 (and -0 became 0).
  if (x < 2147483648) {
    // Small integers (counters, pids, sizes): int32 arithmetic.
    let n = x | 0
    const len = n < 10 ? 1 : n < 100 ? 2 : n < 1000 ? 3 : n < 10000 ? 4 : n < 100000 ? 5 : n < 1000000 ? 6 : n < 10000000 ? 7 : n < 100000000 ? 8 : n < 1000000000 ? 9 : 10
    let p = at + len
    w.at = p
    do {
      const q = (n / 10) | 0
      buf[--p] = 0x30 + (n - q * 10)
      n = q
    } while (n > 0)
    return
  }
  let len = 1
  for (let t = x; t >= 10; t = Math.floor(t / 10)) len++
  let p = at + len
  at = p
  do {
    const q = Math.floor(x / 10)
    buf[--p] = 0x30 + (x - q * 10)
    x = q
  } while (x > 0)
  w.at = at
}

const NULL = Buffer.from('null')

/** Non-integers and huge numbers: the digits of `String(n)`, ASCII; `null` when not finite. */
function writeAscii(w: ByteWriter, v: number): void {
  if (!Number.isFinite(v)) {
    w.raw(NULL)
    return
  }
  const s = String(v)
  const buf = w.buf
  let at = w.at
  for (let i = 0; i < s.length; i++) buf[at++] = s.charCodeAt(i)
  w.at = at
}

const TRUE = Buffer.from('true')
const FALSE = Buffer.from('false')

export function writeBoolean(w: ByteWriter, v: boolean): void {
  w.raw(v ? TRUE : FALSE)
}

export function writeNull(w: ByteWriter): void {
  w.raw(NULL)
}
