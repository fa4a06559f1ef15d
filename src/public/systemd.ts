/**
 * `tapio-collector-manager/systemd`: systemd unit and job events over D-Bus (the system bus by
 * default, or a user manager's bus). `detectSystemd` says whether a bus answers and why not.
 *
 *   mgr.addCollector('systemd', () => new SystemdCollector({ include: ['*.service'] }))
 */
import '../peers.js'

export { SystemdCollector, type SystemdCollectorOptions, createSystemdCollector } from '../collectors/systemd/collector.js'
export {
  DEFAULT_CONFIG as DEFAULT_SYSTEMD_CONFIG,
  DEFAULT_EXCLUDE as DEFAULT_SYSTEMD_EXCLUDE,
  SystemdConfigError,
  SystemdConfigSchema,
  UNIT_TYPES,
  parseSystemdConfig,
  type SystemdConfig,
  type SystemdConfigInput,
  type UnitType,
} from '../collectors/systemd/config.js'
export { detectSystemd } from '../collectors/systemd/detect.js'
export * from '../events/vocabulary/systemd.js'
