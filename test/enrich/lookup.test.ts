import { readFileSync } from 'node:fs'
import { describe, expect, it } from 'vitest'
import { MetadataCache } from '../../src/collectors/kubernetes/metadata.js'
import type { KubeObject } from '../../src/collectors/kubernetes/objects.js'
import {
  createEnricher,
  Enricher,
  familyOf,
  lookupPod,
  MetadataHub,
  podContext,
  type PodMetadataSource,
} from '../../src/public/kubernetes.js'
import type { TapioEvent } from '../../src/events/event.js'
import type { K8sContext } from '../../src/events/schema.js'

const NGINX_ID = '4c1e2f9a8b7d6c5e4f3a2b1c0d9e8f7a6b5c4d3e2f1a0b9c8d7e6f5a4b3c2d1e'
const METRICS_ID = 'a9b8c7d6e5f4a3b2c1d0e9f8a7b6c5d4e3f2a1b0c9d8e7f6a5b4c3d2e1f0a9b8'
const UNKNOWN_ID = 'f'.repeat(64)
const POD_UID = '8f0c2a4e-3b1d-4c6e-9a7f-2d5e8b1c0a93'
const POD_IP = '10.244.1.23'

function fixture(name: string): unknown {
  return JSON.parse(readFileSync(new URL(`../collectors/kubernetes/fixtures/${name}.json`, import.meta.url), 'utf8'))
}

/** The web Deployment -> ReplicaSet -> Pod chain from the Kubernetes collector's fixtures. */
function shopCache(): MetadataCache {
  const c = new MetadataCache()
  c.apply('added', { resource: 'deployments', object: fixture('deployment') } as KubeObject)
  c.apply('added', { resource: 'replicasets', object: fixture('replicaset') } as KubeObject)
  c.apply('added', { resource: 'pods', object: fixture('pod') } as KubeObject)
  return c
}

let seq = 0
function ev(type: string, data: Record<string, unknown>, k8s?: K8sContext): TapioEvent {
  return { id: `e${seq++}`, timestamp: '1', type, source: 't', severity: 'info', data, ...(k8s ? { k8s } : {}) } as TapioEvent
}
const exec = (k8s?: K8sContext) => ev('kernel.process.exec', { pid: 1, comm: 'x', cgroupId: '1' }, k8s)

const WEB = {
  namespace: 'shop',
  pod: 'web-7d9c5b8f6d-x2vqk',
  podUid: POD_UID,
  node: 'worker-1',
  workload: { kind: 'Deployment', name: 'web' },
}

describe('enrichment lookups (pure)', () => {
  const cache = shopCache()

  it('classifies families by the first segment only', () => {
    expect(familyOf('kernel.process.exec')).toBe('kernel')
    expect(familyOf('network.link.up')).toBe('network')
    expect(familyOf('k8s.pod.added')).toBeUndefined()
    expect(familyOf('kernelx.a')).toBeUndefined()
    expect(familyOf('cni.attachment.added')).toBeUndefined()
  })

  it('finds the pod and names the container from a container id (bare or runtime-prefixed)', () => {
    for (const id of [NGINX_ID, `containerd://${NGINX_ID}`]) {
      const r = lookupPod(cache, exec({ containerId: id }), 'kernel')
      if (typeof r === 'string') throw new Error(`miss ${r}`)
      expect(r.reason).toBe('container_id')
      expect(podContext(r, { containerId: id })).toEqual({ ...WEB, container: 'nginx', containerId: id })
    }
    const sidecar = lookupPod(cache, exec({ containerId: METRICS_ID }), 'kernel')
    if (typeof sidecar === 'string') throw new Error(sidecar)
    expect(podContext(sidecar, undefined).container).toBe('metrics')
  })

  it('falls back to the pod uid (a sandbox container id is in no container status)', () => {
    const link = ev('network.link.added', { index: 5, name: 'veth1' }, { containerId: UNKNOWN_ID, podUid: POD_UID, pod: 'web-7d9c5b8f6d-x2vqk' })
    const r = lookupPod(cache, link, 'network')
    if (typeof r === 'string') throw new Error(r)
    expect(r.reason).toBe('pod_uid')
    // The event's own container id (the sandbox) is kept; no container name is invented.
    expect(podContext(r, link.k8s)).toEqual({ ...WEB, containerId: UNKNOWN_ID })
  })

  it('finds pods by local address: TCP source, address events; never by the peer', () => {
    const tcp = ev('kernel.tcp.connect', { saddr: POD_IP, daddr: '1.1.1.1', ownerKnown: true })
    expect(lookupPod(cache, tcp, 'kernel')).toMatchObject({ reason: 'ip' })
    const addr = ev('network.address.added', { address: POD_IP, index: 3 })
    expect(lookupPod(cache, addr, 'network')).toMatchObject({ reason: 'ip' })
    const toPod = ev('kernel.tcp.connect', { saddr: '10.0.0.11', daddr: POD_IP, ownerKnown: true })
    expect(lookupPod(cache, toPod, 'kernel')).toBe('no_container_id')
    expect(lookupPod(cache, ev('network.address.added', { address: '192.168.9.9' }), 'network')).toBe('ip_unknown')
  })

  it("ignores the cgroup identity of a TCP event whose owner is unknown (softirq context)", () => {
    const wrong = ev('kernel.tcp.close', { saddr: '10.0.0.11', ownerKnown: false }, { containerId: NGINX_ID })
    expect(lookupPod(cache, wrong, 'kernel')).toBe('no_container_id')
    const right = ev('kernel.tcp.close', { saddr: POD_IP, ownerKnown: false }, { containerId: METRICS_ID })
    const r = lookupPod(cache, right, 'kernel')
    if (typeof r === 'string') throw new Error(r)
    // Found by address; the contradicting container id from the cgroup is not carried over.
    expect(podContext(r, right.k8s)).toEqual(WEB)
  })

  it('names each miss by its strongest key', () => {
    expect(lookupPod(cache, exec(), 'kernel')).toBe('no_container_id')
    expect(lookupPod(cache, exec({ containerId: UNKNOWN_ID }), 'kernel')).toBe('container_id_unknown')
    expect(lookupPod(cache, exec({ containerId: UNKNOWN_ID, podUid: '00000000-0000-0000-0000-000000000000' }), 'kernel')).toBe('container_id_unknown')
    expect(lookupPod(cache, exec({ podUid: '00000000-0000-0000-0000-000000000000' }), 'kernel')).toBe('pod_uid_unknown')
    expect(lookupPod(cache, ev('network.route.added', { destination: 'default' }), 'network')).toBe('no_key')
    expect(lookupPod(cache, ev('kernel.tcp.connect', { saddr: '10.9.9.9', ownerKnown: true }, { containerId: UNKNOWN_ID }), 'kernel')).toBe(
      'container_id_unknown',
    )
  })
})

/** Counts calls, to prove memoisation and the cheap path. */
function countingSource(inner: MetadataCache): PodMetadataSource & { calls: number } {
  const s = {
    calls: 0,
    podByUid: (u: string) => (s.calls++, inner.podByUid(u)),
    podByContainerId: (c: string) => (s.calls++, inner.podByContainerId(c)),
    podByIp: (i: string) => (s.calls++, inner.podByIp(i)),
    get generation() {
      return inner.generation
    },
    status: () => (inner.size.pods > 0 ? ('ready' as const) : ('empty' as const)),
  }
  return s
}

describe('Enricher', () => {
  it('sets k8s on copies of the hits (the input batch and its events stay as they were), leaves other families alone and counts every outcome', () => {
    const enricher = createEnricher(shopCache())
    const shared: K8sContext = { containerId: NGINX_ID }
    const batch = [
      exec(shared),
      exec(shared),
      exec(),
      exec({ containerId: UNKNOWN_ID }),
      ev('k8s.pod.added', {}),
      ev('network.route.added', { destination: 'default' }),
      ev('network.address.added', { address: POD_IP }),
    ]
    const before = [...batch]
    const snapshot = JSON.stringify(batch)
    const out = enricher.enrich(batch)
    // Copy-on-enrich: other subscriptions share these events, so none of them is changed.
    expect(out).not.toBe(batch)
    expect(JSON.stringify(batch)).toBe(snapshot)
    expect(batch.every((e, i) => e === before[i])).toBe(true)
    expect(out[0]?.k8s).toEqual({ ...WEB, container: 'nginx', containerId: NGINX_ID })
    expect(out[0]).not.toBe(batch[0])
    expect({ ...out[0], k8s: undefined }).toEqual({ ...batch[0], k8s: undefined })
    expect(out[1]?.k8s).toEqual(out[0]?.k8s)
    // The context the collector shared between events is never mutated.
    expect(shared).toEqual({ containerId: NGINX_ID })
    // Events without a hit are passed on as they are (no copy).
    for (const i of [2, 3, 4, 5]) expect(out[i]).toBe(batch[i])
    expect(out[2]?.k8s).toBeUndefined()
    expect(out[3]?.k8s).toEqual({ containerId: UNKNOWN_ID })
    expect(out[6]?.k8s).toEqual(WEB)
    expect(out[6]).not.toBe(batch[6])
    expect(enricher.counts()).toEqual({
      hit: { container_id: 2, pod_uid: 0, ip: 1 },
      miss: { no_metadata: 0, no_container_id: 1, no_key: 1, container_id_unknown: 1, pod_uid_unknown: 0, ip_unknown: 0 },
    })
    expect(enricher.statistics()).toMatchObject({ hits: 3, misses: 3, skipped: 1, batches: 1, hit_container_id: 2, miss_no_key: 1 })
  })

  it('memoises container-id answers (hits and misses) until the cache changes', () => {
    const cache = shopCache()
    const source = countingSource(cache)
    const enricher = new Enricher(source)
    const batch = () => [exec({ containerId: NGINX_ID }), exec({ containerId: UNKNOWN_ID })]
    enricher.enrich(batch())
    const afterFirst = source.calls
    expect(afterFirst).toBe(2)
    for (let i = 0; i < 50; i++) enricher.enrich(batch())
    expect(source.calls).toBe(afterFirst)
    expect(enricher.counts().hit.container_id).toBe(51)
    expect(enricher.counts().miss.container_id_unknown).toBe(51)

    // The unknown container's pod arrives: the next batch must see it, not the memoised miss.
    const pod = fixture('pod') as { metadata: { uid: string; name: string }; status: { containerStatuses: { containerID: string }[]; podIP: string; podIPs: unknown[] } }
    pod.metadata.uid = '11111111-2222-3333-4444-555555555555'
    pod.metadata.name = 'web-7d9c5b8f6d-new'
    pod.status.podIP = '10.244.1.99'
    pod.status.podIPs = [{ ip: '10.244.1.99' }]
    for (const s of pod.status.containerStatuses) s.containerID = `containerd://${UNKNOWN_ID}`
    cache.apply('added', { resource: 'pods', object: pod } as unknown as KubeObject)
    const b = enricher.enrich(batch())
    expect(b[1]?.k8s).toMatchObject({ pod: 'web-7d9c5b8f6d-new', podUid: '11111111-2222-3333-4444-555555555555', workload: WEB.workload })
    expect(source.calls).toBeGreaterThan(afterFirst)
  })

  it('counts no_metadata while the cache is empty, and is off without any Kubernetes collector', () => {
    const empty = createEnricher(new MetadataCache())
    const b = [exec({ containerId: NGINX_ID }), ev('network.link.up', {}), ev('systemd.unit.started', {})]
    empty.enrich(b)
    expect(empty.counts().miss.no_metadata).toBe(2)
    expect(empty.statistics().skipped).toBe(1)
    expect(b[0]?.k8s).toEqual({ containerId: NGINX_ID })

    const hub = new MetadataHub()
    const off = createEnricher(hub)
    off.enrich(b)
    expect(off.statistics()).toMatchObject({ hits: 0, misses: 0, skipped: 0, batches: 0 })
  })

  it('enriches frozen events and batches (it never writes to its input)', () => {
    const enricher = createEnricher(shopCache())
    const frozen = Object.freeze(exec({ containerId: NGINX_ID }))
    const batch = Object.freeze([frozen, exec()])
    const out = enricher.enrich(batch)
    expect(out).not.toBe(batch)
    expect(out[0]).not.toBe(frozen)
    expect(out[0]?.k8s?.pod).toBe('web-7d9c5b8f6d-x2vqk')
    expect(out[0]?.id).toBe(frozen.id)
    expect(out[1]).toBe(batch[1])
  })
})

describe('MetadataHub', () => {
  it('follows the latest instance of each slot (restarts create new instances)', () => {
    const hub = new MetadataHub()
    expect(hub.status()).toBe('absent')
    const slot = hub.slot()
    expect(hub.status()).toBe('empty')
    const first = shopCache()
    slot.set(first)
    expect(hub.status()).toBe('ready')
    expect(hub.podByContainerId(NGINX_ID)?.name).toBe('web-7d9c5b8f6d-x2vqk')
    const g1 = hub.generation

    const second = new MetadataCache()
    slot.set(second)
    expect(hub.generation).not.toBe(g1)
    expect(hub.status()).toBe('empty')
    expect(hub.podByContainerId(NGINX_ID)).toBeUndefined()
    second.apply('added', { resource: 'pods', object: fixture('pod') } as KubeObject)
    expect(hub.podByIp(POD_IP)?.uid).toBe(POD_UID)
    expect(hub.podByUid(POD_UID)?.name).toBe('web-7d9c5b8f6d-x2vqk')

    const other = hub.slot()
    other.set(new MetadataCache())
    expect(hub.size).toBe(2)
    other.release()
    slot.release()
    expect(hub.status()).toBe('absent')
  })
})
