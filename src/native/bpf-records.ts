/**
 * Binary layout of the records written by native/bpf/tapio.bpf.c (mirrors
 * native/bpf/tapio_records.h) and of the batches the addon hands over, plus cheap readers.
 * Records are validated here by framing, kind and exact size: a Schema per record would cost
 * more than the rest of the path at a million records per second.
 */

export const BATCH_MAGIC = 0x31425054 // "TPB1"
export const BATCH_HEADER = 8
export const FRAME_HEADER = 8
export const COMM_LEN = 16
export const PATH_LEN = 256

export const RecordKind = {
  exec: 1,
  exit: 2,
  tcp: 3,
  oom: 4,
  open: 5,
  probe: 6,
  cgroup: 7,
} as const
export type RecordKindName = keyof typeof RecordKind
export const KIND_NAMES: readonly (RecordKindName | undefined)[] = [
  undefined,
  'exec',
  'exit',
  'tcp',
  'oom',
  'open',
  'probe',
  'cgroup',
]

/** The exact size of each kind's record; anything else is malformed. */
export const RECORD_SIZE: readonly number[] = [0, 312, 64, 104, 104, 312, 48, 576]
export const CGROUP_PATH_LEN = 512

export const Hdr = {
  kind: 0,
  size: 2,
  tgid: 4,
  pid: 8,
  uid: 12,
  ts: 16,
  cgroup: 24,
  comm: 32,
  end: 48,
} as const
export const Exec = { ppid: 48, oldPid: 52, filename: 56 } as const
export const Exit = { ppid: 48, exitCode: 52, duration: 56 } as const
export const Tcp = {
  oldState: 48,
  newState: 49,
  family: 50,
  sport: 52,
  dport: 54,
  saddr: 56,
  daddr: 72,
  duration: 88,
  ownerKnown: 96,
} as const
export const Oom = {
  victimPid: 48,
  oomScoreAdj: 52,
  totalVm: 56,
  anonRss: 64,
  fileRss: 72,
  shmemRss: 80,
  victimComm: 88,
} as const
export const Open = { flags: 48, mode: 52, path: 56 } as const
/** A new cgroup2 directory (not an event): its id and path relative to the cgroup2 root. */
export const Cgroup = { id: 48, level: 56, pathLen: 60, path: 64 } as const

const TWO32 = 4294967296

/** A u64 as a number: exact below 2^53 (durations, sizes, cgroup ids in practice). */
export function u64(view: DataView, at: number): number {
  return view.getUint32(at + 4, true) * TWO32 + view.getUint32(at, true)
}

/** A NUL-terminated byte string of at most `max` bytes (comm is short ASCII: latin1 is cheapest). */
export function cstring(buf: Buffer, at: number, max: number, encoding: 'latin1' | 'utf8' = 'utf8'): string {
  const end = at + max
  let i = at
  while (i < end && buf[i] !== 0) i++
  return buf.toString(encoding, at, i)
}

/** Converts CLOCK_BOOTTIME record stamps into epoch-nanosecond strings. */
export class BootClock {
  /** CLOCK_REALTIME - CLOCK_BOOTTIME: whole seconds and nanoseconds (0 <= offNs < 1e9). */
  readonly offSec: number
  readonly offNs: number
  private readonly offBig: bigint

  constructor(offset: readonly [number, number]) {
    this.offSec = offset[0]
    this.offNs = offset[1]
    this.offBig = BigInt(offset[0]) * 1_000_000_000n + BigInt(offset[1])
  }

  /** Whole seconds and nanoseconds of the last `split` (0 <= frac < 1e9). */
  sec = 0
  frac = 0

  /**
   * Splits the wall time of the boot-time stamp at `at` into `sec` and `frac` (no allocation, for
   * writers of bytes); false past 2^53 ns (104 days of uptime), where only `stamp` is exact.
   */
  split(view: DataView, at: number): boolean {
    const hi = view.getUint32(at + 4, true)
    // Below 2^53 ns plain doubles are exact and much cheaper than bigint.
    if (hi >= 0x200000) return false
    const ns = hi * TWO32 + view.getUint32(at, true)
    let sec = Math.floor(ns / 1e9)
    let frac = ns - sec * 1e9
    if (frac < 0) {
      sec -= 1
      frac += 1e9
    }
    sec += this.offSec
    frac += this.offNs
    if (frac >= 1e9) {
      sec += 1
      frac -= 1e9
    }
    this.sec = sec
    this.frac = frac
    return true
  }

  /** Epoch ns string of the u64 boot-time stamp at `at`. */
  stamp(view: DataView, at: number): string {
    if (this.split(view, at)) return this.sec < 1 ? String(this.frac) : `${this.sec}${pad9(this.frac)}`
    const hi = view.getUint32(at + 4, true)
    const lo = view.getUint32(at, true)
    return (this.offBig + ((BigInt(hi) << 32n) | BigInt(lo))).toString()
  }
}

function pad9(n: number): string {
  const s = String(n)
  return s.length >= 9 ? s : '000000000'.slice(s.length) + s
}

export function ipv4(buf: Buffer, at: number): string {
  return `${buf[at]}.${buf[at + 1]}.${buf[at + 2]}.${buf[at + 3]}`
}

/** RFC 5952 text form (longest zero run compressed, IPv4-mapped shown dotted). */
export function ipv6(buf: Buffer, at: number): string {
  const groups: number[] = []
  for (let i = 0; i < 8; i++) groups.push(((buf[at + 2 * i] ?? 0) << 8) | (buf[at + 2 * i + 1] ?? 0))
  if (groups.slice(0, 5).every((g) => g === 0) && groups[5] === 0xffff) return `::ffff:${ipv4(buf, at + 12)}`
  let bestStart = -1
  let bestLen = 0
  for (let i = 0; i < 8; ) {
    if (groups[i] !== 0) {
      i++
      continue
    }
    let j = i
    while (j < 8 && groups[j] === 0) j++
    if (j - i > bestLen && j - i >= 2) {
      bestStart = i
      bestLen = j - i
    }
    i = j
  }
  const hex = groups.map((g) => g.toString(16))
  if (bestStart < 0) return hex.join(':')
  return `${hex.slice(0, bestStart).join(':')}::${hex.slice(bestStart + bestLen).join(':')}`
}

/** Builds a batch the way the addon does (for tests and benchmarks of the decoder). */
export function encodeBatch(records: readonly Uint8Array[]): Buffer {
  let size = BATCH_HEADER
  for (const r of records) size += FRAME_HEADER + ((r.length + 7) & ~7)
  const out = Buffer.alloc(size)
  out.writeUInt32LE(BATCH_MAGIC, 0)
  out.writeUInt32LE(records.length, 4)
  let at = BATCH_HEADER
  for (const r of records) {
    out.writeUInt32LE(r.length, at)
    out.set(r, at + FRAME_HEADER)
    at += FRAME_HEADER + ((r.length + 7) & ~7)
  }
  return out
}
