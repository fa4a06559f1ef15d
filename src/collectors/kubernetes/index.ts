export { KubernetesCollector, type KubernetesCollectorOptions } from './collector.js'
export {
  KUBERNETES_DEFAULTS,
  type KubernetesConfig,
  KubernetesConfigError,
  type KubernetesConfigInput,
  KubernetesConfigSchema,
  parseKubernetesConfig,
} from './config.js'
export { detectKubernetes, type DetectKubernetesOptions } from './detect.js'
export * from '../../events/vocabulary/kubernetes.js'
export { KubeApiError, loadKubeConfig } from './kube-api.js'
export type { ContainerMetadata, KubernetesMetadata, PodMetadata } from './metadata.js'
export type { ReflectorStatus } from './reflector.js'
export { RESOURCE_NAMES, type ResourceName } from './resources.js'
