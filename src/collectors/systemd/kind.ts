import type * as Schema from 'effect/Schema'
import type { CollectorKind } from '../../core/kind.js'
import { SystemdConfigSchema } from './config.js'

/** dbus-next is loaded only when a systemd collector is configured. */
export const systemdKind: CollectorKind = {
  kind: 'systemd',
  description: 'systemd unit and job events over D-Bus (system bus by default)',
  configSchema: SystemdConfigSchema as unknown as Schema.Struct<Schema.Struct.Fields>,
  detect: async (config) => (await import('./detect.js')).detectSystemd(config as never),
  // The instances share one unit table, so a reconnect reports only differences.
  create: async (config) => (await import('./collector.js')).systemdCollectorFactory(config as never),
}
