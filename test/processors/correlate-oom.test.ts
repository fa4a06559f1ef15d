/**
 * The OOM chain for real: a process in a memory-limited cgroup named as containerd names a
 * container's cgroup allocates until the kernel kills it (the eBPF collector reports
 * `kernel.oom.kill` with that container id); the test API server then reports that container
 * OOMKilled, restarted and in CrashLoopBackOff (real list/watch). The in-process agent runs
 * `[enrich, correlate]`: stdout must carry exactly one `tapio.correlation.incident` naming the
 * kernel kill and the OOMKilled event, then one update per later member.
 */
import { type ChildProcess, spawn } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmdirSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Writable } from 'node:stream'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { Agent } from '../../src/agent/agent.js'
import { loadConfigText } from '../../src/agent/config.js'
import { createLogger } from '../../src/agent/logger.js'
import { builtinKinds, kindMap, validators } from '../../src/agent/registry.js'
import { findCgroup2Mount } from '../../src/collectors/ebpf/cgroup.js'
import type { CorrelationData } from '../../src/events/vocabulary/correlation.js'
import { createEnricher, MetadataHub } from '../../src/public/kubernetes.js'
import { metric } from '../agent/support.js'
import { FakeApiServer, type JsonObject, kubeconfigYaml } from '../collectors/kubernetes/fake-apiserver.js'
import { fresh } from '../collectors/kubernetes/harness.js'
import { waitFor } from '../support/wait.js'

/** Polls until `find` gives a value; fails naming `what`. */
async function until<T>(find: () => T | undefined, what: string, timeoutMs = 30_000): Promise<T> {
  let v: T | undefined
  await waitFor(() => (v = find()) !== undefined, what, timeoutMs)
  return v as T
}

interface OutEvent {
  id: string
  type: string
  source: string
  severity: string
  timestamp: string
  data: Record<string, unknown>
  k8s?: Record<string, unknown>
}

const V1_MEMORY = '/sys/fs/cgroup/memory'

describe('correlate: a real OOM kill and the API server reporting it make one incident', () => {
  const containerId = randomBytes(32).toString('hex')
  const dir = mkdtempSync(join(tmpdir(), 'tapio-correlate-oom-'))
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
  const podName = 'web-7d9c5b8f6d-oom'
  const cgroup2 = findCgroup2Mount(readFileSync('/proc/self/mountinfo', 'utf8'))
  const slice = `tapio-test-${randomBytes(4).toString('hex')}.slice`
  const scope = `cri-containerd-${containerId}.scope`
  // Made deepest last, removed deepest first.
  const cgroups: string[] = []

  beforeAll(async () => {
    await server.start()
    const pod = fresh('pod', podName, 'shop')
    const statuses = (pod.status as { containerStatuses: JsonObject[] }).containerStatuses
    ;(statuses[0] as JsonObject).containerID = `containerd://${containerId}`
    server.create('pods', pod)
    const kubeconfig = join(dir, 'kubeconfig')
    writeFileSync(kubeconfig, kubeconfigYaml(server.url))
    const config = loadConfigText(
      `collectors:
  ebpf: { kind: ebpf, enabled: true, programs: { exec: false, exit: false, tcp: false, oom: true } }
  k8s: { kind: kubernetes, enabled: true, kubeconfig: ${JSON.stringify(kubeconfig)}, context: fake, resources: [pods] }
outputs: { stdout: { enabled: true } }
http: { enabled: true, host: 127.0.0.1, port: 0 }
processors:
  - { type: enrich }
  - { type: correlate, windowMs: 60000 }
log: { level: warn }
`,
      'correlate-oom.yaml',
      validators(kinds),
    )
    agent = new Agent(config, { kinds: kindMap(kinds), logger: createLogger('warn', (l) => logs.push(l)), stdout, enricher: createEnricher(hub) })
    await agent.start()
  }, 120_000)

  afterAll(async () => {
    try {
      await agent?.stop()
    } finally {
      await server.stop()
      for (const c of cgroups.reverse()) if (existsSync(c)) await waitFor(() => tryRmdir(c), `cgroup ${c} to be removable`)
      rmSync(dir, { recursive: true, force: true })
    }
  }, 120_000)

  it('kernel.oom.kill (eBPF) + k8s.pod.oom_killed (same container id) → one incident with both ids; restart and CrashLoopBackOff extend it', async () => {
    expect(cgroup2, 'a cgroup2 mount in /proc/self/mountinfo').toBeDefined()
    expect(agent?.dispositions.get('ebpf')?.outcome, logs.join('')).toBe('running')
    expect(agent?.dispositions.get('k8s')?.outcome, logs.join('')).toBe('running')
    await waitFor(() => hub.podByContainerId(containerId) !== undefined, 'the pod in the metadata cache')

    // The container's identity: its cgroup v2 directory, named as containerd (systemd driver) names it.
    const v2 = join(cgroup2 as string, slice, scope)
    // Its memory limit: in the v1 memory hierarchy on a hybrid host (this one), else memory.max in v2.
    let limited: string
    if (existsSync(join(V1_MEMORY, 'memory.limit_in_bytes'))) {
      mkdirSync(join(cgroup2 as string, slice))
      cgroups.push(join(cgroup2 as string, slice))
      mkdirSync(v2)
      cgroups.push(v2)
      limited = join(V1_MEMORY, slice)
      mkdirSync(limited)
      cgroups.push(limited)
      writeFileSync(join(limited, 'memory.limit_in_bytes'), String(32 << 20))
      writeFileSync(join(limited, 'memory.swappiness'), '0')
    } else {
      writeFileSync(join(cgroup2 as string, 'cgroup.subtree_control'), '+memory')
      mkdirSync(join(cgroup2 as string, slice))
      cgroups.push(join(cgroup2 as string, slice))
      writeFileSync(join(cgroup2 as string, slice, 'cgroup.subtree_control'), '+memory')
      mkdirSync(v2)
      cgroups.push(v2)
      writeFileSync(join(v2, 'memory.max'), String(32 << 20))
      writeFileSync(join(v2, 'memory.swap.max'), '0')
      limited = v2
    }
    // tail keeps a line without newlines in memory: it grows until the limit kills it.
    const join1 = limited === v2 ? '' : `echo $$ > ${limited}/cgroup.procs && `
    const child: ChildProcess = spawn('/bin/sh', ['-c', `${join1}echo $$ > ${v2}/cgroup.procs && exec sh -c 'head -c 1G /dev/zero | tail -n 1 >/dev/null'`], { stdio: 'ignore' })
    let kernel: OutEvent
    try {
      kernel = await until(
        () => events().find((e) => e.type === 'kernel.oom.kill' && e.k8s?.containerId === containerId),
        'kernel.oom.kill with the container id on stdout',
        60_000,
      )
    } finally {
      if (child.exitCode === null && child.signalCode === null) {
        const exited = new Promise((r) => child.once('exit', r))
        child.kill('SIGKILL')
        await exited
      }
    }
    expect(kernel.source).toBe('ebpf')
    expect(kernel.data.victimComm).toBe('tail')
    // The enricher found the pod by the container id before correlate saw the event.
    expect(kernel.k8s).toMatchObject({ containerId, pod: podName, container: 'nginx' })
    expect(events().filter((e) => e.type.startsWith('tapio.correlation.'))).toEqual([])

    // The kubelet's view: the container terminated OOMKilled (same container id).
    const finishedAt = new Date().toISOString()
    server.update('pods', 'shop', podName, (o) => {
      const cs = ((o.status as JsonObject).containerStatuses as JsonObject[])[0] as JsonObject
      cs.ready = false
      cs.state = { terminated: { reason: 'OOMKilled', exitCode: 137, containerID: `containerd://${containerId}`, startedAt: '2024-05-14T09:12:34Z', finishedAt } }
    })
    const k8s = await until(() => events().find((e) => e.type === 'k8s.pod.oom_killed' && e.data.name === podName), 'k8s.pod.oom_killed on stdout')
    expect(k8s.k8s?.containerId).toBe(`containerd://${containerId}`)
    const incident = await until(() => events().find((e) => e.type === 'tapio.correlation.incident'), 'the incident on stdout')
    const d = incident.data as unknown as CorrelationData
    expect(incident).toMatchObject({ source: 'correlate', severity: 'error', k8s: { containerId, namespace: 'shop', pod: podName, container: 'nginx' } })
    expect(d.chain).toBe('oom-kill')
    expect(d.incident).toBe(incident.id)
    expect(d.members.map((m) => [m.step, m.id])).toEqual([
      ['kernel.oom.kill', kernel.id],
      ['k8s.pod.oom_killed', k8s.id],
    ])
    expect(d.added).toEqual([kernel.id, k8s.id])
    expect(d.summary).toMatch(/^kernel OOM-killed tail \(pid \d+, \d+ MiB anon\) in container nginx of pod shop\/web-7d9c5b8f6d-oom; Kubernetes reports OOMKilled \(exit 137\)$/)
    // Right after the event that completed it.
    const ids = events().map((e) => e.id)
    expect(ids.indexOf(incident.id)).toBe(ids.indexOf(k8s.id) + 1)

    // The kubelet restarts it (a new container), which OOMs again and backs off.
    const next = randomBytes(32).toString('hex')
    server.update('pods', 'shop', podName, (o) => {
      const cs = ((o.status as JsonObject).containerStatuses as JsonObject[])[0] as JsonObject
      cs.lastState = cs.state as JsonObject
      cs.restartCount = 1
      cs.containerID = `containerd://${next}`
      cs.state = { running: { startedAt: new Date().toISOString() } }
    })
    server.update('pods', 'shop', podName, (o) => {
      const cs = ((o.status as JsonObject).containerStatuses as JsonObject[])[0] as JsonObject
      cs.state = { waiting: { reason: 'CrashLoopBackOff', message: 'back-off 10s restarting failed container' } }
    })
    const updates = await until(() => {
      const u = events().filter((e) => e.type === 'tapio.correlation.updated')
      return u.length >= 2 ? u : undefined
    }, 'two updates on stdout')
    const restart = events().find((e) => e.type === 'k8s.pod.container_restarted') as OutEvent
    const loop = events().find((e) => e.type === 'k8s.pod.crash_loop_backoff') as OutEvent
    expect(updates.map((u) => (u.data as unknown as CorrelationData).added)).toEqual([[restart.id], [loop.id]])
    const last = updates[1]?.data as unknown as CorrelationData
    expect(last).toMatchObject({ incident: incident.id, complete: true })
    expect(last.members.map((m) => m.id)).toEqual([kernel.id, k8s.id, restart.id, loop.id])

    // Exactly one incident, and the accounting holds with the emitted events in it.
    expect(events().filter((e) => e.type === 'tapio.correlation.incident')).toHaveLength(1)
    const st = agent?.processorStatistics()
    expect(st?.sources.correlate).toEqual({ received: 0, emitted: 3, delivered: 3, dropped: {} })
    for (const c of Object.values(st?.sources ?? {})) expect(c.received + c.emitted).toBe(c.delivered + Object.values(c.dropped).reduce((a, b) => a + b, 0))
    expect(st?.processors.correlate?.counters).toMatchObject({ incidents: 1, updates: 2, emitted: 3, tracked: 1, evicted: 0 })
    const text = await (await fetch(`${agent?.httpUrl}/metrics`)).text()
    expect(metric(text, 'tapio_processor_events_emitted_total', { collector: 'correlate' })).toBe(3)
    expect(metric(text, 'tapio_processor_state', { processor: 'correlate', type: 'correlate', counter: 'incidents' })).toBe(1)
    const status = (await (await fetch(`${agent?.httpUrl}/api/status`)).json()) as { processors: { sources: Record<string, { emitted: number }> } }
    expect(status.processors.sources.correlate?.emitted).toBe(3)
    // Kept for docs/processors.md's worked example.
    mkdirSync(join(process.cwd(), 'test-artifacts'), { recursive: true })
    writeFileSync(join(process.cwd(), 'test-artifacts', 'correlate-oom.ndjson'), `${lines.filter((l) => /"type":"(kernel\.oom\.kill|k8s\.pod\.(oom_killed|container_restarted|crash_loop_backoff)|tapio\.correlation\.[a-z]+)"/.test(l)).join('\n')}\n`)
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
