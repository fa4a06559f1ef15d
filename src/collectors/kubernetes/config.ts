import * as Result from 'effect/Result'
import * as Schema from 'effect/Schema'
import { type LeaderElectionConfig, LeaderElectionSchema, resolveLeaderElection, type Scope, ScopesSchema } from './election-config.js'
import { RESOURCE_NAMES, type ResourceName } from './resources.js'

const PositiveMs = Schema.Finite.check(Schema.isInt(), Schema.isGreaterThan(0))
const Ratio = Schema.Finite.check(Schema.isBetween({ minimum: 0, maximum: 1 }))
const Selectors = Schema.Struct({
  labelSelector: Schema.optional(Schema.String).annotate({ description: 'Label selector (as kubectl -l) for this resource.' }),
  fieldSelector: Schema.optional(Schema.String).annotate({ description: 'Field selector (as kubectl --field-selector) for this resource.' }),
})

export const KubernetesConfigSchema = Schema.Struct({
  kubeconfig: Schema.optional(Schema.String).annotate({ description: 'Path of a kubeconfig file; default loading rules (KUBECONFIG, ~/.kube/config, in-cluster) when absent.' }),
  context: Schema.optional(Schema.String).annotate({ description: 'Context name within the kubeconfig; its current-context when absent.' }),
  inCluster: Schema.optional(Schema.Boolean).annotate({ description: 'Use the service-account config of the pod this runs in, ignoring kubeconfig files.' }),
  namespaces: Schema.optional(Schema.Array(Schema.String.check(Schema.isMinLength(1)))).annotate({ description: 'Namespaces to watch; all when absent or empty.' }),
  ignoreNamespaces: Schema.optional(Schema.Array(Schema.String.check(Schema.isMinLength(1)))).annotate({ description: 'Namespaces whose objects are never reported.' }),
  labelSelector: Schema.optional(Schema.String).annotate({ description: 'Label selector applied to every watched resource.' }),
  fieldSelector: Schema.optional(Schema.String).annotate({ description: 'Field selector applied to every watched resource (e.g. spec.nodeName=node-1).' }),
  selectors: Schema.optional(
    Schema.Struct(
      Object.fromEntries(RESOURCE_NAMES.map((r) => [r, Schema.optional(Selectors).annotate({ description: `Selectors for ${r}, replacing the global ones.` })])) as Record<
        ResourceName,
        Schema.optional<typeof Selectors>
      >,
    ),
  ).annotate({ description: 'Per-resource selectors, replacing the global ones for that resource (e.g. pods on one node).' }),
  resources: Schema.optional(Schema.Array(Schema.Literals(RESOURCE_NAMES))).annotate({ description: 'Resources to watch; all known ones when absent.' }),
  watchTimeoutSeconds: Schema.optional(PositiveMs).annotate({ description: 'Server-side watch timeout; each watch asks for a random value in [0.8, 1] of it.' }),
  inactivityTimeoutMs: Schema.optional(PositiveMs).annotate({ description: 'A watch that delivers nothing (not even a bookmark) for this long is considered dead.' }),
  backoff: Schema.optional(
    Schema.Struct({
      initialMs: Schema.optional(PositiveMs).annotate({ description: 'Delay before the first retry (ms).' }),
      maxMs: Schema.optional(PositiveMs).annotate({ description: 'Upper bound of the delay (ms).' }),
      jitter: Schema.optional(Ratio).annotate({ description: 'Random extra delay, as a fraction of the delay.' }),
    }),
  ).annotate({ description: 'Delay before a failed list or watch is tried again.' }),
  relistMinIntervalMs: Schema.optional(PositiveMs).annotate({ description: 'At most one full re-list per resource in this interval (a 410 storm cannot turn into a list storm).' }),
  minHealthyWatchMs: Schema.optional(PositiveMs).annotate({ description: 'A watch that ends sooner than this without delivering anything counts as a failure (backoff applies).' }),
  listPageSize: Schema.optional(PositiveMs).annotate({ description: 'Page size of list calls.' }),
  maxQueuedEvents: Schema.optional(PositiveMs).annotate({ description: 'Events queued for a slow consumer beyond this are dropped and counted.' }),
  scopes: Schema.optional(ScopesSchema).annotate({ description: "Per resource: `node` (every agent, its node's objects) or `cluster` (once per cluster, with leaderElection)." }),
  leaderElection: Schema.optional(LeaderElectionSchema).annotate({ description: "Cluster-wide resources collected only by the holder of a Lease (see docs/deploy.md)." }),
})
export type KubernetesConfigInput = typeof KubernetesConfigSchema.Type

export interface KubernetesConfig {
  readonly kubeconfig?: string
  readonly context?: string
  readonly inCluster: boolean
  readonly namespaces: readonly string[]
  readonly ignoreNamespaces: readonly string[]
  readonly labelSelector?: string
  readonly fieldSelector?: string
  readonly selectors: Partial<Record<ResourceName, { labelSelector?: string; fieldSelector?: string }>>
  readonly resources: readonly ResourceName[]
  readonly watchTimeoutSeconds: number
  readonly inactivityTimeoutMs: number
  readonly backoff: { readonly initialMs: number; readonly maxMs: number; readonly jitter: number }
  readonly relistMinIntervalMs: number
  readonly minHealthyWatchMs: number
  readonly listPageSize: number
  readonly maxQueuedEvents: number
  readonly scopes: Partial<Record<ResourceName, Scope>>
  readonly leaderElection: LeaderElectionConfig
}

export const KUBERNETES_DEFAULTS = {
  inCluster: false,
  namespaces: [],
  ignoreNamespaces: [],
  selectors: {},
  resources: RESOURCE_NAMES,
  watchTimeoutSeconds: 300,
  // Longer than the longest server-side timeout, so only a dead connection trips it.
  inactivityTimeoutMs: 330_000,
  backoff: { initialMs: 500, maxMs: 30_000, jitter: 0.2 },
  relistMinIntervalMs: 5_000,
  minHealthyWatchMs: 1_000,
  listPageSize: 500,
  maxQueuedEvents: 100_000,
} as const satisfies Omit<KubernetesConfig, 'kubeconfig' | 'context' | 'labelSelector' | 'fieldSelector' | 'scopes' | 'leaderElection'>

export class KubernetesConfigError extends Error {
  override readonly name = 'KubernetesConfigError'
}

const decode = Schema.decodeUnknownResult(KubernetesConfigSchema)

/** Validate and fill defaults; the error names the offending path, e.g. `at ["resources"][0]`. */
export function parseKubernetesConfig(input: unknown): KubernetesConfig {
  const result = decode(input ?? {}, { errors: 'all', onExcessProperty: 'error' })
  if (Result.isFailure(result)) {
    throw new KubernetesConfigError(`invalid kubernetes collector config: ${String(result.failure)}`)
  }
  const c = result.success
  const backoff = { ...KUBERNETES_DEFAULTS.backoff, ...c.backoff }
  if (backoff.initialMs > backoff.maxMs) {
    throw new KubernetesConfigError(
      `invalid kubernetes collector config: backoff.initialMs (${backoff.initialMs}) exceeds backoff.maxMs (${backoff.maxMs})\n  at ["backoff"]`,
    )
  }
  if (c.inCluster && (c.kubeconfig !== undefined || c.context !== undefined)) {
    throw new KubernetesConfigError(
      'invalid kubernetes collector config: inCluster cannot be combined with kubeconfig or context\n  at ["inCluster"]',
    )
  }
  const resources = c.resources && c.resources.length > 0 ? [...new Set(c.resources)] : [...RESOURCE_NAMES]
  const scopes = { ...c.scopes }
  const leaderElection = resolveLeaderElection(c.leaderElection, scopes)
  if (typeof leaderElection === 'string') throw new KubernetesConfigError(`invalid kubernetes collector config: ${leaderElection}`)
  return {
    ...(c.kubeconfig !== undefined ? { kubeconfig: c.kubeconfig } : {}),
    ...(c.context !== undefined ? { context: c.context } : {}),
    ...(c.labelSelector !== undefined ? { labelSelector: c.labelSelector } : {}),
    ...(c.fieldSelector !== undefined ? { fieldSelector: c.fieldSelector } : {}),
    inCluster: c.inCluster ?? KUBERNETES_DEFAULTS.inCluster,
    namespaces: [...new Set(c.namespaces ?? [])],
    ignoreNamespaces: [...new Set(c.ignoreNamespaces ?? [])],
    selectors: { ...c.selectors },
    resources,
    watchTimeoutSeconds: c.watchTimeoutSeconds ?? KUBERNETES_DEFAULTS.watchTimeoutSeconds,
    inactivityTimeoutMs: c.inactivityTimeoutMs ?? KUBERNETES_DEFAULTS.inactivityTimeoutMs,
    backoff,
    relistMinIntervalMs: c.relistMinIntervalMs ?? KUBERNETES_DEFAULTS.relistMinIntervalMs,
    minHealthyWatchMs: c.minHealthyWatchMs ?? KUBERNETES_DEFAULTS.minHealthyWatchMs,
    listPageSize: c.listPageSize ?? KUBERNETES_DEFAULTS.listPageSize,
    maxQueuedEvents: c.maxQueuedEvents ?? KUBERNETES_DEFAULTS.maxQueuedEvents,
    scopes,
    leaderElection,
  }
}
