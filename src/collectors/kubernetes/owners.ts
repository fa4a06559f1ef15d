/**
 * Owners of this node's pods, fetched by name, for agents that do not watch the controller kinds
 * (under leader election they are cluster-wide: only the leader watches them). A pod names its
 * ReplicaSet or Job; one GET of that object (once per owner, cached) gives the Deployment or
 * CronJob above it, which is what enrichment calls the pod's workload. The API server serves a
 * handful of small GETs per node instead of a cluster-wide watch of ReplicaSets and Jobs per node.
 */
import { type Clock, systemClock } from '../../core/clock.js'
import * as Result from 'effect/Result'
import type { KubeConfig } from '@kubernetes/client-node'
import { getJson, KubeApiError } from './kube-api.js'
import { controllerRef, type MetadataCache } from './metadata.js'
import { decodeObject, type KubeObject, type OwnerReference } from './objects.js'
import { RESOURCES, type ResourceName } from './resources.js'

/** The owner kinds a pod names directly, and where to GET them. */
const FETCHABLE: Readonly<Record<string, ResourceName>> = { ReplicaSet: 'replicasets', Job: 'jobs' }

export interface OwnerResolverOptions {
  readonly kc: KubeConfig
  readonly cache: MetadataCache
  readonly timeoutMs: number
  /** Owners kept in the cache at most (the oldest fetched leave first). */
  readonly maxOwners?: number
  /** How long a failed fetch (404, 403, timeout) is not retried. */
  readonly retryAfterMs?: number
  /** Times the fetches' idle timeout and the retry pause. Default: the system clock. */
  readonly clock?: Clock
}

export interface OwnerResolverCounters {
  fetched: number
  failed: number
}

export class OwnerResolver {
  readonly counters: OwnerResolverCounters = { fetched: 0, failed: 0 }
  /** `Kind/namespace/name` -> the fetched object (insertion order = age). */
  private readonly known = new Map<string, KubeObject>()
  private readonly failedAt = new Map<string, number>()
  private readonly inflight = new Map<string, Promise<void>>()
  private readonly abort = new AbortController()

  constructor(private readonly opts: OwnerResolverOptions) {}

  /** The owner references of these pods that still need a fetch. */
  missing(pods: readonly KubeObject[]): { key: string; ref: OwnerReference; namespace: string }[] {
    const out: { key: string; ref: OwnerReference; namespace: string }[] = []
    const now = (this.opts.clock ?? systemClock).now()
    for (const p of pods) {
      if (p.resource !== 'pods') continue
      const ref = controllerRef(p.object.metadata.ownerReferences)
      const namespace = p.object.metadata.namespace ?? ''
      if (!ref || FETCHABLE[ref.kind] === undefined) continue
      const key = `${ref.kind}/${namespace}/${ref.name}`
      if (this.known.has(key) || out.some((m) => m.key === key)) continue
      const failed = this.failedAt.get(key)
      if (failed !== undefined && now - failed < (this.opts.retryAfterMs ?? 60_000)) continue
      out.push({ key, ref, namespace })
    }
    return out
  }

  /** Fetches what `missing` named; never rejects (a failure leaves the pod's direct owner as its workload). */
  async resolve(missing: readonly { key: string; ref: OwnerReference; namespace: string }[]): Promise<void> {
    await Promise.all(missing.map((m) => this.inflight.get(m.key) ?? this.fetch(m.key, m.ref, m.namespace)))
  }

  stop(): void {
    this.abort.abort()
  }

  private fetch(key: string, ref: OwnerReference, namespace: string): Promise<void> {
    const resource = FETCHABLE[ref.kind] as ResourceName
    const info = RESOURCES[resource]
    const path = `${info.apiPrefix}/namespaces/${encodeURIComponent(namespace)}/${info.name}/${encodeURIComponent(ref.name)}`
    const p = (async () => {
      try {
        const raw = await getJson(this.opts.kc, path, {}, this.opts.timeoutMs, this.abort.signal, this.opts.clock)
        const decoded = decodeObject(resource, raw)
        if (Result.isFailure(decoded)) throw new KubeApiError(`malformed ${ref.kind} ${namespace}/${ref.name}`)
        this.counters.fetched += 1
        this.failedAt.delete(key)
        this.known.set(key, decoded.success)
        this.opts.cache.apply('added', decoded.success)
        this.evict()
      } catch {
        this.counters.failed += 1
        this.failedAt.set(key, (this.opts.clock ?? systemClock).now())
      } finally {
        this.inflight.delete(key)
      }
    })()
    this.inflight.set(key, p)
    return p
  }

  private evict(): void {
    const max = this.opts.maxOwners ?? 4096
    for (const [key, object] of this.known) {
      if (this.known.size <= max) break
      this.known.delete(key)
      this.opts.cache.apply('deleted', object)
    }
  }
}
