/**
 * Batches from the addon -> TapioEvents, in one pass with no intermediate objects. Every record a
 * batch claims ends up either as an event or in a malformed counter, so loss accounting stays exact.
 */
import type { EventInput } from '../../events/event.js'
import type { Severity } from '../../events/schema.js'
import {
  BATCH_HEADER,
  BATCH_MAGIC,
  type BootClock,
  Cgroup,
  CGROUP_PATH_LEN,
  COMM_LEN,
  cstring,
  Exec,
  Exit,
  FRAME_HEADER,
  Hdr,
  ipv4,
  ipv6,
  Oom,
  Open,
  PATH_LEN,
  RECORD_SIZE,
  RecordKind,
  Tcp,
  u64,
} from '../../native/bpf-records.js'
import type { CgroupInfo } from './cgroup.js'
import { EBPF_EVENT_TYPES as T } from '../../events/vocabulary/kernel.js'

export const TCP_STATES: readonly string[] = [
  'UNKNOWN',
  'ESTABLISHED',
  'SYN_SENT',
  'SYN_RECV',
  'FIN_WAIT1',
  'FIN_WAIT2',
  'TIME_WAIT',
  'CLOSE',
  'CLOSE_WAIT',
  'LAST_ACK',
  'LISTEN',
  'CLOSING',
  'NEW_SYN_RECV',
]

export interface CgroupLookup {
  lookup(id: number, tgid: number): CgroupInfo
  /** A cgroup2 directory announced by the kernel as it was made (before any process ran in it). */
  learn(id: number, path: string): void
}

/** Without container resolution: the id only, cached so repeated ids cost no string building. */
export class CgroupIdsOnly implements CgroupLookup {
  private readonly ids = new Map<number, CgroupInfo>()
  lookup(id: number): CgroupInfo {
    let hit = this.ids.get(id)
    if (hit === undefined) {
      if (this.ids.size > 16384) this.ids.clear()
      hit = { id: String(id) }
      this.ids.set(id, hit)
    }
    return hit
  }

  learn(): void {}
}

export interface DecodeCounters {
  /** Records claimed by batch headers. */
  records: number
  events: number
  malformed: number
  badBatches: number
  truncated: number
  unknownKind: number
  badSize: number
  /** cgroup announcements (not events, so outside records = events + malformed). */
  cgroups: number
  /** ... of which unusable: bad size, or a path cut short by the kernel record's length. */
  cgroupsUnusable: number
}

export function emptyDecodeCounters(): DecodeCounters {
  return { records: 0, events: 0, malformed: 0, badBatches: 0, truncated: 0, unknownKind: 0, badSize: 0, cgroups: 0, cgroupsUnusable: 0 }
}

/**
 * One native batch after the scan: where each event record starts, its kind, the cgroup answer
 * looked up for it and the wall clock, all fixed when the batch arrived. Events (objects) and
 * NDJSON (bytes, `render.ts`) are both made from exactly this, so they always agree.
 */
export interface ScannedRecords {
  readonly buf: Buffer
  readonly view: DataView
  /** Offset of each event record in `buf`. */
  readonly at: Uint32Array
  readonly kinds: Uint8Array
  readonly cgroups: readonly CgroupInfo[]
  readonly clock: BootClock
  readonly count: number
}

const NO_RECORDS = new Uint32Array(0)

/** Builds event objects from scanned records; remembers the last comm (a busy process repeats it). */
export class EventMaker {
  private lastCommA = -1
  private lastCommB = -1
  private lastCommC = -1
  private lastCommD = -1
  private lastComm = ''

  private comm(view: DataView, buf: Buffer, rec: number): string {
    const o = rec + Hdr.comm
    const a = view.getUint32(o, true)
    const b = view.getUint32(o + 4, true)
    const cc = view.getUint32(o + 8, true)
    const d = view.getUint32(o + 12, true)
    if (a === this.lastCommA && b === this.lastCommB && cc === this.lastCommC && d === this.lastCommD) return this.lastComm
    this.lastCommA = a
    this.lastCommB = b
    this.lastCommC = cc
    this.lastCommD = d
    this.lastComm = cstring(buf, o, COMM_LEN, 'latin1')
    return this.lastComm
  }

  /** Events `from` to `to` of `s`, unstamped (no id, no source). */
  make(s: ScannedRecords, from = 0, to = s.count): EventInput[] {
    const out = new Array<EventInput>(to - from)
    for (let i = from; i < to; i++) out[i - from] = this.event(s, i)
    return out
  }

  event(s: ScannedRecords, i: number): EventInput {
    return this.record(s.buf, s.view, s.at[i] as number, s.kinds[i] as number, s.cgroups[i] as CgroupInfo, s.clock)
  }

  private record(buf: Buffer, view: DataView, rec: number, kind: number, cg: CgroupInfo, clock: BootClock): EventInput {
    const pid = view.getUint32(rec + Hdr.tgid, true)
    const tid = view.getUint32(rec + Hdr.pid, true)
    const uid = view.getUint32(rec + Hdr.uid, true)
    const timestamp = clock.stamp(view, rec + Hdr.ts)
    const comm = this.comm(view, buf, rec)
    let type: string
    let severity: Severity = 'info'
    let data: Record<string, unknown>
    switch (kind) {
      case RecordKind.probe:
        type = T.probeHit
        severity = 'debug'
        data = { pid, tid, uid, comm, cgroupId: cg.id, cgroupPath: cg.path }
        break
      case RecordKind.exec:
        type = T.exec
        data = {
          pid,
          tid,
          uid,
          comm,
          cgroupId: cg.id,
          cgroupPath: cg.path,
          ppid: view.getUint32(rec + Exec.ppid, true),
          filename: cstring(buf, rec + Exec.filename, PATH_LEN),
        }
        break
      case RecordKind.exit: {
        const status = view.getUint32(rec + Exit.exitCode, true)
        const signal = status & 0x7f
        type = T.exit
        if (signal !== 0) severity = 'warning'
        data = {
          pid,
          tid,
          uid,
          comm,
          cgroupId: cg.id,
          cgroupPath: cg.path,
          ppid: view.getUint32(rec + Exit.ppid, true),
          exitCode: signal === 0 ? (status >> 8) & 0xff : 0,
          signal,
          coreDumped: (status & 0x80) !== 0,
          durationNs: u64(view, rec + Exit.duration),
        }
        break
      }
      case RecordKind.tcp: {
        const oldState = view.getUint8(rec + Tcp.oldState)
        const newState = view.getUint8(rec + Tcp.newState)
        const v6 = view.getUint16(rec + Tcp.family, true) === 10
        if (newState === 1) type = oldState === 3 ? T.tcpAccept : T.tcpConnect
        else if (oldState === 2) {
          type = T.tcpConnectFailed
          severity = 'warning'
        } else type = T.tcpClose
        data = {
          pid,
          tid,
          uid,
          comm,
          cgroupId: cg.id,
          cgroupPath: cg.path,
          family: v6 ? 'ipv6' : 'ipv4',
          saddr: v6 ? ipv6(buf, rec + Tcp.saddr) : ipv4(buf, rec + Tcp.saddr),
          sport: view.getUint16(rec + Tcp.sport, true),
          daddr: v6 ? ipv6(buf, rec + Tcp.daddr) : ipv4(buf, rec + Tcp.daddr),
          dport: view.getUint16(rec + Tcp.dport, true),
          oldState: TCP_STATES[oldState] ?? String(oldState),
          newState: TCP_STATES[newState] ?? String(newState),
          durationNs: u64(view, rec + Tcp.duration),
          ownerKnown: view.getUint32(rec + Tcp.ownerKnown, true) !== 0,
        }
        break
      }
      case RecordKind.oom:
        type = T.oomKill
        severity = 'error'
        data = {
          pid,
          tid,
          uid,
          comm,
          cgroupId: cg.id,
          cgroupPath: cg.path,
          victimPid: view.getUint32(rec + Oom.victimPid, true),
          victimComm: cstring(buf, rec + Oom.victimComm, COMM_LEN, 'latin1'),
          totalVmKb: u64(view, rec + Oom.totalVm),
          anonRssKb: u64(view, rec + Oom.anonRss),
          fileRssKb: u64(view, rec + Oom.fileRss),
          shmemRssKb: u64(view, rec + Oom.shmemRss),
          oomScoreAdj: view.getInt32(rec + Oom.oomScoreAdj, true),
        }
        break
      default:
        type = T.fileOpen
        severity = 'debug'
        data = {
          pid,
          tid,
          uid,
          comm,
          cgroupId: cg.id,
          cgroupPath: cg.path,
          path: cstring(buf, rec + Open.path, PATH_LEN),
          flags: view.getInt32(rec + Open.flags, true),
          mode: view.getUint32(rec + Open.mode, true),
        }
    }
    return cg.k8s === undefined ? { type, timestamp, severity, data } : { type, timestamp, severity, data, k8s: cg.k8s }
  }
}

export class BatchDecoder {
  readonly counters: DecodeCounters = emptyDecodeCounters()
  private readonly maker = new EventMaker()

  constructor(
    private clock: BootClock,
    private readonly cgroups: CgroupLookup,
  ) {}

  /** Wall time is re-anchored now and then: NTP slews CLOCK_REALTIME, not CLOCK_BOOTTIME. */
  setClock(clock: BootClock): void {
    this.clock = clock
  }

  /** The batch's events as objects (unstamped): `scan` then make every event. */
  decode(buf: Buffer): EventInput[] {
    return this.maker.make(this.scan(buf))
  }

  /**
   * Checks the framing, kind and size of every record the batch claims (each ends as an event or
   * in a malformed counter), feeds cgroup announcements to the resolver and looks up the cgroup of
   * every event record, in record order. Makes no event.
   */
  scan(buf: Buffer): ScannedRecords {
    const c = this.counters
    const view = new DataView(buf.buffer, buf.byteOffset, buf.length)
    const clock = this.clock
    if (buf.length < BATCH_HEADER || view.getUint32(0, true) !== BATCH_MAGIC) {
      c.badBatches++
      c.malformed++
      return { buf, view, at: NO_RECORDS, kinds: new Uint8Array(0), cgroups: [], clock, count: 0 }
    }
    const claimed = view.getUint32(4, true)
    c.records += claimed
    // At most one record per smallest frame fits: no growing.
    const room = Math.min(claimed, Math.floor((buf.length - BATCH_HEADER) / FRAME_HEADER))
    const at = new Uint32Array(room)
    const kinds = new Uint8Array(room)
    const cgroups = new Array<CgroupInfo>(room)
    let n = 0
    let pos = BATCH_HEADER
    let seen = 0
    for (; seen < claimed; seen++) {
      if (pos + FRAME_HEADER > buf.length) break
      const len = view.getUint32(pos, true)
      const rec = pos + FRAME_HEADER
      if (rec + len > buf.length) break
      pos = rec + ((len + 7) & ~7)
      if (len < Hdr.end) {
        c.badSize++
        c.malformed++
        continue
      }
      const kind = view.getUint16(rec + Hdr.kind, true)
      const expected = RECORD_SIZE[kind]
      if (expected === undefined || expected === 0) {
        c.unknownKind++
        c.malformed++
        continue
      }
      if (kind === RecordKind.cgroup) {
        this.cgroup(buf, view, rec, len === expected && view.getUint16(rec + Hdr.size, true) === expected)
        continue
      }
      if (len !== expected || view.getUint16(rec + Hdr.size, true) !== expected) {
        c.badSize++
        c.malformed++
        continue
      }
      at[n] = rec
      kinds[n] = kind
      cgroups[n] = this.cgroups.lookup(u64(view, rec + Hdr.cgroup), view.getUint32(rec + Hdr.tgid, true))
      n++
    }
    if (seen < claimed) {
      // Framing broke: the rest of what the header claimed cannot be read.
      c.truncated += claimed - seen
      c.malformed += claimed - seen
    }
    c.events += n
    cgroups.length = n
    return { buf, view, at, kinds, cgroups, clock, count: n }
  }

  private cgroup(buf: Buffer, view: DataView, rec: number, wellFormed: boolean): void {
    const c = this.counters
    c.cgroups++
    const pathLen = wellFormed ? view.getUint32(rec + Cgroup.pathLen, true) : 0
    // A path cut short has lost its last segment, the one that names the container: better none.
    if (!wellFormed || pathLen === 0 || pathLen >= CGROUP_PATH_LEN - 1) {
      c.cgroupsUnusable++
      return
    }
    this.cgroups.learn(u64(view, rec + Cgroup.id), buf.toString('utf8', rec + Cgroup.path, rec + Cgroup.path + pathLen))
  }
}
