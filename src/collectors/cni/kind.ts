import type * as Schema from 'effect/Schema'
import type { CollectorKind } from '../../core/kind.js'
import { CniConfigInputSchema } from './config.js'

export const cniKind: CollectorKind = {
  kind: 'cni',
  description: 'network links, addresses and routes (rtnetlink), network namespaces, CNI configuration and results',
  configSchema: CniConfigInputSchema as unknown as Schema.Struct<Schema.Struct.Fields>,
  detect: async (config) => (await import('./detect.js')).detectCni(config),
  create: async (config) => {
    const { CniCollector } = await import('./collector.js')
    return () => new CniCollector(config)
  },
}
