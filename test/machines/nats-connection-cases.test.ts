/** The NATS connection machine on chosen sequences, next to the random ones of nats-connection.test.ts. */
import { describe, expect, it } from 'vitest'
import { createActor } from 'xstate'
import { type NatsConnectionEvent, natsConnectionMachine, natsConnectionView } from '../../machines/nats-connection.js'

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
