/**
 * The mapping from API object changes to events, on its own: objects in, events out (no API
 * server). The end-to-end semantics over real list/watch are in semantics.test.ts.
 */
import { describe, expect, it } from 'vitest'
import { changeToEvents, coreEventToEvents, nodeTransitions, podTransitions, readyStatus, rolloutTransition } from '../../../src/collectors/kubernetes/mapping.js'
import { MetadataCache } from '../../../src/collectors/kubernetes/metadata.js'
import type { ContainerStatus, CoreEvent, KubeObject, Node, Pod, Workload } from '../../../src/collectors/kubernetes/objects.js'
import type { Change } from '../../../src/collectors/kubernetes/reflector.js'
import type { EventInput } from '../../../src/events/event.js'

const meta = (name: string, extra: Record<string, unknown> = {}) => ({ name, uid: `uid-${name}`, resourceVersion: '1', ...extra })

function pod(p: { phase?: string; node?: string; namespace?: string | null; reason?: string; containers?: ContainerStatus[]; init?: ContainerStatus[]; owners?: unknown[] } = {}): Pod {
  return {
    metadata: meta('web-1', { namespace: p.namespace === undefined ? 'shop' : p.namespace, ...(p.owners ? { ownerReferences: p.owners } : {}) }),
    spec: p.node ? { nodeName: p.node } : {},
    status: {
      ...(p.phase ? { phase: p.phase } : {}),
      ...(p.reason ? { reason: p.reason } : {}),
      ...(p.containers ? { containerStatuses: p.containers } : {}),
      ...(p.init ? { initContainerStatuses: p.init } : {}),
    },
  } as Pod
}

function node(ready: string | undefined, cond: { reason?: string; message?: string } = {}): Node {
  return {
    metadata: meta('n1'),
    status: { conditions: [{ type: 'MemoryPressure', status: 'False' }, ...(ready ? [{ type: 'Ready', status: ready, ...cond }] : [])] },
  } as Node
}

const type = (es: readonly EventInput[]) => es.map((e) => e.type)
const data = (e: EventInput | undefined) => (e?.data ?? {}) as Record<string, unknown>

describe('changeToEvents: the object change', () => {
  it('a pod change carries the pod identity, labels, owners, owner chain, node, phase and Kubernetes context', () => {
    const cache = new MetadataCache()
    cache.apply('added', {
      resource: 'replicasets',
      object: { metadata: meta('web-abc', { namespace: 'shop', ownerReferences: [{ kind: 'Deployment', name: 'web', controller: true }] }) } as Workload,
    })
    const p = pod({ phase: 'Running', node: 'n1', owners: [{ kind: 'ReplicaSet', name: 'web-abc', uid: 'rs-uid', controller: true }, { kind: 'Other', name: 'x' }] })
    const [e, ...rest] = changeToEvents({ type: 'added', object: { resource: 'pods', object: { ...p, metadata: { ...p.metadata, labels: { app: 'web' } } } } }, cache)
    expect(rest).toStrictEqual([])
    expect(e).toStrictEqual({
      type: 'k8s.pod.added',
      severity: 'info',
      entity: { kind: 'Pod', name: 'web-1', namespace: 'shop', uid: 'uid-web-1' },
      data: {
        kind: 'Pod',
        namespace: 'shop',
        name: 'web-1',
        uid: 'uid-web-1',
        resourceVersion: '1',
        labels: { app: 'web' },
        ownerReferences: [
          { kind: 'ReplicaSet', name: 'web-abc', uid: 'rs-uid', controller: true },
          { kind: 'Other', name: 'x', controller: false },
        ],
        ownerChain: [
          { kind: 'ReplicaSet', name: 'web-abc' },
          { kind: 'Deployment', name: 'web' },
        ],
        nodeName: 'n1',
        phase: 'Running',
      },
      k8s: { namespace: 'shop', pod: 'web-1', podUid: 'uid-web-1', node: 'n1', workload: { kind: 'Deployment', name: 'web' } },
    })
  })

  it('leaves out what the object does not have; cluster-scoped objects have no namespace', () => {
    const [e] = changeToEvents({ type: 'deleted', object: { resource: 'pods', object: pod({ namespace: null }) } }, new MetadataCache())
    expect(e).toStrictEqual({
      type: 'k8s.pod.deleted',
      severity: 'info',
      entity: { kind: 'Pod', name: 'web-1', uid: 'uid-web-1' },
      data: { kind: 'Pod', name: 'web-1', uid: 'uid-web-1', resourceVersion: '1', labels: {}, ownerReferences: [], ownerChain: [] },
      k8s: { pod: 'web-1', podUid: 'uid-web-1' },
    })
    const [svc] = changeToEvents({ type: 'added', object: { resource: 'services', object: { metadata: meta('api', { namespace: 'shop' }) } } }, new MetadataCache())
    expect(svc).toStrictEqual({
      type: 'k8s.service.added',
      severity: 'info',
      entity: { kind: 'Service', name: 'api', namespace: 'shop', uid: 'uid-api' },
      data: { kind: 'Service', namespace: 'shop', name: 'api', uid: 'uid-api', resourceVersion: '1', labels: {}, ownerReferences: [], ownerChain: [] },
    })
  })

  it('a node change names the node; severity warning while it is not Ready (and not deleted)', () => {
    const cache = new MetadataCache()
    const change = (t: Change['type'], ready: string | undefined) => changeToEvents({ type: t, object: { resource: 'nodes', object: node(ready) } }, cache)[0]
    expect(change('added', 'True')).toMatchObject({ type: 'k8s.node.added', severity: 'info', data: { nodeName: 'n1', kind: 'Node' } })
    expect(change('added', 'False')?.severity).toBe('warning')
    expect(change('updated', undefined)?.severity).toBe('warning')
    expect(change('deleted', 'False')?.severity).toBe('info')
    expect(change('added', 'True')).not.toHaveProperty('k8s')
  })

  it('a failed pod is a warning; an object with spec.nodeName (not a pod) names its node; an event object has none', () => {
    const cache = new MetadataCache()
    expect(changeToEvents({ type: 'updated', object: { resource: 'pods', object: pod({ phase: 'Failed' }) } }, cache)[0]?.severity).toBe('warning')
    expect(changeToEvents({ type: 'updated', object: { resource: 'pods', object: pod({ phase: 'Succeeded' }) } }, cache)[0]?.severity).toBe('info')
    const generic = (spec: unknown): KubeObject => ({ resource: 'endpointslices', object: { metadata: meta('es'), spec } as never })
    expect(data(changeToEvents({ type: 'added', object: generic({ nodeName: 'n7' }) }, cache)[0])).toMatchObject({ nodeName: 'n7' })
    expect(data(changeToEvents({ type: 'added', object: generic({ nodeName: null }) }, cache)[0])).not.toHaveProperty('nodeName')
    expect(data(changeToEvents({ type: 'added', object: generic(null) }, cache)[0])).not.toHaveProperty('nodeName')
    expect(data(changeToEvents({ type: 'added', object: generic({}) }, cache)[0])).not.toHaveProperty('nodeName')
    expect(data(changeToEvents({ type: 'added', object: { resource: 'namespaces', object: { metadata: meta('ns') } } }, cache)[0])).not.toHaveProperty('nodeName')
  })

  it('derived events follow an update only, and only of the same resource', () => {
    const cache = new MetadataCache()
    const before = pod({ phase: 'Pending' })
    const after = pod({ phase: 'Running' })
    expect(type(changeToEvents({ type: 'updated', object: { resource: 'pods', object: after }, previous: { resource: 'pods', object: before } }, cache))).toStrictEqual([
      'k8s.pod.updated',
      'k8s.pod.phase_changed',
    ])
    expect(type(changeToEvents({ type: 'added', object: { resource: 'pods', object: after }, previous: { resource: 'pods', object: before } }, cache))).toStrictEqual(['k8s.pod.added'])
    expect(type(changeToEvents({ type: 'updated', object: { resource: 'pods', object: after } }, cache))).toStrictEqual(['k8s.pod.updated'])
    expect(type(changeToEvents({ type: 'updated', object: { resource: 'pods', object: after }, previous: { resource: 'nodes', object: node('True') } }, cache))).toStrictEqual([
      'k8s.pod.updated',
    ])
    expect(
      type(changeToEvents({ type: 'updated', object: { resource: 'nodes', object: node('False') }, previous: { resource: 'nodes', object: node('True') } }, cache)),
    ).toStrictEqual(['k8s.node.updated', 'k8s.node.not_ready'])
    expect(type(changeToEvents({ type: 'updated', object: { resource: 'nodes', object: node('False') }, previous: { resource: 'pods', object: before } }, cache))).toStrictEqual([
      'k8s.node.updated',
    ])
    const dep = (replicas: number): KubeObject => ({ resource: 'deployments', object: { metadata: meta('web', { namespace: 'shop' }), spec: { replicas } } as Workload })
    expect(type(changeToEvents({ type: 'updated', object: dep(3), previous: dep(2) }, cache))).toStrictEqual(['k8s.deployment.updated', 'k8s.deployment.rollout'])
    expect(type(changeToEvents({ type: 'updated', object: dep(3), previous: dep(3) }, cache))).toStrictEqual(['k8s.deployment.updated'])
    expect(type(changeToEvents({ type: 'updated', object: dep(3), previous: { resource: 'pods', object: before } }, cache))).toStrictEqual(['k8s.deployment.updated'])
  })
})

describe('objects with parts missing', () => {
  const bare = (): Pod => ({ metadata: meta('bare', { namespace: 'shop' }) }) as Pod

  it('a pod without spec or status: no node, no phase, no transitions', () => {
    const [e] = changeToEvents({ type: 'added', object: { resource: 'pods', object: bare() } }, new MetadataCache())
    expect(e?.severity).toBe('info')
    expect(data(e)).not.toHaveProperty('nodeName')
    expect(data(e)).not.toHaveProperty('phase')
    expect(podTransitions(bare(), bare())).toStrictEqual([])
    expect(podTransitions(bare(), pod({ phase: 'Running', containers: [{ name: 'app', restartCount: 1 } as ContainerStatus] })).map((x) => x.type)).toStrictEqual([
      'k8s.pod.container_restarted',
    ])
    expect(podTransitions(pod({ phase: 'Running' }), bare())).toStrictEqual([])
    const noSpec = { metadata: meta('bare', { namespace: 'shop' }), status: { containerStatuses: [{ name: 'app', restartCount: 1 }] } } as Pod
    const [restarted] = podTransitions(bare(), noSpec)
    expect(restarted?.k8s).toStrictEqual({ namespace: 'shop', pod: 'bare', podUid: 'uid-bare', container: 'app' })
  })

  it('a node without status or conditions is Unknown', () => {
    const noStatus = { metadata: meta('n1') } as Node
    const noConditions = { metadata: meta('n1'), status: {} } as Node
    expect(readyStatus(noConditions)).toBe('Unknown')
    expect(data(nodeTransitions(node('True'), noStatus)[0])).toMatchObject({ status: 'Unknown', previousStatus: 'True' })
    expect(data(nodeTransitions(node('True'), noConditions)[0])).toMatchObject({ status: 'Unknown', previousStatus: 'True' })
  })

  it('a workload without spec wants one replica', () => {
    const w = { metadata: meta('w', { namespace: 'shop' }), status: { replicas: 1 } } as Workload
    expect(data(rolloutTransition({ metadata: meta('w', { namespace: 'shop' }) } as Workload, w))).toMatchObject({ desiredReplicas: 1, replicas: 1 })
  })
})

describe('podTransitions', () => {
  const cs = (c: Partial<ContainerStatus> & { name?: string }): ContainerStatus => ({ name: 'app', ...c }) as ContainerStatus

  it('a phase change: error into Failed, warning into Unknown, info otherwise; the reason when given; the pod context', () => {
    const [failed] = podTransitions(pod({ phase: 'Running', node: 'n1' }), pod({ phase: 'Failed', node: 'n1', reason: 'Evicted' }))
    expect(failed).toStrictEqual({
      type: 'k8s.pod.phase_changed',
      severity: 'error',
      entity: { kind: 'Pod', name: 'web-1', namespace: 'shop', uid: 'uid-web-1' },
      k8s: { namespace: 'shop', pod: 'web-1', podUid: 'uid-web-1', node: 'n1' },
      data: { namespace: 'shop', name: 'web-1', uid: 'uid-web-1', node: 'n1', from: 'Running', to: 'Failed', reason: 'Evicted' },
    })
    expect(podTransitions(pod({ phase: 'Running' }), pod({ phase: 'Unknown' }))[0]?.severity).toBe('warning')
    const running = podTransitions(pod({ phase: 'Pending', namespace: null }), pod({ phase: 'Running', namespace: null }))[0]
    expect(running).toMatchObject({ severity: 'info', entity: { kind: 'Pod' }, k8s: { pod: 'web-1' } })
    expect(running?.entity).not.toHaveProperty('namespace')
    expect(running?.k8s).not.toHaveProperty('namespace')
    expect(running?.k8s).not.toHaveProperty('node')
    expect(data(running)).toStrictEqual({ namespace: '', name: 'web-1', uid: 'uid-web-1', from: 'Pending', to: 'Running' })
    expect(podTransitions(pod({ phase: 'Running' }), pod({ phase: 'Running' }))).toStrictEqual([])
    expect(podTransitions(pod({}), pod({ phase: 'Running' }))).toStrictEqual([])
    expect(podTransitions(pod({ phase: 'Running' }), pod({}))).toStrictEqual([])
  })

  it('a restart counts the containers and init containers, with the last termination', () => {
    const before = pod({ containers: [cs({ restartCount: 1 })], init: [cs({ name: 'init', restartCount: 0 })] })
    const after = pod({
      containers: [cs({ restartCount: 3, containerID: 'containerd://abc', lastState: { terminated: { reason: 'Error', exitCode: 2 } } })],
      init: [cs({ name: 'init', restartCount: 1, lastState: { terminated: { exitCode: 0 } } })],
    })
    const events = podTransitions(before, after)
    expect(type(events)).toStrictEqual(['k8s.pod.container_restarted', 'k8s.pod.container_restarted'])
    expect(events[0]).toMatchObject({ severity: 'warning', k8s: { container: 'init' } })
    expect(data(events[0])).toStrictEqual({ namespace: 'shop', name: 'web-1', uid: 'uid-web-1', container: 'init', restartCount: 1, previousRestartCount: 0, exitCode: 0 })
    expect(events[1]?.k8s).toStrictEqual({ namespace: 'shop', pod: 'web-1', podUid: 'uid-web-1', container: 'app', containerId: 'containerd://abc' })
    expect(data(events[1])).toStrictEqual({
      namespace: 'shop',
      name: 'web-1',
      uid: 'uid-web-1',
      container: 'app',
      restartCount: 3,
      previousRestartCount: 1,
      lastTerminationReason: 'Error',
      exitCode: 2,
    })
    // A container new in this version counts from 0; a count that did not rise is no restart.
    expect(type(podTransitions(pod({}), pod({ containers: [cs({ restartCount: 1 })] })))).toStrictEqual(['k8s.pod.container_restarted'])
    expect(podTransitions(pod({ containers: [cs({ restartCount: 2 })] }), pod({ containers: [cs({ restartCount: 2 })] }))).toStrictEqual([])
    expect(podTransitions(pod({ containers: [cs({ restartCount: 2 })] }), pod({ containers: [cs({})] }))).toStrictEqual([])
  })

  it('an OOM kill is reported once: from the current state, or from the last state at the restart, stamped with its finish time', () => {
    const oom = { reason: 'OOMKilled', exitCode: 137, containerID: 'containerd://c1', startedAt: '2026-01-01T00:00:00Z', finishedAt: '2026-01-01T00:00:05Z' }
    const running = pod({ containers: [cs({ restartCount: 0, state: { running: {} } })] })
    const killed = pod({ containers: [cs({ restartCount: 0, state: { terminated: oom } })] })
    const [fromState] = podTransitions(running, killed)
    expect(fromState).toMatchObject({ type: 'k8s.pod.oom_killed', severity: 'error', timestamp: String(Date.parse(oom.finishedAt) * 1_000_000) })
    expect(data(fromState)).toStrictEqual({ namespace: 'shop', name: 'web-1', uid: 'uid-web-1', container: 'app', restartCount: 0, exitCode: 137, finishedAt: oom.finishedAt })
    // Then restarted: the same termination moves to lastState; not reported again.
    const restarted = pod({ containers: [cs({ restartCount: 1, state: { running: {} }, lastState: { terminated: oom } })] })
    expect(type(podTransitions(killed, restarted))).toStrictEqual(['k8s.pod.container_restarted'])
    // Missed the terminated state: the restart brings it.
    expect(type(podTransitions(running, restarted))).toStrictEqual(['k8s.pod.container_restarted', 'k8s.pod.oom_killed'])
    // Terminated and already restarted in one step, the same termination in both: once.
    const both = pod({ containers: [cs({ restartCount: 1, state: { terminated: oom }, lastState: { terminated: oom } })] })
    expect(type(podTransitions(running, both))).toStrictEqual(['k8s.pod.oom_killed', 'k8s.pod.container_restarted'])
    // Unchanged terminated state: nothing new.
    expect(podTransitions(killed, killed)).toStrictEqual([])
    // Not an OOM: no oom event.
    const errored = pod({ containers: [cs({ restartCount: 1, lastState: { terminated: { ...oom, reason: 'Error' } }, state: { terminated: { ...oom, reason: 'Error' } } })] })
    expect(type(podTransitions(running, errored))).toStrictEqual(['k8s.pod.container_restarted'])
    // Without times or exit code: no timestamp, no exitCode, no finishedAt.
    const bare = podTransitions(running, pod({ containers: [cs({ state: { terminated: { reason: 'OOMKilled', finishedAt: 'not a date' } } })] }))[0]
    expect(bare).not.toHaveProperty('timestamp')
    expect(data(bare)).toStrictEqual({ namespace: 'shop', name: 'web-1', uid: 'uid-web-1', container: 'app', restartCount: 0, finishedAt: 'not a date' })
    const noTimes = podTransitions(running, pod({ containers: [cs({ state: { terminated: { reason: 'OOMKilled' } } })] }))[0]
    expect(noTimes).not.toHaveProperty('timestamp')
    expect(data(noTimes)).not.toHaveProperty('finishedAt')
  })

  it('an OOM kill names the container that was killed, not its successor', () => {
    const running = pod({ containers: [cs({ restartCount: 0, containerID: 'containerd://old' })] })
    const oomed = (termId: string | undefined) =>
      pod({ containers: [cs({ restartCount: 1, containerID: 'containerd://new', lastState: { terminated: { reason: 'OOMKilled', finishedAt: 'f', ...(termId ? { containerID: termId } : {}) } } })] })
    const k8sOf = (p: Pod) => podTransitions(running, p).find((e) => e.type === 'k8s.pod.oom_killed')?.k8s
    expect(k8sOf(oomed('containerd://old'))).toStrictEqual({ namespace: 'shop', pod: 'web-1', podUid: 'uid-web-1', container: 'app', containerId: 'containerd://old' })
    expect(k8sOf(oomed('containerd://new'))).toMatchObject({ containerId: 'containerd://new' })
    expect(k8sOf(oomed(undefined))).toMatchObject({ containerId: 'containerd://new' })
  })

  it('terminations are told apart by container id, start and finish time', () => {
    const t = { reason: 'OOMKilled', containerID: 'c1', startedAt: 's1', finishedAt: 'f1' }
    const with_ = (term: typeof t) => pod({ containers: [cs({ state: { terminated: term } })] })
    for (const changed of [{ ...t, containerID: 'c2' }, { ...t, startedAt: 's2' }, { ...t, finishedAt: 'f2' }]) {
      expect(type(podTransitions(with_(t), with_(changed)))).toStrictEqual(['k8s.pod.oom_killed'])
    }
    const restartedWith = (last: typeof t) => pod({ containers: [cs({ restartCount: 1, lastState: { terminated: last } })] })
    expect(type(podTransitions(with_(t), restartedWith(t)))).toStrictEqual(['k8s.pod.container_restarted'])
    expect(type(podTransitions(with_(t), restartedWith({ ...t, finishedAt: 'f9' })))).toStrictEqual(['k8s.pod.container_restarted', 'k8s.pod.oom_killed'])
  })

  it('crash-loop and image-pull back-offs are reported when they begin', () => {
    const waiting = (reason: string, extra: Partial<ContainerStatus> = {}) =>
      pod({ containers: [cs({ restartCount: 4, image: 'nginx:1', state: { waiting: { reason, message: 'back-off 40s' } }, ...extra })] })
    const [crash] = podTransitions(pod({}), waiting('CrashLoopBackOff', { restartCount: 0 }))
    expect(crash).toMatchObject({ type: 'k8s.pod.crash_loop_backoff', severity: 'error' })
    expect(data(crash)).toStrictEqual({ namespace: 'shop', name: 'web-1', uid: 'uid-web-1', container: 'app', reason: 'CrashLoopBackOff', message: 'back-off 40s', restartCount: 0, image: 'nginx:1' })
    expect(podTransitions(waiting('CrashLoopBackOff'), waiting('CrashLoopBackOff'))).toStrictEqual([])
    for (const reason of ['ImagePullBackOff', 'ErrImagePull', 'ErrImageNeverPull', 'InvalidImageName']) {
      const [pull] = podTransitions(pod({}), waiting(reason, { restartCount: 0 }))
      expect(pull).toMatchObject({ type: 'k8s.pod.image_pull_backoff', severity: 'warning', data: { reason } })
    }
    // From one pull failure to another: still the same back-off.
    expect(podTransitions(waiting('ErrImagePull'), waiting('ImagePullBackOff'))).toStrictEqual([])
    // From a crash loop into a pull failure: news.
    expect(type(podTransitions(waiting('CrashLoopBackOff'), waiting('ErrImagePull')))).toStrictEqual(['k8s.pod.image_pull_backoff'])
    expect(podTransitions(pod({}), waiting('ContainerCreating', { restartCount: 0 }))).toStrictEqual([])
    const plain = podTransitions(pod({}), pod({ containers: [cs({ state: { waiting: { reason: 'CrashLoopBackOff' } } })] }))[0]
    expect(data(plain)).toStrictEqual({ namespace: 'shop', name: 'web-1', uid: 'uid-web-1', container: 'app', reason: 'CrashLoopBackOff', restartCount: 0 })
  })
})

describe('nodes', () => {
  it('readyStatus reads the Ready condition, Unknown without one', () => {
    expect(readyStatus(node('True'))).toBe('True')
    expect(readyStatus(node('False'))).toBe('False')
    expect(readyStatus(node(undefined))).toBe('Unknown')
    expect(readyStatus({ metadata: meta('n') } as Node)).toBe('Unknown')
  })

  it('a change of the Ready status: ready at info, not ready at error, with reason and message', () => {
    expect(nodeTransitions(node('True'), node('True'))).toStrictEqual([])
    expect(nodeTransitions(node('False', { reason: 'KubeletNotReady', message: 'PLEG' }), node('True'))).toStrictEqual([
      {
        type: 'k8s.node.ready',
        severity: 'info',
        entity: { kind: 'Node', name: 'n1', uid: 'uid-n1' },
        k8s: { node: 'n1' },
        data: { name: 'n1', uid: 'uid-n1', status: 'True', previousStatus: 'False' },
      },
    ])
    const [down] = nodeTransitions(node('True'), node('Unknown', { reason: 'NodeStatusUnknown', message: 'Kubelet stopped posting' }))
    expect(down).toMatchObject({ type: 'k8s.node.not_ready', severity: 'error' })
    expect(data(down)).toStrictEqual({ name: 'n1', uid: 'uid-n1', status: 'Unknown', previousStatus: 'True', reason: 'NodeStatusUnknown', message: 'Kubelet stopped posting' })
    expect(data(nodeTransitions(node('True'), node(undefined))[0])).toStrictEqual({ name: 'n1', uid: 'uid-n1', status: 'Unknown', previousStatus: 'True' })
  })
})

describe('rolloutTransition', () => {
  type Status = NonNullable<Workload['status']>
  const dep = (replicas: number | undefined, status: Status, generation?: number): Workload =>
    ({ metadata: meta('web', { namespace: 'shop', ...(generation === undefined ? {} : { generation }) }), spec: replicas === undefined ? {} : { replicas }, status }) as Workload
  const done = (n: number, gen = 2): Status => ({ observedGeneration: gen, replicas: n, updatedReplicas: n, readyReplicas: n, availableReplicas: n, unavailableReplicas: 0 })

  it('reports the state and every number when they move', () => {
    const e = rolloutTransition(dep(3, { ...done(3), updatedReplicas: 1, availableReplicas: 2, unavailableReplicas: 1 }, 2), dep(3, done(3), 2))
    expect(e).toStrictEqual({
      type: 'k8s.deployment.rollout',
      severity: 'info',
      entity: { kind: 'Deployment', name: 'web', namespace: 'shop', uid: 'uid-web' },
      k8s: { namespace: 'shop', workload: { kind: 'Deployment', name: 'web' } },
      data: {
        namespace: 'shop',
        name: 'web',
        uid: 'uid-web',
        state: 'complete',
        generation: 2,
        observedGeneration: 2,
        desiredReplicas: 3,
        replicas: 3,
        updatedReplicas: 3,
        readyReplicas: 3,
        availableReplicas: 3,
        unavailableReplicas: 0,
      },
    })
  })

  it('any one number moving is news; nothing moving is not', () => {
    const base = dep(3, done(3), 2)
    expect(rolloutTransition(base, dep(3, done(3), 2))).toBeUndefined()
    const variants: Workload[] = [
      dep(3, done(3), 3),
      dep(3, { ...done(3), observedGeneration: 1 }, 2),
      dep(4, done(3), 2),
      dep(3, { ...done(3), replicas: 4 }, 2),
      dep(3, { ...done(3), updatedReplicas: 2 }, 2),
      dep(3, { ...done(3), readyReplicas: 2 }, 2),
      dep(3, { ...done(3), availableReplicas: 2 }, 2),
      dep(3, { ...done(3), unavailableReplicas: 1 }, 2),
    ]
    for (const v of variants) expect(rolloutTransition(base, v)?.type).toBe('k8s.deployment.rollout')
    // Each number moving alone, the state staying the same.
    expect(rolloutTransition(base, dep(3, done(3), 1))).toMatchObject({ data: { state: 'complete', generation: 1 } })
    expect(rolloutTransition(base, dep(3, done(3, 3), 2))).toMatchObject({ data: { state: 'complete', observedGeneration: 3 } })
    const behind = dep(3, { ...done(3), updatedReplicas: 1 }, 2)
    for (const moved of [{ replicas: 4 }, { availableReplicas: 1 }]) {
      expect(rolloutTransition(behind, dep(3, { ...done(3), updatedReplicas: 1, ...moved }, 2))).toMatchObject({ data: { state: 'progressing', ...moved } })
    }
    const unavailable = dep(3, { ...done(3), availableReplicas: 1 }, 2)
    expect(rolloutTransition(unavailable, dep(3, { ...done(3), availableReplicas: 1, updatedReplicas: 2 }, 2))).toMatchObject({ data: { state: 'progressing', updatedReplicas: 2 } })
    // Only readyReplicas or unavailableReplicas moved: the state stays complete.
    expect(data(rolloutTransition(base, variants[5] as Workload))).toMatchObject({ state: 'complete', readyReplicas: 2 })
    expect(data(rolloutTransition(base, variants[7] as Workload))).toMatchObject({ state: 'complete', unavailableReplicas: 1 })
  })

  it('complete only when the generation is observed and all replicas are updated and available', () => {
    const state = (w: Workload) => data(rolloutTransition(dep(9, {}, 1), w)).state
    expect(state(dep(3, done(3), 2))).toBe('complete')
    expect(state(dep(3, done(3, 3), 2))).toBe('complete')
    expect(state(dep(3, done(3, 1), 2))).toBe('progressing')
    expect(state(dep(3, { ...done(3), updatedReplicas: 2 }, 2))).toBe('progressing')
    expect(state(dep(3, { ...done(3), replicas: 4 }, 2))).toBe('progressing')
    expect(state(dep(3, { ...done(3), availableReplicas: 2 }, 2))).toBe('progressing')
    // Defaults: one replica, generation 0.
    expect(state(dep(undefined, done(1, 0)))).toBe('complete')
    expect(data(rolloutTransition(dep(9, {}, 1), dep(undefined, {})))).toMatchObject({
      state: 'progressing',
      generation: 0,
      observedGeneration: 0,
      desiredReplicas: 1,
      replicas: 0,
      updatedReplicas: 0,
      readyReplicas: 0,
      availableReplicas: 0,
      unavailableReplicas: 0,
    })
  })

  it('a progress deadline exceeded is a failed rollout, at error, with the condition reason and message', () => {
    const stuck = dep(3, { ...done(3), conditions: [{ type: 'Available', status: 'True', reason: 'MinimumReplicasAvailable' }, { type: 'Progressing', status: 'False', reason: 'ProgressDeadlineExceeded', message: 'took too long' }] }, 2)
    const e = rolloutTransition(dep(3, done(3), 2), stuck)
    expect(e?.severity).toBe('error')
    expect(data(e)).toMatchObject({ state: 'failed', reason: 'ProgressDeadlineExceeded', message: 'took too long' })
    const progressing = dep(3, { ...done(3), updatedReplicas: 1, conditions: [{ type: 'Progressing', status: 'True', reason: 'ReplicaSetUpdated' }] }, 2)
    const p = data(rolloutTransition(dep(3, done(3), 2), progressing))
    expect(p).toMatchObject({ state: 'progressing', reason: 'ReplicaSetUpdated' })
    expect(p).not.toHaveProperty('message')
    expect(data(rolloutTransition(dep(3, done(3), 2), dep(3, { ...done(3), updatedReplicas: 1 }, 2)))).not.toHaveProperty('reason')
  })

  it('a workload without a namespace gets an empty one', () => {
    const w = (n: number) => ({ metadata: meta('w'), spec: { replicas: n } }) as Workload
    expect(rolloutTransition(w(1), w(2))).toMatchObject({ entity: { namespace: '' }, k8s: { namespace: '' }, data: { namespace: '' } })
  })
})

describe('core events', () => {
  const ev = (e: Partial<CoreEvent> = {}): CoreEvent =>
    ({
      metadata: meta('web-1.17a', { namespace: 'shop', creationTimestamp: '2026-01-01T00:00:00Z' }),
      involvedObject: { kind: 'Pod', name: 'web-1', namespace: 'shop', uid: 'pod-uid', fieldPath: 'spec.containers{app}' },
      reason: 'BackOff',
      message: 'Back-off restarting failed container',
      type: 'Warning',
      count: 3,
      firstTimestamp: '2026-01-01T00:00:01Z',
      lastTimestamp: '2026-01-01T00:00:09Z',
      source: { component: 'kubelet', host: 'n1' },
      ...e,
    }) as CoreEvent
  const ns = (iso: string) => String(Date.parse(iso) * 1_000_000)

  it('an event about a pod: its fields, the pod context, stamped with when it last happened', () => {
    expect(coreEventToEvents('added', ev(), undefined)).toStrictEqual([
      {
        type: 'k8s.event',
        severity: 'warning',
        timestamp: ns('2026-01-01T00:00:09Z'),
        entity: { kind: 'Pod', name: 'web-1', namespace: 'shop', uid: 'pod-uid' },
        k8s: { namespace: 'shop', pod: 'web-1', podUid: 'pod-uid' },
        data: {
          namespace: 'shop',
          name: 'web-1.17a',
          uid: 'uid-web-1.17a',
          type: 'Warning',
          reason: 'BackOff',
          message: 'Back-off restarting failed container',
          count: 3,
          involvedObject: { kind: 'Pod', name: 'web-1', namespace: 'shop', uid: 'pod-uid', fieldPath: 'spec.containers{app}' },
          firstTimestamp: '2026-01-01T00:00:01Z',
          lastTimestamp: '2026-01-01T00:00:09Z',
          component: 'kubelet',
          host: 'n1',
        },
      },
    ])
  })

  it('about a node, about anything else, and with nothing optional', () => {
    const [n] = coreEventToEvents('added', ev({ involvedObject: { kind: 'Node', name: 'n1' }, type: 'Normal' }), undefined)
    expect(n).toMatchObject({ severity: 'info', entity: { kind: 'Node', name: 'n1' }, k8s: { node: 'n1' } })
    expect(n?.entity).toStrictEqual({ kind: 'Node', name: 'n1' })
    const [d] = coreEventToEvents('added', ev({ involvedObject: { kind: 'Deployment', name: 'web', namespace: 'shop' } }), undefined)
    expect(d).not.toHaveProperty('k8s')
    const bare = { metadata: meta('e'), involvedObject: {} } as CoreEvent
    expect(coreEventToEvents('added', bare, undefined)).toStrictEqual([
      {
        type: 'k8s.event',
        severity: 'info',
        entity: { kind: '', name: '' },
        data: { name: 'e', uid: 'uid-e', type: 'Normal', reason: '', message: '', count: 1, involvedObject: { kind: '', name: '' } },
      },
    ])
    const [pod] = coreEventToEvents('added', { ...bare, involvedObject: { kind: 'Pod', name: 'p' } }, undefined)
    expect(pod?.k8s).toStrictEqual({ pod: 'p' })
    expect(data(coreEventToEvents('added', { ...bare, reportingComponent: 'scheduler' }, undefined)[0])).toMatchObject({ component: 'scheduler' })
  })

  it('the time: series last observed, then last timestamp, event time, first timestamp, creation; unparsable ones skipped', () => {
    const t = (e: Partial<CoreEvent>) => coreEventToEvents('added', { metadata: meta('e'), involvedObject: {}, ...e } as CoreEvent, undefined)[0]?.timestamp
    const all = {
      series: { lastObservedTime: '2026-01-05T00:00:00Z', count: 2 },
      lastTimestamp: '2026-01-04T00:00:00Z',
      eventTime: '2026-01-03T00:00:00Z',
      firstTimestamp: '2026-01-02T00:00:00Z',
      metadata: meta('e', { creationTimestamp: '2026-01-01T00:00:00Z' }),
    }
    expect(t(all)).toBe(ns('2026-01-05T00:00:00Z'))
    expect(t({ ...all, series: { lastObservedTime: 'garbage' } })).toBe(ns('2026-01-04T00:00:00Z'))
    expect(t({ ...all, series: null, lastTimestamp: null })).toBe(ns('2026-01-03T00:00:00Z'))
    expect(t({ ...all, series: null, lastTimestamp: null, eventTime: null })).toBe(ns('2026-01-02T00:00:00Z'))
    expect(t({ metadata: all.metadata })).toBe(ns('2026-01-01T00:00:00Z'))
    expect(t({})).toBeUndefined()
  })

  it('the count: the series count, else the count, else 1', () => {
    const c = (e: Partial<CoreEvent>) => data(coreEventToEvents('added', ev(e), undefined)[0]).count
    expect(c({ series: { count: 7 }, count: 3 })).toBe(7)
    expect(c({ series: {}, count: 3 })).toBe(3)
    expect(c({ count: null })).toBe(1)
  })

  it('reported when it appears and each time it repeats; other edits and deletion are not news', () => {
    const first = ev()
    expect(coreEventToEvents('deleted', first, { resource: 'events', object: first })).toStrictEqual([])
    expect(coreEventToEvents('updated', { ...first, message: 'edited' }, { resource: 'events', object: first })).toStrictEqual([])
    expect(coreEventToEvents('updated', ev({ count: 4 }), { resource: 'events', object: first })).toHaveLength(1)
    expect(coreEventToEvents('updated', ev({ lastTimestamp: '2026-01-01T00:01:00Z' }), { resource: 'events', object: first })).toHaveLength(1)
    const series = ev({ series: { count: 2, lastObservedTime: '2026-01-01T00:00:10Z' } })
    expect(coreEventToEvents('updated', ev({ series: { count: 2, lastObservedTime: '2026-01-01T00:00:20Z' } }), { resource: 'events', object: series })).toHaveLength(1)
    expect(coreEventToEvents('updated', series, { resource: 'events', object: series })).toStrictEqual([])
    // A new event is news even when a version of it was known.
    expect(coreEventToEvents('added', first, { resource: 'events', object: first })).toHaveLength(1)
    // No previous version to compare with: reported.
    expect(coreEventToEvents('updated', first, undefined)).toHaveLength(1)
    expect(coreEventToEvents('updated', first, { resource: 'pods', object: pod() })).toHaveLength(1)
    // Through changeToEvents: no object-change event for events.
    expect(type(changeToEvents({ type: 'added', object: { resource: 'events', object: first } }, new MetadataCache()))).toStrictEqual(['k8s.event'])
  })
})
