/**
 * `tapio-collector-manager/kubernetes`: Kubernetes objects through list+watch (changes, derived
 * pod/node/deployment events, core/v1 Events), the pod metadata cache it keeps, and the
 * enrichment that adds pod identity to kernel and network events from that cache.
 * `detectKubernetes` looks for a kubeconfig or in-cluster configuration without calling the API.
 *
 *   mgr.addCollector('k8s', () => new KubernetesCollector({ namespaces: ['default'] }))
 */
import '../peers.js'

export { KubernetesCollector, type KubernetesCollectorOptions } from '../collectors/kubernetes/collector.js'
export {
  KUBERNETES_DEFAULTS,
  KubernetesConfigError,
  KubernetesConfigSchema,
  parseKubernetesConfig,
  type KubernetesConfig,
  type KubernetesConfigInput,
} from '../collectors/kubernetes/config.js'
export { detectKubernetes, type DetectKubernetesOptions } from '../collectors/kubernetes/detect.js'
export * from '../events/vocabulary/kubernetes.js'
export { KubeApiError } from '../collectors/kubernetes/kube-api.js'
export type { ContainerMetadata, KubernetesMetadata, PodMetadata } from '../core/pod-metadata.js'
export type { ReflectorStatus } from '../collectors/kubernetes/reflector.js'
export { RESOURCE_NAMES, type ResourceName } from '../collectors/kubernetes/resources.js'
export * from '../enrich/index.js'
