import { lazySchema, type SchemaApi } from '../../core/lazy-schema.js'
import { registerEventData } from '../families.js'

/**
 * Event types of the kubernetes collector and the schemas of their `data`.
 * Object changes: `k8s.<kind>.added|updated|deleted`; derived: pod phase/restarts/OOM/backoff,
 * node readiness, deployment rollout; core/v1 Events as `k8s.event`.
 */
export const OBJECT_KINDS = [
  'pod',
  'service',
  'endpointslice',
  'node',
  'namespace',
  'deployment',
  'replicaset',
  'daemonset',
  'statefulset',
  'job',
] as const
export type ObjectKind = (typeof OBJECT_KINDS)[number]

const OwnerRefData = lazySchema((Schema) => Schema.Struct({
  kind: Schema.String,
  name: Schema.String,
  uid: Schema.optional(Schema.String),
  controller: Schema.Boolean,
}))
const WorkloadRef = lazySchema((Schema) => Schema.Struct({ kind: Schema.String, name: Schema.String }))
export type WorkloadRef = typeof WorkloadRef.Type

export const K8sObjectChangeDataSchema = lazySchema((Schema) => Schema.Struct({
  kind: Schema.String,
  namespace: Schema.optional(Schema.String),
  name: Schema.String,
  uid: Schema.String,
  resourceVersion: Schema.String,
  labels: Schema.Record(Schema.String, Schema.String),
  ownerReferences: Schema.Array(OwnerRefData),
  /** Controller chain from the direct owner up to the workload, e.g. ReplicaSet then Deployment. */
  ownerChain: Schema.Array(WorkloadRef),
  nodeName: Schema.optional(Schema.String),
  /** Pod and Namespace phase. */
  phase: Schema.optional(Schema.String),
}))
export type K8sObjectChangeData = typeof K8sObjectChangeDataSchema.Type

const podRef = (Schema: SchemaApi) => ({
  namespace: Schema.String,
  name: Schema.String,
  uid: Schema.String,
  node: Schema.optional(Schema.String),
})

export const PodPhaseChangedDataSchema = lazySchema((Schema) => Schema.Struct({
  ...podRef(Schema),
  from: Schema.String,
  to: Schema.String,
  reason: Schema.optional(Schema.String),
}))
export const ContainerRestartedDataSchema = lazySchema((Schema) => Schema.Struct({
  ...podRef(Schema),
  container: Schema.String,
  restartCount: Schema.Number,
  previousRestartCount: Schema.Number,
  lastTerminationReason: Schema.optional(Schema.String),
  exitCode: Schema.optional(Schema.Number),
}))
export const OomKilledDataSchema = lazySchema((Schema) => Schema.Struct({
  ...podRef(Schema),
  container: Schema.String,
  restartCount: Schema.Number,
  exitCode: Schema.optional(Schema.Number),
  finishedAt: Schema.optional(Schema.String),
}))
export const ContainerBackoffDataSchema = lazySchema((Schema) => Schema.Struct({
  ...podRef(Schema),
  container: Schema.String,
  reason: Schema.String,
  message: Schema.optional(Schema.String),
  restartCount: Schema.Number,
  image: Schema.optional(Schema.String),
}))
export const NodeReadinessDataSchema = lazySchema((Schema) => Schema.Struct({
  name: Schema.String,
  uid: Schema.String,
  /** Status of the Ready condition: True, False or Unknown (missing counts as Unknown). */
  status: Schema.String,
  previousStatus: Schema.String,
  reason: Schema.optional(Schema.String),
  message: Schema.optional(Schema.String),
}))
export const DeploymentRolloutDataSchema = lazySchema((Schema) => Schema.Struct({
  namespace: Schema.String,
  name: Schema.String,
  uid: Schema.String,
  state: Schema.Literals(['progressing', 'complete', 'failed']),
  generation: Schema.Number,
  observedGeneration: Schema.Number,
  desiredReplicas: Schema.Number,
  replicas: Schema.Number,
  updatedReplicas: Schema.Number,
  readyReplicas: Schema.Number,
  availableReplicas: Schema.Number,
  unavailableReplicas: Schema.Number,
  reason: Schema.optional(Schema.String),
  message: Schema.optional(Schema.String),
}))
export const K8sEventDataSchema = lazySchema((Schema) => Schema.Struct({
  namespace: Schema.optional(Schema.String),
  name: Schema.String,
  uid: Schema.String,
  /** Normal or Warning (other values are passed through). */
  type: Schema.String,
  reason: Schema.String,
  message: Schema.String,
  count: Schema.Number,
  involvedObject: Schema.Struct({
    kind: Schema.String,
    namespace: Schema.optional(Schema.String),
    name: Schema.String,
    uid: Schema.optional(Schema.String),
    fieldPath: Schema.optional(Schema.String),
  }),
  firstTimestamp: Schema.optional(Schema.String),
  lastTimestamp: Schema.optional(Schema.String),
  component: Schema.optional(Schema.String),
  host: Schema.optional(Schema.String),
}))

export type PodPhaseChangedData = typeof PodPhaseChangedDataSchema.Type
export type ContainerRestartedData = typeof ContainerRestartedDataSchema.Type
export type OomKilledData = typeof OomKilledDataSchema.Type
export type ContainerBackoffData = typeof ContainerBackoffDataSchema.Type
export type NodeReadinessData = typeof NodeReadinessDataSchema.Type
export type DeploymentRolloutData = typeof DeploymentRolloutDataSchema.Type
export type K8sEventData = typeof K8sEventDataSchema.Type

type ChangeTypes = `k8s.${ObjectKind}.${'added' | 'updated' | 'deleted'}`

declare module '../families.js' {
  interface EventDataMap extends Record<ChangeTypes, K8sObjectChangeData> {
    'k8s.pod.phase_changed': PodPhaseChangedData
    'k8s.pod.container_restarted': ContainerRestartedData
    'k8s.pod.oom_killed': OomKilledData
    'k8s.pod.crash_loop_backoff': ContainerBackoffData
    'k8s.pod.image_pull_backoff': ContainerBackoffData
    'k8s.node.ready': NodeReadinessData
    'k8s.node.not_ready': NodeReadinessData
    'k8s.deployment.rollout': DeploymentRolloutData
    'k8s.event': K8sEventData
  }
}

export const DERIVED_EVENT_SCHEMAS = {
  'k8s.pod.phase_changed': PodPhaseChangedDataSchema,
  'k8s.pod.container_restarted': ContainerRestartedDataSchema,
  'k8s.pod.oom_killed': OomKilledDataSchema,
  'k8s.pod.crash_loop_backoff': ContainerBackoffDataSchema,
  'k8s.pod.image_pull_backoff': ContainerBackoffDataSchema,
  'k8s.node.ready': NodeReadinessDataSchema,
  'k8s.node.not_ready': NodeReadinessDataSchema,
  'k8s.deployment.rollout': DeploymentRolloutDataSchema,
  'k8s.event': K8sEventDataSchema,
} as const

export const KUBERNETES_EVENT_TYPES: readonly string[] = [
  ...OBJECT_KINDS.flatMap((k) => [`k8s.${k}.added`, `k8s.${k}.updated`, `k8s.${k}.deleted`]),
  ...Object.keys(DERIVED_EVENT_SCHEMAS),
]

for (const k of OBJECT_KINDS) {
  for (const action of ['added', 'updated', 'deleted']) registerEventData(`k8s.${k}.${action}`, K8sObjectChangeDataSchema)
}
for (const [type, schema] of Object.entries(DERIVED_EVENT_SCHEMAS)) registerEventData(type, schema)
