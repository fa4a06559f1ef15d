/**
 * `tapio-collector-manager/ebpf`: kernel events (process exec/exit, TCP lifecycle, OOM kills,
 * file opens) through the libbpf addon shipped with the package. Needs root (or CAP_BPF,
 * CAP_PERFMON, CAP_SYS_RESOURCE) and a kernel with BTF; `detectEbpf` says whether this machine
 * qualifies and why not.
 *
 *   mgr.addCollector('ebpf', () => new EbpfCollector({ programs: { openat: true } }))
 */
import '../peers.js'

export { EbpfCollector, type EbpfCollectorOptions, type EbpfTotals } from '../collectors/ebpf/collector.js'
export {
  EBPF_DEFAULTS,
  EbpfConfigError,
  EbpfConfigInputSchema,
  parseEbpfConfig,
  parseEbpfConfigOrThrow,
  type EbpfConfig,
  type EbpfConfigInput,
  type EbpfPrograms,
} from '../collectors/ebpf/config.js'
export { TCP_STATES } from '../collectors/ebpf/decode.js'
export { detectEbpf } from '../collectors/ebpf/detect.js'
export * from '../events/vocabulary/kernel.js'
export { BpfUnavailableError, type BpfFailureReason } from '../native/bpf-addon.js'
