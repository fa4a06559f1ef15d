import type { KubernetesMetadata, PodMetadata } from '../core/pod-metadata.js'
import type { MetadataStatus, PodMetadataSource } from './lookup.js'

/** One configured Kubernetes collector's place in the hub. */
export interface MetadataSlot {
  /** The instance now running; each restart's fresh instance replaces the previous one. */
  set(metadata: KubernetesMetadata): void
  /** The collector was removed from the configuration. */
  release(): void
}

interface Slot {
  current: KubernetesMetadata | undefined
}

/**
 * Where the agent's Kubernetes collectors publish their metadata caches, and the enricher reads
 * them. The supervisor creates a new collector instance on every restart, so a slot (one per
 * configured collector) always points at the latest instance rather than at the first.
 */
export class MetadataHub implements PodMetadataSource {
  private readonly slots = new Set<Slot>()
  private changes = 0

  slot(): MetadataSlot {
    const s: Slot = { current: undefined }
    this.slots.add(s)
    this.changes++
    return {
      set: (metadata) => {
        s.current = metadata
        this.changes++
      },
      release: () => {
        if (this.slots.delete(s)) this.changes++
      },
    }
  }

  get size(): number {
    return this.slots.size
  }

  status(): MetadataStatus {
    if (this.slots.size === 0) return 'absent'
    for (const s of this.slots) if (s.current !== undefined && s.current.size.pods > 0) return 'ready'
    return 'empty'
  }

  /** Changes whenever a slot changes or a cache changes (the sum alone could repeat across swaps). */
  get generation(): number {
    let sum = 0
    for (const s of this.slots) sum += s.current?.generation ?? 0
    return this.changes * 2 ** 32 + sum
  }

  // Plain loops rather than a shared helper taking a closure: these run per event.
  podByUid(uid: string): PodMetadata | undefined {
    for (const s of this.slots) {
      const p = s.current?.podByUid(uid)
      if (p !== undefined) return p
    }
    return undefined
  }

  podByContainerId(containerId: string): PodMetadata | undefined {
    for (const s of this.slots) {
      const p = s.current?.podByContainerId(containerId)
      if (p !== undefined) return p
    }
    return undefined
  }

  podByIp(ip: string): PodMetadata | undefined {
    for (const s of this.slots) {
      const p = s.current?.podByIp(ip)
      if (p !== undefined) return p
    }
    return undefined
  }
}
