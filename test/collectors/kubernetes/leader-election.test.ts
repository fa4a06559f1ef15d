/**
 * Cluster-wide resources collected once per cluster (issue 18): three agents, each a real
 * process with its own TCP path to one API server, elect a leader on a Lease. Only the leader
 * runs the cluster-wide watches; when it is killed (SIGKILL) or its network stalls, another takes
 * over within leaseDuration + retryPeriod, and across the handover every cluster-wide change is
 * reported exactly once while the survivors' node-local pod watches stay up.
 */
import { type ChildProcess, spawn } from 'node:child_process'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import type { EventInput } from '../../../src/events/event.js'
import { FakeApiServer, type JsonObject, kubeconfigYaml } from './fake-apiserver.js'
import { KubernetesCollector } from '../../../src/collectors/kubernetes/index.js'
import { changeKeys, fresh, waitFor } from './harness.js'
import { StallProxy } from './stall-proxy.js'

const LEASE = { leaseDurationMs: 4_000, renewDeadlineMs: 2_000, retryPeriodMs: 1_000 }
const CHILD = join(import.meta.dirname, '..', '..', '..', 'dist', 'test', 'collectors', 'kubernetes', 'agent-child.js')

interface Status {
  readonly at: number
  readonly election?: {
    state: string
    holder: string | null
    transitions: number
    sinceRenewMs: number | null
    resumed: number
    resyncs: number
    uncommitted: number
  }
  readonly pods: { watches: number; connected: boolean } | null
  readonly clusterWatches: number
}

class Agent {
  readonly events: EventInput[] = []
  readonly statuses: Status[] = []
  readonly exited: Promise<void>
  private buffer = ''
  stderr = ''

  constructor(
    readonly name: string,
    readonly node: string,
    readonly child: ChildProcess,
    readonly proxy: StallProxy,
  ) {
    child.stdout?.on('data', (chunk: Buffer) => {
      this.buffer += chunk.toString('utf8')
      let nl = this.buffer.indexOf('\n')
      while (nl >= 0) {
        const line = this.buffer.slice(0, nl)
        this.buffer = this.buffer.slice(nl + 1)
        nl = this.buffer.indexOf('\n')
        const msg = JSON.parse(line) as { event?: EventInput; status?: Status }
        if (msg.event) this.events.push(msg.event)
        if (msg.status) this.statuses.push(msg.status)
      }
    })
    child.stderr?.on('data', (c: Buffer) => {
      this.stderr += c.toString('utf8')
    })
    this.exited = new Promise((resolve) => child.once('exit', () => resolve()))
  }

  get status(): Status | undefined {
    return this.statuses[this.statuses.length - 1]
  }

  get state(): string | undefined {
    return this.status?.election?.state
  }

  alive(): boolean {
    return this.child.exitCode === null && this.child.signalCode === null
  }
}

describe('kubernetes collector: cluster-wide resources under leader election (3 agent processes)', () => {
  let server: FakeApiServer | undefined
  let agents: Agent[] = []
  let dir: string | undefined
  let writer: NodeJS.Timeout | undefined

  afterEach(async () => {
    clearInterval(writer)
    for (const a of agents) if (a.alive()) a.child.kill('SIGKILL')
    await Promise.all(agents.map((a) => a.exited))
    await Promise.all(agents.map((a) => a.proxy.stop()))
    agents = []
    await server?.stop()
    server = undefined
    if (dir) rmSync(dir, { recursive: true, force: true })
    dir = undefined
  })

  async function startAgents(s: FakeApiServer): Promise<Agent[]> {
    dir = mkdtempSync(join(tmpdir(), 'k8s-election-'))
    const port = Number(new URL(s.url).port)
    const out: Agent[] = []
    for (let i = 0; i < 3; i++) {
      const proxy = new StallProxy({ host: '127.0.0.1', port })
      await proxy.start()
      const kubeconfig = join(dir, `agent-${i}.yaml`)
      writeFileSync(kubeconfig, kubeconfigYaml(proxy.url))
      const args = { kubeconfig, node: `node-${i}`, identity: `agent-${i}`, leaderElection: LEASE }
      const child = spawn(process.execPath, [CHILD, JSON.stringify(args)], { stdio: ['ignore', 'pipe', 'pipe'] })
      out.push(new Agent(`agent-${i}`, `node-${i}`, child, proxy))
    }
    agents = out
    return out
  }

  function service(name: string): JsonObject {
    return {
      metadata: { name, namespace: 'shop', labels: { gen: '0' } },
      spec: { type: 'ClusterIP', clusterIP: '10.96.0.10', ports: [{ port: 80, protocol: 'TCP' }] },
    }
  }

  /** Creates and updates Services every 100 ms; returns the change keys the server made. */
  function writeServices(s: FakeApiServer): string[] {
    const made: string[] = []
    let n = 0
    writer = setInterval(() => {
      n++
      if ((n - 1) % 3 === 0) {
        const o = s.create('services', service(`svc-${n}`))
        const m = o.metadata as { uid: string; resourceVersion: string }
        made.push(`k8s.service.added ${m.uid} ${m.resourceVersion}`)
      } else {
        const name = `svc-${n - ((n - 1) % 3)}`
        const o = s.update('services', 'shop', name, (x) => {
          ;((x.metadata as JsonObject).labels as Record<string, string>).gen = String(n)
        })
        const m = o.metadata as { uid: string; resourceVersion: string }
        made.push(`k8s.service.updated ${m.uid} ${m.resourceVersion}`)
      }
    }, 100)
    return made
  }

  function pod(name: string, node: string): JsonObject {
    const p = fresh('pod', name, 'shop')
    ;(p.spec as JsonObject).nodeName = node
    return p
  }

  async function elected(all: Agent[]): Promise<Agent> {
    return waitFor(
      'one leader and two followers',
      () => {
        const states = all.map((a) => a.state)
        const leaders = all.filter((a) => a.state === 'leader')
        return leaders.length === 1 && states.filter((x) => x === 'follower').length === 2 ? leaders[0] : undefined
      },
      30_000,
    )
  }

  /** Every change the server made was reported exactly once, across all agents. */
  function expectExactlyOnce(made: readonly string[], all: readonly Agent[]): void {
    const reported = all.flatMap((a) => changeKeys(a.events).filter((k) => k.startsWith('k8s.service.')))
    const counts = new Map<string, number>()
    for (const k of reported) counts.set(k, (counts.get(k) ?? 0) + 1)
    const missing = made.filter((k) => !counts.has(k))
    const twice = [...counts].filter(([, c]) => c > 1).map(([k]) => k)
    expect(missing, 'cluster-wide changes never reported').toEqual([])
    expect(twice, 'cluster-wide changes reported twice').toEqual([])
    expect(reported.length).toBe(made.length)
  }

  /** The node-local pods watch of each agent was opened once and stayed connected throughout. */
  function expectPodsWatchNeverPaused(a: Agent, since: number): void {
    const after = a.statuses.filter((s) => s.at >= since)
    expect(after.length).toBeGreaterThan(10)
    for (const st of after) expect(st.pods, `${a.name} pods watch at ${st.at}`).toMatchObject({ watches: 1, connected: true })
  }

  async function handover(kind: 'kill' | 'stall'): Promise<void> {
    server = new FakeApiServer()
    const s = server
    await s.start()
    s.autoBookmark(500)
    const beforeKeys: string[] = []
    for (let i = 0; i < 5; i++) {
      const m = s.create('services', service(`before-${i}`)).metadata as { uid: string; resourceVersion: string }
      beforeKeys.push(`k8s.service.added ${m.uid} ${m.resourceVersion}`)
    }
    s.create('nodes', { metadata: { name: 'node-0' } })
    const all = await startAgents(s)
    const leader = await elected(all)
    const followers = all.filter((a) => a !== leader)
    await waitFor('watches open', () => s.openWatchesByResource().pods === 3 && s.openWatchesByResource().services === 1)
    // Exactly one agent runs the cluster-wide watches; every agent its own node's pods.
    const watchesBefore = s.openWatchesByResource()
    expect(watchesBefore).toEqual({ pods: 3, services: 1, nodes: 1 })
    expect(leader.status?.clusterWatches).toBe(2)
    for (const f of followers) expect(f.status?.clusterWatches).toBe(0)

    const made = writeServices(s)
    const upSince = Date.now()
    await new Promise((r) => setTimeout(r, 1_500))
    const t0 = Date.now()
    if (kind === 'kill') leader.child.kill('SIGKILL')
    else leader.proxy.stall()
    // Pods keep arriving on the survivors' nodes during the handover.
    let podN = 0
    const podWriter = setInterval(() => {
      for (const f of followers) s.create('pods', pod(`p-${f.node}-${podN}`, f.node))
      podN++
    }, 200)
    try {
      const next = await waitFor('a new leader', () => followers.find((f) => f.state === 'leader'), 20_000)
      const firstLeaderStatus = next.statuses.find((st) => st.at >= t0 && st.election?.state === 'leader') as Status
      const handoverMs = firstLeaderStatus.at - t0
      console.log(`${kind}: ${next.name} leads ${handoverMs} ms after the ${kind} (bound ${LEASE.leaseDurationMs + LEASE.retryPeriodMs} ms)`)
      expect(handoverMs).toBeLessThanOrEqual(LEASE.leaseDurationMs + LEASE.retryPeriodMs)
      if (kind === 'stall') {
        // The stalled leader stepped down on its own (renew deadline) and closed its cluster-wide watches.
        const down = await waitFor('the stalled leader steps down', () => leader.statuses.find((st) => st.at >= t0 && st.election?.state !== 'leader'))
        expect(down.clusterWatches).toBe(0)
        expect(down.at - t0).toBeLessThan(LEASE.leaseDurationMs)
        expect(down.at).toBeLessThan(firstLeaderStatus.at)
      }
      await waitFor('cluster watches on the new leader', () => s.openWatchesByResource().services === 1 && next.status?.clusterWatches === 2)
      // It resumed both cluster-wide watches from the versions its predecessor had recorded.
      expect(next.status?.election).toMatchObject({ state: 'leader', holder: next.name, resumed: 2, resyncs: 0 })
      for (const o of followers.filter((f) => f !== next)) {
        await waitFor(`${o.name} to follow ${next.name}`, () => o.state === 'follower' && o.status?.election?.holder === next.name)
      }
      await new Promise((r) => setTimeout(r, 1_500))
    } finally {
      clearInterval(podWriter)
      clearInterval(writer)
    }
    // Everything written is reported: the last changes wait for one more renewal.
    await waitFor('every change reported', () => {
      const keys = new Set(all.flatMap((a) => changeKeys(a.events)))
      return made.every((k) => keys.has(k))
    })
    await new Promise((r) => setTimeout(r, 2 * LEASE.retryPeriodMs))
    expectExactlyOnce([...beforeKeys, ...made], all)
    // The handover re-emitted nothing: the 5 Services from before were reported once, by the first leader.
    const beforeAdds = all.flatMap((a) => a.events.filter((e) => e.type === 'k8s.service.added' && String((e.data as { name: string }).name).startsWith('before-')))
    expect(beforeAdds).toHaveLength(5)
    expect(all.flatMap((a) => a.events).filter((e) => (e.data as { resync?: boolean } | undefined)?.resync === true)).toHaveLength(0)
    for (const f of followers) {
      expectPodsWatchNeverPaused(f, upSince)
      const own = f.events.filter((e) => e.type === 'k8s.pod.added').map((e) => (e.data as { name: string }).name)
      expect(own.length).toBe(podN)
      expect(own.every((n) => n.startsWith(`p-${f.node}-`))).toBe(true)
    }
    const watchesAfter = s.openWatchesByResource()
    console.log(`open watches with 3 agents: ${JSON.stringify(watchesBefore)} before the ${kind}, ${JSON.stringify(watchesAfter)} after`)
    expect(watchesAfter.services).toBe(1)
    expect(watchesAfter.nodes).toBe(1)
  }

  it('kill -9 of the leader: another takes over within leaseDuration + retryPeriod; every change reported once', async () => {
    await handover('kill')
  })

  it('the leader’s network stalls: it steps down, another takes over within leaseDuration + retryPeriod; every change reported once', async () => {
    await handover('stall')
  })
})

describe('kubernetes collector: watch connections for 3 agents, without and with leader election', () => {
  it('without: every agent watches every resource (3 x 3); with: pods per agent, cluster-wide once (3 + 2)', async () => {
    const s = new FakeApiServer()
    await s.start()
    const dir = mkdtempSync(join(tmpdir(), 'k8s-watches-'))
    const kubeconfig = join(dir, 'config')
    writeFileSync(kubeconfig, kubeconfigYaml(s.url))
    const collectors: KubernetesCollector[] = []
    try {
      const run = async (leaderElection: boolean) => {
        for (let i = 0; i < 3; i++) {
          const c = new KubernetesCollector({
            kubeconfig,
            context: 'fake',
            resources: ['pods', 'services', 'nodes'],
            selectors: { pods: { fieldSelector: `spec.nodeName=node-${i}` } },
            leaderElection: { enabled: leaderElection, identity: `agent-${i}`, ...LEASE },
          })
          collectors.push(c)
          await c.start(new AbortController().signal)
        }
      }
      await run(false)
      await waitFor('9 watches', () => s.openWatches === 9)
      const without = s.openWatchesByResource()
      expect(without).toEqual({ pods: 3, services: 3, nodes: 3 })
      await Promise.all(collectors.splice(0).map((c) => c.stop()))
      await waitFor('no watches', () => s.openWatches === 0)
      await run(true)
      await waitFor('5 watches', () => s.openWatches === 5)
      const withElection = s.openWatchesByResource()
      expect(withElection).toEqual({ pods: 3, services: 1, nodes: 1 })
      console.log(`open watches, 3 agents: without election ${JSON.stringify(without)}, with ${JSON.stringify(withElection)}`)
      // The follower's readiness is not affected by following: its health is ok.
      await waitFor('one leader, two followers', () => {
        const states = collectors.map((c) => c.clusterScope?.status().state)
        return states.sort().join() === 'follower,follower,leader'
      })
      await waitFor('all ok', () => collectors.every((c) => c.health().status === 'ok' && /^cluster-wide: (leader|follower)/.test(c.health().message ?? '')))
      const leaderId = collectors.find((c) => c.clusterScope?.status().state === 'leader')?.clusterScope?.status().identity
      expect(collectors.map((c) => c.health().message).sort()).toEqual([
        'cluster-wide: follower of ' + String(leaderId),
        'cluster-wide: follower of ' + String(leaderId),
        'cluster-wide: leader (lease tapio-system/tapio-agent-cluster)',
      ])
      // A graceful stop of the leader gives the lease up: another leads without waiting for expiry.
      const leader = collectors.find((c) => c.clusterScope?.status().state === 'leader') as KubernetesCollector
      const t0 = Date.now()
      await leader.stop()
      const rest = collectors.filter((c) => c !== leader)
      await waitFor('a new leader', () => rest.some((c) => c.clusterScope?.status().state === 'leader'))
      console.log(`graceful stop: a new leader after ${Date.now() - t0} ms`)
      expect(s.lease('tapio-system', 'tapio-agent-cluster')?.metadata).toBeDefined()
    } finally {
      await Promise.all(collectors.map((c) => c.stop()))
      await s.stop()
      rmSync(dir, { recursive: true, force: true })
    }
  })
})

describe('kubernetes collector: enrichment on a follower (owners fetched by name, not watched)', () => {
  it('a follower names its pods’ Deployment from one GET of the ReplicaSet; only the leader watches ReplicaSets', async () => {
    const s = new FakeApiServer()
    await s.start()
    const dir = mkdtempSync(join(tmpdir(), 'k8s-owners-'))
    const kubeconfig = join(dir, 'config')
    writeFileSync(kubeconfig, kubeconfigYaml(s.url))
    const collectors: KubernetesCollector[] = []
    const make = (i: number) =>
      new KubernetesCollector({
        kubeconfig,
        context: 'fake',
        resources: ['pods', 'replicasets', 'deployments'],
        selectors: { pods: { fieldSelector: `spec.nodeName=node-${i}` } },
        leaderElection: { enabled: true, identity: `agent-${i}`, ...LEASE },
      })
    try {
      s.create('deployments', fresh('deployment', 'web', 'shop'))
      s.create('replicasets', fresh('replicaset', 'web-7d9c5b8f6d', 'shop'))
      const leader = make(0)
      collectors.push(leader)
      await leader.start(new AbortController().signal)
      await waitFor('agent-0 leads', () => leader.clusterScope?.status().state === 'leader')
      const follower = make(1)
      collectors.push(follower)
      await follower.start(new AbortController().signal)
      const events: EventInput[] = []
      const consumed = (async () => {
        for await (const item of follower.events()) events.push(...(Array.isArray(item) ? item : [item]))
      })()
      await waitFor('agent-1 follows', () => follower.clusterScope?.status().state === 'follower')
      const p = fresh('pod', 'web-1', 'shop')
      ;(p.spec as JsonObject).nodeName = 'node-1'
      const uid = (s.create('pods', p).metadata as { uid: string }).uid
      const added = await waitFor('the pod on the follower', () => events.find((e) => e.type === 'k8s.pod.added'))
      expect(added.k8s?.workload).toEqual({ kind: 'Deployment', name: 'web' })
      expect(follower.metadata.podByUid(uid)?.ownerChain).toEqual([
        { kind: 'ReplicaSet', name: 'web-7d9c5b8f6d' },
        { kind: 'Deployment', name: 'web' },
      ])
      // One GET by name; ReplicaSets and Deployments are watched once, by the leader.
      const gets = s.requests.filter((r) => r.resource === 'replicasets' && r.path.endsWith('/web-7d9c5b8f6d'))
      expect(gets).toHaveLength(1)
      expect(s.openWatchesByResource()).toMatchObject({ replicasets: 1, deployments: 1, pods: 2 })
      // A second pod of the same ReplicaSet needs no fetch.
      const q = fresh('pod', 'web-2', 'shop')
      ;(q.spec as JsonObject).nodeName = 'node-1'
      s.create('pods', q)
      await waitFor('the second pod', () => events.filter((e) => e.type === 'k8s.pod.added').length === 2)
      expect(events.filter((e) => e.type === 'k8s.pod.added').map((e) => e.k8s?.workload?.name)).toEqual(['web', 'web'])
      expect(s.requests.filter((r) => r.resource === 'replicasets' && r.path.endsWith('/web-7d9c5b8f6d'))).toHaveLength(1)
      expect(follower.statistics().counters).toMatchObject({ owners_fetched: 1, owners_failed: 0 })
      await follower.stop()
      await consumed
    } finally {
      await Promise.all(collectors.map((c) => c.stop()))
      await s.stop()
      rmSync(dir, { recursive: true, force: true })
    }
  })
})
