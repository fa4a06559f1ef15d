import * as Result from 'effect/Result'
import { type Clock, systemClock } from '../../core/clock.js'
import { type Collector, type CollectorHealth, type CollectorOutput, CollectorStateError } from '../../core/collector.js'
import { type HandoffQueue, HandoffTotals } from '../../core/handoff-queue.js'
import { queueStatistics, type SourceStatistics } from '../../core/statistics.js'
import type { EventInput } from '../../events/event.js'
import type { K8sContext } from '../../events/schema.js'
import { explainOpenFailure, NetlinkUnavailableError } from '../../native/netlink.js'
import { CniConfigWatcher, CniResultsWatcher, type WatcherTiming } from './cni-watchers.js'
import { type CniCollectorConfig, parseCniConfig } from './config.js'
import type { DirWatcher } from './dir-watcher.js'
import { NetlinkMonitor } from './netlink-monitor.js'
import { NetnsWatcher } from './netns-watcher.js'

/** Why netlink cannot be used, phrased for health and for `start()` failures. */
export function netlinkFailureReason(e: unknown): string {
  if (e instanceof NetlinkUnavailableError) return e.reason
  return explainOpenFailure(e)
}

export interface CniCollectorOptions {
  /**
   * Times the directory watchers' debounce, rescans and polls, netlink request timeouts and the
   * route recheck (tests drive a ManualClock). Default: the system clock.
   */
  readonly clock?: Clock
}

/**
 * Container networking on this node: links and addresses (rtnetlink), named network namespaces,
 * CNI network configuration and CNI attachment results.
 */
export class CniCollector implements Collector {
  readonly config: CniCollectorConfig
  private queue: HandoffQueue | undefined
  private readonly queues = new HandoffTotals()
  private stopping: Promise<void> | undefined
  private starting = false
  private netlink: NetlinkMonitor | undefined
  private netns: NetnsWatcher | undefined
  private cniConfig: CniConfigWatcher | undefined
  private cniResults: CniResultsWatcher | undefined
  private running = false
  /** Bumped by every start and stop, so a start overtaken by stop() notices. */
  private epoch = 0
  private netlinkReason: string | undefined
  private failure: string | undefined
  private readonly podOfLink = new Map<number, K8sContext>()
  private readonly totals = { batches: 0, records: 0, malformed: 0, ignored: 0, overruns: 0, resyncs: 0, routeRechecks: 0, invalidConfigFiles: 0, invalidResultFiles: 0, scans: 0 }

  private readonly clock: Clock

  constructor(config: unknown = {}, options: CniCollectorOptions = {}) {
    const r = parseCniConfig(config)
    if (Result.isFailure(r)) throw r.failure
    this.config = r.success
    this.clock = options.clock ?? systemClock
  }

  async start(signal: AbortSignal): Promise<void> {
    if (this.running || this.starting) throw new CollectorStateError('cni collector: already started')
    if (signal.aborted) throw new Error('start aborted')
    if (this.stopping) await this.stopping
    this.starting = true
    try {
      await this.startRun(signal)
    } finally {
      this.starting = false
    }
  }

  private async startRun(signal: AbortSignal): Promise<void> {
    const epoch = ++this.epoch
    // stop() during start (without the signal) must not leave parts running that start adds later.
    const checkCurrent = (): void => {
      if (signal.aborted) throw new Error('start aborted')
      if (epoch !== this.epoch) throw new Error('stopped while starting')
    }
    this.failure = undefined
    this.netlinkReason = undefined
    const queue = this.queues.open({ capacity: this.config.maxQueuedEvents, overflow: 'newest' })
    this.queue = queue
    const sink = (batch: EventInput[]): void => {
      if (batch.length === 0) return
      this.attributeToPods(batch)
      queue.push(batch)
    }
    const timing: WatcherTiming = {
      clock: this.clock,
      pollIntervalMs: this.config.pollIntervalMs,
      rescanIntervalMs: this.config.rescanIntervalMs,
      debounceMs: this.config.debounceMs,
    }
    const netns = this.config.netns.enabled ? new NetnsWatcher(this.config.netns, timing, sink) : undefined
    this.netns = netns
    try {
      if (this.config.netlink.mode !== 'off') {
        const monitor = new NetlinkMonitor({
          ...(this.config.netlink.addonPath !== undefined ? { addonPath: this.config.netlink.addonPath } : {}),
          receiveBufferBytes: this.config.netlink.receiveBufferBytes,
          routes: this.config.netlink.routes,
          clock: this.clock,
          sink,
          onFatal: (e) => {
            this.failure = e.message
            queue.fail(e)
          },
          onNsidChange: () => netns?.refreshIds() ?? Promise.resolve(),
          netnsName: (nsid) => netns?.nameForNsid(nsid),
        })
        try {
          monitor.open()
          this.netlink = monitor
        } catch (e) {
          this.netlinkReason = netlinkFailureReason(e)
          if (this.config.netlink.mode === 'required') throw new Error(`unavailable: ${this.netlinkReason}`)
        }
      }
      // Namespaces first, so the dump can name the namespaces veth peers live in.
      const monitor = this.netlink
      await netns?.start(monitor ? (p) => monitor.queryNsid(p) : undefined)
      checkCurrent()
      if (monitor) {
        try {
          await monitor.synchronize(signal)
        } catch (e) {
          if (signal.aborted || this.config.netlink.mode === 'required') throw e
          this.netlinkReason = netlinkFailureReason(e)
          monitor.stop()
          this.netlink = undefined
        }
        checkCurrent()
      }
      if (this.config.cniConfig.enabled) {
        this.cniConfig = new CniConfigWatcher(this.config.cniConfig, timing, sink)
        await this.cniConfig.start()
        checkCurrent()
      }
      if (this.config.cniResults.enabled) {
        this.cniResults = new CniResultsWatcher(this.config.cniResults, timing, sink)
        await this.cniResults.start()
      }
      checkCurrent()
    } catch (e) {
      await this.release()
      throw e
    }
    this.running = true
  }

  /**
   * A host-side veth whose peer lives in a pod sandbox's namespace gets that pod's identity.
   * CNI writes its result after creating the veth, so the first events of a new pod's veth go
   * out without it; later ones (down, removed at pod deletion) carry it.
   */
  private attributeToPods(batch: EventInput[]): void {
    const results = this.cniResults
    if (!results) return
    for (let i = 0; i < batch.length; i++) {
      const e = batch[i] as EventInput
      if (e.k8s || !e.type.startsWith('network.link.')) continue
      const d = e.data as { index?: number; peerNetns?: string } | undefined
      if (d?.index === undefined) continue
      const a = d.peerNetns !== undefined ? results.attachmentInNetns(d.peerNetns) : undefined
      // Remembered per link: while a veth is torn down the kernel stops naming its peer.
      const k8s = a ? (a.k8s ?? { containerId: a.data.containerId }) : this.podOfLink.get(d.index)
      if (a && k8s) this.podOfLink.set(d.index, k8s)
      if (e.type === 'network.link.removed') this.podOfLink.delete(d.index)
      if (k8s) batch[i] = { ...e, k8s }
    }
  }

  events(): AsyncIterable<CollectorOutput> {
    const q = this.queue
    if (!q) throw new CollectorStateError('cni collector: events() before a successful start()')
    return q
  }

  stop(): Promise<void> {
    this.epoch += 1
    this.running = false
    this.stopping ??= this.release().finally(() => {
      this.stopping = undefined
    })
    return this.stopping
  }

  private async release(): Promise<void> {
    // Taken first: a stop() racing a failing start() must not release (or count) a part twice.
    const { netlink, netns, cniConfig, cniResults } = this
    const queue = this.queue
    this.netlink = this.netns = this.cniConfig = this.cniResults = undefined
    netlink?.stop()
    if (netlink) this.accumulate(netlink)
    await Promise.all([netns?.stop(), cniConfig?.stop(), cniResults?.stop()])
    if (cniConfig) this.totals.invalidConfigFiles += cniConfig.invalidFiles
    if (cniResults) this.totals.invalidResultFiles += cniResults.invalidFiles
    for (const w of [netns?.dirWatcher, cniConfig?.dirWatcher, cniResults?.dirWatcher]) this.totals.scans += w?.scans ?? 0
    queue?.end()
    this.podOfLink.clear()
  }

  private accumulate(m: NetlinkMonitor): void {
    for (const k of ['batches', 'records', 'malformed', 'ignored', 'overruns', 'resyncs', 'routeRechecks'] as const) this.totals[k] += m.stats[k]
  }

  health(): CollectorHealth {
    const details: Record<string, unknown> = {
      netlink: this.netlink ? 'connected' : this.config.netlink.mode === 'off' ? 'off' : (this.netlinkReason ?? 'not started'),
      links: this.netlink?.links ?? 0,
      addresses: this.netlink?.addresses ?? 0,
      ...(this.config.netlink.routes ? { routes: this.netlink?.routeCount ?? 0 } : {}),
      namespaces: this.netns?.count ?? 0,
      ...this.dirDetails(),
    }
    if (this.failure) return { status: 'recoverable_error', message: this.failure, details }
    if (this.netlinkReason) {
      if (this.config.netlink.mode === 'required') return { status: 'permanent_error', message: `unavailable: ${this.netlinkReason}`, details }
      return {
        status: 'recoverable_error',
        message: `degraded: no link/address events (${this.netlinkReason}); CNI files and namespaces are still watched`,
        details,
      }
    }
    const missing = this.watchers().filter((w) => w.state === 'missing').map((w) => w.dir)
    if (missing.length > 0) return { status: 'ok', message: `waiting for ${missing.join(', ')} to be created`, details }
    return { status: 'ok', details }
  }

  statistics(): SourceStatistics {
    const live = { batches: 0, records: 0, malformed: 0, ignored: 0, overruns: 0, resyncs: 0, routeRechecks: 0 }
    if (this.netlink) for (const k of Object.keys(live) as (keyof typeof live)[]) live[k] = this.netlink.stats[k]
    return queueStatistics(this.queues.counters(), {
      netlinkBatches: this.totals.batches + live.batches,
      netlinkRecords: this.totals.records + live.records,
      netlinkMalformed: this.totals.malformed + live.malformed,
      netlinkIgnored: this.totals.ignored + live.ignored,
      netlinkOverruns: this.totals.overruns + live.overruns,
      netlinkResyncs: this.totals.resyncs + live.resyncs,
      routeRechecks: this.totals.routeRechecks + live.routeRechecks,
      invalidConfigFiles: this.totals.invalidConfigFiles + (this.cniConfig?.invalidFiles ?? 0),
      invalidResultFiles: this.totals.invalidResultFiles + (this.cniResults?.invalidFiles ?? 0),
      directoryScans: this.totals.scans + this.watchers().reduce((n, w) => n + w.scans, 0),
    })
  }

  private watchers(): DirWatcher[] {
    return [this.netns?.dirWatcher, this.cniConfig?.dirWatcher, this.cniResults?.dirWatcher].filter((w): w is DirWatcher => w !== undefined)
  }

  private dirDetails(): Record<string, unknown> {
    const d: Record<string, unknown> = {}
    if (this.netns) d.netnsDir = { path: this.netns.dirWatcher.dir, state: this.netns.dirWatcher.state }
    if (this.cniConfig) d.confDir = { path: this.cniConfig.dirWatcher.dir, state: this.cniConfig.dirWatcher.state }
    if (this.cniResults) d.resultsDir = { path: this.cniResults.dirWatcher.dir, state: this.cniResults.dirWatcher.state }
    return d
  }
}
