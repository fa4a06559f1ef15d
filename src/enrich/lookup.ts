/**
 * Pure lookups from a node event to the pod it belongs to. No I/O, no state: the enricher adds
 * memoisation and counting around them.
 */
import type { PodMetadata } from '../core/pod-metadata.js'
import type { TapioEvent } from '../events/event.js'
import type { K8sContext } from '../events/schema.js'

/** What enrichment needs from the Kubernetes collector's cache. */
export interface PodMetadataSource {
  podByUid(uid: string): PodMetadata | undefined
  /** Accepts `containerd://<id>`, `docker://<id>` or the bare id. */
  podByContainerId(containerId: string): PodMetadata | undefined
  podByIp(ip: string): PodMetadata | undefined
  /** Grows whenever an answer may have changed; without it nothing is memoised. */
  readonly generation?: number
  /**
   * `absent`: no Kubernetes metadata on this node at all (enrichment is off, nothing counted);
   * `empty`: a cache exists but holds no pods yet (initial sync, restart); `ready`. Without it: ready.
   */
  status?(): MetadataStatus
}

export type MetadataStatus = 'absent' | 'empty' | 'ready'

/** Which key found the pod. */
export const HIT_REASONS = ['container_id', 'pod_uid', 'ip'] as const
export type HitReason = (typeof HIT_REASONS)[number]

/** Why no pod was attached. */
export const MISS_REASONS = [
  /** The Kubernetes cache is empty (not synced yet, or its collector is restarting). */
  'no_metadata',
  /** A kernel event from a process outside any container cgroup (a host process). */
  'no_container_id',
  /** A network event with neither pod context nor an address to look up (host links, routes). */
  'no_key',
  /** The cgroup names a container the cache does not know (not ours, or not synced yet). */
  'container_id_unknown',
  /** A pod uid (cgroup path or CNI arguments) the cache does not know. */
  'pod_uid_unknown',
  /** An address that is no (non-host-network) pod's IP. */
  'ip_unknown',
] as const
export type MissReason = (typeof MISS_REASONS)[number]

export interface PodHit {
  readonly reason: HitReason
  readonly pod: PodMetadata
  /** The container id that found it (bare), to name the container. */
  readonly containerId?: string
}

/** A hit, or the miss reason (a constant string: misses allocate nothing). */
export type PodLookup = PodHit | MissReason

export type Family = 'kernel' | 'network'

/** The family enrichment applies to, from the type's first segment; undefined for the rest. */
export function familyOf(type: string): Family | undefined {
  // Character checks before startsWith: most events on a busy node are one of these two.
  const c = type.charCodeAt(0)
  if (c === 107 /* k */ && type.startsWith('kernel.')) return 'kernel'
  if (c === 110 /* n */ && type.startsWith('network.')) return 'network'
  return undefined
}

/** Container id without a `runtime://` prefix. */
export function bareContainerId(id: string): string {
  const i = id.indexOf('://')
  return i < 0 ? id : id.slice(i + 3)
}

/**
 * The local address of an event that has one: the source of a TCP event (the destination is the
 * peer, which may be anything), the address of an address event.
 */
export function localAddressOf(e: TapioEvent): string | undefined {
  const d = e.data as Readonly<Record<string, unknown>>
  if (e.type.startsWith('kernel.tcp.')) return typeof d.saddr === 'string' ? d.saddr : undefined
  if (e.type.startsWith('network.address.')) return typeof d.address === 'string' ? d.address : undefined
  return undefined
}

/**
 * Whether the event's process identity can be trusted. TCP state changes seen in softirq carry
 * whatever process was interrupted (`ownerKnown: false`); its cgroup says nothing about the socket.
 */
export function processIdentityTrusted(e: TapioEvent): boolean {
  return (e.data as Readonly<Record<string, unknown>>).ownerKnown !== false
}

/**
 * Find the pod of one kernel/network event: container id first (it also names the container),
 * then pod uid, then the local address. The miss reason is that of the strongest key present.
 */
export function lookupPod(source: PodMetadataSource, e: TapioEvent, family: Family): PodLookup {
  const trusted = processIdentityTrusted(e)
  const k8s = trusted ? e.k8s : undefined
  const containerId = k8s?.containerId
  let miss: MissReason | undefined
  if (containerId !== undefined) {
    const pod = source.podByContainerId(containerId)
    if (pod !== undefined) return { reason: 'container_id', pod, containerId: bareContainerId(containerId) }
    miss = 'container_id_unknown'
  }
  const podUid = k8s?.podUid
  if (podUid !== undefined) {
    const pod = source.podByUid(podUid)
    if (pod !== undefined) return containerId === undefined ? { reason: 'pod_uid', pod } : { reason: 'pod_uid', pod, containerId: bareContainerId(containerId) }
    miss ??= 'pod_uid_unknown'
  }
  const ip = localAddressOf(e)
  if (ip !== undefined) {
    const pod = source.podByIp(ip)
    if (pod !== undefined) return { reason: 'ip', pod }
    // For a kernel event the address is a fallback: a host process's miss is about its cgroup.
    miss ??= family === 'network' ? 'ip_unknown' : 'no_container_id'
  }
  return miss ?? (family === 'kernel' ? 'no_container_id' : 'no_key')
}

/**
 * The event's new `k8s` context from a hit. A fresh object: an event's existing context may be
 * shared with other events (the eBPF collector shares one per cgroup), so it is never mutated.
 */
export function podContext(hit: PodHit, existing: K8sContext | undefined): K8sContext {
  const { pod, containerId } = hit
  const container = containerId === undefined ? undefined : pod.containers.find((c) => c.id === containerId)
  // An address hit may contradict the process identity the event carried (see processIdentityTrusted).
  const base = hit.reason === 'ip' ? undefined : existing
  return {
    ...base,
    namespace: pod.namespace,
    pod: pod.name,
    podUid: pod.uid,
    ...(container !== undefined ? { container: container.name } : {}),
    ...(pod.node !== undefined ? { node: pod.node } : {}),
    ...(pod.workload !== undefined ? { workload: { kind: pod.workload.kind, name: pod.workload.name } } : {}),
  }
}
