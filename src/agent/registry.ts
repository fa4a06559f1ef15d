import * as Result from 'effect/Result'
import { cniKind } from '../collectors/cni/kind.js'
import { ebpfKind } from '../collectors/ebpf/kind.js'
import { createKubernetesKind } from '../collectors/kubernetes/kind.js'
import { syntheticKind } from '../collectors/synthetic/kind.js'
import { systemdKind } from '../collectors/systemd/kind.js'
import type { CollectorKind } from '../core/kind.js'
import type { PodMetadataSlots } from '../core/pod-metadata.js'
import { decodeWithPaths, type KindConfigValidator } from './config.js'

export type { CollectorKind, Detection } from '../core/kind.js'

export interface BuiltinKindsOptions {
  /** Where Kubernetes collectors publish their metadata caches (for enrichment). */
  readonly metadataHub?: PodMetadataSlots
}

/**
 * Every collector kind the agent can run, in start order. Each is described in its own folder
 * (`src/collectors/<name>/kind.ts`) and loads its collector's code only when configured.
 */
export function builtinKinds(options: BuiltinKindsOptions = {}): CollectorKind[] {
  return [ebpfKind, createKubernetesKind(options.metadataHub), systemdKind, cniKind, syntheticKind]
}

export function kindMap(kinds: readonly CollectorKind[]): Map<string, CollectorKind> {
  return new Map(kinds.map((k) => [k.kind, k]))
}

export function validators(kinds: readonly CollectorKind[]): Map<string, KindConfigValidator> {
  return new Map(
    kinds.map((k) => [
      k.kind,
      (config, path) => {
        const r = decodeWithPaths(k.configSchema, config, path)
        return Result.isFailure(r) ? r.failure : []
      },
    ]),
  )
}
