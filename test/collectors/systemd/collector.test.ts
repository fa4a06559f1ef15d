/**
 * Against a real systemd --user and its real bus (see user-manager.ts). Transient units created
 * with systemd-run --user; the bus daemon is killed and started again mid-run.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Message, sessionBus } from 'dbus-next'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { DEFAULT_SYSTEMD_EXCLUDE, SystemdCollector, detectSystemd } from '../../../src/collectors/systemd/index.js'
import type { EventInput } from '../../../src/events/event.js'
import { type Consumption, consume, dataOf, forUnit } from './consume.js'
import { type UserManager, startUserManager, waitFor } from './user-manager.js'

let um: UserManager
const units: string[] = []

beforeAll(async () => {
  um = await startUserManager()
})

afterAll(async () => {
  if (!um) return
  for (const u of units) await um.systemctl(['stop', u])
  await um.stop()
})

async function runUnit(name: string, args: readonly string[]): Promise<void> {
  units.push(name)
  const r = await um.systemdRun([`--unit=${name}`, ...args])
  if (r.code !== 0) throw new Error(`systemd-run ${name} failed (${r.code}): ${r.stderr}`)
}

function newCollector(extra: Record<string, unknown> = {}): SystemdCollector {
  return new SystemdCollector({ address: um.busAddress, emitJobs: true, exclude: [...DEFAULT_SYSTEMD_EXCLUDE, 'ignored-*'], ...extra })
}

const types = (events: readonly EventInput[]): string[] => events.map((e) => e.type)

describe('detectSystemd', () => {
  it('is supported where org.freedesktop.systemd1 answers', async () => {
    const d = await detectSystemd({ address: um.busAddress })
    expect(d.reason).toMatch(/^systemd 252|^systemd \d+/)
    expect(d.supported).toBe(true)
  })

  it('names the missing socket', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'tapio-nobus-'))
    const saved = process.env.DBUS_SYSTEM_BUS_ADDRESS
    try {
      process.env.DBUS_SYSTEM_BUS_ADDRESS = `unix:path=${dir}/system_bus_socket`
      expect(await detectSystemd()).toEqual({ supported: false, reason: `no system bus at ${dir}/system_bus_socket` })
      expect(await detectSystemd({ address: `unix:path=${dir}/bus` })).toEqual({ supported: false, reason: `no bus at ${dir}/bus` })
    } finally {
      if (saved === undefined) delete process.env.DBUS_SYSTEM_BUS_ADDRESS
      else process.env.DBUS_SYSTEM_BUS_ADDRESS = saved
      await rm(dir, { recursive: true, force: true })
    }
  })

  it('explains that abstract sockets cannot be used', async () => {
    const d = await detectSystemd({ address: 'unix:abstract=/tmp/dbus-x' })
    expect(d.supported).toBe(false)
    expect(d.reason).toContain('abstract')
  })
})

describe('lifecycle', () => {
  it('start() fails with a clear reason where nothing listens', async () => {
    const c = new SystemdCollector({ address: `unix:path=${um.runtimeDir}/no-such-bus` })
    await expect(c.start(new AbortController().signal)).rejects.toThrow(`no bus at ${um.runtimeDir}/no-such-bus`)
    expect(c.health()).toMatchObject({ status: 'recoverable_error' })
    await c.stop()
  })
})

describe('unit and job events from a real systemd --user', () => {
  let c: SystemdCollector
  let run: Consumption

  beforeAll(async () => {
    // A unit that stays up across the bus outage and must not be reported again afterwards.
    await runUnit('steady.service', ['/bin/sleep', '600'])
    c = newCollector()
    await c.start(new AbortController().signal)
    run = consume(c)
  })

  afterAll(async () => {
    await c?.stop()
  })

  it('reports a unit that starts and stops, with its jobs', async () => {
    await runUnit('short.service', ['/bin/sleep', '1'])
    await waitFor('short.service to stop', () => forUnit(run.events, 'short.service', 'systemd.unit.stopped')[0])
    const ev = forUnit(run.events, 'short.service').filter((e) => e.severity !== 'debug')
    expect(types(ev)).toEqual(['systemd.unit.started', 'systemd.job.removed', 'systemd.unit.stopped'])
    const stopped = dataOf(forUnit(run.events, 'short.service', 'systemd.unit.stopped')[0] as EventInput)
    expect(stopped).toMatchObject({ unitType: 'service', oldActiveState: 'active', activeState: 'inactive', result: 'success', exitCode: 'exited', exitStatus: 0 })
    const job = dataOf(forUnit(run.events, 'short.service', 'systemd.job.removed')[0] as EventInput)
    expect(job.result).toBe('done')
    expect(forUnit(run.events, 'short.service', 'systemd.job.new')).toHaveLength(1)
  })

  it('reports a unit that exits 3 as failed with exit status 3', async () => {
    await runUnit('exit3.service', ['/bin/sh', '-c', 'exit 3'])
    const failed = await waitFor('exit3.service to fail', () => forUnit(run.events, 'exit3.service', 'systemd.unit.failed')[0])
    expect(failed.severity).toBe('error')
    expect(failed.entity).toEqual({ kind: 'systemd.unit', name: 'exit3.service' })
    expect(dataOf(failed)).toMatchObject({ activeState: 'failed', result: 'exit-code', exitCode: 'exited', exitStatus: 3, restartCount: 0 })
    // MainPID is already 0 when the unit turns failed; the event names the process from ExecMainPID.
    expect(dataOf(failed).mainPid).toBe(Number((await um.show('exit3.service', ['ExecMainPID'])).ExecMainPID))
  })

  it('names the main process it saw running on the failure, with its exit status and times', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'tapio-mainpid-'))
    try {
      // The process waits for our go, so its pid is read while it runs, not raced.
      await runUnit('held.service', ['/bin/sh', '-c', `while [ ! -e ${dir}/go ]; do sleep 0.05; done; exit 3`])
      const started = await waitFor('held.service to start', () => forUnit(run.events, 'held.service', 'systemd.unit.started')[0])
      const pid = Number((await um.show('held.service', ['MainPID'])).MainPID)
      expect(pid).toBeGreaterThan(0)
      expect(dataOf(started).mainPid).toBe(pid)
      await writeFile(join(dir, 'go'), '')
      const failed = await waitFor('held.service to fail', () => forUnit(run.events, 'held.service', 'systemd.unit.failed')[0])
      expect((await um.show('held.service', ['MainPID'])).MainPID).toBe('0')
      const d = dataOf(failed)
      expect(d).toMatchObject({ mainPid: pid, exitCode: 'exited', exitStatus: 3, result: 'exit-code', mainStartedAt: dataOf(started).mainStartedAt })
      const startedAt = BigInt(String(d.mainStartedAt))
      const exitedAt = BigInt(String(d.mainExitedAt))
      expect(exitedAt > startedAt).toBe(true)
      // systemd's wall clock and ours: the exit was seen before we received the signal about it.
      expect(exitedAt <= BigInt(failed.timestamp ?? '0') + 1_000_000_000n).toBe(true)
    } finally {
      await rm(dir, { recursive: true, force: true })
    }
  })

  it('reports a crash loop as repeated failed and restarted events with a rising restart count', async () => {
    await runUnit('loop.service', ['-p', 'Restart=on-failure', '-p', 'RestartSec=100ms', '-p', 'StartLimitIntervalSec=0', '/bin/sh', '-c', 'exit 4'])
    await waitFor('three restarts of loop.service', () => forUnit(run.events, 'loop.service', 'systemd.unit.restarted').length >= 3 || undefined)
    await um.systemctl(['stop', 'loop.service'])
    const restarted = forUnit(run.events, 'loop.service', 'systemd.unit.restarted').map(dataOf)
    const counts = restarted.map((d) => d.restartCount as number)
    expect(counts.slice(0, 3)).toEqual([1, 2, 3])
    expect(restarted.every((d) => d.newRestarts === 1 && d.exitStatus === 4)).toBe(true)
    const failed = forUnit(run.events, 'loop.service', 'systemd.unit.failed').map(dataOf)
    expect(failed.length).toBeGreaterThanOrEqual(3)
    expect(failed.slice(0, 3).map((d) => d.restartCount)).toEqual([0, 1, 2])
    expect(failed.every((d) => d.exitStatus === 4 && d.result === 'exit-code')).toBe(true)
  })

  it('ignores units excluded by config', async () => {
    await runUnit('ignored-one.service', ['/bin/true'])
    // Signals arrive in order: once the marker is seen, anything about the ignored unit would be too.
    await runUnit('marker.service', ['/bin/true'])
    await waitFor('marker.service to stop', () => forUnit(run.events, 'marker.service', 'systemd.unit.stopped')[0])
    expect(forUnit(run.events, 'ignored-one.service')).toEqual([])
    expect(run.events.some((e) => JSON.stringify(e).includes('ignored-one'))).toBe(false)
    expect(c.statistics().counters.filteredSignals).toBeGreaterThan(0)
  })

  it('counts and skips a signal that does not come from systemd', async () => {
    const uniqueName = c.health().details?.uniqueName
    expect(typeof uniqueName).toBe('string')
    const before = c.statistics().counters.unexpectedMessages ?? 0
    const spoofer = sessionBus({ busAddress: um.busAddress })
    try {
      await new Promise<void>((resolve, reject) => {
        spoofer.once('connect', () => resolve())
        spoofer.once('error', reject)
      })
      const msg = Message.newSignal('/org/freedesktop/systemd1', 'org.freedesktop.systemd1.Manager', 'JobRemoved', 'uoss', [
        7,
        '/org/freedesktop/systemd1/job/7',
        'spoofed.service',
        'failed',
      ])
      msg.destination = String(uniqueName)
      spoofer.send(msg)
      await waitFor('the spoofed signal to be counted', () => (c.statistics().counters.unexpectedMessages ?? 0) > before || undefined)
    } finally {
      spoofer.disconnect()
    }
    expect(run.events.some((e) => JSON.stringify(e).includes('spoofed'))).toBe(false)
  })

  it('fails when the bus daemon dies, and a new start resyncs without duplicates', async () => {
    // Restarts while the bus is away must show up after the reconnect.
    await runUnit('away-loop.service', ['-p', 'Restart=always', '-p', 'RestartSec=300ms', '-p', 'StartLimitIntervalSec=0', '/bin/sleep', '0.3'])
    await waitFor('away-loop.service to restart once', () => forUnit(run.events, 'away-loop.service', 'systemd.unit.restarted')[0])
    await runUnit('going.service', ['/bin/sleep', '600'])
    await waitFor('going.service to start', () => forUnit(run.events, 'going.service', 'systemd.unit.started')[0])

    await um.killBus()
    const error = await run.done
    expect(error?.message).toMatch(/systemd collector failed: .*(closed|failed)/)
    expect(c.health().status).toBe('recoverable_error')
    const seenBefore = run.events.length
    const restartsBefore = Number((await um.show('away-loop.service', ['NRestarts'])).NRestarts)

    // While the bus is away: the manager keeps working (systemctl uses its private socket).
    await um.systemctl(['stop', 'going.service'])
    await waitFor('away-loop.service to restart while the bus is down', async () =>
      Number((await um.show('away-loop.service', ['NRestarts'])).NRestarts) > restartsBefore || undefined,
    )

    // What the supervisor does: stop, then start again with backoff until it works.
    await c.stop()
    await expect(c.start(new AbortController().signal)).rejects.toThrow(/cannot start/)
    await um.restartBus()
    let attempts = 1
    for (;;) {
      try {
        await c.start(new AbortController().signal)
        break
      } catch (err) {
        attempts += 1
        if (attempts > 30) throw err
        await c.stop()
        await new Promise((r) => setTimeout(r, 200 * Math.min(attempts, 5)))
      }
    }
    const after = consume(c)
    await runUnit('after.service', ['/bin/sleep', '0.2'])
    await waitFor('after.service to stop', () => forUnit(after.events, 'after.service', 'systemd.unit.stopped')[0])

    const resync = after.events.filter((e) => dataOf(e).resync === true)
    // going.service was stopped (and unloaded) while away.
    expect(resync.some((e) => dataOf(e).unit === 'going.service' && ['systemd.unit.stopped', 'systemd.unit.removed'].includes(e.type))).toBe(true)
    const missed = forUnit(resync, 'away-loop.service', 'systemd.unit.restarted').map(dataOf)
    expect(missed).toHaveLength(1)
    expect(missed[0]?.newRestarts as number).toBeGreaterThanOrEqual(1)
    // Nothing changed for steady.service: no event about it, before or after.
    expect(forUnit(after.events, 'steady.service')).toEqual([])
    // No flood: the resync is a handful of differences, not the unit table again.
    expect(resync.length).toBeLessThanOrEqual(6)
    expect(seenBefore).toBeGreaterThan(0)
    expect(c.statistics().counters).toMatchObject({ connectionLosses: 1, snapshots: 2 })
    expect(c.health().status).toBe('ok')

    // Keep the next test deterministic: nothing may change while the manager re-executes.
    await um.systemctl(['stop', 'away-loop.service'])
    await waitFor('away-loop.service to stop', () => forUnit(after.events, 'away-loop.service', 'systemd.unit.stopped')[0] ?? forUnit(after.events, 'away-loop.service', 'systemd.unit.removed')[0])
    await c.stop()
    expect(await after.done).toBeUndefined()
  })

  it('fails when the manager re-executes (new bus connection), and resumes on the next start', async () => {
    await c.start(new AbortController().signal)
    const before = consume(c)
    const r = await um.systemctl(['daemon-reexec'])
    expect(r.code).toBe(0)
    const error = await before.done
    expect(error?.message).toMatch(/org\.freedesktop\.systemd1 (left the bus|moved to a new connection)/)
    // The manager sends UnitRemoved for every unit as it re-executes: not reported as removals.
    expect(forUnit(before.events, 'steady.service')).toEqual([])
    // Started again without a stop() in between: the collector releases the failed run itself.
    await waitFor('a start after the re-exec', async () => {
      try {
        await c.start(new AbortController().signal)
        return true
      } catch {
        return undefined
      }
    })
    const next = consume(c)
    await runUnit('post-reexec.service', ['/bin/sleep', '0.2'])
    await waitFor('post-reexec.service to stop', () => forUnit(next.events, 'post-reexec.service', 'systemd.unit.stopped')[0])
    expect(forUnit(next.events, 'steady.service')).toEqual([])
    // The re-exec itself changed nothing: the resync finds no differences worth an event.
    expect(next.events.filter((e) => dataOf(e).resync === true && e.severity !== 'debug')).toEqual([])
    await c.stop()
    expect(await next.done).toBeUndefined()
  })
})
