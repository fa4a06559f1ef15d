import type { EventInput } from '../../events/event.js'
import { nowNs } from '../../events/time.js'
import type { AddressRecord, LinkRecord } from '../../native/netlink-codec.js'
import type { AddressData, LinkChange, LinkData } from '../../events/vocabulary/network.js'

const SCOPES: Readonly<Record<number, string>> = { 0: 'global', 200: 'site', 253: 'link', 254: 'host', 255: 'nowhere' }

interface Tracked<T> {
  rec: T
  /** The resync generation that last confirmed it. */
  gen: number
}

/** Fields whose change is reported as network.link.changed (up/down have their own events). */
const WATCHED_FIELDS = ['name', 'linkKind', 'mac', 'mtu', 'lowerUp', 'operState', 'master', 'link', 'linkNetnsId'] as const
const FIELD_NAMES: Readonly<Record<(typeof WATCHED_FIELDS)[number], string>> = {
  name: 'name',
  linkKind: 'kind',
  mac: 'mac',
  mtu: 'mtu',
  lowerUp: 'lowerUp',
  operState: 'operState',
  master: 'master',
  link: 'peerIndex',
  linkNetnsId: 'peerNetnsId',
}

/**
 * The links and addresses of this namespace as last reported, so that the kernel's
 * notifications (many of them repeats) become events only when something actually changed,
 * and so that a dump after an overrun can be diffed (mark and sweep by generation).
 */
export class NetworkState {
  private readonly links = new Map<number, Tracked<LinkRecord>>()
  private readonly addresses = new Map<string, Tracked<AddressRecord>>()
  private generation = 0

  constructor(private readonly netnsName: (nsid: number) => string | undefined) {}

  get linkCount(): number {
    return this.links.size
  }
  get addressCount(): number {
    return this.addresses.size
  }

  linkName(index: number): string | undefined {
    return this.links.get(index)?.rec.name
  }

  applyLink(rec: LinkRecord, snapshot: boolean): EventInput[] {
    const old = this.links.get(rec.index)
    if (rec.op === 'del') {
      const out = this.dropAddressesOf(rec.index)
      this.links.delete(rec.index)
      out.push(this.linkEvent('network.link.removed', old?.rec ?? rec, snapshot))
      return out
    }
    this.links.set(rec.index, { rec, gen: this.generation })
    this.completePeer(rec)
    if (!old) return [this.linkEvent('network.link.added', rec, snapshot)]
    const out: EventInput[] = []
    if (old.rec.up !== rec.up) out.push(this.linkEvent(rec.up ? 'network.link.up' : 'network.link.down', rec, snapshot))
    const changes: LinkChange[] = []
    for (const f of WATCHED_FIELDS) {
      const from = old.rec[f]
      const to = rec[f]
      if (from !== to) changes.push({ field: FIELD_NAMES[f], ...(from !== undefined ? { from } : {}), ...(to !== undefined ? { to } : {}) })
    }
    if (changes.length > 0) out.push(this.linkEvent('network.link.changed', rec, snapshot, changes))
    return out
  }

  applyAddress(rec: AddressRecord, snapshot: boolean): EventInput[] {
    const key = addressKey(rec)
    const old = this.addresses.get(key)
    if (rec.op === 'del') {
      if (!old) return []
      this.addresses.delete(key)
      return [this.addressEvent('network.address.removed', rec, snapshot)]
    }
    this.addresses.set(key, { rec, gen: this.generation })
    // A repeat (flags such as IPv6 tentative -> permanent) is not a new address.
    return old ? [] : [this.addressEvent('network.address.added', rec, snapshot)]
  }

  /**
   * Veths in this namespace whose peer is `index`: when that peer moves to another namespace
   * the kernel sends nothing about them, so they must be asked for again.
   */
  sameNamespacePeersOf(index: number): number[] {
    const out: number[] = []
    for (const [i, l] of this.links) if (l.rec.link === index && l.rec.linkNetnsId === undefined && i !== index) out.push(i)
    return out
  }

  /** The first half of a veth pair is announced before its peer exists; the second names it. */
  private completePeer(rec: LinkRecord): void {
    if (rec.link === undefined || rec.linkNetnsId !== undefined) return
    const peer = this.links.get(rec.link)
    if (peer && peer.rec.link === undefined && peer.rec.linkKind === rec.linkKind) peer.rec = { ...peer.rec, link: rec.index }
  }

  /** Names of masters and peer namespaces that were not known when the events were made. */
  fillNames(events: EventInput[]): void {
    for (const e of events) {
      if (!e.type.startsWith('network.link.')) continue
      const d = e.data as { -readonly [K in keyof LinkData]: LinkData[K] } | undefined
      if (!d) continue
      if (d.master !== undefined && d.masterName === undefined) {
        const n = this.linkName(d.master)
        if (n !== undefined) d.masterName = n
      }
      if (d.peerNetnsId !== undefined && d.peerNetns === undefined) {
        const n = this.netnsName(d.peerNetnsId)
        if (n !== undefined) d.peerNetns = n
      }
    }
  }

  /** Start a resync: everything not confirmed after this is gone. */
  beginSweep(): number {
    this.generation += 1
    return this.generation
  }

  /** After the dumps of a resync: what was not seen since `gen` began was removed meanwhile. */
  sweep(gen: number): EventInput[] {
    const out: EventInput[] = []
    for (const [key, a] of this.addresses) {
      if (a.gen < gen) {
        this.addresses.delete(key)
        out.push(this.addressEvent('network.address.removed', a.rec, true))
      }
    }
    for (const [index, l] of this.links) {
      if (l.gen < gen) {
        this.links.delete(index)
        out.push(this.linkEvent('network.link.removed', l.rec, true))
      }
    }
    return out
  }

  clear(): void {
    this.links.clear()
    this.addresses.clear()
  }

  private dropAddressesOf(index: number): EventInput[] {
    const out: EventInput[] = []
    for (const [key, a] of this.addresses) {
      if (a.rec.index === index) {
        this.addresses.delete(key)
        out.push(this.addressEvent('network.address.removed', a.rec, false))
      }
    }
    return out
  }

  private linkEvent(
    type: 'network.link.added' | 'network.link.removed' | 'network.link.up' | 'network.link.down' | 'network.link.changed',
    r: LinkRecord,
    snapshot: boolean,
    changes?: LinkChange[],
  ): EventInput {
    const masterName = r.master !== undefined ? this.linkName(r.master) : undefined
    const peerNetns = r.linkNetnsId !== undefined ? this.netnsName(r.linkNetnsId) : undefined
    const data: LinkData = {
      index: r.index,
      name: r.name,
      ...(r.linkKind !== undefined ? { kind: r.linkKind } : {}),
      ...(r.mac !== undefined ? { mac: r.mac } : {}),
      ...(r.mtu !== undefined ? { mtu: r.mtu } : {}),
      up: r.up,
      lowerUp: r.lowerUp,
      operState: r.operState,
      ...(r.master !== undefined ? { master: r.master } : {}),
      ...(masterName !== undefined ? { masterName } : {}),
      ...(r.link !== undefined && r.link !== r.index ? { peerIndex: r.link } : {}),
      ...(r.linkNetnsId !== undefined ? { peerNetnsId: r.linkNetnsId } : {}),
      ...(peerNetns !== undefined ? { peerNetns } : {}),
      ...(snapshot ? { snapshot: true } : {}),
      ...(changes ? { changes } : {}),
    }
    return { type, timestamp: nowNs(), severity: 'info', entity: { kind: 'network-interface', name: r.name }, data }
  }

  private addressEvent(type: 'network.address.added' | 'network.address.removed', r: AddressRecord, snapshot: boolean): EventInput {
    const link = this.linkName(r.index)
    const data: AddressData = {
      index: r.index,
      ...(link !== undefined ? { link } : {}),
      family: r.family,
      address: r.address,
      prefixLength: r.prefixLength,
      cidr: `${r.address}/${r.prefixLength}`,
      scope: SCOPES[r.scope] ?? String(r.scope),
      ...(r.label !== undefined ? { label: r.label } : {}),
      ...(snapshot ? { snapshot: true } : {}),
    }
    return {
      type,
      timestamp: nowNs(),
      severity: 'info',
      ...(link !== undefined ? { entity: { kind: 'network-interface', name: link } } : {}),
      data,
    }
  }
}

function addressKey(r: AddressRecord): string {
  return `${r.index}|${r.address}/${r.prefixLength}`
}
