import { mkdirSync, mkdtempSync, rmSync, unlinkSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import { CniCollector } from '../../../src/collectors/cni/index.js'
import { data, eventually, Recorder } from './helpers.js'

const root = mkdtempSync(join(tmpdir(), 'tapio-cni-'))
const collectors: CniCollector[] = []

afterAll(async () => {
  for (const c of collectors) await c.stop()
  rmSync(root, { recursive: true, force: true })
})

function collector(confDir: string, resultsDir: string): CniCollector {
  const c = new CniCollector({
    netlink: { mode: 'off' },
    netns: { enabled: false },
    cniConfig: { dir: confDir },
    cniResults: { dir: resultsDir },
    debounceMs: 20,
    pollIntervalMs: 100,
    rescanIntervalMs: 1_000,
  })
  collectors.push(c)
  return c
}

const conflist = (name: string, plugins: string[]): string =>
  JSON.stringify({ cniVersion: '1.0.0', name, plugins: plugins.map((type) => ({ type })) }, null, 2)

/** What containerd's libcni writes to the result cache on ADD. */
function cacheRecord(containerId: string, ip: string): string {
  return JSON.stringify({
    kind: 'cniCacheV1',
    containerId,
    config: Buffer.from('{}').toString('base64'),
    ifName: 'eth0',
    networkName: 'tapio-net',
    cniArgs: [
      ['K8S_POD_NAMESPACE', 'default'],
      ['K8S_POD_NAME', 'web-0'],
      ['K8S_POD_UID', '1b4e28ba-2fa1-11d2-883f-0016d3cca427'],
      ['K8S_POD_INFRA_CONTAINER_ID', containerId],
    ],
    result: {
      cniVersion: '1.0.0',
      interfaces: [
        { name: 'cni0', mac: '02:00:00:00:00:01' },
        { name: 'eth0', mac: '02:00:00:00:00:02', sandbox: `/var/run/netns/cni-${containerId.slice(0, 8)}` },
      ],
      ips: [{ address: `${ip}/24`, gateway: '198.18.7.1', interface: 1 }],
      routes: [{ dst: '0.0.0.0/0' }],
    },
  })
}

describe('cni collector: CNI configuration and result files', () => {
  it('reports config files added, changed, corrupted, fixed and removed, in a dir created after start', async () => {
    const confDir = join(root, 'conf-late')
    const c = collector(confDir, join(root, 'results-unused'))
    await c.start(AbortSignal.timeout(30_000))
    const rec = new Recorder(c)
    expect(c.health()).toMatchObject({ status: 'ok', details: { confDir: { state: 'missing' } } })
    expect(c.health().message).toContain(confDir)

    mkdirSync(confDir)
    const file = join(confDir, '10-tapio.conflist')
    writeFileSync(file, conflist('tapio-net', ['bridge', 'portmap']))
    const added = await rec.waitFor((e) => e.type === 'cni.config.added', 'config added')
    expect(data(added.event)).toEqual({ file: '10-tapio.conflist', path: file, format: 'conflist', name: 'tapio-net', cniVersion: '1.0.0', plugins: ['bridge', 'portmap'] })
    expect(added.event.entity).toEqual({ kind: 'cni-network', name: 'tapio-net' })
    expect(c.health().details).toMatchObject({ confDir: { state: 'watching' } })

    writeFileSync(file, conflist('tapio-net', ['bridge', 'portmap', 'bandwidth']))
    const changed = await rec.waitFor((e) => e.type === 'cni.config.changed', 'config changed', added.index + 1)
    expect(data(changed.event).plugins).toEqual(['bridge', 'portmap', 'bandwidth'])

    writeFileSync(file, '{"cniVersion": "1.0.0", "name": "tapio-net", "plugins": [')
    const invalid = await rec.waitFor((e) => e.type === 'cni.config.invalid', 'config invalid', changed.index + 1)
    expect(invalid.event.severity).toBe('warning')
    expect(String(data(invalid.event).error)).toMatch(/^not JSON/)

    writeFileSync(file, conflist('tapio-net', ['bridge']))
    const fixed = await rec.waitFor((e) => e.type === 'cni.config.added', 'config valid again', invalid.index + 1)
    expect(data(fixed.event).plugins).toEqual(['bridge'])

    // Valid JSON, wrong shape: the error names the path of the problem.
    const conf = join(confDir, '20-broken.conf')
    writeFileSync(conf, JSON.stringify({ cniVersion: '0.4.0', name: 'other' }))
    const shape = await rec.waitFor((e) => e.type === 'cni.config.invalid' && data(e).file === '20-broken.conf', 'conf without type', fixed.index + 1)
    expect(String(data(shape.event).error)).toContain('["type"]')

    unlinkSync(file)
    const removed = await rec.waitFor((e) => e.type === 'cni.config.removed', 'config removed', fixed.index + 1)
    expect(data(removed.event)).toEqual({ file: '10-tapio.conflist', path: file, name: 'tapio-net' })
    expect(c.statistics().counters.invalidConfigFiles).toBe(2)

    // Files that are not CNI configuration are not looked at.
    writeFileSync(join(confDir, 'README.txt'), 'not a config')
    writeFileSync(join(confDir, '.hidden.conf'), 'not json')

    // The directory disappears and comes back: its files are removed, then found again.
    rmSync(confDir, { recursive: true })
    const gone = await rec.waitFor((e) => e.type === 'cni.config.removed' && data(e).file === '20-broken.conf', 'dir removed', removed.index + 1)
    mkdirSync(confDir)
    writeFileSync(join(confDir, '05-again.conf'), JSON.stringify({ cniVersion: '0.4.0', name: 'again', type: 'bridge' }))
    const again = await rec.waitFor((e) => e.type === 'cni.config.added' && data(e).name === 'again', 'recreated dir', gone.index + 1)
    expect(data(again.event)).toMatchObject({ format: 'conf', plugins: ['bridge'], cniVersion: '0.4.0' })
    expect(rec.events.filter((e) => String(data(e).file ?? '').includes('README') || String(data(e).file ?? '').includes('hidden'))).toEqual([])

    await c.stop()
    await rec.done
    expect(rec.error).toBeUndefined()
  })

  it('reports files present at start as a snapshot', async () => {
    const confDir = join(root, 'conf-early')
    const resultsDir = join(root, 'results-early')
    mkdirSync(confDir)
    mkdirSync(resultsDir)
    writeFileSync(join(confDir, '10-a.conflist'), conflist('net-a', ['bridge']))
    writeFileSync(join(confDir, '99-b.conf'), 'garbage')
    writeFileSync(join(resultsDir, 'tapio-net-aaaa-eth0'), cacheRecord('aaaa1111', '198.18.7.10'))
    const c = collector(confDir, resultsDir)
    await c.start(AbortSignal.timeout(30_000))
    const rec = new Recorder(c)
    await eventually(() => rec.events.length >= 3, 'three snapshot events')
    expect(rec.events.map((e) => [e.type, data(e).snapshot])).toEqual([
      ['cni.config.added', true],
      ['cni.config.invalid', true],
      ['cni.attachment.added', true],
    ])
    await c.stop()
    await rec.done
  })

  it('reports attachments from the result cache: added, replaced, removed; foreign files are counted', async () => {
    const resultsDir = join(root, 'results')
    mkdirSync(resultsDir)
    const c = collector(join(root, 'conf-unused'), resultsDir)
    await c.start(AbortSignal.timeout(30_000))
    const rec = new Recorder(c)
    const id = 'f00dcafe0123456789abcdef0123456789abcdef0123456789abcdef01234567'
    const file = join(resultsDir, `tapio-net-${id}-eth0`)
    writeFileSync(file, cacheRecord(id, '198.18.7.10'))
    const added = await rec.waitFor((e) => e.type === 'cni.attachment.added', 'attachment added')
    expect(data(added.event)).toEqual({
      containerId: id,
      ifName: 'eth0',
      networkName: 'tapio-net',
      file: `tapio-net-${id}-eth0`,
      cniVersion: '1.0.0',
      ips: [{ address: '198.18.7.10/24', gateway: '198.18.7.1', interface: 1 }],
      gateway: '198.18.7.1',
      interfaces: [
        { name: 'cni0', mac: '02:00:00:00:00:01' },
        { name: 'eth0', mac: '02:00:00:00:00:02', sandbox: '/var/run/netns/cni-f00dcafe' },
      ],
      sandbox: '/var/run/netns/cni-f00dcafe',
    })
    expect(added.event.entity).toEqual({ kind: 'Pod', name: 'web-0', namespace: 'default', uid: '1b4e28ba-2fa1-11d2-883f-0016d3cca427' })
    expect(added.event.k8s).toEqual({ namespace: 'default', pod: 'web-0', podUid: '1b4e28ba-2fa1-11d2-883f-0016d3cca427', containerId: id })

    writeFileSync(file, cacheRecord(id, '198.18.7.11'))
    const replaced = await rec.waitFor((e) => e.type === 'cni.attachment.added', 'attachment replaced', added.index + 1)
    expect(data(replaced.event)).toMatchObject({ replaced: true, ips: [{ address: '198.18.7.11/24' }] })

    writeFileSync(join(resultsDir, 'not-a-cache-record'), '{"hello": 1}')
    writeFileSync(join(resultsDir, 'truncated'), '{"kind": "cniCacheV1", "contai')
    await eventually(() => c.statistics().counters.invalidResultFiles === 2, 'two invalid result files counted')

    unlinkSync(file)
    const removed = await rec.waitFor((e) => e.type === 'cni.attachment.removed', 'attachment removed', replaced.index + 1)
    expect(data(removed.event)).toMatchObject({ containerId: id, ifName: 'eth0', ips: [{ address: '198.18.7.11/24' }] })
    expect(rec.of('cni.attachment.removed')).toHaveLength(1)
    await c.stop()
    await rec.done
    expect(rec.error).toBeUndefined()
  })
})
