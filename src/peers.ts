/**
 * Effect and XState are peer dependencies: the public API hands out the user's own Effect
 * `Stream` and takes XState inspection callbacks. A different major or minor version would type
 * against one copy and run against another (Effect 3 vs 4 hangs silently), so the root entry checks
 * the versions it resolves before anything else runs, and fails with what to install.
 *
 * The ranges are the `peerDependencies` of package.json (a test keeps them equal). Only the two
 * range forms used there (`~x.y.z`, `^x.y.z`) are understood: a semver library for one check at
 * import would weigh more than the check.
 */
import { readFileSync } from 'node:fs'
import { createRequire } from 'node:module'

export const PEER_RANGES = { effect: '~4.1.0', xstate: '^5.33.0' } as const

type Version = readonly [number, number, number]

function parseVersion(text: string): Version | undefined {
  const m = /^(\d+)\.(\d+)\.(\d+)/.exec(text)
  return m ? [Number(m[1]), Number(m[2]), Number(m[3])] : undefined
}

function atLeast(v: Version, min: Version): boolean {
  for (let i = 0; i < 3; i++) {
    if ((v[i] as number) !== (min[i] as number)) return (v[i] as number) > (min[i] as number)
  }
  return true
}

/** Whether `version` satisfies a `~x.y.z` (same minor) or `^x.y.z` (same major) range. */
export function satisfies(version: string, range: string): boolean {
  const v = parseVersion(version)
  const min = parseVersion(range.slice(1))
  if (!v || !min || !atLeast(v, min)) return false
  if (range.startsWith('~')) return v[0] === min[0] && v[1] === min[1]
  if (range.startsWith('^')) return v[0] === min[0]
  throw new Error(`peers: unsupported range ${range}`)
}

export class IncompatiblePeerError extends Error {
  override readonly name = 'IncompatiblePeerError'
}

/** The version of `name` that this module resolves, and where it was found. */
function resolvedVersion(name: string): { version: string; path: string } {
  const require = createRequire(import.meta.url)
  let path: string
  try {
    path = require.resolve(`${name}/package.json`)
  } catch {
    throw new IncompatiblePeerError(
      `tapio-collector-manager needs the peer dependency ${name}@${PEER_RANGES[name as keyof typeof PEER_RANGES]}, which is not installed: npm install ${name}@"${PEER_RANGES[name as keyof typeof PEER_RANGES]}"`,
    )
  }
  const json: unknown = JSON.parse(readFileSync(path, 'utf8'))
  const version = typeof json === 'object' && json !== null && 'version' in json && typeof json.version === 'string' ? json.version : '(unknown)'
  return { version, path }
}

/** Throws IncompatiblePeerError naming every peer outside its range, with the install command. */
export function assertCompatiblePeers(): void {
  const problems: string[] = []
  for (const [name, range] of Object.entries(PEER_RANGES)) {
    const { version, path } = resolvedVersion(name)
    if (!satisfies(version, range)) problems.push(`${name} ${version} (${path}) is outside ${range}: npm install ${name}@"${range}"`)
  }
  if (problems.length > 0) throw new IncompatiblePeerError(`tapio-collector-manager: incompatible peer dependencies: ${problems.join('; ')}`)
}

assertCompatiblePeers()
