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

describe('NATS connection machine: reconnecting', () => {
  const down: NatsConnectionEvent[] = [
    { type: 'START' },
    { type: 'CONNECTED', server: 'nats://a:4222' },
    { type: 'DISCONNECTED', error: 'disconnected from nats://a:4222' },
  ]

  it('each failed reconnect attempt while disconnected updates the last error', () => {
    const r = after([...down, { type: 'DISCONNECTED', error: 'connection refused' }])
    expect(r.view.link).toBe('disconnected')
    expect(r.context.lastError).toBe('connection refused')
  })

  it('reconnected: connected to the new server; the error clears unless publishes still fail', () => {
    const ok = after([...down, { type: 'RECONNECTED', server: 'nats://b:4222' }])
    expect(ok.view.link).toBe('connected')
    expect(ok.context).toMatchObject({ server: 'nats://b:4222', lastError: null })
    const failing = after([
      { type: 'START' },
      { type: 'CONNECTED', server: 'nats://a:4222' },
      { type: 'PUBLISH_FAILED', error: 'no acknowledgement within 5000 ms' },
      { type: 'DISCONNECTED', error: 'disconnected from nats://a:4222' },
      { type: 'RECONNECTED', server: 'nats://b:4222' },
    ])
    expect(failing.view).toMatchObject({ link: 'connected', publish: 'failing' })
    expect(failing.context).toMatchObject({ server: 'nats://b:4222', lastError: 'disconnected from nats://a:4222' })
  })
})

describe('NATS connection machine: each remaining transition once', () => {
  const up: NatsConnectionEvent[] = [{ type: 'START' }, { type: 'CONNECTED', server: 'nats://a:4222' }]
  const down: NatsConnectionEvent[] = [...up, { type: 'DISCONNECTED', error: 'disconnected from nats://a:4222' }]

  it('a connection closed for good while reconnecting: a new one is made', () => {
    expect(after([...down, { type: 'CONNECTION_LOST' }]).view.link).toBe('connecting')
  })

  it('a failed stream check: unchecked again, its error reported', () => {
    const r = after([...up, { type: 'STREAM_CHECK' }, { type: 'STREAM_FAILED', error: 'stream TAPIO_EVENTS: timeout' }])
    expect(r.view.stream).toBe('unchecked')
    expect(r.context.lastError).toBe('stream TAPIO_EVENTS: timeout')
  })

  it('failing publishes: each failure updates the error; the first acknowledgement clears it', () => {
    const failing: NatsConnectionEvent[] = [...up, { type: 'PUBLISH_FAILED', error: 'no acknowledgement within 5000 ms' }, { type: 'PUBLISH_FAILED', error: 'JetStream error 503' }]
    const r = after(failing)
    expect(r.view.publish).toBe('failing')
    expect(r.context.lastError).toBe('JetStream error 503')
    const acked = after([...failing, { type: 'ACKED' }])
    expect(acked.view.publish).toBe('ok')
    expect(acked.context.lastError).toBeNull()
  })

  it('a TLS probe: its error is reported while still disconnected, not after reconnecting; a clean probe reports nothing', () => {
    const probing: NatsConnectionEvent[] = [...down, { type: 'PROBE_START' }]
    expect(after(probing).view.probing).toBe(true)
    const failed = after([...probing, { type: 'PROBE_DONE', error: 'TLS: name mismatch' }])
    expect(failed.view.probing).toBe(false)
    expect(failed.context.lastError).toBe('TLS: name mismatch')
    const clean = after([...probing, { type: 'PROBE_DONE', error: null }])
    expect(clean.view.probing).toBe(false)
    expect(clean.context.lastError).toBe('disconnected from nats://a:4222')
    const late = after([...probing, { type: 'RECONNECTED', server: 'nats://a:4222' }, { type: 'PROBE_DONE', error: 'TLS: name mismatch' }])
    expect(late.view).toMatchObject({ probing: false, link: 'connected' })
    expect(late.context.lastError).toBeNull()
    // Never while connected.
    expect(after([...up, { type: 'PROBE_START' }]).view.probing).toBe(false)
  })
})
