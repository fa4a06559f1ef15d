/**
 * cgroup id -> cgroup path and container identity. The kernel stamps every record with the
 * cgroup v2 id, which is the inode number of the cgroup's directory in the cgroup2 mount, so a
 * path read from /proc/<pid>/cgroup is confirmed by stat, and a walk of the mount finds cgroups
 * whose processes are already gone. Results are cached: the hot path is one Map lookup.
 *
 * Cgroups made while the collector runs are learned from the kernel itself (`learn`, fed by the
 * cgroup_mkdir BPF program) before any of their processes' records arrive, so a process that
 * exited before its records were decoded, in a cgroup made a moment earlier (and perhaps already
 * removed), keeps its container identity; /proc and the walk cover cgroups made before the start.
 */
import { readdirSync, readFileSync, statSync } from 'node:fs'
import { join } from 'node:path'
import type { K8sContext } from '../../events/schema.js'

export interface CgroupInfo {
  readonly id: string
  readonly path?: string
  readonly containerId?: string
  readonly podUid?: string
  /** Shared by every event of this cgroup (events are read-only). */
  readonly k8s?: K8sContext
}

const CONTAINER_ID = /(?:^|[-:/_.])([0-9a-f]{64})(?:\.scope)?$/
const POD_UID = /pod([0-9a-f]{8}[-_][0-9a-f]{4}[-_][0-9a-f]{4}[-_][0-9a-f]{4}[-_][0-9a-f]{12})(?:\.slice)?$/

/** Container id and pod uid from a cgroup path (docker, containerd, cri-o, podman; cgroupfs or systemd driver). */
export function parseCgroupPath(path: string): { containerId?: string; podUid?: string } {
  const out: { containerId?: string; podUid?: string } = {}
  for (const segment of path.split('/').reverse()) {
    if (out.containerId === undefined) {
      const m = CONTAINER_ID.exec(segment)
      if (m?.[1]) out.containerId = m[1]
    }
    if (out.podUid === undefined) {
      const p = POD_UID.exec(segment)
      if (p?.[1]) out.podUid = p[1].replace(/_/g, '-')
    }
  }
  return out
}

/** The cgroup2 mount point from a mountinfo text ("/sys/fs/cgroup" or "/sys/fs/cgroup/unified"). */
export function findCgroup2Mount(mountinfo: string): string | undefined {
  for (const line of mountinfo.split('\n')) {
    const sep = line.indexOf(' - ')
    if (sep < 0) continue
    if (line.slice(sep + 3).startsWith('cgroup2 ')) return line.split(' ')[4]
  }
  return undefined
}

export interface CgroupResolverOptions {
  readonly procRoot?: string
  readonly cgroup2Mount?: string
  readonly maxEntries?: number
  /** Minimum time between walks of the cgroup2 tree. */
  readonly rescanIntervalMs?: number
  readonly now?: () => number
}

export class CgroupResolver {
  private readonly cache = new Map<number, CgroupInfo>()
  private readonly unresolvedAt = new Map<number, number>()
  private readonly procRoot: string
  private readonly mount: string | undefined
  private readonly maxEntries: number
  private readonly rescanIntervalMs: number
  private readonly now: () => number
  private lastWalk = -Infinity
  lookups = 0
  misses = 0
  learned = 0

  constructor(opts: CgroupResolverOptions = {}) {
    this.procRoot = opts.procRoot ?? '/proc'
    this.mount = opts.cgroup2Mount ?? readMount(this.procRoot)
    this.maxEntries = opts.maxEntries ?? 16384
    this.rescanIntervalMs = opts.rescanIntervalMs ?? 10_000
    this.now = opts.now ?? Date.now
  }

  /** Never throws; an unresolvable id still gives its decimal id. */
  lookup(id: number, tgid: number): CgroupInfo {
    const hit = this.cache.get(id)
    if (hit !== undefined && (hit.path !== undefined || !this.shouldRetry(id))) return hit
    this.misses++
    const info = this.resolve(id, tgid)
    if (this.cache.size >= this.maxEntries) this.cache.clear()
    this.cache.set(id, info)
    if (info.path === undefined) this.unresolvedAt.set(id, this.now())
    else this.unresolvedAt.delete(id)
    return info
  }

  /**
   * Records a cgroup the kernel announced as it was made (the `cgroup` BPF program), so that its
   * processes resolve even after they and the directory are gone.
   */
  learn(id: number, path: string): void {
    this.learned++
    if (this.cache.size >= this.maxEntries) this.cache.clear()
    this.cache.set(id, info(id, path))
    this.unresolvedAt.delete(id)
  }

  private shouldRetry(id: number): boolean {
    const at = this.unresolvedAt.get(id)
    return at === undefined || this.now() - at > 1000
  }

  private resolve(id: number, tgid: number): CgroupInfo {
    const fromProc = this.fromProc(id, tgid)
    if (fromProc !== undefined) return info(id, fromProc)
    const fromWalk = this.fromWalk(id)
    if (fromWalk !== undefined) return info(id, fromWalk)
    return { id: String(id) }
  }

  private fromProc(id: number, tgid: number): string | undefined {
    let text: string
    try {
      text = readFileSync(join(this.procRoot, String(tgid), 'cgroup'), 'utf8')
    } catch {
      return undefined
    }
    const line = text.split('\n').find((l) => l.startsWith('0::'))
    if (line === undefined) return undefined
    const path = line.slice(3)
    // The process may have moved since the record was written: trust the path only if it is this id.
    return this.inodeOf(path) === id ? path : undefined
  }

  private inodeOf(path: string): number | undefined {
    if (this.mount === undefined) return undefined
    try {
      return statSync(join(this.mount, path)).ino
    } catch {
      return undefined
    }
  }

  /** Walks the cgroup2 tree (rate-limited), caching every directory it sees. */
  private fromWalk(id: number): string | undefined {
    if (this.mount === undefined || this.now() - this.lastWalk < this.rescanIntervalMs) return undefined
    this.lastWalk = this.now()
    let found: string | undefined
    const stack = ['/']
    let visited = 0
    while (stack.length > 0 && visited < 100_000) {
      const rel = stack.pop() as string
      visited++
      let ino: number
      try {
        ino = statSync(join(this.mount, rel)).ino
      } catch {
        continue
      }
      if (ino === id) found = rel
      else if (!this.cache.has(ino) && this.cache.size < this.maxEntries) this.cache.set(ino, info(ino, rel))
      try {
        for (const d of readdirSync(join(this.mount, rel), { withFileTypes: true })) {
          if (d.isDirectory()) stack.push(rel === '/' ? `/${d.name}` : `${rel}/${d.name}`)
        }
      } catch {
        // raced with removal
      }
    }
    return found
  }
}

function info(id: number, path: string): CgroupInfo {
  const { containerId, podUid } = parseCgroupPath(path)
  const k8s: K8sContext | undefined =
    containerId !== undefined || podUid !== undefined
      ? { ...(containerId !== undefined ? { containerId } : {}), ...(podUid !== undefined ? { podUid } : {}) }
      : undefined
  return {
    id: String(id),
    path,
    ...(containerId !== undefined ? { containerId } : {}),
    ...(podUid !== undefined ? { podUid } : {}),
    ...(k8s !== undefined ? { k8s } : {}),
  }
}

function readMount(procRoot: string): string | undefined {
  try {
    return findCgroup2Mount(readFileSync(join(procRoot, 'self', 'mountinfo'), 'utf8'))
  } catch {
    return undefined
  }
}
