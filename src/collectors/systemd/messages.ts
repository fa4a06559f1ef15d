/**
 * Schemas for what systemd and the bus daemon send. Every body is decoded here before use;
 * a body that does not decode is counted as malformed by the caller and skipped.
 */
import * as Result from 'effect/Result'
import * as Schema from 'effect/Schema'

export const SYSTEMD_NAME = 'org.freedesktop.systemd1'
export const SYSTEMD_PATH = '/org/freedesktop/systemd1'
export const MANAGER_IFACE = 'org.freedesktop.systemd1.Manager'
export const UNIT_IFACE = 'org.freedesktop.systemd1.Unit'
export const SERVICE_IFACE = 'org.freedesktop.systemd1.Service'
export const PROPERTIES_IFACE = 'org.freedesktop.DBus.Properties'
export const DBUS_NAME = 'org.freedesktop.DBus'
export const DBUS_PATH = '/org/freedesktop/DBus'
export const UNIT_PATH_PREFIX = '/org/freedesktop/systemd1/unit/'

const U32 = Schema.Number.check(Schema.isInt(), Schema.isGreaterThanOrEqualTo(0))
const I32 = Schema.Number.check(Schema.isInt())
/** D-Bus `t` (dbus-next decodes it to a bigint). */
const U64 = Schema.BigInt.check(Schema.isGreaterThanOrEqualToBigInt(0n))

/** One row of Manager.ListUnits: (ssssssouso). */
export const ListedUnitSchema = Schema.Tuple([
  Schema.String, // name
  Schema.String, // description
  Schema.String, // load state
  Schema.String, // active state
  Schema.String, // sub state
  Schema.String, // following
  Schema.String, // object path
  U32, // job id
  Schema.String, // job type
  Schema.String, // job path
])
export const ListUnitsReplySchema = Schema.Tuple([Schema.Array(ListedUnitSchema)])

export const VariantSchema = Schema.Struct({ signature: Schema.String, value: Schema.Unknown })
const VariantMap = Schema.Record(Schema.String, VariantSchema)

export const GetAllReplySchema = Schema.Tuple([VariantMap])
export const PropertiesChangedSchema = Schema.Tuple([Schema.String, VariantMap, Schema.Array(Schema.String)])

export const UnitNewSchema = Schema.Tuple([Schema.String, Schema.String])
export const JobNewSchema = Schema.Tuple([U32, Schema.String, Schema.String])
export const JobRemovedSchema = Schema.Tuple([U32, Schema.String, Schema.String, Schema.String])
export const ReloadingSchema = Schema.Tuple([Schema.Boolean])
export const NameOwnerChangedSchema = Schema.Tuple([Schema.String, Schema.String, Schema.String])
export const NameOwnerReplySchema = Schema.Tuple([Schema.String])
export const BooleanReplySchema = Schema.Tuple([Schema.Boolean])

/** The unit properties the collector follows, from org.freedesktop.systemd1.Unit. */
export const UnitPropsSchema = Schema.Struct({
  ActiveState: Schema.optional(Schema.String),
  SubState: Schema.optional(Schema.String),
  LoadState: Schema.optional(Schema.String),
})
/**
 * From org.freedesktop.systemd1.Service. MainPID is 0 once the main process is gone; the ExecMain*
 * group describes the last main process (its pid, how it ended, and when: CLOCK_REALTIME in
 * microseconds, 0 while unknown) until the next one starts.
 */
export const ServicePropsSchema = Schema.Struct({
  Result: Schema.optional(Schema.String),
  NRestarts: Schema.optional(U32),
  MainPID: Schema.optional(U32),
  ExecMainPID: Schema.optional(U32),
  ExecMainCode: Schema.optional(I32),
  ExecMainStatus: Schema.optional(I32),
  ExecMainStartTimestamp: Schema.optional(U64),
  ExecMainExitTimestamp: Schema.optional(U64),
})
export type UnitProps = typeof UnitPropsSchema.Type
export type ServiceProps = typeof ServicePropsSchema.Type

/** Decode, or return the failure text (with its path) for the malformed-message counter. */
export function decode<S extends Schema.ConstraintDecoder<unknown>>(
  schema: S,
  input: unknown,
): Result.Result<S['Type'], string> {
  const r = Schema.decodeUnknownResult(schema)(input, { errors: 'all' })
  return Result.isSuccess(r) ? Result.succeed(r.success) : Result.fail(r.failure.message)
}

/** Unwrap a{sv} to plain values so a property schema can check them. */
export function unwrapVariants(map: Readonly<Record<string, { readonly value: unknown }>>): Record<string, unknown> {
  const out: Record<string, unknown> = {}
  for (const [k, v] of Object.entries(map)) out[k] = v.value
  return out
}

/**
 * Unit object paths escape every byte outside [A-Za-z0-9] as _xx (sd-bus bus_label_escape).
 * Used for PropertiesChanged on units the collector has not seen in ListUnits or UnitNew.
 */
export function unitNameFromPath(path: string): string | undefined {
  if (!path.startsWith(UNIT_PATH_PREFIX)) return undefined
  const label = path.slice(UNIT_PATH_PREFIX.length)
  if (label === '' || label.includes('/')) return undefined
  if (label === '_') return ''
  const bytes: number[] = []
  for (let i = 0; i < label.length; i++) {
    const c = label[i]
    if (c === '_') {
      const hex = label.slice(i + 1, i + 3)
      if (!/^[0-9a-f]{2}$/i.test(hex)) return undefined
      bytes.push(Number.parseInt(hex, 16))
      i += 2
    } else {
      bytes.push(label.charCodeAt(i))
    }
  }
  return Buffer.from(bytes).toString('utf8')
}
