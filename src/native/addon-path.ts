/**
 * Where the native addons live and what to say when one does not load. The package carries
 * prebuilt linux-x64 addons in `native/build/Release/`; the install script rebuilds the ones that
 * do not load on this machine and, when that fails too, leaves the reason in
 * `native/build/<target>.failure.txt`, which the error quotes.
 */
import { existsSync, readFileSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'

const PACKAGE_NAME = 'tapio-collector-manager'

function isPackageRoot(dir: string): boolean {
  const file = join(dir, 'package.json')
  if (!existsSync(file)) return false
  try {
    const json: unknown = JSON.parse(readFileSync(file, 'utf8'))
    return typeof json === 'object' && json !== null && 'name' in json && json.name === PACKAGE_NAME
  } catch {
    return false
  }
}

let root: string | undefined

/** This package's root, from src/native (tests) or dist/src/native (built, installed) alike. */
export function packageRoot(): string {
  if (root !== undefined) return root
  const here = dirname(fileURLToPath(import.meta.url))
  for (let dir = here; ; dir = dirname(dir)) {
    if (isPackageRoot(dir)) return (root = dir)
    if (dirname(dir) === dir) throw new Error(`${PACKAGE_NAME}: no package.json named ${PACKAGE_NAME} above ${here}`)
  }
}

export type AddonTarget = 'tapio_bpf' | 'tapio_netlink'

export function defaultAddonFile(target: AddonTarget): string {
  return join(packageRoot(), 'native', 'build', 'Release', `${target}.node`)
}

const NEEDS: Record<AddonTarget, string> = {
  tapio_bpf: 'python3, make, g++, clang, bpftool, libbpf-dev, libelf-dev, zlib1g-dev and the Node headers',
  tapio_netlink: 'python3, make, g++ and the Node headers',
}

/** How to rebuild `target`, with the reason the last install-time rebuild failed, if it did. */
export function rebuildHint(target: AddonTarget): string {
  const base = packageRoot()
  const failure = join(base, 'native', 'build', `${target}.failure.txt`)
  const why = existsSync(failure) ? ` (${readFileSync(failure, 'utf8').split('\n')[0]})` : ''
  return `rebuild it with \`bash ${join(base, 'scripts', 'build-native.sh')}\`, which needs ${NEEDS[target]}${why}`
}
