import { spawnSync } from 'node:child_process'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath, pathToFileURL } from 'node:url'
import { afterAll, describe, expect, it } from 'vitest'

const root = fileURLToPath(new URL('../..', import.meta.url))
const dir = mkdtempSync(join(tmpdir(), 'tapio-lazy-'))
afterAll(() => rmSync(dir, { recursive: true, force: true }))

// Resolution hooks run in their own thread: they report every resolved URL on stderr.
writeFileSync(join(dir, 'hooks.mjs'), `import { writeSync } from 'node:fs'\nexport async function resolve(s, c, next) { const r = await next(s, c); writeSync(2, 'RESOLVED ' + r.url + '\\n'); return r }\n`)
writeFileSync(join(dir, 'register.mjs'), `import { register } from 'node:module'\nregister(${JSON.stringify(pathToFileURL(join(dir, 'hooks.mjs')).href)})\n`)

function resolvedBy(args: readonly string[]): { status: number | null; urls: string[]; output: string } {
  const r = spawnSync(process.execPath, ['--import', pathToFileURL(join(dir, 'register.mjs')).href, ...args], { cwd: root, encoding: 'utf8', timeout: 60_000 })
  const lines = r.stderr.split('\n')
  return {
    status: r.status,
    urls: [...new Set(lines.filter((l) => l.startsWith('RESOLVED ')).map((l) => l.slice('RESOLVED '.length)))],
    output: r.stdout + lines.filter((l) => !l.startsWith('RESOLVED ')).join('\n'),
  }
}

const heavy = (urls: readonly string[], pkg: string) => urls.filter((u) => u.includes(`/node_modules/${pkg}/`))

describe('collector kinds load their code only when configured', () => {
  it('the CLI with only a synthetic collector opens no Kubernetes client, no dbus-next and no NATS client', () => {
    const config = join(dir, 'agent.yaml')
    writeFileSync(config, 'collectors:\n  gen: { kind: synthetic }\n')
    const r = resolvedBy(['dist/src/agent/cli.js', 'check-config', '--config', config])
    expect(r.status, r.output).toBe(0)
    expect(r.urls.some((u) => u.endsWith('/dist/src/collectors/kubernetes/kind.js'))).toBe(true)
    expect(heavy(r.urls, '@kubernetes')).toEqual([])
    expect(heavy(r.urls, 'dbus-next')).toEqual([])
    expect(r.urls.some((u) => u.endsWith('/dist/src/collectors/kubernetes/collector.js'))).toBe(false)
    // The configuration checks NATS settings (outputs.nats) without the NATS client.
    expect(r.urls.some((u) => u.endsWith('/dist/src/outputs/nats/connection-settings.js'))).toBe(true)
    expect(r.urls.filter((u) => u.includes('/node_modules/@nats-io/'))).toEqual([])
  })

  it('creating a kubernetes or systemd collector loads its client then', () => {
    const script = join(dir, 'create.mjs')
    writeFileSync(
      script,
      `import { builtinKinds } from ${JSON.stringify(pathToFileURL(join(root, 'dist/src/agent/registry.js')).href)}\n` +
        `const kinds = new Map(builtinKinds().map((k) => [k.kind, k]))\n` +
        `const k8s = await kinds.get('kubernetes').create({})\n` +
        `const systemd = await kinds.get('systemd').create({})\n` +
        `console.log(typeof k8s, typeof systemd)\n`,
    )
    const r = resolvedBy([script])
    expect(r.status, r.output).toBe(0)
    expect(r.output).toContain('function function')
    expect(heavy(r.urls, '@kubernetes').length).toBeGreaterThan(0)
    expect(heavy(r.urls, 'dbus-next').length).toBeGreaterThan(0)
  })

  it('metrics without a NATS output and systemd detection without a bus load neither the NATS client nor dbus-next', () => {
    const script = join(dir, 'idle.mjs')
    writeFileSync(
      script,
      `import { createMetrics } from ${JSON.stringify(pathToFileURL(join(root, 'dist/src/agent/metrics.js')).href)}\n` +
        `import { detectSystemd } from ${JSON.stringify(pathToFileURL(join(root, 'dist/src/collectors/systemd/detect.js')).href)}\n` +
        `const registry = createMetrics({ manager: () => { throw new Error('not scraped') }, outputs: () => [], tailDropped: () => 0 })\n` +
        `const d = await detectSystemd({ address: 'unix:path=${join(dir, 'no-such-bus')}' })\n` +
        `console.log(typeof registry.metrics, JSON.stringify(d))\n`,
    )
    const r = resolvedBy([script])
    expect(r.status, r.output).toBe(0)
    expect(r.output).toContain('"supported":false')
    expect(r.output).toContain('no bus at')
    expect(heavy(r.urls, 'prom-client').length).toBeGreaterThan(0)
    expect(r.urls.filter((u) => u.includes('/node_modules/@nats-io/'))).toEqual([])
    expect(heavy(r.urls, 'dbus-next')).toEqual([])
  })
})
