import * as Result from 'effect/Result'
import * as Schema from 'effect/Schema'

const PositiveMs = Schema.Finite.check(Schema.isInt(), Schema.isGreaterThan(0))
const Path = Schema.String.check(Schema.isMinLength(1))

const WatchedDirSchema = Schema.Struct({
  enabled: Schema.optional(Schema.Boolean).annotate({ description: 'Watch this directory.' }),
  dir: Schema.optional(Path).annotate({ description: 'The directory watched.' }),
})

/**
 * `required`: no netlink means the collector cannot start. `optional`: it starts without
 * link/address events and says so in health. `off`: files and namespaces only.
 */
export const NetlinkModeSchema = Schema.Literals(['required', 'optional', 'off'])
export type NetlinkMode = typeof NetlinkModeSchema.Type

export const CniConfigInputSchema = Schema.Struct({
  netlink: Schema.optional(
    Schema.Struct({
      mode: Schema.optional(NetlinkModeSchema).annotate({ description: 'required: no netlink means the collector cannot start; optional: it starts without link/address events and says so in health; off: files and namespaces only.' }),
      addonPath: Schema.optional(Path).annotate({ description: 'Path of tapio_netlink.node; defaults to native/build/Release in this package.' }),
      receiveBufferBytes: Schema.optional(Schema.Finite.check(Schema.isInt(), Schema.isGreaterThan(0))).annotate({ description: 'Socket receive buffer; a bigger one survives bursts (thousands of pods) without a resync.' }),
      routes: Schema.optional(Schema.Boolean).annotate({ description: 'Also report routes (off by default: nodes with BGP-learned routes have many).' }),
    }),
  ).annotate({ description: 'Links, addresses and routes from rtnetlink (the native addon).' }),
  cniConfig: Schema.optional(WatchedDirSchema).annotate({ description: 'CNI network configuration files (/etc/cni/net.d).' }),
  cniResults: Schema.optional(WatchedDirSchema).annotate({ description: 'CNI plugin results (/var/lib/cni/results).' }),
  netns: Schema.optional(WatchedDirSchema).annotate({ description: 'Named network namespaces (/var/run/netns).' }),
  pollIntervalMs: Schema.optional(PositiveMs).annotate({ description: 'How often a directory that does not exist yet is looked for.' }),
  rescanIntervalMs: Schema.optional(PositiveMs).annotate({ description: 'Full rescans of the watched directories, so an event fs.watch missed is still reported.' }),
  debounceMs: Schema.optional(Schema.Finite.check(Schema.isInt(), Schema.isGreaterThanOrEqualTo(0))).annotate({ description: 'Quiet time after a change before a directory is scanned (lets writers finish).' }),
  maxQueuedEvents: Schema.optional(PositiveMs).annotate({ description: 'Events waiting for the consumer beyond this are dropped and counted.' }),
})
export type CniCollectorConfigInput = typeof CniConfigInputSchema.Type

export interface WatchedDir {
  readonly enabled: boolean
  readonly dir: string
}

export interface CniCollectorConfig {
  readonly netlink: { readonly mode: NetlinkMode; readonly addonPath?: string; readonly receiveBufferBytes: number; readonly routes: boolean }
  readonly cniConfig: WatchedDir
  readonly cniResults: WatchedDir
  readonly netns: WatchedDir
  readonly pollIntervalMs: number
  readonly rescanIntervalMs: number
  readonly debounceMs: number
  readonly maxQueuedEvents: number
}

export const CNI_DEFAULTS: CniCollectorConfig = {
  netlink: { mode: 'required', receiveBufferBytes: 4 * 1024 * 1024, routes: false },
  cniConfig: { enabled: true, dir: '/etc/cni/net.d' },
  cniResults: { enabled: true, dir: '/var/lib/cni/results' },
  netns: { enabled: true, dir: '/var/run/netns' },
  pollIntervalMs: 2_000,
  rescanIntervalMs: 30_000,
  debounceMs: 50,
  maxQueuedEvents: 50_000,
}

export class CniConfigError extends Error {
  override readonly name = 'CniConfigError'
  readonly _tag = 'CniConfigError'
}

const decodeInput = Schema.decodeUnknownResult(CniConfigInputSchema)

function dir(input: { enabled?: boolean; dir?: string } | undefined, fallback: WatchedDir): WatchedDir {
  return { enabled: input?.enabled ?? fallback.enabled, dir: input?.dir ?? fallback.dir }
}

/** Validate and fill defaults; the error names the offending path. */
export function parseCniConfig(input: unknown = {}): Result.Result<CniCollectorConfig, CniConfigError> {
  const r = decodeInput(input ?? {}, { errors: 'all', onExcessProperty: 'error' })
  if (Result.isFailure(r)) return Result.fail(new CniConfigError(`invalid cni collector config: ${r.failure.message}`))
  const c = r.success
  const netlink = {
    mode: c.netlink?.mode ?? CNI_DEFAULTS.netlink.mode,
    receiveBufferBytes: c.netlink?.receiveBufferBytes ?? CNI_DEFAULTS.netlink.receiveBufferBytes,
    routes: c.netlink?.routes ?? CNI_DEFAULTS.netlink.routes,
    ...(c.netlink?.addonPath !== undefined ? { addonPath: c.netlink.addonPath } : {}),
  }
  return Result.succeed({
    netlink,
    cniConfig: dir(c.cniConfig, CNI_DEFAULTS.cniConfig),
    cniResults: dir(c.cniResults, CNI_DEFAULTS.cniResults),
    netns: dir(c.netns, CNI_DEFAULTS.netns),
    pollIntervalMs: c.pollIntervalMs ?? CNI_DEFAULTS.pollIntervalMs,
    rescanIntervalMs: c.rescanIntervalMs ?? CNI_DEFAULTS.rescanIntervalMs,
    debounceMs: c.debounceMs ?? CNI_DEFAULTS.debounceMs,
    maxQueuedEvents: c.maxQueuedEvents ?? CNI_DEFAULTS.maxQueuedEvents,
  })
}

/** Like parseCniConfig but throws CniConfigError. */
export function parseCniConfigOrThrow(input: unknown = {}): CniCollectorConfig {
  const r = parseCniConfig(input)
  if (Result.isFailure(r)) throw r.failure
  return r.success
}
