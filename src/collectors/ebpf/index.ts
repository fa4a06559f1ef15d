export { CgroupResolver, findCgroup2Mount, parseCgroupPath, type CgroupInfo } from './cgroup.js'
export { decodedEventsBound, EbpfCollector, type EbpfCollectorOptions, type EbpfTotals } from './collector.js'
export {
  EBPF_DEFAULTS,
  EbpfConfigError,
  EbpfConfigInputSchema,
  parseEbpfConfig,
  parseEbpfConfigOrThrow,
  type EbpfConfig,
  type EbpfConfigInput,
} from './config.js'
export { BatchDecoder, TCP_STATES } from './decode.js'
export { detectEbpf } from './detect.js'
export * from '../../events/vocabulary/kernel.js'
