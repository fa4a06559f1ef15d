import { availableParallelism } from 'node:os'
import * as Result from 'effect/Result'
import * as Schema from 'effect/Schema'

const PositiveInt = Schema.Finite.check(Schema.isInt(), Schema.isGreaterThan(0))
const isPowerOfTwo = (n: number) => Number.isInteger(n) && n > 0 && (n & (n - 1)) === 0

/** The ring buffer must be a power of two and a multiple of the page size (kernel rule). */
const RingBytes = Schema.Finite.check(
  Schema.isInt(),
  Schema.isBetween({ minimum: 4096, maximum: 1 << 30 }),
  Schema.makeFilter((n: number) => isPowerOfTwo(n) || 'a power of two between 4096 and 2^30'),
)

/** In-kernel prefix match on absolute paths; the kernel side compares at most 63 bytes. */
const PathPrefix = Schema.String.check(
  Schema.isPattern(/^\//, { description: 'an absolute path prefix' }),
  Schema.isBetweenLength(1, 63),
)

export const EbpfConfigInputSchema = Schema.Struct({
  programs: Schema.optional(
    Schema.Struct({
      exec: Schema.optional(Schema.Boolean).annotate({ description: 'Process exec events.' }),
      exit: Schema.optional(Schema.Boolean).annotate({ description: 'Process exit events.' }),
      tcp: Schema.optional(Schema.Boolean).annotate({ description: 'TCP connection lifecycle events.' }),
      oom: Schema.optional(Schema.Boolean).annotate({ description: 'OOM kill events.' }),
      openat: Schema.optional(Schema.Boolean).annotate({ description: 'Off by default: opens are the busiest syscall; only `openatPrefixes` reach the ring.' }),
    }),
  ).annotate({ description: 'Which kernel programs are loaded.' }),
  openatPrefixes: Schema.optional(Schema.Array(PathPrefix).check(Schema.isBetweenLength(1, 8))).annotate({ description: 'Absolute path prefixes whose opens are reported (1-8, each at most 63 bytes; matched in the kernel).' }),
  ringBufferBytes: Schema.optional(RingBytes).annotate({ description: 'Total ring buffer size in bytes (power of two); default 1 MiB per CPU, at least 4 MiB.' }),
  wakeupFraction: Schema.optional(Schema.Finite.check(Schema.isBetween({ minimum: 0, maximum: 1 }))).annotate({ description: 'The kernel wakes the consumer early once this fraction of the ring is filled.' }),
  drainIntervalMs: Schema.optional(PositiveInt.check(Schema.isBetween({ minimum: 1, maximum: 1000 }))).annotate({ description: 'Records are picked up at least this often (the latency bound at low rates).' }),
  batchBytes: Schema.optional(PositiveInt.check(Schema.isBetween({ minimum: 16384, maximum: 16 << 20 }))).annotate({ description: 'Bytes of records per batch handed to JavaScript.' }),
  maxBatchesInFlight: Schema.optional(PositiveInt.check(Schema.isBetween({ minimum: 1, maximum: 1024 }))).annotate({ description: 'Batches handed over but not yet taken by the consumer; past this the native side stops reading.' }),
  loss: Schema.optional(
    Schema.Struct({
      threshold: Schema.optional(Schema.Finite.check(Schema.isBetween({ minimum: 0, maximum: 1 }))).annotate({ description: 'Lost / generated over the window above which health turns recoverable_error.' }),
      windowMs: Schema.optional(PositiveInt).annotate({ description: 'The window (ms) over which the loss ratio is measured.' }),
    }),
  ).annotate({ description: 'When lost kernel records make the collector report recoverable_error.' }),
  mountTracefs: Schema.optional(Schema.Boolean).annotate({ description: 'Mount tracefs at /sys/kernel/tracing when it is missing (needs root).' }),
  resolveContainers: Schema.optional(Schema.Boolean).annotate({ description: 'Map cgroup ids to cgroup paths and container ids.' }),
  probePid: Schema.optional(PositiveInt).annotate({ description: 'Enables the getppid() load probe for this pid (benchmarks and loss tests).' }),
  addonPath: Schema.optional(Schema.String.check(Schema.isMinLength(1))).annotate({ description: 'Path of tapio_bpf.node; defaults to native/build/Release in this package.' }),
})
export type EbpfConfigInput = typeof EbpfConfigInputSchema.Type

export interface EbpfPrograms {
  readonly exec: boolean
  readonly exit: boolean
  readonly tcp: boolean
  readonly oom: boolean
  readonly openat: boolean
}

export interface EbpfConfig {
  readonly programs: EbpfPrograms
  readonly openatPrefixes: readonly string[]
  readonly ringBufferBytes: number
  readonly wakeupFraction: number
  readonly drainIntervalMs: number
  readonly batchBytes: number
  readonly maxBatchesInFlight: number
  readonly loss: { readonly threshold: number; readonly windowMs: number }
  readonly mountTracefs: boolean
  readonly resolveContainers: boolean
  readonly probePid?: number
  readonly addonPath?: string
}

/**
 * The default ring: 1 MiB per CPU (a node's event rate grows with what runs on it), at least
 * 4 MiB, a power of two. Blocked, the consumer lets a 4 MiB ring (plus the native reader's
 * in-flight batches) absorb ~100,000 probe records, 5.7 MB of ring records; a busy 2-CPU machine
 * (8 parallel builds) writes ~5 KB/s of exec/exit/tcp records, so that is minutes of stall, and
 * seconds at 100x the rate (bench:ebpf-stall; docs/performance.md, Footprint). Falco's default
 * for a full syscall stream is 8 MB per two CPUs. The ring is kernel memory that libbpf maps
 * twice, so the agent's RSS shows twice its size.
 */
export function defaultRingBufferBytes(cpus: number = availableParallelism()): number {
  const mib = Math.max(4, Math.min(1024, Math.ceil(cpus)))
  return 2 ** Math.ceil(Math.log2(mib)) * (1 << 20)
}

export const EBPF_DEFAULTS: EbpfConfig = {
  programs: { exec: true, exit: true, tcp: true, oom: true, openat: false },
  openatPrefixes: ['/etc/'],
  ringBufferBytes: defaultRingBufferBytes(),
  wakeupFraction: 0.25,
  drainIntervalMs: 5,
  batchBytes: 256 << 10,
  maxBatchesInFlight: 8,
  loss: { threshold: 0.01, windowMs: 10_000 },
  mountTracefs: true,
  resolveContainers: true,
}

export class EbpfConfigError extends Error {
  override readonly name = 'EbpfConfigError'
  readonly _tag = 'EbpfConfigError'
}

const decodeInput = Schema.decodeUnknownResult(EbpfConfigInputSchema)

/** Validate and fill defaults; the error names the offending path. */
export function parseEbpfConfig(input: unknown = {}): Result.Result<EbpfConfig, EbpfConfigError> {
  const r = decodeInput(input ?? {}, { errors: 'all', onExcessProperty: 'error' })
  if (Result.isFailure(r)) return Result.fail(new EbpfConfigError(`invalid ebpf collector config: ${String(r.failure)}`))
  const c = r.success
  const d = EBPF_DEFAULTS
  return Result.succeed({
    programs: {
      exec: c.programs?.exec ?? d.programs.exec,
      exit: c.programs?.exit ?? d.programs.exit,
      tcp: c.programs?.tcp ?? d.programs.tcp,
      oom: c.programs?.oom ?? d.programs.oom,
      openat: c.programs?.openat ?? d.programs.openat,
    },
    openatPrefixes: c.openatPrefixes ?? d.openatPrefixes,
    ringBufferBytes: c.ringBufferBytes ?? d.ringBufferBytes,
    wakeupFraction: c.wakeupFraction ?? d.wakeupFraction,
    drainIntervalMs: c.drainIntervalMs ?? d.drainIntervalMs,
    batchBytes: c.batchBytes ?? d.batchBytes,
    maxBatchesInFlight: c.maxBatchesInFlight ?? d.maxBatchesInFlight,
    loss: { threshold: c.loss?.threshold ?? d.loss.threshold, windowMs: c.loss?.windowMs ?? d.loss.windowMs },
    mountTracefs: c.mountTracefs ?? d.mountTracefs,
    resolveContainers: c.resolveContainers ?? d.resolveContainers,
    ...(c.probePid !== undefined ? { probePid: c.probePid } : {}),
    ...(c.addonPath !== undefined ? { addonPath: c.addonPath } : {}),
  })
}

/** Like parseEbpfConfig but throws EbpfConfigError. */
export function parseEbpfConfigOrThrow(input: unknown = {}): EbpfConfig {
  const r = parseEbpfConfig(input)
  if (Result.isFailure(r)) throw r.failure
  return r.success
}
