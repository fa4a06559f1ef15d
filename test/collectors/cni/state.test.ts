/** The CNI collector's link, address and route tables on their own: netlink records in, events out. */
import { describe, expect, it } from 'vitest'
import { NetworkState } from '../../../src/collectors/cni/network-state.js'
import { RouteState } from '../../../src/collectors/cni/route-state.js'
import type { EventInput } from '../../../src/events/event.js'
import type { AddressRecord, LinkRecord, RouteRecord } from '../../../src/native/netlink-codec.js'

const HDR = { seq: 0, pid: 0 }

function link(index: number, name: string, extra: Partial<LinkRecord> = {}): LinkRecord {
  return { kind: 'link', ...HDR, op: 'new', index, name, flags: 0, up: true, lowerUp: true, operState: 'up', ...extra }
}

function address(index: number, addr: string, extra: Partial<AddressRecord> = {}): AddressRecord {
  return { kind: 'address', ...HDR, op: 'new', index, family: 'ipv4', address: addr, prefixLength: 24, scope: 0, flags: 0, ...extra }
}

function route(extra: Partial<RouteRecord> = {}): RouteRecord {
  return { kind: 'route', ...HDR, op: 'new', family: 'ipv4', dst: '10.1.0.0', dstLength: 16, table: 254, protocol: 4, scope: 0, type: 1, ...extra }
}

const types = (es: readonly EventInput[]) => es.map((e) => e.type)
const data = (e: EventInput | undefined) => (e?.data ?? {}) as Record<string, unknown>
const netns = (id: number) => (id === 3 ? 'cni-1234' : undefined)

describe('NetworkState: links', () => {
  it('a new link is added with every field it has; its entity is the interface', () => {
    const s = new NetworkState(netns)
    s.applyLink(link(2, 'br0', { linkKind: 'bridge' }), false)
    const [e] = s.applyLink(link(7, 'veth1', { linkKind: 'veth', mac: '02:00:00:00:00:01', mtu: 1450, master: 2, link: 4, linkNetnsId: 3, operState: 'lowerlayerdown', up: false, lowerUp: false }), true)
    expect(e).toMatchObject({ type: 'network.link.added', severity: 'info', entity: { kind: 'network-interface', name: 'veth1' } })
    expect(e?.timestamp).toMatch(/^\d+$/)
    expect(data(e)).toStrictEqual({
      index: 7,
      name: 'veth1',
      kind: 'veth',
      mac: '02:00:00:00:00:01',
      mtu: 1450,
      up: false,
      lowerUp: false,
      operState: 'lowerlayerdown',
      master: 2,
      masterName: 'br0',
      peerIndex: 4,
      peerNetnsId: 3,
      peerNetns: 'cni-1234',
      snapshot: true,
    })
    const [lo] = s.applyLink(link(1, 'lo', { link: 1, operState: 'unknown' }), false)
    expect(data(lo)).toStrictEqual({ index: 1, name: 'lo', up: true, lowerUp: true, operState: 'unknown' })
    const [orphan] = s.applyLink(link(9, 'v9', { master: 99, linkNetnsId: 8 }), false)
    expect(data(orphan)).toStrictEqual({ index: 9, name: 'v9', up: true, lowerUp: true, operState: 'up', master: 99, peerNetnsId: 8 })
    expect(s.linkCount).toBe(4)
    expect(s.linkName(7)).toBe('veth1')
    expect(s.linkName(8)).toBeUndefined()
  })

  it('a repeat is no news; up and down have their own events; other watched fields are reported as changes', () => {
    const s = new NetworkState(netns)
    s.applyLink(link(5, 'eth0', { mtu: 1500 }), false)
    expect(s.applyLink(link(5, 'eth0', { mtu: 1500, flags: 4099 }), false)).toEqual([])
    const down = s.applyLink(link(5, 'eth0', { mtu: 1500, up: false }), false)
    expect(types(down)).toEqual(['network.link.down'])
    expect(types(s.applyLink(link(5, 'eth0', { mtu: 1500 }), false))).toEqual(['network.link.up'])
    const [changed] = s.applyLink(link(5, 'eth1', { mtu: 9000, mac: '02:aa', linkKind: 'dummy', lowerUp: false, operState: 'down', master: 2, link: 6, linkNetnsId: 1 }), false)
    expect(changed?.type).toBe('network.link.changed')
    expect(data(changed).changes).toStrictEqual([
      { field: 'name', from: 'eth0', to: 'eth1' },
      { field: 'kind', to: 'dummy' },
      { field: 'mac', to: '02:aa' },
      { field: 'mtu', from: 1500, to: 9000 },
      { field: 'lowerUp', from: true, to: false },
      { field: 'operState', from: 'up', to: 'down' },
      { field: 'master', to: 2 },
      { field: 'peerIndex', to: 6 },
      { field: 'peerNetnsId', to: 1 },
    ])
    const both = s.applyLink(link(5, 'eth1', { up: false, linkKind: 'dummy', mac: '02:aa', lowerUp: false, operState: 'down', link: 6, linkNetnsId: 1 }), false)
    expect(types(both)).toEqual(['network.link.down', 'network.link.changed'])
    expect(data(both[1]).changes).toStrictEqual([
      { field: 'mtu', from: 9000 },
      { field: 'master', from: 2 },
    ])
  })

  it('a removed link takes its addresses with it; an unknown one is reported as it came', () => {
    const s = new NetworkState(netns)
    s.applyLink(link(5, 'eth0', { mtu: 1500 }), false)
    s.applyAddress(address(5, '10.0.0.1'), false)
    s.applyAddress(address(6, '10.0.1.1'), false)
    const out = s.applyLink(link(5, 'renamed', { op: 'del' }), false)
    expect(types(out)).toEqual(['network.address.removed', 'network.link.removed'])
    expect(data(out[0])).toMatchObject({ address: '10.0.0.1', link: 'eth0' })
    expect(data(out[0])).not.toHaveProperty('snapshot')
    expect(data(out[1])).toMatchObject({ name: 'eth0', mtu: 1500 })
    expect(data(out[1])).not.toHaveProperty('snapshot')
    expect(s.linkCount).toBe(0)
    expect(s.addressCount).toBe(1)
    const [unknown] = s.applyLink(link(8, 'ghost', { op: 'del' }), true)
    expect(unknown).toMatchObject({ type: 'network.link.removed', data: { name: 'ghost', snapshot: true } })
  })

  it('completes the first half of a veth pair when its peer appears in the same namespace', () => {
    const s = new NetworkState(netns)
    s.applyLink(link(10, 'vethA', { linkKind: 'veth' }), false)
    s.applyLink(link(11, 'vethB', { linkKind: 'veth', link: 10 }), false)
    expect(s.sameNamespacePeersOf(10)).toEqual([11])
    expect(s.sameNamespacePeersOf(11)).toEqual([10])
    // Not completed: a peer in another namespace, a kind that differs, a half that already names one.
    s.applyLink(link(20, 'vethC', { linkKind: 'veth' }), false)
    s.applyLink(link(21, 'other', { linkKind: 'veth', link: 20, linkNetnsId: 3 }), false)
    s.applyLink(link(22, 'vxlan', { linkKind: 'vxlan', link: 20 }), false)
    s.applyLink(link(30, 'vethD', { linkKind: 'veth', link: 99 }), false)
    s.applyLink(link(31, 'vethE', { linkKind: 'veth', link: 30 }), false)
    expect(s.sameNamespacePeersOf(20)).toEqual([22])
    // Neither the other namespace's peer nor the vxlan completed vethC.
    expect(s.sameNamespacePeersOf(21)).toEqual([])
    expect(s.sameNamespacePeersOf(22)).toEqual([])
    expect(s.sameNamespacePeersOf(99)).toEqual([30])
    // Its own index as link (loopback-like) is not a peer.
    s.applyLink(link(40, 'self', { link: 40 }), false)
    expect(s.sameNamespacePeersOf(40)).toEqual([])
    // The completed half, re-sent by the kernel with its peer, is no news.
    expect(s.applyLink(link(10, 'vethA', { linkKind: 'veth', link: 11 }), false)).toEqual([])
  })

  it('fills in master and peer namespace names learnt after the events were made', () => {
    const names = new Map<number, string>()
    const s = new NetworkState((id) => names.get(id))
    const events = s.applyLink(link(7, 'veth1', { master: 2, linkNetnsId: 3 }), false)
    const already = [{ type: 'network.link.added', data: { index: 8, name: 'x', master: 2, masterName: 'keep', peerNetnsId: 3, peerNetns: 'keep-ns' } }] as EventInput[]
    const other = [{ type: 'network.address.added', data: { master: 2 } }, { type: 'network.link.up' }] as EventInput[]
    s.fillNames(events)
    expect(data(events[0])).not.toHaveProperty('masterName')
    expect(data(events[0])).not.toHaveProperty('peerNetns')
    s.applyLink(link(2, 'br0'), false)
    names.set(3, 'cni-abc')
    s.fillNames([...events, ...already, ...other])
    expect(data(events[0])).toMatchObject({ masterName: 'br0', peerNetns: 'cni-abc' })
    expect(data(already[0])).toMatchObject({ masterName: 'keep', peerNetns: 'keep-ns' })
    expect(other[0]?.data).toEqual({ master: 2 })
  })
})

describe('NetworkState: addresses', () => {
  it('added once (repeats with other flags are not news), removed once; scope named, label and link when known', () => {
    const s = new NetworkState(netns)
    s.applyLink(link(5, 'eth0'), false)
    const [added] = s.applyAddress(address(5, 'fe80::1', { family: 'ipv6', prefixLength: 64, scope: 253, label: 'eth0' }), true)
    expect(added).toMatchObject({ type: 'network.address.added', severity: 'info', entity: { kind: 'network-interface', name: 'eth0' } })
    expect(data(added)).toStrictEqual({ index: 5, link: 'eth0', family: 'ipv6', address: 'fe80::1', prefixLength: 64, cidr: 'fe80::1/64', scope: 'link', label: 'eth0', snapshot: true })
    expect(s.applyAddress(address(5, 'fe80::1', { family: 'ipv6', prefixLength: 64, scope: 253, flags: 128 }), false)).toEqual([])
    // The same address with another prefix, or on another link, is another address.
    expect(types(s.applyAddress(address(5, 'fe80::1', { family: 'ipv6', prefixLength: 128, scope: 253 }), false))).toEqual(['network.address.added'])
    const [elsewhere] = s.applyAddress(address(6, 'fe80::1', { family: 'ipv6', prefixLength: 64, scope: 999 }), false)
    expect(elsewhere).not.toHaveProperty('entity')
    expect(data(elsewhere)).toStrictEqual({ index: 6, family: 'ipv6', address: 'fe80::1', prefixLength: 64, cidr: 'fe80::1/64', scope: '999' })
    expect(s.addressCount).toBe(3)
    const [removed] = s.applyAddress(address(5, 'fe80::1', { op: 'del', family: 'ipv6', prefixLength: 64, scope: 253 }), false)
    expect(removed?.type).toBe('network.address.removed')
    expect(s.applyAddress(address(5, 'fe80::1', { op: 'del', family: 'ipv6', prefixLength: 64 }), false)).toEqual([])
    expect(s.addressCount).toBe(2)
    const scopes = [0, 200, 254, 255].map((scope) => data(s.applyAddress(address(9, `10.9.${scope}.1`, { scope }), false)[0]).scope)
    expect(scopes).toEqual(['global', 'site', 'host', 'nowhere'])
  })
})

describe('NetworkState: resync', () => {
  it('what a dump did not confirm is removed, marked snapshot; clear forgets everything', () => {
    const s = new NetworkState(netns)
    s.applyLink(link(1, 'lo'), false)
    s.applyLink(link(5, 'eth0'), false)
    s.applyAddress(address(1, '127.0.0.1', { prefixLength: 8 }), false)
    s.applyAddress(address(5, '10.0.0.1'), false)
    const gen = s.beginSweep()
    expect(s.beginSweep()).toBe(gen + 1)
    s.applyLink(link(1, 'lo'), true)
    s.applyAddress(address(1, '127.0.0.1', { prefixLength: 8 }), true)
    const gone = s.sweep(gen + 1)
    expect(types(gone)).toEqual(['network.address.removed', 'network.link.removed'])
    expect(gone.every((e) => data(e).snapshot === true)).toBe(true)
    expect(data(gone[0])).toMatchObject({ address: '10.0.0.1' })
    expect(data(gone[1])).toMatchObject({ name: 'eth0' })
    expect([s.linkCount, s.addressCount]).toEqual([1, 1])
    // Confirmed in this generation: kept by a sweep of the same generation.
    expect(s.sweep(gen + 1)).toEqual([])
    s.clear()
    expect([s.linkCount, s.addressCount]).toEqual([0, 0])
  })
})

describe('RouteState', () => {
  it('reports routes added and removed once, named by table, protocol, scope and type', () => {
    const names = (i: number) => (i === 3 ? 'eth0' : undefined)
    const s = new RouteState(names)
    const [added] = s.apply(route({ oif: 3, gateway: '10.0.0.1', priority: 100 }), true)
    expect(added).toMatchObject({ type: 'network.route.added', severity: 'info', entity: { kind: 'network-interface', name: 'eth0' } })
    expect(added?.timestamp).toMatch(/^\d+$/)
    expect(data(added)).toStrictEqual({
      family: 'ipv4',
      destination: '10.1.0.0/16',
      gateway: '10.0.0.1',
      index: 3,
      link: 'eth0',
      table: 'main',
      protocol: 'static',
      scope: 'global',
      type: 'unicast',
      metric: 100,
      snapshot: true,
    })
    expect(s.apply(route({ oif: 3, gateway: '10.0.0.1', priority: 100, protocol: 2 }), false)).toEqual([])
    expect(s.count).toBe(1)
    const [removed] = s.apply(route({ op: 'del', oif: 3, gateway: '10.0.0.1', priority: 100 }), false)
    expect(removed).toMatchObject({ type: 'network.route.removed', data: { destination: '10.1.0.0/16', metric: 100 } })
    expect(data(removed)).not.toHaveProperty('snapshot')
    expect(s.apply(route({ op: 'del', oif: 3, gateway: '10.0.0.1', priority: 100 }), false)).toEqual([])
    expect(s.count).toBe(0)
  })

  it('a default route, a route without an interface, and numbers it has no name for', () => {
    const s = new RouteState(() => undefined)
    const [def] = s.apply(route({ dst: '0.0.0.0', dstLength: 0, table: 253, protocol: 16, scope: 253, type: 6, oif: 9 }), false)
    expect(def).toMatchObject({ entity: { kind: 'route', name: 'default' } })
    expect(data(def)).toStrictEqual({ family: 'ipv4', destination: 'default', index: 9, table: 'default', protocol: 'dhcp', scope: 'link', type: 'blackhole' })
    const [odd] = s.apply(route({ family: 'ipv6', dst: 'fd00::', dstLength: 8, table: 100, protocol: 77, scope: 7, type: 7 }), false)
    expect(data(odd)).toStrictEqual({ family: 'ipv6', destination: 'fd00::/8', table: '100', protocol: '77', scope: '7', type: 'unreachable' })
    const named = [0, 1, 2, 3, 42, 186, 187, 188, 189, 192, 12].map((protocol) => data(s.apply(route({ dst: `10.${protocol}.0.0`, protocol }), false)[0]).protocol)
    expect(named).toEqual(['unspec', 'redirect', 'kernel', 'boot', 'babel', 'bgp', 'isis', 'ospf', 'rip', 'eigrp', 'bird'])
    const kinds = [8, 9].map((type) => data(s.apply(route({ dst: `10.200.${type}.0`, type }), false)[0]).type)
    expect(kinds).toEqual(['prohibit', 'throw'])
    const scopes = [200, 254, 255].map((scope) => data(s.apply(route({ dst: `10.201.${scope}.0`, scope }), false)[0]).scope)
    expect(scopes).toEqual(['site', 'host', 'nowhere'])
  })

  it('ignores the local table and bookkeeping route types', () => {
    const s = new RouteState(() => undefined)
    expect(s.apply(route({ table: 255 }), false)).toEqual([])
    for (const type of [2, 3, 4, 5, 10]) expect(s.apply(route({ type }), false)).toEqual([])
    expect(s.count).toBe(0)
  })

  it('routes differing in any part of their key are different routes', () => {
    const s = new RouteState(() => undefined)
    const base = route({ priority: 10, oif: 2, gateway: '10.0.0.1' })
    s.apply(base, false)
    const variants: Partial<RouteRecord>[] = [
      { family: 'ipv6' },
      { table: 100 },
      { dst: '10.2.0.0' },
      { dstLength: 24 },
      { priority: 20 },
      { oif: 3 },
      { gateway: '10.0.0.2' },
      { type: 6 },
    ]
    for (const v of variants) expect(types(s.apply({ ...base, ...v }, false))).toEqual(['network.route.added'])
    expect(s.count).toBe(9)
    // Absent priority, interface and gateway are keyed as 0, 0 and empty.
    const bare = new RouteState(() => undefined)
    bare.apply(route({}), false)
    expect(bare.apply(route({ priority: 0, oif: 0 }), false)).toEqual([])
    expect(types(bare.apply(route({ gateway: '' }), false))).toEqual([])
  })

  it('resync: what the dump did not confirm is removed, marked snapshot; clear forgets everything', () => {
    const s = new RouteState(() => undefined)
    s.apply(route({ dst: '10.1.0.0' }), false)
    s.apply(route({ dst: '10.2.0.0' }), false)
    const gen = s.beginSweep()
    expect(gen).toBe(1)
    s.apply(route({ dst: '10.1.0.0' }), true)
    const gone = s.sweep(gen)
    expect(gone.map((e) => [e.type, data(e).destination, data(e).snapshot])).toEqual([['network.route.removed', '10.2.0.0/16', true]])
    expect(s.sweep(gen)).toEqual([])
    expect(s.count).toBe(1)
    s.clear()
    expect(s.count).toBe(0)
  })
})
