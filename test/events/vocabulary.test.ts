import { spawnSync } from 'node:child_process'
import { readdirSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath, pathToFileURL } from 'node:url'
import { describe, expect, it } from 'vitest'

const root = fileURLToPath(new URL('../..', import.meta.url))

/** Every .ts file under a folder. */
function sources(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true, recursive: true })
    .filter((e) => e.isFile() && e.name.endsWith('.ts'))
    .map((e) => join(e.parentPath, e.name))
}

describe('the event vocabulary', () => {
  it('validateEvent checks the data of every family with nothing but the events module imported', () => {
    // A fresh process, so no collector module can have been imported first.
    const event = pathToFileURL(join(root, 'dist/src/events/event.js')).href
    const code =
      `import { validateEvent, stampEvent } from ${JSON.stringify(event)}\n` +
      `const cases = { 'kernel.process.exec': { pid: 'x' }, 'network.link.added': { index: 'x' }, 'k8s.pod.added': { name: 1 },\n` +
      `  'systemd.unit.started': { unit: 2 }, 'synthetic.tick': { seq: 'x' }, 'tapio.correlation.incident': { chain: 1 }, 'acme.unknown': { anything: true } }\n` +
      `const out = {}\n` +
      `for (const [type, data] of Object.entries(cases)) out[type] = validateEvent(stampEvent({ type, data }, 'src'))._tag\n` +
      `console.log(JSON.stringify(out))\n`
    const r = spawnSync(process.execPath, ['--input-type=module', '-e', code], { cwd: root, encoding: 'utf8', timeout: 60_000 })
    expect(r.stderr).toBe('')
    expect(JSON.parse(r.stdout)).toEqual({
      'kernel.process.exec': 'Failure',
      'network.link.added': 'Failure',
      'k8s.pod.added': 'Failure',
      'systemd.unit.started': 'Failure',
      'synthetic.tick': 'Failure',
      'tapio.correlation.incident': 'Failure',
      // An unregistered type's data is not checked.
      'acme.unknown': 'Success',
    })
  })

  it('src/events knows no collector: it imports nothing from src/collectors', () => {
    const offenders = sources(join(root, 'src/events')).filter((f) => /from ['"][^'"]*collectors\//.test(readFileSync(f, 'utf8')))
    expect(offenders).toEqual([])
    expect(sources(join(root, 'src/events')).length).toBeGreaterThan(5)
  })
})
