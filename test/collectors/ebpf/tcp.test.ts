import { createServer, type Server, type Socket, connect } from 'node:net'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { EbpfCollector } from '../../../src/collectors/ebpf/index.js'
import type { EventInput } from '../../../src/events/event.js'
import { data, Sink, waitFor } from './helpers.js'

function listen(host: string): Promise<{ server: Server; port: number; accepted: Socket[] }> {
  const accepted: Socket[] = []
  const server = createServer((s) => {
    accepted.push(s)
    s.on('error', () => {})
  })
  return new Promise((resolve, reject) => {
    server.once('error', reject)
    server.listen(0, host, () => {
      const addr = server.address()
      if (addr === null || typeof addr === 'string') return reject(new Error('no port'))
      resolve({ server, port: addr.port, accepted })
    })
  })
}

function open(host: string, port: number): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const s = connect({ host, port }, () => resolve(s))
    s.once('error', reject)
  })
}

function closeSocket(s: Socket): Promise<void> {
  return new Promise((resolve) => {
    s.once('close', () => resolve())
    s.end()
  })
}

describe('ebpf collector: TCP connection lifecycle', () => {
  const collector = new EbpfCollector({ programs: { exec: false, exit: false, oom: false, tcp: true } })
  let sink: Sink
  const servers: Server[] = []

  beforeAll(async () => {
    await collector.start(AbortSignal.timeout(30_000))
    sink = new Sink(collector)
  })

  afterAll(async () => {
    for (const s of servers) await new Promise((r) => s.close(r))
    await collector.stop()
  })

  for (const [family, host] of [
    ['ipv4', '127.0.0.1'],
    ['ipv6', '::1'],
  ] as const) {
    it(`reports connect, accept and close with the right ports (${family})`, async () => {
      const { server, port, accepted } = await listen(host)
      servers.push(server)
      const client = await open(host, port)
      const clientPort = client.localPort ?? 0
      await waitFor('accepted socket', () => accepted.length === 1)
      await closeSocket(client)
      for (const s of accepted) s.destroy()

      const isConn = (type: string) => (e: EventInput) =>
        e.type === type && data(e).family === family && (data(e).sport === clientPort || data(e).dport === clientPort)
      const connectEv = await waitFor('connect', () => sink.find(isConn('kernel.tcp.connect')))
      expect(data(connectEv)).toMatchObject({ sport: clientPort, dport: port, saddr: host, daddr: host, pid: process.pid, ownerKnown: true })
      const acceptEv = await waitFor('accept', () => sink.find(isConn('kernel.tcp.accept')))
      expect(data(acceptEv)).toMatchObject({ sport: port, dport: clientPort, oldState: 'SYN_RECV', newState: 'ESTABLISHED' })
      // Both ends close: the client's socket and the server's accepted one.
      await waitFor('two closes', () => {
        const closes = sink.events.filter(isConn('kernel.tcp.close'))
        return closes.length >= 2 ? closes : undefined
      })
      const closes = sink.events.filter(isConn('kernel.tcp.close'))
      const clientClose = closes.find((e) => data(e).sport === clientPort)
      const serverClose = closes.find((e) => data(e).sport === port)
      expect(data(clientClose ?? connectEv)).toMatchObject({ dport: port, newState: 'CLOSE', ownerKnown: true, pid: process.pid })
      expect(data(serverClose ?? connectEv)).toMatchObject({ dport: clientPort, newState: 'CLOSE' })
      expect(data(clientClose ?? connectEv).durationNs).toBeGreaterThan(0)
    })
  }

  it('reports a refused connect as connect_failed', async () => {
    const { server, port } = await listen('127.0.0.1')
    await new Promise((r) => server.close(r))
    await open('127.0.0.1', port).then(
      (s) => s.destroy(),
      () => undefined,
    )
    const failed = await waitFor('connect_failed', () =>
      sink.find((e) => e.type === 'kernel.tcp.connect_failed' && data(e).dport === port),
    )
    expect(failed.severity).toBe('warning')
    expect(data(failed)).toMatchObject({ oldState: 'SYN_SENT', newState: 'CLOSE', pid: process.pid })
  })
})
