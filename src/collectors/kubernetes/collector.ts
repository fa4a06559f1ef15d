import type { KubeConfig } from '@kubernetes/client-node'
import { type Clock, systemClock } from '../../core/clock.js'
import { type Collector, type CollectorHealth, type CollectorOutput, CollectorStateError } from '../../core/collector.js'
import { type HandoffQueue, HandoffTotals } from '../../core/handoff-queue.js'
import { queueStatistics, type SourceStatistics } from '../../core/statistics.js'
import { ClusterScope } from './cluster-scope.js'
import { OwnerResolver } from './owners.js'
import { defaultScope } from './election-config.js'
import type { EventInput } from '../../events/event.js'
import { type KubernetesConfig, parseKubernetesConfig } from './config.js'
import { loadKubeConfig } from './kube-api.js'
import { changeToEvents } from './mapping.js'
import { type KubernetesMetadata, MetadataCache } from './metadata.js'
import type { KubeObject } from './objects.js'
import { type Change, type ChangeMode, Reflector, type ReflectorStatus } from './reflector.js'
import { RESOURCES, type ResourceName } from './resources.js'

const OWNER_RESOURCES: ReadonlySet<string> = new Set(['replicasets', 'jobs', 'deployments', 'daemonsets', 'statefulsets'])

export interface KubernetesCollectorOptions {
  /** A ready KubeConfig (tests, embedding); otherwise loaded from the config's kubeconfig/context/inCluster. */
  readonly kubeConfig?: KubeConfig
  /** Source of randomness for jitter (tests). */
  readonly random?: () => number
  /** Time for backoff, relist pacing, request idle timeouts, owner retries, uptime and the leader election (tests). */
  readonly clock?: Clock
}

/**
 * Watches Kubernetes objects through list+watch loops (one per resource and namespace) and
 * reports their changes, derived transitions and core/v1 Events. An unreachable API server
 * makes health() a recoverable_error while the loops keep retrying with backoff; events()
 * itself only ends, on stop().
 */
export class KubernetesCollector implements Collector {
  readonly config: KubernetesConfig
  private readonly cache = new MetadataCache()
  private reflectors: Reflector[] = []
  /** Cluster-wide resources under leader election (config.leaderElection.enabled). */
  private cluster: ClusterScope | undefined
  /** Owners of this node's pods, fetched by name when the controller kinds are not watched here. */
  private owners: OwnerResolver | undefined
  /** Election counters of earlier starts, so a restarted instance keeps counting. */
  private readonly pastElection = {
    transitions: 0,
    leaderships: 0,
    committed: 0,
    uncommitted: 0,
    resumed: 0,
    resyncs: 0,
    ownersFetched: 0,
    ownersFailed: 0,
  }
  private queue: HandoffQueue | undefined
  private readonly queues = new HandoffTotals()
  private running = false
  private stopping: Promise<void> | undefined
  private startedAt: number | undefined
  private mappingErrors = 0
  /** Reflector counters of earlier starts, so a restarted instance keeps counting. */
  private readonly pastReflectors: Record<CounterKey, number> = emptyReflectorTotals()

  constructor(
    config: unknown = {},
    private readonly options: KubernetesCollectorOptions = {},
  ) {
    this.config = parseKubernetesConfig(config)
  }

  /** Pod lookups for enrichment; empty while stopped. */
  get metadata(): KubernetesMetadata {
    return this.cache
  }

  async start(signal: AbortSignal): Promise<void> {
    if (this.running) throw new CollectorStateError('kubernetes collector: already started')
    signal.throwIfAborted()
    if (this.stopping) await this.stopping
    signal.throwIfAborted()
    const kc = this.options.kubeConfig ?? loadKubeConfig(this.config)
    const queue = this.queues.open({ capacity: this.config.maxQueuedEvents, overflow: 'newest' })
    const ignored = new Set(this.config.ignoreNamespaces)
    const accept = (o: KubeObject) => {
      const ns = o.resource === 'namespaces' ? o.object.metadata.name : o.object.metadata.namespace
      return !(ns && ignored.has(ns))
    }
    const onChanges = (changes: readonly Change[], mode?: ChangeMode) => this.onChanges(queue, changes, mode === 'resync')
    const clock = this.options.clock ?? systemClock
    const elected = this.config.leaderElection.enabled
    const clusterWide: ResourceName[] = []
    const namespaces = this.config.namespaces.length > 0 ? this.config.namespaces : [undefined]
    const reflectors: Reflector[] = []
    // Owners first: a pod's workload is named from the ReplicaSet/Job that owns it, so pods wait
    // for the first list of those (successful or not) before their own.
    const ownerReflectors: Reflector[] = []
    const ownersListed = (async () => {
      await Promise.resolve()
      await Promise.all(ownerReflectors.map((r) => r.firstAttempt))
    })()
    const order = [...this.config.resources].sort((a, b) => Number(a === 'pods') - Number(b === 'pods'))
    const make = (
      name: ResourceName,
      handler: (changes: readonly Change[], mode?: ChangeMode) => void,
      resumeFrom?: (key: string) => string | undefined,
    ): Reflector[] => {
      const info = RESOURCES[name]
      const out: Reflector[] = []
      for (const namespace of info.namespaced ? namespaces : [undefined]) {
        if (namespace !== undefined && ignored.has(namespace)) continue
        const from = resumeFrom?.(namespace === undefined ? name : `${name}@${namespace}`)
        out.push(
          new Reflector({
            kc,
            info,
            ...(namespace !== undefined ? { namespace } : {}),
            config: this.config,
            onChanges: handler,
            accept,
            clock,
            ...(this.options.random ? { random: this.options.random } : {}),
            ...(name === 'pods' ? { after: ownersListed } : {}),
            ...(from !== undefined ? { resumeFrom: from } : {}),
          }),
        )
      }
      return out
    }
    // Under leader election the controller kinds are cluster-wide: this node's pods get their
    // owners by name instead (enrichment names the Deployment or CronJob on every node).
    const isClusterWide = (name: ResourceName) => elected && (this.config.scopes[name] ?? defaultScope(name)) === 'cluster'
    const owners =
      elected && (['replicasets', 'jobs'] as const).some((r) => this.config.resources.includes(r) && isClusterWide(r))
        ? new OwnerResolver({ kc, cache: this.cache, timeoutMs: Math.min(this.config.inactivityTimeoutMs, 10_000), clock })
        : undefined
    this.owners = owners
    let podsWaiting = 0
    let podChain: Promise<void> = Promise.resolve()
    const podHandler = (changes: readonly Change[], mode?: ChangeMode) => {
      const missing = owners?.missing(changes.map((c) => c.object)) ?? []
      // In order: once one batch waits for its owners, later batches wait behind it.
      if (!owners || (podsWaiting === 0 && missing.length === 0)) return onChanges(changes, mode)
      podsWaiting++
      podChain = podChain.then(async () => {
        await owners.resolve(missing)
        podsWaiting--
        if (this.queue === queue) onChanges(changes, mode)
      })
    }
    for (const name of order) {
      // Under leader election, cluster-wide resources are watched only while holding the Lease.
      if (isClusterWide(name)) {
        clusterWide.push(name)
        continue
      }
      const made = make(name, name === 'pods' ? podHandler : onChanges)
      reflectors.push(...made)
      if (OWNER_RESOURCES.has(name)) ownerReflectors.push(...made)
    }
    this.queue = queue
    this.reflectors = reflectors
    this.running = true
    this.startedAt = (this.options.clock ?? systemClock).now()
    for (const r of reflectors) r.start()
    if (clusterWide.length > 0) {
      this.cluster = new ClusterScope({
        kc,
        config: this.config.leaderElection,
        clock,
        makeReflectors: (handler, resumeFrom) => clusterWide.flatMap((name) => make(name, handler, resumeFrom)),
        report: (changes, resync) => this.onChanges(queue, changes, resync),
        apply: (changes) => {
          for (const change of changes) this.cache.apply(change.type, change.object)
        },
      })
      this.cluster.start()
    }
  }

  /** Cluster-wide collection: election state and counters (undefined without leaderElection). */
  get clusterScope(): ClusterScope | undefined {
    return this.cluster
  }

  private onChanges(queue: HandoffQueue, changes: readonly Change[], resync = false): void {
    const out: EventInput[] = []
    for (const change of changes) {
      try {
        this.cache.apply(change.type, change.object)
        for (const e of changeToEvents(change, this.cache)) {
          // A fresh list after a handover whose resume point was gone: marked, like systemd's resync.
          if (resync && typeof e.data === 'object' && e.data !== null) (e.data as Record<string, unknown>).resync = true
          out.push(e)
        }
      } catch {
        // A mapping bug must cost one object, not the watch.
        this.mappingErrors += 1
      }
    }
    queue.push(out)
  }

  stop(): Promise<void> {
    if (this.stopping) return this.stopping
    if (!this.running) return Promise.resolve()
    this.running = false
    this.stopping = this.release().finally(() => {
      this.stopping = undefined
    })
    return this.stopping
  }

  private async release(): Promise<void> {
    const reflectors = this.reflectors
    const cluster = this.cluster
    this.owners?.stop()
    await Promise.all([...reflectors.map((r) => r.stop()), cluster?.stop()])
    if (cluster) {
      const e = cluster.status()
      const c = cluster.counters
      this.pastElection.transitions += e.transitions
      this.pastElection.leaderships += e.leaderships
      this.pastElection.committed += c.committed
      this.pastElection.uncommitted += c.uncommitted
      this.pastElection.resumed += c.resumed
      this.pastElection.resyncs += c.resyncs
      this.cluster = undefined
    }
    if (this.owners) {
      this.pastElection.ownersFetched += this.owners.counters.fetched
      this.pastElection.ownersFailed += this.owners.counters.failed
      this.owners = undefined
    }
    // Counters are kept after stop; the per-watch status goes with the watches.
    const statuses = reflectors.map((r) => r.status())
    for (const k of REFLECTOR_COUNTERS) this.pastReflectors[k] += sum(statuses, k)
    this.reflectors = []
    this.cache.clear()
    this.queue?.end()
  }

  events(): AsyncIterable<CollectorOutput> {
    const queue = this.queue
    if (!queue) throw new CollectorStateError('kubernetes collector: events() before a successful start()')
    return queue
  }

  health(): CollectorHealth {
    // Only the watches this agent runs: a follower's health does not depend on cluster-wide ones.
    const active = [...this.reflectors, ...(this.cluster?.watching ?? [])]
    const statuses = active.map((r) => r.status())
    const failing = active.filter((r) => r.failing()).map((r) => r.status())
    const details = {
      connected: statuses.length > 0 && statuses.every((s) => s.connected),
      synced: statuses.length > 0 && statuses.every((s) => s.synced),
      lastSyncAt: oldest(statuses.map((s) => s.lastSyncAt)),
      relists: sum(statuses, 'relists'),
      errors: sum(statuses, 'errors'),
      malformed: sum(statuses, 'malformed'),
      watches: statuses.reduce<Record<string, ReflectorStatus>>((acc, s) => {
        acc[s.namespace === undefined ? s.resource : `${s.resource}@${s.namespace}`] = s
        return acc
      }, {}),
      ...(this.cluster ? { election: { ...this.cluster.status(), ...this.cluster.counters } } : {}),
    }
    if (!this.running) return { status: 'ok', message: 'stopped', details }
    if (failing.length > 0) {
      const first = failing[0] as ReflectorStatus
      const which = failing.map((s) => (s.namespace === undefined ? s.resource : `${s.resource}@${s.namespace}`))
      return {
        status: 'recoverable_error',
        message: `API server unreachable or failing for ${which.join(', ')}: ${first.lastError ?? 'unknown error'}`,
        details,
      }
    }
    // The election's state on the collector's card (inspector, status): being a follower is ok.
    const role = this.cluster ? electionLine(this.cluster.status()) : undefined
    const message = [details.synced ? undefined : 'initial sync in progress', role].filter((m) => m !== undefined).join('; ')
    return { status: 'ok', ...(message ? { message } : {}), details }
  }

  statistics(): SourceStatistics {
    const statuses = [...this.reflectors, ...(this.cluster?.watching ?? [])].map((r) => r.status())
    const total = (k: CounterKey) => this.pastReflectors[k] + sum(statuses, k)
    const election = this.cluster?.status()
    const c = this.cluster?.counters
    const past = this.pastElection
    const elected = this.config.leaderElection.enabled
    return queueStatistics(
      this.queues.counters(),
      {
        lists: total('lists'),
        relists: total('relists'),
        watches: total('watches'),
        bookmarks: total('bookmarks'),
        errors: total('errors'),
        inactivity_timeouts: total('inactivityTimeouts'),
        malformed_objects: total('malformed'),
        mapping_errors: this.mappingErrors,
        ...(elected
          ? {
              election_transitions: past.transitions + (election?.transitions ?? 0),
              election_leaderships: past.leaderships + (election?.leaderships ?? 0),
              cluster_changes_committed: past.committed + (c?.committed ?? 0),
              cluster_changes_uncommitted: past.uncommitted + (c?.uncommitted ?? 0),
              cluster_resumed: past.resumed + (c?.resumed ?? 0),
              cluster_resyncs: past.resyncs + (c?.resyncs ?? 0),
              owners_fetched: past.ownersFetched + (this.owners?.counters.fetched ?? 0),
              owners_failed: past.ownersFailed + (this.owners?.counters.failed ?? 0),
            }
          : {}),
      },
      {
        ...(elected
          ? {
              election_leader: election?.state === 'leader' ? 1 : 0,
              election_since_renew_ms: election?.sinceRenewMs ?? -1,
              cluster_watches: election?.clusterWatches ?? 0,
              cluster_changes_pending: election?.pendingChanges ?? 0,
            }
          : {}),
        objects: sum(statuses, 'objects'),
        pods_cached: this.cache.size.pods,
        uptime_ms: this.running && this.startedAt !== undefined ? (this.options.clock ?? systemClock).now() - this.startedAt : 0,
      },
    )
  }
}

const REFLECTOR_COUNTERS = ['lists', 'relists', 'watches', 'bookmarks', 'errors', 'inactivityTimeouts', 'malformed'] as const
type CounterKey = (typeof REFLECTOR_COUNTERS)[number]

function emptyReflectorTotals(): Record<CounterKey, number> {
  return { lists: 0, relists: 0, watches: 0, bookmarks: 0, errors: 0, inactivityTimeouts: 0, malformed: 0 }
}

type NumericKey = { [K in keyof ReflectorStatus]-?: ReflectorStatus[K] extends number ? K : never }[keyof ReflectorStatus]
function sum(statuses: readonly ReflectorStatus[], key: NumericKey): number {
  return statuses.reduce((n, s) => n + s[key], 0)
}

function electionLine(e: { state: string; holder: string | null; lease: string }): string {
  if (e.state === 'leader') return `cluster-wide: leader (lease ${e.lease})`
  if (e.state === 'follower') return `cluster-wide: follower of ${e.holder ?? 'unknown'}`
  return `cluster-wide: ${e.state}`
}

function oldest(values: readonly (string | undefined)[]): string | null {
  if (values.length === 0 || values.some((v) => v === undefined)) return null
  return [...(values as string[])].sort()[0] ?? null
}
