import { lazySchema } from '../../core/lazy-schema.js'
import { registerEventData } from '../families.js'

export const LinkDataSchema = lazySchema((Schema) => Schema.Struct({
  index: Schema.Number,
  name: Schema.String,
  /** veth, bridge, vxlan, dummy...; absent for physical devices and loopback. */
  kind: Schema.optional(Schema.String),
  mac: Schema.optional(Schema.String),
  mtu: Schema.optional(Schema.Number),
  /** Administratively up (IFF_UP). */
  up: Schema.Boolean,
  /** Carrier present (IFF_LOWER_UP). */
  lowerUp: Schema.Boolean,
  operState: Schema.String,
  /** ifindex of the bridge/bond this link is enslaved to. */
  master: Schema.optional(Schema.Number),
  masterName: Schema.optional(Schema.String),
  /** veth: the peer's ifindex, valid in the peer's namespace. */
  peerIndex: Schema.optional(Schema.Number),
  /** veth: the id (in this namespace) of the namespace the peer lives in. */
  peerNetnsId: Schema.optional(Schema.Number),
  /** veth: the name under the netns dir of that namespace, when known. */
  peerNetns: Schema.optional(Schema.String),
  /** True when learned from a dump (start or resync) rather than from a change notification. */
  snapshot: Schema.optional(Schema.Boolean),
  /** network.link.changed: the fields that changed, with old and new values. */
  changes: Schema.optional(
    Schema.Array(
      Schema.Struct({
        field: Schema.String,
        from: Schema.optional(Schema.Union([Schema.String, Schema.Number, Schema.Boolean])),
        to: Schema.optional(Schema.Union([Schema.String, Schema.Number, Schema.Boolean])),
      }),
    ),
  ),
}))
export type LinkData = typeof LinkDataSchema.Type
export type LinkChange = NonNullable<LinkData['changes']>[number]

export const AddressDataSchema = lazySchema((Schema) => Schema.Struct({
  index: Schema.Number,
  /** Name of the link at the time of the event, when known. */
  link: Schema.optional(Schema.String),
  family: Schema.Literals(['ipv4', 'ipv6']),
  address: Schema.String,
  prefixLength: Schema.Number,
  /** address/prefixLength */
  cidr: Schema.String,
  scope: Schema.String,
  label: Schema.optional(Schema.String),
  snapshot: Schema.optional(Schema.Boolean),
}))
export type AddressData = typeof AddressDataSchema.Type

export const RouteDataSchema = lazySchema((Schema) => Schema.Struct({
  family: Schema.Literals(['ipv4', 'ipv6']),
  /** address/prefixLength, or `default`. */
  destination: Schema.String,
  gateway: Schema.optional(Schema.String),
  /** Output interface index and name. */
  index: Schema.optional(Schema.Number),
  link: Schema.optional(Schema.String),
  /** `main`, `default` or the table number. */
  table: Schema.String,
  /** Who installed it: `kernel`, `boot`, `static`, `dhcp`, `bird`, `bgp`... or the number. */
  protocol: Schema.String,
  scope: Schema.String,
  /** `unicast`, `blackhole`, `unreachable`, `prohibit`, `throw`. */
  type: Schema.String,
  metric: Schema.optional(Schema.Number),
  snapshot: Schema.optional(Schema.Boolean),
}))
export type RouteData = typeof RouteDataSchema.Type

export const NetnsDataSchema = lazySchema((Schema) => Schema.Struct({
  name: Schema.String,
  path: Schema.String,
  /** Inode of the namespace (as in /proc/<pid>/ns/net -> net:[inode]). */
  inode: Schema.optional(Schema.Number),
  /** Its id in our namespace; absent until the kernel assigns one (e.g. when a veth peer moves in). */
  nsid: Schema.optional(Schema.Number),
  snapshot: Schema.optional(Schema.Boolean),
}))
export type NetnsData = typeof NetnsDataSchema.Type

export const CniConfigDataSchema = lazySchema((Schema) => Schema.Struct({
  file: Schema.String,
  path: Schema.String,
  /** conf: one plugin; conflist: a chain. */
  format: Schema.Literals(['conf', 'conflist']),
  name: Schema.String,
  cniVersion: Schema.optional(Schema.String),
  /** Plugin types in chain order (bridge, portmap, bandwidth...). */
  plugins: Schema.Array(Schema.String),
  snapshot: Schema.optional(Schema.Boolean),
}))
export type CniConfigData = typeof CniConfigDataSchema.Type

export const CniConfigRemovedDataSchema = lazySchema((Schema) => Schema.Struct({
  file: Schema.String,
  path: Schema.String,
  /** The network name it held when last valid. */
  name: Schema.optional(Schema.String),
}))
export type CniConfigRemovedData = typeof CniConfigRemovedDataSchema.Type

export const CniConfigInvalidDataSchema = lazySchema((Schema) => Schema.Struct({
  file: Schema.String,
  path: Schema.String,
  error: Schema.String,
  snapshot: Schema.optional(Schema.Boolean),
}))
export type CniConfigInvalidData = typeof CniConfigInvalidDataSchema.Type

export const CniAttachmentDataSchema = lazySchema((Schema) => Schema.Struct({
  /** The sandbox (pod infra) container id the runtime passed to CNI. */
  containerId: Schema.String,
  /** The interface name inside the sandbox (eth0). */
  ifName: Schema.String,
  networkName: Schema.String,
  file: Schema.String,
  cniVersion: Schema.optional(Schema.String),
  ips: Schema.Array(
    Schema.Struct({ address: Schema.String, gateway: Schema.optional(Schema.String), interface: Schema.optional(Schema.Number) }),
  ),
  /** First gateway among the IPs. */
  gateway: Schema.optional(Schema.String),
  interfaces: Schema.Array(Schema.Struct({ name: Schema.String, mac: Schema.optional(Schema.String), sandbox: Schema.optional(Schema.String) })),
  /** Network namespace path of the sandbox (from the interface named ifName). */
  sandbox: Schema.optional(Schema.String),
  snapshot: Schema.optional(Schema.Boolean),
  /** The result file was rewritten for an attachment already reported. */
  replaced: Schema.optional(Schema.Boolean),
}))
export type CniAttachmentData = typeof CniAttachmentDataSchema.Type

export const CNI_EVENT_TYPES = [
  'network.link.added',
  'network.link.removed',
  'network.link.up',
  'network.link.down',
  'network.link.changed',
  'network.address.added',
  'network.address.removed',
  'network.route.added',
  'network.route.removed',
  'network.netns.created',
  'network.netns.removed',
  'cni.config.added',
  'cni.config.changed',
  'cni.config.removed',
  'cni.config.invalid',
  'cni.attachment.added',
  'cni.attachment.removed',
] as const
export type CniEventType = (typeof CNI_EVENT_TYPES)[number]

declare module '../families.js' {
  interface EventDataMap {
    'network.link.added': LinkData
    'network.link.removed': LinkData
    'network.link.up': LinkData
    'network.link.down': LinkData
    'network.link.changed': LinkData
    'network.address.added': AddressData
    'network.address.removed': AddressData
    'network.route.added': RouteData
    'network.route.removed': RouteData
    'network.netns.created': NetnsData
    'network.netns.removed': NetnsData
    'cni.config.added': CniConfigData
    'cni.config.changed': CniConfigData
    'cni.config.removed': CniConfigRemovedData
    'cni.config.invalid': CniConfigInvalidData
    'cni.attachment.added': CniAttachmentData
    'cni.attachment.removed': CniAttachmentData
  }
}

for (const t of ['added', 'removed', 'up', 'down', 'changed'] as const) registerEventData(`network.link.${t}`, LinkDataSchema)
registerEventData('network.address.added', AddressDataSchema)
registerEventData('network.address.removed', AddressDataSchema)
registerEventData('network.route.added', RouteDataSchema)
registerEventData('network.route.removed', RouteDataSchema)
registerEventData('network.netns.created', NetnsDataSchema)
registerEventData('network.netns.removed', NetnsDataSchema)
registerEventData('cni.config.added', CniConfigDataSchema)
registerEventData('cni.config.changed', CniConfigDataSchema)
registerEventData('cni.config.removed', CniConfigRemovedDataSchema)
registerEventData('cni.config.invalid', CniConfigInvalidDataSchema)
registerEventData('cni.attachment.added', CniAttachmentDataSchema)
registerEventData('cni.attachment.removed', CniAttachmentDataSchema)
