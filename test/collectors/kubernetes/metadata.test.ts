import { afterEach, describe, expect, it } from 'vitest'
import type { JsonObject } from './fake-apiserver.js'
import { createHarness, fresh, type Harness, waitFor } from './harness.js'

let h: Harness | undefined
afterEach(async () => {
  await h?.close()
  h = undefined
})

const NGINX_ID = '4c1e2f9a8b7d6c5e4f3a2b1c0d9e8f7a6b5c4d3e2f1a0b9c8d7e6f5a4b3c2d1e'

describe('kubernetes collector: metadata cache', () => {
  it('finds pods by uid, container id and IP with their owner chain up to the Deployment', async () => {
    h = await createHarness()
    const c = h
    const s = h.server
    s.create('deployments', fresh('deployment', 'web', 'shop'))
    s.create('replicasets', fresh('replicaset', 'web-7d9c5b8f6d', 'shop'))
    const pod = s.create('pods', fresh('pod', 'web-7d9c5b8f6d-x2vqk', 'shop'))
    const hostPod = fresh('pod', 'node-agent', 'kube-system')
    ;(hostPod.spec as JsonObject).hostNetwork = true
    ;(hostPod.status as JsonObject).podIP = '10.0.0.11'
    ;(hostPod.status as JsonObject).podIPs = [{ ip: '10.0.0.11' }]
    ;(hostPod.status as JsonObject).containerStatuses = []
    s.create('pods', hostPod)
    await h.startCollector({ resources: ['pods', 'replicasets', 'deployments'] })
    await waitFor('synced', () => c.collector.health().details?.synced === true)

    const uid = (pod.metadata as { uid: string }).uid
    const byUid = c.collector.metadata.podByUid(uid)
    expect(byUid).toMatchObject({
      namespace: 'shop',
      name: 'web-7d9c5b8f6d-x2vqk',
      uid,
      node: 'worker-1',
      ips: ['10.244.1.23'],
      ownerChain: [
        { kind: 'ReplicaSet', name: 'web-7d9c5b8f6d' },
        { kind: 'Deployment', name: 'web' },
      ],
      workload: { kind: 'Deployment', name: 'web' },
    })
    expect(byUid?.containers.map((x) => x.name)).toEqual(['nginx', 'metrics'])
    expect(byUid?.containers[0]).toMatchObject({ id: NGINX_ID, runtime: 'containerd', image: 'docker.io/library/nginx:1.25.4' })
    expect(c.collector.metadata.podByContainerId(NGINX_ID)?.uid).toBe(uid)
    expect(c.collector.metadata.podByContainerId(`containerd://${NGINX_ID}`)?.uid).toBe(uid)
    expect(c.collector.metadata.podByIp('10.244.1.23')?.uid).toBe(uid)
    // Host-network pods share the node's address: not attributed by IP.
    expect(c.collector.metadata.podByIp('10.0.0.11')).toBeUndefined()

    // Events about the pod carry the workload too.
    const added = c.of('k8s.pod.added', 'web-7d9c5b8f6d-x2vqk')[0]
    expect(added?.k8s?.workload).toEqual({ kind: 'Deployment', name: 'web' })
    expect(added?.data).toMatchObject({ ownerChain: [{ kind: 'ReplicaSet' }, { kind: 'Deployment' }], nodeName: 'worker-1', phase: 'Running' })

    // A new container id after a restart replaces the old one; deletion empties every index.
    s.update('pods', 'shop', 'web-7d9c5b8f6d-x2vqk', (o) => {
      const cs = (o.status as { containerStatuses: JsonObject[] }).containerStatuses[0] as JsonObject
      cs.containerID = 'containerd://feedbeef'
      cs.restartCount = 1
    })
    await waitFor('new container id', () => c.collector.metadata.podByContainerId('feedbeef')?.uid === uid)
    expect(c.collector.metadata.podByContainerId(NGINX_ID)).toBeUndefined()
    s.delete('pods', 'shop', 'web-7d9c5b8f6d-x2vqk')
    await waitFor('pod gone', () => c.collector.metadata.podByUid(uid) === undefined)
    expect(c.collector.metadata.podByIp('10.244.1.23')).toBeUndefined()
    expect(c.collector.metadata.podByContainerId('feedbeef')).toBeUndefined()
    expect(c.collector.metadata.size).toMatchObject({ pods: 1, containers: 0, ips: 0 })

    await h.stopCollector()
    expect(c.collector.metadata.size).toEqual({ pods: 0, containers: 0, ips: 0, controllers: 0 })
  })

  it('keeps memory to what is watched: a namespace filter keeps other pods out of the cache', async () => {
    h = await createHarness()
    const c = h
    const s = h.server
    for (let i = 0; i < 5; i++) s.create('pods', fresh('pod', `a-${i}`, 'team-a'))
    for (let i = 0; i < 5; i++) s.create('pods', fresh('pod', `b-${i}`, 'team-b'))
    for (let i = 0; i < 5; i++) s.create('pods', fresh('pod', `sys-${i}`, 'kube-system'))
    await h.startCollector({ resources: ['pods'], namespaces: ['team-a', 'kube-system'], ignoreNamespaces: ['kube-system'] })
    await waitFor('synced', () => c.collector.health().details?.synced === true)
    await waitFor('watch open', () => s.openWatches === 1)
    expect(c.collector.metadata.size.pods).toBe(5)
    expect(new Set(c.of('k8s.pod.added').map((e) => (e.data as { namespace: string }).namespace))).toEqual(new Set(['team-a']))
    // Namespaced watches, not a cluster-wide one; the ignored namespace is not watched at all.
    expect(new Set(s.watchRequests('pods').map((r) => r.path))).toEqual(new Set(['/api/v1/namespaces/team-a/pods']))
    s.create('pods', fresh('pod', 'b-new', 'team-b'))
    s.create('pods', fresh('pod', 'a-new', 'team-a'))
    await waitFor('a-new', () => c.of('k8s.pod.added', 'a-new').length === 1)
    expect(c.of('k8s.pod.added', 'b-new')).toHaveLength(0)
  })

  it('filters ignored namespaces server-side and client-side when watching all namespaces', async () => {
    h = await createHarness()
    const c = h
    const s = h.server
    s.create('pods', fresh('pod', 'app', 'shop'))
    s.create('pods', fresh('pod', 'dns', 'kube-system'))
    s.create('namespaces', { metadata: { name: 'kube-system' } })
    s.create('namespaces', { metadata: { name: 'shop' } })
    await h.startCollector({ resources: ['pods', 'namespaces'], ignoreNamespaces: ['kube-system'], labelSelector: 'app' })
    await waitFor('synced', () => c.collector.health().details?.synced === true)
    await waitFor('both watches open', () => s.openWatches === 2)
    const podWatch = s.watchRequests('pods')[0]
    expect(podWatch?.query.fieldSelector).toBe('metadata.namespace!=kube-system')
    expect(podWatch?.query.labelSelector).toBe('app')
    expect(c.of('k8s.pod.added').map((e) => (e.data as { name: string }).name)).toEqual(['app'])
    // The Namespace object of an ignored namespace is not reported either; the label selector applies to it.
    expect(c.of('k8s.namespace.added')).toHaveLength(0)
  })

  it('applies per-resource selectors (pods on one node)', async () => {
    h = await createHarness()
    const c = h
    const s = h.server
    s.create('pods', fresh('pod', 'here', 'shop'))
    const there = fresh('pod', 'there', 'shop')
    ;(there.spec as JsonObject).nodeName = 'worker-2'
    s.create('pods', there)
    s.create('nodes', fresh('node', 'worker-2'))
    await h.startCollector({
      resources: ['pods', 'nodes'],
      labelSelector: 'app',
      selectors: { pods: { labelSelector: 'app', fieldSelector: 'spec.nodeName=worker-1' }, nodes: {} },
    })
    await waitFor('synced', () => c.collector.health().details?.synced === true)
    await waitFor('both watches open', () => s.openWatches === 2)
    expect(c.of('k8s.pod.added').map((e) => (e.data as { name: string }).name)).toEqual(['here'])
    expect(c.of('k8s.node.added')).toHaveLength(1)
    expect(s.watchRequests('nodes')[0]?.query.fieldSelector).toBeUndefined()
    expect(s.watchRequests('nodes')[0]?.query.labelSelector).toBeUndefined()
    expect(s.watchRequests('pods')[0]?.query).toMatchObject({ labelSelector: 'app', fieldSelector: 'spec.nodeName=worker-1' })
  })
})
