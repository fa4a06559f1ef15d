import { and, assign, not, setup, stateIn } from 'xstate'

/**
 * The NATS output's connection state. A pure definition without I/O and without timers: the
 * output (src/outputs/nats/output.ts) does the connecting, the stream check and the publishing,
 * reports what happened as events, and reads back from the snapshot whether it may publish,
 * check the stream, probe TLS, or take writes, and whether it is ready.
 *
 * While open, four things vary independently, so they are parallel regions:
 * - `mode`: `running`, or `closing` (close() waits for outstanding acknowledgements; writes are
 *   refused, sending and acknowledging go on);
 * - `link`: `connecting` (no connection: the first, or a new one after the client gave up on the
 *   old), `connected`, `disconnected` (the client is reconnecting on its own);
 * - `stream`: `unchecked`, `ensuring` (one create-or-verify in flight), `ready` (verified on this
 *   connection; kept across the client's reconnects, dropped with the connection or when
 *   JetStream answers "no responders");
 * - `publish`: `ok`, or `failing` since a publish was answered with an error or not at all, until
 *   the next acknowledgement;
 * - `diagnosis`: `idle`, or `probing` (one TLS handshake probe in flight while disconnected).
 *
 * `closed` is absorbing: nothing is published or connected there, and no event leaves it (it is
 * not a final state, so late reports of the old connection are taken and ignored).
 */

export interface NatsConnectionContext {
  /** The server of the current (or last) connection. */
  readonly server: string | null
  /** The last error, as /readyz and /api/status report it; cleared as the rules below say. */
  readonly lastError: string | null
  /** Writers are no longer made to wait (the agent is shutting down). A latch. */
  readonly released: boolean
}

export type NatsConnectionEvent =
  | { readonly type: 'START' }
  /** A connection was made (first, or a new one after the old one closed for good). */
  | { readonly type: 'CONNECTED'; readonly server: string }
  /** The client lost the connection and is reconnecting. */
  | { readonly type: 'DISCONNECTED'; readonly error: string }
  | { readonly type: 'RECONNECTED'; readonly server: string }
  /** The connection closed for good: a new one must be made (and the stream checked on it). */
  | { readonly type: 'CONNECTION_LOST' }
  /** A stream create-or-verify begins (only while connected, one at a time). */
  | { readonly type: 'STREAM_CHECK' }
  | { readonly type: 'STREAM_READY' }
  | { readonly type: 'STREAM_FAILED'; readonly error: string }
  /** JetStream answered "no responders": the stream is gone or has no leader; check it again. */
  | { readonly type: 'STREAM_LOST' }
  /** A publish was answered with an error, or not at all (its retry is scheduled). */
  | { readonly type: 'PUBLISH_FAILED'; readonly error: string }
  /** A publish was acknowledged (stored). */
  | { readonly type: 'ACKED' }
  /** A TLS probe begins (only while not connected, one at a time). */
  | { readonly type: 'PROBE_START' }
  | { readonly type: 'PROBE_DONE'; readonly error: string | null }
  /** An error to report that changes no state (a rejected message, a failed reconnect call, ...). */
  | { readonly type: 'ERROR'; readonly error: string }
  | { readonly type: 'RELEASE' }
  | { readonly type: 'CLOSE' }
  /** close() is done waiting: what is unacknowledged is counted, the connection goes. */
  | { readonly type: 'CLOSED' }

export type NatsPhase = 'idle' | 'running' | 'closing' | 'closed'
export type NatsLink = 'connecting' | 'connected' | 'disconnected'
export type NatsStream = 'unchecked' | 'ensuring' | 'ready'
export type NatsPublish = 'ok' | 'failing'

/** The machine's state as plain data: what the output's statistics and /api/status show. */
export interface NatsConnectionView {
  readonly phase: NatsPhase
  /** null outside `running` / `closing`. */
  readonly link: NatsLink | null
  readonly stream: NatsStream | null
  readonly publish: NatsPublish | null
  readonly probing: boolean
}

function errorOf(event: NatsConnectionEvent): string | null {
  return 'error' in event ? event.error : null
}

export const natsConnectionMachine = setup({
  types: {
    context: {} as NatsConnectionContext,
    events: {} as NatsConnectionEvent,
  },
  guards: {
    linkConnected: stateIn('#natsConnection.open.link.connected'),
    publishFailing: stateIn('#natsConnection.open.publish.failing'),
    hasError: ({ event }) => errorOf(event) !== null,
  },
  actions: {
    setServer: assign({ server: ({ event }) => ('server' in event ? event.server : null) }),
    setError: assign({ lastError: ({ event, context }) => errorOf(event) ?? context.lastError }),
    clearError: assign({ lastError: null }),
    release: assign({ released: true }),
  },
}).createMachine({
  id: 'natsConnection',
  context: { server: null, lastError: null, released: false },
  initial: 'idle',
  states: {
    idle: {
      on: {
        START: 'open',
        CLOSE: 'closed',
        RELEASE: { actions: 'release' },
        ERROR: { actions: 'setError' },
      },
    },
    open: {
      type: 'parallel',
      on: {
        RELEASE: { actions: 'release' },
        ERROR: { actions: 'setError' },
      },
      states: {
        mode: {
          initial: 'running',
          states: {
            running: { on: { CLOSE: 'closing' } },
            closing: { on: { CLOSED: '#natsConnection.closed' } },
          },
        },
        link: {
          initial: 'connecting',
          states: {
            connecting: {
              on: {
                CONNECTED: { target: 'connected', actions: 'setServer' },
                // A failed attempt; the connect loop tries again.
                DISCONNECTED: { actions: 'setError' },
              },
            },
            connected: {
              on: {
                DISCONNECTED: { target: 'disconnected', actions: 'setError' },
                CONNECTION_LOST: 'connecting',
              },
            },
            disconnected: {
              on: {
                DISCONNECTED: { actions: 'setError' },
                // Connected again: the disconnect's error is over, unless publishes still fail.
                RECONNECTED: [
                  { guard: 'publishFailing', target: 'connected', actions: 'setServer' },
                  { target: 'connected', actions: ['setServer', 'clearError'] },
                ],
                CONNECTION_LOST: 'connecting',
              },
            },
          },
        },
        stream: {
          initial: 'unchecked',
          states: {
            unchecked: { on: { STREAM_CHECK: { guard: 'linkConnected', target: 'ensuring' } } },
            // A check under way finishes (and says so) even if the connection changes meanwhile.
            ensuring: {
              on: {
                STREAM_READY: [
                  { guard: 'publishFailing', target: 'ready' },
                  { target: 'ready', actions: 'clearError' },
                ],
                STREAM_FAILED: { target: 'unchecked', actions: 'setError' },
              },
            },
            ready: {
              on: {
                STREAM_LOST: 'unchecked',
                CONNECTION_LOST: 'unchecked',
              },
            },
          },
        },
        publish: {
          initial: 'ok',
          states: {
            ok: { on: { PUBLISH_FAILED: { target: 'failing', actions: 'setError' } } },
            failing: {
              on: {
                PUBLISH_FAILED: { actions: 'setError' },
                // Recovered: the first acknowledgement after failing publishes clears their error.
                ACKED: { target: 'ok', actions: 'clearError' },
              },
            },
          },
        },
        diagnosis: {
          initial: 'idle',
          states: {
            // A probe only explains a failing reconnect: never while connected.
            idle: { on: { PROBE_START: { guard: not('linkConnected'), target: 'probing' } } },
            probing: {
              on: {
                // Its answer matters only while still not connected.
                PROBE_DONE: [
                  { guard: and(['hasError', not('linkConnected')]), target: 'idle', actions: 'setError' },
                  { target: 'idle' },
                ],
              },
            },
          },
        },
      },
    },
    // Absorbing but not final: callbacks of the old connection may still report, and are ignored.
    closed: {},
  },
})

/** The snapshot as plain data. */
export function natsConnectionView(snapshot: { readonly value: unknown }): NatsConnectionView {
  const value = snapshot.value
  if (value === 'idle' || value === 'closed') return { phase: value, link: null, stream: null, publish: null, probing: false }
  const open = (value as { open: { mode: 'running' | 'closing'; link: NatsLink; stream: NatsStream; publish: NatsPublish; diagnosis: 'idle' | 'probing' } }).open
  return { phase: open.mode, link: open.link, stream: open.stream, publish: open.publish, probing: open.diagnosis === 'probing' }
}

/** Publish only on a connection whose stream is verified (closing included: acks are awaited). */
export function natsCanPublish(view: NatsConnectionView): boolean {
  return view.link === 'connected' && view.stream === 'ready'
}

/** Ready: connected, the stream in place, and publishes acknowledged (connected is not enough). */
export function natsReady(view: NatsConnectionView): boolean {
  return natsCanPublish(view) && view.publish === 'ok'
}

export type NatsConnectionMachine = typeof natsConnectionMachine
