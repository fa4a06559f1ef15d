/**
 * A package-lock for a consumer project, derived from this repository's lock: the same versions
 * and integrities, so `npm ci --offline` installs it from the npm cache that `npm ci` of this
 * repository filled (no registry metadata needed, which an offline install cannot fetch).
 */
import { createHash } from 'node:crypto'
import { readFileSync } from 'node:fs'

interface LockEntry {
  readonly version?: string
  readonly resolved?: string
  readonly integrity?: string
  readonly dependencies?: Readonly<Record<string, string>>
  readonly optionalDependencies?: Readonly<Record<string, string>>
  readonly peerDependencies?: Readonly<Record<string, string>>
  readonly peerDependenciesMeta?: Readonly<Record<string, { optional?: boolean }>>
  readonly [key: string]: unknown
}
interface LockFile {
  readonly lockfileVersion: number
  readonly packages: Readonly<Record<string, LockEntry>>
}

/** Node's lookup: the nearest node_modules/<name> from `from` upwards, as a lock key. */
function resolveKey(packages: Readonly<Record<string, LockEntry>>, from: string, name: string): string | undefined {
  let dir = from
  for (;;) {
    const key = dir ? `${dir}/node_modules/${name}` : `node_modules/${name}`
    if (packages[key]) return key
    if (!dir) return undefined
    const i = dir.lastIndexOf('/node_modules/')
    dir = i < 0 ? '' : dir.slice(0, i)
  }
}

export interface ConsumerLockOptions {
  readonly repoLockPath: string
  readonly name: string
  readonly dependencies: Readonly<Record<string, string>>
  readonly devDependencies: Readonly<Record<string, string>>
  /** The packed tarball, installed as `file:<fileName>` from the consumer's directory. */
  readonly tarball: { readonly path: string; readonly fileName: string; readonly manifest: LockEntry & { readonly name: string } }
}

export function consumerLock(o: ConsumerLockOptions): object {
  const repo = JSON.parse(readFileSync(o.repoLockPath, 'utf8')) as LockFile
  if (repo.lockfileVersion < 2) throw new Error(`${o.repoLockPath}: lockfileVersion ${repo.lockfileVersion}, want >= 2`)
  const m = o.tarball.manifest
  const ownKey = `node_modules/${m.name}`
  const own: LockEntry = {
    version: m.version,
    resolved: `file:${o.tarball.fileName}`,
    integrity: `sha512-${createHash('sha512').update(readFileSync(o.tarball.path)).digest('base64')}`,
    hasInstallScript: true,
    ...(m.license ? { license: m.license } : {}),
    ...(m.dependencies ? { dependencies: m.dependencies } : {}),
    ...(m.peerDependencies ? { peerDependencies: m.peerDependencies } : {}),
    ...(m.bin ? { bin: m.bin } : {}),
    ...(m.engines ? { engines: m.engines } : {}),
  }
  const packages: Record<string, LockEntry> = {}
  const lookup = { ...repo.packages, [ownKey]: own }
  const queue: [string, string, boolean][] = []
  const want = (from: string, deps: Readonly<Record<string, string>> | undefined, optional: boolean) => {
    for (const name of Object.keys(deps ?? {})) queue.push([from, name, optional])
  }
  want('', o.dependencies, false)
  want('', o.devDependencies, false)
  const visited = new Set<string>()
  while (queue.length > 0) {
    const [from, name, optional] = queue.shift() as [string, string, boolean]
    const key = resolveKey(lookup, from, name)
    if (key === undefined) {
      if (optional) continue
      throw new Error(`consumer lock: ${name} (needed by ${from || 'the consumer'}) is not in ${o.repoLockPath}`)
    }
    if (visited.has(key)) continue
    visited.add(key)
    const entry = lookup[key] as LockEntry
    // The repository's dev/peer flags describe its own tree, not the consumer's.
    const { dev: _dev, devOptional: _devOptional, peer: _peer, ...rest } = entry
    packages[key] = rest
    want(key, entry.dependencies, false)
    want(key, entry.optionalDependencies, true)
    for (const p of Object.keys(entry.peerDependencies ?? {})) queue.push([key, p, entry.peerDependenciesMeta?.[p]?.optional === true])
  }
  return {
    name: o.name,
    lockfileVersion: 3,
    requires: true,
    packages: {
      '': { name: o.name, dependencies: o.dependencies, devDependencies: o.devDependencies },
      ...packages,
    },
  }
}
