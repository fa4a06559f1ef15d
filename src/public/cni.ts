/**
 * `tapio-collector-manager/cni`: network links, addresses and routes (rtnetlink, through the
 * netlink addon shipped with the package), network namespaces, CNI configuration files and
 * attachment results. `detectCni` says whether this machine qualifies and why not.
 *
 *   mgr.addCollector('cni', () => new CniCollector({ netlink: 'required' }))
 */
import '../peers.js'

export { CniCollector, type CniCollectorOptions } from '../collectors/cni/collector.js'
export {
  CNI_DEFAULTS,
  CniConfigError,
  CniConfigInputSchema,
  parseCniConfig,
  parseCniConfigOrThrow,
  type CniCollectorConfig,
  type CniCollectorConfigInput,
  type NetlinkMode,
  type WatchedDir,
} from '../collectors/cni/config.js'
export { detectCni } from '../collectors/cni/detect.js'
export * from '../events/vocabulary/network.js'
