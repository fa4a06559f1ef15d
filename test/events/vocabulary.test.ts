import { spawnSync } from 'node:child_process'
import { mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
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
      `  'systemd.unit.started': { unit: 2 }, 'tapio.correlation.incident': { chain: 1 }, 'acme.unknown': { anything: true } }\n` +
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
      'tapio.correlation.incident': 'Failure',
      // An unregistered type's data is not checked.
      'acme.unknown': 'Success',
    })
  })

  it('src/events knows no collector: it imports nothing from src/collectors', () => {
    const offenders = sources(join(root, 'src/events')).filter((f) => /from ['"][^'"]*collectors\//.test(readFileSync(f, 'utf8')))
    expect(offenders).toEqual([])
    expect(sources(join(root, 'src/events')).length).toBeGreaterThan(5)
    // Nor registers a collector's own type: the synthetic collector registers `synthetic.tick`.
    expect(sources(join(root, 'src/events')).filter((f) => readFileSync(f, 'utf8').includes("'synthetic.tick'"))).toEqual([])
  })
})

/** Runs an ES module inside the repository, so `tapio-collector-manager` resolves to this package by name. */
function runModule(code: string): { status: number | null; stdout: string; stderr: string } {
  const dir = join(root, 'test-artifacts')
  mkdirSync(dir, { recursive: true })
  const file = join(dir, `vocabulary-${process.pid}-${Math.random().toString(36).slice(2)}.mjs`)
  writeFileSync(file, code)
  try {
    const r = spawnSync(process.execPath, [file], { cwd: root, encoding: 'utf8', timeout: 60_000 })
    return { status: r.status, stdout: r.stdout, stderr: r.stderr }
  } finally {
    rmSync(file, { force: true })
  }
}

/** Checks one good and one bad `synthetic.tick` with the root entry's validateEvent. */
const CHECK_TICK =
  `const { validateEvent, stampEvent } = await import('tapio-collector-manager')\n` +
  `const tag = (data) => validateEvent(stampEvent({ type: 'synthetic.tick', data }, 'gen'))._tag\n` +
  `console.log(JSON.stringify({ good: tag({ seq: 1, generation: 1 }), bad: tag({ seq: 'x', generation: 1 }) }))\n`

describe('synthetic.tick, registered by the synthetic collector through the public API', () => {
  const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { exports: Record<string, unknown> }
  const entries = Object.keys(pkg.exports).filter((e) => e !== './package.json')

  it('is checked by validateEvent whatever entry point of the package is imported first', () => {
    expect(entries.length).toBeGreaterThanOrEqual(9)
    const results: Record<string, unknown> = {}
    for (const entry of entries) {
      const name = entry === '.' ? 'tapio-collector-manager' : `tapio-collector-manager${entry.slice(1)}`
      const r = runModule(`await import(${JSON.stringify(name)})\n${CHECK_TICK}`)
      expect(r.stderr, entry).toBe('')
      results[entry] = JSON.parse(r.stdout)
    }
    for (const entry of entries) expect(results[entry], entry).toEqual({ good: 'Success', bad: 'Failure' })
  })

  it('is registered for the agent by the synthetic kind, before the collector code loads', () => {
    const event = pathToFileURL(join(root, 'dist/src/events/event.js')).href
    const kind = pathToFileURL(join(root, 'dist/src/collectors/synthetic/kind.js')).href
    const r = runModule(
      `const { validateEvent, stampEvent } = await import(${JSON.stringify(event)})\n` +
        `const tag = () => validateEvent(stampEvent({ type: 'synthetic.tick', data: { seq: 'x' } }, 'gen'))._tag\n` +
        `const before = tag()\nawait import(${JSON.stringify(kind)})\n` +
        `console.log(JSON.stringify({ before, after: tag() }))\n`,
    )
    expect(r.stderr).toBe('')
    // The events module alone does not know the type (so does not check it); the kind registers it.
    expect(JSON.parse(r.stdout)).toEqual({ before: 'Success', after: 'Failure' })
  })
})
