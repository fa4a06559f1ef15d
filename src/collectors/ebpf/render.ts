/**
 * Scanned kernel records -> NDJSON bytes, written straight into one buffer per batch: no event
 * object, no `JSON.stringify`, no intermediate string for the common fields. Line `i` is exactly
 * `JSON.stringify` of the event `EventMaker` makes for record `i` (with the id and source the pump
 * stamped): same keys in the same order, same values. Whatever is not plain (a string with a byte
 * that JSON escapes or UTF-8 decoding changes, a u64 past 2^53, a time stamp past 104 days of
 * uptime) is handed to the very functions the object path uses (`Buffer#toString`,
 * `JSON.stringify`, `String`, `BootClock#stamp`), so both paths agree by construction;
 * `test/collectors/ebpf/render.test.ts` checks it on crafted, fuzzed and real records.
 */
import { eventIdPrefix } from '../../events/id.js'
import { EBPF_EVENT_TYPES as T } from '../../events/vocabulary/kernel.js'
import type { EncodedLines } from '../../stream/deferred-batch.js'
import { type BootClock, COMM_LEN, Exec, Exit, Hdr, ipv4, ipv6, Oom, Open, PATH_LEN, RecordKind, Tcp, u64 } from '../../native/bpf-records.js'
import type { CgroupInfo } from './cgroup.js'
import type { ScannedRecords } from './decode.js'
import { TCP_STATES } from './decode.js'

/**
 * A constant piece of text, kept as little-endian 32-bit words plus a tail: written four bytes at
 * a time (DataView stores, inlined by V8), which is what makes a line cheap to write.
 */
class Text {
  readonly words: Uint32Array
  readonly tail: Uint8Array
  constructor(readonly bytes: Buffer) {
    const n = bytes.length >> 2
    this.words = new Uint32Array(n)
    for (let i = 0; i < n; i++) this.words[i] = bytes.readUInt32LE(i * 4)
    this.tail = Uint8Array.from(bytes.subarray(n * 4))
  }
  get length(): number {
    return this.bytes.length
  }
}

const ascii = (s: string): Text => new Text(Buffer.from(s, 'utf8'))

/** `{"type":"<type>","timestamp":"` for every type the collector makes. */
const open = (t: string): Text => ascii(`{"type":${JSON.stringify(t)},"timestamp":"`)
const OPEN_PROBE = open(T.probeHit)
const OPEN_EXEC = open(T.exec)
const OPEN_EXIT = open(T.exit)
const OPEN_TCP_CONNECT = open(T.tcpConnect)
const OPEN_TCP_ACCEPT = open(T.tcpAccept)
const OPEN_TCP_CONNECT_FAILED = open(T.tcpConnectFailed)
const OPEN_TCP_CLOSE = open(T.tcpClose)
const OPEN_OOM = open(T.oomKill)
const OPEN_FILE = open(T.fileOpen)
const SEVERITY = {
  debug: ascii('","severity":"debug","data":{"pid":'),
  info: ascii('","severity":"info","data":{"pid":'),
  warning: ascii('","severity":"warning","data":{"pid":'),
  error: ascii('","severity":"error","data":{"pid":'),
} as const
const K = (s: string) => ascii(s)
const TID = K(',"tid":')
const UID = K(',"uid":')
const COMM = K(',"comm":')
const PPID = K(',"ppid":')
const FILENAME = K(',"filename":')
const EXIT_CODE = K(',"exitCode":')
const SIGNAL = K(',"signal":')
const CORE_DUMPED_TRUE = K(',"coreDumped":true')
const CORE_DUMPED_FALSE = K(',"coreDumped":false')
const DURATION = K(',"durationNs":')
const FAMILY_V4 = K(',"family":"ipv4","saddr":"')
const FAMILY_V6 = K(',"family":"ipv6","saddr":"')
const SPORT = K('","sport":')
const DADDR = K(',"daddr":"')
const DPORT = K('","dport":')
const OLD_STATE = K(',"oldState":"')
const NEW_STATE = K('","newState":"')
const DURATION_AFTER_STATE = K('","durationNs":')
const OWNER_TRUE = K(',"ownerKnown":true')
const OWNER_FALSE = K(',"ownerKnown":false')
const VICTIM_PID = K(',"victimPid":')
const VICTIM_COMM = K(',"victimComm":')
const TOTAL_VM = K(',"totalVmKb":')
const ANON_RSS = K(',"anonRssKb":')
const FILE_RSS = K(',"fileRssKb":')
const SHMEM_RSS = K(',"shmemRssKb":')
const OOM_SCORE_ADJ = K(',"oomScoreAdj":')
const PATH = K(',"path":')
const FLAGS = K(',"flags":')
const MODE = K(',"mode":')

/** The cgroup part of `data` (`,"cgroupId":...[,"cgroupPath":...]`) and the `,"k8s":...` part, per answer. */
interface CgroupBytes {
  readonly data: Text
  readonly k8s: Text | undefined
}
const cgroupBytes = new WeakMap<CgroupInfo, CgroupBytes>()

function bytesOf(cg: CgroupInfo): CgroupBytes {
  let b = cgroupBytes.get(cg)
  if (b === undefined) {
    const path = cg.path === undefined ? '' : `,"cgroupPath":${JSON.stringify(cg.path)}`
    b = {
      data: ascii(`,"cgroupId":${JSON.stringify(cg.id)}${path}`),
      k8s: cg.k8s === undefined ? undefined : ascii(`,"k8s":${JSON.stringify(cg.k8s)}`),
    }
    cgroupBytes.set(cg, b)
  }
  return b
}


/** The buffer of the batch being written and the position in it. */
class LineWriter {
  out: Buffer
  view: DataView
  pos = 0

  constructor(size: number) {
    this.out = Buffer.allocUnsafe(size)
    this.view = new DataView(this.out.buffer, this.out.byteOffset, this.out.length)
  }

  put(t: Text): void {
    const v = this.view
    const words = t.words
    let p = this.pos
    for (let i = 0; i < words.length; i++) {
      v.setUint32(p, words[i] as number, true)
      p += 4
    }
    const tail = t.tail
    const o = this.out
    for (let i = 0; i < tail.length; i++) o[p++] = tail[i] as number
    this.pos = p
  }

  byte(c: number): void {
    this.out[this.pos++] = c
  }

  /** A non-negative integer below 2^31 in decimal, with integer arithmetic. */
  small(n: number): void {
    let len = 1
    for (let m = n; m >= 10; m = (m / 10) | 0) len++
    const o = this.out
    let p = this.pos + len
    this.pos = p
    do {
      const q = (n / 10) | 0
      o[--p] = 48 + n - q * 10
      n = q
    } while (n > 0)
  }

  /** A non-negative safe integer in decimal, as `String(n)` writes it. */
  uint(n: number): void {
    if (n < 0x80000000) {
      this.small(n)
      return
    }
    let len = 1
    for (let m = n; m >= 10; m = Math.floor(m / 10)) len++
    const o = this.out
    let p = this.pos + len
    this.pos = p
    do {
      const q = Math.floor(n / 10)
      o[--p] = 48 + (n - q * 10)
      n = q
    } while (n > 0)
  }

  /** Any number, as `JSON.stringify` writes it (every value here is an integer). */
  number(n: number): void {
    if (n >= 0 && n <= Number.MAX_SAFE_INTEGER) this.uint(n)
    else if (n < 0 && n >= -Number.MAX_SAFE_INTEGER) {
      this.byte(45)
      this.uint(-n)
    } else this.text(String(n))
  }

  /** Text that needs no escaping (ASCII digits, dots, colons, letters). */
  text(s: string): void {
    const o = this.out
    let p = this.pos
    for (let i = 0; i < s.length; i++) o[p++] = s.charCodeAt(i)
    this.pos = p
  }

  /**
   * The NUL-terminated string at `at` (at most `max` bytes) as `JSON.stringify(cstring(...))`:
   * printable ASCII without `"` or `\` is copied as it is; anything else goes through the decoder
   * and `JSON.stringify` themselves.
   */
  cstring(buf: Buffer, at: number, max: number, encoding: 'latin1' | 'utf8'): void {
    const end = at + max
    let i = at
    let plain = true
    for (; i < end; i++) {
      const c = buf[i] as number
      if (c === 0) break
      if (c < 0x20 || c > 0x7e || c === 0x22 || c === 0x5c) plain = false
    }
    if (plain) {
      const o = this.out
      let p = this.pos
      o[p++] = 0x22
      for (let k = at; k < i; k++) o[p++] = buf[k] as number
      o[p++] = 0x22
      this.pos = p
      return
    }
    this.pos += this.out.write(JSON.stringify(buf.toString(encoding, at, i)), this.pos, 'utf8')
  }

  /** The time stamp as `BootClock#stamp` writes it, without making the string. */
  stamp(clock: BootClock, view: DataView, at: number): void {
    if (!clock.split(view, at)) {
      this.text(clock.stamp(view, at))
      return
    }
    const sec = clock.sec
    let frac = clock.frac
    if (sec < 1) {
      this.number(frac)
      return
    }
    this.number(sec)
    // Nine digits, zero-padded (frac < 1e9 < 2^31: integer arithmetic).
    const o = this.out
    let p = this.pos + 9
    this.pos = p
    for (let k = 0; k < 9; k++) {
      const q = (frac / 10) | 0
      o[--p] = 48 + frac - q * 10
      frac = q
    }
  }

  /**
   * Consecutive ids in base 36 without a division per id: the digits of the current id, least
   * significant last, incremented in place (`Number#toString(36)` of `first`, `first + 1`, ...).
   */
  private id = new Uint8Array(16)
  private idStart = 16

  startIds(first: number): void {
    const s = first.toString(36)
    this.id = new Uint8Array(Math.max(16, s.length + 1))
    this.idStart = this.id.length - s.length
    for (let i = 0; i < s.length; i++) this.id[this.idStart + i] = s.charCodeAt(i)
  }

  /** Writes the current id, then moves to the next. */
  nextId(): void {
    const d = this.id
    const o = this.out
    let p = this.pos
    for (let i = this.idStart; i < d.length; i++) o[p++] = d[i] as number
    this.pos = p
    for (let i = d.length - 1; ; i--) {
      if (i < this.idStart) {
        // One digit more (a carry out of the top digit).
        this.idStart = i
        d[i] = 49 // "1"
        return
      }
      const c = d[i] as number
      if (c === 57) {
        d[i] = 97 // "9" -> "a"
        return
      }
      if (c !== 122) {
        d[i] = c + 1
        return
      }
      d[i] = 48 // "z" -> "0", carry
    }
  }

  /** Room for the longest line a record can make, given its variable parts. */
  ensure(extra: number): void {
    // Fixed text < 600 bytes; the longest string fields (256 + 16 bytes) at 6 bytes per byte when escaped.
    const need = this.pos + extra + 600 + 6 * (PATH_LEN + COMM_LEN)
    if (need <= this.out.length) return
    const grown = Buffer.allocUnsafe(Math.max(need, this.out.length * 2))
    this.out.copy(grown, 0, 0, this.pos)
    this.out = grown
    this.view = new DataView(grown.buffer, grown.byteOffset, grown.length)
  }
}

/** Per batch: the pieces of `,"id":"<prefix>-<n>","source":<name>}` (or just `}` unstamped). */
const ID_OPEN = ascii(`,"id":"${eventIdPrefix()}-`)
const CLOSE = ascii('}\n')

/**
 * Lines `from` to `to` of `s`. `firstId` and `source` as stamped by the pump (line `i` gets id
 * `firstId + i - from`); `firstId < 0` leaves both out, like an unstamped event.
 */
export function renderNdjson(s: ScannedRecords, from: number, to: number, firstId: number, source: string | undefined): EncodedLines {
  const n = to - from
  const offsets = new Uint32Array(n + 1)
  const sourceTail = firstId >= 0 ? ascii(`","source":${JSON.stringify(source ?? '')}}\n`) : CLOSE
  const w = new LineWriter(n * 240 + 4096)
  const { buf, view, at, kinds, cgroups, clock } = s
  if (firstId >= 0) w.startIds(firstId)
  let lastCg: CgroupInfo | undefined
  let cgb: CgroupBytes = { data: CLOSE, k8s: undefined }
  for (let i = from; i < to; i++) {
    const rec = at[i] as number
    const kind = kinds[i] as number
    const cg = cgroups[i] as CgroupInfo
    if (cg !== lastCg) {
      cgb = bytesOf(cg)
      lastCg = cg
    }
    w.ensure(cgb.data.length + (cgb.k8s?.length ?? 0) + sourceTail.length)
    offsets[i - from] = w.pos
    // type, then severity: both depend on the record.
    let type: Text
    let severity: Text = SEVERITY.info
    switch (kind) {
      case RecordKind.probe:
        type = OPEN_PROBE
        severity = SEVERITY.debug
        break
      case RecordKind.exec:
        type = OPEN_EXEC
        break
      case RecordKind.exit:
        type = OPEN_EXIT
        if ((view.getUint32(rec + Exit.exitCode, true) & 0x7f) !== 0) severity = SEVERITY.warning
        break
      case RecordKind.tcp: {
        const oldState = view.getUint8(rec + Tcp.oldState)
        const newState = view.getUint8(rec + Tcp.newState)
        if (newState === 1) type = oldState === 3 ? OPEN_TCP_ACCEPT : OPEN_TCP_CONNECT
        else if (oldState === 2) {
          type = OPEN_TCP_CONNECT_FAILED
          severity = SEVERITY.warning
        } else type = OPEN_TCP_CLOSE
        break
      }
      case RecordKind.oom:
        type = OPEN_OOM
        severity = SEVERITY.error
        break
      default:
        type = OPEN_FILE
        severity = SEVERITY.debug
    }
    w.put(type)
    w.stamp(clock, view, rec + Hdr.ts)
    w.put(severity)
    w.uint(view.getUint32(rec + Hdr.tgid, true))
    w.put(TID)
    w.uint(view.getUint32(rec + Hdr.pid, true))
    w.put(UID)
    w.uint(view.getUint32(rec + Hdr.uid, true))
    w.put(COMM)
    w.cstring(buf, rec + Hdr.comm, COMM_LEN, 'latin1')
    w.put(cgb.data)
    switch (kind) {
      case RecordKind.probe:
        break
      case RecordKind.exec:
        w.put(PPID)
        w.uint(view.getUint32(rec + Exec.ppid, true))
        w.put(FILENAME)
        w.cstring(buf, rec + Exec.filename, PATH_LEN, 'utf8')
        break
      case RecordKind.exit: {
        const status = view.getUint32(rec + Exit.exitCode, true)
        const signal = status & 0x7f
        w.put(PPID)
        w.uint(view.getUint32(rec + Exit.ppid, true))
        w.put(EXIT_CODE)
        w.uint(signal === 0 ? (status >> 8) & 0xff : 0)
        w.put(SIGNAL)
        w.uint(signal)
        w.put((status & 0x80) !== 0 ? CORE_DUMPED_TRUE : CORE_DUMPED_FALSE)
        w.put(DURATION)
        w.number(u64(view, rec + Exit.duration))
        break
      }
      case RecordKind.tcp: {
        const v6 = view.getUint16(rec + Tcp.family, true) === 10
        w.put(v6 ? FAMILY_V6 : FAMILY_V4)
        w.text(v6 ? ipv6(buf, rec + Tcp.saddr) : ipv4(buf, rec + Tcp.saddr))
        w.put(SPORT)
        w.uint(view.getUint16(rec + Tcp.sport, true))
        w.put(DADDR)
        w.text(v6 ? ipv6(buf, rec + Tcp.daddr) : ipv4(buf, rec + Tcp.daddr))
        w.put(DPORT)
        w.uint(view.getUint16(rec + Tcp.dport, true))
        w.put(OLD_STATE)
        const oldState = view.getUint8(rec + Tcp.oldState)
        const newState = view.getUint8(rec + Tcp.newState)
        w.text(TCP_STATES[oldState] ?? String(oldState))
        w.put(NEW_STATE)
        w.text(TCP_STATES[newState] ?? String(newState))
        w.put(DURATION_AFTER_STATE)
        w.number(u64(view, rec + Tcp.duration))
        w.put(view.getUint32(rec + Tcp.ownerKnown, true) !== 0 ? OWNER_TRUE : OWNER_FALSE)
        break
      }
      case RecordKind.oom:
        w.put(VICTIM_PID)
        w.uint(view.getUint32(rec + Oom.victimPid, true))
        w.put(VICTIM_COMM)
        w.cstring(buf, rec + Oom.victimComm, COMM_LEN, 'latin1')
        w.put(TOTAL_VM)
        w.number(u64(view, rec + Oom.totalVm))
        w.put(ANON_RSS)
        w.number(u64(view, rec + Oom.anonRss))
        w.put(FILE_RSS)
        w.number(u64(view, rec + Oom.fileRss))
        w.put(SHMEM_RSS)
        w.number(u64(view, rec + Oom.shmemRss))
        w.put(OOM_SCORE_ADJ)
        w.number(view.getInt32(rec + Oom.oomScoreAdj, true))
        break
      default:
        w.put(PATH)
        w.cstring(buf, rec + Open.path, PATH_LEN, 'utf8')
        w.put(FLAGS)
        w.number(view.getInt32(rec + Open.flags, true))
        w.put(MODE)
        w.uint(view.getUint32(rec + Open.mode, true))
    }
    w.byte(0x7d) // the end of data
    if (cgb.k8s !== undefined) w.put(cgb.k8s)
    if (firstId >= 0) {
      w.put(ID_OPEN)
      w.nextId()
      w.put(sourceTail)
    } else w.put(CLOSE)
  }
  offsets[n] = w.pos
  return { bytes: w.pos === w.out.length ? w.out : w.out.subarray(0, w.pos), offsets }
}
