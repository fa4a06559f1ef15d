import { afterAll, describe, expect, it } from 'vitest'
import { consumeEvents, type EventConsumer } from '../../../src/outputs/nats/index.js'
import { waitFor } from '../../support/wait.js'
import { metric, metrics, natsStatus, Processes, until } from './agents.js'
import { destroyAllNatsServers, NatsCluster, type NatsServer } from './nats-server.js'

/** Read in the background, acknowledging each event; counts how often each id was handed out. */
function reader(servers: string[], durable: string, rememberIds?: number) {
  const ac = new AbortController()
  const seen = new Map<string, number>()
  const consumer: EventConsumer = consumeEvents({ servers, durable, signal: ac.signal, ackWaitMs: 3000, ...(rememberIds !== undefined ? { rememberIds } : {}) })
  const done = (async () => {
    for await (const c of consumer) {
      seen.set(c.event.id, (seen.get(c.event.id) ?? 0) + 1)
      await c.ack()
    }
  })()
  return {
    seen,
    consumer,
    stop: async () => {
      ac.abort()
      await done
    },
    done,
  }
}

describe('NATS output against a 3-node JetStream cluster (replicas 3) with a node killed mid-stream', () => {
  const procs = new Processes()
  afterAll(async () => {
    await procs.stopAll()
    await destroyAllNatsServers()
  })

  it('two agents publish, the server of one agent and of the reader is killed, and the reader still gets every event exactly once', async () => {
    const cluster = await NatsCluster.start(3)
    const urls = cluster.urls
    const collectors = `  alpha: { kind: synthetic, rate: 1000, batchSize: 25, total: 6000, policy: { restart: transient } }
  beta: { kind: synthetic, rate: 500, batchSize: 10, total: 3000, type: other.kind.of_event, policy: { restart: transient } }`
    // node-a and the reader are given only the first server: they learn the others from the
    // cluster's gossip, and that first server is the one killed, so both must fail over.
    const victim = cluster.servers[0] as NatsServer
    const a = procs.agent('node-a', [victim.url], collectors, ', stream: { replicas: 3 }')
    const b = procs.agent('node-b', urls, collectors, ', stream: { replicas: 3 }')
    const r = reader([victim.url], 'cluster-reader')
    try {
      await until(async () => (await natsStatus(a)).details.ackedEvents > 1500, 'node-a to have 1500 events acknowledged', 120_000)
      await waitFor(() => r.seen.size > 0, 'the reader to have read something', 120_000)
      await victim.kill()
      for (const agent of [a, b]) await until(async () => (await natsStatus(agent)).details.ackedEvents === 9000, 'all 9000 events of each agent acknowledged', 180_000)
      await waitFor(() => r.seen.size >= 18_000, 'the reader to see all 18000 events', 180_000).catch((e: unknown) => {
        throw new Error(`${String(e)} (have ${r.seen.size}; ${JSON.stringify(r.consumer.statistics())})`)
      })
      expect(r.seen.size).toBe(18_000)
      expect([...r.seen.values()].every((n) => n === 1)).toBe(true)
      for (const agent of [a, b]) {
        const s = await natsStatus(agent)
        expect(s.details.failedEvents.total).toBe(0)
        expect(s.details.pendingEvents).toBe(0)
        expect(metric(await metrics(agent), 'tapio_nats_acked_total')).toBe(9000)
      }
      expect((await natsStatus(a)).details.reconnects).toBeGreaterThanOrEqual(1)
      expect(r.consumer.statistics().events).toBe(18_000)
    } finally {
      await r.stop()
    }
    // The stream itself holds each event once: a second reader that remembers no ids sees no copies.
    const all = reader(urls, 'cluster-audit', 0)
    try {
      await waitFor(() => all.seen.size >= 18_000, 'the audit reader to see 18000 events', 180_000)
      await waitFor(() => all.consumer.statistics().events >= 18_000, 'audit counts settled')
      expect(all.consumer.statistics().events).toBe(18_000)
      expect([...all.seen.values()].every((n) => n === 1)).toBe(true)
    } finally {
      await all.stop()
    }
  }, 600_000)
})
