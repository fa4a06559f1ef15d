/**
 * The kubernetes collector's leader election in a real agent's /metrics and /api/status: state,
 * holder, time since renewal, transitions; promtool accepts the exposition; /readyz stays ready.
 */
import { spawn } from 'node:child_process'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import { FakeApiServer, kubeconfigYaml } from '../collectors/kubernetes/fake-apiserver.js'
import { AgentProcess, metric } from './support.js'

const dir = mkdtempSync(join(tmpdir(), 'tapio-election-metrics-'))
afterAll(() => rmSync(dir, { recursive: true, force: true }))

function promtool(text: string): Promise<{ code: number | null; out: string }> {
  return new Promise((resolve, reject) => {
    const p = spawn('promtool', ['check', 'metrics'])
    let out = ''
    p.stdout.on('data', (d: Buffer) => (out += d.toString()))
    p.stderr.on('data', (d: Buffer) => (out += d.toString()))
    p.on('error', reject)
    p.on('close', (code) => resolve({ code, out }))
    p.stdin.end(text)
  })
}

describe('agent: leader election in /metrics and /api/status', () => {
  it('shows the election state, holder, time since renewal and transitions; /readyz is ready', async () => {
    const server = new FakeApiServer()
    await server.start()
    const kubeconfig = join(dir, 'kubeconfig')
    writeFileSync(kubeconfig, kubeconfigYaml(server.url))
    const config = join(dir, 'agent.yaml')
    writeFileSync(
      config,
      `http: { port: 0 }
collectors:
  kube:
    kind: kubernetes
    kubeconfig: ${kubeconfig}
    context: fake
    resources: [pods, services]
    selectors: { pods: { fieldSelector: "spec.nodeName=node-1" } }
    leaderElection: { enabled: true, identity: agent-a, leaseDurationMs: 4000, renewDeadlineMs: 2000, retryPeriodMs: 1000 }
outputs: { stdout: { enabled: true } }
`,
    )
    const agent = new AgentProcess(['--config', config])
    try {
      const url = await agent.url()
      let text = ''
      for (let i = 0; i < 100; i++) {
        text = await (await fetch(`${url}/metrics`)).text()
        if (metric(text, 'tapio_kubernetes_election_state', { collector: 'kube', state: 'leader' }) === 1) break
        await new Promise((r) => setTimeout(r, 100))
      }
      expect(metric(text, 'tapio_kubernetes_election_state', { collector: 'kube', state: 'leader' })).toBe(1)
      expect(metric(text, 'tapio_kubernetes_election_state', { collector: 'kube', state: 'follower' })).toBe(0)
      expect(metric(text, 'tapio_kubernetes_lease_holder_info', { collector: 'kube', holder: 'agent-a' })).toBe(1)
      const since = metric(text, 'tapio_kubernetes_lease_since_renew_seconds', { collector: 'kube' }) as number
      expect(since).toBeGreaterThanOrEqual(0)
      expect(since).toBeLessThan(4)
      expect(metric(text, 'tapio_collector_counted_total', { collector: 'kube', counter: 'election_transitions' })).toBe(1)
      expect(metric(text, 'tapio_collector_value', { collector: 'kube', gauge: 'cluster_watches' })).toBe(1)
      expect(metric(text, 'tapio_collector_value', { collector: 'kube', gauge: 'election_leader' })).toBe(1)
      const r = await promtool(text)
      // Known and not ours: prom-client's standard nodejs_active_*_total gauges.
      const findings = r.out
        .split('\n')
        .filter(Boolean)
        .filter((f) => !/^nodejs_active_\w+_total /.test(f))
      expect(findings).toEqual([])
      const status = (await (await fetch(`${url}/api/status`)).json()) as {
        collectors: Record<string, { source?: { counters: Record<string, number>; gauges?: Record<string, number> } }>
      }
      expect(status.collectors.kube?.source?.gauges).toMatchObject({ election_leader: 1, cluster_watches: 1 })
      expect(status.collectors.kube?.source?.counters).toMatchObject({ election_transitions: 1, election_leaderships: 1 })
      expect((await fetch(`${url}/readyz`)).status).toBe(200)
      expect(server.lease('tapio-system', 'tapio-agent-cluster')).toMatchObject({ spec: { holderIdentity: 'agent-a' } })
    } finally {
      await agent.stop()
      await server.stop()
    }
  })
})
