import * as Result from 'effect/Result'
import * as Schema from 'effect/Schema'

export const UNIT_TYPES = [
  'service',
  'socket',
  'target',
  'device',
  'mount',
  'automount',
  'swap',
  'timer',
  'path',
  'slice',
  'scope',
] as const

const Glob = Schema.String.check(Schema.isMinLength(1))
const PositiveInt = Schema.Finite.check(Schema.isInt(), Schema.isGreaterThan(0))

/**
 * What the user may write. `bus` replaces the original design's `MonitorSystem` flag and
 * `include`/`exclude` its `FilterUnits` list.
 */
export const SystemdConfigSchema = Schema.Struct({
  bus: Schema.optional(Schema.Literals(['system', 'session'])).annotate({ description: 'Which bus to watch when no `address` is given: the system manager or the user manager.' }),
  address: Schema.optional(Schema.String.check(Schema.isPattern(/^(unix|tcp):/, { description: 'a D-Bus address such as unix:path=/run/dbus/system_bus_socket' }))).annotate({ description: 'An explicit D-Bus address (`unix:path=/run/dbus/system_bus_socket`); overrides `bus`.' }),
  include: Schema.optional(Schema.Array(Glob)).annotate({ description: 'Unit name globs to follow (default every unit of the wanted types).' }),
  exclude: Schema.optional(Schema.Array(Glob)).annotate({ description: 'Unit name globs to ignore; they win over `include`.' }),
  unitTypes: Schema.optional(Schema.Array(Schema.Literals(UNIT_TYPES))).annotate({ description: 'Unit types to follow (default: service).' }),
  emitJobs: Schema.optional(Schema.Boolean).annotate({ description: 'Emit systemd.job.* events (default false: every start/stop queues jobs, which is chatty).' }),
  callTimeoutMs: Schema.optional(PositiveInt).annotate({ description: 'Timeout of one D-Bus call and of the connection handshake.' }),
  maxQueuedEvents: Schema.optional(PositiveInt).annotate({ description: 'Events held for a slow consumer before the oldest are dropped (counted).' }),
})
export type SystemdConfigInput = typeof SystemdConfigSchema.Type

export type UnitType = (typeof UNIT_TYPES)[number]

export interface SystemdConfig {
  readonly bus: 'system' | 'session'
  readonly address: string | undefined
  readonly include: readonly string[]
  readonly exclude: readonly string[]
  readonly unitTypes: readonly UnitType[]
  readonly emitJobs: boolean
  readonly callTimeoutMs: number
  readonly maxQueuedEvents: number
}

/**
 * Units that come and go per login, per container or per pod volume: on a Kubernetes node they
 * outnumber the services people care about. They only matter when their type is enabled.
 */
export const DEFAULT_EXCLUDE: readonly string[] = [
  'session-*.scope',
  'run-user-*.mount',
  'run-credentials-*.mount',
  'run-containerd-*.mount',
  'run-netns-*.mount',
  'var-lib-kubelet-pods-*.mount',
  'var-lib-containerd-*.mount',
  'var-lib-docker-*.mount',
  'docker-*.scope',
  'cri-containerd-*.scope',
  'crio-*.scope',
]

export const DEFAULT_CONFIG: SystemdConfig = {
  bus: 'system',
  address: undefined,
  include: ['*'],
  exclude: DEFAULT_EXCLUDE,
  unitTypes: ['service'],
  emitJobs: false,
  callTimeoutMs: 10_000,
  maxQueuedEvents: 10_000,
}

export function withDefaults(input: SystemdConfigInput = {}): SystemdConfig {
  return {
    bus: input.bus ?? DEFAULT_CONFIG.bus,
    address: input.address ?? DEFAULT_CONFIG.address,
    include: input.include ?? DEFAULT_CONFIG.include,
    exclude: input.exclude ?? DEFAULT_CONFIG.exclude,
    unitTypes: input.unitTypes ?? DEFAULT_CONFIG.unitTypes,
    emitJobs: input.emitJobs ?? DEFAULT_CONFIG.emitJobs,
    callTimeoutMs: input.callTimeoutMs ?? DEFAULT_CONFIG.callTimeoutMs,
    maxQueuedEvents: input.maxQueuedEvents ?? DEFAULT_CONFIG.maxQueuedEvents,
  }
}

export class SystemdConfigError extends Error {
  override readonly name = 'SystemdConfigError'
}

const decodeConfig = Schema.decodeUnknownResult(SystemdConfigSchema)

/** Validate untrusted config (a YAML section); the error names the offending path. */
export function parseSystemdConfig(input: unknown): Result.Result<SystemdConfig, SystemdConfigError> {
  const r = decodeConfig(input ?? {}, { errors: 'all', onExcessProperty: 'error' })
  if (Result.isFailure(r)) return Result.fail(new SystemdConfigError(`invalid systemd config: ${r.failure.message}`))
  return Result.succeed(withDefaults(r.success))
}

/**
 * The address to dial, read at start time so a changed environment is honoured.
 * The defaults follow the D-Bus specification.
 */
export function resolveBusAddress(config: SystemdConfig, env: NodeJS.ProcessEnv = process.env): string {
  if (config.address) return config.address
  if (config.bus === 'system') return env.DBUS_SYSTEM_BUS_ADDRESS || 'unix:path=/run/dbus/system_bus_socket'
  if (env.DBUS_SESSION_BUS_ADDRESS) return env.DBUS_SESSION_BUS_ADDRESS
  const runtime = env.XDG_RUNTIME_DIR || `/run/user/${process.getuid?.() ?? 0}`
  return `unix:path=${runtime}/bus`
}
