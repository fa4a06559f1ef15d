import { existsSync } from 'node:fs'
import { dirname, join } from 'node:path'

/** The repository root (holding `bench/ebpf/build.sh`), from bench/ or dist/bench/ alike. */
export function repoRoot(): string {
  let dir = import.meta.dirname
  while (!existsSync(join(dir, 'package.json')) || !existsSync(join(dir, 'bench', 'ebpf', 'build.sh'))) {
    const up = dirname(dir)
    if (up === dir) throw new Error('repository root not found')
    dir = up
  }
  return dir
}
