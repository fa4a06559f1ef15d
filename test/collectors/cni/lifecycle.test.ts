import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Result } from 'effect'
import { afterAll, describe, expect, it } from 'vitest'
import { CniCollector, detectCni, parseCniConfig } from '../../../src/collectors/cni/index.js'
import { data, fdCount, Recorder } from './helpers.js'

const root = mkdtempSync(join(tmpdir(), 'tapio-cni-life-'))
const confDir = join(root, 'conf')
const resultsDir = join(root, 'results')
const netnsDir = join(root, 'netns')
mkdirSync(confDir)
mkdirSync(resultsDir)
mkdirSync(netnsDir)
writeFileSync(join(confDir, '10-a.conflist'), JSON.stringify({ cniVersion: '1.0.0', name: 'a', plugins: [{ type: 'bridge' }] }))

const collectors: CniCollector[] = []
afterAll(async () => {
  for (const c of collectors) await c.stop()
  rmSync(root, { recursive: true, force: true })
})

const MISSING_ADDON = join(root, 'nowhere', 'tapio_netlink.node')

function make(extra: Record<string, unknown> = {}): CniCollector {
  const c = new CniCollector({
    cniConfig: { dir: confDir },
    cniResults: { dir: resultsDir },
    netns: { dir: netnsDir },
    debounceMs: 10,
    pollIntervalMs: 100,
    ...extra,
  })
  collectors.push(c)
  return c
}

describe('cni collector lifecycle', () => {
  it('a restart loop leaks no sockets, watchers or timers (/proc/self/fd and active handles)', async () => {
    const c = make()
    let fdsRunning = 0
    const cycle = async (): Promise<void> => {
      await c.start(AbortSignal.timeout(30_000))
      const rec = new Recorder(c)
      await rec.waitFor((e) => e.type === 'network.link.added' && data(e).name === 'lo', 'lo in the dump')
      fdsRunning = fdCount()
      await c.stop()
      await rec.done
    }
    await cycle() // warm up: lazily opened descriptors (addon, inotify instance) stay with the process
    const fdsBefore = fdCount()
    const handlesBefore = process.getActiveResourcesInfo().filter((r) => r !== 'TTYWrap').length
    for (let i = 0; i < 25; i++) await cycle()
    // The count is sensitive: a running collector holds a netlink socket, an eventfd and watchers.
    expect(fdsRunning).toBeGreaterThan(fdsBefore)
    expect(fdCount()).toBe(fdsBefore)
    // Vitest's own timers come and go, so the check is that nothing accumulated over 25 cycles.
    expect(process.getActiveResourcesInfo().filter((r) => r !== 'TTYWrap').length).toBeLessThanOrEqual(handlesBefore)
    expect(c.statistics().counters.netlinkResyncs).toBe(26)
  })

  it('without the addon: start fails with the reason, health and detect say why', async () => {
    const c = make({ netlink: { addonPath: MISSING_ADDON } })
    await expect(c.start(AbortSignal.timeout(30_000))).rejects.toThrow(/^unavailable: native addon tapio_netlink.node not found .*scripts\/build-native.sh/)
    expect(c.health()).toMatchObject({ status: 'permanent_error', message: expect.stringMatching(/^unavailable: native addon/) })
    await c.stop()
    const d = await detectCni({ netlink: { addonPath: MISSING_ADDON } })
    expect(d.supported).toBe(false)
    expect(d.reason).toMatch(/tapio_netlink.node not found/)
  })

  it('a broken addon file is reported, not thrown at import', async () => {
    const broken = join(root, 'broken.node')
    writeFileSync(broken, 'not an ELF file')
    const d = await detectCni({ netlink: { addonPath: broken } })
    expect(d).toMatchObject({ supported: false, reason: expect.stringMatching(/failed to load/) })
  })

  it('with netlink optional and no addon: files and namespaces still work, health is degraded', async () => {
    const c = make({ netlink: { mode: 'optional', addonPath: MISSING_ADDON } })
    await c.start(AbortSignal.timeout(30_000))
    const rec = new Recorder(c)
    await rec.waitFor((e) => e.type === 'cni.config.added', 'config while degraded')
    const h = c.health()
    expect(h.status).toBe('recoverable_error')
    expect(h.message).toMatch(/^degraded: no link\/address events \(native addon tapio_netlink.node not found/)
    expect(rec.of('network.link.added')).toEqual([])
    await c.stop()
    await rec.done
  })

  it('detectCni: supported here (addon built, netlink socket opens)', async () => {
    expect(await detectCni()).toEqual({ supported: true, reason: 'tapio_netlink addon loaded and a NETLINK_ROUTE socket opened' })
    expect((await detectCni({ netlink: { mode: 'off' } })).supported).toBe(true)
    expect(await detectCni({ pollIntervalMs: 'soon' })).toMatchObject({ supported: false, reason: expect.stringContaining('pollIntervalMs') })
  })

  it('start(signal) gives up when the signal is already aborted or aborts', async () => {
    const c = make()
    await expect(c.start(AbortSignal.abort())).rejects.toThrow(/aborted/)
    const ctl = new AbortController()
    const p = c.start(ctl.signal)
    ctl.abort()
    await expect(p).rejects.toThrow(/aborted/)
    // Nothing stays open: it can start normally afterwards.
    await c.start(AbortSignal.timeout(30_000))
    await c.stop()
  })

  it('stop() while start() is under way: start fails, nothing is left open', async () => {
    const c = make()
    await c.start(AbortSignal.timeout(30_000)) // warm up lazily opened descriptors
    await c.stop()
    const before = fdCount()
    const starting = c.start(AbortSignal.timeout(30_000))
    const stopping = c.stop()
    await expect(starting).rejects.toThrow(/stopped while starting/)
    await stopping
    expect(fdCount()).toBe(before)
    await c.start(AbortSignal.timeout(30_000))
    expect(c.health().details).toMatchObject({ netlink: 'connected', confDir: { state: 'watching' } })
    await c.stop()
  })
})

describe('cni collector config', () => {
  it('fills defaults', () => {
    const r = parseCniConfig({})
    expect(Result.isSuccess(r) && r.success).toMatchObject({
      netlink: { mode: 'required' },
      cniConfig: { enabled: true, dir: '/etc/cni/net.d' },
      cniResults: { enabled: true, dir: '/var/lib/cni/results' },
      netns: { enabled: true, dir: '/var/run/netns' },
    })
  })

  it('names the offending path, rejects unknown keys', () => {
    const r = parseCniConfig({ cniConfig: { dir: '' }, netlink: { mode: 'sometimes' }, extra: 1 })
    expect(Result.isFailure(r)).toBe(true)
    const msg = Result.isFailure(r) ? r.failure.message : ''
    expect(msg).toContain('["cniConfig"]["dir"]')
    expect(msg).toContain('["netlink"]["mode"]')
    expect(msg).toContain('extra')
    expect(() => new CniCollector({ debounceMs: -1 })).toThrow(/debounceMs/)
  })
})
