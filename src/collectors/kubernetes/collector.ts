import type { KubeConfig } from '@kubernetes/client-node'
import { type Collector, type CollectorHealth, type CollectorOutput, CollectorStateError } from '../../core/collector.js'
import { type HandoffQueue, HandoffTotals } from '../../core/handoff-queue.js'
import { queueStatistics, type SourceStatistics } from '../../core/statistics.js'
import type { EventInput } from '../../events/event.js'
import { type KubernetesConfig, parseKubernetesConfig } from './config.js'
import './events.js'
import { loadKubeConfig } from './kube-api.js'
import { changeToEvents } from './mapping.js'
import { type KubernetesMetadata, MetadataCache } from './metadata.js'
import type { KubeObject } from './objects.js'
import { type Change, Reflector, type ReflectorStatus } from './reflector.js'
import { RESOURCES } from './resources.js'

const OWNER_RESOURCES: ReadonlySet<string> = new Set(['replicasets', 'jobs', 'deployments', 'daemonsets', 'statefulsets'])

export interface KubernetesCollectorOptions {
  /** A ready KubeConfig (tests, embedding); otherwise loaded from the config's kubeconfig/context/inCluster. */
  readonly kubeConfig?: KubeConfig
  /** Source of randomness for jitter (tests). */
  readonly random?: () => number
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
    const onChanges = (changes: readonly Change[]) => this.onChanges(queue, changes)
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
    for (const name of order) {
      const info = RESOURCES[name]
      const scopes = info.namespaced ? namespaces : [undefined]
      for (const namespace of scopes) {
        if (namespace !== undefined && ignored.has(namespace)) continue
        reflectors.push(
          new Reflector({
            kc,
            info,
            ...(namespace !== undefined ? { namespace } : {}),
            config: this.config,
            onChanges,
            accept,
            ...(this.options.random ? { random: this.options.random } : {}),
            ...(name === 'pods' ? { after: ownersListed } : {}),
          }),
        )
        if (OWNER_RESOURCES.has(name)) ownerReflectors.push(reflectors[reflectors.length - 1] as Reflector)
      }
    }
    this.queue = queue
    this.reflectors = reflectors
    this.running = true
    this.startedAt = Date.now()
    for (const r of reflectors) r.start()
  }

  private onChanges(queue: HandoffQueue, changes: readonly Change[]): void {
    const out: EventInput[] = []
    for (const change of changes) {
      try {
        this.cache.apply(change.type, change.object)
        for (const e of changeToEvents(change, this.cache)) out.push(e)
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
    await Promise.all(reflectors.map((r) => r.stop()))
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
    const statuses = this.reflectors.map((r) => r.status())
    const failing = this.reflectors.filter((r) => r.failing()).map((r) => r.status())
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

  statistics(): SourceStatistics {
    const statuses = this.reflectors.map((r) => r.status())
    const total = (k: CounterKey) => this.pastReflectors[k] + sum(statuses, k)
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
      },
      {
        objects: sum(statuses, 'objects'),
        pods_cached: this.cache.size.pods,
        uptime_ms: this.running && this.startedAt !== undefined ? Date.now() - this.startedAt : 0,
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

function oldest(values: readonly (string | undefined)[]): string | null {
  if (values.length === 0 || values.some((v) => v === undefined)) return null
  return [...(values as string[])].sort()[0] ?? null
}
