import type { EventInput } from '../../events/event.js'
import type { Severity } from '../../events/schema.js'
import { nsFromMillis } from '../../events/time.js'
import type { K8sObjectChangeData, ObjectKind } from '../../events/vocabulary/kubernetes.js'
import type { MetadataCache } from './metadata.js'
import type { ContainerState, ContainerStatus, CoreEvent, KubeObject, Node, Pod, Workload } from './objects.js'
import type { Change } from './reflector.js'
import { RESOURCES } from './resources.js'

/** Everything a change means to a user: the object change itself plus the derived events. */
export function changeToEvents(change: Change, cache: MetadataCache): EventInput[] {
  const { object } = change
  if (object.resource === 'events') return coreEventToEvents(change.type, object.object, change.previous)
  const out: EventInput[] = [objectChangeEvent(change, cache)]
  if (change.type !== 'updated' || !change.previous) return out
  const prev = change.previous
  if (object.resource === 'pods' && prev.resource === 'pods') out.push(...podTransitions(prev.object, object.object))
  else if (object.resource === 'nodes' && prev.resource === 'nodes') out.push(...nodeTransitions(prev.object, object.object))
  else if (object.resource === 'deployments' && prev.resource === 'deployments') {
    const e = rolloutTransition(prev.object, object.object)
    if (e) out.push(e)
  }
  return out
}

function objectChangeEvent(change: Change, cache: MetadataCache): EventInput {
  const { object } = change
  const info = RESOURCES[object.resource]
  const meta = object.object.metadata
  const namespace = meta.namespace ?? undefined
  const ownerChain = cache.ownerChain(namespace, meta.ownerReferences)
  const nodeName = nodeNameOf(object)
  const phase = phaseOf(object)
  const data: K8sObjectChangeData = {
    kind: info.kind,
    ...(namespace ? { namespace } : {}),
    name: meta.name,
    uid: meta.uid,
    resourceVersion: meta.resourceVersion,
    labels: meta.labels ?? {},
    ownerReferences: (meta.ownerReferences ?? []).map((r) => ({
      kind: r.kind,
      name: r.name,
      ...(r.uid ? { uid: r.uid } : {}),
      controller: r.controller === true,
    })),
    ownerChain,
    ...(nodeName ? { nodeName } : {}),
    ...(phase ? { phase } : {}),
  }
  const workload = ownerChain[ownerChain.length - 1]
  return {
    type: `k8s.${info.typeKind as ObjectKind}.${change.type}`,
    severity: changeSeverity(change),
    entity: { kind: info.kind, name: meta.name, ...(namespace ? { namespace } : {}), uid: meta.uid },
    data,
    ...(object.resource === 'pods'
      ? {
          k8s: {
            ...(namespace ? { namespace } : {}),
            pod: meta.name,
            podUid: meta.uid,
            ...(nodeName ? { node: nodeName } : {}),
            ...(workload ? { workload } : {}),
          },
        }
      : {}),
  }
}

function changeSeverity(change: Change): Severity {
  const o = change.object
  if (o.resource === 'pods' && o.object.status?.phase === 'Failed') return 'warning'
  if (o.resource === 'nodes' && change.type !== 'deleted' && readyStatus(o.object) !== 'True') return 'warning'
  return 'info'
}

function nodeNameOf(o: KubeObject): string | undefined {
  if (o.resource === 'pods') return o.object.spec?.nodeName ?? undefined
  if (o.resource === 'nodes') return o.object.metadata.name
  if (o.resource === 'events') return undefined
  if ('spec' in o.object && o.object.spec && 'nodeName' in o.object.spec) return o.object.spec.nodeName ?? undefined
  return undefined
}

function phaseOf(o: KubeObject): string | undefined {
  if (o.resource === 'pods') return o.object.status?.phase ?? undefined
  return undefined
}

function podRef(pod: Pod) {
  const node = pod.spec?.nodeName
  return {
    namespace: pod.metadata.namespace ?? '',
    name: pod.metadata.name,
    uid: pod.metadata.uid,
    ...(node ? { node } : {}),
  }
}

function podContext(pod: Pod, container?: ContainerStatus) {
  const node = pod.spec?.nodeName
  return {
    entity: {
      kind: 'Pod',
      name: pod.metadata.name,
      ...(pod.metadata.namespace ? { namespace: pod.metadata.namespace } : {}),
      uid: pod.metadata.uid,
    },
    k8s: {
      ...(pod.metadata.namespace ? { namespace: pod.metadata.namespace } : {}),
      pod: pod.metadata.name,
      podUid: pod.metadata.uid,
      ...(node ? { node } : {}),
      ...(container ? { container: container.name } : {}),
      ...(container?.containerID ? { containerId: container.containerID } : {}),
    },
  }
}

/** Identifies one termination, so the same OOM seen in `state` and later in `lastState` counts once. */
function terminationKey(state: ContainerState | null | undefined): string | undefined {
  const t = state?.terminated
  if (!t) return undefined
  return `${t.containerID ?? ''}|${t.finishedAt ?? ''}|${t.startedAt ?? ''}`
}

const CRASH_LOOP = 'CrashLoopBackOff'
const IMAGE_PULL = new Set(['ImagePullBackOff', 'ErrImagePull', 'ErrImageNeverPull', 'InvalidImageName'])

export function podTransitions(prev: Pod, cur: Pod): EventInput[] {
  const out: EventInput[] = []
  const ref = podRef(cur)
  const from = prev.status?.phase
  const to = cur.status?.phase
  if (from && to && from !== to) {
    out.push({
      type: 'k8s.pod.phase_changed',
      severity: to === 'Failed' ? 'error' : to === 'Unknown' ? 'warning' : 'info',
      ...podContext(cur),
      data: { ...ref, from, to, ...(cur.status?.reason ? { reason: cur.status.reason } : {}) },
    })
  }
  const prevStatuses = new Map(
    [...(prev.status?.initContainerStatuses ?? []), ...(prev.status?.containerStatuses ?? [])].map((s) => [s.name, s]),
  )
  for (const cs of [...(cur.status?.initContainerStatuses ?? []), ...(cur.status?.containerStatuses ?? [])]) {
    const before = prevStatuses.get(cs.name)
    const count = cs.restartCount ?? 0
    const prevCount = before?.restartCount ?? 0
    const ctx = podContext(cur, cs)
    const reportedOom = new Set<string>()
    const prevStateKey = terminationKey(before?.state)
    // An OOM kill of a container that is not restarted (yet) shows only in its current state.
    const term = cs.state?.terminated
    const termKey = terminationKey(cs.state)
    if (term?.reason === 'OOMKilled' && termKey !== undefined && termKey !== prevStateKey) {
      reportedOom.add(termKey)
      out.push(oomEvent(ctx, ref, cs, term))
    }
    if (count > prevCount) {
      const last = cs.lastState?.terminated
      out.push({
        type: 'k8s.pod.container_restarted',
        severity: 'warning',
        ...ctx,
        data: {
          ...ref,
          container: cs.name,
          restartCount: count,
          previousRestartCount: prevCount,
          ...(last?.reason ? { lastTerminationReason: last.reason } : {}),
          ...(typeof last?.exitCode === 'number' ? { exitCode: last.exitCode } : {}),
        },
      })
      const lastKey = terminationKey(cs.lastState)
      if (last?.reason === 'OOMKilled' && lastKey !== undefined && lastKey !== prevStateKey && !reportedOom.has(lastKey)) {
        out.push(oomEvent(ctx, ref, cs, last))
      }
    }
    const waiting = cs.state?.waiting?.reason
    const prevWaiting = before?.state?.waiting?.reason
    if (waiting === CRASH_LOOP && prevWaiting !== CRASH_LOOP) {
      out.push(backoffEvent('k8s.pod.crash_loop_backoff', 'error', ctx, ref, cs))
    } else if (waiting && IMAGE_PULL.has(waiting) && !(prevWaiting && IMAGE_PULL.has(prevWaiting))) {
      out.push(backoffEvent('k8s.pod.image_pull_backoff', 'warning', ctx, ref, cs))
    }
  }
  return out
}

function oomEvent(
  ctx: ReturnType<typeof podContext>,
  ref: ReturnType<typeof podRef>,
  cs: ContainerStatus,
  term: NonNullable<ContainerState['terminated']>,
): EventInput {
  const { exitCode, finishedAt } = term
  // The container that was killed: after a restart the status names its successor, the
  // termination (lastState) still names the one the kernel killed.
  const k8s = term.containerID && term.containerID !== ctx.k8s.containerId ? { ...ctx.k8s, containerId: term.containerID } : ctx.k8s
  return {
    type: 'k8s.pod.oom_killed',
    severity: 'error',
    ...ctx,
    k8s,
    ...(finishedAt && !Number.isNaN(Date.parse(finishedAt)) ? { timestamp: nsFromMillis(Date.parse(finishedAt)) } : {}),
    data: {
      ...ref,
      container: cs.name,
      restartCount: cs.restartCount ?? 0,
      ...(typeof exitCode === 'number' ? { exitCode } : {}),
      ...(finishedAt ? { finishedAt } : {}),
    },
  }
}

function backoffEvent(
  type: 'k8s.pod.crash_loop_backoff' | 'k8s.pod.image_pull_backoff',
  severity: Severity,
  ctx: ReturnType<typeof podContext>,
  ref: ReturnType<typeof podRef>,
  cs: ContainerStatus,
): EventInput {
  const w = cs.state?.waiting
  return {
    type,
    severity,
    ...ctx,
    data: {
      ...ref,
      container: cs.name,
      reason: w?.reason ?? '',
      ...(w?.message ? { message: w.message } : {}),
      restartCount: cs.restartCount ?? 0,
      ...(cs.image ? { image: cs.image } : {}),
    },
  }
}

export function readyStatus(node: Node): string {
  return node.status?.conditions?.find((c) => c.type === 'Ready')?.status ?? 'Unknown'
}

export function nodeTransitions(prev: Node, cur: Node): EventInput[] {
  const before = readyStatus(prev)
  const after = readyStatus(cur)
  if (before === after) return []
  const cond = cur.status?.conditions?.find((c) => c.type === 'Ready')
  const ready = after === 'True'
  return [
    {
      type: ready ? 'k8s.node.ready' : 'k8s.node.not_ready',
      severity: ready ? 'info' : 'error',
      entity: { kind: 'Node', name: cur.metadata.name, uid: cur.metadata.uid },
      k8s: { node: cur.metadata.name },
      data: {
        name: cur.metadata.name,
        uid: cur.metadata.uid,
        status: after,
        previousStatus: before,
        ...(cond?.reason ? { reason: cond.reason } : {}),
        ...(cond?.message ? { message: cond.message } : {}),
      },
    },
  ]
}

function rolloutFacts(d: Workload) {
  const s = d.status
  const progressing = s?.conditions?.find((c) => c.type === 'Progressing')
  const desired = d.spec?.replicas ?? 1
  const generation = d.metadata.generation ?? 0
  const observedGeneration = s?.observedGeneration ?? 0
  const replicas = s?.replicas ?? 0
  const updatedReplicas = s?.updatedReplicas ?? 0
  const readyReplicas = s?.readyReplicas ?? 0
  const availableReplicas = s?.availableReplicas ?? 0
  const unavailableReplicas = s?.unavailableReplicas ?? 0
  const state: 'progressing' | 'complete' | 'failed' =
    progressing?.reason === 'ProgressDeadlineExceeded'
      ? 'failed'
      : observedGeneration >= generation &&
          updatedReplicas === desired &&
          replicas === desired &&
          availableReplicas === desired
        ? 'complete'
        : 'progressing'
  return {
    state,
    generation,
    observedGeneration,
    desiredReplicas: desired,
    replicas,
    updatedReplicas,
    readyReplicas,
    availableReplicas,
    unavailableReplicas,
    ...(progressing?.reason ? { reason: progressing.reason } : {}),
    ...(progressing?.message ? { message: progressing.message } : {}),
  }
}

/** A rollout event whenever the rollout's numbers or state move (status-only heartbeats are not reported). */
export function rolloutTransition(prev: Workload, cur: Workload): EventInput | undefined {
  const a = rolloutFacts(prev)
  const b = rolloutFacts(cur)
  const same =
    a.state === b.state &&
    a.generation === b.generation &&
    a.observedGeneration === b.observedGeneration &&
    a.desiredReplicas === b.desiredReplicas &&
    a.replicas === b.replicas &&
    a.updatedReplicas === b.updatedReplicas &&
    a.readyReplicas === b.readyReplicas &&
    a.availableReplicas === b.availableReplicas &&
    a.unavailableReplicas === b.unavailableReplicas
  if (same) return undefined
  const namespace = cur.metadata.namespace ?? ''
  return {
    type: 'k8s.deployment.rollout',
    severity: b.state === 'failed' ? 'error' : 'info',
    entity: { kind: 'Deployment', name: cur.metadata.name, namespace, uid: cur.metadata.uid },
    k8s: { namespace, workload: { kind: 'Deployment', name: cur.metadata.name } },
    data: { namespace, name: cur.metadata.name, uid: cur.metadata.uid, ...b },
  }
}

function eventTime(e: CoreEvent): string | undefined {
  for (const t of [e.series?.lastObservedTime, e.lastTimestamp, e.eventTime, e.firstTimestamp, e.metadata.creationTimestamp]) {
    if (t) {
      const ms = Date.parse(t)
      if (!Number.isNaN(ms)) return nsFromMillis(ms)
    }
  }
  return undefined
}

function eventCount(e: CoreEvent): number {
  return e.series?.count ?? e.count ?? 1
}

/**
 * A core/v1 Event is reported when it appears and again each time it repeats (its count or
 * last timestamp moves); other edits to it and its deletion (TTL expiry) are not news.
 */
export function coreEventToEvents(type: Change['type'], e: CoreEvent, previous: KubeObject | undefined): EventInput[] {
  if (type === 'deleted') return []
  if (type === 'updated' && previous?.resource === 'events') {
    const p = previous.object
    if (eventCount(p) === eventCount(e) && p.lastTimestamp === e.lastTimestamp && p.series?.lastObservedTime === e.series?.lastObservedTime)
      return []
  }
  const io = e.involvedObject
  const namespace = e.metadata.namespace ?? undefined
  const ts = eventTime(e)
  const kind = io.kind ?? ''
  const ioName = io.name ?? ''
  const ioNamespace = io.namespace ?? undefined
  return [
    {
      type: 'k8s.event',
      severity: e.type === 'Warning' ? 'warning' : 'info',
      ...(ts ? { timestamp: ts } : {}),
      entity: {
        kind,
        name: ioName,
        ...(ioNamespace ? { namespace: ioNamespace } : {}),
        ...(io.uid ? { uid: io.uid } : {}),
      },
      ...(kind === 'Pod'
        ? { k8s: { ...(ioNamespace ? { namespace: ioNamespace } : {}), pod: ioName, ...(io.uid ? { podUid: io.uid } : {}) } }
        : kind === 'Node'
          ? { k8s: { node: ioName } }
          : {}),
      data: {
        ...(namespace ? { namespace } : {}),
        name: e.metadata.name,
        uid: e.metadata.uid,
        type: e.type ?? 'Normal',
        reason: e.reason ?? '',
        message: e.message ?? '',
        count: eventCount(e),
        involvedObject: {
          kind,
          name: ioName,
          ...(ioNamespace ? { namespace: ioNamespace } : {}),
          ...(io.uid ? { uid: io.uid } : {}),
          ...(io.fieldPath ? { fieldPath: io.fieldPath } : {}),
        },
        ...(e.firstTimestamp ? { firstTimestamp: e.firstTimestamp } : {}),
        ...(e.lastTimestamp ? { lastTimestamp: e.lastTimestamp } : {}),
        ...((e.source?.component ?? e.reportingComponent) ? { component: (e.source?.component ?? e.reportingComponent) as string } : {}),
        ...(e.source?.host ? { host: e.source.host } : {}),
      },
    },
  ]
}
