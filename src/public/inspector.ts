/**
 * `tapio-collector-manager/inspector`: the live inspector page (state machines, transitions,
 * rates, restarts, last errors) and its Server-Sent-Events feed for any CollectorManager, either
 * on a server of its own (`serveInspector`) or mounted in yours (`createInspector(...).handle`).
 * The page is static and offline (no CDN); the `tapio-agent` serves it through the same function.
 *
 *   const server = await serveInspector(mgr, { port: 9465 })
 *   console.log(`${server.url}/inspect`)
 */
import '../peers.js'

export {
  createInspector,
  serveInspector,
  type InspectedManager,
  type Inspector,
  type InspectorOptions,
  type InspectorServer,
  type ServeInspectorOptions,
} from '../inspector/serve.js'
export type { TransitionRecord } from '../inspector/feed.js'
