import * as Result from 'effect/Result'
import * as Schema from 'effect/Schema'
import { connectionProblems, type NatsConnectionSettings } from './connection-settings.js'

/**
 * Configuration of the NATS JetStream output. Durations are milliseconds, sizes bytes, like the
 * rest of the agent's configuration.
 */

const PositiveInt = Schema.Int.check(Schema.isGreaterThanOrEqualTo(1))
const NonNegativeInt = Schema.Int.check(Schema.isGreaterThanOrEqualTo(0))
/** A subject token: no dots, wildcards or whitespace. */
const Token = Schema.String.check(Schema.isPattern(/^[A-Za-z0-9_-]+$/, { description: 'letters, digits, _ or -' }))

const FilePath = Schema.String.check(Schema.isMinLength(1))

export const NatsTlsSchema = Schema.Struct({
  caFile: Schema.optional(FilePath).annotate({ description: "PEM file of the CA(s) the server's certificate must chain to (default: the system's trust store)." }),
  certFile: Schema.optional(FilePath).annotate({ description: 'PEM client certificate for mutual TLS (with keyFile).' }),
  keyFile: Schema.optional(FilePath).annotate({ description: 'PEM private key of certFile.' }),
  serverName: Schema.optional(Schema.String.check(Schema.isMinLength(1))).annotate({ description: "Name the server's certificate must carry, when it differs from the host in the URL (SNI and verification)." }),
})

export const NatsStreamConfigSchema = Schema.Struct({
  name: Schema.optional(Token).annotate({ description: 'JetStream stream name.' }),
  create: Schema.optional(Schema.Boolean).annotate({ description: 'Create the stream when it does not exist; otherwise only verify it (and report what is missing).' }),
  storage: Schema.optional(Schema.Literals(['file', 'memory'])).annotate({ description: 'Where JetStream keeps the stream: file or memory.' }),
  replicas: Schema.optional(Schema.Int.check(Schema.isGreaterThanOrEqualTo(1), Schema.isLessThanOrEqualTo(5))).annotate({ description: 'Copies of the stream in a JetStream cluster (1-5).' }),
  maxAgeMs: Schema.optional(NonNegativeInt).annotate({ description: 'Messages older than this are removed; 0 keeps them until a size limit applies.' }),
  maxBytes: Schema.optional(Schema.Int.check(Schema.isGreaterThanOrEqualTo(-1))).annotate({ description: 'Oldest messages are removed beyond this size; -1 = unlimited.' }),
  duplicateWindowMs: Schema.optional(PositiveInt).annotate({ description: 'How long the stream remembers a `Nats-Msg-Id`: a retry within this window is never stored twice.' }),
})

export const NatsOutputConfigSchema = Schema.Struct({
  servers: Schema.Array(Schema.String.check(Schema.isMinLength(1))).check(Schema.isMinLength(1)).annotate({ description: 'NATS server URLs (nats://host:4222); at least one.' }),
  name: Schema.optional(Schema.String).annotate({ description: 'Connection name shown by the server (`nats server report connections`).' }),
  token: Schema.optional(Schema.String).annotate({ description: 'Authentication token.' }),
  user: Schema.optional(Schema.String).annotate({ description: 'User name (with pass).' }),
  pass: Schema.optional(Schema.String).annotate({ description: 'Password (with user). Prefer passFile: a secret in the config file is one more copy of it.' }),
  tokenFile: Schema.optional(FilePath).annotate({ description: 'File holding the authentication token (read at every connect).' }),
  passFile: Schema.optional(FilePath).annotate({ description: 'File holding the password of user (read at every connect).' }),
  nkeySeedFile: Schema.optional(FilePath).annotate({ description: 'File holding an NKEY user seed (SU...), for servers with nkey users (read at every connect).' }),
  credsFile: Schema.optional(FilePath).annotate({ description: 'Credentials file (.creds: user JWT and NKEY seed, as nsc writes it), for servers in operator/JWT mode (read at every connect).' }),
  tls: Schema.optional(NatsTlsSchema).annotate({ description: 'TLS to the server (also implied by tls:// URLs); with it the output refuses a server that offers no TLS. Files are read again at every connect; SIGHUP reconnects, so rotated certificates are used without a restart.' }),
  subjectPrefix: Schema.optional(
    Schema.String.check(Schema.isPattern(/^[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*$/, { description: 'dot-separated tokens without wildcards' })),
  ).annotate({ description: 'Subjects are `<subjectPrefix>.<node>.<source>.<type...>`.' }),
  stream: Schema.optional(NatsStreamConfigSchema).annotate({ description: 'The JetStream stream the events are stored in.' }),
  maxEventsPerMessage: Schema.optional(PositiveInt).annotate({ description: 'Events of one subject that arrive together are packed into one NATS message (NDJSON), up to this many; 1 sends one message per event. Packing is what makes 10^5 events/s affordable.' }),
  maxMessageBytes: Schema.optional(Schema.Int.check(Schema.isGreaterThanOrEqualTo(1024))).annotate({ description: "Upper bound of one message's payload (the server's max_payload lowers it further)." }),
  maxPendingEvents: Schema.optional(PositiveInt).annotate({ description: 'Events published or waiting for a retry before `write` makes the agent wait (backpressure).' }),
  ackTimeoutMs: Schema.optional(PositiveInt).annotate({ description: 'A publish without an acknowledgement after this long is sent again (same message id).' }),
  retry: Schema.optional(
    Schema.Struct({
      initialMs: Schema.optional(PositiveInt).annotate({ description: 'Delay before the first resend (ms).' }),
      maxMs: Schema.optional(PositiveInt).annotate({ description: 'Upper bound of the delay between resends (ms).' }),
      maxAttempts: Schema.optional(NonNegativeInt).annotate({ description: 'Give a message up (counted as failed, reason retries_exhausted) after this many sends; 0 = never.' }),
    }),
  ).annotate({ description: 'How a publish that was not acknowledged is sent again.' }),
  closeTimeoutMs: Schema.optional(NonNegativeInt).annotate({ description: 'How long `close()` waits for outstanding acknowledgements before counting the rest as failed.' }),
})
export type NatsOutputConfigInput = typeof NatsOutputConfigSchema.Type

export interface NatsStreamConfig {
  readonly name: string
  readonly create: boolean
  readonly storage: 'file' | 'memory'
  readonly replicas: number
  readonly maxAgeMs: number
  readonly maxBytes: number
  readonly duplicateWindowMs: number
}

export interface NatsOutputConfig extends NatsConnectionSettings {
  readonly servers: readonly string[]
  readonly name: string
  readonly subjectPrefix: string
  readonly stream: NatsStreamConfig
  readonly maxEventsPerMessage: number
  readonly maxMessageBytes: number
  readonly maxPendingEvents: number
  readonly ackTimeoutMs: number
  readonly retry: { readonly initialMs: number; readonly maxMs: number; readonly maxAttempts: number }
  readonly closeTimeoutMs: number
}

export const NATS_DEFAULTS = {
  subjectPrefix: 'tapio.events',
  stream: {
    name: 'TAPIO_EVENTS',
    create: true,
    storage: 'file',
    replicas: 1,
    maxAgeMs: 24 * 3600_000,
    maxBytes: -1,
    duplicateWindowMs: 120_000,
  },
  maxEventsPerMessage: 100,
  maxMessageBytes: 256 * 1024,
  maxPendingEvents: 50_000,
  ackTimeoutMs: 5_000,
  retry: { initialMs: 100, maxMs: 5_000, maxAttempts: 0 },
  closeTimeoutMs: 10_000,
} as const

/** Fill defaults into a decoded config. */
export function resolveNatsOutputConfig(c: NatsOutputConfigInput): NatsOutputConfig {
  const d = NATS_DEFAULTS
  return {
    servers: [...c.servers],
    name: c.name ?? 'tapio-agent',
    ...(c.token !== undefined ? { token: c.token } : {}),
    ...(c.user !== undefined ? { user: c.user } : {}),
    ...(c.pass !== undefined ? { pass: c.pass } : {}),
    ...(c.tokenFile !== undefined ? { tokenFile: c.tokenFile } : {}),
    ...(c.passFile !== undefined ? { passFile: c.passFile } : {}),
    ...(c.nkeySeedFile !== undefined ? { nkeySeedFile: c.nkeySeedFile } : {}),
    ...(c.credsFile !== undefined ? { credsFile: c.credsFile } : {}),
    ...(c.tls !== undefined ? { tls: { ...c.tls } } : {}),
    subjectPrefix: c.subjectPrefix ?? d.subjectPrefix,
    stream: {
      name: c.stream?.name ?? d.stream.name,
      create: c.stream?.create ?? d.stream.create,
      storage: c.stream?.storage ?? d.stream.storage,
      replicas: c.stream?.replicas ?? d.stream.replicas,
      maxAgeMs: c.stream?.maxAgeMs ?? d.stream.maxAgeMs,
      maxBytes: c.stream?.maxBytes ?? d.stream.maxBytes,
      duplicateWindowMs: c.stream?.duplicateWindowMs ?? d.stream.duplicateWindowMs,
    },
    maxEventsPerMessage: c.maxEventsPerMessage ?? d.maxEventsPerMessage,
    maxMessageBytes: c.maxMessageBytes ?? d.maxMessageBytes,
    maxPendingEvents: c.maxPendingEvents ?? d.maxPendingEvents,
    ackTimeoutMs: c.ackTimeoutMs ?? d.ackTimeoutMs,
    retry: {
      initialMs: c.retry?.initialMs ?? d.retry.initialMs,
      maxMs: c.retry?.maxMs ?? d.retry.maxMs,
      maxAttempts: c.retry?.maxAttempts ?? d.retry.maxAttempts,
    },
    closeTimeoutMs: c.closeTimeoutMs ?? d.closeTimeoutMs,
  }
}

/** Validate untrusted configuration (a library caller's object); the error names each bad path. */
export function parseNatsOutputConfig(input: unknown): NatsOutputConfig {
  const r = Schema.decodeUnknownResult(NatsOutputConfigSchema)(input, { errors: 'all', onExcessProperty: 'error' })
  if (Result.isFailure(r)) throw new Error(`invalid NATS output configuration: ${String(r.failure)}`)
  const problems = connectionProblems(r.success)
  if (problems.length > 0) throw new Error(`invalid NATS output configuration: ${problems.join('; ')}`)
  return resolveNatsOutputConfig(r.success)
}
