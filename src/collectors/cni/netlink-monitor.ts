import { open } from 'node:fs/promises'
import { type Clock, systemClock } from '../../core/clock.js'
import type { EventInput } from '../../events/event.js'
import {
  type DecodedBatch,
  encodeDumpRequest,
  encodeGetLinkRequest,
  encodeNsidByFdRequest,
  errnoName,
  loadNetlinkAddon,
  NetlinkSocketError,
  type NetlinkRecord,
  RouteSocket,
  RTNLGRP,
} from '../../native/netlink.js'
import { NetworkState } from './network-state.js'
import { RouteState } from './route-state.js'

const REQUEST_TIMEOUT_MS = 10_000

export interface NetlinkMonitorOptions {
  readonly addonPath?: string
  readonly receiveBufferBytes: number
  readonly sink: (batch: EventInput[]) => void
  /** The reader stopped: the collector cannot go on. */
  readonly onFatal: (error: Error) => void
  /** Namespace ids were assigned or released: names must be looked up again. */
  readonly onNsidChange: () => Promise<void>
  readonly netnsName: (nsid: number) => string | undefined
  /** Also follow routes. */
  readonly routes: boolean
  /** Times request timeouts and the route recheck. Default: the system clock. */
  readonly clock?: Clock
}

/** IPv4 routes die silently with their link or address; this long after such a change, look again. */
const ROUTE_RECHECK_MS = 100

interface Pending {
  readonly dump: boolean
  readonly resolve: (r: NetlinkRecord) => void
  readonly reject: (e: Error) => void
  readonly timer: unknown
}

/**
 * Links and addresses of this namespace over rtnetlink: subscribe first, then dump, so no change
 * falls between the snapshot and the notifications; an overrun (ENOBUFS) dumps again and diffs.
 * Records are applied strictly in arrival order; replies to single requests skip the queue so a
 * handler waiting for one cannot block the queue it sits in.
 */
export class NetlinkMonitor {
  private socket: RouteSocket | undefined
  private readonly state: NetworkState
  private readonly pending = new Map<number, Pending>()
  private readonly queue: NetlinkRecord[] = []
  private draining = false
  private held: EventInput[] = []
  private seq = Math.floor(Math.random() * 0x7fffffff)
  private readonly routes: RouteState
  private resyncing: Promise<void> | undefined
  private readonly wanted = new Set<'full' | 'routes'>()
  private dumpInterrupted = false
  private routeTimer: unknown
  private readonly clock: Clock
  private stopped = true
  readonly stats = { batches: 0, records: 0, malformed: 0, ignored: 0, overruns: 0, resyncs: 0, routeRechecks: 0 }

  constructor(private readonly opts: NetlinkMonitorOptions) {
    this.clock = opts.clock ?? systemClock
    this.state = new NetworkState(opts.netnsName)
    this.routes = new RouteState((i) => this.state.linkName(i))
  }

  get routeCount(): number {
    return this.routes.count
  }

  get links(): number {
    return this.state.linkCount
  }
  get addresses(): number {
    return this.state.addressCount
  }

  /** Subscribe. Throws NetlinkUnavailableError or NetlinkSocketError when netlink cannot be used. */
  open(): void {
    const addon = loadNetlinkAddon(this.opts.addonPath)
    this.stopped = false
    this.state.clear()
    this.routes.clear()
    const groups: number[] = [RTNLGRP.LINK, RTNLGRP.IPV4_IFADDR, RTNLGRP.IPV6_IFADDR, RTNLGRP.NSID]
    if (this.opts.routes) groups.push(RTNLGRP.IPV4_ROUTE, RTNLGRP.IPV6_ROUTE)
    this.socket = RouteSocket.open(
      addon,
      { groups, rcvbufBytes: this.opts.receiveBufferBytes },
      (b) => this.onBatch(b),
    )
  }

  /** The initial dump: resolves when the state is known (notifications keep flowing after). */
  async synchronize(signal: AbortSignal): Promise<void> {
    const onAbort = (): void => this.rejectAll(new Error('start aborted'))
    signal.addEventListener('abort', onAbort, { once: true })
    try {
      await this.resync('full')
    } finally {
      signal.removeEventListener('abort', onAbort)
    }
    if (signal.aborted) throw new Error('start aborted')
  }

  stop(): void {
    this.stopped = true
    if (this.routeTimer !== undefined) this.clock.clearTimeout(this.routeTimer)
    this.routeTimer = undefined
    this.wanted.clear()
    this.socket?.close()
    this.socket = undefined
    this.rejectAll(new Error('netlink monitor stopped'))
    this.queue.length = 0
    this.held = []
  }

  /** The id (in our namespace) of the namespace bound at `path`; undefined when none is assigned. */
  async queryNsid(path: string): Promise<number | undefined> {
    if (!this.socket) return undefined
    let fh
    try {
      fh = await open(path, 'r')
    } catch {
      return undefined
    }
    try {
      const rec = await this.request(encodeNsidByFdRequest.bind(null, fh.fd), false)
      return rec.kind === 'nsid' && rec.nsid >= 0 ? rec.nsid : undefined
    } catch {
      // Not a namespace file (yet: `ip netns add` creates the file before mounting on it).
      return undefined
    } finally {
      await fh.close()
    }
  }

  private request(encode: (seq: number) => Buffer, dump: boolean): Promise<NetlinkRecord> {
    const socket = this.socket
    if (!socket) return Promise.reject(new Error('netlink monitor stopped'))
    this.seq = (this.seq + 1) >>> 0
    const seq = this.seq
    return new Promise<NetlinkRecord>((resolve, reject) => {
      const timer = this.clock.setTimeout(() => {
        this.pending.delete(seq)
        reject(new Error(`netlink request ${seq} got no answer in ${REQUEST_TIMEOUT_MS} ms`))
      }, REQUEST_TIMEOUT_MS)
      this.pending.set(seq, { dump, resolve, reject, timer })
      try {
        socket.send(encode(seq))
      } catch (e) {
        this.clock.clearTimeout(timer)
        this.pending.delete(seq)
        reject(e instanceof Error ? e : new Error(String(e)))
      }
    })
  }

  /** Fetch one link again; its answer joins the queue like a notification. */
  private requeryLink(index: number): void {
    this.request((seq) => encodeGetLinkRequest(index, seq), false).then(
      (r) => {
        if (r.kind !== 'link' || this.stopped) return
        this.queue.push(r)
        void this.drain()
      },
      () => {
        // Gone too (the pair was deleted): its own RTM_DELLINK reports that.
      },
    )
  }

  private async dump(what: 'links' | 'addresses' | 'routes'): Promise<void> {
    const end = await this.request((seq) => encodeDumpRequest(what, seq), true)
    if (end.kind === 'error' && end.errno !== 0) throw new NetlinkSocketError(`dump ${what}`, end.errno, errnoName(end.errno))
  }

  /**
   * `full`: dump links, addresses (and routes); `routes`: routes only. What a dump did not
   * confirm is reported removed. Requests made while one runs are served by one more round.
   */
  private resync(scope: 'full' | 'routes'): Promise<void> {
    this.wanted.add(scope)
    if (this.resyncing) return this.resyncing
    this.resyncing = (async () => {
      try {
        while (this.wanted.size > 0 && !this.stopped) {
          const full = this.wanted.has('full')
          this.wanted.clear()
          this.dumpInterrupted = false
          if (full) this.stats.resyncs += 1
          else this.stats.routeRechecks += 1
          const gen = full ? this.state.beginSweep() : 0
          const routeGen = this.opts.routes ? this.routes.beginSweep() : 0
          if (full) {
            await this.dump('links')
            await this.dump('addresses')
          }
          if (this.opts.routes) await this.dump('routes')
          // An interrupted dump may have skipped entries: only a clean one may declare them gone.
          if (this.dumpInterrupted) {
            this.wanted.add(full ? 'full' : 'routes')
            continue
          }
          if (full) this.emit(this.state.sweep(gen))
          if (this.opts.routes) this.emit(this.routes.sweep(routeGen))
        }
      } finally {
        this.resyncing = undefined
      }
    })()
    return this.resyncing
  }

  private scheduleRouteRecheck(): void {
    if (!this.opts.routes || this.stopped || this.routeTimer !== undefined) return
    this.routeTimer = this.clock.setTimeout(() => {
      this.routeTimer = undefined
      this.resync('routes').catch((e: unknown) => this.fail(e))
    }, ROUTE_RECHECK_MS)
  }

  private emit(batch: EventInput[]): void {
    if (batch.length > 0 && !this.stopped) this.opts.sink(batch)
  }

  private onBatch(b: DecodedBatch): void {
    this.stats.batches += 1
    this.stats.records += b.records.length
    this.stats.malformed += b.malformed
    this.stats.ignored += b.ignored
    const port = this.socket?.portId
    for (const r of b.records) {
      if ('pid' in r && r.pid === port && this.pending.get(r.seq)?.dump === false) {
        this.settle(r.seq, r)
        continue
      }
      this.queue.push(r)
    }
    void this.drain()
  }

  private settle(seq: number, r: NetlinkRecord): void {
    const p = this.pending.get(seq)
    if (!p) return
    this.pending.delete(seq)
    this.clock.clearTimeout(p.timer)
    p.resolve(r)
  }

  private rejectAll(e: Error): void {
    for (const [seq, p] of this.pending) {
      this.clock.clearTimeout(p.timer)
      this.pending.delete(seq)
      p.reject(e)
    }
  }

  private async drain(): Promise<void> {
    if (this.draining) return
    this.draining = true
    const port = this.socket?.portId
    try {
      while (this.queue.length > 0 && !this.stopped) {
        const r = this.queue.shift() as NetlinkRecord
        const fromDump = 'pid' in r && r.pid === port && this.pending.get(r.seq)?.dump === true
        switch (r.kind) {
          case 'link': {
            const peers = r.op === 'del' ? this.state.sameNamespacePeersOf(r.index) : []
            const events = this.state.applyLink(r, fromDump)
            this.held.push(...events)
            for (const p of peers) this.requeryLink(p)
            if (events.some((e) => e.type === 'network.link.down' || e.type === 'network.link.removed')) this.scheduleRouteRecheck()
            break
          }
          case 'address': {
            const events = this.state.applyAddress(r, fromDump)
            this.held.push(...events)
            if (r.op === 'del' && r.family === 'ipv4') this.scheduleRouteRecheck()
            break
          }
          case 'route':
            this.held.push(...this.routes.apply(r, fromDump))
            break
          case 'done':
          case 'error':
            if (fromDump) {
              if (r.kind === 'done' && r.interrupted) this.dumpInterrupted = true
              // Everything the dump sent is applied: names of masters that came later in the
              // dump are known now. Flush before its caller sweeps.
              this.settle(r.seq, r)
              this.flush()
            }
            break
          case 'nsid':
            // Link events that follow may name the peer's namespace: learn the new id first.
            this.flush()
            await this.opts.onNsidChange()
            break
          case 'overrun':
            this.stats.overruns += 1
            this.resync('full').catch((e: unknown) => this.fail(e))
            break
          case 'fatal':
            this.fail(new NetlinkSocketError('recv', r.errno, errnoName(r.errno)))
            break
        }
      }
    } finally {
      this.flush()
      this.draining = false
    }
  }

  /**
   * Events are held while a dump runs, notifications included, so they leave in arrival order
   * and a dump's links can name masters that the dump listed after them.
   */
  private flush(): void {
    for (const p of this.pending.values()) if (p.dump) return
    const batch = this.held
    this.held = []
    this.state.fillNames(batch)
    this.emit(batch)
  }

  private fail(e: unknown): void {
    if (this.stopped) return
    const err = e instanceof Error ? e : new Error(String(e))
    this.opts.onFatal(new Error(`netlink stopped: ${err.message}`))
  }
}
