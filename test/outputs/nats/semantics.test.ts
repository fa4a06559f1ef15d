import { afterAll, describe, expect, it } from 'vitest'
import { jetstreamManager } from '@nats-io/jetstream'
import { connect } from '@nats-io/transport-node'
import { makeEvent, type TapioEvent } from '../../../src/events/event.js'
import { eventSubject, NatsOutput, parseEventSubject, parseNatsOutputConfig, subjectCovers } from '../../../src/outputs/nats/index.js'
import { waitFor } from '../../support/wait.js'
import { destroyAllNatsServers, freePort, NatsServer } from './nats-server.js'

function events(n: number, source = 'gen', type = 'test.thing.happened', data: Record<string, unknown> = {}): TapioEvent[] {
  return Array.from({ length: n }, (_, i) => makeEvent(source, type, { i, ...data }))
}

async function streamMessages(url: string, stream: string): Promise<number> {
  const nc = await connect({ servers: url })
  try {
    return (await (await jetstreamManager(nc)).streams.info(stream)).state.messages
  } finally {
    await nc.close()
  }
}

afterAll(async () => {
  await destroyAllNatsServers()
})

describe('subjects', () => {
  it('never produce empty tokens or wildcards, keep the type dotted, and parse back', () => {
    const s = eventSubject('tapio.events', 'ip-10-0-0-1.ec2 internal', 'k8s>*', 'kernel..process.exec')
    expect(s).toBe('tapio.events.ip-10-0-0-1_ec2_internal.k8s__.kernel._.process.exec')
    expect(eventSubject('p', '', '', '.')).toBe('p._._._._')
    for (const t of s.split('.')) expect(t).toMatch(/^[A-Za-z0-9_-]+$/)
    expect(parseEventSubject('tapio.events', s)).toEqual({ node: 'ip-10-0-0-1_ec2_internal', source: 'k8s__', type: 'kernel._.process.exec' })
    expect(subjectCovers('tapio.>', 'tapio.events')).toBe(true)
    expect(subjectCovers('tapio.events.>', 'tapio.events')).toBe(true)
    expect(subjectCovers('tapio.*.>', 'tapio.events')).toBe(true)
    expect(subjectCovers('tapio.events', 'tapio.events')).toBe(false)
    expect(subjectCovers('other.>', 'tapio.events')).toBe(false)
  })

  it('configuration errors name the path', () => {
    expect(() => parseNatsOutputConfig({ servers: [] })).toThrow(/servers/)
    expect(() => parseNatsOutputConfig({ servers: ['x'], stream: { replicas: 9 } })).toThrow(/replicas/)
    expect(() => parseNatsOutputConfig({ servers: ['x'], subjectPrefix: 'a.*' })).toThrow(/subjectPrefix/)
    expect(() => parseNatsOutputConfig({ servers: ['x'], bogus: 1 })).toThrow(/bogus/)
  })
})

describe('NatsOutput semantics against a real nats-server', () => {
  it('applies backpressure while NATS is unreachable and delivers the backlog once it is up', async () => {
    const port = await freePort()
    const out = new NatsOutput(parseNatsOutputConfig({ servers: [`nats://127.0.0.1:${port}`], maxPendingEvents: 300, retry: { initialMs: 50, maxMs: 200 }, stream: { name: 'BACKPRESSURE' }, subjectPrefix: 'bp' }), { node: 'n' })
    out.start()
    const sent = events(300)
    expect(out.write(sent.slice(0, 200))).toBeUndefined()
    const blocked = out.write(sent.slice(200))
    expect(blocked).toBeInstanceOf(Promise)
    let released = false
    void blocked?.then(() => (released = true))
    await waitFor(() => out.statistics().lastError !== null, 'a connection error to be recorded')
    expect(out.health().ready).toBe(false)
    expect(out.statistics().connected).toBe(false)
    expect(out.statistics().pendingEvents).toBe(300)
    expect(released).toBe(false)
    const server = await NatsServer.start({ name: 'late', port })
    await blocked
    await waitFor(() => out.statistics().ackedEvents === 300, 'the backlog acknowledged')
    expect(out.health().ready).toBe(true)
    expect(out.statistics().failedEvents.total).toBe(0)
    await out.close()
    expect(await streamMessages(server.url, 'BACKPRESSURE')).toBeGreaterThan(0)
  })

  it('a resend with the same event ids is stored once (Nats-Msg-Id) and counted as duplicate', async () => {
    const server = await NatsServer.start({ name: 'dedup' })
    const cfg = parseNatsOutputConfig({ servers: [server.url], stream: { name: 'DEDUP' }, subjectPrefix: 'dd', maxEventsPerMessage: 1 })
    const sent = events(50)
    const first = new NatsOutput(cfg, { node: 'n' })
    await first.write(sent)
    await waitFor(() => first.statistics().ackedEvents === 50, 'first send acknowledged')
    await first.close()
    const again = new NatsOutput(cfg, { node: 'n' })
    await again.write(sent)
    await waitFor(() => again.statistics().ackedEvents === 50, 'second send acknowledged')
    expect(again.statistics().duplicateEvents).toBe(50)
    await again.close()
    expect(await streamMessages(server.url, 'DEDUP')).toBe(50)
  })

  it('splits packed messages by size and counts an event too large to send', async () => {
    const server = await NatsServer.start({ name: 'sizes' })
    const out = new NatsOutput(parseNatsOutputConfig({ servers: [server.url], stream: { name: 'SIZES' }, subjectPrefix: 'sz', maxMessageBytes: 4096 }), { node: 'n' })
    out.start()
    await waitFor(() => out.health().ready, 'connected')
    const small = events(100, 'gen', 'test.small.one', { pad: 'x'.repeat(100) })
    const huge = events(1, 'gen', 'test.huge.one', { pad: 'y'.repeat(2 * 1024 * 1024) })
    await out.write([...small, ...huge])
    await waitFor(() => out.statistics().ackedEvents === 100, 'small events acknowledged')
    const s = out.statistics()
    expect(s.failedEvents.too_large).toBe(1)
    expect(s.publishedMessages).toBeGreaterThan(3)
    expect(s.lastError).toMatch(/exceeds the message size limit/)
    await out.close()
  })

  it('verify mode reports a missing stream; close with NATS gone counts what was never acknowledged', async () => {
    const server = await NatsServer.start({ name: 'verify' })
    const verify = new NatsOutput(parseNatsOutputConfig({ servers: [server.url], stream: { name: 'ABSENT', create: false }, subjectPrefix: 'vf' }), { node: 'n' })
    verify.start()
    await waitFor(() => /ABSENT does not exist/.test(verify.statistics().lastError ?? ''), 'the missing stream to be reported')
    expect(verify.health().ready).toBe(false)
    expect(verify.statistics().connected).toBe(true)
    await verify.close()

    const out = new NatsOutput(parseNatsOutputConfig({ servers: [server.url], stream: { name: 'GONE' }, subjectPrefix: 'gone', maxPendingEvents: 10, closeTimeoutMs: 300 }), { node: 'n' })
    out.start()
    await waitFor(() => out.health().ready, 'connected')
    await server.kill()
    await waitFor(() => !out.statistics().connected, 'the disconnect noticed')
    const blocked = out.write(events(25))
    expect(blocked).toBeInstanceOf(Promise)
    out.release()
    await blocked
    await out.close()
    expect(out.statistics().failedEvents.shutdown).toBe(25)
    expect(out.statistics().pendingEvents).toBe(0)
  })

  it('a hanging server: sends time out and are retried, and the retries are stored once (dedup on the wire)', async () => {
    const server = await NatsServer.start({ name: 'hang' })
    const out = new NatsOutput(
      parseNatsOutputConfig({ servers: [server.url], stream: { name: 'HANG' }, subjectPrefix: 'hang', maxEventsPerMessage: 1, ackTimeoutMs: 200, retry: { initialMs: 50, maxMs: 200 } }),
      { node: 'n' },
    )
    out.start()
    await waitFor(() => out.health().ready, 'connected')
    const sent = events(300)
    await server.pause()
    try {
      await out.write(sent)
      await waitFor(() => out.statistics().retriedEvents >= 300, 'every unacknowledged event retried')
      expect(out.statistics().ackedEvents).toBe(0)
    } finally {
      server.resume()
    }
    await waitFor(() => out.statistics().ackedEvents === 300, 'everything acknowledged after the server resumed')
    const s = out.statistics()
    expect(s.duplicateEvents).toBeGreaterThan(0)
    expect(s.failedEvents.total).toBe(0)
    await out.close()
    expect(await streamMessages(server.url, 'HANG')).toBe(300)
  })
})
