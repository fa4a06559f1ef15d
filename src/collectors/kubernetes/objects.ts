import * as Result from 'effect/Result'
import * as Schema from 'effect/Schema'
import type { ResourceName } from './resources.js'

/**
 * Schemas for the parts of API objects this collector reads. Everything outside `metadata`'s
 * identity is optional (and may be null, as the API server writes some fields that way), so
 * objects from older or newer servers decode; an object without name, uid or resourceVersion
 * cannot be tracked and is rejected (counted as malformed by the caller).
 */
const Opt = <S extends Schema.Top>(s: S) => Schema.optional(Schema.NullOr(s))
const NonEmpty = Schema.String.check(Schema.isMinLength(1))

const OwnerReference = Schema.Struct({
  apiVersion: Opt(Schema.String),
  kind: Schema.String,
  name: Schema.String,
  uid: Opt(Schema.String),
  controller: Opt(Schema.Boolean),
})
export type OwnerReference = typeof OwnerReference.Type

const ObjectMeta = Schema.Struct({
  name: NonEmpty,
  namespace: Opt(Schema.String),
  uid: NonEmpty,
  resourceVersion: NonEmpty,
  generation: Opt(Schema.Number),
  labels: Opt(Schema.Record(Schema.String, Schema.String)),
  ownerReferences: Opt(Schema.Array(OwnerReference)),
  creationTimestamp: Opt(Schema.String),
  deletionTimestamp: Opt(Schema.String),
})

const Condition = Schema.Struct({
  type: Schema.String,
  status: Schema.String,
  reason: Opt(Schema.String),
  message: Opt(Schema.String),
  lastTransitionTime: Opt(Schema.String),
})
export type Condition = typeof Condition.Type

const ContainerStateDetail = Schema.Struct({
  reason: Opt(Schema.String),
  message: Opt(Schema.String),
  exitCode: Opt(Schema.Number),
  signal: Opt(Schema.Number),
  startedAt: Opt(Schema.String),
  finishedAt: Opt(Schema.String),
  containerID: Opt(Schema.String),
})
const ContainerState = Schema.Struct({
  waiting: Opt(ContainerStateDetail),
  running: Opt(ContainerStateDetail),
  terminated: Opt(ContainerStateDetail),
})
export type ContainerState = typeof ContainerState.Type

const ContainerStatus = Schema.Struct({
  name: Schema.String,
  restartCount: Opt(Schema.Number),
  containerID: Opt(Schema.String),
  image: Opt(Schema.String),
  ready: Opt(Schema.Boolean),
  state: Opt(ContainerState),
  lastState: Opt(ContainerState),
})
export type ContainerStatus = typeof ContainerStatus.Type

const Container = Schema.Struct({ name: Schema.String, image: Opt(Schema.String) })

const PodSchema = Schema.Struct({
  metadata: ObjectMeta,
  spec: Opt(
    Schema.Struct({
      nodeName: Opt(Schema.String),
      hostNetwork: Opt(Schema.Boolean),
      containers: Opt(Schema.Array(Container)),
      initContainers: Opt(Schema.Array(Container)),
    }),
  ),
  status: Opt(
    Schema.Struct({
      phase: Opt(Schema.String),
      reason: Opt(Schema.String),
      podIP: Opt(Schema.String),
      podIPs: Opt(Schema.Array(Schema.Struct({ ip: Schema.String }))),
      hostIP: Opt(Schema.String),
      containerStatuses: Opt(Schema.Array(ContainerStatus)),
      initContainerStatuses: Opt(Schema.Array(ContainerStatus)),
    }),
  ),
})
export type Pod = typeof PodSchema.Type

const NodeSchema = Schema.Struct({
  metadata: ObjectMeta,
  spec: Opt(Schema.Struct({ unschedulable: Opt(Schema.Boolean) })),
  status: Opt(Schema.Struct({ conditions: Opt(Schema.Array(Condition)) })),
})
export type Node = typeof NodeSchema.Type

const WorkloadSchema = Schema.Struct({
  metadata: ObjectMeta,
  spec: Opt(Schema.Struct({ replicas: Opt(Schema.Number) })),
  status: Opt(
    Schema.Struct({
      observedGeneration: Opt(Schema.Number),
      replicas: Opt(Schema.Number),
      updatedReplicas: Opt(Schema.Number),
      readyReplicas: Opt(Schema.Number),
      availableReplicas: Opt(Schema.Number),
      unavailableReplicas: Opt(Schema.Number),
      conditions: Opt(Schema.Array(Condition)),
    }),
  ),
})
export type Workload = typeof WorkloadSchema.Type

const EventSchema = Schema.Struct({
  metadata: ObjectMeta,
  involvedObject: Schema.Struct({
    kind: Opt(Schema.String),
    namespace: Opt(Schema.String),
    name: Opt(Schema.String),
    uid: Opt(Schema.String),
    fieldPath: Opt(Schema.String),
  }),
  reason: Opt(Schema.String),
  message: Opt(Schema.String),
  type: Opt(Schema.String),
  count: Opt(Schema.Number),
  firstTimestamp: Opt(Schema.String),
  lastTimestamp: Opt(Schema.String),
  eventTime: Opt(Schema.String),
  series: Opt(Schema.Struct({ count: Opt(Schema.Number), lastObservedTime: Opt(Schema.String) })),
  source: Opt(Schema.Struct({ component: Opt(Schema.String), host: Opt(Schema.String) })),
  reportingComponent: Opt(Schema.String),
})
export type CoreEvent = typeof EventSchema.Type

const GenericSchema = Schema.Struct({
  metadata: ObjectMeta,
  spec: Opt(Schema.Struct({ nodeName: Opt(Schema.String) })),
})
export type GenericObject = typeof GenericSchema.Type

/** A decoded object, tagged with the resource it came from. */
export type KubeObject =
  | { readonly resource: 'pods'; readonly object: Pod }
  | { readonly resource: 'nodes'; readonly object: Node }
  | { readonly resource: 'deployments' | 'replicasets' | 'daemonsets' | 'statefulsets' | 'jobs'; readonly object: Workload }
  | { readonly resource: 'events'; readonly object: CoreEvent }
  | { readonly resource: 'services' | 'endpointslices' | 'namespaces'; readonly object: GenericObject }

export type ObjectMeta = typeof ObjectMeta.Type

const decoders = {
  pods: Schema.decodeUnknownResult(PodSchema),
  nodes: Schema.decodeUnknownResult(NodeSchema),
  workload: Schema.decodeUnknownResult(WorkloadSchema),
  events: Schema.decodeUnknownResult(EventSchema),
  generic: Schema.decodeUnknownResult(GenericSchema),
}

/** Decode one object of `resource`; the failure is a message naming the paths at fault. */
export function decodeObject(resource: ResourceName, input: unknown): Result.Result<KubeObject, string> {
  const opts = { errors: 'all' } as const
  switch (resource) {
    case 'pods':
      return Result.mapBoth(decoders.pods(input, opts), { onSuccess: (object) => ({ resource, object }), onFailure: String })
    case 'nodes':
      return Result.mapBoth(decoders.nodes(input, opts), { onSuccess: (object) => ({ resource, object }), onFailure: String })
    case 'deployments':
    case 'replicasets':
    case 'daemonsets':
    case 'statefulsets':
    case 'jobs':
      return Result.mapBoth(decoders.workload(input, opts), { onSuccess: (object) => ({ resource, object }), onFailure: String })
    case 'events':
      return Result.mapBoth(decoders.events(input, opts), { onSuccess: (object) => ({ resource, object }), onFailure: String })
    case 'services':
    case 'endpointslices':
    case 'namespaces':
      return Result.mapBoth(decoders.generic(input, opts), { onSuccess: (object) => ({ resource, object }), onFailure: String })
  }
}

const WatchStatus = Schema.Struct({
  kind: Opt(Schema.String),
  code: Opt(Schema.Number),
  reason: Opt(Schema.String),
  message: Opt(Schema.String),
})
const decodeStatusResult = Schema.decodeUnknownResult(WatchStatus)
export type ApiStatus = typeof WatchStatus.Type

/** The Status object carried by a watch ERROR event (undefined when it is not one). */
export function decodeStatus(input: unknown): ApiStatus | undefined {
  const r = decodeStatusResult(input)
  return Result.isSuccess(r) ? r.success : undefined
}

const BookmarkSchema = Schema.Struct({ metadata: Schema.Struct({ resourceVersion: NonEmpty }) })
const decodeBookmarkResult = Schema.decodeUnknownResult(BookmarkSchema)
export function bookmarkVersion(input: unknown): string | undefined {
  const r = decodeBookmarkResult(input)
  return Result.isSuccess(r) ? r.success.metadata.resourceVersion : undefined
}

const ListSchema = Schema.Struct({
  metadata: Schema.Struct({ resourceVersion: NonEmpty, continue: Opt(Schema.String) }),
  items: Schema.Array(Schema.Unknown),
})
const decodeListResult = Schema.decodeUnknownResult(ListSchema)
export type ListPage = typeof ListSchema.Type
export function decodeList(input: unknown): Result.Result<ListPage, string> {
  return Result.mapError(decodeListResult(input, { errors: 'all' }), String)
}
