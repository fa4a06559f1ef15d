import { type Actor, type ActorRefFrom, createActor, fromPromise, type InspectionEvent, type Observer, type SnapshotFrom, waitFor } from 'xstate'
import {
  type CollectorLifecycleEvent,
  type CollectorNotification,
  collectorLifecycleMachine,
  type InstanceRef,
  type LifecycleState,
} from '../../machines/collector-lifecycle.js'
import { supervisorMachine, type SupervisorState } from '../../machines/supervisor.js'
import { type Clock, systemClock } from '../core/clock.js'
import { type Collector, type CollectorFactory, type CollectorHealth, isCollector } from '../core/collector.js'
import { addStatistics, EMPTY_SOURCE_STATISTICS, isSourceStatistics, retire, type SourceStatistics } from '../core/statistics.js'
import { delay } from '../core/delay.js'
import type { ComponentStatus } from '../core/status.js'
import type { MergeBuffer } from '../stream/merge-buffer.js'
import { type Pump, startPump } from '../stream/pump.js'
import type { LifecycleEvent, LifecycleListener, StopCause } from './lifecycle-events.js'
import { decide, EMPTY_HISTORY, type FailureHistory, markRunning, type RestartBudget, type RestartPolicy, restartBudget } from './policy.js'
import { type RestartStrategy, restartGroup } from './strategy.js'

export interface SupervisorOptions {
  readonly buffer: MergeBuffer
  readonly strategy: RestartStrategy
  readonly inspect?: Observer<InspectionEvent> | ((event: InspectionEvent) => void)
  /** Every timer and timestamp of the supervisor and its actors (tests drive a ManualClock). */
  readonly clock?: Clock
  readonly random?: () => number
  /** How often collectors' self-reported health is read (fatal_error fails the collector). */
  readonly healthCheckIntervalMs: number
  readonly onEscalate?: (reason: string) => void
  /** Errors that no one else can handle (they must never crash the host process). */
  readonly onInternalError?: (error: unknown) => void
}

type CollectorActor = ActorRefFrom<typeof collectorLifecycleMachine>

/** Everything the runtime knows about one registered collector. */
interface Entry {
  readonly name: string
  readonly source: Collector | CollectorFactory
  readonly policy: RestartPolicy
  instance: Collector | undefined
  /** The latest instance, kept after it stopped so its final statistics stay readable. */
  lastInstance: Collector | undefined
  /** Final statistics of the instances before `lastInstance` (counters survive restarts). */
  retired: SourceStatistics
  instanceGeneration: number
  pump: Pump | undefined
  history: FailureHistory
  failedStarts: number
  /** Why the next STOPPED happens (for the `stopped` lifecycle event). */
  stopCause: StopCause | undefined
  /** When it went down (failure, suspension, manual restart): `recovered` reports the downtime. */
  downSince: number | undefined
  lastError: string | null
  lastHealth: CollectorHealth | undefined
  removing: boolean
  settleWaiters: ((outcome: SettleOutcome) => void)[]
}

export type SettleOutcome =
  | { readonly kind: 'running' }
  | { readonly kind: 'failed'; readonly reason: string }
  | { readonly kind: 'stopped' }
  | { readonly kind: 'gave-up'; readonly reason: string }

export interface CollectorRuntimeView {
  readonly name: string
  readonly state: LifecycleState
  readonly stateValue: string
  readonly status: ComponentStatus
  /** The lifecycle actor's count: automatic and manual restarts. */
  readonly restarts: number
  readonly manualRestarts: number
  readonly lastError: string | null
  readonly health: CollectorHealth | undefined
  readonly policy: RestartPolicy
  /** Automatic restarts the policy's intensity window still allows (supervisor-wide for `escalate`). */
  readonly restartBudget: RestartBudget
  /** The collector's own statistics, added up over every instance of this registration. */
  readonly statistics: SourceStatistics | undefined
}

function errorMessage(e: unknown): string {
  return e instanceof Error ? e.message : String(e)
}

/** Resolve when `p` settles or `signal` aborts, whichever is first. */
function untilAborted<T>(p: Promise<T>, signal: AbortSignal): Promise<T | undefined> {
  if (signal.aborted) return Promise.resolve(undefined)
  return new Promise<T | undefined>((resolve, reject) => {
    const onAbort = () => resolve(undefined)
    signal.addEventListener('abort', onAbort, { once: true })
    p.then(
      (v) => {
        signal.removeEventListener('abort', onAbort)
        resolve(v)
      },
      (e: unknown) => {
        signal.removeEventListener('abort', onAbort)
        reject(e)
      },
    )
  })
}

/** A collector's statistics, if it keeps them in the contract's shape (a throwing one has none). */
function readStatistics(inst: Collector | undefined): SourceStatistics | undefined {
  if (!inst?.statistics) return undefined
  try {
    const s: unknown = inst.statistics()
    return isSourceStatistics(s) ? s : undefined
  } catch {
    return undefined
  }
}
type CollectorSnapshot = SnapshotFrom<typeof collectorLifecycleMachine>

/** Out of the way for a group restart: released and waiting, or not running at all. */
const parked = (s: CollectorSnapshot) =>
  s.matches({ suspended: 'held' }) || s.matches('stopped') || s.matches('gaveUp') || s.matches('idle')

/**
 * A resumed collector has settled once it is no longer starting (running, failed, stopped...); a
 * failed one once it is released, where it reports its exit for the policy to decide on.
 */
const settled = (s: CollectorSnapshot) =>
  !s.matches('starting') && !s.matches({ suspended: 'held' }) && !s.matches({ failed: 'releasing' })

function topState(value: unknown): LifecycleState {
  if (typeof value === 'string') return value as LifecycleState
  return Object.keys(value as object)[0] as LifecycleState
}

function stateString(value: unknown): string {
  if (typeof value === 'string') return value
  const [k, v] = Object.entries(value as Record<string, unknown>)[0] as [string, unknown]
  return `${k}.${stateString(v)}`
}

/**
 * The supervision runtime: runs the supervisor machine (which spawns one lifecycle actor per
 * collector), supplies the machines' named actors (start/stop of real collector instances), runs
 * each instance's event pump, and applies restart policies to the exits the actors report.
 */
export class Supervisor {
  private readonly entries = new Map<string, Entry>()
  private readonly actor: Actor<typeof supervisorMachine>
  private readonly clock: Clock
  private readonly random: () => number
  private healthTimer: unknown
  private actorError: unknown
  private readonly listeners = new Set<LifecycleListener>()
  /** Times of every restart the supervisor granted: OTP's intensity for `escalate` policies. */
  private restartLog: number[] = []
  /** Group restarts (one_for_all / rest_for_one) run one after another, like OTP's supervisor loop. */
  private groupQueue: Promise<void> = Promise.resolve()
  /** Child notifications not handled yet (see onChildNotification), in arrival order. */
  private readonly notifications: CollectorNotification[] = []
  /** Aborted when the supervisor stops: ends group restarts and their delays. */
  private readonly lifetime = new AbortController()

  constructor(private readonly options: SupervisorOptions) {
    this.clock = options.clock ?? systemClock
    this.random = options.random ?? Math.random
    const collectorLogic = collectorLifecycleMachine.provide({
      actors: {
        startCollector: fromPromise<void, InstanceRef>(({ input, signal }) => this.startInstance(input, signal)),
        stopCollector: fromPromise<void, InstanceRef>(({ input, signal }) => this.stopInstance(input, signal)),
      },
    })
    const logic = supervisorMachine.provide({
      actors: { collector: collectorLogic },
      actions: {
        onChildNotification: (_, params: CollectorNotification) => {
          // Defer: actions must not send to actors while the machine is mid-transition. Group
          // restarts drain the queue before they command a member, so a decision on a member's
          // exit (give up, restart) is never overtaken by the next SUSPEND or RESUME.
          this.notifications.push(params)
          queueMicrotask(() => this.drainNotifications())
        },
      },
    })
    const inspect = options.inspect
    this.actor = createActor(logic, {
      id: 'supervisor',
      systemId: 'supervisor',
      clock: this.clock,
      ...(inspect ? { inspect } : {}),
    })
    // Without an error listener XState rethrows actor errors as uncaught exceptions of the host.
    this.actor.subscribe({
      error: (err) => {
        this.actorError = err
        this.options.onInternalError?.(err)
      },
    })
    this.actor.start()
  }

  // ---- registry ------------------------------------------------------------------------

  has(name: string): boolean {
    return this.entries.has(name)
  }

  names(): string[] {
    return [...this.actor.getSnapshot().context.order]
  }

  register(name: string, source: Collector | CollectorFactory, policy: RestartPolicy): void {
    if (this.entries.has(name)) throw new Error(`collector "${name}" is already registered`)
    this.entries.set(name, {
      name,
      source,
      policy,
      instance: undefined,
      lastInstance: undefined,
      retired: EMPTY_SOURCE_STATISTICS,
      instanceGeneration: 0,
      pump: undefined,
      history: EMPTY_HISTORY,
      failedStarts: 0,
      stopCause: undefined,
      downSince: undefined,
      lastError: null,
      lastHealth: undefined,
      removing: false,
      settleWaiters: [],
    })
    this.options.buffer.registerSource(name)
    this.actor.send({
      type: 'ADD',
      child: { name, startTimeoutMs: policy.startTimeoutMs, stopTimeoutMs: policy.stopTimeoutMs },
    })
  }

  /** Stop the collector (bounded by its stop timeout) and forget it; its queued events still flow. */
  async unregister(name: string): Promise<void> {
    const entry = this.entries.get(name)
    if (!entry) throw new Error(`collector "${name}" is not registered`)
    entry.removing = true
    await this.stopOne(name, 'removed')
    if (this.actor.getSnapshot().status === 'active') this.actor.send({ type: 'REMOVE', name })
    this.entries.delete(name)
    this.options.buffer.unregisterSource(name)
  }

  // ---- lifecycle commands --------------------------------------------------------------

  beginStart(): void {
    this.actor.send({ type: 'START' })
    this.ensureHealthTimer()
  }

  finishStart(): void {
    this.actor.send({ type: 'STARTED' })
  }

  phase(): SupervisorState {
    return topState(this.actor.getSnapshot().value) as unknown as SupervisorState
  }

  /** Start one collector and wait until it runs, gives up, or fails `startAttempts` times. */
  startOne(name: string): Promise<SettleOutcome> {
    const entry = this.mustGet(name)
    const state = this.childState(name)
    // Already up (an operator restarted it before start() reached it): START would be ignored and
    // no RUNNING would come to settle the wait.
    if (state === 'running') return Promise.resolve({ kind: 'running' })
    entry.failedStarts = 0
    const settled = this.waitSettle(entry)
    if (state === 'gaveUp') this.respawn(entry, false)
    this.command(name, { type: 'START' })
    return settled
  }

  /** Manual restart; also revives a collector that was given up on. */
  restartOne(name: string): Promise<SettleOutcome> {
    const entry = this.mustGet(name)
    entry.failedStarts = 0
    const settled = this.waitSettle(entry)
    const state = this.childState(name)
    if (state !== 'idle') {
      entry.downSince ??= this.clock.now()
      this.emit({ type: 'manual-restart', collector: name, at: this.clock.now() })
    }
    if (state === 'gaveUp') {
      this.respawn(entry, true)
      this.command(name, { type: 'START' })
    } else if (state === 'idle') {
      this.command(name, { type: 'START' })
    } else {
      this.command(name, { type: 'RESTART' })
    }
    return settled
  }

  /** Stop one collector; resolves when its actor reached stopped or gave up. */
  async stopOne(name: string, cause: StopCause = 'operator'): Promise<void> {
    const child = this.child(name)
    const entry = this.entries.get(name)
    if (!child || !entry) return
    const state = topState(child.getSnapshot().value)
    if (state === 'stopped' || state === 'gaveUp') return
    entry.stopCause = cause
    const done = waitFor(child, (s) => s.matches('stopped') || s.matches('gaveUp')).then(
      () => {},
      () => {},
    )
    this.command(name, { type: 'STOP' })
    await done
  }

  beginStop(): void {
    this.lifetime.abort()
    this.actor.send({ type: 'STOP' })
  }

  /** Release every timer and the actor system. */
  finishStop(): void {
    this.lifetime.abort()
    this.actor.send({ type: 'STOPPED' })
    if (this.healthTimer !== undefined) this.clock.clearTimeout(this.healthTimer)
    this.healthTimer = undefined
    this.actor.stop()
  }

  /** Observe lifecycle events (failures, restarts, recoveries, give-ups, escalation, stops). */
  onLifecycle(listener: LifecycleListener): () => void {
    this.listeners.add(listener)
    return () => this.listeners.delete(listener)
  }

  private emit(event: LifecycleEvent): void {
    for (const l of this.listeners) {
      try {
        l(event)
      } catch (e) {
        this.options.onInternalError?.(e)
      }
    }
  }

  // ---- views ---------------------------------------------------------------------------

  view(name: string): CollectorRuntimeView | undefined {
    const entry = this.entries.get(name)
    const child = this.child(name)
    if (!entry || !child) return undefined
    const snap = child.getSnapshot()
    const state = topState(snap.value)
    return {
      name,
      state,
      stateValue: stateString(snap.value),
      status: this.statusOf(entry, state),
      restarts: snap.context.restarts,
      manualRestarts: snap.context.manualRestarts,
      lastError: entry.lastError ?? snap.context.lastError,
      health: entry.lastHealth,
      policy: entry.policy,
      restartBudget: restartBudget(entry.policy, entry.policy.onExceeded === 'escalate' ? { ...entry.history, restartTimes: this.restartLog } : entry.history, this.clock.now()),
      statistics: this.sourceStatistics(entry),
    }
  }

  views(): CollectorRuntimeView[] {
    const out: CollectorRuntimeView[] = []
    for (const name of this.names()) {
      const v = this.view(name)
      if (v) out.push(v)
    }
    return out
  }

  /** Every actor's current state as data (the supervisor and each collector). */
  actorSnapshots(): { id: string; state: string; context: Record<string, unknown> }[] {
    const root = this.actor.getSnapshot()
    const out = [{ id: 'supervisor', state: stateString(root.value), context: { ...root.context } as Record<string, unknown> }]
    for (const name of root.context.order) {
      const child = this.child(name)
      if (!child) continue
      const s = child.getSnapshot()
      out.push({ id: `collector:${name}`, state: stateString(s.value), context: { ...s.context } })
    }
    return out
  }

  internalError(): unknown {
    return this.actorError
  }

  // ---- machine implementations ---------------------------------------------------------

  private async startInstance(ref: InstanceRef, signal: AbortSignal): Promise<void> {
    const entry = this.mustGet(ref.name)
    const instance = this.instanceFor(entry)
    entry.instance = instance
    entry.instanceGeneration = ref.generation
    entry.lastHealth = undefined
    // A new instance: stability is measured from when it reaches running, not an earlier one.
    if (entry.history.runningSince !== undefined) entry.history = { restartTimes: entry.history.restartTimes, consecutive: entry.history.consecutive }
    const starting = Promise.resolve().then(() => instance.start(signal))
    try {
      await untilAborted(starting, signal)
    } catch (e) {
      throw new Error(errorMessage(e))
    }
    if (signal.aborted) {
      // Timed out or stopped while starting. A start that ignores its signal may still acquire
      // things: once it is done, release them (a start that honours the signal rejects: nothing to do).
      starting.then(() => instance.stop()).catch(() => {})
      throw new Error('start aborted')
    }
    const pump = startPump(this.options.buffer, entry.name, instance.events())
    entry.pump = pump
    void pump.done.then((exit) => {
      if (entry.pump !== pump || exit.kind === 'interrupted') return
      const event: CollectorLifecycleEvent =
        exit.kind === 'ended'
          ? { type: 'SOURCE_ENDED', generation: ref.generation }
          : { type: 'SOURCE_FAILED', generation: ref.generation, error: `event source failed: ${exit.error}` }
      this.command(entry.name, event)
    })
  }

  private async stopInstance(ref: InstanceRef, signal: AbortSignal): Promise<void> {
    const entry = this.entries.get(ref.name)
    if (!entry || entry.instanceGeneration !== ref.generation || !entry.instance) return
    const instance = entry.instance
    const pump = entry.pump
    try {
      await untilAborted(Promise.resolve().then(() => instance.stop()), signal)
      // Keep reading until the source ends, so events produced while stopping are not lost.
      if (pump) await untilAborted(pump.done, signal)
    } finally {
      if (signal.aborted || !pump) {
        await pump?.interrupt()
      }
      if (entry.pump === pump) entry.pump = undefined
      if (entry.instance === instance) entry.instance = undefined
    }
  }

  // ---- supervision ---------------------------------------------------------------------

  private drainNotifications(): void {
    for (let n = this.notifications.shift(); n !== undefined; n = this.notifications.shift()) this.onNotification(n)
  }

  private onNotification(n: CollectorNotification): void {
    const entry = this.entries.get(n.name)
    if (!entry) return
    switch (n.type) {
      case 'COLLECTOR.RUNNING': {
        const now = this.clock.now()
        entry.history = markRunning(entry.history, now)
        entry.failedStarts = 0
        entry.lastError = null
        if (entry.downSince !== undefined) {
          this.emit({ type: 'recovered', collector: entry.name, at: now, downMs: now - entry.downSince, restarts: this.view(entry.name)?.restarts ?? 0 })
          entry.downSince = undefined
        }
        this.settle(entry, { kind: 'running' })
        return
      }
      case 'COLLECTOR.STOPPED': {
        const by = entry.stopCause ?? (this.isShuttingDown() ? 'shutdown' : 'operator')
        entry.stopCause = undefined
        this.emit({ type: 'stopped', collector: entry.name, at: this.clock.now(), by, forced: n.forced })
        this.settle(entry, { kind: 'stopped' })
        return
      }
      case 'COLLECTOR.GAVE_UP':
        entry.lastError = n.reason
        this.emit({ type: 'gave-up', collector: entry.name, at: this.clock.now(), reason: n.reason })
        this.settle(entry, { kind: 'gave-up', reason: n.reason })
        return
      case 'COLLECTOR.EXITED':
        this.onExit(entry, n.exit, n.error)
        return
    }
  }

  private isShuttingDown(): boolean {
    const phase = this.phase()
    return phase === 'stopping' || phase === 'stopped' || phase === 'escalated'
  }

  private onExit(entry: Entry, exit: 'failure' | 'normal', error: string | null): void {
    entry.lastError = error
    if (entry.removing || this.isShuttingDown()) return
    const now = this.clock.now()
    const wasStarting = entry.history.runningSince === undefined
    entry.downSince ??= now
    this.emit({ type: 'failed', collector: entry.name, at: now, exit, error, wasRunning: !wasStarting })
    if (wasStarting) {
      entry.failedStarts += 1
      if (entry.settleWaiters.length > 0 && entry.failedStarts >= entry.policy.startAttempts) {
        this.settle(entry, { kind: 'failed', reason: error ?? 'start failed' })
      }
    }
    // OTP counts intensity across the whole supervisor; `escalate` policies do too. The default
    // `give-up` keeps a per-collector window (Akka style: one bad collector cannot stop the rest).
    const escalating = entry.policy.onExceeded === 'escalate'
    const history = escalating ? { ...entry.history, restartTimes: this.restartLog } : entry.history
    const decision = decide(entry.policy, history, exit, now, this.random)
    entry.history = decision.history
    switch (decision.action) {
      case 'restart': {
        this.logRestart(now)
        const group = restartGroup(this.options.strategy, this.names(), entry.name)
        this.emit({
          type: 'restart-scheduled',
          collector: entry.name,
          at: now,
          delayMs: decision.delayMs,
          attempt: decision.history.restartTimes.length,
          maxRestarts: entry.policy.maxRestarts,
          withinMs: entry.policy.withinMs,
          strategy: this.options.strategy,
          group,
        })
        if (group.length <= 1) this.command(entry.name, { type: 'RESTART_AFTER', delayMs: decision.delayMs })
        else this.scheduleGroupRestart(group, now + decision.delayMs)
        return
      }
      case 'stop':
        entry.stopCause = 'policy'
        this.command(entry.name, { type: 'STOP' })
        this.resumeHeldAfter(entry.name)
        return
      case 'give-up':
        this.command(entry.name, { type: 'GIVE_UP', reason: `${decision.reason}; last error: ${error ?? 'none'}` })
        this.resumeHeldAfter(entry.name)
        return
      case 'escalate': {
        const reason = `collector "${entry.name}": ${decision.reason}`
        entry.lastError = `${decision.reason}; last error: ${error ?? 'none'}`
        this.emit({ type: 'escalated', collector: entry.name, at: now, reason })
        this.actor.send({ type: 'ESCALATE', reason })
        this.options.onEscalate?.(reason)
        return
      }
    }
  }

  private logRestart(now: number): void {
    let window = 0
    for (const e of this.entries.values()) window = Math.max(window, e.policy.withinMs)
    this.restartLog = [...this.restartLog.filter((t) => now - t < window), now]
  }

  private scheduleGroupRestart(group: readonly string[], dueAt: number): void {
    this.enqueueGroupWork(() => this.groupRestart(group, dueAt))
  }

  private enqueueGroupWork(work: () => Promise<void>): void {
    this.groupQueue = this.groupQueue.then(work).catch((e: unknown) => this.options.onInternalError?.(e))
  }

  /**
   * A group restart stops at a member that does not come up; if that member is not restarted
   * (given up on, or not restartable), the members held behind it are started now, in order.
   */
  private resumeHeldAfter(name: string): void {
    if (this.options.strategy === 'one_for_one') return
    const group = restartGroup(this.options.strategy, this.names(), name).filter((n) => n !== name)
    this.enqueueGroupWork(() => this.resumeInOrder(group, this.lifetime.signal))
  }

  /** RESUME the held members in start order, each running before the next; stops at one that fails. */
  private async resumeInOrder(group: readonly string[], signal: AbortSignal): Promise<void> {
    for (const name of group) {
      if (signal.aborted) return
      this.drainNotifications()
      const child = this.child(name)
      if (!child?.getSnapshot().matches({ suspended: 'held' })) continue
      this.command(name, { type: 'RESUME' })
      await this.waitChild(name, settled, signal)
      this.drainNotifications()
      // Like OTP: a member that fails to start ends this restart; its own exit decides what follows.
      if (!this.child(name)?.getSnapshot().matches('running')) return
    }
  }

  /**
   * OTP's one_for_all / rest_for_one: stop every member of the group in reverse start order (the
   * failed one is already released), wait out the failed one's backoff, then start them again in
   * start order, each running before the next starts (a member that fails to start ends the round:
   * its own exit is decided like any other, and the next round or `resumeHeldAfter` goes on). Members in any state
   * take part; stopped, given-up and never-started ones stay as they are.
   */
  private async groupRestart(group: readonly string[], dueAt: number): Promise<void> {
    const signal = this.lifetime.signal
    for (const name of [...group].reverse()) {
      if (signal.aborted) return
      const entry = this.entries.get(name)
      if (!entry || entry.removing) continue
      this.drainNotifications()
      entry.downSince ??= this.clock.now()
      this.command(name, { type: 'SUSPEND' })
      await this.waitChild(name, parked, signal)
    }
    if (signal.aborted) return
    await delay(dueAt - this.clock.now(), signal, this.clock)
    await this.resumeInOrder(group, signal)
  }

  /** Wait until the named actor satisfies `predicate`; also ends when it is removed or replaced. */
  private async waitChild(name: string, predicate: (s: CollectorSnapshot) => boolean, signal: AbortSignal): Promise<void> {
    const child = this.child(name)
    if (!child) return
    await waitFor(child, predicate, { signal }).then(
      () => {},
      () => {},
    )
  }

  private waitSettle(entry: Entry): Promise<SettleOutcome> {
    return new Promise<SettleOutcome>((resolve) => entry.settleWaiters.push(resolve))
  }

  private settle(entry: Entry, outcome: SettleOutcome): void {
    const ws = entry.settleWaiters
    entry.settleWaiters = []
    for (const w of ws) w(outcome)
  }

  private ensureHealthTimer(): void {
    if (this.healthTimer !== undefined || this.lifetime.signal.aborted) return
    const tick = () => {
      this.checkHealth()
      this.healthTimer = undefined
      this.ensureHealthTimer()
    }
    this.healthTimer = this.clock.setTimeout(tick, this.options.healthCheckIntervalMs)
    // A periodic check must not keep the host process alive (system clock handles have unref).
    ;(this.healthTimer as { unref?: () => void } | undefined)?.unref?.()
  }

  /** Read self-reported health; a fatal_error fails the collector like a crash would. */
  checkHealth(): void {
    for (const entry of this.entries.values()) {
      const instance = entry.instance
      if (!instance?.health || this.childState(entry.name) !== 'running') continue
      let h: CollectorHealth
      try {
        h = instance.health()
      } catch (e) {
        h = { status: 'recoverable_error', message: `health() threw: ${errorMessage(e)}` }
      }
      entry.lastHealth = h
      if (h.status === 'fatal_error') {
        this.command(entry.name, {
          type: 'FAULT',
          generation: entry.instanceGeneration,
          error: `collector reported fatal_error: ${h.message ?? 'no message'}`,
        })
      }
    }
  }

  private statusOf(entry: Entry, state: LifecycleState): ComponentStatus {
    switch (state) {
      case 'idle':
      case 'stopped':
        return 'stopped'
      case 'starting':
        return 'starting'
      case 'running': {
        const s = entry.lastHealth?.status
        return s ?? 'ok'
      }
      case 'failed':
      case 'restarting':
      case 'suspended':
        return 'recoverable_error'
      case 'stopping':
        return 'stopping'
      case 'gaveUp':
        return 'permanent_error'
    }
  }

  private sourceStatistics(entry: Entry): SourceStatistics | undefined {
    const inst = entry.lastInstance ?? (isCollector(entry.source) ? entry.source : undefined)
    const current = readStatistics(inst)
    if (current === undefined) return entry.retired === EMPTY_SOURCE_STATISTICS ? undefined : entry.retired
    return addStatistics(entry.retired, current)
  }

  // ---- helpers -------------------------------------------------------------------------

  private instanceFor(entry: Entry): Collector {
    const made = isCollector(entry.source) ? entry.source : entry.source()
    if (!isCollector(made)) throw new Error(`factory for collector "${entry.name}" did not return a Collector`)
    if (entry.lastInstance !== undefined && entry.lastInstance !== made) {
      // The previous instance will not be read again: its final figures join the registration's.
      const last = readStatistics(entry.lastInstance)
      if (last) entry.retired = retire(entry.retired, last)
    }
    entry.lastInstance = made
    return made
  }

  /**
   * A given-up actor is final: replace it with a fresh one under the same name, in the same place
   * of the start order, carrying its restart count on (plus the restart it is made for).
   */
  private respawn(entry: Entry, manual: boolean): void {
    const at = this.names().indexOf(entry.name)
    const old = this.child(entry.name)?.getSnapshot().context
    this.actor.send({ type: 'REMOVE', name: entry.name })
    this.actor.send({
      type: 'ADD',
      at,
      child: {
        name: entry.name,
        startTimeoutMs: entry.policy.startTimeoutMs,
        stopTimeoutMs: entry.policy.stopTimeoutMs,
        // The fresh actor starts a new instance at once: a restart, by an operator or by start().
        restarts: (old?.restarts ?? 0) + 1,
        manualRestarts: (old?.manualRestarts ?? 0) + (manual ? 1 : 0),
      },
    })
    entry.history = EMPTY_HISTORY
  }

  private mustGet(name: string): Entry {
    const e = this.entries.get(name)
    if (!e) throw new Error(`collector "${name}" is not registered`)
    return e
  }

  private child(name: string): CollectorActor | undefined {
    return this.actor.getSnapshot().children[name] as CollectorActor | undefined
  }

  childState(name: string): LifecycleState | undefined {
    const c = this.child(name)
    return c ? topState(c.getSnapshot().value) : undefined
  }

  private command(name: string, command: CollectorLifecycleEvent): void {
    if (this.actor.getSnapshot().status !== 'active') return
    this.actor.send({ type: 'COMMAND', name, command })
  }
}
