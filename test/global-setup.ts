import { execFileSync } from 'node:child_process'
import { fileURLToPath } from 'node:url'

/** Tests that spawn the built CLI or examples need a fresh dist/. */
export default function setup(): void {
  const root = fileURLToPath(new URL('..', import.meta.url))
  execFileSync('npx', ['--no-install', 'tsc', '-p', 'tsconfig.json'], { cwd: root, stdio: 'inherit' })
}
