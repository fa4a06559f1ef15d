import type { KubeConfig } from '@kubernetes/client-node'
import type { Collector, CollectorHealth, CollectorOutput } from '../../core/collector.js'
import type { EventInput } from '../../events/event.js'
import { type KubernetesConfig, parseKubernetesConfig } from './config.js'
import { EventQueue } from './event-queue.js'
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

  private onChanges(queue: EventQueue, changes: readonly Change[]): void {
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
    this.emitted += out.length
    queue.push(out)
  }

  async stop(): Promise<void> {
    if (!this.running) return
    this.running = false
    const reflectors = this.reflectors
    this.reflectors = []
    await Promise.all(reflectors.map((r) => r.stop()))
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

  statistics(): Readonly<Record<string, number>> {
    const statuses = this.reflectors.map((r) => r.status())
    return {
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
