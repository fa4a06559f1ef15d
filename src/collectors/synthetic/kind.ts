import type * as Schema from 'effect/Schema'
import type { CollectorKind } from '../../core/kind.js'
import { SyntheticConfigSchema } from './config.js'
// Registers `synthetic.tick` with the events module: the agent checks and encodes it whatever loads first.
import './events.js'

export const syntheticKind: CollectorKind = {
  kind: 'synthetic',
  description: 'generated events at a configurable rate, with failure injection (tests, demos, benchmarks)',
  configSchema: SyntheticConfigSchema as unknown as Schema.Struct<Schema.Struct.Fields>,
  detect: async () => ({ supported: true, reason: 'always available' }),
  // `faultyStarts` counts the registration's starts, so a fault can hit the first starts only.
  create: async (config) => (await import('./collector.js')).syntheticCollectorFactory(config),
}
