import { Result } from 'effect'
import { describe, expect, it } from 'vitest'
import { globToRegExp, makeUnitFilter, parseSystemdConfig, resolveBusAddress } from '../../../src/collectors/systemd/index.js'
import { ServicePropsSchema, decode, unitNameFromPath } from '../../../src/collectors/systemd/messages.js'
import { UnitTable } from '../../../src/collectors/systemd/table.js'
import { FRESH_UNIT, jobEvent, presenceEvent, type UnitState, observeTransition, transitionEvents } from '../../../src/collectors/systemd/units.js'
import { validateEvent } from '../../../src/events/event.js'
import { stampEvent } from '../../../src/events/event.js'
import { dataOf } from './consume.js'

describe('systemd config', () => {
  it('fills defaults: system bus, services only, noise excluded, no job events', () => {
    const r = parseSystemdConfig({})
    expect(Result.isSuccess(r)).toBe(true)
    if (!Result.isSuccess(r)) return
    expect(r.success.bus).toBe('system')
    expect(r.success.unitTypes).toEqual(['service'])
    expect(r.success.exclude).toContain('session-*.scope')
    expect(r.success.emitJobs).toBe(false)
  })

  it('names the offending path in errors', () => {
    const r = parseSystemdConfig({ unitTypes: ['service', 'bogus'], exclude: [''], emitJobs: 'yes' })
    expect(Result.isFailure(r)).toBe(true)
    if (!Result.isFailure(r)) return
    expect(r.failure.message).toContain('["unitTypes"][1]')
    expect(r.failure.message).toContain('["exclude"][0]')
    expect(r.failure.message).toContain('["emitJobs"]')
  })

  it('rejects unknown keys and non-D-Bus addresses', () => {
    const unknown = parseSystemdConfig({ MonitorSystem: true })
    expect(Result.isFailure(unknown) && unknown.failure.message).toContain('MonitorSystem')
    const addr = parseSystemdConfig({ address: '/run/dbus/system_bus_socket' })
    expect(Result.isFailure(addr) && addr.failure.message).toContain('["address"]')
  })

  it('resolves the address from config, then the D-Bus environment variables', () => {
    const session = parseSystemdConfig({ bus: 'session' })
    const system = parseSystemdConfig({})
    const explicit = parseSystemdConfig({ address: 'unix:path=/x/bus', bus: 'session' })
    if (!Result.isSuccess(session) || !Result.isSuccess(system) || !Result.isSuccess(explicit)) throw new Error('valid')
    expect(resolveBusAddress(system.success, {})).toBe('unix:path=/run/dbus/system_bus_socket')
    expect(resolveBusAddress(system.success, { DBUS_SYSTEM_BUS_ADDRESS: 'unix:path=/s' })).toBe('unix:path=/s')
    expect(resolveBusAddress(session.success, { XDG_RUNTIME_DIR: '/run/user/7' })).toBe('unix:path=/run/user/7/bus')
    expect(resolveBusAddress(session.success, { DBUS_SESSION_BUS_ADDRESS: 'unix:path=/b' })).toBe('unix:path=/b')
    expect(resolveBusAddress(explicit.success, { DBUS_SESSION_BUS_ADDRESS: 'unix:path=/b' })).toBe('unix:path=/x/bus')
  })
})

describe('unit filter', () => {
  it('matches globs like systemctl', () => {
    expect(globToRegExp('session-*.scope').test('session-12.scope')).toBe(true)
    expect(globToRegExp('a?c.service').test('abc.service')).toBe(true)
    expect(globToRegExp('a?c.service').test('abbc.service')).toBe(false)
    expect(globToRegExp('getty@tty[1-3].service').test('getty@tty2.service')).toBe(true)
    expect(globToRegExp('getty@tty[!1-3].service').test('getty@tty2.service')).toBe(false)
    expect(globToRegExp('x.service').test('x-service')).toBe(false)
  })

  it('applies types, include and exclude (exclude wins)', () => {
    const f = makeUnitFilter({ include: ['kube*', 'docker.service'], exclude: ['kube-noisy.service'], unitTypes: ['service', 'timer'] })
    expect(f('kubelet.service')).toBe(true)
    expect(f('kube-cleanup.timer')).toBe(true)
    expect(f('kube-proxy.socket')).toBe(false)
    expect(f('kube-noisy.service')).toBe(false)
    expect(f('sshd.service')).toBe(false)
  })
})

describe('unit object paths', () => {
  it('unescapes sd-bus labels', () => {
    expect(unitNameFromPath('/org/freedesktop/systemd1/unit/crash1_2eservice')).toBe('crash1.service')
    expect(unitNameFromPath('/org/freedesktop/systemd1/unit/getty_40tty1_2eservice')).toBe('getty@tty1.service')
    expect(unitNameFromPath('/org/freedesktop/systemd1/unit/bad_zz')).toBeUndefined()
    expect(unitNameFromPath('/org/freedesktop/systemd1/job/12')).toBeUndefined()
  })
})

/** Non-debug event types along a walk, carrying state the way the collector does. */
function walkTypes(walk: readonly UnitState[]): string[] {
  const types: string[] = []
  let prev = walk[0] as UnitState
  for (const next of walk.slice(1)) {
    const { events, emitted } = observeTransition('x.service', prev, next)
    for (const e of events) if (e.severity !== 'debug') types.push(e.type)
    prev = emitted
  }
  return types
}

describe('transitions', () => {
  const running: UnitState = { activeState: 'active', subState: 'running', result: 'success', nRestarts: 0, mainPid: 10 }

  it('turns the systemd 252 crash-loop walk into failed, restarted, started', () => {
    const walk: UnitState[] = [
      running,
      { activeState: 'failed', subState: 'failed', result: 'exit-code', nRestarts: 0, execMainCode: 1, execMainStatus: 3 },
      { activeState: 'activating', subState: 'auto-restart', result: 'exit-code', nRestarts: 0, execMainCode: 1, execMainStatus: 3 },
      { activeState: 'activating', subState: 'auto-restart', result: 'exit-code', nRestarts: 1, execMainCode: 1, execMainStatus: 3 },
      { activeState: 'inactive', subState: 'dead', result: 'success', nRestarts: 1 },
      { activeState: 'active', subState: 'running', result: 'success', nRestarts: 1, mainPid: 11 },
    ]
    expect(walkTypes(walk)).toEqual(['systemd.unit.failed', 'systemd.unit.restarted', 'systemd.unit.started'])
  })

  it('tells a stop while waiting in auto-restart from the restart itself', () => {
    const waiting: UnitState = { activeState: 'activating', subState: 'auto-restart', result: 'success', nRestarts: 2 }
    const dead: UnitState = { activeState: 'inactive', subState: 'dead', result: 'success', nRestarts: 2 }
    expect(walkTypes([{ ...running, nRestarts: 2 }, waiting, dead])).toEqual(['systemd.unit.stopped'])
  })

  it('reports a failure straight into auto-restart as failed with willRestart', () => {
    const [e] = transitionEvents('x.service', running, {
      activeState: 'activating',
      subState: 'auto-restart',
      result: 'signal',
      nRestarts: 0,
      execMainCode: 2,
      execMainStatus: 9,
    })
    expect(e?.type).toBe('systemd.unit.failed')
    expect(dataOf(e ?? { type: 'x' })).toMatchObject({ willRestart: true, exitCode: 'killed', exitStatus: 9 })
  })

  it('reports restarts missed while away as one restarted event with newRestarts', () => {
    const events = transitionEvents('x.service', running, { ...running, nRestarts: 4, mainPid: 99 }, { resync: true })
    expect(events.map((e) => e.type)).toEqual(['systemd.unit.restarted'])
    expect(dataOf(events[0] ?? { type: 'x' })).toMatchObject({ newRestarts: 4, restartCount: 4, resync: true })
  })

  it('reports reload, stop and nothing for an unchanged unit', () => {
    const reloading = { ...running, activeState: 'reloading', subState: 'reload' }
    expect(transitionEvents('x.service', reloading, running).map((e) => e.type)).toEqual(['systemd.unit.reloaded'])
    const stopped = transitionEvents('x.service', running, { activeState: 'inactive', subState: 'dead', result: 'success', nRestarts: 0 })
    expect(stopped.map((e) => [e.type, e.severity])).toEqual([['systemd.unit.stopped', 'info']])
    expect(transitionEvents('x.service', running, running)).toEqual([])
  })

  it('produces events that pass the registered data schemas', () => {
    const events = transitionEvents('x.service', running, { activeState: 'failed', subState: 'failed', result: 'exit-code', nRestarts: 2, execMainCode: 1, execMainStatus: 3 })
    for (const e of events) {
      const v = validateEvent(stampEvent({ ...e }, 'systemd'))
      expect(Result.isSuccess(v) ? 'valid' : String(v.failure)).toBe('valid')
    }
  })
})

describe('transition events, field by field', () => {
  const TS = '1700000000000000000'
  const running: UnitState = { activeState: 'active', subState: 'running', result: 'success', nRestarts: 0, mainPid: 10 }
  const one = (prev: UnitState, next: UnitState, opts: { resync?: boolean } = {}) => {
    const events = transitionEvents('web@1.service', prev, next, { ...opts, timestamp: TS })
    expect(events).toHaveLength(1)
    return events[0] as { type: string; severity: string; timestamp: string; entity: unknown; data: Record<string, unknown> }
  }

  it('an event names the unit, its type and both states; the old state only when it changed', () => {
    const e = one(running, { activeState: 'failed', subState: 'failed', result: 'exit-code', nRestarts: 0, execMainCode: 1, execMainStatus: 3 })
    expect(e).toEqual({
      type: 'systemd.unit.failed',
      severity: 'error',
      timestamp: TS,
      entity: { kind: 'systemd.unit', name: 'web@1.service' },
      data: {
        unit: 'web@1.service',
        unitType: 'service',
        activeState: 'failed',
        subState: 'failed',
        oldActiveState: 'active',
        oldSubState: 'running',
        result: 'exit-code',
        exitCode: 'exited',
        exitStatus: 3,
        restartCount: 0,
      },
    })
    // Only the sub-state changed: both old values are still given.
    expect(one(running, { ...running, subState: 'reloading-ish' }).data).toMatchObject({ oldActiveState: 'active', oldSubState: 'running' })
    // Only the active state changed: the same.
    expect(one(running, { ...running, activeState: 'deactivating' }).data).toMatchObject({ oldActiveState: 'active', oldSubState: 'running' })
    // Restarts counted without a state change: no old state.
    const [r] = transitionEvents('a.socket', running, { ...running, nRestarts: 1 }, { timestamp: TS })
    expect(r?.data).toEqual({ unit: 'a.socket', unitType: 'socket', activeState: 'active', subState: 'running', result: 'success', mainPid: 10, restartCount: 1, newRestarts: 1 })
  })

  it('leaves out what systemd did not send, a main pid of 0 and an exit code it does not know', () => {
    const bare = one({ activeState: 'inactive', subState: 'dead' }, { activeState: 'active', subState: 'running', mainPid: 0, execMainCode: 0 }).data
    expect(bare).toStrictEqual({ unit: 'web@1.service', unitType: 'service', activeState: 'active', subState: 'running', oldActiveState: 'inactive', oldSubState: 'dead' })
    expect(one(FRESH_UNIT, { activeState: 'active', subState: 'running', execMainCode: 7 }).data).not.toHaveProperty('exitCode')
  })

  it('names every waitid(2) exit code, the status defaulting to 0', () => {
    const names = [1, 2, 3, 4, 5, 6].map((code) => one(running, { activeState: 'inactive', subState: 'dead', execMainCode: code }).data)
    expect(names.map((d) => d.exitCode)).toEqual(['exited', 'killed', 'dumped', 'trapped', 'stopped', 'continued'])
    expect(names.every((d) => d.exitStatus === 0)).toBe(true)
  })

  it('marks resynced events', () => {
    expect(one(running, { ...running, activeState: 'deactivating', subState: 'stop' }, { resync: true }).data).toMatchObject({ resync: true })
    expect(one(running, { ...running, activeState: 'deactivating', subState: 'stop' }).data).not.toHaveProperty('resync')
  })

  it('counts restarts only when both counts are known and the count rose', () => {
    const state = (nRestarts?: number): UnitState => ({ ...running, ...(nRestarts === undefined ? { nRestarts: undefined } : { nRestarts }) })
    expect(transitionEvents('x.service', state(undefined), state(3))).toEqual([])
    expect(transitionEvents('x.service', state(3), state(undefined))).toEqual([])
    expect(transitionEvents('x.service', state(5), state(0))).toEqual([])
    const [e] = transitionEvents('x.service', state(1), state(3))
    expect(e).toMatchObject({ type: 'systemd.unit.restarted', severity: 'warning', data: { newRestarts: 2, restartCount: 3 } })
  })

  it('a unit that comes up with a restart counted reports the restart, not a start', () => {
    const events = transitionEvents('x.service', { activeState: 'inactive', subState: 'dead', nRestarts: 1 }, { ...running, nRestarts: 2 })
    expect(events.map((e) => e.type)).toEqual(['systemd.unit.restarted'])
  })

  it('entering auto-restart: failed when the result is a failure, a debug step after failed or on success', () => {
    const autoRestart = (result: string): UnitState => ({ activeState: 'activating', subState: 'auto-restart', result, nRestarts: 0 })
    expect(one(running, autoRestart('exit-code'))).toMatchObject({ type: 'systemd.unit.failed', severity: 'error', data: { willRestart: true } })
    const failed: UnitState = { activeState: 'failed', subState: 'failed', result: 'exit-code', nRestarts: 0 }
    expect(one(failed, autoRestart('exit-code'))).toMatchObject({ type: 'systemd.unit.state_changed', severity: 'debug', data: { willRestart: true } })
    expect(one(running, autoRestart('success'))).toMatchObject({ type: 'systemd.unit.state_changed', severity: 'debug', data: { willRestart: true } })
    expect(one(running, { activeState: 'activating', subState: 'auto-restart', nRestarts: 0 })).toMatchObject({ type: 'systemd.unit.state_changed' })
    // Already waiting in auto-restart: another step is no news.
    const later = one(autoRestart('exit-code'), { activeState: 'failed', subState: 'auto-restart', result: 'exit-code', nRestarts: 0 })
    expect(later).toMatchObject({ type: 'systemd.unit.failed' })
    const still = one({ ...autoRestart('exit-code'), activeState: 'deactivating' }, autoRestart('exit-code'))
    expect(still).toMatchObject({ type: 'systemd.unit.state_changed', severity: 'debug' })
    expect(still.data).not.toHaveProperty('willRestart')
  })

  it('remembers a restart counted in auto-restart until the unit leaves it', () => {
    const waiting: UnitState = { activeState: 'activating', subState: 'auto-restart', result: 'exit-code', nRestarts: 0 }
    const counted = observeTransition('x.service', waiting, { ...waiting, nRestarts: 1 })
    expect(counted.emitted.restartQueued).toBe(true)
    // Still waiting (another property changed): still queued.
    expect(observeTransition('x.service', counted.emitted, { ...waiting, activeState: 'deactivating', nRestarts: 1 }).emitted.restartQueued).toBe(true)
    // Entering auto-restart without a counted restart: not queued.
    expect(observeTransition('x.service', running, waiting).emitted.restartQueued).toBe(false)
    // Leaving auto-restart: no longer queued, and the inactive step is the restart's, not a stop.
    const dead = observeTransition('x.service', counted.emitted, { activeState: 'inactive', subState: 'dead', result: 'success', nRestarts: 1 })
    expect(dead.emitted.restartQueued).toBe(false)
    expect(dead.events.map((e) => [e.type, e.severity])).toEqual([['systemd.unit.state_changed', 'debug']])
    expect(dead.emitted).toMatchObject({ activeState: 'inactive', subState: 'dead', nRestarts: 1 })
  })

  it('reloaded and started at info; a reload that ends other than active is no reload', () => {
    const reloading: UnitState = { activeState: 'reloading', subState: 'reload' }
    expect(one(reloading, { activeState: 'active', subState: 'running' })).toMatchObject({ type: 'systemd.unit.reloaded', severity: 'info' })
    expect(one(reloading, { activeState: 'inactive', subState: 'dead' })).toMatchObject({ type: 'systemd.unit.stopped', severity: 'info' })
    expect(one(reloading, { activeState: 'deactivating', subState: 'stop' })).toMatchObject({ type: 'systemd.unit.state_changed' })
    expect(one(FRESH_UNIT, { activeState: 'active', subState: 'running' })).toMatchObject({ type: 'systemd.unit.started', severity: 'info' })
  })

  it('failed to failed, and a stop with a failed result', () => {
    const failed: UnitState = { activeState: 'failed', subState: 'failed', result: 'exit-code' }
    expect(one(failed, { ...failed, subState: 'other' })).toMatchObject({ type: 'systemd.unit.state_changed', severity: 'debug' })
    expect(one(running, { activeState: 'inactive', subState: 'dead', result: 'timeout' })).toMatchObject({ type: 'systemd.unit.stopped', severity: 'warning' })
    expect(one({ activeState: 'inactive', subState: 'dead' }, { activeState: 'inactive', subState: 'other' })).toMatchObject({ type: 'systemd.unit.state_changed' })
    expect(one({ activeState: 'active', subState: 'exited' }, running)).toMatchObject({ type: 'systemd.unit.state_changed' })
    expect(one({ activeState: 'reloading', subState: 'reload' }, { activeState: 'failed', subState: 'failed' })).toMatchObject({ type: 'systemd.unit.failed' })
  })

  it('stamps the current time when none is given', () => {
    const [e] = transitionEvents('x.service', running, FRESH_UNIT)
    expect(e?.timestamp).toMatch(/^\d+$/)
    // Epoch nanoseconds (the event clock is not Date.now, so compare to the second).
    expect(Math.abs(Number(BigInt(e?.timestamp ?? '0') / 1_000_000_000n) - Date.now() / 1000)).toBeLessThan(60)
  })
})

describe('presence and job events', () => {
  it('a unit added or removed, with its state when known, resync when from a snapshot', () => {
    const added = presenceEvent('added', 'db.service', { activeState: 'active', subState: 'running' }, true)
    expect(added).toMatchObject({
      type: 'systemd.unit.added',
      severity: 'debug',
      entity: { kind: 'systemd.unit', name: 'db.service' },
      data: { unit: 'db.service', unitType: 'service', activeState: 'active', subState: 'running', resync: true },
    })
    expect(typeof added.timestamp).toBe('string')
    expect(presenceEvent('removed', 'x.timer', undefined, false)).toMatchObject({
      type: 'systemd.unit.removed',
      data: { unit: 'x.timer', unitType: 'timer' },
    })
    expect(presenceEvent('removed', 'x.timer', undefined, false).data).toEqual({ unit: 'x.timer', unitType: 'timer' })
  })

  it('a job: new at debug; removed at the severity its result calls for', () => {
    const made = jobEvent('new', 7, 'db.service')
    expect(made).toMatchObject({ type: 'systemd.job.new', severity: 'debug', entity: { kind: 'systemd.unit', name: 'db.service' } })
    expect(made.data).toStrictEqual({ jobId: 7, unit: 'db.service', unitType: 'service' })
    expect(typeof made.timestamp).toBe('string')
    const severities = Object.fromEntries(
      ['done', 'skipped', 'canceled', 'timeout', 'failed', 'dependency', 'invalid', 'assert', 'unsupported', 'collected', 'once', 'new-in-systemd-300'].map((r) => [
        r,
        jobEvent('removed', 1, 'a.service', r).severity,
      ]),
    )
    expect(severities).toEqual({
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
      'new-in-systemd-300': 'warning',
    })
    expect(jobEvent('removed', 2, 'a.service', 'done')).toMatchObject({ type: 'systemd.job.removed', data: { jobId: 2, result: 'done' } })
    expect(jobEvent('removed', 2, 'a.service').severity).toBe('warning')
  })
})

/**
 * The Service-interface values systemd 252 sends for a Restart=always unit whose main process
 * (pid 29434) runs, then exits 3 (recorded from a real user manager; the Unit signal follows each).
 */
const RUNNING_29434 = { MainPID: 29434, ExecMainPID: 29434, Result: 'success', NRestarts: 0, ExecMainCode: 0, ExecMainStatus: 0, ExecMainStartTimestamp: 1795991817770133n, ExecMainExitTimestamp: 0n }
const EXITED_29434 = { ...RUNNING_29434, MainPID: 0, Result: 'exit-code', ExecMainCode: 1, ExecMainStatus: 3, ExecMainExitTimestamp: 1795991818076969n }

function serviceProps(values: Record<string, unknown>) {
  const r = decode(ServicePropsSchema, values)
  if (Result.isFailure(r)) throw new Error(r.failure)
  return r.success
}

describe('main process data', () => {
  it('names the main process on the failure although MainPID is already 0, with its exit and times', () => {
    const table = new UnitTable()
    table.applySnapshot(new Map([['loop.service', { activeState: 'inactive', subState: 'dead' }]]))
    table.serviceChanged('loop.service', serviceProps(RUNNING_29434))
    const [started] = table.unitChanged('loop.service', { ActiveState: 'active', SubState: 'running' })
    expect(started?.type).toBe('systemd.unit.started')
    expect(dataOf(started ?? { type: 'x' })).toMatchObject({ mainPid: 29434, mainStartedAt: '1795991817770133000' })
    expect(dataOf(started ?? { type: 'x' }).mainExitedAt).toBeUndefined()

    table.serviceChanged('loop.service', serviceProps(EXITED_29434))
    const [failed] = table.unitChanged('loop.service', { ActiveState: 'failed', SubState: 'failed' })
    expect(failed?.type).toBe('systemd.unit.failed')
    expect(dataOf(failed ?? { type: 'x' })).toMatchObject({
      mainPid: 29434,
      exitCode: 'exited',
      exitStatus: 3,
      mainStartedAt: '1795991817770133000',
      mainExitedAt: '1795991818076969000',
    })
    const v = validateEvent(stampEvent({ ...(failed ?? { type: 'x' }) }, 'systemd'))
    expect(Result.isSuccess(v) ? 'valid' : String(v.failure)).toBe('valid')
  })

  it('keeps the last main pid when systemd reports neither MainPID nor ExecMainPID any more', () => {
    const table = new UnitTable()
    table.applySnapshot(new Map([['x.service', { activeState: 'inactive', subState: 'dead' }]]))
    table.serviceChanged('x.service', serviceProps({ MainPID: 77 }))
    table.unitChanged('x.service', { ActiveState: 'active', SubState: 'running' })
    table.serviceChanged('x.service', serviceProps({ MainPID: 0, ExecMainPID: 0, Result: 'signal', ExecMainCode: 2, ExecMainStatus: 9 }))
    const [failed] = table.unitChanged('x.service', { ActiveState: 'failed', SubState: 'failed' })
    expect(dataOf(failed ?? { type: 'x' })).toMatchObject({ mainPid: 77, exitCode: 'killed', exitStatus: 9 })
  })

  it('clears the exit time when the next run starts, and names the new process', () => {
    const table = new UnitTable()
    table.applySnapshot(new Map([['loop.service', { activeState: 'failed', subState: 'failed' }]]))
    table.serviceChanged('loop.service', serviceProps(EXITED_29434))
    table.unitChanged('loop.service', { ActiveState: 'failed', SubState: 'failed' })
    table.serviceChanged('loop.service', serviceProps({ ...RUNNING_29434, MainPID: 29438, ExecMainPID: 29438, ExecMainStartTimestamp: 1795991818382919n }))
    const [started] = table.unitChanged('loop.service', { ActiveState: 'active', SubState: 'running' })
    const d = dataOf(started ?? { type: 'x' })
    expect(d).toMatchObject({ mainPid: 29438, mainStartedAt: '1795991818382919000' })
    expect(d.mainExitedAt).toBeUndefined()
    expect(d.exitCode).toBeUndefined()
  })

  it('rejects main-process values of the wrong D-Bus type, naming the property', () => {
    const wrongStamp = decode(ServicePropsSchema, { ExecMainExitTimestamp: 1795991818076969 })
    expect(Result.isFailure(wrongStamp) && wrongStamp.failure).toContain('ExecMainExitTimestamp')
    const negativePid = decode(ServicePropsSchema, { ExecMainPID: -1 })
    expect(Result.isFailure(negativePid) && negativePid.failure).toContain('ExecMainPID')
  })
})
