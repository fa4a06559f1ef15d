/**
 * Configuration of cluster-wide collection: which resources are node-local and which are
 * collected once per cluster, by the holder of a `coordination.k8s.io/v1` Lease.
 */
import * as Schema from 'effect/Schema'
import { RESOURCE_NAMES, type ResourceName } from './resources.js'

const PositiveMs = Schema.Finite.check(Schema.isInt(), Schema.isGreaterThan(0))
const Name = Schema.String.check(Schema.isPattern(/^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$/, { description: 'a DNS subdomain name' }))

export const LeaderElectionSchema = Schema.Struct({
  enabled: Schema.optional(Schema.Boolean).annotate({ description: 'Collect cluster-wide resources only while holding the Lease.' }),
  leaseName: Schema.optional(Name).annotate({ description: 'Name of the Lease object the agents compete for.' }),
  namespace: Schema.optional(Name).annotate({ description: "Namespace of the Lease (the agent's own, in a DaemonSet: POD_NAMESPACE)." }),
  identity: Schema.optional(Schema.String.check(Schema.isMinLength(1))).annotate({ description: 'Who we are in the Lease (the pod name in a DaemonSet); hostname and pid by default.' }),
  leaseDurationMs: Schema.optional(PositiveMs).annotate({ description: "How long a holder's lease is valid after its last renewal, as followers observe it." }),
  renewDeadlineMs: Schema.optional(PositiveMs).annotate({ description: 'The holder steps down when no renewal succeeded for this long.' }),
  retryPeriodMs: Schema.optional(PositiveMs).annotate({ description: "Between attempts (renewals, and followers' checks)." }),
})

export const ScopeSchema = Schema.Literals(['node', 'cluster'])
export type Scope = typeof ScopeSchema.Type

export const ScopesSchema = Schema.Struct(
  Object.fromEntries(RESOURCE_NAMES.map((r) => [r, Schema.optional(ScopeSchema).annotate({ description: `Where ${r} are collected: node or cluster.` })])) as Record<ResourceName, Schema.optional<typeof ScopeSchema>>,
)

export interface LeaderElectionConfig {
  readonly enabled: boolean
  readonly leaseName: string
  readonly namespace: string
  readonly identity?: string
  readonly leaseDurationMs: number
  readonly renewDeadlineMs: number
  readonly retryPeriodMs: number
}

/** client-go's defaults (15 s / 10 s / 2 s). */
export const LEADER_ELECTION_DEFAULTS: LeaderElectionConfig = {
  enabled: false,
  leaseName: 'tapio-agent-cluster',
  namespace: 'tapio-system',
  leaseDurationMs: 15_000,
  renewDeadlineMs: 10_000,
  retryPeriodMs: 2_000,
}

/** Pods are node-local (each agent its node's pods, by field selector); everything else cluster-wide. */
export function defaultScope(resource: ResourceName): Scope {
  return resource === 'pods' ? 'node' : 'cluster'
}

/**
 * Fills defaults and checks the timing rules; returns an error text naming the path, or the config.
 * A follower may take over `leaseDurationMs` after the holder's last renewal, which the holder
 * may have made up to a retry period before the follower noticed: the holder must have stepped
 * down by then, hence leaseDuration >= renewDeadline + retryPeriod (client-go's 15/10/2 satisfy it).
 */
export function resolveLeaderElection(
  input: typeof LeaderElectionSchema.Type | undefined,
  scopes: Partial<Record<ResourceName, Scope>>,
): LeaderElectionConfig | string {
  const c: LeaderElectionConfig = { ...LEADER_ELECTION_DEFAULTS, ...input }
  if (c.renewDeadlineMs + c.retryPeriodMs > c.leaseDurationMs) {
    return `leaderElection.leaseDurationMs (${c.leaseDurationMs}) must be at least renewDeadlineMs + retryPeriodMs (${c.renewDeadlineMs} + ${c.retryPeriodMs})\n  at ["leaderElection"]`
  }
  if (c.leaseDurationMs % 1000 !== 0) {
    return `leaderElection.leaseDurationMs (${c.leaseDurationMs}) must be whole seconds (the Lease stores seconds)\n  at ["leaderElection"]["leaseDurationMs"]`
  }
  for (const [resource, scope] of Object.entries(scopes)) {
    if (scope === 'node' && resource !== 'pods') {
      return `scopes.${resource}: only pods can be node-local (selected by spec.nodeName)\n  at ["scopes"]["${resource}"]`
    }
  }
  return c
}
