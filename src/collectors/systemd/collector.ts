import { existsSync } from 'node:fs'
import * as Result from 'effect/Result'
import { type Clock, systemClock } from '../../core/clock.js'
import { type Collector, type CollectorFactory, type CollectorHealth, type CollectorOutput, CollectorStateError } from '../../core/collector.js'
import { type HandoffQueue, HandoffTotals } from '../../core/handoff-queue.js'
import { queueStatistics, type SourceStatistics } from '../../core/statistics.js'
import type { EventInput } from '../../events/event.js'
import { nowNs } from '../../events/time.js'
import { type BusConnection, type BusSignal, connectBus, socketPathOf } from './bus.js'
import { type SystemdConfig, type SystemdConfigInput, parseSystemdConfig, resolveBusAddress, withDefaults } from './config.js'
import { type UnitFilter, makeUnitFilter } from './glob.js'
import {
  DBUS_NAME,
  JobNewSchema,
  JobRemovedSchema,
  MANAGER_IFACE,
  NameOwnerChangedSchema,
  PROPERTIES_IFACE,
  PropertiesChangedSchema,
  ReloadingSchema,
  SERVICE_IFACE,
  SYSTEMD_NAME,
  SYSTEMD_PATH,
  ServicePropsSchema,
  UNIT_IFACE,
  UnitNewSchema,
  UnitPropsSchema,
  decode,
  unitNameFromPath,
  unwrapVariants,
} from './messages.js'
import { subscribe, systemdOwner, takeSnapshot } from './snapshot.js'
import { UnitTable } from './table.js'
import { jobEvent } from './units.js'

/** Where a snapshot's replies sit in the incoming stream; older buffered signals are superseded. */
interface SnapshotCutoff {
  readonly list: number
  readonly service: ReadonlyMap<string, number>
}

/** Manager signals the collector knows and deliberately does not turn into events. */
const IGNORED_MANAGER_SIGNALS = new Set(['StartupFinished', 'UnitFilesChanged'])

const emptyStats = () => ({
  starts: 0,
  connectionLosses: 0,
  snapshots: 0,
  signalsReceived: 0,
  resyncEvents: 0,
  malformedMessages: 0,
  unexpectedMessages: 0,
  unloadedWhileActive: 0,
  ignoredSignals: 0,
  filteredSignals: 0,
  supersededSignals: 0,
})

/**
 * What one registration's instances share across restarts: the unit table, so a start after a
 * failure reports only what changed while the collector was away.
 */
export interface SystemdSharedState {
  readonly units: UnitTable
  /** Object path -> unit name, for PropertiesChanged (which names only the path). */
  readonly paths: Map<string, string>
}

export function newSystemdSharedState(): SystemdSharedState {
  return { units: new UnitTable(), paths: new Map() }
}

/**
 * Follows systemd units over D-Bus: Subscribe, a ListUnits snapshot, then live signals.
 * The unit table lives in a {@link SystemdSharedState} (the instance's own unless given one):
 * {@link systemdCollectorFactory} shares it between the fresh instances of one registration.
 */
export interface SystemdCollectorOptions {
  /** Times the bus handshake and every call's reply timeout (`callTimeoutMs`). Default: the system clock. */
  readonly clock?: Clock
}

export class SystemdCollector implements Collector {
  readonly config: SystemdConfig
  readonly #filter: UnitFilter
  readonly #units: UnitTable
  readonly #paths: Map<string, string>
  #conn: BusConnection | undefined
  #queue: HandoffQueue | undefined
  readonly #queues = new HandoffTotals()
  #starting = false
  #owner = ''
  #cutoff: SnapshotCutoff | undefined
  #failure: string | undefined
  #lastMalformed: string | undefined
  #lastSnapshotAt: string | undefined
  #stats = emptyStats()

  readonly #clock: Clock

  constructor(
    config: SystemdConfigInput | SystemdConfig = {},
    shared: SystemdSharedState = newSystemdSharedState(),
    options: SystemdCollectorOptions = {},
  ) {
    this.#clock = options.clock ?? systemClock
    this.config = withDefaults(config)
    this.#filter = makeUnitFilter(this.config)
    this.#units = shared.units
    this.#paths = shared.paths
  }

  get address(): string {
    return resolveBusAddress(this.config)
  }

  async start(signal: AbortSignal): Promise<void> {
    if (this.#starting || (this.#conn && !this.#conn.closed)) throw new CollectorStateError('systemd collector: already started')
    // Started again after a failure without a stop() in between: release the old run first.
    if (this.#conn) this.#release()
    this.#starting = true
    try {
      await this.#start(signal)
    } finally {
      this.#starting = false
    }
  }

  async #start(signal: AbortSignal): Promise<void> {
    signal.throwIfAborted()
    this.#stats.starts += 1
    this.#failure = undefined
    const address = this.address
    const socket = socketPathOf(address)
    if (socket !== undefined && !existsSync(socket)) {
      throw this.#startError(`no ${this.config.address ? '' : `${this.config.bus} `}bus at ${socket}`)
    }
    const queue = this.#queues.open({ capacity: this.config.maxQueuedEvents, overflow: 'oldest' })
    let conn: BusConnection
    try {
      conn = await connectBus(address, signal, this.config.callTimeoutMs, this.#clock)
    } catch (err) {
      throw this.#startError(err instanceof Error ? err.message : String(err))
    }
    const onAbort = (): void => conn.close()
    signal.addEventListener('abort', onAbort, { once: true })
    this.#conn = conn
    this.#queue = queue
    conn.onLost((reason) => this.#lose(conn, reason))
    try {
      await this.#subscribe(conn, queue)
      if (signal.aborted) throw new Error('start aborted')
    } catch (err) {
      const why = signal.aborted ? 'start aborted' : err instanceof Error ? err.message : String(err)
      conn.close()
      this.#conn = undefined
      this.#queue = undefined
      queue.end()
      throw this.#startError(why)
    } finally {
      signal.removeEventListener('abort', onAbort)
    }
  }

  /** Closing the connection is synchronous; the promise is the contract's. */
  stop(): Promise<void> {
    this.#release()
    return Promise.resolve()
  }

  #release(): void {
    const conn = this.#conn
    const queue = this.#queue
    this.#conn = undefined
    this.#cutoff = undefined
    conn?.close()
    // Kept (ended) so events() of this run still drains what was produced.
    queue?.end()
  }

  events(): AsyncIterable<CollectorOutput> {
    const queue = this.#queue
    if (!queue) throw new CollectorStateError('systemd collector: events() before a successful start()')
    return queue
  }

  health(): CollectorHealth {
    const details = {
      address: this.address,
      connected: this.#conn !== undefined && !this.#conn.closed,
      uniqueName: this.#conn?.uniqueName ?? null,
      systemdOwner: this.#owner || null,
      unitsTracked: this.#units.size,
      lastSnapshotAt: this.#lastSnapshotAt ?? null,
      lastMalformed: this.#lastMalformed ?? null,
    }
    if (this.#failure) return { status: 'recoverable_error', message: this.#failure, details }
    return { status: 'ok', details }
  }

  statistics(): SourceStatistics {
    return queueStatistics(this.#queues.counters(), { ...this.#stats }, { unitsTracked: this.#units.size })
  }

  #startError(reason: string): Error {
    this.#failure = `systemd collector cannot start: ${reason}`
    return new Error(this.#failure)
  }

  #lose(conn: BusConnection, reason: string): void {
    if (this.#conn !== conn) return
    this.#stats.connectionLosses += 1
    this.#fail(reason)
  }

  #fail(reason: string): void {
    const queue = this.#queue
    this.#failure = `systemd collector failed: ${reason}`
    this.#conn?.close()
    // Keep #queue so events() still returns it; the consumer sees the error after draining.
    queue?.fail(new Error(this.#failure))
  }

  #emit(events: readonly EventInput[], resync = false): void {
    if (events.length === 0 || !this.#queue) return
    if (resync) this.#stats.resyncEvents += events.length
    this.#queue.push(events)
  }

  async #subscribe(conn: BusConnection, queue: HandoffQueue): Promise<void> {
    const timeout = this.config.callTimeoutMs
    const buffered: BusSignal[] = []
    let live = false
    conn.onSignal((s) => {
      if (live) this.#safeHandle(s)
      else buffered.push(s)
    })
    this.#owner = await systemdOwner(conn, timeout)
    await subscribe(conn, timeout)
    const snapshot = await takeSnapshot(conn, this.#filter, timeout, (what) => this.#malformed(what))
    for (const [path, name] of snapshot.paths) this.#paths.set(path, name)
    this.#stats.snapshots += 1
    this.#lastSnapshotAt = nowNs()
    this.#emit(this.#units.applySnapshot(snapshot.units), true)

    // Replay what arrived meanwhile, minus what the snapshot already reflects.
    this.#cutoff = { list: snapshot.listSeq, service: snapshot.serviceSeq }
    live = true
    for (const s of buffered) this.#safeHandle(s)
    this.#cutoff = undefined
    if (queue !== this.#queue || this.#conn !== conn) throw new Error('stopped while starting')
  }

  #malformed(what: string): undefined {
    this.#stats.malformedMessages += 1
    this.#lastMalformed = what.slice(0, 500)
    return undefined
  }

  #safeHandle(s: BusSignal): void {
    try {
      this.#handle(s)
    } catch (err) {
      // A bug or a message shape the schemas let through must not take the bus callback down.
      this.#malformed(`${s.interface}.${s.member}: ${err instanceof Error ? err.message : String(err)}`)
    }
  }

  #handle(s: BusSignal): void {
    this.#stats.signalsReceived += 1
    if (s.sender === this.#owner) {
      if (s.interface === MANAGER_IFACE && s.path === SYSTEMD_PATH) return this.#onManagerSignal(s)
      if (s.interface === PROPERTIES_IFACE && s.member === 'PropertiesChanged') return this.#onPropertiesChanged(s)
    } else if (s.sender === DBUS_NAME && s.interface === DBUS_NAME) {
      if (s.member === 'NameOwnerChanged') return this.#onNameOwnerChanged(s)
      // NameAcquired/NameLost about our own unique name.
      this.#stats.ignoredSignals += 1
      return
    }
    this.#stats.unexpectedMessages += 1
  }

  #superseded(seq: number, cutoff: number | undefined): boolean {
    if (cutoff === undefined || seq >= cutoff) return false
    this.#stats.supersededSignals += 1
    return true
  }

  #onNameOwnerChanged(s: BusSignal): void {
    const m = decode(NameOwnerChangedSchema, s.body)
    if (Result.isFailure(m)) return void this.#malformed(`NameOwnerChanged: ${m.failure}`)
    const [name, , newOwner] = m.success
    if (name !== SYSTEMD_NAME || newOwner === this.#owner) return
    this.#fail(
      newOwner === ''
        ? `${SYSTEMD_NAME} left the bus (the manager exited or lost its connection)`
        : `${SYSTEMD_NAME} moved to a new connection ${newOwner} (the manager re-executed); subscription lost`,
    )
  }

  #onManagerSignal(s: BusSignal): void {
    switch (s.member) {
      case 'UnitNew':
      case 'UnitRemoved': {
        const m = decode(UnitNewSchema, s.body)
        if (Result.isFailure(m)) return void this.#malformed(`${s.member}: ${m.failure}`)
        if (this.#superseded(s.seq, this.#cutoff?.list)) return
        const [name, path] = m.success
        if (s.member === 'UnitNew') this.#paths.set(path, name)
        else this.#paths.delete(path)
        if (!this.#filter(name)) return void (this.#stats.filteredSignals += 1)
        if (s.member === 'UnitNew') return this.#emit(this.#units.loaded(name))
        const { events, quiet } = this.#units.unloaded(name)
        if (quiet) this.#stats.unloadedWhileActive += 1
        return this.#emit(events)
      }
      case 'JobNew':
      case 'JobRemoved': {
        const m: Result.Result<readonly [number, string, string, string?], string> =
          s.member === 'JobNew' ? decode(JobNewSchema, s.body) : decode(JobRemovedSchema, s.body)
        if (Result.isFailure(m)) return void this.#malformed(`${s.member}: ${m.failure}`)
        if (!this.config.emitJobs) return
        const [id, , unit, result] = m.success
        if (!this.#filter(unit)) return void (this.#stats.filteredSignals += 1)
        return this.#emit([jobEvent(s.member === 'JobNew' ? 'new' : 'removed', id, unit, result)])
      }
      case 'Reloading': {
        const m = decode(ReloadingSchema, s.body)
        if (Result.isFailure(m)) return void this.#malformed(`Reloading: ${m.failure}`)
        return this.#emit([
          { type: 'systemd.manager.reloading', severity: 'info', timestamp: nowNs(), data: { active: m.success[0] } },
        ])
      }
      default:
        if (IGNORED_MANAGER_SIGNALS.has(s.member)) this.#stats.ignoredSignals += 1
        else this.#stats.unexpectedMessages += 1
    }
  }

  #onPropertiesChanged(s: BusSignal): void {
    const m = decode(PropertiesChangedSchema, s.body)
    if (Result.isFailure(m)) return void this.#malformed(`PropertiesChanged: ${m.failure}`)
    const [iface, changed] = m.success
    const name = this.#paths.get(s.path) ?? unitNameFromPath(s.path)
    if (name === undefined) return void (this.#stats.unexpectedMessages += 1)
    if (!this.#filter(name)) return void (this.#stats.filteredSignals += 1)
    const values = unwrapVariants(changed)

    if (iface === SERVICE_IFACE) {
      if (this.#superseded(s.seq, this.#cutoff?.service.get(name) ?? this.#cutoff?.list)) return
      const props = decode(ServicePropsSchema, values)
      if (Result.isFailure(props)) return void this.#malformed(`Service properties of ${name}: ${props.failure}`)
      return this.#units.serviceChanged(name, props.success)
    }
    if (iface !== UNIT_IFACE) return void (this.#stats.ignoredSignals += 1)
    if (this.#superseded(s.seq, this.#cutoff?.list)) return
    const props = decode(UnitPropsSchema, values)
    if (Result.isFailure(props)) return void this.#malformed(`Unit properties of ${name}: ${props.failure}`)
    this.#emit(this.#units.unitChanged(name, props.success))
  }
}

/**
 * A factory for one registration: a fresh instance per start, all sharing one unit table, so a
 * restart reports only what changed while the collector was away.
 */
export function systemdCollectorFactory(config: SystemdConfigInput | SystemdConfig = {}, options: SystemdCollectorOptions = {}): CollectorFactory {
  const parsed = withDefaults(config)
  const shared = newSystemdSharedState()
  return () => new SystemdCollector(parsed, shared, options)
}

/** Build a collector from untrusted config; throws SystemdConfigError naming the bad path. */
export function createSystemdCollector(config: unknown): SystemdCollector {
  const parsed = parseSystemdConfig(config)
  if (Result.isFailure(parsed)) throw parsed.failure
  return new SystemdCollector(parsed.success)
}
