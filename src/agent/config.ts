import { readFileSync } from 'node:fs'
import { hostname } from 'node:os'
import * as Result from 'effect/Result'
import * as Schema from 'effect/Schema'
import * as SchemaIssue from 'effect/SchemaIssue'
import { type Document, isScalar, LineCounter, parseDocument, visit } from 'yaml'
import { closest, knownKeysAt } from './config-suggest.js'
import { MASK, redactShapes, SECRET_KEY } from './redact.js'
import { type NatsOutputConfig, NatsOutputConfigSchema, resolveNatsOutputConfig } from '../outputs/nats/config.js'
import { connectionProblems } from '../outputs/nats/connection-settings.js'
import { type ProcessorSpec, ProcessorsSchema, processorProblems } from '../processors/spec.js'

/**
 * The agent's merge buffer, in events. Smaller than the library's 10,000 on purpose: under
 * backpressure every event waiting here is live heap, and with ~10,000 waiting (plus a consumer
 * batch and the collectors' hand-offs) they outgrow V8's young generation and are promoted, so the
 * old generation grows between major collections: 629 MB peak RSS against 164 MB with 2,000 on the
 * eBPF -> file benchmark (docs/performance.md).
 */
export const DEFAULT_AGENT_BUFFER_CAPACITY = 2000

/**
 * The agent's configuration: YAML validated with Effect Schema. Every error names the path and
 * what was expected; the agent refuses a bad config rather than guessing.
 */

const PositiveInt = Schema.Int.check(Schema.isGreaterThanOrEqualTo(1))
const NonNegative = Schema.Finite.check(Schema.isGreaterThanOrEqualTo(0))

/**
 * Default ports, outside 9100-9999 (Prometheus' exporter port allocations, all taken) and off the
 * common defaults of node-level software sharing the node's network namespace (9464:
 * OpenTelemetry's Prometheus exporter, 9100 node exporter, 7472 MetalLB, 9962-9965 Cilium,
 * 10249-10256 kube-proxy/kubelet, 8888/8889 OpenTelemetry Collector).
 */
export const DEFAULT_HTTP_PORT = 8497
export const DEFAULT_SCRAPE_PORT = 8498

export const PolicyConfigSchema = Schema.Struct({
  restart: Schema.optional(Schema.Literals(['permanent', 'transient', 'temporary'])).annotate({ description: 'permanent: always restart; transient: only after a failure; temporary: never.' }),
  maxRestarts: Schema.optional(Schema.Int.check(Schema.isGreaterThanOrEqualTo(0))).annotate({ description: 'At most this many restarts within withinMs (OTP intensity); beyond that, onExceeded applies.' }),
  withinMs: Schema.optional(NonNegative).annotate({ description: 'The window (ms) in which maxRestarts counts restarts.' }),
  onExceeded: Schema.optional(Schema.Literals(['give-up', 'escalate'])).annotate({ description: 'When the restart intensity is exceeded: give-up (this collector stays down, permanent_error) or escalate (the supervisor stops every collector).' }),
  backoff: Schema.optional(
    Schema.Struct({
      initialMs: Schema.optional(NonNegative).annotate({ description: 'Delay before the first restart (ms).' }),
      maxMs: Schema.optional(NonNegative).annotate({ description: 'Upper bound of the delay (ms).' }),
      factor: Schema.optional(Schema.Finite.check(Schema.isGreaterThanOrEqualTo(1))).annotate({ description: 'Growth of the delay from one restart to the next (>= 1).' }),
      jitter: Schema.optional(Schema.Finite.check(Schema.isGreaterThanOrEqualTo(0), Schema.isLessThan(1))).annotate({ description: 'Random spread of each delay: 0.2 scales it by a factor in [0.8, 1.2]; 0 disables it.' }),
    }),
  ).annotate({ description: 'Delay before a restart: initialMs * factor^(n-1), capped at maxMs, scaled by a random factor in [1-jitter, 1+jitter].' }),
  resetAfterMs: Schema.optional(NonNegative).annotate({ description: 'After running this long without failing, the backoff starts again from initialMs.' }),
  startTimeoutMs: Schema.optional(PositiveInt).annotate({ description: 'A start that takes longer fails (and is aborted).' }),
  stopTimeoutMs: Schema.optional(PositiveInt).annotate({ description: 'A stop that takes longer is abandoned: the collector is force-stopped.' }),
  startAttempts: Schema.optional(PositiveInt).annotate({ description: "Failed starts the agent's start-up waits through before reporting this collector as failed." }),
})
export type PolicyConfig = typeof PolicyConfigSchema.Type

/**
 * The keys every collector entry may have. `kind` defaults to the key the entry is configured
 * under; `enabled: auto` starts it only where the machine supports it. All other keys are the
 * collector's own configuration, validated by its kind's schema.
 */
export const CollectorMetaFields = {
  kind: Schema.optional(Schema.String).annotate({ description: "The collector kind (ebpf, kubernetes, systemd, cni, synthetic); defaults to the entry's name." }),
  enabled: Schema.optional(Schema.Union([Schema.Boolean, Schema.Literal('auto')])).annotate({ description: 'true, false, or auto: run only where this machine supports the kind.' }),
  policy: Schema.optional(PolicyConfigSchema).annotate({ description: "This collector's restart policy: overrides of supervisor.policy." }),
}
const CollectorMetaSchema = Schema.Struct(CollectorMetaFields)
const META_KEYS = new Set(Object.keys(CollectorMetaFields))

export const AgentConfigSchema = Schema.Struct({
  node: Schema.optional(Schema.String.check(Schema.isMinLength(1))).annotate({ description: 'Node name put on published events; the host name by default.' }),
  buffer: Schema.optional(
    Schema.Struct({
      capacity: Schema.optional(PositiveInt).annotate({ description: `Events the merge buffer holds (default ${DEFAULT_AGENT_BUFFER_CAPACITY}).` }),
      policy: Schema.optional(Schema.Literals(['block', 'drop-newest', 'drop-oldest', 'sample'])).annotate({ description: 'When the buffer is full: block (backpressure to collectors), drop-newest, drop-oldest, or sample.' }),
      sampling: Schema.optional(
        Schema.Struct({
          highWaterMark: Schema.optional(Schema.Finite.check(Schema.isGreaterThanOrEqualTo(0), Schema.isLessThanOrEqualTo(1))).annotate({ description: 'Fill level (0-1) above which only one in keepOneIn events per collector is kept.' }),
          keepOneIn: Schema.optional(PositiveInt).annotate({ description: 'Above the high-water mark, keep one event in this many.' }),
        }),
      ).annotate({ description: 'Settings of the sample policy.' }),
    }),
  ).annotate({ description: "The merge buffer every collector's events go through." }),
  supervisor: Schema.optional(
    Schema.Struct({
      strategy: Schema.optional(Schema.Literals(['one_for_one', 'one_for_all', 'rest_for_one'])).annotate({ description: 'Which collectors restart when one fails: one_for_one (itself), one_for_all (all), rest_for_one (it and those registered after it).' }),
      policy: Schema.optional(PolicyConfigSchema).annotate({ description: 'The default restart policy of every collector.' }),
      stopTimeoutMs: Schema.optional(PositiveInt).annotate({ description: 'Bound (ms) of a graceful stop of the whole agent.' }),
      events: Schema.optional(Schema.Boolean).annotate({ description: 'Also put the supervision facts (failed, restart scheduled, recovered, gave up, escalated, stopped) into the stream as tapio.supervisor.* events from the collector tapio.supervisor.' }),
    }),
  ).annotate({ description: 'How collectors are supervised.' }),
  collectors: Schema.optional(Schema.Record(Schema.String, Schema.Record(Schema.String, Schema.Unknown))).annotate({ description: 'Collector instances by name. kind defaults to the name (ebpf: {}); an instance with any other name says its kind (units: { kind: systemd }).' }),
  outputs: Schema.optional(
    Schema.Struct({
      stdout: Schema.optional(
        Schema.Struct({
          enabled: Schema.optional(Schema.Boolean).annotate({ description: 'Write events to stdout.' }),
        }),
      ).annotate({ description: 'NDJSON on standard output (the default unless a file or NATS output is configured).' }),
      file: Schema.optional(
        Schema.Struct({
          path: Schema.String.check(Schema.isMinLength(1)).annotate({ description: 'The file; rotated files are path.1, path.2 ...; its directory is created.' }),
          maxBytes: Schema.optional(PositiveInt).annotate({ description: 'Size (bytes) at which the file is rotated.' }),
          maxFiles: Schema.optional(PositiveInt).annotate({ description: 'Files kept, the current one included.' }),
        }),
      ).annotate({ description: 'NDJSON to a file, rotated by size.' }),
      flushTimeoutMs: Schema.optional(PositiveInt).annotate({ description: 'At stop, how long (ms) stdout and the file output may take to write what they hold; the rest is counted as dropped (shutdown).' }),
      nats: Schema.optional(NatsOutputConfigSchema).annotate({ description: 'NATS JetStream output (docs/outputs/nats.md).' }),
    }),
  ).annotate({ description: 'Where the unified stream goes.' }),
  http: Schema.optional(
    Schema.Struct({
      enabled: Schema.optional(Schema.Boolean).annotate({ description: 'Serve HTTP.' }),
      host: Schema.optional(Schema.String).annotate({ description: 'Address to bind; anything but loopback requires token.' }),
      port: Schema.optional(Schema.Int.check(Schema.isGreaterThanOrEqualTo(0), Schema.isLessThanOrEqualTo(65535))).annotate({ description: 'TCP port (0 = any free port).' }),
      token: Schema.optional(Schema.String.check(Schema.isMinLength(16))).annotate({ description: 'Required when `host` is not a loopback address.' }),
      allowControl: Schema.optional(Schema.Boolean).annotate({ description: 'Allow restart/stop buttons on the inspector page and the control endpoints.' }),
      tailQueue: Schema.optional(PositiveInt).annotate({ description: 'Events a slow /events client may fall behind before it loses its own events.' }),
      maxTailClients: Schema.optional(PositiveInt).annotate({ description: '/events clients at once; the next one is answered 503.' }),
      maxConnections: Schema.optional(PositiveInt).annotate({ description: 'Open connections at most; past it the oldest idle or half-open one is closed.' }),
      scrape: Schema.optional(
        Schema.Struct({
          enabled: Schema.optional(Schema.Boolean).annotate({ description: 'Serve the scrape listener (default true when the section is present).' }),
          host: Schema.String.check(Schema.isMinLength(1)).annotate({ description: 'Address to bind, e.g. the pod IP (${POD_IP} from the downward API).' }),
          port: Schema.optional(Schema.Int.check(Schema.isGreaterThanOrEqualTo(0), Schema.isLessThanOrEqualTo(65535))).annotate({ description: `TCP port (default ${DEFAULT_SCRAPE_PORT}; 0 = any free port).` }),
        }),
      ).annotate({ description: 'A second listener serving only /metrics, /healthz and /readyz, without the token: for a cluster\'s Prometheus and probes.' }),
    }),
  ).annotate({ description: 'The HTTP endpoints: probes, metrics, live tail, inspector, status.' }),
  readiness: Schema.optional(
    Schema.Struct({
      require: Schema.optional(Schema.Union([Schema.Literals(['all', 'any']), Schema.Array(Schema.String)])).annotate({ description: 'all: every counted collector must be ok; any: one is enough; [names]: only these.' }),
      graceMs: Schema.optional(NonNegative).annotate({ description: 'How long (ms) a collector being restarted by its policy still counts as ready.' }),
    }),
  ).annotate({ description: 'What /readyz requires.' }),
  processors: Schema.optional(ProcessorsSchema),
  log: Schema.optional(
    Schema.Struct({
      level: Schema.optional(Schema.Literals(['debug', 'info', 'warn', 'error'])).annotate({ description: 'Least severe level logged: debug, info, warn or error.' }),
      format: Schema.optional(Schema.Literals(['json', 'text'])).annotate({ description: 'json (one object per line) or text (for people); --log-format overrides it.' }),
    }),
  ).annotate({ description: 'Logs on stderr.' }),
})
export type AgentConfigInput = typeof AgentConfigSchema.Type

/**
 * The embedded default: every collector kind the agent knows (except `synthetic`) with
 * `enabled: auto`, so each runs where this machine supports it; events to stdout; HTTP on loopback.
 */
export function defaultConfigYaml(kinds: Iterable<string>): string {
  const collectors = [...kinds]
    .filter((k) => k !== 'synthetic')
    .map((k) => `  ${k}: { enabled: auto }`)
    .join('\n')
  return `# tapio-agent embedded default configuration
buffer:
  capacity: ${DEFAULT_AGENT_BUFFER_CAPACITY}
  policy: block
supervisor:
  strategy: one_for_one
collectors:
${collectors || '  {}'}
outputs:
  stdout: { enabled: true }
http:
  enabled: true
  host: 127.0.0.1
  port: ${DEFAULT_HTTP_PORT}
log:
  level: info
`
}

export interface ResolvedCollector {
  readonly name: string
  readonly kind: string
  readonly enabled: boolean | 'auto'
  readonly policy: PolicyConfig
  readonly config: Readonly<Record<string, unknown>>
}

export interface AgentConfig {
  readonly node: string
  readonly buffer: {
    readonly capacity: number
    readonly policy: 'block' | 'drop-newest' | 'drop-oldest' | 'sample'
    readonly sampling: { readonly highWaterMark: number; readonly keepOneIn: number }
  }
  readonly supervisor: {
    readonly strategy: 'one_for_one' | 'one_for_all' | 'rest_for_one'
    readonly policy: PolicyConfig
    readonly stopTimeoutMs: number
    /** Supervision facts as tapio.supervisor.* events in the stream. */
    readonly events: boolean
  }
  readonly collectors: readonly ResolvedCollector[]
  readonly outputs: {
    readonly stdout: boolean
    readonly flushTimeoutMs: number
    readonly file?: { readonly path: string; readonly maxBytes: number; readonly maxFiles: number }
    readonly nats?: NatsOutputConfig
  }
  readonly http: {
    readonly enabled: boolean
    readonly host: string
    readonly port: number
    readonly token?: string
    readonly allowControl: boolean
    readonly tailQueue: number
    readonly maxTailClients: number
    readonly maxConnections: number
    /** The scrape-only listener (/metrics, /healthz, /readyz without the token), when configured. */
    readonly scrape?: { readonly host: string; readonly port: number }
  }
  readonly readiness: { readonly require: 'all' | 'any' | readonly string[]; readonly graceMs: number }
  /** The processor stage, in order; `[{ type: enrich }]` when the file has no `processors:`. */
  readonly processors: readonly ProcessorSpec[]
  readonly log: { readonly level: 'debug' | 'info' | 'warn' | 'error'; readonly format: 'json' | 'text' }
}

/** A config that cannot be used; `problems` are `path: what was wrong` lines. */
export class ConfigError extends Error {
  override readonly name = 'ConfigError'
  constructor(
    readonly source: string,
    readonly problems: readonly string[],
  ) {
    super(`invalid configuration (${source}):\n${problems.map((p) => `  - ${p}`).join('\n')}`)
  }
}

export function formatPath(path: readonly PropertyKey[]): string {
  let out = ''
  for (const k of path) {
    if (typeof k === 'number') out += `[${k}]`
    else if (/^[A-Za-z_][A-Za-z0-9_-]*$/.test(String(k))) out += out ? `.${String(k)}` : String(k)
    else out += `[${JSON.stringify(String(k))}]`
  }
  return out || '(root)'
}

function valueAt(input: unknown, path: readonly PropertyKey[]): unknown {
  let v = input
  for (const k of path) {
    if (v === null || typeof v !== 'object') return undefined
    v = (v as Record<PropertyKey, unknown>)[k]
  }
  return v
}

function describeValue(v: unknown): string {
  if (v === undefined) return 'nothing'
  const s = JSON.stringify(v)
  return s === undefined ? String(v) : s.length > 60 ? `${s.slice(0, 57)}...` : s
}

const formatter = SchemaIssue.makeFormatterStandardSchemaV1()

/** Decode with a schema; on failure, one `path: expected ..., got ...` line per problem. */
export function decodeWithPaths<S extends Schema.Top>(
  schema: S,
  input: unknown,
  prefix: readonly PropertyKey[] = [],
): Result.Result<S['Type'], string[]> {
  const decoded = Schema.decodeUnknownResult(schema as unknown as Schema.Codec<S['Type'], unknown>)(input, {
    errors: 'all',
    onExcessProperty: 'error',
  })
  if (Result.isSuccess(decoded)) return Result.succeed(decoded.success)
  const issues = formatter(decoded.failure.issue).issues
  return Result.fail(
    issues.map((i) => {
      const path = (i.path ?? []).map((p) => (typeof p === 'object' && p !== null && 'key' in p ? (p as { key: PropertyKey }).key : p)) as PropertyKey[]
      const last = path.at(-1)
      // A config error must not echo a secret (a too-short token, a URL with a password).
      const got = typeof last === 'string' && SECRET_KEY.test(last) ? MASK : valueAt(input, path)
      const msg = i.message.replace(/^Expected /, 'expected ')
      const excess = /excess property/.test(msg)
      if (!excess) return `${formatPath([...prefix, ...path])}: ${msg}, got ${got === MASK ? MASK : redactShapes(describeValue(got))}`
      const meant = typeof last === 'string' ? closest(last, knownKeysAt(schema.ast, path.slice(0, -1))) : undefined
      return `${formatPath([...prefix, ...path])}: ${unknownKey(meant)}`
    }),
  )
}

/** `line L, column C: Map keys must be unique (key)` for every repeated scalar key, in one pass. */
function duplicateKeys(doc: Document, lines: LineCounter): string[] {
  const problems: { at: number; text: string }[] = []
  visit(doc, {
    Map(_, map) {
      const seen = new Set<unknown>()
      for (const pair of map.items) {
        if (!isScalar(pair.key)) continue
        const k = pair.key.value
        if (!seen.has(k)) {
          seen.add(k)
          continue
        }
        const at = pair.key.range?.[0] ?? 0
        const pos = lines.linePos(at)
        problems.push({ at, text: `line ${pos.line}, column ${pos.col}: Map keys must be unique (${JSON.stringify(String(k))} repeated)` })
      }
    },
  })
  // In file order (the walk visits an outer map's keys before its values' maps).
  return problems.sort((a, b) => a.at - b.at).map((p) => p.text)
}

function unknownKey(meant: string | undefined): string {
  return `unknown key (not part of the configuration)${meant ? `; did you mean ${JSON.stringify(meant)}?` : ''}`
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v)
}

/** Parse YAML text; syntax errors name line and column. */
export function parseYaml(text: string, source: string): unknown {
  // yaml's own `uniqueKeys` compares every key with every other (quadratic: minutes for a huge
  // map); duplicates are found with one Set per map instead.
  const lineCounter = new LineCounter()
  const doc = parseDocument(text, { prettyErrors: true, uniqueKeys: false, lineCounter })
  if (doc.errors.length > 0) {
    throw new ConfigError(
      source,
      doc.errors.map((e) => {
        const pos = e.linePos?.[0]
        return `${pos ? `line ${pos.line}, column ${pos.col}` : 'YAML'}: ${e.message.split('\n')[0]}`
      }),
    )
  }
  const duplicates = duplicateKeys(doc, lineCounter)
  if (duplicates.length > 0) throw new ConfigError(source, duplicates)
  try {
    return doc.toJS({ maxAliasCount: 100 }) ?? {}
  } catch (e) {
    // Unresolved or exploding aliases only fail when the document is turned into values.
    throw new ConfigError(source, [`YAML: ${(e as Error).message.split('\n')[0]}`])
  }
}

/** Addresses the HTTP server may bind without a token. */
export const LOOPBACK_HOSTS: readonly string[] = ['127.0.0.1', '::1', 'localhost']
const LOOPBACK = new Set(LOOPBACK_HOSTS)

/** How the agent validates one kind's own keys (from its collector's Schema). */
export type KindConfigValidator = (config: Readonly<Record<string, unknown>>, path: readonly PropertyKey[]) => string[]

/** Validate and fill defaults. Throws ConfigError listing every problem. */
export function resolveConfig(
  input: unknown,
  source: string,
  kinds: ReadonlyMap<string, KindConfigValidator> = new Map(),
): AgentConfig {
  // Every problem in one pass: the collectors' own keys are checked even when the rest is wrong.
  const decoded = decodeWithPaths(AgentConfigSchema, input)
  const problems: string[] = Result.isFailure(decoded) ? [...decoded.failure] : []
  const raw = isRecord(input) ? input : {}
  const rawCollectors = isRecord(raw.collectors) ? raw.collectors : {}
  const collectors: ResolvedCollector[] = []
  for (const [name, entry] of Object.entries(rawCollectors)) {
    if (!isRecord(entry)) continue // the top-level decode named it
    const raw = entry
    const path = ['collectors', name]
    if (!/^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$/.test(name))
      problems.push(`${formatPath(['collectors', name])}: expected a name of letters, digits, '.', '_' or '-'`)
    const metaInput: Record<string, unknown> = {}
    const own: Record<string, unknown> = {}
    for (const [k, v] of Object.entries(raw ?? {})) (META_KEYS.has(k) ? metaInput : own)[k] = v
    const meta = decodeWithPaths(CollectorMetaSchema, metaInput, path)
    if (Result.isFailure(meta)) problems.push(...meta.failure)
    const kind = typeof metaInput.kind === 'string' ? metaInput.kind : name
    const validate = kinds.get(kind)
    if (kinds.size > 0 && !validate) {
      problems.push(`${formatPath([...path, ...('kind' in metaInput ? ['kind'] : [])])}: expected a known collector kind (${[...kinds.keys()].join(', ')}), got ${JSON.stringify(kind)}`)
      continue
    }
    if (validate) {
      // The kind's schema knows its own keys; an entry may also have the meta keys.
      const unknown = `${formatPath(path)}.`
      for (const p of validate(own, path)) {
        const m = /^(.*)\.([^.[\]]+): unknown key \(not part of the configuration\)$/.exec(p)
        const meant = m && m[1] === unknown.slice(0, -1) ? closest(m[2] as string, [...META_KEYS]) : undefined
        problems.push(meant ? `${m?.[1]}.${m?.[2]}: ${unknownKey(meant)}` : p)
      }
    }
    if (Result.isSuccess(meta))
      collectors.push({ name, kind, enabled: meta.success.enabled ?? true, policy: meta.success.policy ?? {}, config: own })
  }
  const rawReadiness = isRecord(raw.readiness) ? raw.readiness : {}
  if (Array.isArray(rawReadiness.require)) {
    const names = Object.keys(rawCollectors)
    rawReadiness.require.forEach((name: unknown, i: number) => {
      if (typeof name === 'string' && !names.includes(name))
        problems.push(`${formatPath(['readiness', 'require', i])}: expected the name of a configured collector (${names.join(', ') || 'none configured'}), got ${JSON.stringify(name)}`)
    })
  }
  if (isRecord(raw.supervisor) && raw.supervisor.events === true && 'tapio.supervisor' in rawCollectors)
    problems.push(`${formatPath(['collectors', 'tapio.supervisor'])}: the name is reserved for the supervision events (supervisor.events: true); choose another`)
  const rawHttp = isRecord(raw.http) ? raw.http : {}
  const rawHost = typeof rawHttp.host === 'string' ? rawHttp.host : '127.0.0.1'
  if (!LOOPBACK.has(rawHost) && rawHttp.token === undefined)
    problems.push(`http.token: expected a bearer token (16+ characters) because http.host ${JSON.stringify(rawHost)} is not loopback`)
  if (Result.isSuccess(decoded) && decoded.success.outputs?.nats) problems.push(...connectionProblems(decoded.success.outputs.nats))
  if (Result.isSuccess(decoded) && decoded.success.processors) problems.push(...processorProblems(decoded.success.processors, configuredOutputs(decoded.success.outputs)))
  if (problems.length > 0 || Result.isFailure(decoded)) throw new ConfigError(source, problems)
  const c = decoded.success
  const require = c.readiness?.require ?? 'all'
  const host = c.http?.host ?? '127.0.0.1'
  return {
    node: c.node ?? hostname(),
    buffer: {
      capacity: c.buffer?.capacity ?? DEFAULT_AGENT_BUFFER_CAPACITY,
      policy: c.buffer?.policy ?? 'block',
      sampling: { highWaterMark: c.buffer?.sampling?.highWaterMark ?? 0.8, keepOneIn: c.buffer?.sampling?.keepOneIn ?? 10 },
    },
    supervisor: {
      strategy: c.supervisor?.strategy ?? 'one_for_one',
      policy: c.supervisor?.policy ?? {},
      stopTimeoutMs: c.supervisor?.stopTimeoutMs ?? 10_000,
      events: c.supervisor?.events ?? false,
    },
    collectors,
    outputs: {
      stdout: c.outputs?.stdout?.enabled ?? (c.outputs?.file || c.outputs?.nats ? false : true),
      flushTimeoutMs: c.outputs?.flushTimeoutMs ?? 5_000,
      ...(c.outputs?.nats ? { nats: resolveNatsOutputConfig(c.outputs.nats) } : {}),
      ...(c.outputs?.file
        ? { file: { path: c.outputs.file.path, maxBytes: c.outputs.file.maxBytes ?? 100 * 1024 * 1024, maxFiles: c.outputs.file.maxFiles ?? 5 } }
        : {}),
    },
    http: {
      enabled: c.http?.enabled ?? true,
      host,
      port: c.http?.port ?? DEFAULT_HTTP_PORT,
      ...(c.http?.token ? { token: c.http.token } : {}),
      allowControl: c.http?.allowControl ?? false,
      tailQueue: c.http?.tailQueue ?? 1000,
      maxTailClients: c.http?.maxTailClients ?? 64,
      maxConnections: c.http?.maxConnections ?? 256,
      ...(c.http?.scrape && c.http.scrape.enabled !== false
        ? { scrape: { host: c.http.scrape.host, port: c.http.scrape.port ?? DEFAULT_SCRAPE_PORT } }
        : {}),
    },
    readiness: { require, graceMs: c.readiness?.graceMs ?? 30_000 },
    processors: c.processors ?? [{ type: 'enrich' }],
    log: { level: c.log?.level ?? 'info', format: c.log?.format ?? 'json' },
  }
}

/** The output names a route may use: those the outputs section turns on. */
export function configuredOutputs(o: AgentConfigInput['outputs']): string[] {
  const stdout = o?.stdout?.enabled ?? (o?.file || o?.nats ? false : true)
  return [...(stdout ? ['stdout'] : []), ...(o?.file ? ['file'] : []), ...(o?.nats ? ['nats'] : [])]
}

const ENV_REF = /\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}/g

/**
 * Replace `${NAME}` and `${NAME:-default}` in every string value with the environment's value
 * (a DaemonSet passes the node name this way). `$${` stays a literal `${`. A variable that is
 * unset and has no default is an error naming the config path.
 */
export function expandEnv(input: unknown, env: NodeJS.ProcessEnv, source: string): unknown {
  const problems: string[] = []
  const walk = (v: unknown, path: PropertyKey[]): unknown => {
    if (typeof v === 'string') {
      const escaped = v.split('$${')
      const expanded = escaped.map((part) =>
        part.replace(ENV_REF, (_, name: string, fallback: string | undefined) => {
          const value = env[name]
          if (value !== undefined && value !== '') return value
          if (fallback !== undefined) return fallback
          problems.push(`${formatPath(path)}: environment variable ${name} is not set (use \${${name}:-default} for a default)`)
          return ''
        }),
      )
      return expanded.join('${')
    }
    if (Array.isArray(v)) return v.map((x, i) => walk(x, [...path, i]))
    if (v !== null && typeof v === 'object') {
      return Object.fromEntries(Object.entries(v as Record<string, unknown>).map(([k, x]) => [k, walk(x, [...path, k])]))
    }
    return v
  }
  const out = walk(input, [])
  if (problems.length > 0) throw new ConfigError(source, problems)
  return out
}

export function loadConfigText(
  text: string,
  source: string,
  kinds?: ReadonlyMap<string, KindConfigValidator>,
  env: NodeJS.ProcessEnv = process.env,
): AgentConfig {
  return resolveConfig(expandEnv(parseYaml(text, source), env, source), source, kinds)
}

export function loadConfigFile(path: string | undefined, kinds?: ReadonlyMap<string, KindConfigValidator>): AgentConfig {
  if (!path) return loadConfigText(defaultConfigYaml(kinds?.keys() ?? []), 'embedded default', kinds)
  let text: string
  try {
    text = readFileSync(path, 'utf8')
  } catch (e) {
    throw new ConfigError(path, [`cannot read the file: ${(e as Error).message}`])
  }
  return loadConfigText(text, path, kinds)
}
