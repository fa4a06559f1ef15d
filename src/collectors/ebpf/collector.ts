/**
 * The ebpf collector: tracepoint programs -> one ring buffer -> a native consumer thread ->
 * batches -> TapioEvent arrays. Memory is bounded end to end: the native side fills at most
 * `maxBatchesInFlight` batches the consumer has not taken yet, then stops reading, and the ring's
 * overflow is counted in the kernel. generated = delivered + droppedKernel + droppedUser (+ what is
 * still pending in the ring or the queue while running; nothing after stop).
 */
import * as Result from 'effect/Result'
import { type Collector, type CollectorHealth, type CollectorOutput, CollectorStateError } from '../../core/collector.js'
import type { EventInput } from '../../events/event.js'
import { HandoffQueue } from '../../core/handoff-queue.js'
import { addStatistics, EMPTY_SOURCE_STATISTICS, retire, type SourceStatistics } from '../../core/statistics.js'
import {
  type BpfAddon,
  type BpfProgramName,
  BpfSession,
  BpfUnavailableError,
  type NativeCounters,
  type OpenResult,
} from '../../native/bpf-addon.js'
import { BATCH_HEADER, BootClock, FRAME_HEADER, KIND_NAMES, RECORD_SIZE, RecordKind } from '../../native/bpf-records.js'
import { CgroupResolver } from './cgroup.js'
import { type EbpfConfig, parseEbpfConfigOrThrow } from './config.js'
import { BatchDecoder, CgroupIdsOnly } from './decode.js'
import { KernelBatch } from './kernel-batch.js'
import { DEFERRED_OUTPUT, type DeferredOutput } from '../../stream/deferred-batch.js'
import { preflight } from './detect.js'
import { delay } from '../../core/delay.js'
import { type Clock, systemClock } from '../../core/clock.js'

const STOP_TIMEOUT_MS = 5_000
const CLOCK_REANCHOR_MS = 60_000

interface LossSample {
  readonly at: number
  readonly generated: number
  readonly lost: number
}

/** Everything that belongs to one start. */
class Run {
  /**
   * Not bounded by the queue itself: the native side hands over at most `maxBatchesInFlight`
   * batches the queue has not released yet, then leaves events in the ring (counted by the kernel),
   * so at most `decodedEventsBound(config)` events wait here.
   */
  readonly queue: HandoffQueue<KernelBatch>
  closed = false
  finalNative: NativeCounters | undefined
  endResolve: () => void = () => {}
  readonly ended$: Promise<void>
  stopping: Promise<void> | undefined
  readonly samples: LossSample[] = []
  clockAnchoredAt: number

  constructor(
    readonly addon: BpfAddon,
    readonly session: BpfSession,
    readonly decoder: BatchDecoder,
    readonly opened: OpenResult,
    readonly startedAt: number,
  ) {
    this.clockAnchoredAt = startedAt
    this.queue = new HandoffQueue<KernelBatch>({ capacity: Number.POSITIVE_INFINITY, overflow: 'newest', onRelease: (n) => session.release(n) })
    // The kernel counters of a new session start at zero.
    this.samples.push({ at: startedAt, generated: 0, lost: 0 })
    this.ended$ = new Promise((resolve) => {
      this.endResolve = resolve
    })
  }

  native(): NativeCounters {
    return this.finalNative ?? this.session.counters()
  }
}

const SMALLEST_FRAME = FRAME_HEADER + Math.min(...RECORD_SIZE.filter((n) => n > 0))

/**
 * The most decoded events that can wait in the collector's hand-off queue: the native side hands
 * over at most `maxBatchesInFlight` batches not yet taken, each holding at most this many records.
 * This is the collector's share of the agent's live heap under backpressure.
 */
export function decodedEventsBound(config: Pick<EbpfConfig, 'batchBytes' | 'maxBatchesInFlight'>): number {
  return config.maxBatchesInFlight * Math.floor((config.batchBytes - BATCH_HEADER) / SMALLEST_FRAME)
}

export interface EbpfTotals {
  generated: number
  delivered: number
  droppedKernel: number
  droppedUser: number
  pending: number
}

export interface EbpfCollectorOptions {
  /**
   * Times the loss window and its once-a-second sampling, the cgroup walks' rate limit, the
   * boot-clock re-anchoring interval and the stop bound (tests drive a ManualClock). Event timestamps stay the kernel's, converted to
   * wall-clock time. Default: the system clock.
   */
  readonly clock?: Clock
}

export class EbpfCollector implements Collector {
  readonly config: EbpfConfig
  private readonly clock: Clock
  private run: Run | undefined
  private last: Run | undefined
  /** Statistics of this instance's earlier runs, so counters never go down across its starts. */
  private retired: SourceStatistics = EMPTY_SOURCE_STATISTICS
  private failure: BpfUnavailableError | undefined

  constructor(config: unknown = {}, options: EbpfCollectorOptions = {}) {
    this.config = parseEbpfConfigOrThrow(config)
    this.clock = options.clock ?? systemClock
  }

  async start(signal: AbortSignal): Promise<void> {
    if (this.run) throw new CollectorStateError('ebpf collector: already started')
    signal.throwIfAborted()
    this.failure = undefined
    const pre = preflight(this.config)
    if (Result.isFailure(pre)) {
      this.failure = pre.failure
      throw pre.failure
    }
    const addon = pre.success
    const c = this.config
    const programs: BpfProgramName[] = (['exec', 'exit', 'tcp', 'oom', 'openat'] as const).filter((p) => c.programs[p])
    if (c.probePid !== undefined) programs.push('probe')
    if (c.resolveContainers) programs.push('cgroup')
    const session = BpfSession.create(addon, {
      ringBytes: c.ringBufferBytes,
      wakeupBytes: Math.max(1, Math.floor(c.ringBufferBytes * c.wakeupFraction)),
      drainIntervalMs: c.drainIntervalMs,
      batchBytes: c.batchBytes,
      maxBatchesInFlight: c.maxBatchesInFlight,
      programs,
      openPrefixes: c.openatPrefixes,
      probePid: c.probePid ?? 0,
    })
    let opened: OpenResult
    try {
      opened = session.open()
    } catch (e) {
      session.close()
      this.failure = e instanceof BpfUnavailableError ? e : new BpfUnavailableError('load_failed', String(e))
      throw this.failure
    }
    if (opened.attached.every((p) => p === 'cgroup')) {
      session.close()
      const why = opened.failed.map((f) => `${f.program}: ${f.message.split('\n')[0]}`).join('; ')
      this.failure = new BpfUnavailableError('no_program_attached', `no BPF program attached (${why || 'none enabled'})`, {
        failed: opened.failed,
      })
      throw this.failure
    }
    if (signal.aborted) {
      session.close()
      signal.throwIfAborted()
    }
    const clock = new BootClock(addon.clockOffset())
    const decoder = new BatchDecoder(clock, c.resolveContainers ? new CgroupResolver({ now: () => this.clock.now() }) : new CgroupIdsOnly())
    const run = new Run(addon, session, decoder, opened, this.clock.now())
    session.start((batch, err) => this.onBatch(run, batch, err))
    if (this.last) this.retired = retire(this.retired, this.runStatistics(this.last))
    this.run = run
    this.last = run
  }

  private onBatch(run: Run, batch: Buffer | null, err: number): void {
    if (batch === null) {
      if (err !== 0 && !run.stopping) {
        run.queue.fail(new Error(`ebpf: the ring buffer consumer failed (errno ${err}); the collector must be restarted`))
      }
      run.endResolve()
      return
    }
    const now = this.clock.now()
    if (now - run.clockAnchoredAt > CLOCK_REANCHOR_MS) {
      run.clockAnchoredAt = now
      run.decoder.setClock(new BootClock(run.addon.clockOffset()))
    }
    // Checked, cgroups looked up and kept as records: objects or NDJSON are made only when asked.
    const events = new KernelBatch(run.decoder.scan(batch))
    // The queue hands the native batch back when it is taken or dropped (late batches after a
    // stop that timed out are counted `discarded`).
    if (events.length === 0) run.session.release(1)
    else run.queue.push(events)
    this.sampleLoss(run, false)
  }

  /**
   * Arrays of events, like every collector; the manager's pump reads the same batches undecoded
   * (`DEFERRED_OUTPUT`), so an agent writing NDJSON never makes an object per kernel record.
   */
  events(): AsyncIterable<CollectorOutput> {
    const run = this.run
    if (!run) throw new CollectorStateError('ebpf collector: events() before a successful start()')
    return new KernelOutput(run.queue)
  }

  async stop(): Promise<void> {
    const run = this.run
    if (!run) return
    run.stopping ??= this.finish(run)
    await run.stopping
    if (this.run === run) this.run = undefined
  }

  private async finish(run: Run): Promise<void> {
    run.session.stop()
    const drained = new AbortController()
    await Promise.race([run.ended$, delay(STOP_TIMEOUT_MS, drained.signal, this.clock)])
    drained.abort()
    run.finalNative = run.session.close()
    run.closed = true
    run.queue.end()
  }

  /** Exact totals of the current (or last) run. */
  totals(): EbpfTotals {
    const run = this.run ?? this.last
    if (!run) return { generated: 0, delivered: 0, droppedKernel: 0, droppedUser: 0, pending: 0 }
    return totalsOf(run, run.native())
  }

  health(): CollectorHealth {
    if (this.failure) {
      return { status: 'permanent_error', message: this.failure.message, details: { reason: this.failure.reason } }
    }
    const run = this.run
    if (!run) return { status: 'ok', message: 'not running' }
    if (run.queue.failedWith) return { status: 'fatal_error', message: run.queue.failedWith.message }
    const t = this.sampleLoss(run, true)
    const details = {
      attached: run.opened.attached,
      failed: run.opened.failed.map((f) => ({ program: f.program, errno: f.errno, message: f.message.split('\n')[0] })),
      ...t.totals,
      lossRatio: t.ratio,
      lossWindowMs: this.config.loss.windowMs,
    }
    if (t.ratio > this.config.loss.threshold) {
      return {
        status: 'recoverable_error',
        message: `lost ${t.lost} of ${t.generated} kernel events (${(t.ratio * 100).toFixed(2)}%) in the last ${Math.round(this.config.loss.windowMs / 1000)}s; raise ringBufferBytes or reduce enabled programs`,
        details,
      }
    }
    const partial = run.opened.failed.length > 0
    return {
      status: 'ok',
      ...(partial ? { message: `running without ${run.opened.failed.map((f) => describeProgram(f.program)).join(', ')}` } : {}),
      details,
    }
  }

  statistics(): SourceStatistics {
    const run = this.last
    if (!run) return this.retired
    return addStatistics(this.retired, this.runStatistics(run))
  }

  /** One run's figures: kernel ring drops, malformed records and discarded batches by reason. */
  private runStatistics(run: Run): SourceStatistics {
    const n = run.native()
    const t = totalsOf(run, n)
    const d = run.decoder.counters
    const q = run.queue.counters()
    const counters: Record<string, number> = {
      delivered: t.delivered,
      malformedNative: n.malformed,
      malformedUnknownKind: d.unknownKind,
      malformedBadSize: d.badSize,
      malformedTruncated: d.truncated,
      malformedBadBatch: d.badBatches,
      batches: n.batches,
      consumerStalls: n.stalls,
    }
    counters.cgroupsAnnounced = n.attempted[RecordKind.cgroup] ?? 0
    counters.cgroupsDroppedKernel = n.droppedKernel[RecordKind.cgroup] ?? 0
    counters.cgroupsUnusable = d.cgroupsUnusable
    for (let k = 1; k < KIND_NAMES.length; k++) {
      const name = KIND_NAMES[k]
      if (name === undefined || k === RecordKind.cgroup) continue
      counters[`generated.${name}`] = n.attempted[k] ?? 0
      counters[`droppedKernel.${name}`] = n.droppedKernel[k] ?? 0
    }
    return {
      produced: t.generated,
      dropped: {
        kernel_ring_full: t.droppedKernel,
        malformed: n.malformed + d.malformed,
        discarded: q.dropped.discarded,
      },
      // In the kernel ring, the native batches or the hand-off queue.
      queued: t.pending,
      counters,
      gauges: { queuedInCollector: q.queued, programsAttached: run.opened.attached.length, programsFailed: run.opened.failed.length },
    }
  }

  /** Loss over the configured window; samples at most once a second (a counters read is a syscall). */
  private sampleLoss(run: Run, force: boolean): { ratio: number; lost: number; generated: number; totals: EbpfTotals } {
    const now = this.clock.now()
    const lastSample = run.samples[run.samples.length - 1]
    if (!force && lastSample !== undefined && now - lastSample.at < 1000) {
      return { ratio: 0, lost: 0, generated: 0, totals: emptyTotals }
    }
    const totals = totalsOf(run, run.native())
    const sample = { at: now, generated: totals.generated, lost: totals.droppedKernel + totals.droppedUser }
    if (lastSample === undefined || now - lastSample.at >= 1000) run.samples.push(sample)
    const horizon = now - this.config.loss.windowMs
    while (run.samples.length > 2 && (run.samples[1]?.at ?? now) <= horizon) run.samples.shift()
    const base = run.samples[0] ?? { at: run.startedAt, generated: 0, lost: 0 }
    const generated = sample.generated - base.generated
    const lost = sample.lost - base.lost
    return { ratio: generated > 0 ? lost / generated : 0, lost, generated, totals }
  }
}

/** The run's queue as `events()` gives it: objects to any reader, kernel batches to the pump. */
class KernelOutput implements AsyncIterable<CollectorOutput>, DeferredOutput {
  constructor(private readonly queue: HandoffQueue<KernelBatch>) {}

  [DEFERRED_OUTPUT](): AsyncIterable<KernelBatch> {
    return this.queue
  }

  [Symbol.asyncIterator](): AsyncIterator<CollectorOutput> {
    const it = this.queue[Symbol.asyncIterator]()
    return {
      next: async () => {
        const r = await it.next()
        return r.done === true ? r : { done: false, value: r.value.events() as readonly EventInput[] }
      },
      return: async () => {
        await it.return?.()
        return { done: true, value: undefined }
      },
    }
  }
}

function describeProgram(program: string): string {
  return program === 'cgroup'
    ? 'cgroup (new cgroups are found by /proc and walks only: processes that exit at once may lack container identity)'
    : program
}

const emptyTotals: EbpfTotals = { generated: 0, delivered: 0, droppedKernel: 0, droppedUser: 0, pending: 0 }

function totalsOf(run: Run, n: NativeCounters): EbpfTotals {
  // cgroup announcements are not events: they feed the resolver and are counted on their own.
  const generated = sum(n.attempted) - (n.attempted[RecordKind.cgroup] ?? 0)
  const droppedKernel = sum(n.droppedKernel) - (n.droppedKernel[RecordKind.cgroup] ?? 0)
  const q = run.queue.counters()
  const droppedUser = n.malformed + run.decoder.counters.malformed + q.dropped.discarded
  return {
    generated,
    delivered: q.taken,
    droppedKernel,
    droppedUser,
    pending: generated - q.taken - droppedKernel - droppedUser,
  }
}

function sum(a: readonly number[]): number {
  let s = 0
  for (const v of a) s += v
  return s
}
