/** Parsing of CNI configuration files and libcni result-cache files (untrusted JSON). */
import * as Result from 'effect/Result'
import * as Schema from 'effect/Schema'
import type { CniAttachmentData, CniConfigData } from '../../events/vocabulary/network.js'

const NonEmpty = Schema.String.check(Schema.isMinLength(1))

const PluginSchema = Schema.Struct({ type: NonEmpty })

const ConfSchema = Schema.Struct({
  cniVersion: Schema.optional(Schema.String),
  name: NonEmpty,
  type: NonEmpty,
})

const ConfListSchema = Schema.Struct({
  cniVersion: Schema.optional(Schema.String),
  name: NonEmpty,
  plugins: Schema.Array(PluginSchema).check(Schema.isMinLength(1)),
})

/** The extensions libcni (and so containerd and CRI-O) loads from the conf dir. */
export function isCniConfigFile(name: string): boolean {
  return !name.startsWith('.') && (name.endsWith('.conf') || name.endsWith('.conflist') || name.endsWith('.json'))
}

const decodeConf = Schema.decodeUnknownResult(ConfSchema)
const decodeList = Schema.decodeUnknownResult(ConfListSchema)

export type ParsedConfig = Omit<CniConfigData, 'file' | 'path' | 'snapshot'>

/** A conf file's network, or the reason it is not one. */
export function parseCniConfigFile(name: string, text: string): Result.Result<ParsedConfig, string> {
  let json: unknown
  try {
    json = JSON.parse(text)
  } catch (e) {
    return Result.fail(`not JSON: ${e instanceof Error ? e.message : String(e)}`)
  }
  const isList =
    name.endsWith('.conflist') || (name.endsWith('.json') && typeof json === 'object' && json !== null && 'plugins' in json)
  if (isList) {
    const r = decodeList(json, { errors: 'all' })
    if (Result.isFailure(r)) return Result.fail(`invalid conflist: ${r.failure.message}`)
    const v = r.success
    return Result.succeed({
      format: 'conflist',
      name: v.name,
      ...(v.cniVersion !== undefined ? { cniVersion: v.cniVersion } : {}),
      plugins: v.plugins.map((p) => p.type),
    })
  }
  const r = decodeConf(json, { errors: 'all' })
  if (Result.isFailure(r)) return Result.fail(`invalid conf: ${r.failure.message}`)
  const v = r.success
  return Result.succeed({
    format: 'conf',
    name: v.name,
    ...(v.cniVersion !== undefined ? { cniVersion: v.cniVersion } : {}),
    plugins: [v.type],
  })
}

const CniResultSchema = Schema.Struct({
  cniVersion: Schema.optional(Schema.String),
  interfaces: Schema.optional(
    Schema.Array(Schema.Struct({ name: Schema.String, mac: Schema.optional(Schema.String), sandbox: Schema.optional(Schema.String) })),
  ),
  ips: Schema.optional(
    Schema.Array(
      Schema.Struct({
        address: NonEmpty,
        gateway: Schema.optional(Schema.String),
        interface: Schema.optional(Schema.Number),
      }),
    ),
  ),
})

/** libcni's cache record (`cniCacheV1`), written on ADD and deleted on DEL. */
const CacheSchema = Schema.Struct({
  kind: Schema.Literal('cniCacheV1'),
  containerId: NonEmpty,
  ifName: NonEmpty,
  networkName: NonEmpty,
  cniArgs: Schema.optional(Schema.Array(Schema.Tuple([Schema.String, Schema.String]))),
  result: Schema.optional(CniResultSchema),
})

const decodeCache = Schema.decodeUnknownResult(CacheSchema)

export interface ParsedAttachment {
  readonly data: Omit<CniAttachmentData, 'file' | 'snapshot' | 'replaced'>
  /** Kubernetes identity from the CNI_ARGS the runtime passed (K8S_POD_NAMESPACE, ...). */
  readonly k8s?: { namespace?: string; pod?: string; podUid?: string; containerId?: string }
}

export function parseCniResultFile(text: string): Result.Result<ParsedAttachment, string> {
  let json: unknown
  try {
    json = JSON.parse(text)
  } catch (e) {
    return Result.fail(`not JSON: ${e instanceof Error ? e.message : String(e)}`)
  }
  const r = decodeCache(json, { errors: 'all' })
  if (Result.isFailure(r)) return Result.fail(`not a libcni cache record: ${r.failure.message}`)
  const c = r.success
  const ips = (c.result?.ips ?? []).map((ip) => ({
    address: ip.address,
    ...(ip.gateway ? { gateway: ip.gateway } : {}),
    ...(ip.interface !== undefined ? { interface: ip.interface } : {}),
  }))
  const interfaces = (c.result?.interfaces ?? []).map((i) => ({
    name: i.name,
    ...(i.mac ? { mac: i.mac } : {}),
    ...(i.sandbox ? { sandbox: i.sandbox } : {}),
  }))
  const gateway = ips.find((ip) => ip.gateway)?.gateway
  const sandbox = interfaces.find((i) => i.name === c.ifName && i.sandbox)?.sandbox
  const args = new Map(c.cniArgs ?? [])
  const k8s = {
    ...(args.get('K8S_POD_NAMESPACE') ? { namespace: args.get('K8S_POD_NAMESPACE') } : {}),
    ...(args.get('K8S_POD_NAME') ? { pod: args.get('K8S_POD_NAME') } : {}),
    ...(args.get('K8S_POD_UID') ? { podUid: args.get('K8S_POD_UID') } : {}),
  }
  return Result.succeed({
    data: {
      containerId: c.containerId,
      ifName: c.ifName,
      networkName: c.networkName,
      ...(c.result?.cniVersion ? { cniVersion: c.result.cniVersion } : {}),
      ips,
      ...(gateway ? { gateway } : {}),
      interfaces,
      ...(sandbox ? { sandbox } : {}),
    },
    ...(Object.keys(k8s).length > 0 ? { k8s: { ...k8s, containerId: c.containerId } } : {}),
  })
}
