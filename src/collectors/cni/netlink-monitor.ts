import { open } from 'node:fs/promises'
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
}

interface Pending {
  readonly dump: boolean
  readonly resolve: (r: NetlinkRecord) => void
  readonly reject: (e: Error) => void
  readonly timer: NodeJS.Timeout
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
  private resyncing: Promise<void> | undefined
  private resyncAgain = false
  private stopped = true
  readonly stats = { batches: 0, records: 0, malformed: 0, ignored: 0, overruns: 0, resyncs: 0 }

  constructor(private readonly opts: NetlinkMonitorOptions) {
    this.state = new NetworkState(opts.netnsName)
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
    this.socket = RouteSocket.open(
      addon,
      { groups: [RTNLGRP.LINK, RTNLGRP.IPV4_IFADDR, RTNLGRP.IPV6_IFADDR, RTNLGRP.NSID], rcvbufBytes: this.opts.receiveBufferBytes },
      (b) => this.onBatch(b),
    )
  }

  /** The initial dump: resolves when the state is known (notifications keep flowing after). */
  async synchronize(signal: AbortSignal): Promise<void> {
    const onAbort = (): void => this.rejectAll(new Error('start aborted'))
    signal.addEventListener('abort', onAbort, { once: true })
    try {
      await this.resync()
    } finally {
      signal.removeEventListener('abort', onAbort)
    }
    if (signal.aborted) throw new Error('start aborted')
  }

  stop(): void {
    this.stopped = true
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
      const timer = setTimeout(() => {
        this.pending.delete(seq)
        reject(new Error(`netlink request ${seq} got no answer in ${REQUEST_TIMEOUT_MS} ms`))
      }, REQUEST_TIMEOUT_MS)
      this.pending.set(seq, { dump, resolve, reject, timer })
      try {
        socket.send(encode(seq))
      } catch (e) {
        clearTimeout(timer)
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

  private async dump(what: 'links' | 'addresses'): Promise<void> {
    const end = await this.request((seq) => encodeDumpRequest(what, seq), true)
    if (end.kind === 'error' && end.errno !== 0) throw new NetlinkSocketError(`dump ${what}`, end.errno, errnoName(end.errno))
  }

  /** Dump links then addresses; what the dumps did not confirm is reported removed. */
  private resync(): Promise<void> {
    if (this.resyncing) {
      this.resyncAgain = true
      return this.resyncing
    }
    this.resyncing = (async () => {
      try {
        do {
          this.resyncAgain = false
          this.stats.resyncs += 1
          const gen = this.state.beginSweep()
          await this.dump('links')
          await this.dump('addresses')
          // An interrupted dump may have skipped entries: only a clean one may declare them gone.
          if (!this.resyncAgain) this.emit(this.state.sweep(gen))
        } while (this.resyncAgain && !this.stopped)
      } finally {
        this.resyncing = undefined
      }
    })()
    return this.resyncing
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
    clearTimeout(p.timer)
    p.resolve(r)
  }

  private rejectAll(e: Error): void {
    for (const [seq, p] of this.pending) {
      clearTimeout(p.timer)
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
            this.held.push(...this.state.applyLink(r, fromDump))
            for (const p of peers) this.requeryLink(p)
            break
          }
          case 'address':
            this.held.push(...this.state.applyAddress(r, fromDump))
            break
          case 'done':
          case 'error':
            if (fromDump) {
              if (r.kind === 'done' && r.interrupted) this.resyncAgain = true
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
            void this.resync().catch((e: unknown) => this.fail(e))
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
