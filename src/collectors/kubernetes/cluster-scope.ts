/**
 * Cluster-wide resources, collected once per cluster: only while this agent holds the Lease.
 *
 * Exactly once across a handover, without re-reporting the cluster: the holder reports a
 * cluster-wide change only after a Lease renewal has recorded, in the Lease's annotation, the
 * resourceVersion each watch had reached when the change arrived (changes wait at most a retry
 * period). A new holder reads those versions from the record it takes over, lists each resource
 * as it was at that version (silently: that state was reported) and watches from there, so it
 * reports exactly the changes its predecessor had not. A holder that loses the Lease stops its
 * watches at once and drops what it had not recorded; its successor reports those. When a
 * version is no longer in the server's history, the fresh list is reported marked `resync`.
 */
import { type ElectionStatus, type ElectorOptions, LeaderElector } from './election.js'
import type { HeldLease } from './lease.js'
import type { Change, ChangeMode, Reflector } from './reflector.js'

/** Annotation on the Lease: `{ "<resource>[@ns]": "<resourceVersion>" }` reported up to. */
export const RESUME_ANNOTATION = 'tapio.dev/reported-versions'

export interface ClusterScopeOptions extends Omit<ElectorOptions, 'annotations' | 'onStartedLeading' | 'onRenewed' | 'onStoppedLeading'> {
  /** One reflector per cluster-wide watch, resuming from `resumeFrom` when given. */
  readonly makeReflectors: (
    onChanges: (changes: readonly Change[], mode?: ChangeMode) => void,
    resumeFrom: (key: string) => string | undefined,
  ) => Reflector[]
  /** Reports changes (mapped to events, applied to the metadata cache). */
  readonly report: (changes: readonly Change[], resync: boolean) => void
  /** Applies changes to the metadata cache without reporting them (a resumed baseline). */
  readonly apply: (changes: readonly Change[]) => void
}

interface Pending {
  readonly changes: readonly Change[]
  readonly resync: boolean
}

export interface ClusterScopeCounters {
  /** Cluster-wide changes reported after a renewal recorded them. */
  committed: number
  /** Changes dropped when leadership was lost before a renewal recorded them (the successor reports them). */
  uncommitted: number
  /** Resources resumed from the predecessor's recorded version. */
  resumed: number
  /** Resources listed afresh after a handover and reported as a resync (their version was gone). */
  resyncs: number
  /** Times the cluster-wide watches started (became leader) and stopped. */
  started: number
  stopped: number
}

export class ClusterScope {
  readonly elector: LeaderElector
  readonly counters: ClusterScopeCounters = { committed: 0, uncommitted: 0, resumed: 0, resyncs: 0, started: 0, stopped: 0 }
  private reflectors: Reflector[] = []
  private pending: Pending[] = []
  /** How many pending entries the record being written covers. */
  private snapshotIndex = 0
  private term = 0
  private stopping = false
  private recorded: Readonly<Record<string, string>> = {}

  constructor(private readonly opts: ClusterScopeOptions) {
    this.elector = new LeaderElector({
      ...opts,
      annotations: () => this.progress(),
      onStartedLeading: (held) => this.startLeading(held),
      onRenewed: () => this.commit(),
      onStoppedLeading: () => (this.stopping ? this.stopWatches() : this.stopLeading()),
    })
  }

  /** Cluster-wide watches open now (0 unless leading). */
  get watching(): readonly Reflector[] {
    return this.reflectors
  }

  start(): void {
    this.elector.start()
  }

  /**
   * Stops the watches, then gives the lease up with a record of what the watches had reached;
   * if that write succeeds the changes it covers are reported (the successor starts after them),
   * otherwise they are dropped (the successor reports them).
   */
  async stop(): Promise<void> {
    this.stopping = true
    const released = await this.elector.stop()
    if (released) this.commit()
    this.stopLeading()
  }

  status(): ElectionStatus & { readonly clusterWatches: number; readonly pendingChanges: number } {
    return { ...this.elector.status(), clusterWatches: this.reflectors.length, pendingChanges: this.pendingCount() }
  }

  private pendingCount(): number {
    return this.pending.reduce((n, p) => n + p.changes.length, 0)
  }

  /** The versions every watch has reached, for the record about to be written. */
  private progress(): Readonly<Record<string, string>> {
    if (this.reflectors.length > 0) {
      this.snapshotIndex = this.pending.length
      const versions: Record<string, string> = {}
      for (const r of this.reflectors) {
        const v = r.version
        if (v !== undefined) versions[r.key] = v
      }
      this.recorded = { [RESUME_ANNOTATION]: JSON.stringify(versions) }
    }
    // While stopping, the watches are gone: the versions they had reached still hold.
    return this.recorded
  }

  private commit(): void {
    const n = Math.min(this.snapshotIndex, this.pending.length)
    const done = this.pending.splice(0, n)
    this.snapshotIndex = 0
    for (const p of done) {
      this.counters.committed += p.changes.length
      this.opts.report(p.changes, p.resync)
    }
  }

  private startLeading(held: HeldLease): void {
    this.stopLeading()
    this.term += 1
    const term = this.term
    this.counters.started += 1
    // Also when we take back our own record (we stepped down, nobody else took over): what we had
    // not recorded was dropped, so resume from what the record says, whoever wrote it.
    const resume = parseVersions(held.previous?.[RESUME_ANNOTATION])
    this.reflectors = this.opts.makeReflectors(
      (changes, mode) => {
        if (term !== this.term) return
        if (mode === 'baseline') return this.opts.apply(changes)
        if (mode === 'resync') this.counters.resyncs += 1
        this.pending.push({ changes, resync: mode === 'resync' })
      },
      (key) => {
        const v = resume[key]
        if (v !== undefined) this.counters.resumed += 1
        return v
      },
    )
    for (const r of this.reflectors) r.start()
  }

  /** At once: no cluster-wide watch outlives the lease. What was not recorded is dropped. */
  private stopLeading(): void {
    this.stopWatches()
    this.counters.uncommitted += this.pendingCount()
    this.pending = []
    this.snapshotIndex = 0
  }

  private stopWatches(): void {
    this.term += 1
    const reflectors = this.reflectors
    this.reflectors = []
    if (reflectors.length > 0) this.counters.stopped += 1
    for (const r of reflectors) void r.stop()
  }
}

function parseVersions(text: string | undefined): Readonly<Record<string, string>> {
  if (text === undefined) return {}
  try {
    const parsed: unknown = JSON.parse(text)
    if (typeof parsed !== 'object' || parsed === null) return {}
    const out: Record<string, string> = {}
    for (const [k, v] of Object.entries(parsed)) if (typeof v === 'string') out[k] = v
    return out
  } catch {
    // A record written by something else: start from a fresh list.
    return {}
  }
}
