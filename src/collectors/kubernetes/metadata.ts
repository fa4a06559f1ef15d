import type { ContainerMetadata, KubernetesMetadata, PodMetadata } from '../../core/pod-metadata.js'
import type { WorkloadRef } from '../../events/vocabulary/kubernetes.js'
import type { KubeObject, OwnerReference, Pod } from './objects.js'
import { RESOURCES } from './resources.js'

export type { ContainerMetadata, KubernetesMetadata, PodMetadata } from '../../core/pod-metadata.js'

const CONTROLLER_KINDS = new Set(['replicasets', 'deployments', 'daemonsets', 'statefulsets', 'jobs'])

export function controllerRef(refs: readonly OwnerReference[] | null | undefined): OwnerReference | undefined {
  if (!refs || refs.length === 0) return undefined
  return refs.find((r) => r.controller === true) ?? refs[0]
}

function splitContainerId(raw: string): { id: string; runtime?: string } {
  const i = raw.indexOf('://')
  return i < 0 ? { id: raw } : { id: raw.slice(i + 3), runtime: raw.slice(0, i) }
}

/**
 * Pods by uid, container id and IP, plus the controller of each watched workload (to resolve
 * owner chains). Holds only what the watches hold, so memory follows the watched set; entries
 * leave with their objects.
 */
export class MetadataCache implements KubernetesMetadata {
  private readonly pods = new Map<string, PodMetadata>()
  private readonly byContainer = new Map<string, string>()
  private readonly byIp = new Map<string, string>()
  /** `Kind/namespace/name` of a workload -> its controller reference. */
  private readonly controllers = new Map<string, OwnerReference>()
  private changes = 0

  get generation(): number {
    return this.changes
  }

  get size() {
    return {
      pods: this.pods.size,
      containers: this.byContainer.size,
      ips: this.byIp.size,
      controllers: this.controllers.size,
    }
  }

  podByUid(uid: string): PodMetadata | undefined {
    const pod = this.pods.get(uid)
    // Resolved on read: the ReplicaSet may have arrived after the pod.
    return pod && { ...pod, ...this.chainFields(pod.namespace, pod.ownerChain[0]) }
  }

  podByContainerId(containerId: string): PodMetadata | undefined {
    const uid = this.byContainer.get(splitContainerId(containerId).id)
    return uid === undefined ? undefined : this.podByUid(uid)
  }

  podByIp(ip: string): PodMetadata | undefined {
    const uid = this.byIp.get(ip)
    return uid === undefined ? undefined : this.podByUid(uid)
  }

  /** Owner chain of an object with these owner references in `namespace`. */
  ownerChain(namespace: string | undefined, refs: readonly OwnerReference[] | null | undefined): WorkloadRef[] {
    const first = controllerRef(refs)
    if (!first) return []
    const chain: WorkloadRef[] = [{ kind: first.kind, name: first.name }]
    let cur = this.controllers.get(`${first.kind}/${namespace ?? ''}/${first.name}`)
    // Depth bound: ownership cycles are invalid but must not hang us.
    while (cur && chain.length < 8) {
      chain.push({ kind: cur.kind, name: cur.name })
      cur = this.controllers.get(`${cur.kind}/${namespace ?? ''}/${cur.name}`)
    }
    return chain
  }

  private chainFields(namespace: string, first: WorkloadRef | undefined): Pick<PodMetadata, 'ownerChain' | 'workload'> {
    if (!first) return { ownerChain: [] }
    const chain = this.ownerChain(namespace, [{ kind: first.kind, name: first.name, controller: true }])
    const workload = chain[chain.length - 1]
    return { ownerChain: chain, ...(workload ? { workload } : {}) }
  }

  apply(type: 'added' | 'updated' | 'deleted', object: KubeObject): void {
    if (object.resource === 'pods' || CONTROLLER_KINDS.has(object.resource)) this.changes++
    if (object.resource === 'pods') {
      if (type === 'deleted') this.removePod(object.object.metadata.uid)
      else this.putPod(object.object)
      return
    }
    if (!CONTROLLER_KINDS.has(object.resource)) return
    const meta = object.object.metadata
    const kind = RESOURCES[object.resource].kind
    const key = `${kind}/${meta.namespace ?? ''}/${meta.name}`
    const ref = controllerRef(meta.ownerReferences)
    if (type === 'deleted' || !ref) this.controllers.delete(key)
    else this.controllers.set(key, ref)
  }

  clear(): void {
    this.changes++
    this.pods.clear()
    this.byContainer.clear()
    this.byIp.clear()
    this.controllers.clear()
  }

  private putPod(pod: Pod): void {
    const meta = pod.metadata
    const uid = meta.uid
    this.removePod(uid)
    const statuses = [...(pod.status?.initContainerStatuses ?? []), ...(pod.status?.containerStatuses ?? [])]
    const specs = [...(pod.spec?.initContainers ?? []), ...(pod.spec?.containers ?? [])]
    const containers: ContainerMetadata[] = specs.map((c) => {
      const st = statuses.find((s) => s.name === c.name)
      const split = st?.containerID ? splitContainerId(st.containerID) : undefined
      const image = st?.image ?? c.image
      return {
        name: c.name,
        ...(split ? { id: split.id } : {}),
        ...(split?.runtime ? { runtime: split.runtime } : {}),
        ...(image ? { image } : {}),
      }
    })
    const ips = new Set<string>()
    if (pod.status?.podIP) ips.add(pod.status.podIP)
    for (const p of pod.status?.podIPs ?? []) ips.add(p.ip)
    const hostNetwork = pod.spec?.hostNetwork === true
    const first = controllerRef(meta.ownerReferences)
    const entry: PodMetadata = {
      namespace: meta.namespace ?? '',
      name: meta.name,
      uid,
      ...(pod.spec?.nodeName ? { node: pod.spec.nodeName } : {}),
      ips: [...ips],
      hostNetwork,
      ...(pod.status?.phase ? { phase: pod.status.phase } : {}),
      labels: meta.labels ?? {},
      containers,
      ownerChain: first ? [{ kind: first.kind, name: first.name }] : [],
    }
    this.pods.set(uid, entry)
    for (const c of containers) if (c.id) this.byContainer.set(c.id, uid)
    // Host-network pods share the node's address; indexing them would misattribute traffic.
    if (!hostNetwork) for (const ip of ips) this.byIp.set(ip, uid)
  }

  private removePod(uid: string): void {
    const old = this.pods.get(uid)
    if (!old) return
    this.pods.delete(uid)
    // Only drop index entries that still point at this pod: an IP may already belong to its successor.
    for (const c of old.containers) if (c.id && this.byContainer.get(c.id) === uid) this.byContainer.delete(c.id)
    for (const ip of old.ips) if (this.byIp.get(ip) === uid) this.byIp.delete(ip)
  }
}
