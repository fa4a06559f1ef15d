import { spawnSync } from 'node:child_process'
import { join } from 'node:path'
import { fileURLToPath, pathToFileURL } from 'node:url'
import { describe, expect, it } from 'vitest'
import { eventIdPrefix, nextEventId } from '../../src/events/id.js'

const root = fileURLToPath(new URL('../..', import.meta.url))

describe('event ids', () => {
  it('share one 12-hex-digit prefix per process and count up in base 36', () => {
    const a = nextEventId()
    const b = nextEventId()
    const prefix = eventIdPrefix()
    expect(prefix).toMatch(/^[0-9a-f]{12}$/)
    expect(a.startsWith(`${prefix}-`)).toBe(true)
    expect(b.startsWith(`${prefix}-`)).toBe(true)
    expect(Number.parseInt(b.slice(13), 36)).toBe(Number.parseInt(a.slice(13), 36) + 1)
  })

  it('differ between processes, and importing the module loads no node:crypto until the first id', () => {
    const id = pathToFileURL(join(root, 'dist/src/events/id.js')).href
    // process.moduleLoadList names every built-in module loaded so far.
    const code =
      `const crypto = () => process.moduleLoadList.includes('NativeModule crypto')\n` +
      `const { nextEventId, eventIdPrefix } = await import(${JSON.stringify(id)})\n` +
      `const before = crypto()\n` +
      `const first = nextEventId()\n` +
      `console.log(JSON.stringify({ before, after: crypto(), first, prefix: eventIdPrefix() }))\n`
    const run = () => {
      const r = spawnSync(process.execPath, ['--input-type=module', '-e', code], { cwd: root, encoding: 'utf8', timeout: 60_000 })
      expect(r.stderr).toBe('')
      return JSON.parse(r.stdout) as { before: boolean; after: boolean; first: string; prefix: string }
    }
    const [x, y] = [run(), run()]
    expect(x.before).toBe(false)
    expect(x.after).toBe(true)
    expect(x.first).toBe(`${x.prefix}-1`)
    expect(x.prefix).not.toBe(y.prefix)
  })
})
