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

const ascii = (s: string): Buffer => Buffer.from(s, 'utf8')

/** `{"type":"<type>","timestamp":"` for every type the collector makes. */
const OPEN_TYPE = new Map<string, Buffer>(Object.values(T).map((t) => [t, ascii(`{"type":${JSON.stringify(t)},"timestamp":"`)]))
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
  readonly data: Buffer
  readonly k8s: Buffer | undefined
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

// The batch being written: module state keeps the helpers small and monomorphic.
let out: Buffer = Buffer.alloc(0)
let pos = 0

function put(b: Buffer): void {
  const n = b.length
  if (n < 24) {
    for (let i = 0; i < n; i++) out[pos + i] = b[i] as number
  } else out.set(b, pos)
  pos += n
}

const B36 = '0123456789abcdefghijklmnopqrstuvwxyz'
const DIGIT36 = Uint8Array.from(B36, (c) => c.charCodeAt(0))

/** A non-negative safe integer in base `radix` (10 or 36), as `Number#toString(radix)` writes it. */
function putUint(n: number, radix: number): void {
  let len = 1
  for (let m = n; m >= radix; m = Math.floor(m / radix)) len++
  let p = pos + len
  pos = p
  do {
    const q = Math.floor(n / radix)
    out[--p] = radix === 10 ? 48 + (n - q * 10) : (DIGIT36[n - q * radix] as number)
    n = q
  } while (n > 0)
}

/** Any number, as `JSON.stringify` writes it (every value here is an integer). */
function putNumber(n: number): void {
  if (n >= 0 && n <= Number.MAX_SAFE_INTEGER) putUint(n, 10)
  else if (n < 0 && n >= -Number.MAX_SAFE_INTEGER) {
    out[pos++] = 45
    putUint(-n, 10)
  } else putText(String(n))
}

/** Text that needs no escaping (ASCII digits, dots, colons, letters). */
function putText(s: string): void {
  for (let i = 0; i < s.length; i++) out[pos++] = s.charCodeAt(i)
}

/**
 * The NUL-terminated string at `at` (at most `max` bytes) as `JSON.stringify(cstring(...))`:
 * printable ASCII without `"` or `\` is copied as it is; anything else goes through the decoder and
 * `JSON.stringify` themselves.
 */
function putCString(buf: Buffer, at: number, max: number, encoding: 'latin1' | 'utf8'): void {
  const end = at + max
  let i = at
  let plain = true
  for (; i < end; i++) {
    const c = buf[i] as number
    if (c === 0) break
    if (c < 0x20 || c > 0x7e || c === 0x22 || c === 0x5c) plain = false
  }
  if (plain) {
    out[pos++] = 0x22
    buf.copy(out, pos, at, i)
    pos += i - at
    out[pos++] = 0x22
    return
  }
  pos += out.write(JSON.stringify(buf.toString(encoding, at, i)), pos, 'utf8')
}

/** The time stamp as `BootClock#stamp` writes it, without making the string. */
function putStamp(clock: BootClock, view: DataView, at: number): void {
  const hi = view.getUint32(at + 4, true)
  if (hi >= 0x200000) {
    putText(clock.stamp(view, at))
    return
  }
  const ns = hi * 4294967296 + view.getUint32(at, true)
  let sec = Math.floor(ns / 1e9)
  let frac = ns - sec * 1e9
  if (frac < 0) {
    sec -= 1
    frac += 1e9
  }
  sec += clock.offSec
  frac += clock.offNs
  if (frac >= 1e9) {
    sec += 1
    frac -= 1e9
  }
  if (sec < 1) {
    putNumber(frac)
    return
  }
  putNumber(sec)
  // Nine digits, zero-padded.
  let p = pos + 9
  pos = p
  for (let k = 0; k < 9; k++) {
    const q = Math.floor(frac / 10)
    out[--p] = 48 + (frac - q * 10)
    frac = q
  }
}

/** Room for the longest line a record can make, given its variable parts. */
function ensure(extra: number): void {
  // Fixed text < 600 bytes; the longest string field (256 bytes) at 6 bytes per byte when escaped.
  const need = pos + extra + 600 + 6 * (PATH_LEN + COMM_LEN)
  if (need <= out.length) return
  const grown = Buffer.allocUnsafe(Math.max(need, out.length * 2))
  out.copy(grown, 0, 0, pos)
  out = grown
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
  out = Buffer.allocUnsafe(n * 240 + 4096)
  pos = 0
  const { buf, view, at, kinds, cgroups, clock } = s
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
    ensure(cgb.data.length + (cgb.k8s?.length ?? 0) + sourceTail.length)
    offsets[i - from] = pos
    // type, then severity: both depend on the record.
    let type: string
    let severity: Buffer = SEVERITY.info
    switch (kind) {
      case RecordKind.probe:
        type = T.probeHit
        severity = SEVERITY.debug
        break
      case RecordKind.exec:
        type = T.exec
        break
      case RecordKind.exit:
        type = T.exit
        if ((view.getUint32(rec + Exit.exitCode, true) & 0x7f) !== 0) severity = SEVERITY.warning
        break
      case RecordKind.tcp: {
        const oldState = view.getUint8(rec + Tcp.oldState)
        const newState = view.getUint8(rec + Tcp.newState)
        if (newState === 1) type = oldState === 3 ? T.tcpAccept : T.tcpConnect
        else if (oldState === 2) {
          type = T.tcpConnectFailed
          severity = SEVERITY.warning
        } else type = T.tcpClose
        break
      }
      case RecordKind.oom:
        type = T.oomKill
        severity = SEVERITY.error
        break
      default:
        type = T.fileOpen
        severity = SEVERITY.debug
    }
    put(OPEN_TYPE.get(type) as Buffer)
    putStamp(clock, view, rec + Hdr.ts)
    put(severity)
    putUint(view.getUint32(rec + Hdr.tgid, true), 10)
    put(TID)
    putUint(view.getUint32(rec + Hdr.pid, true), 10)
    put(UID)
    putUint(view.getUint32(rec + Hdr.uid, true), 10)
    put(COMM)
    putCString(buf, rec + Hdr.comm, COMM_LEN, 'latin1')
    put(cgb.data)
    switch (kind) {
      case RecordKind.probe:
        break
      case RecordKind.exec:
        put(PPID)
        putUint(view.getUint32(rec + Exec.ppid, true), 10)
        put(FILENAME)
        putCString(buf, rec + Exec.filename, PATH_LEN, 'utf8')
        break
      case RecordKind.exit: {
        const status = view.getUint32(rec + Exit.exitCode, true)
        const signal = status & 0x7f
        put(PPID)
        putUint(view.getUint32(rec + Exit.ppid, true), 10)
        put(EXIT_CODE)
        putUint(signal === 0 ? (status >> 8) & 0xff : 0, 10)
        put(SIGNAL)
        putUint(signal, 10)
        put((status & 0x80) !== 0 ? CORE_DUMPED_TRUE : CORE_DUMPED_FALSE)
        put(DURATION)
        putNumber(u64(view, rec + Exit.duration))
        break
      }
      case RecordKind.tcp: {
        const v6 = view.getUint16(rec + Tcp.family, true) === 10
        put(v6 ? FAMILY_V6 : FAMILY_V4)
        putText(v6 ? ipv6(buf, rec + Tcp.saddr) : ipv4(buf, rec + Tcp.saddr))
        put(SPORT)
        putUint(view.getUint16(rec + Tcp.sport, true), 10)
        put(DADDR)
        putText(v6 ? ipv6(buf, rec + Tcp.daddr) : ipv4(buf, rec + Tcp.daddr))
        put(DPORT)
        putUint(view.getUint16(rec + Tcp.dport, true), 10)
        put(OLD_STATE)
        const oldState = view.getUint8(rec + Tcp.oldState)
        const newState = view.getUint8(rec + Tcp.newState)
        putText(TCP_STATES[oldState] ?? String(oldState))
        put(NEW_STATE)
        putText(TCP_STATES[newState] ?? String(newState))
        put(DURATION_AFTER_STATE)
        putNumber(u64(view, rec + Tcp.duration))
        put(view.getUint32(rec + Tcp.ownerKnown, true) !== 0 ? OWNER_TRUE : OWNER_FALSE)
        break
      }
      case RecordKind.oom:
        put(VICTIM_PID)
        putUint(view.getUint32(rec + Oom.victimPid, true), 10)
        put(VICTIM_COMM)
        putCString(buf, rec + Oom.victimComm, COMM_LEN, 'latin1')
        put(TOTAL_VM)
        putNumber(u64(view, rec + Oom.totalVm))
        put(ANON_RSS)
        putNumber(u64(view, rec + Oom.anonRss))
        put(FILE_RSS)
        putNumber(u64(view, rec + Oom.fileRss))
        put(SHMEM_RSS)
        putNumber(u64(view, rec + Oom.shmemRss))
        put(OOM_SCORE_ADJ)
        putNumber(view.getInt32(rec + Oom.oomScoreAdj, true))
        break
      default:
        put(PATH)
        putCString(buf, rec + Open.path, PATH_LEN, 'utf8')
        put(FLAGS)
        putNumber(view.getInt32(rec + Open.flags, true))
        put(MODE)
        putUint(view.getUint32(rec + Open.mode, true), 10)
    }
    out[pos++] = 0x7d // the end of data
    if (cgb.k8s !== undefined) put(cgb.k8s)
    if (firstId >= 0) {
      put(ID_OPEN)
      putUint(firstId + (i - from), 36)
      put(sourceTail)
    } else put(CLOSE)
  }
  offsets[n] = pos
  const bytes = pos === out.length ? out : out.subarray(0, pos)
  out = Buffer.alloc(0)
  return { bytes, offsets }
}
