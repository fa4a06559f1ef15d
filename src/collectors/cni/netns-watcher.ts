import type { EventInput } from '../../events/event.js'
import { nowNs } from '../../events/time.js'
import type { WatchedDir } from './config.js'
import type { WatcherTiming } from './cni-watchers.js'
import { type DirDiff, DirWatcher } from './dir-watcher.js'
import type { NetnsData } from '../../events/vocabulary/network.js'

interface Known {
  readonly path: string
  inode: number
  nsid: number | undefined
}

/**
 * Named network namespaces (`ip netns add`, CNI runtimes) under the netns dir, with the id each
 * has in our namespace, which is what a veth's IFLA_LINK_NETNSID refers to.
 */
export class NetnsWatcher {
  private readonly known = new Map<string, Known>()
  private readonly watcher: DirWatcher
  private queryNsid: ((path: string) => Promise<number | undefined>) | undefined

  constructor(dir: WatchedDir, timing: WatcherTiming, private readonly sink: (batch: EventInput[]) => void) {
    this.watcher = new DirWatcher({ dir: dir.dir, accept: (n) => !n.startsWith('.'), ...timing, onDiff: (d) => this.onDiff(d) })
  }

  get dirWatcher(): DirWatcher {
    return this.watcher
  }

  get count(): number {
    return this.known.size
  }

  /** Without netlink no ids are known; names and inodes still are. */
  async start(queryNsid: ((path: string) => Promise<number | undefined>) | undefined): Promise<void> {
    this.queryNsid = queryNsid
    this.known.clear()
    await this.watcher.start()
  }

  stop(): Promise<void> {
    return this.watcher.stop()
  }

  nameForNsid(nsid: number): string | undefined {
    for (const [name, k] of this.known) if (k.nsid === nsid) return name
    return undefined
  }

  /** Look every id up again (the kernel assigned or released one). */
  async refreshIds(): Promise<void> {
    const q = this.queryNsid
    if (!q) return
    await Promise.all(
      [...this.known.values()].map(async (k) => {
        k.nsid = await q(k.path)
      }),
    )
  }

  private async onDiff(diff: DirDiff): Promise<void> {
    const out: EventInput[] = []
    for (const e of diff.added) {
      const k: Known = { path: e.path, inode: e.ino, nsid: await this.queryNsid?.(e.path) }
      this.known.set(e.name, k)
      out.push(this.event('network.netns.created', e.name, k, diff.initial))
    }
    // The inode changes when the namespace is mounted onto the file `ip netns add` created first.
    for (const e of diff.changed) {
      const k = this.known.get(e.name)
      if (k) {
        k.inode = e.ino
        k.nsid = await this.queryNsid?.(e.path)
      }
    }
    for (const e of diff.removed) {
      const k = this.known.get(e.name) ?? { path: e.path, inode: e.ino, nsid: undefined }
      this.known.delete(e.name)
      out.push(this.event('network.netns.removed', e.name, k, false))
    }
    this.sink(out)
  }

  private event(type: 'network.netns.created' | 'network.netns.removed', name: string, k: Known, snapshot: boolean): EventInput {
    const data: NetnsData = {
      name,
      path: k.path,
      inode: k.inode,
      ...(k.nsid !== undefined ? { nsid: k.nsid } : {}),
      ...(snapshot ? { snapshot: true } : {}),
    }
    return { type, timestamp: nowNs(), severity: 'info', entity: { kind: 'network-namespace', name }, data }
  }
}

