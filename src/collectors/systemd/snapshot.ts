/** Subscribe and take a snapshot of the followed units, noting where each reply sits in the stream. */
import * as Result from 'effect/Result'
import type { BusConnection } from './bus.js'
import type { UnitFilter } from './glob.js'
import { unitTypeOf } from './glob.js'
import {
  DBUS_NAME,
  DBUS_PATH,
  GetAllReplySchema,
  ListUnitsReplySchema,
  MANAGER_IFACE,
  NameOwnerReplySchema,
  PROPERTIES_IFACE,
  SERVICE_IFACE,
  SYSTEMD_NAME,
  SYSTEMD_PATH,
  type ServiceProps,
  ServicePropsSchema,
  UNIT_PATH_PREFIX,
  decode,
  unwrapVariants,
} from './messages.js'
import { withServiceProps } from './table.js'
import type { UnitState } from './units.js'

const MATCH_RULES = [
  `type='signal',sender='${SYSTEMD_NAME}',path='${SYSTEMD_PATH}',interface='${MANAGER_IFACE}'`,
  `type='signal',sender='${SYSTEMD_NAME}',interface='${PROPERTIES_IFACE}',member='PropertiesChanged',path_namespace='${UNIT_PATH_PREFIX.slice(0, -1)}'`,
  `type='signal',sender='${DBUS_NAME}',interface='${DBUS_NAME}',member='NameOwnerChanged',arg0='${SYSTEMD_NAME}'`,
]

const CONCURRENCY = 8

export interface Snapshot {
  readonly units: ReadonlyMap<string, UnitState>
  /** Object path -> unit name of every loaded unit, followed or not. */
  readonly paths: ReadonlyMap<string, string>
  /** Stream position of the ListUnits reply: older unit signals are superseded by it. */
  readonly listSeq: number
  /** Stream position of each service's GetAll reply. */
  readonly serviceSeq: ReadonlyMap<string, number>
}

/** The unique name that owns org.freedesktop.systemd1, or a clear error. */
export async function systemdOwner(conn: BusConnection, timeoutMs: number): Promise<string> {
  const reply = await conn
    .call({ destination: DBUS_NAME, path: DBUS_PATH, interface: DBUS_NAME, member: 'GetNameOwner', signature: 's', body: [SYSTEMD_NAME] }, timeoutMs)
    .catch((err: unknown) => {
      throw new Error(`${SYSTEMD_NAME} does not answer on ${conn.address}: ${err instanceof Error ? err.message : String(err)}`)
    })
  const owner = decode(NameOwnerReplySchema, reply.body)
  if (Result.isFailure(owner)) throw new Error(`unexpected GetNameOwner reply: ${owner.failure}`)
  return owner.success[0]
}

/** AddMatch for the signals the collector reads, then Manager.Subscribe (else systemd sends few). */
export async function subscribe(conn: BusConnection, timeoutMs: number): Promise<void> {
  for (const rule of MATCH_RULES) {
    await conn.call({ destination: DBUS_NAME, path: DBUS_PATH, interface: DBUS_NAME, member: 'AddMatch', signature: 's', body: [rule] }, timeoutMs)
  }
  await conn.call({ destination: SYSTEMD_NAME, path: SYSTEMD_PATH, interface: MANAGER_IFACE, member: 'Subscribe' }, timeoutMs)
}

/** ListUnits, then the Service properties of every followed service. */
export async function takeSnapshot(
  conn: BusConnection,
  filter: UnitFilter,
  timeoutMs: number,
  onMalformed: (what: string) => void,
): Promise<Snapshot> {
  const listReply = await conn.call({ destination: SYSTEMD_NAME, path: SYSTEMD_PATH, interface: MANAGER_IFACE, member: 'ListUnits' }, timeoutMs)
  const listed = decode(ListUnitsReplySchema, listReply.body)
  if (Result.isFailure(listed)) throw new Error(`malformed ListUnits reply: ${listed.failure}`)

  const units = new Map<string, UnitState>()
  const paths = new Map<string, string>()
  const services: Array<readonly [string, string]> = []
  for (const [name, , , activeState, subState, , path] of listed.success[0]) {
    paths.set(path, name)
    if (!filter(name)) continue
    units.set(name, { activeState, subState })
    if (unitTypeOf(name) === 'service') services.push([name, path])
  }

  const serviceSeq = new Map<string, number>()
  await forEachLimited(services, CONCURRENCY, async ([name, path]) => {
    const reply = await conn
      .call({ destination: SYSTEMD_NAME, path, interface: PROPERTIES_IFACE, member: 'GetAll', signature: 's', body: [SERVICE_IFACE] }, timeoutMs)
      .catch((err: unknown) => {
        // A unit unloaded between ListUnits and GetAll: keep it without service details.
        if (conn.closed) throw err
        return undefined
      })
    if (!reply) return
    const props = serviceProps(reply.body, onMalformed)
    const base = units.get(name)
    if (props && base) {
      units.set(name, withServiceProps(base, props))
      serviceSeq.set(name, reply.seq)
    }
  })
  return { units, paths, listSeq: listReply.seq, serviceSeq }
}

function serviceProps(body: readonly unknown[], onMalformed: (what: string) => void): ServiceProps | undefined {
  const all = decode(GetAllReplySchema, body)
  if (Result.isFailure(all)) return void onMalformed(`GetAll: ${all.failure}`)
  const props = decode(ServicePropsSchema, unwrapVariants(all.success[0]))
  if (Result.isFailure(props)) return void onMalformed(`service properties: ${props.failure}`)
  return props.success
}

async function forEachLimited<T>(items: readonly T[], limit: number, fn: (item: T) => Promise<void>): Promise<void> {
  let next = 0
  const worker = async (): Promise<void> => {
    while (next < items.length) {
      const item = items[next++] as T
      await fn(item)
    }
  }
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker))
}
