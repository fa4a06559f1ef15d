import { createServer, type Server, type Socket, connect as netConnect } from 'node:net'
import { jetstreamManager } from '@nats-io/jetstream'
import { connect } from '@nats-io/transport-node'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { makeEvent } from '../../../src/events/event.js'
import { consumeEvents, NatsOutput, parseNatsOutputConfig } from '../../../src/outputs/nats/index.js'
import { sleep, waitFor } from '../../support/wait.js'
import { destroyAllNatsServers, NatsServer } from './nats-server.js'

/**
 * A TCP relay that can hold back everything the server sends (acknowledgements included) while
 * passing what the client sends: the outage in which publishes are stored but never acknowledged.
 */
class AckHoldingProxy {
  held = false
  private readonly release: (() => void)[] = []
  private readonly sockets = new Set<Socket>()
  private constructor(private readonly server: Server) {}

  static async start(upstreamPort: number): Promise<AckHoldingProxy> {
    const server = createServer()
    const proxy = new AckHoldingProxy(server)
    server.on('connection', (client) => {
      const upstream = netConnect({ host: '127.0.0.1', port: upstreamPort })
      proxy.sockets.add(client).add(upstream)
      client.pipe(upstream)
      upstream.on('data', (chunk: Buffer) => {
        if (proxy.held) proxy.release.push(() => client.write(chunk))
        else client.write(chunk)
      })
      const end = () => {
        client.destroy()
        upstream.destroy()
      }
      client.on('error', end).on('close', end)
      upstream.on('error', end).on('close', end)
    })
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
    return proxy
  }

  get url(): string {
    const a = this.server.address()
    return `nats://127.0.0.1:${typeof a === 'object' && a ? a.port : 0}`
  }

  hold(): void {
    this.held = true
  }

  resume(): void {
    this.held = false
    for (const f of this.release.splice(0)) f()
  }

  async close(): Promise<void> {
    for (const s of this.sockets) s.destroy()
    await new Promise<void>((resolve) => this.server.close(() => resolve()))
  }
}

describe('an outage longer than the stream duplicate window (real nats-server)', () => {
  let server: NatsServer
  let proxy: AckHoldingProxy
  beforeAll(async () => {
    server = await NatsServer.start({ name: 'dupwin' })
    proxy = await AckHoldingProxy.start(server.port)
  })
  afterAll(async () => {
    await proxy.close()
    await destroyAllNatsServers()
  })

  it('resends past the window are counted as possibly duplicated (an upper bound of the copies stored); the reader still sees each event once', async () => {
    const windowMs = 1000
    const out = new NatsOutput(
      parseNatsOutputConfig({ servers: [proxy.url], stream: { name: 'DUPWIN', duplicateWindowMs: windowMs }, maxEventsPerMessage: 5, ackTimeoutMs: 300, retry: { initialMs: 100, maxMs: 200 } }),
      { node: 'n1' },
    )
    const sent = Array.from({ length: 20 }, (_, i) => makeEvent('dup', 'test.thing.happened', { i }))
    try {
      out.start()
      await waitFor(() => out.health().ready, 'the output connected and the stream created through the relay')
      proxy.hold()
      await out.write(sent)
      // The outage: stored, never acknowledged, resent every few hundred ms for 2.5 windows.
      await sleep(windowMs * 2.5)
      expect(out.statistics().ackedEvents).toBe(0)
      proxy.resume()
      await waitFor(() => out.statistics().ackedEvents === sent.length, 'every event acknowledged after the outage')
    } finally {
      await out.close()
    }
    const s = out.statistics()
    const nc = await connect({ servers: server.url })
    let stored: number
    try {
      const info = await (await jetstreamManager(nc)).streams.info('DUPWIN')
      expect(info.config.duplicate_window).toBe(windowMs * 1e6)
      stored = info.state.messages
    } finally {
      await nc.close()
    }
    // 20 events in messages of 5: 4 messages; every further stored one is a copy.
    const extraEvents = (stored - 4) * 5
    expect(extraEvents).toBeGreaterThan(0)
    expect(s.possiblyDuplicatedEvents).toBeGreaterThanOrEqual(extraEvents)
    // Nothing is lost or counted as failed.
    expect(s.failedEvents.total).toBe(0)

    // A reader skips the copies by event id: each event once.
    const ac = new AbortController()
    const seen = new Map<string, number>()
    const consumer = consumeEvents({ servers: [server.url], durable: 'dup-reader', stream: 'DUPWIN', signal: ac.signal })
    const timer = setTimeout(() => ac.abort(), 20_000)
    // Messages of copies only are acknowledged inside the reader (nothing is yielded): poll.
    const poll = setInterval(() => {
      if (consumer.statistics().messages >= stored) ac.abort()
    }, 20)
    for await (const c of consumer) {
      seen.set(c.event.id, (seen.get(c.event.id) ?? 0) + 1)
      await c.ack()
    }
    clearTimeout(timer)
    clearInterval(poll)
    expect(consumer.statistics().messages).toBe(stored)
    expect(new Set(seen.keys())).toEqual(new Set(sent.map((e) => e.id)))
    expect([...seen.values()].every((n) => n === 1)).toBe(true)
    expect(consumer.statistics().duplicateEvents).toBe(extraEvents)
  })
})
