/**
 * One agent's kubernetes collector in its own process (for the leader-election tests, which kill
 * it): argv[2] is JSON `{ kubeconfig, node, identity, leaderElection }`. Prints one JSON line per
 * event (`{"event": …}`) and a status line every 50 ms (`{"status": …}`); stops on SIGTERM.
 */
import { KubernetesCollector } from '../../../src/collectors/kubernetes/index.js'

interface ChildArgs {
  readonly kubeconfig: string
  readonly node: string
  readonly identity: string
  readonly leaderElection: Record<string, unknown>
}

const args = JSON.parse(process.argv[2] ?? '{}') as ChildArgs
const collector = new KubernetesCollector({
  kubeconfig: args.kubeconfig,
  context: 'fake',
  resources: ['pods', 'services', 'nodes'],
  selectors: { pods: { fieldSelector: `spec.nodeName=${args.node}` } },
  backoff: { initialMs: 50, maxMs: 400, jitter: 0.2 },
  minHealthyWatchMs: 300,
  leaderElection: { enabled: true, namespace: 'tapio-system', identity: args.identity, ...args.leaderElection },
})

const write = (o: unknown) => process.stdout.write(`${JSON.stringify(o)}\n`)

function status(): void {
  const h = collector.health()
  const s = collector.statistics()
  const details = (h.details ?? {}) as { election?: Record<string, unknown>; watches?: Record<string, { watches: number; connected: boolean }> }
  write({
    status: {
      at: Date.now(),
      election: details.election,
      pods: details.watches?.pods ?? null,
      clusterWatches: s.gauges?.cluster_watches ?? 0,
      health: h.status,
    },
  })
}

async function main(): Promise<void> {
  await collector.start(new AbortController().signal)
  const timer = setInterval(status, 50)
  process.once('SIGTERM', () => {
    clearInterval(timer)
    void collector.stop()
  })
  for await (const item of collector.events()) {
    for (const e of Array.isArray(item) ? item : [item]) write({ event: e })
  }
  clearInterval(timer)
  status()
}

main().catch((err: unknown) => {
  process.stderr.write(`agent-child: ${err instanceof Error ? err.stack ?? err.message : String(err)}\n`)
  process.exitCode = 1
})
