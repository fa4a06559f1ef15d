import type * as Schema from 'effect/Schema'
import type { PodMetadataSlots } from '../../core/pod-metadata.js'
import type { CollectorKind } from '../../core/kind.js'
import { KubernetesConfigSchema } from './config.js'

/**
 * The Kubernetes client is loaded only when a kubernetes collector is configured. With `slots`
 * (the agent's metadata hub), every instance (a fresh one per restart) publishes its metadata
 * cache there, for the enrichment of kernel and network events.
 */
export function createKubernetesKind(slots?: PodMetadataSlots): CollectorKind {
  return {
    kind: 'kubernetes',
    description: 'Kubernetes API watches: object changes, derived pod/node/deployment events, core/v1 Events',
    configSchema: KubernetesConfigSchema as unknown as Schema.Struct<Schema.Struct.Fields>,
    detect: async (config) =>
      (await import('./detect.js')).detectKubernetes({
        ...(typeof config.kubeconfig === 'string' ? { kubeconfig: config.kubeconfig } : {}),
        ...(typeof config.inCluster === 'boolean' ? { inCluster: config.inCluster } : {}),
      }),
    create: async (config) => {
      const { KubernetesCollector } = await import('./collector.js')
      const slot = slots?.slot()
      return () => {
        const c = new KubernetesCollector(config)
        slot?.set(c.metadata)
        return c
      }
    },
  }
}

export const kubernetesKind: CollectorKind = createKubernetesKind()
