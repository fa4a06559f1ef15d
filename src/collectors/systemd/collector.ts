import { existsSync } from 'node:fs'
import { Result } from 'effect'
import type { Collector, CollectorHealth, CollectorOutput } from '../../core/collector.js'
import type { EventInput } from '../../events/event.js'
import { nowNs } from '../../events/time.js'
import { type BusConnection, type BusSignal, connectBus, socketPathOf } from './bus.js'
import { type SystemdConfig, type SystemdConfigInput, parseSystemdConfig, resolveBusAddress, withDefaults } from './config.js'
import './events.js'
import { type UnitFilter, makeUnitFilter, unitTypeOf } from './glob.js'
import {
  BooleanReplySchema,
  DBUS_NAME,
  DBUS_PATH,
  GetAllReplySchema,
  JobNewSchema,
  JobRemovedSchema,
  ListUnitsReplySchema,
  MANAGER_IFACE,
  NameOwnerChangedSchema,
  NameOwnerReplySchema,
  PROPERTIES_IFACE,
  PropertiesChangedSchema,
  ReloadingSchema,
  SERVICE_IFACE,
  SYSTEMD_NAME,
  SYSTEMD_PATH,
  type ServiceProps,
  ServicePropsSchema,
  UNIT_IFACE,
  UNIT_PATH_PREFIX,
  UnitNewSchema,
  UnitPropsSchema,
  decode,
  unitNameFromPath,
  unwrapVariants,
} from './messages.js'
import { EventQueue } from './queue.js'
import { FRESH_UNIT, type UnitState, jobEvent, observeTransition, presenceEvent } from './units.js'

interface TrackedUnit {
  /** Latest known values, updated by every signal. */
  state: UnitState
  /** The state the last emitted events describe; transitions are computed against it. */
  emitted: UnitState
}

/** Where a snapshot's replies sit in the incoming stream; older buffered signals are superseded. */
interface SnapshotCutoff {
  readonly list: number
  readonly service: ReadonlyMap<string, number>
}

const MATCH_RULES = [
  `type='signal',sender='${SYSTEMD_NAME}',path='${SYSTEMD_PATH}',interface='${MANAGER_IFACE}'`,
  `type='signal',sender='${SYSTEMD_NAME}',interface='${PROPERTIES_IFACE}',member='PropertiesChanged',path_namespace='${UNIT_PATH_PREFIX.slice(0, -1)}'`,
  `type='signal',sender='${DBUS_NAME}',interface='${DBUS_NAME}',member='NameOwnerChanged',arg0='${SYSTEMD_NAME}'`,
]

/** Manager signals the collector knows and deliberately does not turn into events. */
const IGNORED_MANAGER_SIGNALS = new Set(['StartupFinished', 'UnitFilesChanged'])
const SNAPSHOT_CONCURRENCY = 8
/** Bound on #unloaded: a busy node unloads transient units all day between two snapshots. */
const MAX_UNLOADED = 4096

const emptyStats = () => ({
  starts: 0,
  connectionLosses: 0,
  snapshots: 0,
  signalsReceived: 0,
  eventsEmitted: 0,
  resyncEvents: 0,
  malformedMessages: 0,
  unexpectedMessages: 0,
  unloadedWhileActive: 0,
  ignoredSignals: 0,
  filteredSignals: 0,
  supersededSignals: 0,
  droppedEvents: 0,
})

/**
 * Follows systemd units over D-Bus: Subscribe, a ListUnits snapshot, then live signals.
 * The unit table lives on the instance, so a start after a failure reports only what changed
 * while the collector was away.
 */
export class SystemdCollector implements Collector {
  readonly config: SystemdConfig
  readonly #filter: UnitFilter
  readonly #units = new Map<string, TrackedUnit>()
  /** Object path -> unit name, for PropertiesChanged (which names only the path). */
  readonly #paths = new Map<string, string>()
  /**
   * Last known state of units unloaded since the last snapshot. systemd sends UnitRemoved for
   * every unit when it re-executes or exits, not only when it garbage-collects an inactive one;
   * the next snapshot compares against these so the units that come back are not news.
   */
  readonly #unloaded = new Map<string, UnitState>()
  #hasSnapshot = false
  #conn: BusConnection | undefined
  #queue: EventQueue | undefined
  #owner = ''
  #cutoff: SnapshotCutoff | undefined
  #failure: string | undefined
  #lastMalformed: string | undefined
  #lastSnapshotAt: string | undefined
  #stats = emptyStats()

  constructor(config: SystemdConfigInput | SystemdConfig = {}) {
    this.config = withDefaults(config)
    this.#filter = makeUnitFilter(this.config)
  }

  get address(): string {
    return resolveBusAddress(this.config)
  }

  async start(signal: AbortSignal): Promise<void> {
    if (this.#conn && !this.#conn.closed) throw new Error('systemd collector: already started')
    // Started again after a failure without a stop() in between: release the old run first.
    if (this.#conn) this.stop()
    this.#stats.starts += 1
    this.#failure = undefined
    const address = this.address
    const socket = socketPathOf(address)
    if (socket !== undefined && !existsSync(socket)) {
      throw this.#startError(`no ${this.config.address ? '' : `${this.config.bus} `}bus at ${socket}`)
    }
    const queue = new EventQueue(this.config.maxQueuedEvents)
    let conn: BusConnection
    try {
      conn = await connectBus(address, signal, this.config.callTimeoutMs)
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
      throw this.#startError(why)
    } finally {
      signal.removeEventListener('abort', onAbort)
    }
  }

  stop(): void {
    const conn = this.#conn
    const queue = this.#queue
    this.#conn = undefined
    this.#queue = undefined
    this.#cutoff = undefined
    conn?.close()
    if (queue) {
      this.#stats.droppedEvents += queue.dropped
      queue.end()
    }
  }

  events(): AsyncIterable<CollectorOutput> {
    const queue = this.#queue
    if (!queue) throw new Error('systemd collector: events() called before a successful start()')
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

  statistics(): Readonly<Record<string, number>> {
    return {
      ...this.#stats,
      droppedEvents: this.#stats.droppedEvents + (this.#queue?.dropped ?? 0),
      queuedEvents: this.#queue?.pending ?? 0,
      unitsTracked: this.#units.size,
    }
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
    this.#stats.eventsEmitted += events.length
    if (resync) this.#stats.resyncEvents += events.length
    this.#queue.push(events)
  }

  async #subscribe(conn: BusConnection, queue: EventQueue): Promise<void> {
    const timeout = this.config.callTimeoutMs
    const buffered: BusSignal[] = []
    let live = false
    conn.onSignal((s) => {
      if (live) this.#safeHandle(s)
      else buffered.push(s)
    })

    const ownerReply = await conn
      .call({ destination: DBUS_NAME, path: DBUS_PATH, interface: DBUS_NAME, member: 'GetNameOwner', signature: 's', body: [SYSTEMD_NAME] }, timeout)
      .catch((err: unknown) => {
        throw new Error(`${SYSTEMD_NAME} does not answer on ${conn.address}: ${err instanceof Error ? err.message : String(err)}`)
      })
    const owner = decode(NameOwnerReplySchema, ownerReply.body)
    if (Result.isFailure(owner)) throw new Error(`unexpected GetNameOwner reply: ${owner.failure}`)
    this.#owner = owner.success[0]

    for (const rule of MATCH_RULES) {
      await conn.call({ destination: DBUS_NAME, path: DBUS_PATH, interface: DBUS_NAME, member: 'AddMatch', signature: 's', body: [rule] }, timeout)
    }
    await conn.call({ destination: SYSTEMD_NAME, path: SYSTEMD_PATH, interface: MANAGER_IFACE, member: 'Subscribe' }, timeout)

    const listReply = await conn.call({ destination: SYSTEMD_NAME, path: SYSTEMD_PATH, interface: MANAGER_IFACE, member: 'ListUnits' }, timeout)
    const listed = decode(ListUnitsReplySchema, listReply.body)
    if (Result.isFailure(listed)) throw new Error(`malformed ListUnits reply: ${listed.failure}`)

    const snapshot = new Map<string, UnitState>()
    const servicePaths: Array<[string, string]> = []
    for (const row of listed.success[0]) {
      const [name, , , activeState, subState, , path] = row
      this.#paths.set(path, name)
      if (!this.#filter(name)) continue
      snapshot.set(name, { activeState, subState })
      if (unitTypeOf(name) === 'service') servicePaths.push([name, path])
    }

    const serviceSeq = new Map<string, number>()
    await mapPool(servicePaths, SNAPSHOT_CONCURRENCY, async ([name, path]) => {
      const reply = await conn
        .call({ destination: SYSTEMD_NAME, path, interface: PROPERTIES_IFACE, member: 'GetAll', signature: 's', body: [SERVICE_IFACE] }, timeout)
        .catch((err: unknown) => {
          // A unit unloaded between ListUnits and GetAll: keep it without service details.
          if (conn.closed) throw err
          return undefined
        })
      if (!reply) return
      const props = this.#serviceProps(reply.body)
      const base = snapshot.get(name)
      if (props && base) {
        snapshot.set(name, withServiceProps(base, props))
        serviceSeq.set(name, reply.seq)
      }
    })

    this.#stats.snapshots += 1
    this.#lastSnapshotAt = nowNs()
    this.#applySnapshot(snapshot)

    // Replay what arrived meanwhile, minus what the snapshot already reflects.
    this.#cutoff = { list: listReply.seq, service: serviceSeq }
    live = true
    for (const s of buffered) this.#safeHandle(s)
    this.#cutoff = undefined
    if (queue !== this.#queue) throw new Error('stopped while starting')
  }

  #applySnapshot(snapshot: ReadonlyMap<string, UnitState>): void {
    if (!this.#hasSnapshot) {
      // The first snapshot is the baseline: state that was already there is not news.
      for (const [name, state] of snapshot) this.#units.set(name, { state, emitted: state })
      this.#hasSnapshot = true
      return
    }
    const out: EventInput[] = []
    for (const [name, state] of snapshot) {
      const known = this.#units.get(name)?.emitted ?? this.#unloaded.get(name)
      if (!known) out.push(presenceEvent('added', name, state, true))
      const { events, emitted } = observeTransition(name, known ?? FRESH_UNIT, state, { resync: true })
      out.push(...events)
      this.#units.set(name, { state, emitted })
    }
    for (const [name, known] of this.#units) {
      if (snapshot.has(name)) continue
      this.#units.delete(name)
      out.push(presenceEvent('removed', name, known.emitted, true))
    }
    this.#unloaded.clear()
    this.#emit(out, true)
  }

  #serviceProps(body: readonly unknown[]): ServiceProps | undefined {
    const all = decode(GetAllReplySchema, body)
    if (Result.isFailure(all)) return this.#malformed(`GetAll: ${all.failure}`)
    const props = decode(ServicePropsSchema, unwrapVariants(all.success[0]))
    if (Result.isFailure(props)) return this.#malformed(`service properties: ${props.failure}`)
    return props.success
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
        if (s.member === 'UnitNew') {
          if (this.#units.has(name)) return
          this.#unloaded.delete(name)
          this.#units.set(name, { state: FRESH_UNIT, emitted: FRESH_UNIT })
          return this.#emit([presenceEvent('added', name, undefined, false)])
        }
        const known = this.#units.get(name)?.emitted
        this.#units.delete(name)
        if (known) this.#rememberUnloaded(name, known)
        // systemd only collects inactive units; any other state means the manager is going away
        // (re-exec, exit) and the next snapshot will tell what really changed.
        if (known && known.activeState !== 'inactive') return void (this.#stats.unloadedWhileActive += 1)
        return this.#emit([presenceEvent('removed', name, known, false)])
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
      const unit = this.#track(name)
      // systemd sends the type-specific interface first and Unit second, so the Unit signal
      // that follows sees these values: transitions are computed there, once.
      unit.state = withServiceProps(unit.state, props.success)
      return
    }
    if (iface !== UNIT_IFACE) return void (this.#stats.ignoredSignals += 1)
    if (this.#superseded(s.seq, this.#cutoff?.list)) return
    const props = decode(UnitPropsSchema, values)
    if (Result.isFailure(props)) return void this.#malformed(`Unit properties of ${name}: ${props.failure}`)
    const unit = this.#track(name)
    const { ActiveState, SubState } = props.success
    unit.state = {
      ...unit.state,
      ...(ActiveState !== undefined ? { activeState: ActiveState } : {}),
      ...(SubState !== undefined ? { subState: SubState } : {}),
    }
    const { events, emitted } = observeTransition(name, unit.emitted, unit.state)
    unit.emitted = emitted
    this.#emit(events)
  }

  #rememberUnloaded(name: string, state: UnitState): void {
    this.#unloaded.delete(name)
    this.#unloaded.set(name, state)
    if (this.#unloaded.size > MAX_UNLOADED) {
      const oldest = this.#unloaded.keys().next().value
      if (oldest !== undefined) this.#unloaded.delete(oldest)
    }
  }

  #track(name: string): TrackedUnit {
    let unit = this.#units.get(name)
    if (!unit) {
      unit = { state: FRESH_UNIT, emitted: FRESH_UNIT }
      this.#units.set(name, unit)
    }
    return unit
  }
}

function withServiceProps(state: UnitState, p: ServiceProps): UnitState {
  return {
    ...state,
    ...(p.Result !== undefined ? { result: p.Result } : {}),
    ...(p.NRestarts !== undefined ? { nRestarts: p.NRestarts } : {}),
    ...(p.MainPID !== undefined ? { mainPid: p.MainPID } : {}),
    ...(p.ExecMainCode !== undefined ? { execMainCode: p.ExecMainCode } : {}),
    ...(p.ExecMainStatus !== undefined ? { execMainStatus: p.ExecMainStatus } : {}),
  }
}

async function mapPool<T>(items: readonly T[], concurrency: number, fn: (item: T) => Promise<void>): Promise<void> {
  let next = 0
  const worker = async (): Promise<void> => {
    while (next < items.length) {
      const item = items[next++] as T
      await fn(item)
    }
  }
  await Promise.all(Array.from({ length: Math.min(concurrency, items.length) }, worker))
}

/** Build a collector from untrusted config; throws SystemdConfigError naming the bad path. */
export function createSystemdCollector(config: unknown): SystemdCollector {
  const parsed = parseSystemdConfig(config)
  if (Result.isFailure(parsed)) throw parsed.failure
  return new SystemdCollector(parsed.success)
}
