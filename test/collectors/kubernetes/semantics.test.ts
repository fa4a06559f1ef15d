import { afterEach, describe, expect, it } from 'vitest'
import { validateEvent } from '../../../src/events/event.js'
import { stampEvent } from '../../../src/events/event.js'
import type { JsonObject } from './fake-apiserver.js'
import { createHarness, fixture, fresh, type Harness, waitFor } from './harness.js'

let h: Harness | undefined
afterEach(async () => {
  await h?.close()
  h = undefined
})

type Status = { containerStatuses: JsonObject[]; phase?: string }
const statusOf = (o: JsonObject) => o.status as Status
const container = (o: JsonObject, name: string) => statusOf(o).containerStatuses.find((c) => c.name === name) as JsonObject

describe('kubernetes collector: derived events users care about', () => {
  it('reports pod phase changes, restarts, OOM kills and back-off states once each', async () => {
    h = await createHarness()
    const c = h
    const s = h.server
    const pending = fresh('pod', 'web-1', 'shop')
    statusOf(pending).phase = 'Pending'
    s.create('pods', pending)
    await h.startCollector({ resources: ['pods'] })
    await waitFor('added', () => c.of('k8s.pod.added').length === 1)

    s.update('pods', 'shop', 'web-1', (o) => {
      statusOf(o).phase = 'Running'
    })
    await waitFor('phase change', () => c.of('k8s.pod.phase_changed').length === 1)
    expect(c.of('k8s.pod.phase_changed')[0]).toMatchObject({
      severity: 'info',
      data: { namespace: 'shop', name: 'web-1', from: 'Pending', to: 'Running', node: 'worker-1' },
      k8s: { namespace: 'shop', pod: 'web-1' },
    })

    // The kubelet records an OOM kill as the terminated last state of a restarted container.
    s.update('pods', 'shop', 'web-1', (o) => {
      const n = container(o, 'nginx')
      n.restartCount = 1
      n.lastState = {
        terminated: {
          containerID: 'containerd://dead01',
          exitCode: 137,
          reason: 'OOMKilled',
          startedAt: '2024-05-14T09:12:34Z',
          finishedAt: '2024-05-14T09:20:00Z',
        },
      }
      n.state = { waiting: { reason: 'CrashLoopBackOff', message: 'back-off 10s restarting failed container=nginx' } }
    })
    await waitFor('restart, OOM and crash loop', () => c.of('k8s.pod.crash_loop_backoff').length === 1)
    expect(c.of('k8s.pod.container_restarted')).toHaveLength(1)
    expect(c.of('k8s.pod.container_restarted')[0]).toMatchObject({
      severity: 'warning',
      data: { container: 'nginx', restartCount: 1, previousRestartCount: 0, lastTerminationReason: 'OOMKilled', exitCode: 137 },
    })
    expect(c.of('k8s.pod.oom_killed')).toHaveLength(1)
    // It names the killed container (the termination's id), not the successor the status now names.
    expect(c.of('k8s.pod.oom_killed')[0]).toMatchObject({ severity: 'error', data: { container: 'nginx', exitCode: 137 }, k8s: { container: 'nginx', containerId: 'containerd://dead01' } })
    expect(c.of('k8s.pod.crash_loop_backoff')[0]).toMatchObject({ severity: 'error', data: { reason: 'CrashLoopBackOff' } })

    // Unrelated edits to the same pod repeat none of them.
    s.update('pods', 'shop', 'web-1', (o) => {
      ;(o.metadata as JsonObject).labels = { app: 'web', touched: 'yes' }
    })
    await waitFor('label update', () => c.of('k8s.pod.updated').length === 3)
    expect(c.of('k8s.pod.oom_killed')).toHaveLength(1)
    expect(c.of('k8s.pod.container_restarted')).toHaveLength(1)
    expect(c.of('k8s.pod.crash_loop_backoff')).toHaveLength(1)

    // An OOM kill seen first in the current state and then as lastState is one kill.
    s.update('pods', 'shop', 'web-1', (o) => {
      const m = container(o, 'metrics')
      m.state = { terminated: { containerID: 'containerd://dead02', exitCode: 137, reason: 'OOMKilled', finishedAt: '2024-05-14T09:21:00Z' } }
    })
    await waitFor('second OOM', () => c.of('k8s.pod.oom_killed').length === 2)
    s.update('pods', 'shop', 'web-1', (o) => {
      const m = container(o, 'metrics')
      m.lastState = m.state
      m.state = { running: { startedAt: '2024-05-14T09:21:05Z' } }
      m.restartCount = 1
    })
    await waitFor('metrics restart', () => c.of('k8s.pod.container_restarted').length === 2)
    expect(c.of('k8s.pod.oom_killed')).toHaveLength(2)

    s.update('pods', 'shop', 'web-1', (o) => {
      container(o, 'metrics').state = { waiting: { reason: 'ErrImagePull', message: 'pull access denied' } }
    })
    s.update('pods', 'shop', 'web-1', (o) => {
      container(o, 'metrics').state = { waiting: { reason: 'ImagePullBackOff', message: 'Back-off pulling image' } }
    })
    await waitFor('both pull updates', () => c.of('k8s.pod.updated').length === 7)
    // ErrImagePull turning into ImagePullBackOff is the same trouble: reported once.
    expect(c.of('k8s.pod.image_pull_backoff')).toHaveLength(1)
    expect(c.of('k8s.pod.image_pull_backoff')[0]).toMatchObject({ severity: 'warning', data: { container: 'metrics', reason: 'ErrImagePull' } })

    s.update('pods', 'shop', 'web-1', (o) => {
      statusOf(o).phase = 'Failed'
    })
    await waitFor('failed phase', () => c.of('k8s.pod.phase_changed').length === 2)
    expect(c.of('k8s.pod.phase_changed')[1]).toMatchObject({ severity: 'error', data: { from: 'Running', to: 'Failed' } })

    // Every event this collector produced passes the registered schema of its type.
    for (const e of c.events) {
      const r = validateEvent(stampEvent({ ...e }, 'kubernetes'))
      expect(r._tag, `${e.type}: ${String((r as { failure?: unknown }).failure)}`).toBe('Success')
    }
  })

  it('reports node NotReady/Ready and deployment rollout progress', async () => {
    h = await createHarness()
    const c = h
    const s = h.server
    s.create('nodes', fresh('node', 'worker-1'))
    s.create('deployments', fresh('deployment', 'web', 'shop'))
    await h.startCollector({ resources: ['nodes', 'deployments'] })
    await waitFor('added', () => c.of('k8s.node.added').length === 1 && c.of('k8s.deployment.added').length === 1)

    const setReady = (status: string, reason: string) =>
      s.update('nodes', undefined, 'worker-1', (o) => {
        const conds = (o.status as { conditions: JsonObject[] }).conditions
        const ready = conds.find((x) => x.type === 'Ready') as JsonObject
        ready.status = status
        ready.reason = reason
        ready.message = reason === 'NodeStatusUnknown' ? 'Kubelet stopped posting node status.' : 'kubelet is posting ready status'
      })
    setReady('Unknown', 'NodeStatusUnknown')
    await waitFor('not ready', () => c.of('k8s.node.not_ready').length === 1)
    expect(c.of('k8s.node.not_ready')[0]).toMatchObject({
      severity: 'error',
      data: { name: 'worker-1', status: 'Unknown', previousStatus: 'True', reason: 'NodeStatusUnknown' },
    })
    expect(c.of('k8s.node.updated')[0]?.severity).toBe('warning')
    setReady('True', 'KubeletReady')
    await waitFor('ready', () => c.of('k8s.node.ready').length === 1)
    expect(c.of('k8s.node.ready')[0]?.severity).toBe('info')

    // A rollout: new generation, then replicas move over, then complete.
    const status = (o: JsonObject) => o.status as Record<string, unknown>
    s.update('deployments', 'shop', 'web', (o) => {
      ;(o.metadata as JsonObject).generation = 4
    })
    s.update('deployments', 'shop', 'web', (o) => {
      Object.assign(status(o), { observedGeneration: 4, updatedReplicas: 1, replicas: 4, unavailableReplicas: 1 })
    })
    s.update('deployments', 'shop', 'web', (o) => {
      Object.assign(status(o), { updatedReplicas: 3, replicas: 3, availableReplicas: 3, readyReplicas: 3 })
      delete status(o).unavailableReplicas
    })
    await waitFor('three rollout steps', () => c.of('k8s.deployment.rollout').length === 3)
    expect(c.of('k8s.deployment.rollout').map((e) => (e.data as { state: string }).state)).toEqual([
      'progressing',
      'progressing',
      'complete',
    ])
    s.update('deployments', 'shop', 'web', (o) => {
      ;(o.metadata as JsonObject).generation = 5
      Object.assign(status(o), { observedGeneration: 5 })
      const conds = status(o).conditions as JsonObject[]
      Object.assign(conds.find((x) => x.type === 'Progressing') as JsonObject, {
        status: 'False',
        reason: 'ProgressDeadlineExceeded',
        message: 'ReplicaSet "web-6b7f" has timed out progressing.',
      })
    })
    await waitFor('failed rollout', () => c.of('k8s.deployment.rollout').length === 4)
    expect(c.of('k8s.deployment.rollout')[3]).toMatchObject({ severity: 'error', data: { state: 'failed', reason: 'ProgressDeadlineExceeded' } })
  })

  it('reports core/v1 Events with their type as severity, again only when they repeat', async () => {
    h = await createHarness()
    const c = h
    const s = h.server
    await h.startCollector({ resources: ['events'] })
    await waitFor('watching', () => s.openWatches === 1)
    const warning = s.create('events', fresh('event', 'web-1.17cf0b3a2e9d1c45', 'shop'))
    const normal = fresh('event', 'web-1.17cf0b3a2e9d1c46', 'shop')
    Object.assign(normal, { type: 'Normal', reason: 'Pulled', message: 'Container image "nginx:1.25.4" already present on machine', count: 1 })
    s.create('events', normal)
    await waitFor('two events', () => c.of('k8s.event').length === 2)
    const [w, n] = c.of('k8s.event')
    expect(w).toMatchObject({
      severity: 'warning',
      timestamp: '1715678265000000000',
      entity: { kind: 'Pod', name: 'web-7d9c5b8f6d-x2vqk', namespace: 'shop' },
      k8s: { pod: 'web-7d9c5b8f6d-x2vqk', podUid: '8f0c2a4e-3b1d-4c6e-9a7f-2d5e8b1c0a93' },
      data: { type: 'Warning', reason: 'BackOff', count: 3, component: 'kubelet', host: 'worker-1', uid: uidOf(warning) },
    })
    expect(n).toMatchObject({ severity: 'info', data: { type: 'Normal', reason: 'Pulled' } })

    s.update('events', 'shop', 'web-1.17cf0b3a2e9d1c45', (o) => {
      o.count = 4
      o.lastTimestamp = '2024-05-14T09:19:00Z'
    })
    s.update('events', 'shop', 'web-1.17cf0b3a2e9d1c45', (o) => {
      ;(o.metadata as JsonObject).labels = { irrelevant: 'yes' }
    })
    s.delete('events', 'shop', 'web-1.17cf0b3a2e9d1c46')
    s.create('events', { ...normal, metadata: { name: 'marker', namespace: 'shop' } })
    await waitFor('marker', () => c.of('k8s.event', 'marker').length === 1)
    expect(c.of('k8s.event', 'web-1.17cf0b3a2e9d1c45').map((e) => (e.data as { count: number }).count)).toEqual([3, 4])
    expect(c.events.every((e) => e.type === 'k8s.event')).toBe(true)
    expect(c.events).toHaveLength(4)
  })
})

const uidOf = (o: JsonObject) => (o.metadata as { uid: string }).uid

describe('kubernetes collector: fixtures are real API objects', () => {
  it('decode without loss of the fields the collector reads', async () => {
    const { decodeObject } = await import('../../../src/collectors/kubernetes/objects.js')
    for (const [resource, name] of [
      ['pods', 'pod'],
      ['nodes', 'node'],
      ['events', 'event'],
      ['deployments', 'deployment'],
      ['replicasets', 'replicaset'],
    ] as const) {
      const r = decodeObject(resource, fixture(name))
      expect(r._tag, `${name}: ${String((r as { failure?: unknown }).failure)}`).toBe('Success')
    }
  })
})
