import { createHash } from 'node:crypto'
import { readFile } from 'node:fs/promises'
import { basename } from 'node:path'
import * as Result from 'effect/Result'
import type { Clock } from '../../core/clock.js'
import type { EventInput } from '../../events/event.js'
import { nowNs } from '../../events/time.js'
import { type ParsedAttachment, type ParsedConfig, isCniConfigFile, parseCniConfigFile, parseCniResultFile } from './cni-files.js'
import { type DirDiff, type DirEntry, DirWatcher } from './dir-watcher.js'
import type { WatchedDir } from './config.js'

export interface WatcherTiming {
  /** The clock of the directory watchers' debounce, rescans and polls. */
  readonly clock: Clock
  readonly pollIntervalMs: number
  readonly rescanIntervalMs: number
  readonly debounceMs: number
}

type Sink = (batch: EventInput[]) => void

/** A file that vanished between the scan and the read is reported by the next scan, not here. */
async function readIfPresent(path: string): Promise<{ text: string } | { error: string } | undefined> {
  try {
    return { text: await readFile(path, 'utf8') }
  } catch (e) {
    const code = (e as { code?: unknown }).code
    if (code === 'ENOENT') return undefined
    return { error: `cannot read: ${e instanceof Error ? e.message : String(e)}` }
  }
}

function digest(text: string): string {
  return createHash('sha256').update(text).digest('hex')
}

interface ConfigState {
  readonly hash: string
  readonly valid?: ParsedConfig
}

/** Watches the CNI conf dir: networks added, changed, removed, and files that do not parse. */
export class CniConfigWatcher {
  private readonly files = new Map<string, ConfigState>()
  private readonly watcher: DirWatcher
  invalidFiles = 0

  constructor(dir: WatchedDir, timing: WatcherTiming, private readonly sink: Sink) {
    this.watcher = new DirWatcher({ dir: dir.dir, accept: isCniConfigFile, ...timing, onDiff: (d) => this.onDiff(d) })
  }

  get dirWatcher(): DirWatcher {
    return this.watcher
  }

  async start(): Promise<void> {
    this.files.clear()
    await this.watcher.start()
  }

  stop(): Promise<void> {
    return this.watcher.stop()
  }

  private async onDiff(diff: DirDiff): Promise<void> {
    const out: EventInput[] = []
    for (const e of [...diff.added, ...diff.changed]) {
      const ev = await this.load(e, diff.initial)
      if (ev) out.push(ev)
    }
    for (const e of diff.removed) {
      const prev = this.files.get(e.name)
      this.files.delete(e.name)
      out.push({
        type: 'cni.config.removed',
        timestamp: nowNs(),
        severity: 'info',
        ...(prev?.valid ? { entity: { kind: 'cni-network', name: prev.valid.name } } : {}),
        data: { file: e.name, path: e.path, ...(prev?.valid ? { name: prev.valid.name } : {}) },
      })
    }
    this.sink(out)
  }

  private async load(e: DirEntry, initial: boolean): Promise<EventInput | undefined> {
    const read = await readIfPresent(e.path)
    if (read === undefined) return undefined
    const prev = this.files.get(e.name)
    const snapshot = initial ? { snapshot: true } : {}
    if ('error' in read) {
      this.invalidFiles += 1
      this.files.set(e.name, { hash: '' })
      return { type: 'cni.config.invalid', timestamp: nowNs(), severity: 'warning', data: { file: e.name, path: e.path, error: read.error, ...snapshot } }
    }
    const hash = digest(read.text)
    if (prev && prev.hash === hash) return undefined
    const parsed = parseCniConfigFile(e.name, read.text)
    if (Result.isFailure(parsed)) {
      this.invalidFiles += 1
      this.files.set(e.name, { hash })
      return {
        type: 'cni.config.invalid',
        timestamp: nowNs(),
        severity: 'warning',
        data: { file: e.name, path: e.path, error: parsed.failure, ...snapshot },
      }
    }
    const valid = parsed.success
    this.files.set(e.name, { hash, valid })
    return {
      // Only a network consumers have seen can change; after an invalid spell it is new again.
      type: prev?.valid ? 'cni.config.changed' : 'cni.config.added',
      timestamp: nowNs(),
      severity: 'info',
      entity: { kind: 'cni-network', name: valid.name },
      data: { file: e.name, path: e.path, ...valid, ...snapshot },
    }
  }
}

interface ResultState {
  readonly hash: string
  readonly attachment?: ParsedAttachment
}

function attachmentEvent(
  type: 'cni.attachment.added' | 'cni.attachment.removed',
  file: string,
  a: ParsedAttachment,
  extra: { snapshot?: boolean; replaced?: boolean },
): EventInput {
  const pod = a.k8s?.pod
  return {
    type,
    timestamp: nowNs(),
    severity: 'info',
    entity: pod
      ? { kind: 'Pod', name: pod, ...(a.k8s?.namespace ? { namespace: a.k8s.namespace } : {}), ...(a.k8s?.podUid ? { uid: a.k8s.podUid } : {}) }
      : { kind: 'container', name: a.data.containerId },
    ...(a.k8s ? { k8s: a.k8s } : {}),
    data: { ...a.data, file, ...extra },
  }
}

/** Watches libcni's result cache: one file per (network, container, interface) attachment. */
export class CniResultsWatcher {
  private readonly files = new Map<string, ResultState>()
  private readonly watcher: DirWatcher
  invalidFiles = 0

  constructor(dir: WatchedDir, timing: WatcherTiming, private readonly sink: Sink) {
    this.watcher = new DirWatcher({ dir: dir.dir, accept: (n) => !n.startsWith('.'), ...timing, onDiff: (d) => this.onDiff(d) })
  }

  get dirWatcher(): DirWatcher {
    return this.watcher
  }

  async start(): Promise<void> {
    this.files.clear()
    await this.watcher.start()
  }

  stop(): Promise<void> {
    return this.watcher.stop()
  }

  /** The attachment whose sandbox is the named network namespace (e.g. `cni-1234…`). */
  attachmentInNetns(netnsName: string): ParsedAttachment | undefined {
    for (const f of this.files.values()) {
      const sandbox = f.attachment?.data.sandbox
      if (sandbox !== undefined && basename(sandbox) === netnsName) return f.attachment
    }
    return undefined
  }

  private async onDiff(diff: DirDiff): Promise<void> {
    const out: EventInput[] = []
    for (const e of [...diff.added, ...diff.changed]) {
      const read = await readIfPresent(e.path)
      if (read === undefined) continue
      const prev = this.files.get(e.name)
      if ('error' in read) {
        this.invalidFiles += 1
        continue
      }
      const hash = digest(read.text)
      if (prev?.hash === hash) continue
      const parsed = parseCniResultFile(read.text)
      if (Result.isFailure(parsed)) {
        // A half-written file parses on the next change; a foreign file is only counted.
        this.invalidFiles += 1
        this.files.set(e.name, { hash, ...(prev?.attachment ? { attachment: prev.attachment } : {}) })
        continue
      }
      this.files.set(e.name, { hash, attachment: parsed.success })
      out.push(
        attachmentEvent('cni.attachment.added', e.name, parsed.success, {
          ...(diff.initial ? { snapshot: true } : {}),
          ...(prev?.attachment ? { replaced: true } : {}),
        }),
      )
    }
    for (const e of diff.removed) {
      const prev = this.files.get(e.name)
      this.files.delete(e.name)
      if (prev?.attachment) out.push(attachmentEvent('cni.attachment.removed', e.name, prev.attachment, {}))
    }
    this.sink(out)
  }
}
