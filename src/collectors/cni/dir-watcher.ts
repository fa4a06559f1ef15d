import { type FSWatcher, watch } from 'node:fs'
import { readdir, stat } from 'node:fs/promises'
import { join } from 'node:path'
import { type Clock, systemClock } from '../../core/clock.js'

export interface DirEntry {
  readonly name: string
  readonly path: string
  readonly ino: number
  readonly size: number
  readonly mtimeMs: number
  readonly ctimeMs: number
}

export interface DirDiff {
  readonly added: DirEntry[]
  readonly changed: DirEntry[]
  readonly removed: DirEntry[]
  /** True for the scan made while starting: the entries were there before us. */
  readonly initial: boolean
}

export type DirState = 'stopped' | 'missing' | 'watching'

export interface DirWatcherOptions {
  readonly dir: string
  readonly accept: (name: string) => boolean
  readonly pollIntervalMs: number
  readonly rescanIntervalMs: number
  readonly debounceMs: number
  readonly onDiff: (diff: DirDiff) => Promise<void> | void
  /** A scan failed for a reason other than the directory missing. */
  readonly onError?: (error: Error) => void
  /** Times the debounce, rescans and polls (tests drive a ManualClock). Default: the system clock. */
  readonly clock?: Clock
}

/** A repeating timer on a {@link Clock} (which has only one-shot timers): re-armed after each run. */
class Repeat {
  private handle: unknown
  constructor(private readonly clock: Clock, ms: number, fn: () => void) {
    const arm = (): void => {
      this.handle = clock.setTimeout(() => {
        arm()
        fn()
      }, ms)
    }
    arm()
  }

  cancel(): void {
    this.clock.clearTimeout(this.handle)
  }
}

/**
 * Reports the files of one directory as added/changed/removed, whether or not it exists yet.
 * fs.watch only says "look again": every report comes from diffing a full scan against the
 * previous one, so a coalesced or lost inotify event, or a directory replaced under us, cannot
 * make it miss a change. Periodic rescans cover what inotify never reports.
 */
export class DirWatcher {
  private entries = new Map<string, DirEntry>()
  private watcher: FSWatcher | undefined
  /** Inode of the directory being watched, to notice it being replaced. */
  private dirIno = 0
  private pollTimer: Repeat | undefined
  private rescanTimer: Repeat | undefined
  private debounceTimer: unknown
  private readonly clock: Clock
  private scanning: Promise<void> | undefined
  private again = false
  private running = false
  state: DirState = 'stopped'
  scans = 0
  lastError: string | undefined

  constructor(private readonly opts: DirWatcherOptions) {
    this.clock = opts.clock ?? systemClock
  }

  private every(ms: number, fn: () => void): Repeat {
    return new Repeat(this.clock, ms, fn)
  }

  get dir(): string {
    return this.opts.dir
  }

  /** Resolves after the first scan (or after finding the directory missing). */
  async start(): Promise<void> {
    if (this.running) return
    this.running = true
    this.entries = new Map()
    this.rescanTimer = this.every(this.opts.rescanIntervalMs, () => this.requestScan())
    await this.scanNow(true)
  }

  async stop(): Promise<void> {
    this.running = false
    this.state = 'stopped'
    this.rescanTimer?.cancel()
    this.pollTimer?.cancel()
    if (this.debounceTimer !== undefined) this.clock.clearTimeout(this.debounceTimer)
    this.rescanTimer = this.pollTimer = this.debounceTimer = undefined
    this.closeWatcher()
    // A scan in flight finishes (its callbacks check `running`) before stop() returns.
    await this.scanning
  }

  /** Scan soon; changes landing in the quiet period share one scan. */
  requestScan(): void {
    if (!this.running) return
    if (this.debounceTimer !== undefined) this.clock.clearTimeout(this.debounceTimer)
    this.debounceTimer = this.clock.setTimeout(() => {
      this.debounceTimer = undefined
      void this.scanNow(false)
    }, this.opts.debounceMs)
  }

  private async scanNow(initial: boolean): Promise<void> {
    if (this.scanning) {
      this.again = true
      return this.scanning
    }
    this.scanning = (async () => {
      try {
        let first = initial
        do {
          this.again = false
          await this.scanOnce(first)
          first = false
        } while (this.again && this.running)
      } finally {
        this.scanning = undefined
      }
    })()
    return this.scanning
  }

  private async scanOnce(initial: boolean): Promise<void> {
    if (!this.running) return
    this.scans += 1
    let names: string[]
    try {
      names = await readdir(this.opts.dir)
    } catch (e) {
      if (isMissing(e)) {
        await this.becomeMissing(initial)
        return
      }
      this.lastError = e instanceof Error ? e.message : String(e)
      this.opts.onError?.(e instanceof Error ? e : new Error(String(e)))
      return
    }
    if (!this.running) return
    await this.ensureWatching()
    const next = new Map<string, DirEntry>()
    for (const name of names) {
      if (!this.opts.accept(name)) continue
      const path = join(this.opts.dir, name)
      try {
        const s = await stat(path)
        if (s.isDirectory()) continue
        next.set(name, { name, path, ino: s.ino, size: s.size, mtimeMs: s.mtimeMs, ctimeMs: s.ctimeMs })
      } catch {
        // Gone between readdir and stat: it is simply not in this scan.
      }
    }
    await this.report(next, initial)
  }

  private async report(next: Map<string, DirEntry>, initial: boolean): Promise<void> {
    const added: DirEntry[] = []
    const changed: DirEntry[] = []
    const removed: DirEntry[] = []
    for (const [name, e] of next) {
      const old = this.entries.get(name)
      if (!old) added.push(e)
      else if (old.ino !== e.ino || old.size !== e.size || old.mtimeMs !== e.mtimeMs || old.ctimeMs !== e.ctimeMs) changed.push(e)
    }
    for (const [name, e] of this.entries) if (!next.has(name)) removed.push(e)
    this.entries = next
    if (!this.running) return
    const byName = (a: DirEntry, b: DirEntry): number => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0)
    if (added.length + changed.length + removed.length > 0) {
      await this.opts.onDiff({ added: added.sort(byName), changed: changed.sort(byName), removed: removed.sort(byName), initial })
    }
  }

  private async becomeMissing(initial: boolean): Promise<void> {
    this.closeWatcher()
    this.state = 'missing'
    if (!this.pollTimer && this.running) {
      this.pollTimer = this.every(this.opts.pollIntervalMs, () => this.requestScan())
    }
    await this.report(new Map(), initial)
  }

  private async ensureWatching(): Promise<void> {
    if (this.watcher || !this.running) return
    this.pollTimer?.cancel()
    this.pollTimer = undefined
    try {
      this.dirIno = (await stat(this.opts.dir)).ino
      if (!this.running) return
      const w = watch(this.opts.dir, { persistent: true }, () => this.requestScan())
      // The directory was removed or became unreadable: the next scan finds out which.
      w.on('error', () => {
        this.closeWatcher()
        this.requestScan()
      })
      this.watcher = w
      this.state = 'watching'
    } catch {
      // Vanished between readdir and watch: poll until it is back.
      this.state = 'missing'
      if (!this.pollTimer) this.pollTimer = this.every(this.opts.pollIntervalMs, () => this.requestScan())
      return
    }
    // inotify follows the directory's inode: if the directory is deleted or replaced, the watch
    // goes quiet without an error, so a cheap stat on the poll interval notices that.
    this.pollTimer = this.every(this.opts.pollIntervalMs, () => this.checkStillThere())
  }

  private checkStillThere(): void {
    stat(this.opts.dir).then(
      (s) => {
        if (!s.isDirectory() || s.ino !== this.dirIno) {
          this.closeWatcher()
          this.requestScan()
        }
      },
      () => {
        this.closeWatcher()
        this.requestScan()
      },
    )
  }

  private closeWatcher(): void {
    this.watcher?.close()
    this.watcher = undefined
    this.pollTimer?.cancel()
    this.pollTimer = undefined
  }
}

function isMissing(e: unknown): boolean {
  const code = (e as { code?: unknown } | null)?.code
  return code === 'ENOENT' || code === 'ENOTDIR'
}
