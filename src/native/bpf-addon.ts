/**
 * The TypeScript face of `tapio_bpf.node`: finding and loading it from ESM, its typed surface,
 * and turning its `{stage, errno}` errors into reasons a person can act on. The C++ stays thin.
 */
import { existsSync } from 'node:fs'
import { createRequire } from 'node:module'
import * as Result from 'effect/Result'
import * as Schema from 'effect/Schema'
import { defaultAddonFile, rebuildHint } from './addon-path.js'

/** `cgroup` emits no events: it announces new cgroup2 directories to the container resolver. */
export const BPF_PROGRAMS = ['exec', 'exit', 'tcp', 'oom', 'openat', 'probe', 'cgroup'] as const
export type BpfProgramName = (typeof BPF_PROGRAMS)[number]

export interface NativeSessionOptions {
  readonly ringBytes: number
  readonly wakeupBytes: number
  readonly drainIntervalMs: number
  readonly batchBytes: number
  readonly maxBatchesInFlight: number
  readonly programs: readonly BpfProgramName[]
  readonly openPrefixes: readonly string[]
  readonly probePid: number
}

const ProgramFailureSchema = Schema.Struct({ program: Schema.String, errno: Schema.Number, message: Schema.String })
export type ProgramFailure = typeof ProgramFailureSchema.Type

const OpenResultSchema = Schema.Struct({
  attached: Schema.Array(Schema.String),
  failed: Schema.Array(ProgramFailureSchema),
})
export type OpenResult = typeof OpenResultSchema.Type

const NativeCountersSchema = Schema.Struct({
  attempted: Schema.Array(Schema.Number),
  droppedKernel: Schema.Array(Schema.Number),
  consumed: Schema.Number,
  malformed: Schema.Number,
  forwarded: Schema.Number,
  batches: Schema.Number,
  stalls: Schema.Number,
})
export type NativeCounters = typeof NativeCountersSchema.Type

/** What the compiled module exports (checked structurally when loaded). */
interface RawSession {
  open(): unknown
  start(onBatch: (batch: Buffer | null, err?: number) => void): void
  release(n: number): void
  stop(): void
  close(): unknown
  counters(): unknown
  injectForTest(frames: Buffer): number
}
interface RawAddon {
  Session: new (options: NativeSessionOptions) => RawSession
  clockOffset(): unknown
  mountTracefs(path: string): number
  abiVersion: number
}

export const ADDON_ABI_VERSION = 2

/** Why the kernel path cannot run, with what to do about it. */
export type BpfFailureReason =
  | 'addon_missing'
  | 'addon_incompatible'
  | 'permission'
  | 'no_btf'
  | 'no_tracefs'
  | 'load_failed'
  | 'no_program_attached'

export class BpfUnavailableError extends Error {
  override readonly name = 'BpfUnavailableError'
  constructor(
    readonly reason: BpfFailureReason,
    message: string,
    readonly details: Readonly<Record<string, unknown>> = {},
  ) {
    super(`unavailable: ${message}`)
  }
}


/** A loaded session with decoded, validated results. */
export class BpfSession {
  private constructor(private readonly raw: RawSession) {}

  static create(addon: BpfAddon, options: NativeSessionOptions): BpfSession {
    return new BpfSession(new addon.raw.Session(options))
  }

  /** Loads and attaches; throws BpfUnavailableError when no program could be loaded at all. */
  open(): OpenResult {
    let out: unknown
    try {
      out = this.raw.open()
    } catch (e) {
      throw translateNativeError(e)
    }
    return decodeOrThrow(OpenResultSchema, out, 'open() result')
  }

  /** `onBatch(null, errno)` ends the session: errno 0 after stop(), else why the consumer gave up. */
  start(onBatch: (batch: Buffer | null, err: number) => void): void {
    this.raw.start((batch, err) => onBatch(batch, typeof err === 'number' ? err : 0))
  }
  release(n: number): void {
    this.raw.release(n)
  }
  stop(): void {
    this.raw.stop()
  }
  /** Joins the consumer thread, frees every kernel object, returns the final counters. */
  close(): NativeCounters {
    return decodeOrThrow(NativeCountersSchema, this.raw.close(), 'close() result')
  }
  counters(): NativeCounters {
    return decodeOrThrow(NativeCountersSchema, this.raw.counters(), 'counters()')
  }
  /** Test hook: frames of [u32 length][bytes] go through the native record path. */
  injectForTest(frames: Buffer): number {
    return this.raw.injectForTest(frames)
  }
}

export class BpfAddon {
  constructor(
    readonly raw: RawAddon,
    readonly path: string,
  ) {}

  /** CLOCK_REALTIME - CLOCK_BOOTTIME as [seconds, nanoseconds]. */
  clockOffset(): readonly [number, number] {
    const v = this.raw.clockOffset()
    if (!Array.isArray(v) || typeof v[0] !== 'number' || typeof v[1] !== 'number') {
      throw new Error('tapio_bpf: clockOffset() returned an unexpected value')
    }
    return [v[0], v[1]]
  }

  /** 0 or -errno. */
  mountTracefs(path = '/sys/kernel/tracing'): number {
    return this.raw.mountTracefs(path)
  }
}

function decodeOrThrow<S extends Schema.Top>(schema: S, value: unknown, what: string): S['Type'] {
  const r = Schema.decodeUnknownResult(schema as unknown as Schema.Codec<S['Type'], unknown, never, never>)(value)
  if (Result.isFailure(r)) throw new Error(`tapio_bpf: unexpected ${what}: ${String(r.failure)}`)
  return r.success
}

const errnoNames: Readonly<Record<number, string>> = {
  1: 'EPERM',
  2: 'ENOENT',
  7: 'E2BIG',
  13: 'EACCES',
  22: 'EINVAL',
  95: 'EOPNOTSUPP',
}

/** Turns the addon's `{stage, errno}` error into a typed, actionable one. */
export function translateNativeError(e: unknown): Error {
  if (!(e instanceof Error)) return new Error(String(e))
  const fields = e as Error & { stage?: unknown; errno?: unknown; failed?: unknown }
  const errno = typeof fields.errno === 'number' ? fields.errno : 0
  const stage = typeof fields.stage === 'string' ? fields.stage : 'unknown'
  const details = { stage, errno, errnoName: errnoNames[errno] ?? String(errno), failed: fields.failed }
  if (errno === 1 || errno === 13) {
    return new BpfUnavailableError(
      'permission',
      `loading BPF programs was refused (${details.errnoName} at ${stage}); run as root or grant CAP_BPF, CAP_PERFMON and CAP_SYS_RESOURCE: ${e.message}`,
      details,
    )
  }
  return new BpfUnavailableError('load_failed', `BPF ${stage} failed (${details.errnoName}): ${e.message}`, details)
}

/** `native/build/Release/tapio_bpf.node` of this package (from src/ and dist/src/ alike). */
export function defaultAddonPath(): string {
  return defaultAddonFile('tapio_bpf')
}

const cache = new Map<string, Result.Result<BpfAddon, BpfUnavailableError>>()

/** Loads the addon once per path; never throws. */
export function loadBpfAddon(path: string = process.env.TAPIO_BPF_ADDON ?? defaultAddonPath()): Result.Result<BpfAddon, BpfUnavailableError> {
  const hit = cache.get(path)
  if (hit) return hit
  const result = loadUncached(path)
  cache.set(path, result)
  return result
}

function loadUncached(path: string): Result.Result<BpfAddon, BpfUnavailableError> {
  if (!existsSync(path)) {
    return Result.fail(
      new BpfUnavailableError('addon_missing', `native addon not built (${path} missing); ${rebuildHint('tapio_bpf')}`, { path }),
    )
  }
  let mod: unknown
  try {
    mod = createRequire(import.meta.url)(path)
  } catch (e) {
    const msg = e instanceof Error ? e.message : String(e)
    return Result.fail(
      new BpfUnavailableError('addon_incompatible', `native addon failed to load (${msg}); ${rebuildHint('tapio_bpf')}`, {
        path,
      }),
    )
  }
  const m = mod as Partial<RawAddon>
  if (
    typeof m.Session !== 'function' ||
    typeof m.clockOffset !== 'function' ||
    typeof m.mountTracefs !== 'function' ||
    m.abiVersion !== ADDON_ABI_VERSION
  ) {
    return Result.fail(
      new BpfUnavailableError(
        'addon_incompatible',
        `native addon at ${path} has an unexpected interface (abi ${String(m.abiVersion)}, want ${ADDON_ABI_VERSION}); ${rebuildHint('tapio_bpf')}`,
        { path },
      ),
    )
  }
  return Result.succeed(new BpfAddon(m as RawAddon, path))
}
