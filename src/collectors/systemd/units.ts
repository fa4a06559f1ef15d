/**
 * Unit state and the events a change of it stands for. Pure: the collector feeds it live
 * PropertiesChanged signals and, after a reconnect, the difference between two snapshots.
 */
import type { EventInput } from '../../events/event.js'
import type { Severity } from '../../events/schema.js'
import { nowNs } from '../../events/time.js'
import type { SystemdJobData, SystemdUnitData, UnitTransition } from '../../events/vocabulary/systemd.js'
import { unitTypeOf } from './glob.js'

export interface UnitState {
  readonly activeState: string
  readonly subState: string
  readonly result?: string
  readonly nRestarts?: number
  /** MainPID: the running main process, 0 when there is none. */
  readonly mainPid?: number
  /**
   * The last main process this unit had: MainPID while it runs, then ExecMainPID. Kept by the
   * table because MainPID drops to 0 as soon as the process is gone, and a failure must still
   * name the process whose exit it was.
   */
  readonly lastMainPid?: number
  readonly execMainCode?: number
  readonly execMainStatus?: number
  /** ExecMainStartTimestamp / ExecMainExitTimestamp as epoch nanoseconds; absent while systemd reports 0. */
  readonly execMainStartedAt?: string
  readonly execMainExitedAt?: string
  /**
   * Kept by observeTransition, not sent by systemd: the unit counted a restart while waiting in
   * auto-restart, so the inactive step that follows belongs to the restart, not to a stop.
   */
  readonly restartQueued?: boolean
}

/** What a freshly loaded unit looks like (UnitNew is sent before its first state change). */
export const FRESH_UNIT: UnitState = { activeState: 'inactive', subState: 'dead', nRestarts: 0 }

/** si_code values of ExecMainCode (waitid(2) CLD_*). */
const EXIT_CODES: Readonly<Record<number, string>> = {
  1: 'exited',
  2: 'killed',
  3: 'dumped',
  4: 'trapped',
  5: 'stopped',
  6: 'continued',
}

/** The running main process, else the last one (whose exit `exitCode`/`exitStatus` describe). */
function mainPidOf(state: UnitState): number | undefined {
  if (state.mainPid) return state.mainPid
  return state.lastMainPid || undefined
}

function unitData(name: string, prev: UnitState, next: UnitState, resync: boolean): SystemdUnitData {
  const exitCode = next.execMainCode !== undefined ? EXIT_CODES[next.execMainCode] : undefined
  return {
    unit: name,
    unitType: unitTypeOf(name),
    activeState: next.activeState,
    subState: next.subState,
    ...(prev.activeState !== next.activeState || prev.subState !== next.subState
      ? { oldActiveState: prev.activeState, oldSubState: prev.subState }
      : {}),
    ...(next.result !== undefined ? { result: next.result } : {}),
    ...(mainPidOf(next) !== undefined ? { mainPid: mainPidOf(next) } : {}),
    ...(exitCode !== undefined ? { exitCode, exitStatus: next.execMainStatus ?? 0 } : {}),
    ...(next.execMainStartedAt !== undefined ? { mainStartedAt: next.execMainStartedAt } : {}),
    ...(next.execMainExitedAt !== undefined ? { mainExitedAt: next.execMainExitedAt } : {}),
    ...(next.nRestarts !== undefined ? { restartCount: next.nRestarts } : {}),
    ...(resync ? { resync: true } : {}),
  }
}

function unitEvent(
  transition: UnitTransition,
  severity: Severity,
  data: SystemdUnitData,
  timestamp: string,
): EventInput {
  return {
    type: `systemd.unit.${transition}`,
    severity,
    timestamp,
    entity: { kind: 'systemd.unit', name: data.unit },
    data,
  }
}

const isFailedResult = (r: string | undefined): boolean => r !== undefined && r !== 'success'

/**
 * Events for one observed change. systemd 252 walks a failing Restart=on-failure service through
 * active -> failed -> activating/auto-restart -> (NRestarts+1) -> inactive/dead -> active, so a
 * crash loop reads: failed, restarted (rising restartCount), started, failed, restarted, ...
 * The steps in between are state_changed at debug severity. Versions that go straight to
 * auto-restart get a failed event with willRestart there instead.
 */
export function transitionEvents(
  name: string,
  prev: UnitState,
  next: UnitState,
  opts: { readonly resync?: boolean; readonly timestamp?: string } = {},
): EventInput[] {
  return observeTransition(name, prev, next, opts).events
}

/** The events of one change and the state to compare the next change against. */
export function observeTransition(
  name: string,
  prev: UnitState,
  next: UnitState,
  opts: { readonly resync?: boolean; readonly timestamp?: string } = {},
): { events: EventInput[]; emitted: UnitState } {
  const resync = opts.resync ?? false
  const ts = opts.timestamp ?? nowNs()
  const data = unitData(name, prev, next, resync)
  const out: EventInput[] = []

  const restarts =
    prev.nRestarts !== undefined && next.nRestarts !== undefined ? next.nRestarts - prev.nRestarts : 0
  if (restarts > 0) out.push(unitEvent('restarted', 'warning', { ...data, newRestarts: restarts }, ts))
  const emitted: UnitState = {
    ...next,
    restartQueued: next.subState === 'auto-restart' && (restarts > 0 || (prev.restartQueued ?? false)),
  }

  if (prev.activeState === next.activeState && prev.subState === next.subState) return { events: out, emitted }

  const enteredAutoRestart = next.subState === 'auto-restart' && prev.subState !== 'auto-restart'
  if (next.activeState === 'failed' && prev.activeState !== 'failed') {
    out.push(unitEvent('failed', 'error', data, ts))
  } else if (enteredAutoRestart) {
    const reported = prev.activeState === 'failed' || !isFailedResult(next.result)
    out.push(unitEvent(reported ? 'state_changed' : 'failed', reported ? 'debug' : 'error', { ...data, willRestart: true }, ts))
  } else if (next.activeState === 'active' && prev.activeState === 'reloading') {
    out.push(unitEvent('reloaded', 'info', data, ts))
  } else if (next.activeState === 'active' && prev.activeState !== 'active') {
    // After a restart the start is implied, unless it happened in a later step.
    if (restarts === 0) out.push(unitEvent('started', 'info', data, ts))
  } else if (next.activeState === 'inactive' && prev.activeState !== 'inactive' && !prev.restartQueued) {
    // From auto-restart without a counted restart: stopped by hand while waiting to restart.
    out.push(unitEvent('stopped', isFailedResult(next.result) ? 'warning' : 'info', data, ts))
  } else {
    out.push(unitEvent('state_changed', 'debug', data, ts))
  }
  return { events: out, emitted }
}

export function presenceEvent(
  kind: 'added' | 'removed',
  name: string,
  state: UnitState | undefined,
  resync: boolean,
): EventInput {
  return {
    type: `systemd.unit.${kind}`,
    severity: 'debug',
    timestamp: nowNs(),
    entity: { kind: 'systemd.unit', name },
    data: {
      unit: name,
      unitType: unitTypeOf(name),
      ...(state ? { activeState: state.activeState, subState: state.subState } : {}),
      ...(resync ? { resync: true } : {}),
    },
  }
}

const JOB_RESULT_SEVERITY: Readonly<Record<string, Severity>> = {
  done: 'info',
  skipped: 'info',
  canceled: 'warning',
  timeout: 'error',
  failed: 'error',
  dependency: 'error',
  invalid: 'error',
  assert: 'error',
  unsupported: 'error',
  collected: 'warning',
  once: 'info',
}

export function jobEvent(kind: 'new' | 'removed', jobId: number, unit: string, result?: string): EventInput {
  const data: SystemdJobData = {
    jobId,
    unit,
    unitType: unitTypeOf(unit),
    ...(result !== undefined ? { result } : {}),
  }
  return {
    type: `systemd.job.${kind}`,
    severity: kind === 'new' ? 'debug' : (JOB_RESULT_SEVERITY[result ?? ''] ?? 'warning'),
    timestamp: nowNs(),
    entity: { kind: 'systemd.unit', name: unit },
    data,
  }
}
