import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { jetstreamManager } from '@nats-io/jetstream'
import { connect, headers } from '@nats-io/transport-node'
import { makeEvent } from '../../../src/events/event.js'
import type { TapioEvent } from '../../../src/events/event.js'
import { consumeEvents, NatsOutput, parseNatsOutputConfig, type ConsumedEvent } from '../../../src/outputs/nats/index.js'
import { waitFor } from '../../support/wait.js'
import { destroyAllNatsServers, NatsServer } from './nats-server.js'

function events(source: string, n: number, type = 'test.thing.happened'): TapioEvent[] {
  return Array.from({ length: n }, (_, i) => makeEvent(source, type, { i }))
}

/** Read with a durable consumer until `want` distinct ids arrived; returns what was read. */
async function readUntil(servers: string[], durable: string, want: number, extra: Partial<Parameters<typeof consumeEvents>[0]> = {}) {
  const ac = new AbortController()
  const got: ConsumedEvent[] = []
  const ids = new Set<string>()
  const consumer = consumeEvents({ servers, durable, signal: ac.signal, ackWaitMs: 2000, ...extra })
  const done = (async () => {
    for await (const c of consumer) {
      got.push(c)
      ids.add(c.event.id)
      await c.ack()
      if (ids.size >= want) ac.abort()
    }
  })()
  await done
  return { got, ids, stats: consumer.statistics() }
}

describe('NATS JetStream output against a real nats-server', () => {
  let server: NatsServer
  beforeAll(async () => {
    server = await NatsServer.start({ name: 'single' })
  })
  afterAll(async () => {
    await destroyAllNatsServers()
  })

  it('creates the stream, publishes packed batches with acks, and a durable consumer reads every event once', async () => {
    const cfg = parseNatsOutputConfig({ servers: [server.url], stream: { duplicateWindowMs: 60_000 }, maxEventsPerMessage: 50 })
    const out = new NatsOutput(cfg, { node: 'node.a*' })
    out.start()
    // A type without a registered data schema: the reader validates every known family's data.
    const sent = [...events('kernel', 500), ...events('k8s', 250, 'test.pod.updated')]
    for (let i = 0; i < sent.length; i += 100) await out.write(sent.slice(i, i + 100))
    await waitFor(() => out.statistics().ackedEvents === sent.length, 'every event acknowledged')
    const s = out.statistics()
    expect(s.failedEvents.total).toBe(0)
    expect(s.publishedMessages).toBeLessThan(sent.length)
    await out.close()

    const nc = await connect({ servers: server.url })
    try {
      const info = await (await jetstreamManager(nc)).streams.info('TAPIO_EVENTS')
      expect(info.config.subjects).toEqual(['tapio.events.>'])
      expect(info.config.duplicate_window).toBe(60_000 * 1e6)
      expect(info.state.subjects ?? {}).toBeDefined()
    } finally {
      await nc.close()
    }

    const r = await readUntil([server.url], 'reader-1', sent.length)
    expect(r.ids).toEqual(new Set(sent.map((e) => e.id)))
    expect(r.got.length).toBe(sent.length)
    expect(new Set(r.got.map((g) => g.node))).toEqual(new Set(['node.a*']))
    expect(new Set(r.got.map((g) => g.subject))).toEqual(new Set(['tapio.events.node_a_.kernel.test.thing.happened', 'tapio.events.node_a_.k8s.test.pod.updated']))
  })

  it('packs a batch whose subjects interleave: one message per subject run or gathered group, every event once, in order per subject', async () => {
    const cfg = parseNatsOutputConfig({ servers: [server.url], stream: { name: 'INTERLEAVED' }, subjectPrefix: 'mix', maxEventsPerMessage: 7 })
    const out = new NatsOutput(cfg, { node: 'n1' })
    out.start()
    // a a b a b b b c a ...: contiguous runs (views of the shared bytes) and spread members (gathered).
    const sent: TapioEvent[] = []
    for (let i = 0; i < 300; i++) {
      const kind = i % 5 === 0 ? 'b' : i % 11 === 0 ? 'c' : 'a'
      sent.push(makeEvent(kind, `mix.${kind}.happened`, { i, text: kind === 'c' ? 'wide: 日本語 🚀' : 'plain' }))
    }
    await out.write(sent)
    await waitFor(() => out.statistics().ackedEvents === sent.length, 'every interleaved event acknowledged')
    expect(out.statistics().failedEvents.total).toBe(0)
    await out.close()
    const r = await readUntil([server.url], 'reader-mix', sent.length, { stream: 'INTERLEAVED', subjectPrefix: 'mix' })
    expect(r.got.length).toBe(sent.length)
    expect(r.ids).toEqual(new Set(sent.map((e) => e.id)))
    for (const kind of ['a', 'b', 'c']) {
      const want = sent.filter((e) => e.source === kind)
      const got = r.got.filter((g) => g.event.source === kind)
      expect(got.map((g) => g.event.id)).toEqual(want.map((e) => e.id))
      expect(new Set(got.map((g) => g.subject))).toEqual(new Set([`mix.n1.${kind}.mix.${kind}.happened`]))
      expect(got.map((g) => g.event.data)).toEqual(want.map((e) => e.data))
    }
  })

  it('counts malformed messages, terminates them, and keeps reading', async () => {
    const nc = await connect({ servers: server.url })
    const good = events('bad-test', 3)
    try {
      const js = (await import('@nats-io/jetstream')).jetstream(nc)
      await js.publish('tapio.events.x.y.not.json', 'this is not json')
      await js.publish('tapio.events.x.y.bad.event', JSON.stringify({ id: 'x', type: 'NOT VALID' }))
      await js.publish('tapio.events.x.y.mixed.one', `${JSON.stringify(good[0])}\n{"broken"\n${JSON.stringify(good[1])}\n`)
      const h = headers()
      h.set('Nats-Msg-Id', good[2]?.id ?? '')
      await js.publish('tapio.events.x.y.test.thing.happened', JSON.stringify(good[2]), { headers: h })
    } finally {
      await nc.close()
    }
    const r = await readUntil([server.url], 'reader-bad', 3, { filter: 'tapio.events.x.>' })
    expect(r.ids).toEqual(new Set(good.map((e) => e.id)))
    expect(r.stats.invalidEvents).toBe(3)
    expect(r.stats.terminatedMessages).toBe(2)
  })
})
