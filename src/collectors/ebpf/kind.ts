import type * as Schema from 'effect/Schema'
import type { CollectorKind } from '../../core/kind.js'
import { EbpfConfigInputSchema } from './config.js'

export const ebpfKind: CollectorKind = {
  kind: 'ebpf',
  description: 'kernel events through the libbpf addon: process exec/exit, TCP lifecycle, OOM kills, file opens',
  configSchema: EbpfConfigInputSchema as unknown as Schema.Struct<Schema.Struct.Fields>,
  detect: async (config) => (await import('./detect.js')).detectEbpf(config),
  create: async (config) => {
    const { EbpfCollector } = await import('./collector.js')
    return () => new EbpfCollector(config)
  },
}
