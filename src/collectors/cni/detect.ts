import * as Result from 'effect/Result'
import { loadNetlinkAddon, RouteSocket } from '../../native/netlink.js'
import { netlinkFailureReason } from './collector.js'
import { parseCniConfig } from './config.js'

/** Supported when the addon loads and a NETLINK_ROUTE socket opens (or netlink is turned off). */
export async function detectCni(config?: unknown): Promise<{ supported: boolean; reason: string }> {
  const parsed = parseCniConfig(config ?? {})
  if (Result.isFailure(parsed)) return { supported: false, reason: parsed.failure.message }
  const c = parsed.success
  if (c.netlink.mode === 'off') return { supported: true, reason: 'netlink off: CNI files and namespaces only' }
  try {
    const addon = loadNetlinkAddon(c.netlink.addonPath)
    RouteSocket.open(addon, { groups: [] }, () => {}).close()
    return { supported: true, reason: 'tapio_netlink addon loaded and a NETLINK_ROUTE socket opened' }
  } catch (e) {
    const reason = netlinkFailureReason(e)
    if (c.netlink.mode === 'optional') return { supported: true, reason: `degraded: ${reason}` }
    return { supported: false, reason }
  }
}
