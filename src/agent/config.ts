import { readFileSync } from 'node:fs'
import { hostname } from 'node:os'
import * as Result from 'effect/Result'
import * as Schema from 'effect/Schema'
import * as SchemaIssue from 'effect/SchemaIssue'
import { type Document, isScalar, LineCounter, parseDocument, visit } from 'yaml'
import { MASK, redactShapes, SECRET_KEY } from './redact.js'
import { type NatsOutputConfig, NatsOutputConfigSchema, resolveNatsOutputConfig } from '../outputs/nats/config.js'

/**
 * The agent's configuration: YAML validated with Effect Schema. Every error names the path and
 * what was expected; the agent refuses a bad config rather than guessing.
 */

const PositiveInt = Schema.Int.check(Schema.isGreaterThanOrEqualTo(1))
const NonNegative = Schema.Number.check(Schema.isGreaterThanOrEqualTo(0))

export const PolicyConfigSchema = Schema.Struct({
  restart: Schema.optional(Schema.Literals(['permanent', 'transient', 'temporary'])),
  maxRestarts: Schema.optional(Schema.Int.check(Schema.isGreaterThanOrEqualTo(0))),
  withinMs: Schema.optional(NonNegative),
  onExceeded: Schema.optional(Schema.Literals(['give-up', 'escalate'])),
  backoff: Schema.optional(
    Schema.Struct({
      initialMs: Schema.optional(NonNegative),
      maxMs: Schema.optional(NonNegative),
      factor: Schema.optional(Schema.Number.check(Schema.isGreaterThanOrEqualTo(1))),
      jitter: Schema.optional(Schema.Number.check(Schema.isGreaterThanOrEqualTo(0), Schema.isLessThan(1))),
    }),
  ),
  resetAfterMs: Schema.optional(NonNegative),
  startTimeoutMs: Schema.optional(PositiveInt),
  stopTimeoutMs: Schema.optional(PositiveInt),
  startAttempts: Schema.optional(PositiveInt),
})
export type PolicyConfig = typeof PolicyConfigSchema.Type

/**
 * The keys every collector entry may have. `kind` defaults to the key the entry is configured
 * under; `enabled: auto` starts it only where the machine supports it. All other keys are the
 * collector's own configuration, validated by its kind's schema.
 */
export const CollectorMetaFields = {
  kind: Schema.optional(Schema.String),
  enabled: Schema.optional(Schema.Union([Schema.Boolean, Schema.Literal('auto')])),
  policy: Schema.optional(PolicyConfigSchema),
}
const CollectorMetaSchema = Schema.Struct(CollectorMetaFields)
const META_KEYS = new Set(Object.keys(CollectorMetaFields))

export const AgentConfigSchema = Schema.Struct({
  /** Node name put on published events; the host name by default. */
  node: Schema.optional(Schema.String.check(Schema.isMinLength(1))),
  buffer: Schema.optional(
    Schema.Struct({
      capacity: Schema.optional(PositiveInt),
      policy: Schema.optional(Schema.Literals(['block', 'drop-newest', 'drop-oldest', 'sample'])),
      sampling: Schema.optional(
        Schema.Struct({
          highWaterMark: Schema.optional(Schema.Number.check(Schema.isGreaterThanOrEqualTo(0), Schema.isLessThanOrEqualTo(1))),
          keepOneIn: Schema.optional(PositiveInt),
        }),
      ),
    }),
  ),
  supervisor: Schema.optional(
    Schema.Struct({
      strategy: Schema.optional(Schema.Literals(['one_for_one', 'one_for_all', 'rest_for_one'])),
      policy: Schema.optional(PolicyConfigSchema),
      stopTimeoutMs: Schema.optional(PositiveInt),
    }),
  ),
  collectors: Schema.optional(Schema.Record(Schema.String, Schema.Record(Schema.String, Schema.Unknown))),
  outputs: Schema.optional(
    Schema.Struct({
      stdout: Schema.optional(Schema.Struct({ enabled: Schema.optional(Schema.Boolean) })),
      file: Schema.optional(
        Schema.Struct({
          path: Schema.String.check(Schema.isMinLength(1)),
          maxBytes: Schema.optional(PositiveInt),
          maxFiles: Schema.optional(PositiveInt),
        }),
      ),
      /** At stop, how long stdout and the file may take to write what they were handed; the rest is counted as dropped (shutdown). */
      flushTimeoutMs: Schema.optional(PositiveInt),
      /** NATS JetStream (see docs/outputs/nats.md). */
      nats: Schema.optional(NatsOutputConfigSchema),
    }),
  ),
  http: Schema.optional(
    Schema.Struct({
      enabled: Schema.optional(Schema.Boolean),
      host: Schema.optional(Schema.String),
      port: Schema.optional(Schema.Int.check(Schema.isGreaterThanOrEqualTo(0), Schema.isLessThanOrEqualTo(65535))),
      /** Required when `host` is not a loopback address. */
      token: Schema.optional(Schema.String.check(Schema.isMinLength(16))),
      /** Allow restart/stop buttons on the inspector page and the control endpoints. */
      allowControl: Schema.optional(Schema.Boolean),
      /** Events a slow /events client may fall behind before it loses its own events. */
      tailQueue: Schema.optional(PositiveInt),
      /** /events clients at once; the next one is answered 503. */
      maxTailClients: Schema.optional(PositiveInt),
      /** Open connections at most; past it the oldest idle or half-open one is closed. */
      maxConnections: Schema.optional(PositiveInt),
    }),
  ),
  readiness: Schema.optional(
    Schema.Struct({
      require: Schema.optional(Schema.Union([Schema.Literals(['all', 'any']), Schema.Array(Schema.String)])),
      graceMs: Schema.optional(NonNegative),
    }),
  ),
  log: Schema.optional(
    Schema.Struct({
      level: Schema.optional(Schema.Literals(['debug', 'info', 'warn', 'error'])),
      format: Schema.optional(Schema.Literals(['json', 'text'])),
    }),
  ),
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
  capacity: 10000
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
  port: 9464
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
  }
  readonly readiness: { readonly require: 'all' | 'any' | readonly string[]; readonly graceMs: number }
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
      return `${formatPath([...prefix, ...path])}: ${excess ? 'unknown key (not part of the configuration)' : `${msg}, got ${got === MASK ? MASK : redactShapes(describeValue(got))}`}`
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

const LOOPBACK = new Set(['127.0.0.1', '::1', 'localhost'])

/** How the agent validates one kind's own keys (from its collector's Schema). */
export type KindConfigValidator = (config: Readonly<Record<string, unknown>>, path: readonly PropertyKey[]) => string[]

/** Validate and fill defaults. Throws ConfigError listing every problem. */
export function resolveConfig(
  input: unknown,
  source: string,
  kinds: ReadonlyMap<string, KindConfigValidator> = new Map(),
): AgentConfig {
  const decoded = decodeWithPaths(AgentConfigSchema, input)
  if (Result.isFailure(decoded)) throw new ConfigError(source, decoded.failure)
  const c = decoded.success
  const problems: string[] = []
  const collectors: ResolvedCollector[] = []
  for (const [name, raw] of Object.entries(c.collectors ?? {})) {
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
    if (validate) problems.push(...validate(own, path))
    if (Result.isSuccess(meta))
      collectors.push({ name, kind, enabled: meta.success.enabled ?? true, policy: meta.success.policy ?? {}, config: own })
  }
  const require = c.readiness?.require ?? 'all'
  if (Array.isArray(require)) {
    const names = Object.keys(c.collectors ?? {})
    require.forEach((name, i) => {
      if (!names.includes(name))
        problems.push(`${formatPath(['readiness', 'require', i])}: expected the name of a configured collector (${names.join(', ') || 'none configured'}), got ${JSON.stringify(name)}`)
    })
  }
  const host = c.http?.host ?? '127.0.0.1'
  if (!LOOPBACK.has(host) && !c.http?.token)
    problems.push(`http.token: expected a bearer token (16+ characters) because http.host ${JSON.stringify(host)} is not loopback`)
  if (problems.length > 0) throw new ConfigError(source, problems)
  return {
    node: c.node ?? hostname(),
    buffer: {
      capacity: c.buffer?.capacity ?? 10_000,
      policy: c.buffer?.policy ?? 'block',
      sampling: { highWaterMark: c.buffer?.sampling?.highWaterMark ?? 0.8, keepOneIn: c.buffer?.sampling?.keepOneIn ?? 10 },
    },
    supervisor: {
      strategy: c.supervisor?.strategy ?? 'one_for_one',
      policy: c.supervisor?.policy ?? {},
      stopTimeoutMs: c.supervisor?.stopTimeoutMs ?? 10_000,
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
      port: c.http?.port ?? 9464,
      ...(c.http?.token ? { token: c.http.token } : {}),
      allowControl: c.http?.allowControl ?? false,
      tailQueue: c.http?.tailQueue ?? 1000,
      maxTailClients: c.http?.maxTailClients ?? 64,
      maxConnections: c.http?.maxConnections ?? 256,
    },
    readiness: { require, graceMs: c.readiness?.graceMs ?? 30_000 },
    log: { level: c.log?.level ?? 'info', format: c.log?.format ?? 'json' },
  }
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

/**
 * JSON Schema of the configuration file, for editors: the agent's own keys plus, under
 * `collectors.<kind>`, each known kind's keys.
 */
export function configJsonSchema(kindSchemas: ReadonlyMap<string, Schema.Struct<Schema.Struct.Fields>>): unknown {
  const perKind: Record<string, Schema.Top> = {}
  for (const [kind, schema] of kindSchemas) {
    perKind[kind] = Schema.optional(Schema.Struct({ ...CollectorMetaFields, ...schema.fields }))
  }
  const full = AgentConfigSchema.mapFields((f) => ({
    ...f,
    collectors: Schema.optional(Schema.Struct(perKind as Schema.Struct.Fields)),
  }))
  return Schema.toJsonSchemaDocument(full)
}
