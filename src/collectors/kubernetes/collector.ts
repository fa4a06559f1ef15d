import type { KubeConfig } from '@kubernetes/client-node'
import { type Clock, systemClock } from '../../core/clock.js'
import type { Collector, CollectorHealth, CollectorOutput } from '../../core/collector.js'
import { ClusterScope } from './cluster-scope.js'
import { defaultScope } from './election-config.js'
import type { EventInput } from '../../events/event.js'
import { type KubernetesConfig, parseKubernetesConfig } from './config.js'
import { EventQueue } from './event-queue.js'
import './events.js'
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
  /** Time for backoff, relist pacing and the leader election (tests). */
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
  private queue: EventQueue | undefined
  private running = false
  private startedAt: number | undefined
  private mappingErrors = 0
  private emitted = 0
  private droppedTotal = 0

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

  start(signal: AbortSignal): void {
    if (this.running) return
    signal.throwIfAborted()
    const kc = this.options.kubeConfig ?? loadKubeConfig(this.config)
    const queue = new EventQueue(this.config.maxQueuedEvents)
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
        const key = namespace === undefined ? name : `${name}@${namespace}`
        const from = resumeFrom?.(key)
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
    for (const name of order) {
      if (elected && (this.config.scopes[name] ?? defaultScope(name)) === 'cluster') {
        clusterWide.push(name)
        continue
      }
      const made = make(name, onChanges)
      reflectors.push(...made)
      if (OWNER_RESOURCES.has(name)) ownerReflectors.push(...made)
    }
    this.queue = queue
    this.reflectors = reflectors
    this.running = true
    this.startedAt = Date.now()
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

  /** Cluster-wide collection: leader election state and counters (undefined without leaderElection). */
  get clusterScope(): ClusterScope | undefined {
    return this.cluster
  }

  private onChanges(queue: EventQueue, changes: readonly Change[], resync = false): void {
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
    this.emitted += out.length
    queue.push(out)
  }

  async stop(): Promise<void> {
    if (!this.running) return
    this.running = false
    const reflectors = this.reflectors
    this.reflectors = []
    const cluster = this.cluster
    this.cluster = undefined
    await Promise.all([...reflectors.map((r) => r.stop()), cluster?.stop()])
    this.cache.clear()
    if (this.queue) this.droppedTotal += this.queue.dropped
    this.queue?.end()
    this.queue = undefined
  }

  events(): AsyncIterable<CollectorOutput> {
    const queue = this.queue
    if (!queue) return (async function* () {})()
    return queue.drain()
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
    return { status: 'ok', ...(details.synced ? {} : { message: 'initial sync in progress' }), details }
  }

  statistics(): Readonly<Record<string, number>> {
    const statuses = [...this.reflectors, ...(this.cluster?.watching ?? [])].map((r) => r.status())
    const election = this.cluster?.status()
    const counters = this.cluster?.counters
    return {
      ...(election && counters
        ? {
            election_leader: election.state === 'leader' ? 1 : 0,
            election_transitions: election.transitions,
            election_leaderships: election.leaderships,
            election_since_renew_ms: election.sinceRenewMs ?? -1,
            cluster_watches: election.clusterWatches,
            cluster_changes_pending: election.pendingChanges,
            cluster_changes_committed: counters.committed,
            cluster_changes_uncommitted: counters.uncommitted,
            cluster_resumed: counters.resumed,
            cluster_resyncs: counters.resyncs,
          }
        : {}),
      events_emitted: this.emitted,
      events_dropped: this.droppedTotal + (this.queue?.dropped ?? 0),
      events_queued: this.queue?.size ?? 0,
      objects: sum(statuses, 'objects'),
      lists: sum(statuses, 'lists'),
      relists: sum(statuses, 'relists'),
      watches: sum(statuses, 'watches'),
      bookmarks: sum(statuses, 'bookmarks'),
      errors: sum(statuses, 'errors'),
      inactivity_timeouts: sum(statuses, 'inactivityTimeouts'),
      malformed_objects: sum(statuses, 'malformed'),
      mapping_errors: this.mappingErrors,
      pods_cached: this.cache.size.pods,
      uptime_ms: this.running && this.startedAt !== undefined ? Date.now() - this.startedAt : 0,
    }
  }
}

type NumericKey = { [K in keyof ReflectorStatus]-?: ReflectorStatus[K] extends number ? K : never }[keyof ReflectorStatus]
function sum(statuses: readonly ReflectorStatus[], key: NumericKey): number {
  return statuses.reduce((n, s) => n + s[key], 0)
}

function oldest(values: readonly (string | undefined)[]): string | null {
  if (values.length === 0 || values.some((v) => v === undefined)) return null
  return [...(values as string[])].sort()[0] ?? null
}
