import { type Actor, type ActorRefFrom, createActor, fromPromise, type InspectionEvent, type Observer } from 'xstate'
import {
  type CollectorLifecycleEvent,
  type CollectorNotification,
  collectorLifecycleMachine,
  type InstanceRef,
  type LifecycleState,
} from '../../machines/collector-lifecycle.js'
import { supervisorMachine, type SupervisorState } from '../../machines/supervisor.js'
import { type Collector, type CollectorFactory, type CollectorHealth, isCollector } from '../core/collector.js'
import { addStatistics, EMPTY_SOURCE_STATISTICS, isSourceStatistics, retire, type SourceStatistics } from '../core/statistics.js'
import type { ComponentStatus } from '../core/status.js'
import type { MergeBuffer } from '../stream/merge-buffer.js'
import { type Pump, startPump } from '../stream/pump.js'
import { decide, EMPTY_HISTORY, type FailureHistory, markRunning, type RestartPolicy } from './policy.js'
import { type RestartStrategy, siblingsToRestart } from './strategy.js'

export interface SupervisorOptions {
  readonly buffer: MergeBuffer
  readonly strategy: RestartStrategy
  readonly inspect?: Observer<InspectionEvent> | ((event: InspectionEvent) => void)
  readonly now?: () => number
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
  restarts: number
  failedStarts: number
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
  readonly restarts: number
  readonly lastError: string | null
  readonly health: CollectorHealth | undefined
  readonly policy: RestartPolicy
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
  private readonly now: () => number
  private readonly random: () => number
  private healthTimer: ReturnType<typeof setInterval> | undefined
  private actorError: unknown

  constructor(private readonly options: SupervisorOptions) {
    this.now = options.now ?? Date.now
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
          // Defer: actions must not send to actors while the machine is mid-transition.
          queueMicrotask(() => this.onNotification(params))
        },
      },
    })
    const inspect = options.inspect
    this.actor = createActor(logic, {
      id: 'supervisor',
      systemId: 'supervisor',
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
      restarts: 0,
      failedStarts: 0,
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
    await this.stopOne(name)
    this.actor.send({ type: 'REMOVE', name })
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
    entry.failedStarts = 0
    const settled = this.waitSettle(entry)
    const state = this.childState(name)
    if (state === 'gaveUp') this.respawn(entry)
    this.command(name, { type: 'START' })
    return settled
  }

  /** Manual restart; also revives a collector that was given up on. */
  restartOne(name: string): Promise<SettleOutcome> {
    const entry = this.mustGet(name)
    entry.failedStarts = 0
    const settled = this.waitSettle(entry)
    const state = this.childState(name)
    if (state === 'gaveUp') {
      this.respawn(entry)
      this.command(name, { type: 'START' })
    } else if (state === 'idle') {
      this.command(name, { type: 'START' })
    } else {
      this.command(name, { type: 'RESTART' })
    }
    return settled
  }

  /** Stop one collector; resolves when its actor reached stopped or gave up. */
  async stopOne(name: string): Promise<void> {
    const child = this.child(name)
    if (!child) return
    const state = topState(child.getSnapshot().value)
    if (state === 'stopped' || state === 'gaveUp') return
    const done = new Promise<void>((resolve) => {
      const sub = child.subscribe({
        next: (snap) => {
          const s = topState(snap.value)
          if (s === 'stopped' || s === 'gaveUp') {
            sub.unsubscribe()
            resolve()
          }
        },
        error: () => resolve(),
        complete: () => resolve(),
      })
    })
    this.command(name, { type: 'STOP' })
    await done
  }

  beginStop(): void {
    this.actor.send({ type: 'STOP' })
  }

  /** Release every timer and the actor system. */
  finishStop(): void {
    this.actor.send({ type: 'STOPPED' })
    if (this.healthTimer) clearInterval(this.healthTimer)
    this.healthTimer = undefined
    this.actor.stop()
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
      restarts: entry.restarts,
      lastError: entry.lastError ?? snap.context.lastError,
      health: entry.lastHealth,
      policy: entry.policy,
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
    try {
      await untilAborted(Promise.resolve().then(() => instance.start(signal)), signal)
    } catch (e) {
      throw new Error(errorMessage(e))
    }
    if (signal.aborted) {
      // Timed out or stopped while starting: release whatever the late start acquired.
      Promise.resolve()
        .then(() => instance.stop())
        .catch(() => {})
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

  private onNotification(n: CollectorNotification): void {
    const entry = this.entries.get(n.name)
    if (!entry) return
    switch (n.type) {
      case 'COLLECTOR.RUNNING':
        entry.history = markRunning(entry.history, this.now())
        entry.failedStarts = 0
        entry.lastError = null
        this.settle(entry, { kind: 'running' })
        return
      case 'COLLECTOR.STOPPED':
        this.settle(entry, { kind: 'stopped' })
        return
      case 'COLLECTOR.GAVE_UP':
        entry.lastError = n.reason
        this.settle(entry, { kind: 'gave-up', reason: n.reason })
        return
      case 'COLLECTOR.EXITED':
        this.onExit(entry, n.exit, n.error)
        return
    }
  }

  private onExit(entry: Entry, exit: 'failure' | 'normal', error: string | null): void {
    entry.lastError = error
    const phase = this.phase()
    if (entry.removing || phase === 'stopping' || phase === 'stopped' || phase === 'escalated') return
    const wasStarting = entry.history.runningSince === undefined
    if (wasStarting) {
      entry.failedStarts += 1
      if (entry.settleWaiters.length > 0 && entry.failedStarts >= entry.policy.startAttempts) {
        this.settle(entry, { kind: 'failed', reason: error ?? 'start failed' })
      }
    }
    const decision = decide(entry.policy, entry.history, exit, this.now(), this.random)
    entry.history = decision.history
    switch (decision.action) {
      case 'restart': {
        entry.restarts += 1
        this.command(entry.name, { type: 'RESTART_AFTER', delayMs: decision.delayMs })
        for (const sibling of siblingsToRestart(this.options.strategy, this.names(), entry.name)) {
          const s = this.childState(sibling)
          if (s === 'running' || s === 'starting') this.command(sibling, { type: 'RESTART' })
        }
        return
      }
      case 'stop':
        this.command(entry.name, { type: 'STOP' })
        return
      case 'give-up':
        this.command(entry.name, { type: 'GIVE_UP', reason: `${decision.reason}; last error: ${error ?? 'none'}` })
        return
      case 'escalate':
        entry.lastError = `${decision.reason}; last error: ${error ?? 'none'}`
        this.actor.send({ type: 'ESCALATE', reason: `collector "${entry.name}": ${decision.reason}` })
        this.options.onEscalate?.(`collector "${entry.name}": ${decision.reason}`)
        return
    }
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
    if (this.healthTimer) return
    this.healthTimer = setInterval(() => this.checkHealth(), this.options.healthCheckIntervalMs)
    this.healthTimer.unref()
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

  /** A given-up actor is final: replace it with a fresh one under the same name. */
  private respawn(entry: Entry): void {
    this.actor.send({ type: 'REMOVE', name: entry.name })
    this.actor.send({
      type: 'ADD',
      child: { name: entry.name, startTimeoutMs: entry.policy.startTimeoutMs, stopTimeoutMs: entry.policy.stopTimeoutMs },
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
