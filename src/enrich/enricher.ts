import type { KubernetesMetadata } from '../core/pod-metadata.js'
import type { TapioEvent } from '../events/event.js'
import type { K8sContext } from '../events/schema.js'
import {
  familyOf,
  HIT_REASONS,
  type HitReason,
  lookupPod,
  MISS_REASONS,
  type MissReason,
  type PodMetadataSource,
  podContext,
  processIdentityTrusted,
} from './lookup.js'

/** Counters by outcome; every kernel/network event seen while metadata exists lands in one. */
export interface EnrichmentCounts {
  readonly hit: Readonly<Record<HitReason, number>>
  readonly miss: Readonly<Record<MissReason, number>>
}

export interface EnricherOptions {
  /** Memoised container-id answers kept at most (cleared whole when full). */
  readonly memoEntries?: number
}

const MISS = Symbol('miss')
type Memo = K8sContext | typeof MISS

function zeros<K extends string>(keys: readonly K[]): Record<K, number> {
  return Object.fromEntries(keys.map((k) => [k, 0])) as Record<K, number>
}

/**
 * Attaches pod identity to kernel and network events from the Kubernetes collector's cache.
 * Runs on the agent's hot path, so: other families cost one character check; answers by
 * container id (every kernel event of a containerised process) are memoised until the cache
 * changes, which makes a repeated hit one Map lookup and a repeated miss allocation-free.
 */
export class Enricher {
  private readonly hits = zeros(HIT_REASONS)
  private readonly misses = zeros(MISS_REASONS)
  private readonly memo = new Map<string, Memo>()
  private readonly memoEntries: number
  private memoGeneration: number | undefined
  private skipped = 0
  private batches = 0

  constructor(
    readonly source: PodMetadataSource,
    options: EnricherOptions = {},
  ) {
    this.memoEntries = options.memoEntries ?? 8192
  }

  /** True when `enrich` would return the next batch untouched without reading it (no metadata source at all). */
  passesUnread(): boolean {
    return (this.source.status?.() ?? 'ready') === 'absent'
  }

  /**
   * The batch with `k8s` set on every event whose pod is known. Copy-on-enrich: the events it is
   * given are shared (every subscription of the manager sees the same objects), so an event that
   * gains pod identity is replaced by a copy in a new array; the input batch and its events are
   * never changed. A batch with nothing to add is returned as it is.
   */
  enrich(batch: readonly TapioEvent[]): readonly TapioEvent[] {
    const status = this.source.status?.() ?? 'ready'
    if (status === 'absent') return batch
    this.batches++
    if (status === 'empty') {
      for (const e of batch) {
        if (familyOf(e.type) === undefined) this.skipped++
        else this.misses.no_metadata++
      }
      return batch
    }
    const generation = this.source.generation
    if (generation === undefined || generation !== this.memoGeneration) {
      this.memo.clear()
      this.memoGeneration = generation
    }
    const memoise = generation !== undefined
    let out: TapioEvent[] | undefined
    for (let i = 0; i < batch.length; i++) {
      const e = batch[i] as TapioEvent
      const family = familyOf(e.type)
      if (family === undefined) {
        this.skipped++
        continue
      }
      const k8s = this.contextFor(e, family, memoise)
      if (k8s === undefined) continue
      out ??= batch.slice()
      out[i] = { ...e, k8s }
    }
    return out ?? batch
  }

  private contextFor(e: TapioEvent, family: 'kernel' | 'network', memoise: boolean): K8sContext | undefined {
    // Host processes are most kernel events on many nodes: decide them without the general lookup.
    if (e.k8s === undefined && family === 'kernel' && e.type.charCodeAt(7) !== 116 /* t: kernel.tcp.* has an address */) {
      this.misses.no_container_id++
      return undefined
    }
    const containerId = memoise && processIdentityTrusted(e) ? e.k8s?.containerId : undefined
    if (containerId !== undefined) {
      const m = this.memo.get(containerId)
      if (m === MISS) {
        // A remembered miss settles the event only when it has no other key to try.
        if (e.k8s?.podUid === undefined && e.type.startsWith('kernel.tcp.') === false) {
          this.misses.container_id_unknown++
          return undefined
        }
      } else if (m !== undefined) {
        this.hits.container_id++
        return m
      }
    }
    const r = lookupPod(this.source, e, family)
    if (typeof r === 'string') {
      this.misses[r]++
      if (containerId !== undefined && r === 'container_id_unknown') this.remember(containerId, MISS)
      return undefined
    }
    this.hits[r.reason]++
    // A container-id answer depends on the id alone, so the memoised context must not carry
    // anything else from this particular event.
    const ctx = podContext(r, r.reason === 'container_id' && r.containerId !== undefined ? { containerId: r.containerId } : e.k8s)
    if (containerId !== undefined && r.reason === 'container_id') this.remember(containerId, ctx)
    return ctx
  }

  private remember(key: string, value: Memo): void {
    if (this.memo.size >= this.memoEntries) this.memo.clear()
    this.memo.set(key, value)
  }

  counts(): EnrichmentCounts {
    return { hit: { ...this.hits }, miss: { ...this.misses } }
  }

  /** Flat counters (`hit_<reason>`, `miss_<reason>`, totals) for status pages and logs. */
  statistics(): Readonly<Record<string, number>> {
    const out: Record<string, number> = {}
    let hits = 0
    let misses = 0
    for (const r of HIT_REASONS) {
      out[`hit_${r}`] = this.hits[r]
      hits += this.hits[r]
    }
    for (const r of MISS_REASONS) {
      out[`miss_${r}`] = this.misses[r]
      misses += this.misses[r]
    }
    out.hits = hits
    out.misses = misses
    out.skipped = this.skipped
    out.batches = this.batches
    out.memo_entries = this.memo.size
    return out
  }
}

/**
 * An enricher over any pod metadata source: a `MetadataHub` (the agent's), or one collector's
 * `metadata` (`new KubernetesCollector(...).metadata`) when embedding the library.
 */
export function createEnricher(source: PodMetadataSource | KubernetesMetadata, options?: EnricherOptions): Enricher {
  if ('status' in source && typeof source.status === 'function') return new Enricher(source, options)
  const cache = source as KubernetesMetadata
  const adapted: PodMetadataSource = {
    podByUid: (uid) => cache.podByUid(uid),
    podByContainerId: (id) => cache.podByContainerId(id),
    podByIp: (ip) => cache.podByIp(ip),
    get generation() {
      return cache.generation
    },
    status: () => (cache.size.pods > 0 ? 'ready' : 'empty'),
  }
  return new Enricher(adapted, options)
}
