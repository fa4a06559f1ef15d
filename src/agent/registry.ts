import * as Result from 'effect/Result'
import * as Schema from 'effect/Schema'
import { syntheticCollectorFactory } from '../collectors/synthetic/collector.js'
import { SyntheticConfigSchema } from '../collectors/synthetic/config.js'
import { CniCollector, detectCni } from '../collectors/cni/index.js'
import { CniConfigInputSchema } from '../collectors/cni/config.js'
import { detectEbpf, EbpfCollector, EbpfConfigInputSchema } from '../collectors/ebpf/index.js'
import { detectKubernetes, KubernetesCollector, KubernetesConfigSchema } from '../collectors/kubernetes/index.js'
import { detectSystemd, SystemdConfigSchema, systemdCollectorFactory } from '../collectors/systemd/index.js'
import type { CollectorFactory } from '../core/collector.js'
import type { MetadataHub } from '../enrich/hub.js'
import { decodeWithPaths, type KindConfigValidator } from './config.js'

export interface Detection {
  readonly supported: boolean
  readonly reason: string
}

/** What the agent knows about one kind of collector. */
export interface CollectorKind {
  readonly kind: string
  readonly description: string
  readonly configSchema: Schema.Struct<Schema.Struct.Fields>
  /** Whether this machine can run it (for `enabled: auto`), and why not. */
  detect(config: Readonly<Record<string, unknown>>): Promise<Detection>
  /** A factory, so every start gets a fresh instance. */
  create(config: Readonly<Record<string, unknown>>): CollectorFactory
}

export const syntheticKind: CollectorKind = {
  kind: 'synthetic',
  description: 'generated events at a configurable rate, with failure injection (tests, demos, benchmarks)',
  configSchema: SyntheticConfigSchema as unknown as Schema.Struct<Schema.Struct.Fields>,
  detect: async () => ({ supported: true, reason: 'always available' }),
  // `faultyStarts` counts the registration's starts, so a fault can hit the first starts only.
  create: (config) => syntheticCollectorFactory(config),
}

/**
 * With a hub, every instance (a fresh one per restart) publishes its metadata cache there, for
 * the enrichment of kernel and network events.
 */
export function createKubernetesKind(hub?: MetadataHub): CollectorKind {
  return {
    kind: 'kubernetes',
    description: 'Kubernetes API watches: object changes, derived pod/node/deployment events, core/v1 Events',
    configSchema: KubernetesConfigSchema as unknown as Schema.Struct<Schema.Struct.Fields>,
    detect: (config) =>
      detectKubernetes({
        ...(typeof config.kubeconfig === 'string' ? { kubeconfig: config.kubeconfig } : {}),
        ...(typeof config.inCluster === 'boolean' ? { inCluster: config.inCluster } : {}),
      }),
    create: (config) => {
      const slot = hub?.slot()
      return () => {
        const c = new KubernetesCollector(config)
        slot?.set(c.metadata)
        return c
      }
    },
  }
}

export const kubernetesKind: CollectorKind = createKubernetesKind()

export const systemdKind: CollectorKind = {
  kind: 'systemd',
  description: 'systemd unit and job events over D-Bus (system bus by default)',
  configSchema: SystemdConfigSchema as unknown as Schema.Struct<Schema.Struct.Fields>,
  detect: (config) => detectSystemd(config as never),
  // The instances share one unit table, so a reconnect reports only differences.
  create: (config) => systemdCollectorFactory(config as never),
}

export const cniKind: CollectorKind = {
  kind: 'cni',
  description: 'network links, addresses and routes (rtnetlink), network namespaces, CNI configuration and results',
  configSchema: CniConfigInputSchema as unknown as Schema.Struct<Schema.Struct.Fields>,
  detect: (config) => detectCni(config),
  create: (config) => () => new CniCollector(config),
}

export const ebpfKind: CollectorKind = {
  kind: 'ebpf',
  description: 'kernel events through the libbpf addon: process exec/exit, TCP lifecycle, OOM kills, file opens',
  configSchema: EbpfConfigInputSchema as unknown as Schema.Struct<Schema.Struct.Fields>,
  detect: (config) => detectEbpf(config),
  create: (config) => () => new EbpfCollector(config),
}

export interface BuiltinKindsOptions {
  /** Where Kubernetes collectors publish their metadata caches (for enrichment). */
  readonly metadataHub?: MetadataHub
}

/** Every collector kind the agent can run, in start order. */
export function builtinKinds(options: BuiltinKindsOptions = {}): CollectorKind[] {
  const kubernetes = options.metadataHub ? createKubernetesKind(options.metadataHub) : kubernetesKind
  return [ebpfKind, kubernetes, systemdKind, cniKind, syntheticKind]
}

export function kindMap(kinds: readonly CollectorKind[]): Map<string, CollectorKind> {
  return new Map(kinds.map((k) => [k.kind, k]))
}

export function validators(kinds: readonly CollectorKind[]): Map<string, KindConfigValidator> {
  return new Map(
    kinds.map((k) => [
      k.kind,
      (config, path) => {
        const r = decodeWithPaths(k.configSchema, config, path)
        return Result.isFailure(r) ? r.failure : []
      },
    ]),
  )
}
