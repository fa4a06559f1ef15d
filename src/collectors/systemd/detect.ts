import { existsSync } from 'node:fs'
import * as Result from 'effect/Result'
import * as Schema from 'effect/Schema'
import { socketPathOf } from './address.js'
import { type SystemdConfigInput, resolveBusAddress, withDefaults } from './config.js'
import { MANAGER_IFACE, PROPERTIES_IFACE, SYSTEMD_NAME, SYSTEMD_PATH, VariantSchema, decode } from './messages.js'

const VersionReplySchema = Schema.Tuple([VariantSchema])

/**
 * Supported when the configured bus socket exists and org.freedesktop.systemd1 answers on it.
 * Never throws; the reason says what is missing ("no system bus at /run/dbus/system_bus_socket").
 */
export async function detectSystemd(config?: SystemdConfigInput): Promise<{ supported: boolean; reason: string }> {
  const cfg = withDefaults(config)
  const address = resolveBusAddress(cfg)
  const socket = socketPathOf(address)
  const busName = cfg.address ? 'bus' : `${cfg.bus} bus`
  if (socket !== undefined && !existsSync(socket)) return { supported: false, reason: `no ${busName} at ${socket}` }
  const timeout = Math.min(cfg.callTimeoutMs, 5_000)
  let conn
  try {
    // dbus-next is loaded only once there is a socket to talk to.
    const { connectBus } = await import('./bus.js')
    conn = await connectBus(address, new AbortController().signal, timeout)
  } catch (err) {
    return { supported: false, reason: err instanceof Error ? err.message : String(err) }
  }
  try {
    const reply = await conn.call(
      { destination: SYSTEMD_NAME, path: SYSTEMD_PATH, interface: PROPERTIES_IFACE, member: 'Get', signature: 'ss', body: [MANAGER_IFACE, 'Version'] },
      timeout,
    )
    const version = decode(VersionReplySchema, reply.body)
    const v = Result.isSuccess(version) ? String(version.success[0].value) : 'unknown version'
    return { supported: true, reason: `systemd ${v} answers on ${address}` }
  } catch (err) {
    return {
      supported: false,
      reason: `${SYSTEMD_NAME} does not answer on ${address}: ${err instanceof Error ? err.message : String(err)}`,
    }
  } finally {
    conn.close()
  }
}
