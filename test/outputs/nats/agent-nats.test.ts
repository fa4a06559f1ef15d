import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import { waitFor } from '../../support/wait.js'
import { idCounts, metric, metrics, natsStatus, Processes, until } from './agents.js'
import { destroyAllNatsServers, freePort, NatsServer } from './nats-server.js'

const finite = (total: number, rate = 2000) => `  alpha: { kind: synthetic, rate: ${rate}, batchSize: 50, total: ${total}, policy: { restart: transient } }
  beta: { kind: synthetic, rate: ${rate}, batchSize: 20, total: ${total / 2}, type: other.kind.of_event, policy: { restart: transient } }`

describe('tapio-agent -> NATS JetStream -> tapio-agent consume (real processes, one server)', () => {
  let server: NatsServer
  let procs: Processes
  beforeAll(async () => {
    server = await NatsServer.start({ name: 'e2e' })
  })
  afterEach(async () => {
    await procs.stopAll()
  })
  afterAll(async () => {
    await destroyAllNatsServers()
  })

  it('two nodes publish; a durable reader restarted mid-stream sees every event exactly once', async () => {
    procs = new Processes()
    const a = procs.agent('node-a', [server.url], finite(3000))
    const b = procs.agent('node-b', [server.url], finite(3000))
    const r1 = procs.consumer([server.url], 'e2e-reader')
    await waitFor(() => r1.events().length >= 2000, 'the first reader to print 2000 events', 60_000).catch((e: unknown) => {
      throw new Error(`${String(e)}\nreader: ${r1.stderr}\nagent a: ${a.stderr.slice(-3000)}\nagent b: ${b.stderr.slice(-3000)}`)
    })
    r1.signal('SIGTERM')
    expect(await r1.exited).toBe(0)
    const r2 = procs.consumer([server.url], 'e2e-reader')
    await waitFor(() => idCounts([r1, r2]).size >= 9000, 'all 9000 events across both readers', 90_000).catch((e: unknown) => {
      throw new Error(`${String(e)} (have ${idCounts([r1, r2]).size})\nreader 1: ${r1.stderr}\nreader 2: ${r2.stderr}`)
    })
    const counts = idCounts([r1, r2])
    expect(counts.size).toBe(9000)
    expect([...counts.values()].every((n) => n === 1)).toBe(true)
    expect(r1.events().length + r2.events().length).toBe(9000)
    for (const agent of [a, b]) {
      const text = await metrics(agent)
      expect(metric(text, 'tapio_nats_acked_total')).toBe(4500)
      expect(metric(text, 'tapio_nats_failed_total', { reason: 'shutdown' })).toBe(0)
      expect(metric(text, 'tapio_nats_failed_total', { reason: 'retries_exhausted' })).toBe(0)
      expect(metric(text, 'tapio_nats_connected')).toBe(1)
      expect(metric(text, 'tapio_output_events_total', { output: 'nats' })).toBe(4500)
    }
    const bySource = new Map<string, number>()
    for (const e of [...r1.events(), ...r2.events()]) bySource.set(e.source, (bySource.get(e.source) ?? 0) + 1)
    expect(bySource).toEqual(new Map([['alpha', 6000], ['beta', 3000]]))
  }, 240_000)

  it('NATS down: /readyz is 503 naming the output, events wait (counted pending); after it returns the backlog arrives once', async () => {
    procs = new Processes()
    const agent = procs.agent('node-outage', [server.url], finite(4000, 1000))
    const url = await agent.url()
    await until(async () => (await natsStatus(agent)).details.ackedEvents > 500, 'first 500 events acknowledged')
    await server.kill()
    await until(async () => {
      const r = await fetch(`${url}/readyz`)
      const body = (await r.json()) as { failing: { name: string; state: string }[] }
      // The state comes from the output's connection machine: the client reconnecting, or a new connection being made.
      return r.status === 503 && body.failing.some((f) => f.name === 'output:nats' && /^(disconnected, reconnecting|connecting)$/.test(f.state))
    }, '/readyz to report the NATS output and its connection state')
    await until(async () => (await natsStatus(agent)).details.pendingEvents > 0, 'events pending while NATS is down')
    const attempts = (await natsStatus(agent)).details.connectAttempts
    await until(async () => (await natsStatus(agent)).details.connectAttempts >= attempts + 2, 'the agent to keep trying to reconnect')
    const down = await metrics(agent)
    expect(metric(down, 'tapio_nats_connect_attempts_total')).toBeGreaterThanOrEqual(attempts + 2)
    expect(metric(down, 'tapio_nats_connected')).toBe(0)
    const during = await natsStatus(agent)
    expect(during.ready).toBe(false)
    expect(['connecting', 'disconnected']).toContain(during.details.connection.link)
    expect(during.lastError).toMatch(/disconnect|connect/)
    await server.run()
    await until(async () => (await natsStatus(agent)).details.ackedEvents === 6000, 'the backlog acknowledged after NATS returned', 90_000)
    const after = await natsStatus(agent)
    expect(after.details.failedEvents.total).toBe(0)
    expect(after.details.reconnects).toBeGreaterThanOrEqual(1)
    expect((await fetch(`${url}/metrics`)).status).toBe(200)
    const text = await metrics(agent)
    expect(metric(text, 'tapio_nats_connected')).toBe(1)
    expect(metric(text, 'tapio_nats_reconnects_total')).toBeGreaterThanOrEqual(1)
    const reader = procs.consumer([server.url], 'outage-reader', 'tapio.events.node-outage.>')
    await waitFor(() => idCounts([reader]).size >= 6000, 'the reader to see all 6000 events', 90_000)
    expect(reader.events().length).toBe(6000)
  }, 240_000)

  it('SIGTERM while NATS is unreachable: the agent exits 0 and counts what it could not deliver', async () => {
    procs = new Processes()
    const port = await freePort()
    const agent = procs.agent('node-down', [`nats://127.0.0.1:${port}`], '  alpha: { kind: synthetic, rate: 2000, batchSize: 50 }', ', maxPendingEvents: 500, closeTimeoutMs: 300', 'supervisor: { stopTimeoutMs: 500 }\nbuffer: { capacity: 1000 }\n')
    const url = await agent.url()
    await until(async () => {
      const r = await fetch(`${url}/readyz`)
      const body = (await r.json()) as { failing: { name: string; reason: string | null }[] }
      return r.status === 503 && body.failing.some((f) => f.name === 'output:nats' && /cannot connect/.test(f.reason ?? ''))
    }, '/readyz to report the unreachable NATS output')
    await until(async () => (await natsStatus(agent)).details.pendingEvents >= 500, 'the output to fill up to maxPendingEvents')
    agent.signal('SIGTERM')
    expect(await agent.exited).toBe(0)
    const closing = agent.logs().find((l) => /not acknowledged when closing/.test(l.msg))
    expect(closing?.events).toBeGreaterThanOrEqual(500)
  }, 240_000)
})
