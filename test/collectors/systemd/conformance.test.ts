import fc from 'fast-check'
import { afterAll, beforeAll, describe, it } from 'vitest'
import { DEFAULT_SYSTEMD_EXCLUDE, systemdCollectorFactory } from '../../../src/collectors/systemd/index.js'
import type { Collector } from '../../../src/core/collector.js'
import { conformanceCases, lifecycleProperty } from '../../../src/testing/index.js'
import { type UserManager, startUserManager } from './user-manager.js'

let um: UserManager
let factory: () => Collector
beforeAll(async () => {
  um = await startUserManager()
  factory = systemdCollectorFactory({ address: um.busAddress, emitJobs: true, exclude: [...DEFAULT_SYSTEMD_EXCLUDE] })
})
afterAll(async () => {
  await um?.stop()
})

let units = 0
// A real systemd --user on its own bus: a transient unit makes the collector produce; killing
// the bus daemon makes its source fail (the last case, so nothing after it needs the bus).
const subject = {
  name: 'systemd',
  factory: () => factory(),
  produce: async () => {
    const r = await um.systemdRun([`--unit=kit-${units++}.service`, '/bin/true'])
    if (r.code !== 0) throw new Error(`systemd-run failed (${r.code}): ${r.stderr}`)
  },
  fail: () => um.killBus(),
}

describe('systemd collector: the collector contract (tapio-collector-manager/testing)', () => {
  it('answers random start/stop/events/abort sequences as the contract says', async () => {
    await fc.assert(lifecycleProperty(subject, 6), { numRuns: 8 })
  })

  for (const c of conformanceCases(subject)) it(c.name, c.run)
})
