import type { WorkloadRef } from '../events/vocabulary/kubernetes.js'

/**
 * The pod-metadata contract between the Kubernetes collector (which keeps the cache) and
 * enrichment (which reads it): neither imports the other.
 */

export interface ContainerMetadata {
  readonly name: string
  /** Bare container id (runtime prefix such as `containerd://` removed). */
  readonly id?: string
  readonly runtime?: string
  readonly image?: string
}

export interface PodMetadata {
  readonly namespace: string
  readonly name: string
  readonly uid: string
  readonly node?: string
  readonly ips: readonly string[]
  readonly hostNetwork: boolean
  readonly phase?: string
  readonly labels: Readonly<Record<string, string>>
  readonly containers: readonly ContainerMetadata[]
  /** Controllers from the pod's owner up, e.g. ReplicaSet web-5d4f then Deployment web. */
  readonly ownerChain: readonly WorkloadRef[]
  /** The top of the chain: what a user would call the pod's workload. */
  readonly workload?: WorkloadRef
}

/** Read-only face of a Kubernetes collector's cache, for enrichment elsewhere in the agent. */
export interface KubernetesMetadata {
  podByUid(uid: string): PodMetadata | undefined
  /** Accepts `containerd://<id>`, `docker://<id>` or the bare id. */
  podByContainerId(containerId: string): PodMetadata | undefined
  podByIp(ip: string): PodMetadata | undefined
  readonly size: { readonly pods: number; readonly containers: number; readonly ips: number; readonly controllers: number }
  /** Grows whenever an answer above may have changed, so readers can memoise answers. */
  readonly generation?: number
}

/** Where Kubernetes collectors publish their caches: one slot per configured collector. */
export interface PodMetadataSlots {
  slot(): { set(metadata: KubernetesMetadata): void; release(): void }
}
