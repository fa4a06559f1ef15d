/** The unit table on its own: snapshots, signals and unloads in, events out (no bus). */
import { describe, expect, it } from 'vitest'
import { UnitTable, withServiceProps } from '../../../src/collectors/systemd/table.js'
import type { UnitState } from '../../../src/collectors/systemd/units.js'
import type { EventInput } from '../../../src/events/event.js'

const running: UnitState = { activeState: 'active', subState: 'running', result: 'success', nRestarts: 0 }
const dead: UnitState = { activeState: 'inactive', subState: 'dead', result: 'success', nRestarts: 0 }

const kinds = (events: readonly EventInput[]) => events.map((e) => `${e.type.replace('systemd.unit.', '')} ${(e.data as { unit: string }).unit}`)
const snapshot = (entries: [string, UnitState][]) => new Map(entries)

describe('UnitTable', () => {
  it('the first snapshot is the baseline; later ones report what was added, changed and removed, marked resync', () => {
    const t = new UnitTable()
    expect(t.applySnapshot(snapshot([['a.service', running], ['b.service', running], ['c.service', dead]]))).toEqual([])
    expect(t.size).toBe(3)
    const events = t.applySnapshot(snapshot([['a.service', running], ['b.service', dead], ['d.service', running]]))
    expect(kinds(events)).toEqual(['stopped b.service', 'added d.service', 'started d.service', 'removed c.service'])
    expect(events.every((e) => (e.data as { resync?: boolean }).resync === true)).toBe(true)
    expect(events.find((e) => e.type === 'systemd.unit.removed')?.data).toMatchObject({ activeState: 'inactive', subState: 'dead' })
    expect(t.size).toBe(3)
    // Nothing changed: nothing to say.
    expect(t.applySnapshot(snapshot([['a.service', running], ['b.service', dead], ['d.service', running]]))).toEqual([])
  })

  it('an empty first snapshot is a baseline too', () => {
    const t = new UnitTable()
    expect(t.applySnapshot(new Map())).toEqual([])
    expect(kinds(t.applySnapshot(snapshot([['a.service', dead]])))).toEqual(['added a.service'])
  })

  it('transitions after a snapshot are computed against what was last reported', () => {
    const t = new UnitTable()
    t.applySnapshot(snapshot([['a.service', running]]))
    expect(kinds(t.unitChanged('a.service', { ActiveState: 'failed', SubState: 'failed' }))).toEqual(['failed a.service'])
    // The same values again (another property changed): no news.
    expect(t.unitChanged('a.service', { ActiveState: 'failed' })).toEqual([])
    expect(kinds(t.applySnapshot(snapshot([['a.service', { ...running, activeState: 'failed', subState: 'failed' }]])))).toEqual([])
  })

  it('service properties are folded in and seen by the Unit signal that follows', () => {
    const t = new UnitTable()
    t.applySnapshot(snapshot([['a.service', running]]))
    t.serviceChanged('a.service', { Result: 'exit-code', ExecMainCode: 1, ExecMainStatus: 2, MainPID: 0 })
    const [failed] = t.unitChanged('a.service', { ActiveState: 'failed', SubState: 'failed' })
    expect(failed?.data).toMatchObject({ result: 'exit-code', exitCode: 'exited', exitStatus: 2 })
    t.serviceChanged('a.service', { NRestarts: 1 })
    expect(kinds(t.unitChanged('a.service', {}))).toEqual(['restarted a.service'])
  })

  it('a unit first heard of in a signal starts from the fresh unit state', () => {
    const t = new UnitTable()
    t.applySnapshot(new Map())
    expect(kinds(t.unitChanged('new.service', { ActiveState: 'active', SubState: 'running' }))).toEqual(['started new.service'])
    t.serviceChanged('other.service', { NRestarts: 0 })
    expect(t.size).toBe(2)
    expect(kinds(t.unitChanged('other.service', { SubState: 'dead' }))).toEqual([])
  })

  it('UnitNew: added once, as a fresh unit; a known unit is no news', () => {
    const t = new UnitTable()
    t.applySnapshot(snapshot([['a.service', running]]))
    const added = t.loaded('n.service')
    expect(kinds(added)).toEqual(['added n.service'])
    expect(added[0]?.data).toEqual({ unit: 'n.service', unitType: 'service' })
    expect(t.loaded('n.service')).toEqual([])
    expect(t.loaded('a.service')).toEqual([])
    expect(kinds(t.unitChanged('n.service', { ActiveState: 'active', SubState: 'running' }))).toEqual(['started n.service'])
  })

  it('UnitRemoved of an inactive unit is reported; of an active one (the manager going away) it is quiet', () => {
    const t = new UnitTable()
    t.applySnapshot(snapshot([['gone.service', dead], ['up.service', running]]))
    const gone = t.unloaded('gone.service')
    expect(gone.quiet).toBe(false)
    expect(kinds(gone.events)).toEqual(['removed gone.service'])
    expect(gone.events[0]?.data).toEqual({ unit: 'gone.service', unitType: 'service', activeState: 'inactive', subState: 'dead' })
    expect(t.unloaded('up.service')).toEqual({ events: [], quiet: true })
    expect(t.size).toBe(0)
    const unknown = t.unloaded('never.service')
    expect(unknown.quiet).toBe(false)
    expect(unknown.events[0]?.data).toEqual({ unit: 'never.service', unitType: 'service' })
  })

  it('units unloaded since the last snapshot that come back unchanged are not news; changed ones are', () => {
    const t = new UnitTable()
    t.applySnapshot(snapshot([['a.service', running], ['b.service', running], ['c.service', running]]))
    t.unloaded('a.service')
    t.unloaded('b.service')
    t.unloaded('c.service')
    const events = t.applySnapshot(snapshot([['a.service', running], ['b.service', dead]]))
    expect(kinds(events)).toEqual(['stopped b.service'])
    // The remembered states are forgotten once a snapshot has compared against them.
    t.unloaded('a.service')
    t.applySnapshot(new Map())
    expect(kinds(t.applySnapshot(snapshot([['a.service', running]])))).toEqual(['added a.service', 'started a.service'])
  })

  it('a unit unloaded, loaded and unloaded again is remembered by its last state', () => {
    const t = new UnitTable()
    t.applySnapshot(snapshot([['a.service', running]]))
    t.unloaded('a.service')
    expect(kinds(t.loaded('a.service'))).toEqual(['added a.service'])
    t.unitChanged('a.service', { ActiveState: 'active', SubState: 'running' })
    t.unloaded('a.service')
    expect(t.applySnapshot(snapshot([['a.service', { ...running, result: undefined, nRestarts: 0 }]]))).toEqual([])
  })

  it('remembers at most 4096 unloaded units, forgetting the oldest first', () => {
    const t = new UnitTable()
    const names = Array.from({ length: 4098 }, (_, i) => `u${i}.service`)
    t.applySnapshot(snapshot(names.map((n) => [n, running])))
    for (const n of names) t.unloaded(n)
    // Re-unloading refreshes: u1 becomes the newest.
    t.loaded('u1.service')
    t.unitChanged('u1.service', { ActiveState: 'active', SubState: 'running' })
    t.unloaded('u1.service')
    const events = t.applySnapshot(snapshot(names.map((n) => [n, running])))
    // 4098 remembered, bound 4096: u0 and u2 (the oldest after u1 was refreshed) are news again.
    expect(kinds(events.filter((e) => e.type === 'systemd.unit.added'))).toEqual(['added u0.service', 'added u2.service'])
  })
})

describe('withServiceProps', () => {
  it('overrides only the properties sent', () => {
    const base: UnitState = { activeState: 'active', subState: 'running', result: 'success', nRestarts: 1, mainPid: 5, execMainCode: 1, execMainStatus: 0 }
    expect(withServiceProps(base, {})).toStrictEqual(base)
    expect(withServiceProps(base, { Result: 'timeout', NRestarts: 2, MainPID: 0, ExecMainCode: 2, ExecMainStatus: 9 })).toEqual({
      activeState: 'active',
      subState: 'running',
      result: 'timeout',
      nRestarts: 2,
      mainPid: 0,
      execMainCode: 2,
      execMainStatus: 9,
    })
    expect(withServiceProps({ activeState: 'inactive', subState: 'dead' }, {})).toStrictEqual({ activeState: 'inactive', subState: 'dead' })
    // Main-process times stay until a signal that carries them says otherwise.
    const started = withServiceProps(base, { ExecMainStartTimestamp: 5n, ExecMainExitTimestamp: 7n })
    expect(withServiceProps(started, { NRestarts: 3 })).toMatchObject({ execMainStartedAt: '5000', execMainExitedAt: '7000' })
    expect(withServiceProps(started, { ExecMainStartTimestamp: 0n, ExecMainExitTimestamp: 0n })).toStrictEqual({ ...base, execMainStartedAt: undefined, execMainExitedAt: undefined })
  })
})
