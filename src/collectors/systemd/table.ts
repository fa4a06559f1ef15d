/**
 * The last-known state of every followed unit, kept on the collector instance across restarts so
 * a new snapshot can be compared with it. No I/O: it turns observations into events.
 */
import type { EventInput } from '../../events/event.js'
import type { ServiceProps, UnitProps } from './messages.js'
import { FRESH_UNIT, type UnitState, observeTransition, presenceEvent } from './units.js'

interface TrackedUnit {
  /** Latest known values, updated by every signal. */
  state: UnitState
  /** The state the last emitted events describe; transitions are computed against it. */
  emitted: UnitState
}

/** Bound on unloaded units remembered between two snapshots (transient units come and go all day). */
const MAX_UNLOADED = 4096

export class UnitTable {
  readonly #units = new Map<string, TrackedUnit>()
  /**
   * Last known state of units unloaded since the last snapshot. systemd sends UnitRemoved for
   * every unit when it re-executes or exits, not only when it garbage-collects an inactive one;
   * the next snapshot compares against these so the units that come back are not news.
   */
  readonly #unloaded = new Map<string, UnitState>()
  #hasBaseline = false

  get size(): number {
    return this.#units.size
  }

  /**
   * The first snapshot is the baseline (state that was already there is not news); later ones
   * yield the differences, marked resync.
   */
  applySnapshot(snapshot: ReadonlyMap<string, UnitState>): EventInput[] {
    if (!this.#hasBaseline) {
      for (const [name, state] of snapshot) this.#units.set(name, { state, emitted: state })
      this.#hasBaseline = true
      return []
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
    return out
  }

  /** UnitNew: a freshly loaded unit is inactive/dead with no restarts. */
  loaded(name: string): EventInput[] {
    if (this.#units.has(name)) return []
    this.#unloaded.delete(name)
    this.#units.set(name, { state: FRESH_UNIT, emitted: FRESH_UNIT })
    return [presenceEvent('added', name, undefined, false)]
  }

  /**
   * UnitRemoved. systemd only collects inactive units; any other state means the manager is going
   * away (re-exec, exit): no event then (`quiet`), the next snapshot tells what really changed.
   */
  unloaded(name: string): { events: EventInput[]; quiet: boolean } {
    const known = this.#units.get(name)?.emitted
    this.#units.delete(name)
    if (known) {
      this.#unloaded.delete(name)
      this.#unloaded.set(name, known)
      if (this.#unloaded.size > MAX_UNLOADED) {
        const oldest = this.#unloaded.keys().next().value
        if (oldest !== undefined) this.#unloaded.delete(oldest)
      }
      if (known.activeState !== 'inactive') return { events: [], quiet: true }
    }
    return { events: [presenceEvent('removed', name, known, false)], quiet: false }
  }

  /**
   * Service interface changes. systemd sends the type-specific interface first and Unit second,
   * so the Unit signal that follows sees these values: transitions are computed there, once.
   */
  serviceChanged(name: string, p: ServiceProps): void {
    const unit = this.#track(name)
    unit.state = withServiceProps(unit.state, p)
  }

  unitChanged(name: string, p: UnitProps): EventInput[] {
    const unit = this.#track(name)
    unit.state = {
      ...unit.state,
      ...(p.ActiveState !== undefined ? { activeState: p.ActiveState } : {}),
      ...(p.SubState !== undefined ? { subState: p.SubState } : {}),
    }
    const { events, emitted } = observeTransition(name, unit.emitted, unit.state)
    unit.emitted = emitted
    return events
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

export function withServiceProps(state: UnitState, p: ServiceProps): UnitState {
  const next: { -readonly [K in keyof UnitState]: UnitState[K] } = { ...state }
  if (p.Result !== undefined) next.result = p.Result
  if (p.NRestarts !== undefined) next.nRestarts = p.NRestarts
  if (p.MainPID !== undefined) next.mainPid = p.MainPID
  if (p.ExecMainCode !== undefined) next.execMainCode = p.ExecMainCode
  if (p.ExecMainStatus !== undefined) next.execMainStatus = p.ExecMainStatus
  // A new run resets both stamps to 0, so 0 clears what the last run left.
  if (p.ExecMainStartTimestamp !== undefined) next.execMainStartedAt = epochNsFromUsec(p.ExecMainStartTimestamp)
  if (p.ExecMainExitTimestamp !== undefined) next.execMainExitedAt = epochNsFromUsec(p.ExecMainExitTimestamp)
  // MainPID first: it names the process now running; ExecMainPID outlives it once it is gone.
  const last = p.MainPID || p.ExecMainPID
  if (last) next.lastMainPid = last
  return next
}

/** systemd's usec_t wall-clock stamps (0 = unset) as the events' epoch-nanosecond strings. */
function epochNsFromUsec(usec: bigint): string | undefined {
  return usec > 0n ? (usec * 1000n).toString() : undefined
}
