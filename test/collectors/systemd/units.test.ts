import { Result } from 'effect'
import { describe, expect, it } from 'vitest'
import { globToRegExp, makeUnitFilter, parseSystemdConfig, resolveBusAddress } from '../../../src/collectors/systemd/index.js'
import { ServicePropsSchema, decode, unitNameFromPath } from '../../../src/collectors/systemd/messages.js'
import { UnitTable } from '../../../src/collectors/systemd/table.js'
import { type UnitState, observeTransition, transitionEvents } from '../../../src/collectors/systemd/units.js'
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
