import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import { CniCollector } from '../../../src/collectors/cni/index.js'
import { ManualClock } from '../../../src/core/clock.js'
import { data, eventually, ip, KernelObjects, Recorder, sleep, suffix } from './helpers.js'

// The directory watchers' timers run on the collector's clock; the files and inotify are real.
const root = mkdtempSync(join(tmpdir(), 'tapio-cni-clock-'))
const collectors: CniCollector[] = []

const objects = new KernelObjects()

afterAll(async () => {
  for (const c of collectors) await c.stop()
  objects.cleanup()
  rmSync(root, { recursive: true, force: true })
})

const DEBOUNCE = 200
const POLL = 1_000

function collector(confDir: string, clock: ManualClock): CniCollector {
  const c = new CniCollector(
    {
      netlink: { mode: 'off' },
      netns: { enabled: false },
      cniConfig: { dir: confDir },
      cniResults: { enabled: false },
      debounceMs: DEBOUNCE,
      pollIntervalMs: POLL,
      rescanIntervalMs: 60_000,
    },
    { clock },
  )
  collectors.push(c)
  return c
}

const conflist = (name: string): string => JSON.stringify({ cniVersion: '1.0.0', name, plugins: [{ type: 'bridge' }] })
const added = (rec: Recorder, name: string): boolean => rec.events.some((e) => e.type === 'cni.config.added' && (e.data as { name?: string }).name === name)

describe('cni collector on a driven clock', () => {
  it('scans a changed directory exactly when the debounce, started by inotify, runs out', async () => {
    const dir = join(root, 'debounce')
    mkdirSync(dir)
    const clock = new ManualClock(1_000_000)
    const c = collector(dir, clock)
    await c.start(new AbortController().signal)
    const rec = new Recorder(c)
    const t0 = clock.now()
    writeFileSync(join(dir, '10-a.conflist'), conflist('net-a'))
    // inotify (real) asks for a scan: the debounce is armed on the collector's clock.
    await eventually(() => clock.nextDue() === t0 + DEBOUNCE, 'the debounce timer armed on the manual clock')
    await clock.advanceAsync(DEBOUNCE - 1)
    await sleep(100)
    expect(added(rec, 'net-a')).toBe(false)
    expect(clock.nextDue()).toBe(t0 + DEBOUNCE)
    await clock.advanceAsync(1)
    await rec.waitFor((e) => e.type === 'cni.config.added', 'cni.config.added for net-a')
    expect(added(rec, 'net-a')).toBe(true)
    await c.stop()
    // Nothing left on the clock after stop: every timer went through it and was cancelled.
    expect(clock.pending).toBe(0)
  })

  it('polls a missing directory on the clock: the file shows up one poll interval plus the debounce later', async () => {
    const dir = join(root, 'late')
    const clock = new ManualClock(5_000)
    const c = collector(dir, clock)
    await c.start(new AbortController().signal)
    const rec = new Recorder(c)
    mkdirSync(dir)
    writeFileSync(join(dir, '10-b.conflist'), conflist('net-b'))
    await clock.advanceAsync(POLL + DEBOUNCE - 1)
    await sleep(100)
    expect(added(rec, 'net-b')).toBe(false)
    await clock.advanceAsync(1)
    await rec.waitFor((e) => e.type === 'cni.config.added', 'cni.config.added for net-b')
    expect(added(rec, 'net-b')).toBe(true)
    await c.stop()
    expect(clock.pending).toBe(0)
  })
})

describe('cni netlink monitor on a driven clock', () => {
  it('re-dumps routes the kernel dropped silently exactly 100 ms of its clock after the change', async () => {
    const s = suffix()
    const br = objects.link(`tpck${s}`)
    const x = String(parseInt(s.slice(0, 2), 16))
    const clock = new ManualClock(0)
    const c = new CniCollector({ netlink: { routes: true }, cniConfig: { enabled: false }, cniResults: { enabled: false }, netns: { enabled: false } }, { clock })
    collectors.push(c)
    await c.start(AbortSignal.timeout(30_000))
    const rec = new Recorder(c)
    try {
      ip('link', 'add', br, 'type', 'bridge')
      ip('link', 'set', br, 'up')
      ip('addr', 'add', `198.18.${x}.1/24`, 'dev', br)
      ip('route', 'add', `198.19.${x}.0/24`, 'via', `198.18.${x}.2`, 'dev', br)
      await rec.waitFor((e) => e.type === 'network.route.added' && data(e).destination === `198.19.${x}.0/24`, 'route via a gateway')
      const at = rec.events.length
      ip('link', 'set', br, 'down')
      await rec.waitFor((e) => e.type === 'network.link.down' && data(e).name === br, 'the bridge down', at)
      // A link going down arms one recheck, due 100 ms later; no clock time has passed.
      await eventually(() => clock.nextDue() === 100, 'the route recheck armed on the manual clock')
      await clock.advanceAsync(99)
      await sleep(100)
      expect(c.statistics().counters.routeRechecks).toBe(0)
      expect(rec.of('network.route.removed', (r) => r.destination === `198.19.${x}.0/24`)).toHaveLength(0)
      await clock.advanceAsync(1)
      await rec.waitFor((e) => e.type === 'network.route.removed' && data(e).destination === `198.19.${x}.0/24`, 'gateway route gone', at)
      expect(c.statistics().counters.routeRechecks).toBeGreaterThanOrEqual(1)
      ip('link', 'del', br)
    } finally {
      await c.stop()
    }
  })
})
