import type { EventInput } from '../../events/event.js'
import { nowNs } from '../../events/time.js'
import type { RouteRecord } from '../../native/netlink-codec.js'
import type { RouteData } from '../../events/vocabulary/network.js'

const RT_TABLE_LOCAL = 255
/** Route types worth reporting; local, broadcast, anycast and multicast entries are bookkeeping. */
const TYPES: Readonly<Record<number, string>> = { 1: 'unicast', 6: 'blackhole', 7: 'unreachable', 8: 'prohibit', 9: 'throw' }
const PROTOCOLS: Readonly<Record<number, string>> = {
  0: 'unspec',
  1: 'redirect',
  2: 'kernel',
  3: 'boot',
  4: 'static',
  16: 'dhcp',
  42: 'babel',
  186: 'bgp',
  187: 'isis',
  188: 'ospf',
  189: 'rip',
  192: 'eigrp',
  12: 'bird',
}
const SCOPES: Readonly<Record<number, string>> = { 0: 'global', 200: 'site', 253: 'link', 254: 'host', 255: 'nowhere' }
const TABLES: Readonly<Record<number, string>> = { 253: 'default', 254: 'main' }

interface Tracked {
  rec: RouteRecord
  gen: number
}

/**
 * Routes of this namespace (all tables but `local`). IPv4 routes that die with their link or
 * address are removed by the kernel without a notification, so the monitor dumps routes again
 * after such changes; this state diffs the dump (mark and sweep, as for links).
 */
export class RouteState {
  private readonly routes = new Map<string, Tracked>()
  private generation = 0

  constructor(private readonly linkName: (index: number) => string | undefined) {}

  get count(): number {
    return this.routes.size
  }

  apply(rec: RouteRecord, snapshot: boolean): EventInput[] {
    if (rec.table === RT_TABLE_LOCAL || TYPES[rec.type] === undefined) return []
    const key = routeKey(rec)
    const old = this.routes.get(key)
    if (rec.op === 'del') {
      if (!old) return []
      this.routes.delete(key)
      return [this.event('network.route.removed', old.rec, snapshot)]
    }
    this.routes.set(key, { rec, gen: this.generation })
    return old ? [] : [this.event('network.route.added', rec, snapshot)]
  }

  beginSweep(): number {
    this.generation += 1
    return this.generation
  }

  sweep(gen: number): EventInput[] {
    const out: EventInput[] = []
    for (const [key, r] of this.routes) {
      if (r.gen < gen) {
        this.routes.delete(key)
        out.push(this.event('network.route.removed', r.rec, true))
      }
    }
    return out
  }

  clear(): void {
    this.routes.clear()
  }

  private event(type: 'network.route.added' | 'network.route.removed', r: RouteRecord, snapshot: boolean): EventInput {
    const link = r.oif !== undefined ? this.linkName(r.oif) : undefined
    const data: RouteData = {
      family: r.family,
      destination: r.dstLength === 0 ? 'default' : `${r.dst}/${r.dstLength}`,
      ...(r.gateway !== undefined ? { gateway: r.gateway } : {}),
      ...(r.oif !== undefined ? { index: r.oif } : {}),
      ...(link !== undefined ? { link } : {}),
      table: TABLES[r.table] ?? String(r.table),
      protocol: PROTOCOLS[r.protocol] ?? String(r.protocol),
      scope: SCOPES[r.scope] ?? String(r.scope),
      type: TYPES[r.type] ?? String(r.type),
      ...(r.priority !== undefined ? { metric: r.priority } : {}),
      ...(snapshot ? { snapshot: true } : {}),
    }
    return {
      type,
      timestamp: nowNs(),
      severity: 'info',
      entity: link !== undefined ? { kind: 'network-interface', name: link } : { kind: 'route', name: data.destination },
      data,
    }
  }
}

function routeKey(r: RouteRecord): string {
  return `${r.family}|${r.table}|${r.dst}/${r.dstLength}|${r.priority ?? 0}|${r.oif ?? 0}|${r.gateway ?? ''}|${r.type}`
}
