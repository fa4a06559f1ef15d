export { SystemdCollector, type SystemdCollectorOptions, type SystemdSharedState, createSystemdCollector, newSystemdSharedState, systemdCollectorFactory } from './collector.js'
export {
  DEFAULT_CONFIG as DEFAULT_SYSTEMD_CONFIG,
  DEFAULT_EXCLUDE as DEFAULT_SYSTEMD_EXCLUDE,
  type SystemdConfig,
  type SystemdConfigInput,
  SystemdConfigError,
  SystemdConfigSchema,
  UNIT_TYPES,
  parseSystemdConfig,
  resolveBusAddress,
} from './config.js'
export { detectSystemd } from './detect.js'
export * from '../../events/vocabulary/systemd.js'
export { globToRegExp, makeUnitFilter } from './glob.js'
