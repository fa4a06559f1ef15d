import { spawnSync } from 'node:child_process'
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath, pathToFileURL } from 'node:url'
import { describe, expect, it } from 'vitest'
import { ROOT_PEER_MODULES } from '../../bench/root-peer-modules.js'
import { PEER_RANGES, satisfies } from '../../src/peers.js'

const root = fileURLToPath(new URL('../..', import.meta.url))
const artifacts = join(root, 'test-artifacts')
const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as {
  exports: Record<string, unknown>
  peerDependencies: Record<string, string>
  peerDependenciesMeta?: Record<string, { optional?: boolean }>
  devDependencies: Record<string, string>
  dependencies: Record<string, string>
}

/** Runs an ES module file inside the repository, so `tapio-collector-manager` resolves to this package by name. */
function runModule(code: string): { status: number | null; stdout: string; stderr: string } {
  mkdirSync(artifacts, { recursive: true })
  const file = join(artifacts, `entry-${process.pid}-${Math.random().toString(36).slice(2)}.mjs`)
  writeFileSync(file, code)
  try {
    const r = spawnSync(process.execPath, [file], { cwd: root, encoding: 'utf8', timeout: 60_000 })
    return { status: r.status, stdout: r.stdout, stderr: r.stderr }
  } finally {
    rmSync(file, { force: true })
  }
}

describe('package entry points', () => {
  it('the root import loads no NATS, prom-client, Kubernetes client, D-Bus, nor the whole effect barrel', () => {
    // Resolution hooks run in their own thread: they report every resolved URL on stderr.
    const hooksFile = join(artifacts, `hooks-${process.pid}.mjs`)
    mkdirSync(artifacts, { recursive: true })
    writeFileSync(
      hooksFile,
      `import { writeSync } from 'node:fs'\nexport async function resolve(s, c, next) { const r = await next(s, c); writeSync(2, 'RESOLVED ' + r.url + '\\n'); return r }\n`,
    )
    const hooks = pathToFileURL(hooksFile).href
    try {
      const r = runModule(
        `import { register } from 'node:module'\nregister(${JSON.stringify(hooks)})\nconst m = await import('tapio-collector-manager')\nconsole.log(JSON.stringify(Object.keys(m)))\n`,
      )
      expect(r.stderr.split('\n').filter((l) => !l.startsWith('RESOLVED ')).join('\n').trim()).toBe('')
      expect(r.status).toBe(0)
      const urls = r.stderr
        .split('\n')
        .filter((l) => l.startsWith('RESOLVED '))
        .map((l) => l.slice('RESOLVED '.length))
      expect(urls.some((u) => u.includes('/dist/src/manager/collector-manager.js'))).toBe(true)
      for (const heavy of ['/node_modules/@nats-io/', '/node_modules/prom-client/', '/node_modules/@kubernetes/', '/node_modules/dbus-next/'])
        expect(urls.filter((u) => u.includes(heavy))).toEqual([])
      // `import { X } from 'effect'` would load every module of Effect (about 250, +50 ms, +10 MB).
      expect(urls.filter((u) => u.endsWith('/node_modules/effect/dist/index.js'))).toEqual([])
      const names = JSON.parse(r.stdout) as string[]
      for (const wanted of ['CollectorManager', 'effectCollector', 'SyntheticCollector', 'TapioEventSchema', 'validateEvent', 'DEFAULT_RESTART_POLICY', 'resolvePolicy'])
        expect(names).toContain(wanted)
      for (const internal of ['MergeBuffer', 'decide', 'markRunning', 'Supervisor', 'NatsOutput', 'createEnricher'])
        expect(names).not.toContain(internal)
    } finally {
      rmSync(hooksFile, { force: true })
    }
  })

  it('the root import does not evaluate effect/Schema; every exported schema loads it on first touch', () => {
    const hooksFile = join(artifacts, `hooks-schema-${process.pid}.mjs`)
    mkdirSync(artifacts, { recursive: true })
    writeFileSync(
      hooksFile,
      `import { writeSync } from 'node:fs'\nexport async function resolve(s, c, next) { const r = await next(s, c); writeSync(2, 'RESOLVED ' + r.url + '\\n'); return r }\n`,
    )
    try {
      // `import` goes through the resolve hook; `require` (how the package loads effect/Schema on
      // first touch) through Module._load, which the child also reports. After the root import,
      // one schema is touched (it must load effect/Schema then), and the module imports
      // effect/Schema itself: every `...Schema` export must be a working schema of that Effect.
      const r = runModule(
        `import Module, { register } from 'node:module'\nregister(${JSON.stringify(pathToFileURL(hooksFile).href)})\n` +
          `const load = Module._load\nModule._load = function (request, ...rest) { process.stderr.write('REQUIRED ' + request + '\\n'); return load.call(this, request, ...rest) }\n` +
          `const m = await import('tapio-collector-manager')\n` +
          `process.stderr.write('ROOT IMPORTED\\n')\n` +
          `void m.TapioEventSchema.ast\n` +
          `process.stderr.write('SCHEMA TOUCHED\\n')\n` +
          `const Schema = await import('effect/Schema')\n` +
          `const names = Object.keys(m).filter((k) => k.endsWith('Schema'))\n` +
          `const notSchemas = names.filter((k) => !Schema.isSchema(m[k]))\n` +
          `const event = { id: 'a-1', timestamp: '1', type: 'kernel.process.exec', source: 's', severity: 'info', data: { pid: 'one' } }\n` +
          `const envelope = Schema.decodeUnknownSync(m.TapioEventSchema)(event)\n` +
          `console.log(JSON.stringify({ names, notSchemas, envelope: envelope.type, validate: m.validateEvent(event)._tag, severities: m.SeveritySchema.literals }))\n`,
      )
      expect(r.status, r.stderr).toBe(0)
      const beforeImportDone = r.stderr.slice(0, r.stderr.indexOf('ROOT IMPORTED'))
      expect(beforeImportDone).toContain('/dist/src/manager/collector-manager.js')
      // effect/Schema and what only it needs (its SchemaAST, the parser).
      expect(beforeImportDone.split('\n').filter((l) => /\/node_modules\/effect\/dist\/(Schema|SchemaAST|SchemaParser)\.js$/.test(l))).toEqual([])
      expect(beforeImportDone.split('\n').filter((l) => l.startsWith('REQUIRED effect'))).toEqual([])
      const onTouch = r.stderr.slice(r.stderr.indexOf('ROOT IMPORTED'), r.stderr.indexOf('SCHEMA TOUCHED'))
      expect(onTouch.split('\n').filter((l) => l.startsWith('REQUIRED effect'))).toEqual(['REQUIRED effect/Schema'])
      const out = JSON.parse(r.stdout) as { names: string[]; notSchemas: string[]; envelope: string; validate: string; severities: string[] }
      expect(out.names.length).toBeGreaterThan(30)
      expect(out.names).toContain('ProcessExecDataSchema')
      expect(out.notSchemas).toEqual([])
      expect(out.envelope).toBe('kernel.process.exec')
      // The vocabulary's data schema for the type still applies (registered by the events module).
      expect(out.validate).toBe('Failure')
      expect(out.severities).toEqual(['debug', 'info', 'warning', 'error', 'critical'])
    } finally {
      rmSync(hooksFile, { force: true })
    }
  })

  it('the root import loads no Effect module; a started manager loads the runtime and its events flow, as the Effect Stream too', () => {
    const hooksFile = join(artifacts, `hooks-effect-${process.pid}.mjs`)
    mkdirSync(artifacts, { recursive: true })
    // Every resolved URL, and which Effect or XState module each of the package's own files imports.
    writeFileSync(
      hooksFile,
      `import { writeSync } from 'node:fs'\nexport async function resolve(s, c, next) { const r = await next(s, c); writeSync(2, 'RESOLVED ' + r.url + '\\n');\n` +
        `  if ((s === 'xstate' || s.startsWith('effect')) && c.parentURL?.includes('/dist/') && !c.parentURL.includes('/node_modules/')) writeSync(2, 'PEER ' + s + '\\n')\n  return r }\n`,
    )
    try {
      const r = runModule(
        `import Module, { register } from 'node:module'\nregister(${JSON.stringify(pathToFileURL(hooksFile).href)})\n` +
          `const load = Module._load\nModule._load = function (request, ...rest) { process.stderr.write('REQUIRED ' + request + '\\n'); return load.call(this, request, ...rest) }\n` +
          `const m = await import('tapio-collector-manager')\n` +
          `process.stderr.write('ROOT IMPORTED\\n')\n` +
          `const mgr = new m.CollectorManager()\n` +
          `mgr.addCollector('s', () => new m.SyntheticCollector({ rate: 2000, batchSize: 10 }))\n` +
          `const events = mgr.events()\n` +
          `await mgr.start()\n` +
          `process.stderr.write('STARTED\\n')\n` +
          `const seen = []\n` +
          `for await (const e of events) { seen.push(e.source + '/' + e.type); if (seen.length === 25) break }\n` +
          `const { Effect, Stream } = await import('effect')\n` +
          `const viaStream = await Effect.runPromise(Stream.runCollect(Stream.take(mgr.stream, 5)))\n` +
          `await mgr.stop()\n` +
          `console.log(JSON.stringify({ seen, viaStream: Array.from(viaStream).map((e) => e.source + '/' + e.type) }))\n`,
      )
      expect(r.status, r.stderr).toBe(0)
      const lines = r.stderr.split('\n')
      const imported = lines.indexOf('ROOT IMPORTED')
      const started = lines.indexOf('STARTED')
      expect(imported).toBeGreaterThan(0)
      expect(started).toBeGreaterThan(imported)
      const atImport = lines.slice(0, imported)
      expect(atImport.some((l) => l.endsWith('/dist/src/manager/collector-manager.js'))).toBe(true)
      // Neither imported nor required: no module of Effect at all (lazy-module.ts, lazy-schema.ts).
      expect(atImport.filter((l) => l.includes('/node_modules/effect/'))).toEqual([])
      expect(atImport.filter((l) => l.startsWith('REQUIRED effect'))).toEqual([])
      // The bench's floor is what the root really imports of its peers.
      expect([...new Set(atImport.filter((l) => l.startsWith('PEER ')).map((l) => l.slice('PEER '.length)))].sort()).toEqual([...ROOT_PEER_MODULES].sort())
      // Starting the manager (its first collector's pump) loads Effect's runtime.
      const onStart = lines.slice(imported, started).filter((l) => l.startsWith('REQUIRED effect'))
      for (const runtime of ['REQUIRED effect/Effect', 'REQUIRED effect/Stream']) expect(onStart).toContain(runtime)
      const out = JSON.parse(r.stdout) as { seen: string[]; viaStream: string[] }
      expect(out.seen).toEqual(Array.from({ length: 25 }, () => 's/synthetic.tick'))
      expect(out.viaStream).toEqual(Array.from({ length: 5 }, () => 's/synthetic.tick'))
    } finally {
      rmSync(hooksFile, { force: true })
    }
  })

  it("library code imports Effect by module ('effect/Schema'), never the whole barrel ('effect')", () => {
    const files = spawnSync('git', ['ls-files', '--cached', '--others', '--exclude-standard', 'src', 'machines'], { cwd: root, encoding: 'utf8' })
      .stdout.split('\n')
      .filter((f) => f.endsWith('.ts'))
    expect(files.length).toBeGreaterThan(50)
    const offenders = files.filter((f) => {
      try {
        return /from 'effect'$/m.test(readFileSync(join(root, f), 'utf8'))
      } catch {
        return false // deleted in the work tree
      }
    })
    expect(offenders, "write `import * as Schema from 'effect/Schema'`: the barrel loads ~250 modules").toEqual([])
  })

  it('every public entry point loads by name; internals are not reachable', () => {
    const entries = Object.keys(pkg.exports).filter((k) => k !== './package.json')
    const specifiers = entries.map((k) => (k === '.' ? 'tapio-collector-manager' : `tapio-collector-manager/${k.slice(2)}`))
    const r = runModule(
      `const out = {}\n` +
        `for (const s of ${JSON.stringify(specifiers)}) out[s] = Object.keys(await import(s)).length\n` +
        `for (const s of ['tapio-collector-manager/dist/src/stream/merge-buffer.js', 'tapio-collector-manager/src/index.js', 'tapio-collector-manager/internal/x']) {\n` +
        `  try { await import(s); out[s] = 'reachable' } catch (e) { out[s] = e.code }\n}\n` +
        `console.log(JSON.stringify(out))\n`,
    )
    expect(r.stderr).toBe('')
    const out = JSON.parse(r.stdout) as Record<string, number | string>
    for (const s of specifiers) expect(out[s], s).toBeGreaterThan(0)
    expect(out['tapio-collector-manager/dist/src/stream/merge-buffer.js']).toBe('ERR_PACKAGE_PATH_NOT_EXPORTED')
    expect(out['tapio-collector-manager/src/index.js']).toBe('ERR_PACKAGE_PATH_NOT_EXPORTED')
    expect(out['tapio-collector-manager/internal/x']).toBe('ERR_PACKAGE_PATH_NOT_EXPORTED')
  })
})

describe('peer dependencies', () => {
  it('effect and xstate are peers with the ranges the import-time check enforces, and dev dependencies of the repository', () => {
    const { 'fast-check': kitOnly, ...checked } = pkg.peerDependencies
    expect(checked).toEqual(PEER_RANGES)
    // Only tapio-collector-manager/testing needs fast-check, so it is an optional peer.
    expect(kitOnly).toBe('^4.0.0')
    expect(pkg.peerDependenciesMeta?.['fast-check']?.optional).toBe(true)
    expect(pkg.dependencies.effect).toBeUndefined()
    expect(pkg.dependencies.xstate).toBeUndefined()
    expect(pkg.devDependencies.effect).toBeDefined()
    expect(pkg.devDependencies.xstate).toBeDefined()
  })

  it('understands the range forms it uses', () => {
    expect(satisfies('4.1.0', '~4.1.0')).toBe(true)
    expect(satisfies('4.1.7', '~4.1.0')).toBe(true)
    expect(satisfies('4.2.0', '~4.1.0')).toBe(false)
    expect(satisfies('3.19.2', '~4.1.0')).toBe(false)
    expect(satisfies('4.0.9', '~4.1.0')).toBe(false)
    expect(satisfies('5.40.1', '^5.33.0')).toBe(true)
    expect(satisfies('5.32.9', '^5.33.0')).toBe(false)
    expect(satisfies('6.0.0', '^5.33.0')).toBe(false)
    expect(satisfies('garbage', '~4.1.0')).toBe(false)
  })
})
