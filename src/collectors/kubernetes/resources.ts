/**
 * The resources this collector can watch. Secrets and ConfigMaps are deliberately absent: their
 * contents are never read, so there is no way to configure them in.
 */
export const RESOURCE_NAMES = [
  'pods',
  'services',
  'endpointslices',
  'nodes',
  'namespaces',
  'deployments',
  'replicasets',
  'daemonsets',
  'statefulsets',
  'jobs',
  'events',
] as const
export type ResourceName = (typeof RESOURCE_NAMES)[number]

export interface ResourceInfo {
  readonly name: ResourceName
  /** Kind as the API spells it. */
  readonly kind: string
  /** Lowercase kind used in event types (`k8s.<kind>.added`). */
  readonly typeKind: string
  /** `/api/v1` or `/apis/<group>/<version>`. */
  readonly apiPrefix: string
  readonly namespaced: boolean
}

export const RESOURCES: Readonly<Record<ResourceName, ResourceInfo>> = {
  pods: { name: 'pods', kind: 'Pod', typeKind: 'pod', apiPrefix: '/api/v1', namespaced: true },
  services: { name: 'services', kind: 'Service', typeKind: 'service', apiPrefix: '/api/v1', namespaced: true },
  endpointslices: {
    name: 'endpointslices',
    kind: 'EndpointSlice',
    typeKind: 'endpointslice',
    apiPrefix: '/apis/discovery.k8s.io/v1',
    namespaced: true,
  },
  nodes: { name: 'nodes', kind: 'Node', typeKind: 'node', apiPrefix: '/api/v1', namespaced: false },
  namespaces: { name: 'namespaces', kind: 'Namespace', typeKind: 'namespace', apiPrefix: '/api/v1', namespaced: false },
  deployments: {
    name: 'deployments',
    kind: 'Deployment',
    typeKind: 'deployment',
    apiPrefix: '/apis/apps/v1',
    namespaced: true,
  },
  replicasets: {
    name: 'replicasets',
    kind: 'ReplicaSet',
    typeKind: 'replicaset',
    apiPrefix: '/apis/apps/v1',
    namespaced: true,
  },
  daemonsets: { name: 'daemonsets', kind: 'DaemonSet', typeKind: 'daemonset', apiPrefix: '/apis/apps/v1', namespaced: true },
  statefulsets: {
    name: 'statefulsets',
    kind: 'StatefulSet',
    typeKind: 'statefulset',
    apiPrefix: '/apis/apps/v1',
    namespaced: true,
  },
  jobs: { name: 'jobs', kind: 'Job', typeKind: 'job', apiPrefix: '/apis/batch/v1', namespaced: true },
  events: { name: 'events', kind: 'Event', typeKind: 'event', apiPrefix: '/api/v1', namespaced: true },
}

/** The collection path: all namespaces when `namespace` is undefined or the resource is cluster-scoped. */
export function resourcePath(info: ResourceInfo, namespace?: string): string {
  if (info.namespaced && namespace !== undefined) {
    return `${info.apiPrefix}/namespaces/${encodeURIComponent(namespace)}/${info.name}`
  }
  return `${info.apiPrefix}/${info.name}`
}
