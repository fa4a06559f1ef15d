import { existsSync, readFileSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'

export interface BuildInfo {
  readonly name: string
  readonly version: string
  readonly node: string
}

let cached: BuildInfo | undefined

/**
 * The package's name and version, read from its package.json: the nearest one above this module
 * (from `src/` in tests and from `dist/src/` when installed, so no fixed depth).
 */
export function buildInfo(): BuildInfo {
  if (cached) return cached
  let dir = dirname(fileURLToPath(import.meta.url))
  for (;;) {
    const candidate = join(dir, 'package.json')
    if (existsSync(candidate)) {
      const pkg = JSON.parse(readFileSync(candidate, 'utf8')) as { name?: unknown; version?: unknown }
      if (typeof pkg.name === 'string' && typeof pkg.version === 'string') {
        cached = { name: pkg.name, version: pkg.version, node: process.version }
        return cached
      }
    }
    const up = dirname(dir)
    if (up === dir) return (cached = { name: 'tapio-collector-manager', version: 'unknown', node: process.version })
    dir = up
  }
}
