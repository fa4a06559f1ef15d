/**
 * The whole path, for real: a fake API server serves a pod whose container id names a real
 * cgroup v2 directory; a uniquely named program is exec'ed inside that cgroup; the in-process
 * agent (ebpf + kubernetes collectors, enricher) must write that exec with the pod's identity.
 */
import { type ChildProcess, spawn } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { copyFileSync, chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmdirSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Writable } from 'node:stream'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { Agent } from '../../src/agent/agent.js'
import { loadConfigText } from '../../src/agent/config.js'
import { createLogger } from '../../src/agent/logger.js'
import { builtinKinds, kindMap, validators } from '../../src/agent/registry.js'
import { findCgroup2Mount } from '../../src/collectors/ebpf/cgroup.js'
import { createEnricher, MetadataHub } from '../../src/public/kubernetes.js'
import { metric } from '../agent/support.js'
import { FakeApiServer, type JsonObject, kubeconfigYaml } from '../collectors/kubernetes/fake-apiserver.js'
import { fresh } from '../collectors/kubernetes/harness.js'
import { waitFor } from '../support/wait.js'

interface OutEvent {
  type: string
  source: string
  data: { pid?: number; comm?: string; cgroupPath?: string }
  k8s?: Record<string, unknown>
}

describe('agent: kernel events carry the pod identity of their cgroup', () => {
  const containerId = randomBytes(32).toString('hex')
  const dir = mkdtempSync(join(tmpdir(), 'tapio-enrich-'))
  const program = `tpe${randomBytes(4).toString('hex')}`
  const programPath = join(dir, program)
  const server = new FakeApiServer()
  const hub = new MetadataHub()
  const kinds = builtinKinds({ metadataHub: hub })
  const enricher = createEnricher(hub)
  const lines: string[] = []
  const logs: string[] = []
  let partial = ''
  const stdout = new Writable({
    write(chunk: Buffer, _enc, cb) {
      const text = partial + chunk.toString()
      const parts = text.split('\n')
      partial = parts.pop() ?? ''
      for (const p of parts) if (p) lines.push(p)
      cb()
    },
  })
  let agent: Agent | undefined
  let podUid = ''
  const cgroupMount = findCgroup2Mount(readFileSync('/proc/self/mountinfo', 'utf8'))
  // containerd's systemd-driver naming, which the ebpf collector's cgroup parser recognises.
  const parentCgroup = cgroupMount && join(cgroupMount, `tapio-test-${randomBytes(4).toString('hex')}.slice`)
  const containerCgroup = parentCgroup && join(parentCgroup, `cri-containerd-${containerId}.scope`)

  beforeAll(async () => {
    copyFileSync('/bin/sh', programPath)
    chmodSync(programPath, 0o755)
    await server.start()
    server.create('deployments', fresh('deployment', 'web', 'shop'))
    server.create('replicasets', fresh('replicaset', 'web-7d9c5b8f6d', 'shop'))
    const pod = fresh('pod', 'web-7d9c5b8f6d-enrich', 'shop')
    const statuses = (pod.status as { containerStatuses: JsonObject[] }).containerStatuses
    ;(statuses[0] as JsonObject).containerID = `containerd://${containerId}`
    podUid = (server.create('pods', pod).metadata as { uid: string }).uid
    const kubeconfig = join(dir, 'kubeconfig')
    writeFileSync(kubeconfig, kubeconfigYaml(server.url))
    const config = loadConfigText(
      `collectors:
  ebpf: { kind: ebpf, enabled: true, programs: { exec: true, exit: false, tcp: false, oom: false } }
  k8s: { kind: kubernetes, enabled: true, kubeconfig: ${JSON.stringify(kubeconfig)}, context: fake, resources: [pods, replicasets, deployments] }
outputs: { stdout: { enabled: true } }
http: { enabled: true, host: 127.0.0.1, port: 0 }
log: { level: warn }
`,
      'enrichment-test.yaml',
      validators(kinds),
    )
    agent = new Agent(config, { kinds: kindMap(kinds), logger: createLogger('warn', (l) => logs.push(l)), stdout, enricher })
    await agent.start()
  }, 120_000)

  afterAll(async () => {
    try {
      await agent?.stop()
    } finally {
      await server.stop()
      rmSync(dir, { recursive: true, force: true })
    }
  }, 120_000)

  it('writes the exec of a program in a containerd cgroup with namespace, pod, uid, container and workload, also after a restart of the kubernetes collector', async () => {
    expect(cgroupMount, 'a cgroup2 mount in /proc/self/mountinfo').toBeDefined()
    expect(agent?.dispositions.get('ebpf')?.outcome, logs.join('')).toBe('running')
    expect(agent?.dispositions.get('k8s')?.outcome, logs.join('')).toBe('running')
    // The pod must be in the cache before the exec, or the event is (rightly) a miss.
    await waitFor(() => hub.podByContainerId(containerId)?.workload?.name === 'web', 'the pod and its Deployment in the metadata cache')

    const children: ChildProcess[] = []
    const events = () => lines.map((l) => JSON.parse(l) as OutEvent)
    /** Runs the unique program inside the container cgroup; resolves with its exec as written by the agent. */
    const execInContainer = async (): Promise<OutEvent> => {
      // The shell waits on stdin until it is in the cgroup, then becomes the unique program there.
      const child = spawn('/bin/sh', ['-c', `read go; exec ${programPath} -c 'read done'`], { stdio: ['pipe', 'ignore', 'ignore'] })
      children.push(child)
      const pid = child.pid as number
      writeFileSync(join(containerCgroup as string, 'cgroup.procs'), String(pid))
      expect(readFileSync(`/proc/${pid}/cgroup`, 'utf8')).toContain(`cri-containerd-${containerId}.scope`)
      child.stdin?.write('go\n')
      let exec: OutEvent | undefined
      await waitFor(() => {
        exec = events().find((e) => e.type === 'kernel.process.exec' && e.data.pid === pid && e.data.comm === program)
        return exec !== undefined
      }, `the exec of ${program} (pid ${pid}) on the agent's output`)
      return exec as OutEvent
    }
    const identity = {
      containerId,
      namespace: 'shop',
      pod: 'web-7d9c5b8f6d-enrich',
      podUid,
      container: 'nginx',
      node: 'worker-1',
      workload: { kind: 'Deployment', name: 'web' },
    }
    try {
      mkdirSync(containerCgroup as string, { recursive: true })
      const exec = await execInContainer()
      expect(exec.source).toBe('ebpf')
      expect(exec.data.cgroupPath).toMatch(new RegExp(`/cri-containerd-${containerId}\\.scope$`))
      expect(exec.k8s).toEqual(identity)
      expect(enricher.statistics().hit_container_id).toBeGreaterThanOrEqual(1)
      const text = await (await fetch(`${agent?.httpUrl}/metrics`)).text()
      expect(metric(text, 'tapio_enrichment_total', { result: 'hit', reason: 'container_id' })).toBeGreaterThanOrEqual(1)
      expect(metric(text, 'tapio_enrichment_total', { result: 'miss', reason: 'container_id_unknown' })).toBeDefined()

      // A restart replaces the kubernetes collector instance (and empties the old cache): the
      // enricher must follow the new instance, not keep reading the stopped one.
      const generation = hub.generation
      await agent?.manager.restartCollector('k8s')
      expect(hub.size).toBe(1)
      await waitFor(() => hub.generation !== generation && hub.podByContainerId(containerId) !== undefined, 'the restarted instance to hold the pod')
      const again = await execInContainer()
      expect(again.k8s).toEqual(identity)
    } finally {
      for (const child of children) {
        if (child.exitCode !== null || child.signalCode !== null) continue
        const exited = new Promise((r) => child.once('exit', r))
        child.stdin?.end()
        child.kill('SIGKILL')
        await exited
      }
      // A cgroup directory goes once its last process is gone (rmdir, not rm -r: its files are virtual).
      if (containerCgroup && existsSync(containerCgroup)) await waitFor(() => tryRmdir(containerCgroup), 'the test cgroup to be removable')
      if (parentCgroup && existsSync(parentCgroup)) await waitFor(() => tryRmdir(parentCgroup), 'the test parent cgroup to be removable')
    }
  }, 120_000)
})

function tryRmdir(path: string): boolean {
  try {
    rmdirSync(path)
    return true
  } catch {
    return false
  }
}
