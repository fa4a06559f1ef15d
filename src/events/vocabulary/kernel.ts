import { lazySchema, type SchemaApi } from '../../core/lazy-schema.js'
import { registerEventData } from '../families.js'

/** Fields every kernel event carries in `data`. */
const processContext = (Schema: SchemaApi) => ({
  /** Process id (tgid). */
  pid: Schema.Number,
  /** Thread id. */
  tid: Schema.Number,
  uid: Schema.Number,
  comm: Schema.String,
  /** cgroup v2 id (decimal string: a 64-bit inode number). */
  cgroupId: Schema.String,
  /** Path below the cgroup2 mount, when it could be resolved. */
  cgroupPath: Schema.optional(Schema.String),
})

export const ProcessExecDataSchema = lazySchema((Schema) => Schema.Struct({
  ...processContext(Schema),
  ppid: Schema.Number,
  filename: Schema.String,
}))
export type ProcessExecData = typeof ProcessExecDataSchema.Type

export const ProcessExitDataSchema = lazySchema((Schema) => Schema.Struct({
  ...processContext(Schema),
  ppid: Schema.Number,
  /** exit(2) status; 0 when killed by a signal. */
  exitCode: Schema.Number,
  /** Terminating signal number, 0 for a normal exit. */
  signal: Schema.Number,
  coreDumped: Schema.Boolean,
  /** Process lifetime in nanoseconds. */
  durationNs: Schema.Number,
}))
export type ProcessExitData = typeof ProcessExitDataSchema.Type

export const TcpDataSchema = lazySchema((Schema) => Schema.Struct({
  ...processContext(Schema),
  family: Schema.Literals(['ipv4', 'ipv6']),
  saddr: Schema.String,
  sport: Schema.Number,
  daddr: Schema.String,
  dport: Schema.Number,
  oldState: Schema.String,
  newState: Schema.String,
  /** Since the socket was first seen (SYN), 0 when it predates the collector. */
  durationNs: Schema.Number,
  /** pid/comm belong to the socket's owner (seen at connect/close); else to whoever ran the softirq. */
  ownerKnown: Schema.Boolean,
}))
export type TcpData = typeof TcpDataSchema.Type

export const OomKillDataSchema = lazySchema((Schema) => Schema.Struct({
  ...processContext(Schema),
  victimPid: Schema.Number,
  victimComm: Schema.String,
  totalVmKb: Schema.Number,
  anonRssKb: Schema.Number,
  fileRssKb: Schema.Number,
  shmemRssKb: Schema.Number,
  oomScoreAdj: Schema.Number,
}))
export type OomKillData = typeof OomKillDataSchema.Type

export const FileOpenDataSchema = lazySchema((Schema) => Schema.Struct({
  ...processContext(Schema),
  path: Schema.String,
  flags: Schema.Number,
  mode: Schema.Number,
}))
export type FileOpenData = typeof FileOpenDataSchema.Type

export const ProbeHitDataSchema = lazySchema((Schema) => Schema.Struct(processContext(Schema)))
export type ProbeHitData = typeof ProbeHitDataSchema.Type

export const EBPF_EVENT_TYPES = {
  exec: 'kernel.process.exec',
  exit: 'kernel.process.exit',
  tcpConnect: 'kernel.tcp.connect',
  tcpAccept: 'kernel.tcp.accept',
  tcpClose: 'kernel.tcp.close',
  tcpConnectFailed: 'kernel.tcp.connect_failed',
  oomKill: 'kernel.oom.kill',
  fileOpen: 'kernel.file.open',
  probeHit: 'kernel.probe.hit',
} as const

declare module '../families.js' {
  interface EventDataMap {
    'kernel.process.exec': ProcessExecData
    'kernel.process.exit': ProcessExitData
    'kernel.tcp.connect': TcpData
    'kernel.tcp.accept': TcpData
    'kernel.tcp.close': TcpData
    'kernel.tcp.connect_failed': TcpData
    'kernel.oom.kill': OomKillData
    'kernel.file.open': FileOpenData
    'kernel.probe.hit': ProbeHitData
  }
}

registerEventData(EBPF_EVENT_TYPES.exec, ProcessExecDataSchema)
registerEventData(EBPF_EVENT_TYPES.exit, ProcessExitDataSchema)
registerEventData(EBPF_EVENT_TYPES.tcpConnect, TcpDataSchema)
registerEventData(EBPF_EVENT_TYPES.tcpAccept, TcpDataSchema)
registerEventData(EBPF_EVENT_TYPES.tcpClose, TcpDataSchema)
registerEventData(EBPF_EVENT_TYPES.tcpConnectFailed, TcpDataSchema)
registerEventData(EBPF_EVENT_TYPES.oomKill, OomKillDataSchema)
registerEventData(EBPF_EVENT_TYPES.fileOpen, FileOpenDataSchema)
registerEventData(EBPF_EVENT_TYPES.probeHit, ProbeHitDataSchema)
