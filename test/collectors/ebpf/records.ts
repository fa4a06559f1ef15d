/** Crafted kernel records, laid out like native/bpf/tapio_records.h. */
import { Cgroup, CGROUP_PATH_LEN, Exec, Exit, Hdr, Oom, Open, RECORD_SIZE, RecordKind, Tcp } from '../../../src/native/bpf-records.js'

export interface HdrFields {
  tgid?: number
  pid?: number
  uid?: number
  tsNs?: bigint
  cgroupId?: bigint
  comm?: string
}

export function record(kind: number, size = RECORD_SIZE[kind] ?? 48, h: HdrFields = {}): Buffer {
  const b = Buffer.alloc(size)
  if (size >= Hdr.end) {
    b.writeUInt16LE(kind, Hdr.kind)
    b.writeUInt16LE(size, Hdr.size)
    b.writeUInt32LE(h.tgid ?? 100, Hdr.tgid)
    b.writeUInt32LE(h.pid ?? h.tgid ?? 100, Hdr.pid)
    b.writeUInt32LE(h.uid ?? 0, Hdr.uid)
    b.writeBigUInt64LE(h.tsNs ?? 1_000_000_000n, Hdr.ts)
    b.writeBigUInt64LE(h.cgroupId ?? 1n, Hdr.cgroup)
    b.write(h.comm ?? 'proc', Hdr.comm, 15, 'latin1')
  }
  return b
}

export function execRecord(h: HdrFields, ppid: number, filename: string): Buffer {
  const b = record(RecordKind.exec, undefined, h)
  b.writeUInt32LE(ppid, Exec.ppid)
  b.write(filename, Exec.filename, 255, 'utf8')
  return b
}

export function exitRecord(h: HdrFields, status: number, durationNs: bigint): Buffer {
  const b = record(RecordKind.exit, undefined, h)
  b.writeUInt32LE(status, Exit.exitCode)
  b.writeBigUInt64LE(durationNs, Exit.duration)
  return b
}

export function tcpRecord(
  h: HdrFields,
  f: { old: number; now: number; v6?: boolean; saddr: number[]; daddr: number[]; sport: number; dport: number; ownerKnown?: number; durationNs?: bigint },
): Buffer {
  const b = record(RecordKind.tcp, undefined, h)
  b.writeUInt8(f.old, Tcp.oldState)
  b.writeUInt8(f.now, Tcp.newState)
  b.writeUInt16LE(f.v6 ? 10 : 2, Tcp.family)
  b.writeUInt16LE(f.sport, Tcp.sport)
  b.writeUInt16LE(f.dport, Tcp.dport)
  Buffer.from(f.saddr).copy(b, Tcp.saddr)
  Buffer.from(f.daddr).copy(b, Tcp.daddr)
  b.writeUInt32LE(f.ownerKnown ?? 1, Tcp.ownerKnown)
  b.writeBigUInt64LE(f.durationNs ?? 0n, Tcp.duration)
  return b
}

export function oomRecord(
  h: HdrFields,
  f: { victimPid: number; victimComm: string; totalVmKb: bigint; anonRssKb: bigint; fileRssKb: bigint; shmemRssKb: bigint; oomScoreAdj: number },
): Buffer {
  const b = record(RecordKind.oom, undefined, h)
  b.writeUInt32LE(f.victimPid, Oom.victimPid)
  b.writeInt32LE(f.oomScoreAdj, Oom.oomScoreAdj)
  b.writeBigUInt64LE(f.totalVmKb, Oom.totalVm)
  b.writeBigUInt64LE(f.anonRssKb, Oom.anonRss)
  b.writeBigUInt64LE(f.fileRssKb, Oom.fileRss)
  b.writeBigUInt64LE(f.shmemRssKb, Oom.shmemRss)
  b.write(f.victimComm, Oom.victimComm, 15, 'latin1')
  return b
}

export function openRecord(h: HdrFields, f: { path: string; flags: number; mode: number }): Buffer {
  const b = record(RecordKind.open, undefined, h)
  b.writeInt32LE(f.flags, Open.flags)
  b.writeUInt32LE(f.mode, Open.mode)
  b.write(f.path, Open.path, 255, 'utf8')
  return b
}

/** A cgroup_mkdir announcement; a path longer than the record holds is cut the way the kernel cuts it. */
export function cgroupRecord(id: bigint, path: string): Buffer {
  const b = record(RecordKind.cgroup)
  b.writeBigUInt64LE(id, Cgroup.id)
  const bytes = Buffer.from(path, 'utf8').subarray(0, CGROUP_PATH_LEN - 1)
  b.set(bytes, Cgroup.path)
  b.writeUInt32LE(bytes.length, Cgroup.pathLen)
  return b
}
