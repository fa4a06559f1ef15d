import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { DiscardPolicy, jetstreamManager, RetentionPolicy, StorageType } from '@nats-io/jetstream'
import { connect, type NatsConnection } from '@nats-io/transport-node'
import { makeEvent } from '../../../src/events/event.js'
import { NatsOutput, parseNatsOutputConfig } from '../../../src/outputs/nats/index.js'
import { waitFor } from '../../support/wait.js'
import { destroyAllNatsServers, NatsServer } from './nats-server.js'

/**
 * Readiness from acknowledged publishes: connected to a server that refuses every publish (its
 * stream is full and discards new messages, as a stream without quorum answers nothing useful) is
 * not ready; the first acknowledgement after the fault makes it ready and clears the last error.
 */
describe('NATS output readiness', () => {
  let server: NatsServer
  let nc: NatsConnection
  beforeAll(async () => {
    server = await NatsServer.start({ name: 'readiness' })
    nc = await connect({ servers: server.url })
  })
  afterAll(async () => {
    await nc?.close()
    await destroyAllNatsServers()
  })

  it('is unready while publishes fail though connected, and ready with no last error once they are acknowledged again', { timeout: 60_000 }, async () => {
    const jsm = await jetstreamManager(nc)
    await jsm.streams.add({ name: 'FULL', subjects: ['ready.>'], max_msgs: 10, discard: DiscardPolicy.New, retention: RetentionPolicy.Limits, storage: StorageType.File })
    const cfg = parseNatsOutputConfig({ servers: [server.url], subjectPrefix: 'ready', stream: { name: 'FULL' }, maxEventsPerMessage: 1, retry: { initialMs: 50, maxMs: 200 } })
    const out = new NatsOutput(cfg, { node: 'n1' })
    out.start()
    const batch = (n: number) => Array.from({ length: n }, (_, i) => makeEvent('s', 'test.thing', { i }))
    await out.write(batch(10))
    await waitFor(() => out.statistics().ackedEvents === 10, 'the first 10 acknowledged')
    expect(out.health()).toMatchObject({ ready: true, lastError: null })
    expect(out.health().state).toBeUndefined()
    expect(out.statistics().connection).toEqual({ phase: 'running', link: 'connected', stream: 'ready', publish: 'ok', probing: false })

    await out.write(batch(5))
    await waitFor(() => out.statistics().retriedEvents > 0, 'publishes refused and retried')
    const failing = out.health()
    expect(out.statistics().connected).toBe(true)
    expect(failing.ready).toBe(false)
    expect(failing.lastError).toMatch(/maximum messages/)
    expect(failing.state).toBe('connected, publishes not acknowledged')
    expect(out.statistics().connection.publish).toBe('failing')

    await jsm.streams.purge('FULL')
    await waitFor(() => out.statistics().ackedEvents === 15, 'the 5 acknowledged after the purge', 30_000)
    expect(out.health()).toMatchObject({ ready: true, lastError: null })
    expect(out.statistics().failedEvents.total).toBe(0)
    await out.close()
    expect(out.statistics().connection.phase).toBe('closed')
    expect(out.health()).toMatchObject({ ready: false, state: 'closed' })
  })
})
