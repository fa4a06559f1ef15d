/**
 * The veth chain for real: a network namespace and a veth pair made with `ip` (the cni collector
 * sees them over rtnetlink and in the netns dir), the CNI result cache record a runtime's CNI
 * plugin writes for that sandbox (its netns path and the pod's uid, from K8S_POD_* args), and the
 * pod in the test API server (real list/watch). Nothing in a pod object names its netns: the CNI
 * attachment is what ties the namespace to the pod. The in-process agent runs `[enrich, correlate]`.
 */
import { execFileSync } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Writable } from 'node:stream'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { Agent } from '../../src/agent/agent.js'
import { loadConfigText } from '../../src/agent/config.js'
import { createLogger } from '../../src/agent/logger.js'
import { builtinKinds, kindMap, validators } from '../../src/agent/registry.js'
import type { CorrelationData } from '../../src/events/vocabulary/correlation.js'
import { createEnricher, MetadataHub } from '../../src/public/kubernetes.js'
import { KernelObjects } from '../collectors/cni/helpers.js'
import { FakeApiServer, type JsonObject, kubeconfigYaml } from '../collectors/kubernetes/fake-apiserver.js'
import { fresh } from '../collectors/kubernetes/harness.js'
import { waitFor } from '../support/wait.js'

interface OutEvent {
  id: string
  type: string
  source: string
  data: Record<string, unknown>
  k8s?: Record<string, unknown>
}

async function until<T>(find: () => T | undefined, what: string, timeoutMs = 30_000): Promise<T> {
  let v: T | undefined
  await waitFor(() => (v = find()) !== undefined, what, timeoutMs)
  return v as T
}

const ip = (...args: string[]) => execFileSync('ip', args, { stdio: ['ignore', 'pipe', 'pipe'] })

describe('correlate: a veth created into a network namespace → the pod sandbox that owns it', () => {
  const s = randomBytes(3).toString('hex')
  const dir = mkdtempSync(join(tmpdir(), 'tapio-correlate-veth-'))
  const results = join(dir, 'results')
  const netns = `tapio-test-${s}`
  const hostEnd = `tpa${s}`
  const podEnd = `tpb${s}`
  const sandbox = randomBytes(32).toString('hex')
  const podName = `web-7d9c5b8f6d-${s}`
  const objects = new KernelObjects()
  const server = new FakeApiServer()
  const hub = new MetadataHub()
  const kinds = builtinKinds({ metadataHub: hub })
  const lines: string[] = []
  const logs: string[] = []
  let partial = ''
  const stdout = new Writable({
    write(chunk: Buffer, _enc, cb) {
      const parts = (partial + chunk.toString()).split('\n')
      partial = parts.pop() ?? ''
      for (const p of parts) if (p) lines.push(p)
      cb()
    },
  })
  const events = () => lines.map((l) => JSON.parse(l) as OutEvent)
  let agent: Agent | undefined

  beforeAll(async () => {
    mkdirSync(results)
    await server.start()
    const kubeconfig = join(dir, 'kubeconfig')
    writeFileSync(kubeconfig, kubeconfigYaml(server.url))
    const config = loadConfigText(
      `collectors:
  cni: { kind: cni, enabled: true, cniConfig: { enabled: false }, cniResults: { dir: ${JSON.stringify(results)} }, debounceMs: 20, pollIntervalMs: 100 }
  k8s: { kind: kubernetes, enabled: true, kubeconfig: ${JSON.stringify(kubeconfig)}, context: fake, resources: [pods] }
outputs: { stdout: { enabled: true } }
http: { enabled: false }
processors:
  - { type: enrich }
  - { type: correlate }
log: { level: warn }
`,
      'correlate-veth.yaml',
      validators(kinds),
    )
    agent = new Agent(config, { kinds: kindMap(kinds), logger: createLogger('warn', (l) => logs.push(l)), stdout, enricher: createEnricher(hub) })
    await agent.start()
  }, 120_000)

  afterAll(async () => {
    try {
      await agent?.stop()
    } finally {
      objects.cleanup()
      await server.stop()
      rmSync(dir, { recursive: true, force: true })
    }
  }, 120_000)

  it('netns created, veth peer moved into it, its CNI attachment and the pod → one incident, then the pod completes it', async () => {
    expect(agent?.dispositions.get('cni')?.outcome, logs.join('')).toBe('running')
    expect(agent?.dispositions.get('k8s')?.outcome, logs.join('')).toBe('running')
    // The pod is scheduled first (as in a cluster); its added event opens nothing.
    const podUid = (server.create('pods', fresh('pod', podName, 'shop')).metadata as { uid: string }).uid
    await until(() => events().find((e) => e.type === 'k8s.pod.added' && e.data.name === podName), 'the pod added')

    // The runtime makes the sandbox's namespace; the CNI plugin a veth with one end inside it.
    ip('netns', 'add', objects.netns(netns))
    const created = await until(() => events().find((e) => e.type === 'network.netns.created' && e.data.name === netns), 'network.netns.created')
    ip('link', 'add', objects.link(hostEnd), 'type', 'veth', 'peer', 'name', podEnd)
    ip('link', 'set', podEnd, 'netns', netns)
    const veth = await until(() => events().find((e) => e.type === 'network.link.changed' && e.data.name === hostEnd && e.data.peerNetns === netns), 'the veth tied to the namespace')
    expect(events().filter((e) => e.type.startsWith('tapio.correlation.'))).toEqual([])

    // libcni's result cache record for the sandbox (what a CNI ADD leaves behind).
    writeFileSync(
      join(results, `tapio-net-${sandbox}-eth0`),
      JSON.stringify({
        kind: 'cniCacheV1',
        containerId: sandbox,
        ifName: 'eth0',
        networkName: 'tapio-net',
        cniArgs: [['K8S_POD_NAMESPACE', 'shop'], ['K8S_POD_NAME', podName], ['K8S_POD_UID', podUid]],
        result: { cniVersion: '1.0.0', interfaces: [{ name: 'eth0', sandbox: `/var/run/netns/${netns}` }], ips: [{ address: '198.18.201.2/24', gateway: '198.18.201.1' }] },
      }),
    )
    const attachment = await until(() => events().find((e) => e.type === 'cni.attachment.added' && e.data.containerId === sandbox), 'cni.attachment.added')
    const incident = await until(() => events().find((e) => e.type === 'tapio.correlation.incident'), 'the incident')
    const d = incident.data as unknown as CorrelationData
    expect(d.chain).toBe('veth-sandbox')
    expect(d.members.map((m) => [m.step, m.id])).toEqual([
      ['network.netns.created', created.id],
      ['veth', veth.id],
      ['cni.attachment.added', attachment.id],
    ])
    expect(d.keys).toEqual([`netns:${netns}`, `pod:${podUid}`])
    expect(d.summary).toBe(`veth ${hostEnd} → netns ${netns} → sandbox ${sandbox.slice(0, 12)} → pod shop/${podName}`)
    expect(incident.k8s).toMatchObject({ namespace: 'shop', pod: podName, podUid, containerId: sandbox })

    // The kubelet reports the pod running with the address CNI gave it: the pod joins the incident.
    server.update('pods', 'shop', podName, (o) => {
      ;(o.status as JsonObject).podIP = '198.18.201.2'
    })
    const update = await until(() => events().find((e) => e.type === 'tapio.correlation.updated'), 'the pod joining the incident')
    const pod = events().find((e) => e.type === 'k8s.pod.updated' && e.data.name === podName) as OutEvent
    expect(update.data as unknown as CorrelationData).toMatchObject({ incident: incident.id, added: [pod.id], complete: true })
    // A later change of the pod is not news to the chain.
    server.update('pods', 'shop', podName, (o) => {
      ;(o.metadata as JsonObject).labels = { app: 'web', extra: 'x' }
    })
    await until(() => events().filter((e) => e.type === 'k8s.pod.updated' && e.data.name === podName).length === 2 || undefined, 'the second pod update')
    expect(events().filter((e) => e.type.startsWith('tapio.correlation.')).map((e) => e.type)).toEqual(['tapio.correlation.incident', 'tapio.correlation.updated'])
    expect(agent?.processorStatistics().processors.correlate?.counters).toMatchObject({ incidents: 1, updates: 1, tracked: 1 })
    mkdirSync(join(process.cwd(), 'test-artifacts'), { recursive: true })
    writeFileSync(join(process.cwd(), 'test-artifacts', 'correlate-veth.ndjson'), `${lines.filter((l) => /"type":"tapio\.correlation\./.test(l)).join('\n')}\n`)
  }, 120_000)
})
