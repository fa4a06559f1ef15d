import * as Result from 'effect/Result'
import type { KubeConfig } from '@kubernetes/client-node'
import { backoffDelay } from '../../core/backoff.js'
import { type Clock, systemClock } from '../../core/clock.js'
import { delay } from '../../core/delay.js'
import type { KubernetesConfig } from './config.js'
import { getJson, KubeApiError, openWatch, type WatchHandle, type WatchOutcome } from './kube-api.js'
import { bookmarkVersion, decodeList, decodeObject, decodeStatus, type KubeObject } from './objects.js'
import { type ResourceInfo, resourcePath } from './resources.js'

export type ChangeType = 'added' | 'updated' | 'deleted'
export interface Change {
  readonly type: ChangeType
  readonly object: KubeObject
  /** The stored version before this change (updated and deleted only). */
  readonly previous?: KubeObject
}

/** Counters and state of one list+watch loop, as shown in health details. */
export interface ReflectorStatus {
  readonly resource: string
  readonly namespace?: string
  readonly connected: boolean
  readonly synced: boolean
  readonly lastSyncAt?: string
  readonly resourceVersion?: string
  readonly objects: number
  readonly lists: number
  readonly relists: number
  readonly watches: number
  readonly bookmarks: number
  readonly errors: number
  readonly inactivityTimeouts: number
  readonly malformed: number
  readonly consecutiveFailures: number
  readonly lastError?: string
  readonly nextRetryAt?: string
}

export interface ReflectorOptions {
  readonly kc: KubeConfig
  readonly info: ResourceInfo
  readonly namespace?: string
  readonly config: KubernetesConfig
  /**
   * Receives each batch of changes in order (a relist yields one batch). `baseline`: the state
   * at the resumed version (already reported by the previous holder: apply, do not report);
   * `resync`: the resume point was gone, so this is a fresh list reported as a resync.
   */
  readonly onChanges: (changes: readonly Change[], mode?: ChangeMode) => void
  /** Whether an object is reported at all (namespace ignore list). */
  readonly accept: (object: KubeObject) => boolean
  readonly random?: () => number
  /** Settles when the first list may start (pods wait for their owners' first list, to name workloads). */
  readonly after?: Promise<void>
  /** Time for backoff, relist pacing and the inactivity timeout (tests drive a ManualClock). */
  readonly clock?: Clock
  /**
   * Resume where a previous holder stopped: list the state at this resourceVersion (exactly),
   * silently, then watch from it, so only what changed since is reported. If that version is
   * gone (410), list afresh and report it as a resync.
   */
  readonly resumeFrom?: string
}

export type ChangeMode = 'report' | 'baseline' | 'resync'

type Signal = { kind: 'expired' } | { kind: 'inactive' }

/**
 * One list+watch loop for a resource (in one namespace or all). Unlike the client's informer
 * it keeps going after HTTP 5xx, paces re-watches and re-lists, notices dead connections,
 * and turns a re-list into the difference against what it already reported, so unchanged
 * objects produce nothing.
 */
export class Reflector {
  private readonly store = new Map<string, KubeObject>()
  private resourceVersion: string | undefined
  private synced = false
  private lastSyncAt: number | undefined
  private lastListStart = Number.NEGATIVE_INFINITY
  /** Relists caused by an expired watch since the last healthy watch (2 and more: a 410 storm). */
  private expiredInARow = 0
  private lists = 0
  private watches = 0
  private bookmarks = 0
  private errors = 0
  private inactivityTimeouts = 0
  private consecutiveFailures = 0
  private lastError: string | undefined
  private nextRetryAt: number | undefined
  private current: WatchHandle | undefined
  private abort = new AbortController()
  private loop: Promise<void> | undefined
  malformed = 0
  private settleFirstAttempt!: () => void
  /** Settles after the first list attempt (whatever its result) or on stop. */
  readonly firstAttempt = new Promise<void>((resolve) => {
    this.settleFirstAttempt = resolve
  })

  private readonly clock: Clock
  private resumeFrom: string | undefined
  private resyncNext = false

  constructor(private readonly opts: ReflectorOptions) {
    this.clock = opts.clock ?? systemClock
    this.resumeFrom = opts.resumeFrom
  }

  /** The version this loop has seen everything up to (undefined before the first list). */
  get version(): string | undefined {
    return this.resourceVersion
  }

  get key(): string {
    return this.opts.namespace === undefined ? this.opts.info.name : `${this.opts.info.name}@${this.opts.namespace}`
  }

  objects(): IterableIterator<KubeObject> {
    return this.store.values()
  }

  start(): void {
    if (this.loop) return
    this.abort = new AbortController()
    this.loop = this.run(this.abort.signal)
  }

  async stop(): Promise<void> {
    this.abort.abort()
    this.current?.cancel()
    this.settleFirstAttempt()
    const loop = this.loop
    this.loop = undefined
    await loop
    this.store.clear()
    this.resourceVersion = undefined
    this.synced = false
  }

  /** Failing: the last attempt failed and no watch is open now (an open watch after a failure is recovery). */
  failing(): boolean {
    return this.consecutiveFailures > 0 && !(this.current?.connected() ?? false)
  }

  status(): ReflectorStatus {
    return {
      resource: this.opts.info.name,
      ...(this.opts.namespace !== undefined ? { namespace: this.opts.namespace } : {}),
      connected: this.current?.connected() ?? false,
      synced: this.synced,
      ...(this.lastSyncAt !== undefined ? { lastSyncAt: new Date(this.lastSyncAt).toISOString() } : {}),
      ...(this.resourceVersion !== undefined ? { resourceVersion: this.resourceVersion } : {}),
      objects: this.store.size,
      lists: this.lists,
      relists: Math.max(0, this.lists - 1),
      watches: this.watches,
      bookmarks: this.bookmarks,
      errors: this.errors,
      inactivityTimeouts: this.inactivityTimeouts,
      malformed: this.malformed,
      consecutiveFailures: this.consecutiveFailures,
      ...(this.lastError !== undefined ? { lastError: this.lastError } : {}),
      ...(this.nextRetryAt !== undefined ? { nextRetryAt: new Date(this.nextRetryAt).toISOString() } : {}),
    }
  }

  private selectors(): { labelSelector?: string; fieldSelector?: string } {
    const c = this.opts.config
    const own = c.selectors[this.opts.info.name]
    // A resource's own entry replaces the global selectors entirely (`nodes: {}` means none).
    const label = own ? own.labelSelector : c.labelSelector
    let field = own ? own.fieldSelector : c.fieldSelector
    // Ignored namespaces are filtered by the server too when it is cheap to say so.
    if (this.opts.info.namespaced && this.opts.namespace === undefined && c.ignoreNamespaces.length > 0) {
      const ignore = c.ignoreNamespaces.map((ns) => `metadata.namespace!=${ns}`).join(',')
      field = field ? `${field},${ignore}` : ignore
    }
    return { ...(label ? { labelSelector: label } : {}), ...(field ? { fieldSelector: field } : {}) }
  }

  private async failed(error: string, signal: AbortSignal): Promise<void> {
    this.errors += 1
    this.consecutiveFailures += 1
    this.lastError = error
    const wait = backoffDelay({ ...this.opts.config.backoff, factor: 2 }, this.consecutiveFailures, this.opts.random)
    this.nextRetryAt = this.clock.now() + wait
    await delay(wait, signal, this.clock)
    this.nextRetryAt = undefined
  }

  private async run(signal: AbortSignal): Promise<void> {
    let needList = true
    if (this.opts.after) {
      await Promise.race([this.opts.after, new Promise((resolve) => signal.addEventListener('abort', resolve, { once: true }))])
    }
    while (!signal.aborted) {
      if (needList) {
        // Like client-go: the relist after an expired watch is immediate, and a failed list waits
        // its backoff only. A relist costs the API server a full read, so a storm (a watch from a
        // fresh list expiring again at once) gets at most one list per relistMinIntervalMs.
        const wait = this.lastListStart + this.opts.config.relistMinIntervalMs - this.clock.now()
        if (this.expiredInARow > 1 && wait > 0) {
          this.nextRetryAt = this.clock.now() + wait
          const waited = await delay(wait, signal, this.clock)
          this.nextRetryAt = undefined
          if (!waited) return
        }
        this.lastListStart = this.clock.now()
        try {
          await this.list(signal)
          needList = false
          this.settleFirstAttempt()
        } catch (err) {
          if (signal.aborted) return
          if (this.resumeFrom !== undefined && err instanceof KubeApiError && err.statusCode === 410) {
            // The resume point fell out of the server's history: list afresh, reported as a resync.
            this.resumeFrom = undefined
            this.resyncNext = true
            continue
          }
          this.settleFirstAttempt()
          await this.failed(err instanceof Error ? err.message : String(err), signal)
          continue
        }
      }
      const started = this.clock.now()
      let delivered = 0
      const outcome = await this.watchOnce(signal, () => {
        delivered += 1
      })
      if (signal.aborted) return
      // A watch that carried data or stayed up proves the server healthy again: backoff starts over.
      const healthy = delivered > 0 || this.clock.now() - started >= this.opts.config.minHealthyWatchMs
      if (healthy) {
        this.consecutiveFailures = 0
        this.lastError = undefined
      }
      const expired = outcome.kind === 'expired' || (outcome.kind === 'error' && outcome.error.statusCode === 410)
      this.expiredInARow = expired ? (healthy ? 1 : this.expiredInARow + 1) : healthy ? 0 : this.expiredInARow
      switch (outcome.kind) {
        case 'expired':
          // The stored version fell out of the server's history: list again, diff, watch anew.
          this.resourceVersion = undefined
          needList = true
          break
        case 'inactive':
          this.inactivityTimeouts += 1
          await this.failed(`watch delivered nothing for ${this.opts.config.inactivityTimeoutMs} ms`, signal)
          break
        case 'error':
          if (outcome.error.statusCode === 410) {
            this.resourceVersion = undefined
            needList = true
            break
          }
          await this.failed(outcome.error.message, signal)
          break
        case 'closed':
          // A server that closes watches at once (flapping, overloaded) gets backoff, not a busy loop.
          if (!healthy) await this.failed('watch closed immediately by the server', signal)
          break
        case 'cancelled':
          return
      }
    }
  }

  private async list(signal: AbortSignal): Promise<void> {
    const path = resourcePath(this.opts.info, this.opts.namespace)
    const seen = new Map<string, KubeObject>()
    let cont: string | undefined
    let version = ''
    const resume = this.resumeFrom
    const at = resume !== undefined ? { resourceVersion: resume, resourceVersionMatch: 'Exact' } : {}
    do {
      const raw = await getJson(
        this.opts.kc,
        path,
        { ...this.selectors(), limit: String(this.opts.config.listPageSize), continue: cont, ...(cont ? {} : at) },
        this.opts.config.inactivityTimeoutMs,
        signal,
        this.clock,
      )
      const page = decodeList(raw)
      if (Result.isFailure(page)) throw new KubeApiError(`malformed list response from ${path}: ${page.failure}`)
      version = page.success.metadata.resourceVersion
      cont = page.success.metadata.continue ?? undefined
      for (const item of page.success.items) {
        const decoded = decodeObject(this.opts.info.name, item)
        if (Result.isFailure(decoded)) {
          this.malformed += 1
          continue
        }
        if (this.opts.accept(decoded.success)) seen.set(decoded.success.object.metadata.uid, decoded.success)
      }
    } while (cont)
    this.lists += 1
    const changes: Change[] = []
    for (const [uid, object] of seen) {
      const previous = this.store.get(uid)
      if (!previous) changes.push({ type: 'added', object })
      else if (previous.object.metadata.resourceVersion !== object.object.metadata.resourceVersion)
        changes.push({ type: 'updated', object, previous })
    }
    for (const [uid, previous] of this.store) {
      if (!seen.has(uid)) changes.push({ type: 'deleted', object: previous, previous })
    }
    this.store.clear()
    for (const [uid, object] of seen) this.store.set(uid, object)
    this.resourceVersion = version
    this.synced = true
    this.lastSyncAt = this.clock.now()
    this.consecutiveFailures = 0
    this.lastError = undefined
    const mode: ChangeMode = resume !== undefined ? 'baseline' : this.resyncNext ? 'resync' : 'report'
    this.resumeFrom = undefined
    this.resyncNext = false
    if (changes.length > 0) this.opts.onChanges(changes, mode)
  }

  private watchOnce(signal: AbortSignal, onDelivered: () => void): Promise<WatchOutcome | Signal> {
    const c = this.opts.config
    // Spread server-side timeouts so many watches do not all reconnect at the same moment.
    const timeoutSeconds = Math.max(1, Math.round(c.watchTimeoutSeconds * (0.8 + 0.2 * (this.opts.random ?? Math.random)())))
    this.watches += 1
    return new Promise((resolve) => {
      let finished = false
      let idle: unknown
      const finish = (o: WatchOutcome | Signal) => {
        if (finished) return
        finished = true
        this.clock.clearTimeout(idle)
        signal.removeEventListener('abort', onAbort)
        handle.cancel()
        this.current = undefined
        resolve(o)
      }
      const arm = () => {
        this.clock.clearTimeout(idle)
        idle = this.clock.setTimeout(() => finish({ kind: 'inactive' }), c.inactivityTimeoutMs)
      }
      const onAbort = () => finish({ kind: 'cancelled' })
      const handle = openWatch(
        this.opts.kc,
        resourcePath(this.opts.info, this.opts.namespace),
        {
          ...this.selectors(),
          resourceVersion: this.resourceVersion,
          allowWatchBookmarks: true,
          timeoutSeconds,
        },
        (type, object) => {
          if (finished) return
          arm()
          const r = this.onWatchEvent(type, object)
          if (r === 'expired') finish({ kind: 'expired' })
          else if (r instanceof KubeApiError) finish({ kind: 'error', error: r })
          else if (r === 'delivered') onDelivered()
        },
      )
      this.current = handle
      arm()
      signal.addEventListener('abort', onAbort, { once: true })
      if (signal.aborted) onAbort()
      handle.done.then(finish)
    })
  }

  /** Apply one watch event; returns what the loop must do about it. */
  private onWatchEvent(type: unknown, raw: unknown): 'delivered' | 'ignored' | 'expired' | KubeApiError {
    switch (type) {
      case 'BOOKMARK': {
        const rv = bookmarkVersion(raw)
        if (rv === undefined) {
          this.malformed += 1
          return 'ignored'
        }
        this.bookmarks += 1
        this.resourceVersion = rv
        return 'delivered'
      }
      case 'ERROR': {
        const status = decodeStatus(raw)
        if (status?.code === 410) return 'expired'
        return new KubeApiError(
          `watch ERROR event: ${status?.message ?? status?.reason ?? 'unknown'}`,
          status?.code ?? undefined,
        )
      }
      case 'ADDED':
      case 'MODIFIED':
      case 'DELETED':
        break
      default:
        this.malformed += 1
        return 'ignored'
    }
    const decoded = decodeObject(this.opts.info.name, raw)
    if (Result.isFailure(decoded)) {
      this.malformed += 1
      return 'ignored'
    }
    const object = decoded.success
    const meta = object.object.metadata
    this.resourceVersion = meta.resourceVersion
    if (!this.opts.accept(object)) return 'delivered'
    const previous = this.store.get(meta.uid)
    if (type === 'DELETED') {
      if (!previous) return 'delivered'
      this.store.delete(meta.uid)
      this.opts.onChanges([{ type: 'deleted', object, previous }])
      return 'delivered'
    }
    // A replay after a re-watch repeats what we already have: same version, nothing to report.
    if (previous && previous.object.metadata.resourceVersion === meta.resourceVersion) return 'delivered'
    this.store.set(meta.uid, object)
    this.opts.onChanges([previous ? { type: 'updated', object, previous } : { type: 'added', object }])
    return 'delivered'
  }
}
