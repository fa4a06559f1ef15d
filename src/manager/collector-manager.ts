import type * as Stream from 'effect/Stream'
import type { InspectionEvent } from 'xstate'
import { type Clock, systemClock } from '../core/clock.js'
import type { Collector, CollectorFactory, CollectorHealth } from '../core/collector.js'
import { isCollector } from '../core/collector.js'
import { aggregateStatus, type ComponentStatus } from '../core/status.js'
import type { SourceStatistics } from '../core/statistics.js'
import type { TapioEvent } from '../events/event.js'
import { batchesOf, encodedBatchesOf, eventsOf, streamOf } from '../stream/consumers.js'
import type { Batch } from '../stream/deferred-batch.js'
import { type DropCounts, emptyDropCounts, sumDrops } from '../stream/counters.js'
import { MergeBuffer, type MergeBufferOptions, type OverflowPolicy, type SampleOptions } from '../stream/merge-buffer.js'
import { type PolicyOverrides, type RestartBudget, type RestartPolicy, resolvePolicy } from '../supervisor/policy.js'
import { RESTART_STRATEGIES, type RestartStrategy } from '../supervisor/strategy.js'
import type { LifecycleListener } from '../supervisor/lifecycle-events.js'
import { type SettleOutcome, Supervisor } from '../supervisor/supervisor.js'
import type { LifecycleState } from '../../machines/collector-lifecycle.js'

export interface CollectorManagerOptions {
  /** Events the merged buffer holds (default 10,000, as in the original design). */
  readonly bufferCapacity?: number
  /** What happens when the buffer is full (default `block`: backpressure to collectors). */
  readonly overflow?: OverflowPolicy
  readonly sampling?: Partial<SampleOptions>
  /** Largest batch handed to a consumer (default 4096). */
  readonly maxBatch?: number
  readonly strategy?: RestartStrategy
  /** Default restart policy for collectors added without one. */
  readonly defaultPolicy?: PolicyOverrides
  /** Passed to XState's `createActor(..., { inspect })`: observes every actor. */
  readonly inspect?: (event: InspectionEvent) => void
  /** Default bound of `stop()` (ms). */
  readonly stopTimeoutMs?: number
  readonly healthCheckIntervalMs?: number
  /**
   * The clock of every timer and timestamp: actors (start/stop timeouts, backoff delays), policy
   * windows, health checks, the stop bound, the buffer's `lastEventAt`. Default: the system clock;
   * tests pass a `ManualClock` and move time themselves.
   */
  readonly clock?: Clock
  readonly random?: () => number
  /** Internal errors that would otherwise be lost (they never throw into the host process). */
  readonly onError?: (error: unknown) => void
}

export interface StopOptions {
  /** Upper bound for stopping collectors and draining the buffer (default: manager's stopTimeoutMs). */
  readonly timeoutMs?: number
}

export interface StopSummary {
  readonly drained: boolean
  /** Events that were still queued when the timeout ended the drain (counted `shutdown`). */
  readonly abandoned: number
  readonly durationMs: number
}

export interface CollectorStatistics {
  readonly state: LifecycleState
  readonly status: ComponentStatus
  readonly accepted: number
  readonly delivered: number
  readonly dropped: Readonly<DropCounts>
  readonly droppedTotal: number
  readonly queued: number
  /** Restarts of this collector (automatic and manual): the same number health(), /metrics and the inspector show. */
  readonly restarts: number
  /** Of `restarts`, those asked for with `restartCollector`. */
  readonly manualRestarts: number
  readonly lastEventAt: string | null
  /**
   * What the collector itself counted (its `statistics()`), added up over every instance of this
   * registration: `source.produced = delivered + source dropped + dropped + source.queued + queued`
   * once nothing is in flight between the two (docs/collectors/contract.md).
   */
  readonly source?: SourceStatistics
}

export interface ManagerStatistics {
  readonly activeCollectors: number
  /** Events accepted from collectors (the original design's TotalEvents). */
  readonly totalEvents: number
  readonly deliveredEvents: number
  readonly droppedEvents: Readonly<DropCounts> & { readonly total: number }
  readonly restarts: number
  readonly buffer: {
    readonly size: number
    readonly queued: number
    readonly capacity: number
    readonly policy: OverflowPolicy
    readonly subscriptions: number
    readonly pendingOffers: number
  }
  readonly collectors: Readonly<Record<string, CollectorStatistics>>
}

export interface CollectorHealthReport {
  readonly status: ComponentStatus
  readonly state: string
  readonly lastError: string | null
  readonly lastEventAt: string | null
  readonly restarts: number
  readonly manualRestarts: number
  /** Automatic restarts the restart policy still allows within its window. */
  readonly restartBudget: RestartBudget
  readonly message?: string
  readonly details?: CollectorHealth['details']
}

export interface HealthReport {
  readonly status: ComponentStatus
  readonly supervisor: string
  readonly collectors: Readonly<Record<string, CollectorHealthReport>>
}

/** start() could not bring every collector up; the ones that did start keep running. */
export class CollectorStartError extends Error {
  override readonly name = 'CollectorStartError'
  constructor(readonly failures: Readonly<Record<string, string>>) {
    super(
      `collectors failed to start: ${Object.entries(failures)
        .map(([n, why]) => `${n} (${why})`)
        .join('; ')}`,
    )
  }
}

export class ManagerStateError extends Error {
  override readonly name = 'ManagerStateError'
}

type Phase = 'new' | 'starting' | 'running' | 'stopping' | 'stopped'

const NAME_RE = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$/

/**
 * Runs collectors as supervised actors and merges their events into one bounded stream.
 *
 *   const mgr = new CollectorManager()
 *   mgr.addCollector('k8s', k8sCollector)
 *   await mgr.start()
 *   for await (const event of mgr.events()) process(event)
 */
export class CollectorManager {
  private readonly buffer: MergeBuffer
  private readonly supervisor: Supervisor
  private readonly defaultPolicy: RestartPolicy
  private readonly stopTimeoutMs: number
  private readonly inspectors = new Set<(event: InspectionEvent) => void>()
  private phase: Phase = 'new'
  private stopping: Promise<StopSummary> | undefined
  private escalation: string | null = null
  private readonly onError: (error: unknown) => void
  private readonly clock: Clock

  constructor(options: CollectorManagerOptions = {}) {
    this.clock = options.clock ?? systemClock
    const bufferOptions: Partial<MergeBufferOptions> = {
      ...(options.bufferCapacity !== undefined ? { capacity: options.bufferCapacity } : {}),
      ...(options.overflow !== undefined ? { policy: options.overflow } : {}),
      ...(options.maxBatch !== undefined ? { maxBatch: options.maxBatch } : {}),
      ...(options.sampling ? { sample: { highWaterMark: 0.8, keepOneIn: 10, ...options.sampling } } : {}),
    }
    this.buffer = new MergeBuffer(bufferOptions, this.clock)
    managerBuffers.set(this, this.buffer)
    const strategy = options.strategy ?? 'one_for_one'
    if (!RESTART_STRATEGIES.includes(strategy))
      throw new RangeError(`strategy: expected one of ${RESTART_STRATEGIES.join(', ')}, got ${String(strategy)}`)
    this.defaultPolicy = resolvePolicy(options.defaultPolicy)
    this.stopTimeoutMs = options.stopTimeoutMs ?? 10_000
    this.onError = options.onError ?? (() => {})
    if (options.inspect) this.inspectors.add(options.inspect)
    this.supervisor = new Supervisor({
      buffer: this.buffer,
      strategy,
      inspect: (e) => {
        for (const i of this.inspectors) {
          try {
            i(e)
          } catch (err) {
            this.onError(err)
          }
        }
      },
      healthCheckIntervalMs: options.healthCheckIntervalMs ?? 1000,
      clock: this.clock,
      ...(options.random ? { random: options.random } : {}),
      onEscalate: (reason) => {
        this.escalation = reason
        void this.stop().catch(this.onError)
      },
      onInternalError: this.onError,
    })
  }

  // ---- registration --------------------------------------------------------------------

  /**
   * Register a collector (or a factory that makes a fresh one for every start). Allowed while
   * running: the collector starts at once. Duplicate names are an error.
   */
  addCollector(name: string, collector: Collector | CollectorFactory, policy?: PolicyOverrides): void {
    if (!NAME_RE.test(name))
      throw new TypeError(`collector name "${name}": expected 1-63 letters, digits, '.', '_' or '-', starting with a letter or digit`)
    if (!isCollector(collector) && typeof collector !== 'function')
      throw new TypeError(`collector "${name}": expected an object with start, stop and events methods, or a factory function`)
    if (this.phase === 'stopping' || this.phase === 'stopped')
      throw new ManagerStateError(`cannot add collector "${name}": the manager is ${this.phase}`)
    if (this.supervisor.has(name)) throw new ManagerStateError(`collector "${name}" is already registered`)
    const resolved = resolvePolicy(policy, this.defaultPolicy)
    this.supervisor.register(name, collector, resolved)
    if (this.phase === 'running' || this.phase === 'starting') void this.supervisor.startOne(name)
  }

  /** Stop and unregister a collector. Events it already handed over are still delivered. */
  async removeCollector(name: string): Promise<void> {
    if (!this.supervisor.has(name)) throw new ManagerStateError(`collector "${name}" is not registered`)
    await this.supervisor.unregister(name)
  }

  /** Restart one collector (also one that was given up on); resolves when it runs again. */
  async restartCollector(name: string): Promise<void> {
    if (!this.supervisor.has(name)) throw new ManagerStateError(`collector "${name}" is not registered`)
    if (this.phase !== 'running' && this.phase !== 'starting')
      throw new ManagerStateError(`cannot restart collector "${name}": the manager is ${this.phase}`)
    const outcome = await this.supervisor.restartOne(name)
    if (outcome.kind !== 'running') throw new CollectorStartError({ [name]: describeOutcome(outcome) })
  }

  /**
   * Stop one collector but keep it registered (state `stopped`); `restartCollector` starts it
   * again. Its queued events are still delivered.
   */
  async stopCollector(name: string): Promise<void> {
    if (!this.supervisor.has(name)) throw new ManagerStateError(`collector "${name}" is not registered`)
    await this.supervisor.stopOne(name, 'operator')
  }

  collectorNames(): string[] {
    return this.supervisor.names()
  }

  // ---- lifecycle -----------------------------------------------------------------------

  /**
   * Start every collector in registration order. Resolves when all run; rejects with a
   * CollectorStartError naming each collector that could not start (after its policy's
   * `startAttempts`) while the others keep running: call stop() or carry on degraded.
   * Aborting `signal` stops the manager.
   */
  async start(signal?: AbortSignal): Promise<void> {
    if (this.phase !== 'new') throw new ManagerStateError(`start() called twice (the manager is ${this.phase})`)
    this.phase = 'starting'
    if (signal) {
      if (signal.aborted) {
        await this.stop()
        throw new ManagerStateError('start aborted: the signal was already aborted')
      }
      signal.addEventListener('abort', () => void this.stop().catch(this.onError), { once: true })
    }
    this.supervisor.beginStart()
    const failures: Record<string, string> = {}
    for (const name of this.supervisor.names()) {
      if ((this.phase as Phase) !== 'starting') break
      const outcome = await this.supervisor.startOne(name)
      if (outcome.kind !== 'running') failures[name] = describeOutcome(outcome)
    }
    if ((this.phase as Phase) !== 'starting') {
      throw new ManagerStateError(`start interrupted: the manager is ${this.phase}${this.escalation ? ` (${this.escalation})` : ''}`)
    }
    this.phase = 'running'
    this.supervisor.finishStart()
    if (Object.keys(failures).length > 0) throw new CollectorStartError(failures)
  }

  /**
   * Graceful stop: collectors stop in reverse registration order, the buffer drains to the
   * consumers, every timer is released, then `events()` completes. Bounded by `timeoutMs`;
   * whatever is still queued then is counted dropped (`shutdown`). Safe to call twice.
   * With no consumer subscribed, queued events stay readable by a later `events()` call.
   */
  stop(options: StopOptions = {}): Promise<StopSummary> {
    if (this.stopping) return this.stopping
    this.stopping = this.doStop(options.timeoutMs ?? this.stopTimeoutMs)
    return this.stopping
  }

  private async doStop(timeoutMs: number): Promise<StopSummary> {
    const t0 = this.clock.now()
    this.phase = 'stopping'
    this.supervisor.beginStop()
    let timer: unknown
    const timeout = new Promise<'timeout'>((resolve) => {
      timer = this.clock.setTimeout(() => resolve('timeout'), Math.max(0, timeoutMs))
    })
    try {
      const stopAll = (async () => {
        for (const name of this.supervisor.names().reverse()) await this.supervisor.stopOne(name, 'shutdown')
      })()
      await Promise.race([stopAll, timeout])
      this.buffer.close()
      let drained = this.buffer.drained() || this.buffer.stats().subscriptions === 0
      if (!drained) {
        const drain = this.buffer.whenDrainedOrUnread().then(() => 'drained' as const)
        drained = (await Promise.race([drain, timeout])) === 'drained'
      }
      const abandoned = drained ? 0 : this.buffer.abandon()
      return { drained: abandoned === 0, abandoned, durationMs: this.clock.now() - t0 }
    } finally {
      if (timer !== undefined) this.clock.clearTimeout(timer)
      this.supervisor.finishStop()
      this.phase = 'stopped'
    }
  }

  // ---- data plane ----------------------------------------------------------------------

  /**
   * The merged events. Each call is its own subscription receiving every event delivered
   * after it subscribed; events accepted before the first subscription wait in the buffer
   * and go to it. Completes once stop() has drained the buffer.
   */
  events(): AsyncIterableIterator<TapioEvent> {
    return eventsOf(this.buffer)
  }

  /** The merged events in batches, for high-rate consumers. */
  batches(): AsyncIterableIterator<readonly TapioEvent[]> {
    return batchesOf(this.buffer)
  }

  /** The merged events as an Effect Stream (a subscription per run). */
  get stream(): Stream.Stream<TapioEvent> {
    return streamOf(this.buffer)
  }

  // ---- observation ---------------------------------------------------------------------

  statistics(): ManagerStatistics {
    const totals = this.buffer.stats()
    const collectors: Record<string, CollectorStatistics> = {}
    let active = 0
    let restarts = 0
    for (const v of this.supervisor.views()) {
      const c = this.buffer.sourceCounters(v.name)
      if (v.state === 'running') active += 1
      restarts += v.restarts
      const dropped = c?.dropped ?? emptyDropCounts()
      collectors[v.name] = {
        state: v.state,
        status: v.status,
        accepted: c?.accepted ?? 0,
        delivered: c?.delivered ?? 0,
        dropped,
        droppedTotal: sumDrops(dropped),
        queued: c?.buffered ?? 0,
        restarts: v.restarts,
        manualRestarts: v.manualRestarts,
        lastEventAt: c?.lastEventAt ? new Date(c.lastEventAt).toISOString() : null,
        ...(v.statistics ? { source: v.statistics } : {}),
      }
    }
    return {
      activeCollectors: active,
      totalEvents: totals.accepted,
      deliveredEvents: totals.delivered,
      droppedEvents: { ...totals.dropped, total: sumDrops(totals.dropped) },
      restarts,
      buffer: {
        size: totals.size,
        queued: totals.queued,
        capacity: totals.capacity,
        policy: totals.policy,
        subscriptions: totals.subscriptions,
        pendingOffers: totals.pendingOffers,
      },
      collectors,
    }
  }

  health(): HealthReport {
    this.supervisor.checkHealth()
    const collectors: Record<string, CollectorHealthReport> = {}
    for (const v of this.supervisor.views()) {
      const c = this.buffer.sourceCounters(v.name)
      collectors[v.name] = {
        status: v.status,
        state: v.stateValue,
        lastError: v.lastError,
        lastEventAt: c?.lastEventAt ? new Date(c.lastEventAt).toISOString() : null,
        restarts: v.restarts,
        manualRestarts: v.manualRestarts,
        restartBudget: v.restartBudget,
        ...(v.health?.message ? { message: v.health.message } : {}),
        ...(v.health?.details ? { details: v.health.details } : {}),
      }
    }
    const statuses = Object.values(collectors).map((c) => c.status)
    let status: ComponentStatus
    if (this.phase === 'stopped') status = 'stopped'
    else if (this.phase === 'stopping') status = 'stopping'
    else if (this.escalation) status = 'fatal_error'
    else if (this.phase === 'new' || this.phase === 'starting') status = aggregateStatus(['starting', ...statuses])
    else status = aggregateStatus(statuses)
    return { status, supervisor: this.supervisor.phase(), collectors }
  }

  /** Every actor's current state as data: the supervisor, then each collector. */
  actors(): { id: string; state: string; context: Record<string, unknown> }[] {
    return this.supervisor.actorSnapshots()
  }

  /**
   * Lifecycle events of every collector: `failed`, `restart-scheduled` (delay, attempt of
   * maxRestarts, the group a strategy restarts), `manual-restart`, `recovered`, `gave-up`,
   * `escalated`, `stopped` (by operator, removal, shutdown or policy). Returns an unsubscribe
   * function. Listeners run synchronously; what they throw goes to `onError`.
   */
  on(event: 'lifecycle', listener: LifecycleListener): () => void {
    if (event !== 'lifecycle') throw new TypeError(`on(): unknown event "${String(event)}", expected "lifecycle"`)
    return this.supervisor.onLifecycle(listener)
  }

  /** Observe XState inspection events of every actor (in addition to the `inspect` option). */
  addInspector(observer: (event: InspectionEvent) => void): () => void {
    this.inspectors.add(observer)
    return () => this.inspectors.delete(observer)
  }

  /** Why the supervisor escalated (restart intensity exceeded under `onExceeded: 'escalate'`). */
  get escalated(): string | null {
    return this.escalation
  }

  get state(): Phase {
    return this.phase
  }
}

function describeOutcome(o: SettleOutcome): string {
  switch (o.kind) {
    case 'running':
      return 'running'
    case 'failed':
      return o.reason
    case 'gave-up':
      return `gave up: ${o.reason}`
    case 'stopped':
      return 'stopped before it could run'
  }
}

// The agent's NDJSON path reads the buffer's batches as they are; kept off the class so that the
// package's public API (issue: internals stay internal) has no such member.
const managerBuffers = new WeakMap<CollectorManager, MergeBuffer>()

/**
 * Like `batches()`, for a consumer that writes NDJSON (the agent): a collector's deferred batch
 * (the eBPF collector's kernel records) comes as it is; `NdjsonBatch.from(batch)` writes its
 * bytes without making an object per event, `eventsOf(batch)` gives the objects. Not exported
 * by any package entry point.
 */
export function encodedBatchesOfManager(manager: CollectorManager): AsyncIterableIterator<Batch> {
  const buffer = managerBuffers.get(manager)
  if (!buffer) throw new TypeError('encodedBatchesOfManager: not a CollectorManager')
  return encodedBatchesOf(buffer)
}
