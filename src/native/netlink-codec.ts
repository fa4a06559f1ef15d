/**
 * rtnetlink wire format: the frames the native reader packs, the netlink messages inside them,
 * and the requests we send. Kernel bytes are untrusted: every read is bounds-checked, and a
 * record that does not hold together is counted as malformed instead of thrown.
 */
import * as Result from 'effect/Result'
import * as Schema from 'effect/Schema'

export const RTNLGRP = { LINK: 1, IPV4_IFADDR: 5, IPV4_ROUTE: 7, IPV6_IFADDR: 9, IPV6_ROUTE: 11, NSID: 28 } as const

const FRAME_DATAGRAM = 1
const FRAME_OVERRUN = 2
const FRAME_FATAL = 3

const NLMSG_HDRLEN = 16
const NLMSG_ERROR = 2
const NLMSG_DONE = 3
const NLMSG_OVERRUN = 4
export const RTM = {
  NEWLINK: 16,
  DELLINK: 17,
  GETLINK: 18,
  NEWADDR: 20,
  DELADDR: 21,
  GETADDR: 22,
  NEWROUTE: 24,
  DELROUTE: 25,
  GETROUTE: 26,
  NEWNSID: 88,
  DELNSID: 89,
  GETNSID: 90,
} as const
const NLM_F_REQUEST = 0x1
const NLM_F_DUMP = 0x300
const NLM_F_DUMP_INTR = 0x10

const IFLA_ADDRESS = 1
const IFLA_IFNAME = 3
const IFLA_MTU = 4
const IFLA_LINK = 5
const IFLA_MASTER = 10
const IFLA_OPERSTATE = 16
const IFLA_LINKINFO = 18
const IFLA_INFO_KIND = 1
const IFLA_LINK_NETNSID = 37
const IFA_ADDRESS = 1
const IFA_LOCAL = 2
const IFA_LABEL = 3
const IFA_FLAGS = 8
const RTA_DST = 1
const RTA_OIF = 4
const RTA_GATEWAY = 5
const RTA_PRIORITY = 6
const RTA_TABLE = 15
const NETNSA_NSID = 1
const NETNSA_FD = 3
const NLA_TYPE_MASK = 0x3fff

const AF_UNSPEC = 0
const AF_INET = 2
const AF_INET6 = 10
const IFF_UP = 0x1
const IFF_LOWER_UP = 0x10000

const OPER_STATES = ['unknown', 'notpresent', 'down', 'lowerlayerdown', 'testing', 'dormant', 'up'] as const
export type OperState = (typeof OPER_STATES)[number]

const IfIndex = Schema.Number.check(Schema.isInt(), Schema.isGreaterThan(0))
const NetlinkHeader = {
  seq: Schema.Number,
  /** Port id of the sender of the request that caused the message (0: the kernel itself). */
  pid: Schema.Number,
  op: Schema.Literals(['new', 'del']),
}

export const LinkRecordSchema = Schema.Struct({
  kind: Schema.Literal('link'),
  ...NetlinkHeader,
  index: IfIndex,
  name: Schema.String.check(Schema.isMinLength(1), Schema.isMaxLength(15)),
  /** IFLA_INFO_KIND: veth, bridge, vxlan, dummy...; absent for physical devices and loopback. */
  linkKind: Schema.optional(Schema.String),
  mac: Schema.optional(Schema.String),
  mtu: Schema.optional(Schema.Number),
  flags: Schema.Number,
  up: Schema.Boolean,
  lowerUp: Schema.Boolean,
  operState: Schema.Literals(OPER_STATES),
  master: Schema.optional(IfIndex),
  /** IFLA_LINK: for veth the peer's ifindex (in the peer's namespace). */
  link: Schema.optional(Schema.Number),
  /** IFLA_LINK_NETNSID: id (in our namespace) of the namespace the peer lives in. */
  linkNetnsId: Schema.optional(Schema.Number),
})
export type LinkRecord = typeof LinkRecordSchema.Type

export const AddressRecordSchema = Schema.Struct({
  kind: Schema.Literal('address'),
  ...NetlinkHeader,
  index: IfIndex,
  family: Schema.Literals(['ipv4', 'ipv6']),
  address: Schema.String.check(Schema.isMinLength(2)),
  prefixLength: Schema.Number.check(Schema.isInt(), Schema.isBetween({ minimum: 0, maximum: 128 })),
  scope: Schema.Number,
  label: Schema.optional(Schema.String),
  flags: Schema.Number,
})
export type AddressRecord = typeof AddressRecordSchema.Type

export interface NsidRecord {
  readonly kind: 'nsid'
  readonly op: 'new' | 'del'
  readonly seq: number
  readonly pid: number
  /** -1 when the namespace has no id in ours (NETNSA_NSID_NOT_ASSIGNED). */
  readonly nsid: number
}
/** End of a dump (NLMSG_DONE). */
export interface DoneRecord {
  readonly kind: 'done'
  readonly seq: number
  readonly pid: number
  /** NLM_F_DUMP_INTR: the table changed during the dump, which may be inconsistent. */
  readonly interrupted: boolean
}
/** NLMSG_ERROR: errno 0 is an acknowledgement. */
export interface ErrorRecord {
  readonly kind: 'error'
  readonly seq: number
  readonly pid: number
  readonly errno: number
}
/** The kernel dropped notifications (ENOBUFS); the state must be dumped again. */
export interface OverrunRecord {
  readonly kind: 'overrun'
}
/** The native reader stopped with this errno. */
export interface FatalRecord {
  readonly kind: 'fatal'
  readonly errno: number
}

export const RouteRecordSchema = Schema.Struct({
  kind: Schema.Literal('route'),
  ...NetlinkHeader,
  family: Schema.Literals(['ipv4', 'ipv6']),
  /** Destination address; the unspecified address with dstLength 0 for a default route. */
  dst: Schema.String,
  dstLength: Schema.Number.check(Schema.isInt(), Schema.isBetween({ minimum: 0, maximum: 128 })),
  table: Schema.Number,
  /** RTPROT_*: 2 kernel, 3 boot, 4 static, 16 dhcp, ... */
  protocol: Schema.Number,
  scope: Schema.Number,
  /** RTN_*: 1 unicast, 2 local, 3 broadcast, 5 multicast, 6 blackhole, 7 unreachable, ... */
  type: Schema.Number,
  oif: Schema.optional(Schema.Number),
  gateway: Schema.optional(Schema.String),
  priority: Schema.optional(Schema.Number),
})
export type RouteRecord = typeof RouteRecordSchema.Type

export type NetlinkRecord = LinkRecord | AddressRecord | RouteRecord | NsidRecord | DoneRecord | ErrorRecord | OverrunRecord | FatalRecord

export interface DecodedBatch {
  readonly records: NetlinkRecord[]
  /** Messages or frames that were cut short or failed validation. */
  readonly malformed: number
  /** Well-formed messages of types we do not follow. */
  readonly ignored: number
}

class Truncated extends Error {}

const decodeLink = Schema.decodeUnknownResult(LinkRecordSchema)
const decodeAddress = Schema.decodeUnknownResult(AddressRecordSchema)

/** Decode one batch delivered by the native reader. */
export function decodeBatch(buf: Buffer): DecodedBatch {
  const records: NetlinkRecord[] = []
  let malformed = 0
  let ignored = 0
  let off = 0
  while (off + 8 <= buf.length) {
    const kind = buf.readUInt32LE(off)
    const len = buf.readUInt32LE(off + 4)
    const start = off + 8
    const end = start + len
    if (end > buf.length) {
      malformed += 1
      break
    }
    off = start + align4(len)
    if (kind === FRAME_OVERRUN) records.push({ kind: 'overrun' })
    else if (kind === FRAME_FATAL) records.push({ kind: 'fatal', errno: len >= 4 ? buf.readInt32LE(start) : 0 })
    else if (kind === FRAME_DATAGRAM) {
      const r = decodeDatagram(buf.subarray(start, end), records)
      malformed += r.malformed
      ignored += r.ignored
    } else malformed += 1
  }
  if (off < buf.length && off + 8 > buf.length) malformed += 1
  return { records, malformed, ignored }
}

function decodeDatagram(dg: Buffer, out: NetlinkRecord[]): { malformed: number; ignored: number } {
  let malformed = 0
  let ignored = 0
  let off = 0
  while (off + NLMSG_HDRLEN <= dg.length) {
    const len = dg.readUInt32LE(off)
    if (len < NLMSG_HDRLEN || off + len > dg.length) {
      malformed += 1
      return { malformed, ignored }
    }
    const type = dg.readUInt16LE(off + 4)
    const flags = dg.readUInt16LE(off + 6)
    const seq = dg.readUInt32LE(off + 8)
    const pid = dg.readUInt32LE(off + 12)
    const body = dg.subarray(off + NLMSG_HDRLEN, off + len)
    off += align4(len)
    try {
      const rec = decodeMessage(type, flags, seq, pid, body)
      if (rec === undefined) ignored += 1
      else if (rec === null) malformed += 1
      else out.push(rec)
    } catch (e) {
      if (e instanceof Truncated || e instanceof RangeError) malformed += 1
      else throw e
    }
  }
  return { malformed, ignored }
}

/** undefined: a type we do not follow; null: failed validation. */
function decodeMessage(type: number, flags: number, seq: number, pid: number, body: Buffer): NetlinkRecord | undefined | null {
  switch (type) {
    case NLMSG_DONE:
      return { kind: 'done', seq, pid, interrupted: (flags & NLM_F_DUMP_INTR) !== 0 }
    case NLMSG_ERROR:
      need(body, 4)
      return { kind: 'error', seq, pid, errno: -body.readInt32LE(0) }
    case NLMSG_OVERRUN:
      return { kind: 'overrun' }
    case RTM.NEWLINK:
    case RTM.DELLINK:
      need(body, 16)
      // The bridge driver also announces its ports as AF_BRIDGE link messages (partial, and a
      // DELLINK when a port leaves the bridge); only AF_UNSPEC messages describe the device.
      if (body[0] !== AF_UNSPEC) return undefined
      return decodeLinkMessage(type === RTM.NEWLINK ? 'new' : 'del', seq, pid, body)
    case RTM.NEWADDR:
    case RTM.DELADDR:
      return decodeAddressMessage(type === RTM.NEWADDR ? 'new' : 'del', seq, pid, body)
    case RTM.NEWROUTE:
    case RTM.DELROUTE:
      return decodeRouteMessage(type === RTM.NEWROUTE ? 'new' : 'del', seq, pid, body)
    case RTM.NEWNSID:
    case RTM.DELNSID: {
      const attrs = parseAttributes(body, 4)
      const nsid = attrs.get(NETNSA_NSID)
      if (!nsid) return null
      need(nsid, 4)
      return { kind: 'nsid', op: type === RTM.NEWNSID ? 'new' : 'del', seq, pid, nsid: nsid.readInt32LE(0) }
    }
    default:
      return undefined
  }
}

function decodeLinkMessage(op: 'new' | 'del', seq: number, pid: number, body: Buffer): LinkRecord | null {
  need(body, 16)
  const index = body.readInt32LE(4)
  const flags = body.readUInt32LE(8)
  const attrs = parseAttributes(body, 16)
  const name = attrs.get(IFLA_IFNAME)
  const mac = attrs.get(IFLA_ADDRESS)
  const mtu = attrs.get(IFLA_MTU)
  const master = attrs.get(IFLA_MASTER)
  const link = attrs.get(IFLA_LINK)
  const netnsid = attrs.get(IFLA_LINK_NETNSID)
  const oper = attrs.get(IFLA_OPERSTATE)
  const info = attrs.get(IFLA_LINKINFO)
  const infoKind = info ? parseAttributes(info, 0).get(IFLA_INFO_KIND) : undefined
  const masterIndex = master ? u32(master) : 0
  const candidate = {
    kind: 'link',
    op,
    seq,
    pid,
    index,
    name: name ? cString(name) : '',
    ...(infoKind ? { linkKind: cString(infoKind) } : {}),
    ...(mac && mac.length > 0 ? { mac: formatMac(mac) } : {}),
    ...(mtu ? { mtu: u32(mtu) } : {}),
    flags,
    up: (flags & IFF_UP) !== 0,
    lowerUp: (flags & IFF_LOWER_UP) !== 0,
    operState: OPER_STATES[oper ? (oper[0] ?? 0) : 0] ?? 'unknown',
    ...(masterIndex > 0 ? { master: masterIndex } : {}),
    // 0 means "no peer yet" (the first half of a veth pair is announced before the second).
    ...(link && u32(link) > 0 ? { link: u32(link) } : {}),
    ...(netnsid ? { linkNetnsId: i32(netnsid) } : {}),
  }
  const r = decodeLink(candidate)
  return Result.isSuccess(r) ? r.success : null
}

function decodeAddressMessage(op: 'new' | 'del', seq: number, pid: number, body: Buffer): AddressRecord | null | undefined {
  need(body, 8)
  const familyNum = body[0]
  if (familyNum !== AF_INET && familyNum !== AF_INET6) return undefined
  const attrs = parseAttributes(body, 8)
  // For IPv4 IFA_LOCAL is the interface's own address (IFA_ADDRESS is the peer on point-to-point).
  const raw = (familyNum === AF_INET ? attrs.get(IFA_LOCAL) : undefined) ?? attrs.get(IFA_ADDRESS)
  const label = attrs.get(IFA_LABEL)
  const flags = attrs.get(IFA_FLAGS)
  const candidate = {
    kind: 'address',
    op,
    seq,
    pid,
    index: body.readUInt32LE(4),
    family: familyNum === AF_INET ? 'ipv4' : 'ipv6',
    address: raw ? formatIp(raw) : '',
    prefixLength: body[1],
    scope: body[3],
    ...(label ? { label: cString(label) } : {}),
    flags: flags ? u32(flags) : (body[2] ?? 0),
  }
  const r = decodeAddress(candidate)
  return Result.isSuccess(r) ? r.success : null
}

const decodeRoute = Schema.decodeUnknownResult(RouteRecordSchema)

function decodeRouteMessage(op: 'new' | 'del', seq: number, pid: number, body: Buffer): RouteRecord | null | undefined {
  need(body, 12)
  const familyNum = body[0]
  if (familyNum !== AF_INET && familyNum !== AF_INET6) return undefined
  const attrs = parseAttributes(body, 12)
  const dst = attrs.get(RTA_DST)
  const oif = attrs.get(RTA_OIF)
  const gateway = attrs.get(RTA_GATEWAY)
  const priority = attrs.get(RTA_PRIORITY)
  const table = attrs.get(RTA_TABLE)
  const candidate = {
    kind: 'route',
    op,
    seq,
    pid,
    family: familyNum === AF_INET ? 'ipv4' : 'ipv6',
    dst: dst ? formatIp(dst) : familyNum === AF_INET ? '0.0.0.0' : '::',
    dstLength: body[1],
    // RTA_TABLE holds tables above 255; the header byte is the legacy field.
    table: table ? u32(table) : (body[4] ?? 0),
    protocol: body[5],
    scope: body[6],
    type: body[7],
    ...(oif ? { oif: u32(oif) } : {}),
    ...(gateway ? { gateway: formatIp(gateway) } : {}),
    ...(priority ? { priority: u32(priority) } : {}),
  }
  const r = decodeRoute(candidate)
  return Result.isSuccess(r) ? r.success : null
}

/** Top-level attributes from `start`; later duplicates win (the kernel sends none). */
function parseAttributes(buf: Buffer, start: number): Map<number, Buffer> {
  const attrs = new Map<number, Buffer>()
  let off = start
  while (off + 4 <= buf.length) {
    const len = buf.readUInt16LE(off)
    const type = buf.readUInt16LE(off + 2) & NLA_TYPE_MASK
    if (len < 4 || off + len > buf.length) throw new Truncated()
    attrs.set(type, buf.subarray(off + 4, off + len))
    off += align4(len)
  }
  return attrs
}

function need(buf: Buffer, n: number): void {
  if (buf.length < n) throw new Truncated()
}
function u32(b: Buffer): number {
  need(b, 4)
  return b.readUInt32LE(0)
}
function i32(b: Buffer): number {
  need(b, 4)
  return b.readInt32LE(0)
}
function align4(n: number): number {
  return (n + 3) & ~3
}
function cString(b: Buffer): string {
  const nul = b.indexOf(0)
  return b.toString('utf8', 0, nul < 0 ? b.length : nul)
}

export function formatMac(b: Buffer): string {
  return Array.from(b, (x) => x.toString(16).padStart(2, '0')).join(':')
}

/** IPv4 dotted quad or RFC 5952 IPv6 text. */
export function formatIp(b: Buffer): string {
  if (b.length === 4) return `${b[0]}.${b[1]}.${b[2]}.${b[3]}`
  if (b.length !== 16) throw new Truncated()
  const groups: number[] = []
  for (let i = 0; i < 16; i += 2) groups.push(b.readUInt16BE(i))
  // The longest run of two or more zero groups is shortened to "::" (the first such run on a tie).
  let bestStart = -1
  let bestLen = 1
  for (let i = 0; i < 8; ) {
    if (groups[i] !== 0) {
      i += 1
      continue
    }
    let j = i
    while (j < 8 && groups[j] === 0) j += 1
    if (j - i > bestLen) {
      bestStart = i
      bestLen = j - i
    }
    i = j
  }
  const hex = (g: number[]): string => g.map((x) => x.toString(16)).join(':')
  if (bestStart < 0) return hex(groups)
  return `${hex(groups.slice(0, bestStart))}::${hex(groups.slice(bestStart + bestLen))}`
}

function header(total: number, type: number, flags: number, seq: number): Buffer {
  const b = Buffer.alloc(total)
  b.writeUInt32LE(total, 0)
  b.writeUInt16LE(type, 4)
  b.writeUInt16LE(flags, 6)
  b.writeUInt32LE(seq >>> 0, 8)
  return b
}

/** A dump request for every link, address or namespace id. */
export function encodeDumpRequest(what: 'links' | 'addresses' | 'routes' | 'nsids', seq: number): Buffer {
  if (what === 'routes') return header(NLMSG_HDRLEN + 12, RTM.GETROUTE, NLM_F_REQUEST | NLM_F_DUMP, seq)
  if (what === 'links') return header(NLMSG_HDRLEN + 16, RTM.GETLINK, NLM_F_REQUEST | NLM_F_DUMP, seq)
  if (what === 'addresses') return header(NLMSG_HDRLEN + 8, RTM.GETADDR, NLM_F_REQUEST | NLM_F_DUMP, seq)
  return header(NLMSG_HDRLEN + 4, RTM.GETNSID, NLM_F_REQUEST | NLM_F_DUMP, seq)
}

/** Ask for one link by index (answered with RTM_NEWLINK, or an error such as ENODEV). */
export function encodeGetLinkRequest(index: number, seq: number): Buffer {
  const b = header(NLMSG_HDRLEN + 16, RTM.GETLINK, NLM_F_REQUEST, seq)
  b.writeInt32LE(index, NLMSG_HDRLEN + 4)
  return b
}

/** Ask for the id (in our namespace) of the namespace behind an open file descriptor. */
export function encodeNsidByFdRequest(fd: number, seq: number): Buffer {
  const b = header(NLMSG_HDRLEN + 4 + 8, RTM.GETNSID, NLM_F_REQUEST, seq)
  b.writeUInt16LE(8, NLMSG_HDRLEN + 4)
  b.writeUInt16LE(NETNSA_FD, NLMSG_HDRLEN + 6)
  b.writeUInt32LE(fd, NLMSG_HDRLEN + 8)
  return b
}
