import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { CniCollector } from '../../../src/collectors/cni/index.js'
import { validateEvent } from '../../../src/events/event.js'
import { data, ip, ipJson, KernelObjects, Recorder, suffix } from './helpers.js'

// Real kernel objects in this (root) process's namespace: a test netns, a veth pair with one end
// moved into it, and a bridge (this kernel has no dummy driver: CONFIG_DUMMY is not set). Only the
// test's own links get addresses, from 198.18.0.0/15 and fd00::/8; nothing is sent anywhere.

interface IpLink {
  ifindex: number
  ifname: string
  address: string
  mtu: number
}

const s = suffix()
const ns = `tapio-test-${s}`
const va = `tpa${s}`
const vb = `tpb${s}`
const br = `tpbr${s}`
const octet = String(parseInt(s.slice(0, 2), 16))
const v4Bridge = `198.18.${octet}.1`
const v4Veth = `198.19.${octet}.1`
// A first group of four significant hex digits, so the text is already canonical (RFC 5952).
const v6Bridge = `fd00:${(parseInt(s.slice(0, 4), 16) | 0x1000).toString(16)}::1`

const objects = new KernelObjects()
const collectors: CniCollector[] = []

function newCollector(): CniCollector {
  const c = new CniCollector({ cniConfig: { enabled: false }, cniResults: { enabled: false }, debounceMs: 20, pollIntervalMs: 100 })
  collectors.push(c)
  return c
}

function link(name: string): IpLink {
  const [l] = ipJson<IpLink[]>('link', 'show', 'dev', name)
  if (!l) throw new Error(`no link ${name}`)
  return l
}

const tmp = mkdtempSync(join(tmpdir(), 'tapio-cni-nl-'))

afterAll(async () => {
  for (const c of collectors) await c.stop()
  const errors = objects.cleanup()
  rmSync(tmp, { recursive: true, force: true })
  expect(errors).toEqual([])
})

describe('cni collector: rtnetlink and network namespaces (real kernel objects)', () => {
  const c = newCollector()
  let rec: Recorder

  beforeAll(async () => {
    await c.start(AbortSignal.timeout(30_000))
    rec = new Recorder(c)
  })

  it('starts with a dump of the links and addresses that already exist', async () => {
    const lo = await rec.waitFor((e) => e.type === 'network.link.added' && data(e).name === 'lo', 'lo in the initial dump')
    expect(data(lo.event)).toMatchObject({ index: 1, up: true, snapshot: true })
    const a = await rec.waitFor((e) => e.type === 'network.address.added' && data(e).address === '127.0.0.1', '127.0.0.1 in the dump')
    expect(data(a.event)).toMatchObject({ link: 'lo', family: 'ipv4', prefixLength: 8, cidr: '127.0.0.1/8', scope: 'host', snapshot: true })
    expect(c.health()).toMatchObject({ status: 'ok', details: { netlink: 'connected' } })
    expect(c.statistics().counters.netlinkResyncs).toBe(1)
  })

  it('reports a namespace, a veth pair, a bridge and addresses, every change in order', async () => {
    try {
      let at = rec.events.length
      const step = async (type: string, pred: (d: Record<string, unknown>) => boolean, what: string): Promise<Record<string, unknown>> => {
        const found = await rec.waitFor((e) => e.type === type && pred(data(e)), what, at)
        at = found.index + 1
        const checked = validateEvent({ id: 'x', timestamp: found.event.timestamp, source: 'cni', severity: 'info', ...found.event })
        expect(checked._tag, `${type} matches its registered schema`).toBe('Success')
        return data(found.event)
      }

      ip('netns', 'add', objects.netns(ns))
      const created = await step('network.netns.created', (d) => d.name === ns, 'netns created')
      expect(created).toMatchObject({ path: `/var/run/netns/${ns}` })
      expect(typeof created.inode).toBe('number')

      objects.link(va)
      ip('link', 'add', va, 'type', 'veth', 'peer', 'name', vb)
      const from = at
      const addedA = await step('network.link.added', (d) => d.name === va, 'veth a added')
      at = from
      const addedB = await step('network.link.added', (d) => d.name === vb, 'veth b added')
      at = Math.max(at, from) // both seen; later steps follow both
      const la = link(va)
      const lb = link(vb)
      expect(addedA).toMatchObject({ index: la.ifindex, kind: 'veth', mac: la.address, mtu: la.mtu, up: false, peerIndex: lb.ifindex })
      expect(addedB).toMatchObject({ index: lb.ifindex, kind: 'veth', mac: lb.address })
      expect(addedA.snapshot).toBeUndefined()
      at = rec.events.length

      ip('link', 'set', vb, 'netns', ns)
      await step('network.link.removed', (d) => d.name === vb, 'veth b leaves our namespace')
      const nsid = ipJson<{ name: string; id?: number }[]>('netns', 'list').find((n) => n.name === ns)?.id
      expect(nsid, 'the kernel assigned an id to the test namespace').toBeTypeOf('number')
      const moved = await step('network.link.changed', (d) => d.name === va && d.peerNetnsId !== undefined, 'veth a learns its peer namespace')
      expect(moved).toMatchObject({ peerNetnsId: nsid, peerNetns: ns, kind: 'veth' })
      expect(moved.changes).toContainEqual({ field: 'peerNetnsId', to: nsid })

      objects.link(br)
      ip('link', 'add', br, 'type', 'bridge')
      const bridge = await step('network.link.added', (d) => d.name === br, 'bridge added')
      const lbr = link(br)
      expect(bridge).toMatchObject({ index: lbr.ifindex, kind: 'bridge', up: false, operState: 'down' })

      ip('link', 'set', va, 'master', br)
      const enslaved = await step('network.link.changed', (d) => d.name === va && d.master === lbr.ifindex, 'veth a joins the bridge')
      expect(enslaved).toMatchObject({ masterName: br, peerNetns: ns })

      ip('addr', 'add', `${v4Bridge}/24`, 'dev', br)
      const a1 = await step('network.address.added', (d) => d.address === v4Bridge, 'bridge IPv4 address')
      expect(a1).toMatchObject({ index: lbr.ifindex, link: br, family: 'ipv4', prefixLength: 24, cidr: `${v4Bridge}/24`, scope: 'global' })
      ip('addr', 'add', `${v6Bridge}/64`, 'dev', br, 'nodad')
      const a2 = await step('network.address.added', (d) => d.address === v6Bridge, 'bridge IPv6 address')
      expect(a2).toMatchObject({ index: lbr.ifindex, link: br, family: 'ipv6', prefixLength: 64, scope: 'global' })
      ip('addr', 'add', `${v4Veth}/24`, 'dev', va)
      const a3 = await step('network.address.added', (d) => d.address === v4Veth, 'veth IPv4 address')
      expect(a3).toMatchObject({ index: la.ifindex, link: va, family: 'ipv4', prefixLength: 24 })

      ip('link', 'set', br, 'up')
      expect(await step('network.link.up', (d) => d.name === br, 'bridge up')).toMatchObject({ up: true, index: lbr.ifindex })
      ip('link', 'set', br, 'mtu', '1400')
      const mtu = await step('network.link.changed', (d) => d.name === br && d.mtu === 1400, 'bridge mtu')
      expect(mtu.changes).toContainEqual({ field: 'mtu', from: 1500, to: 1400 })
      ip('link', 'set', br, 'down')
      expect(await step('network.link.down', (d) => d.name === br, 'bridge down')).toMatchObject({ up: false })

      ip('addr', 'del', `${v4Bridge}/24`, 'dev', br)
      await step('network.address.removed', (d) => d.address === v4Bridge, 'bridge IPv4 address removed')

      ip('link', 'del', br)
      await step('network.link.removed', (d) => d.name === br && d.index === lbr.ifindex, 'bridge removed')
      expect(rec.of('network.address.removed', (d) => d.address === v6Bridge)).toHaveLength(1)

      ip('link', 'del', va)
      await step('network.link.removed', (d) => d.name === va, 'veth a removed')
      expect(rec.of('network.address.removed', (d) => d.address === v4Veth)).toHaveLength(1)

      ip('netns', 'del', ns)
      expect(await step('network.netns.removed', (d) => d.name === ns, 'netns removed')).toMatchObject({ path: `/var/run/netns/${ns}` })
      expect(c.statistics().counters.netlinkMalformed).toBe(0)
      expect(rec.error).toBeUndefined()
    } finally {
      objects.cleanup()
    }
  })

  it('a second collector started later dumps the same state, with peers and masters resolved', async () => {
    const s2 = suffix()
    const ns2 = objects.netns(`tapio-test-${s2}`)
    const a = objects.link(`tpa${s2}`)
    const b = `tpb${s2}`
    const bridge2 = objects.link(`tpbr${s2}`)
    try {
      ip('netns', 'add', ns2)
      ip('link', 'add', a, 'type', 'veth', 'peer', 'name', b)
      ip('link', 'set', b, 'netns', ns2)
      ip('link', 'add', bridge2, 'type', 'bridge')
      ip('link', 'set', a, 'master', bridge2)
      ip('addr', 'add', `198.18.${String(parseInt(s2.slice(0, 2), 16))}.9/24`, 'dev', bridge2)
      const nsid = ipJson<{ name: string; id?: number }[]>('netns', 'list').find((n) => n.name === ns2)?.id
      const late = newCollector()
      await late.start(AbortSignal.timeout(30_000))
      const r2 = new Recorder(late)
      const n = await r2.waitFor((e) => e.type === 'network.netns.created' && data(e).name === ns2, 'netns in the snapshot')
      expect(data(n.event)).toMatchObject({ nsid, snapshot: true })
      const va2 = await r2.waitFor((e) => e.type === 'network.link.added' && data(e).name === a, 'veth in the dump')
      expect(data(va2.event)).toMatchObject({ kind: 'veth', masterName: bridge2, peerNetnsId: nsid, peerNetns: ns2, snapshot: true })
      const addr = await r2.waitFor((e) => e.type === 'network.address.added' && data(e).link === bridge2, 'address in the dump')
      expect(data(addr.event)).toMatchObject({ family: 'ipv4', prefixLength: 24, snapshot: true })
      await late.stop()
      await r2.done
      expect(r2.error).toBeUndefined()
    } finally {
      objects.cleanup()
    }
  })

  it("ties a host veth to the pod whose sandbox namespace holds its peer (CNI result cache)", async () => {
    const s3 = suffix()
    const ns3 = objects.netns(`tapio-test-${s3}`)
    const a = objects.link(`tpa${s3}`)
    const b = `tpb${s3}`
    const resultsDir = join(tmp, 'results')
    const containerId = `c0ffee${s3}`
    const c3 = new CniCollector({ cniConfig: { enabled: false }, cniResults: { dir: resultsDir }, debounceMs: 20, pollIntervalMs: 100 })
    collectors.push(c3)
    try {
      ip('netns', 'add', ns3)
      await c3.start(AbortSignal.timeout(30_000))
      const r3 = new Recorder(c3)
      mkdirSync(resultsDir)
      writeFileSync(
        join(resultsDir, `tapio-net-${containerId}-eth0`),
        JSON.stringify({
          kind: 'cniCacheV1',
          containerId,
          ifName: 'eth0',
          networkName: 'tapio-net',
          cniArgs: [['K8S_POD_NAMESPACE', 'shop'], ['K8S_POD_NAME', 'cart-1'], ['K8S_POD_UID', `uid-${s3}`]],
          result: { cniVersion: '1.0.0', interfaces: [{ name: 'eth0', sandbox: `/var/run/netns/${ns3}` }], ips: [{ address: '198.18.200.2/24', gateway: '198.18.200.1' }] },
        }),
      )
      await r3.waitFor((e) => e.type === 'cni.attachment.added' && data(e).containerId === containerId, 'attachment')
      ip('link', 'add', a, 'type', 'veth', 'peer', 'name', b)
      ip('link', 'set', b, 'netns', ns3)
      const moved = await r3.waitFor((e) => e.type === 'network.link.changed' && data(e).name === a && data(e).peerNetns === ns3, 'veth tied to the sandbox')
      expect(moved.event.k8s).toEqual({ namespace: 'shop', pod: 'cart-1', podUid: `uid-${s3}`, containerId })
      ip('link', 'del', a)
      const removed = await r3.waitFor((e) => e.type === 'network.link.removed' && data(e).name === a, 'veth removed', moved.index + 1)
      expect(removed.event.k8s).toMatchObject({ pod: 'cart-1', containerId })
    } finally {
      await c3.stop()
      objects.cleanup()
    }
  })
})
