/**
 * Malformed bodies from the owner of org.freedesktop.systemd1 are counted and skipped, and the
 * collector keeps going. A real systemd never sends them, so a stand-in owns the name here on a
 * real dbus-daemon.
 */
import { Variant } from 'dbus-next'
import { afterAll, beforeAll, expect, it } from 'vitest'
import { SystemdCollector } from '../../../src/collectors/systemd/index.js'
import { consume, dataOf, forUnit } from './consume.js'
import { FAKE_UNIT_PATH, type FakeSystemd, startFakeSystemd } from './fake-systemd.js'
import { waitFor } from './user-manager.js'

let fake: FakeSystemd

beforeAll(async () => {
  fake = await startFakeSystemd()
})

afterAll(async () => {
  await fake?.stop()
})

it('counts and skips malformed signals, then keeps reporting', async () => {
  const c = new SystemdCollector({ address: fake.busAddress, emitJobs: true })
  try {
    await c.start(new AbortController().signal)
    const run = consume(c)
    const manager = ['/org/freedesktop/systemd1', 'org.freedesktop.systemd1.Manager'] as const
    // Wrong arity, wrong types, a state that is not a string, an unknown member.
    fake.emit(...manager, 'JobRemoved', 'us', [5, 'demo.service'])
    fake.emit(...manager, 'UnitNew', 'uu', [1, 2])
    fake.emit(FAKE_UNIT_PATH, 'org.freedesktop.DBus.Properties', 'PropertiesChanged', 'sa{sv}as', [
      'org.freedesktop.systemd1.Unit',
      { ActiveState: new Variant('u', 7) },
      [],
    ])
    fake.emit(...manager, 'SomethingNew', 's', ['x'])
    // Then a good one: the unit fails.
    fake.emit(FAKE_UNIT_PATH, 'org.freedesktop.DBus.Properties', 'PropertiesChanged', 'sa{sv}as', [
      'org.freedesktop.systemd1.Service',
      { Result: new Variant('s', 'exit-code'), ExecMainCode: new Variant('i', 1), ExecMainStatus: new Variant('i', 2), MainPID: new Variant('u', 0) },
      [],
    ])
    fake.emit(FAKE_UNIT_PATH, 'org.freedesktop.DBus.Properties', 'PropertiesChanged', 'sa{sv}as', [
      'org.freedesktop.systemd1.Unit',
      { ActiveState: new Variant('s', 'failed'), SubState: new Variant('s', 'failed') },
      [],
    ])
    const failed = await waitFor('the failure of demo.service', () => forUnit(run.events, 'demo.service', 'systemd.unit.failed')[0])
    expect(dataOf(failed)).toMatchObject({ oldActiveState: 'active', activeState: 'failed', exitStatus: 2, result: 'exit-code' })
    expect(c.statistics().counters).toMatchObject({ malformedMessages: 3, unexpectedMessages: 1 })
    expect(String(c.health().details?.lastMalformed)).toContain('ActiveState')
    expect(run.events.map((e) => e.type)).toEqual(['systemd.unit.failed'])
    expect(c.health().status).toBe('ok')
  } finally {
    await c.stop()
  }
})
