/** The NATS connection machine on chosen sequences, next to the random ones of nats-connection.test.ts. */
import { describe, expect, it } from 'vitest'
import { createActor } from 'xstate'
import { type NatsConnectionEvent, type NatsConnectionView, natsCanPublish, natsConnectionMachine, natsConnectionView, natsReady } from '../../machines/nats-connection.js'

function after(events: NatsConnectionEvent[]) {
  const actor = createActor(natsConnectionMachine).start()
  for (const e of events) actor.send(e)
  const snapshot = actor.getSnapshot()
  actor.stop()
  return { view: natsConnectionView(snapshot), context: snapshot.context }
}

describe('NATS connection machine: the stream check and the last error', () => {
  it('a verified stream clears the last error, unless publishes are failing', () => {
    const connected: NatsConnectionEvent[] = [
      { type: 'START' },
      { type: 'CONNECTED', server: 'nats://a:4222' },
      { type: 'ERROR', error: 'too large' },
      { type: 'STREAM_CHECK' },
    ]
    const ok = after([...connected, { type: 'STREAM_READY' }])
    expect(ok.view).toMatchObject({ link: 'connected', stream: 'ready', publish: 'ok' })
    expect(ok.context.lastError).toBeNull()
    const failing = after([...connected, { type: 'PUBLISH_FAILED', error: 'JetStream error 503' }, { type: 'STREAM_READY' }])
    expect(failing.view).toMatchObject({ stream: 'ready', publish: 'failing' })
    expect(failing.context.lastError).toBe('JetStream error 503')
  })
})

describe('NATS connection machine: losing the stream', () => {
  const ready: NatsConnectionEvent[] = [{ type: 'START' }, { type: 'CONNECTED', server: 'nats://a:4222' }, { type: 'STREAM_CHECK' }, { type: 'STREAM_READY' }]

  it('a verified stream is checked again after "no responders" or on a new connection', () => {
    expect(after(ready).view.stream).toBe('ready')
    expect(after([...ready, { type: 'STREAM_LOST' }]).view).toMatchObject({ stream: 'unchecked', link: 'connected' })
    expect(after([...ready, { type: 'CONNECTION_LOST' }]).view).toMatchObject({ stream: 'unchecked', link: 'connecting' })
    // The client's own reconnect keeps it.
    expect(after([...ready, { type: 'DISCONNECTED', error: 'x' }, { type: 'RECONNECTED', server: 'nats://b:4222' }]).view).toMatchObject({ stream: 'ready', link: 'connected' })
  })
})

describe('natsCanPublish and natsReady', () => {
  const view = (v: Partial<NatsConnectionView>): NatsConnectionView => ({ phase: 'running', link: 'connected', stream: 'ready', publish: 'ok', probing: false, ...v })

  it('publish on a connection with the stream verified; ready when publishes are acknowledged too', () => {
    expect([natsCanPublish(view({})), natsReady(view({}))]).toEqual([true, true])
    expect([natsCanPublish(view({ publish: 'failing' })), natsReady(view({ publish: 'failing' }))]).toEqual([true, false])
    expect([natsCanPublish(view({ phase: 'closing' })), natsReady(view({ phase: 'closing' }))]).toEqual([true, true])
    for (const v of [view({ link: 'disconnected' }), view({ link: 'connecting' }), view({ stream: 'ensuring' }), view({ stream: 'unchecked' })]) {
      expect([natsCanPublish(v), natsReady(v)]).toEqual([false, false])
    }
  })
})
