/**
 * The NATS output's connection machine alone, over random event sequences (fast-check): the
 * invariants the output relies on, and a step-by-step comparison with the flags the output kept
 * before the machine (the reference model below), so the machine changes no behaviour silently.
 */
import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { createActor } from 'xstate'
import {
  type NatsConnectionEvent,
  type NatsConnectionView,
  natsCanPublish,
  natsConnectionMachine,
  natsConnectionView,
  natsReady,
} from '../../machines/nats-connection.js'

const event: fc.Arbitrary<NatsConnectionEvent> = fc.oneof(
  fc.constant({ type: 'START' } as const),
  fc.constantFrom('nats://a:4222', 'nats://b:4222').map((server) => ({ type: 'CONNECTED', server }) as const),
  fc.constant({ type: 'DISCONNECTED', error: 'disconnected from nats://a:4222' } as const),
  fc.constantFrom('nats://a:4222', 'nats://b:4222').map((server) => ({ type: 'RECONNECTED', server }) as const),
  fc.constant({ type: 'CONNECTION_LOST' } as const),
  fc.constant({ type: 'STREAM_CHECK' } as const),
  fc.constant({ type: 'STREAM_READY' } as const),
  fc.constant({ type: 'STREAM_FAILED', error: 'stream TAPIO_EVENTS: timeout' } as const),
  fc.constant({ type: 'STREAM_LOST' } as const),
  fc.constantFrom('no acknowledgement within 5000 ms', 'JetStream error 503').map((error) => ({ type: 'PUBLISH_FAILED', error }) as const),
  fc.constant({ type: 'ACKED' } as const),
  fc.constant({ type: 'PROBE_START' } as const),
  fc.constantFrom('TLS: name mismatch', null).map((error) => ({ type: 'PROBE_DONE', error }) as const),
  fc.constant({ type: 'ERROR', error: 'too large' } as const),
  fc.constant({ type: 'RELEASE' } as const),
  fc.constant({ type: 'CLOSE' } as const),
  fc.constant({ type: 'CLOSED' } as const),
)

/**
 * The output's former flags (connected, streamReady, ensuringStream, publishFailing, diagnosing,
 * started, closing, closed, released, lastError, server) and how its code set them, written as
 * plain assignments. Two rules are new with the machine and written here on purpose: a stream
 * check counts only for the connection it ran on (a connection made anew must verify the stream
 * again), and nothing changes once closed.
 */
class Flags {
  started = false
  closing = false
  closed = false
  released = false
  connected = false
  streamReady = false
  ensuring = false
  publishFailing = false
  diagnosing = false
  lastError: string | null = null
  server: string | null = null

  apply(e: NatsConnectionEvent): void {
    if (this.closed) return
    const open = this.started
    switch (e.type) {
      case 'START':
        this.started = true
        return
      case 'RELEASE':
        this.released = true
        return
      case 'ERROR':
        this.lastError = e.error
        return
      case 'CLOSE':
        if (!open) this.closed = true
        else this.closing = true
        return
      case 'CLOSED':
        if (this.closing) {
          this.closed = true
          this.connected = false
          this.streamReady = false
          this.ensuring = false
          this.publishFailing = false
          this.diagnosing = false
        }
        return
    }
    if (!open) return
    switch (e.type) {
      case 'CONNECTED':
        if (this.connected || this.everConnectedUnlost) return
        this.connected = true
        this.everConnectedUnlost = true
        this.server = e.server
        return
      case 'DISCONNECTED':
        this.lastError = e.error
        this.connected = false
        return
      case 'RECONNECTED':
        if (!this.everConnectedUnlost || this.connected) return
        this.connected = true
        this.server = e.server
        if (!this.publishFailing) this.lastError = null
        return
      case 'CONNECTION_LOST':
        this.connected = false
        this.everConnectedUnlost = false
        if (!this.ensuring) this.streamReady = false
        return
      case 'STREAM_CHECK':
        if (this.connected && !this.ensuring && !this.streamReady) this.ensuring = true
        return
      case 'STREAM_READY':
        if (!this.ensuring) return
        this.ensuring = false
        this.streamReady = true
        if (!this.publishFailing) this.lastError = null
        return
      case 'STREAM_FAILED':
        if (!this.ensuring) return
        this.ensuring = false
        this.lastError = e.error
        return
      case 'STREAM_LOST':
        if (!this.ensuring) this.streamReady = false
        return
      case 'PUBLISH_FAILED':
        this.publishFailing = true
        this.lastError = e.error
        return
      case 'ACKED':
        if (this.publishFailing) {
          this.publishFailing = false
          this.lastError = null
        }
        return
      case 'PROBE_START':
        if (!this.connected && !this.diagnosing) this.diagnosing = true
        return
      case 'PROBE_DONE':
        if (!this.diagnosing) return
        this.diagnosing = false
        if (e.error !== null && !this.connected) this.lastError = e.error
        return
    }
  }

  /** Between CONNECTED and CONNECTION_LOST: the client owns a connection (connected or reconnecting). */
  everConnectedUnlost = false

  view(): NatsConnectionView {
    if (this.closed) return { phase: 'closed', link: null, stream: null, publish: null, probing: false }
    if (!this.started) return { phase: 'idle', link: null, stream: null, publish: null, probing: false }
    return {
      phase: this.closing ? 'closing' : 'running',
      link: this.connected ? 'connected' : this.everConnectedUnlost ? 'disconnected' : 'connecting',
      stream: this.ensuring ? 'ensuring' : this.streamReady ? 'ready' : 'unchecked',
      publish: this.publishFailing ? 'failing' : 'ok',
      probing: this.diagnosing,
    }
  }
}

function run(events: readonly NatsConnectionEvent[], each: (step: { view: NatsConnectionView; before: NatsConnectionView; event: NatsConnectionEvent; context: { lastError: string | null; released: boolean; server: string | null } }) => void): void {
  const actor = createActor(natsConnectionMachine).start()
  try {
    for (const e of events) {
      const before = natsConnectionView(actor.getSnapshot())
      actor.send(e)
      const s = actor.getSnapshot()
      each({ view: natsConnectionView(s), before, event: e, context: s.context })
    }
  } finally {
    actor.stop()
  }
}

// size 'max': lengths spread up to 60 (the default size keeps arrays short, and the interesting
// states lie several events deep).
const sequences = fc.array(event, { minLength: 1, maxLength: 60, size: 'max' })
// MODEL_RUNS: fewer under mutation testing (vitest.mutate.config.ts).
const runs = { numRuns: Number(process.env.MODEL_RUNS ?? 1000) }

describe('NATS connection machine: properties over random event sequences', () => {
  it('agrees with the former flags at every step (state, last error, server, released)', () => {
    fc.assert(
      fc.property(sequences, (events) => {
        const flags = new Flags()
        run(events, ({ view, event: e, context }) => {
          flags.apply(e)
          expect(view).toEqual(flags.view())
          expect(context).toEqual({ lastError: flags.lastError, released: flags.released, server: flags.server })
        })
      }),
      runs,
    )
  })

  it('never publishes unless connected with the stream verified, and never while idle or closed', () => {
    fc.assert(
      fc.property(sequences, (events) => {
        run(events, ({ view }) => {
          if (natsCanPublish(view)) {
            expect(view.link).toBe('connected')
            expect(view.stream).toBe('ready')
          }
          if (view.phase === 'closed' || view.phase === 'idle') expect(natsCanPublish(view)).toBe(false)
        })
      }),
      runs,
    )
  })

  it('is ready exactly when connected, the stream ready and publishes acknowledged', () => {
    fc.assert(
      fc.property(sequences, (events) => {
        run(events, ({ view }) => {
          expect(natsReady(view)).toBe(view.link === 'connected' && view.stream === 'ready' && view.publish === 'ok')
        })
      }),
      runs,
    )
  })

  it('closed is absorbing: no event changes anything after it', () => {
    fc.assert(
      fc.property(sequences, sequences, (first, after) => {
        const actor = createActor(natsConnectionMachine).start()
        for (const e of [...first, { type: 'CLOSE' } as const, { type: 'CLOSED' } as const]) actor.send(e)
        const closed = actor.getSnapshot()
        expect(natsConnectionView(closed).phase).toBe('closed')
        for (const e of after) {
          actor.send(e)
          expect(actor.getSnapshot().value).toEqual(closed.value)
          expect(actor.getSnapshot().context).toEqual(closed.context)
        }
        actor.stop()
      }),
      runs,
    )
  })

  it('checks the stream and probes TLS one at a time, the stream only while connected, the probe only while not', () => {
    fc.assert(
      fc.property(sequences, (events) => {
        run(events, ({ view, before, event: e }) => {
          if (before.stream !== 'ensuring' && view.stream === 'ensuring') {
            expect(e.type).toBe('STREAM_CHECK')
            expect(before.link).toBe('connected')
          }
          if (!before.probing && view.probing) {
            expect(e.type).toBe('PROBE_START')
            expect(before.link).not.toBe('connected')
          }
          // A new connection (not the client's reconnect) has no verified stream.
          if (before.link !== 'connecting' && view.link === 'connecting') expect(view.stream).not.toBe('ready')
        })
      }),
      runs,
    )
  })

  it('takes writes only while running, once closing never again; released stays released', () => {
    fc.assert(
      fc.property(sequences, (events) => {
        let closing = false
        let released = false
        run(events, ({ view, context }) => {
          if (closing) expect(view.phase === 'closing' || view.phase === 'closed').toBe(true)
          if (view.phase === 'closing' || view.phase === 'closed') closing = true
          // Released is a latch: writers once let go are never made to wait again.
          if (released) expect(context.released).toBe(true)
          released ||= context.released
        })
      }),
      runs,
    )
  })

  it('clears the last error at the first acknowledgement after failing publishes, and keeps it while they fail', () => {
    fc.assert(
      fc.property(sequences, (events) => {
        run(events, ({ view, before, event: e, context }) => {
          if (before.publish === 'failing' && e.type === 'ACKED') expect(context.lastError).toBeNull()
          if (view.publish === 'failing') expect(context.lastError).not.toBeNull()
        })
      }),
      runs,
    )
  })
})
