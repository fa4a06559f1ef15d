/**
 * Footprint: what it costs to import the package and to run the agent idle, beside a bare
 * `node` in the same run.
 *
 * 1. Root import: a process that runs `await import('tapio-collector-manager')` (resolved by name
 *    through package.json exports, as a user's import is) reports the import's duration and its
 *    RSS afterwards; a bare process (`node -e ''` with the same measurement and no import) is the
 *    baseline. Both alternate, `--runs` times each; medians. Also the whole process's wall time.
 * 2. Idle agent: `tapio-agent run` with its embedded default (every collector this machine
 *    supports, `enabled: auto`), NDJSON to a file, HTTP on an ephemeral port; RSS (VmRSS) after
 *    `--idle-seconds` (30). `--agents` of them run side by side; median.
 *
 *   npm run bench:footprint [-- --runs 9 --agents 3 --idle-seconds 30]
 *
 * The last output line is one JSON object. Targets (issue 11): root import <= 150 ms and <= 60 MB
 * RSS above the bare process; idle agent <= 100 MB RSS.
 */
import { spawn, spawnSync } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { parseArgs } from 'node:util'

const root = fileURLToPath(new URL('../..', import.meta.url))
const { values } = parseArgs({
  options: {
    runs: { type: 'string', default: '9' },
    agents: { type: 'string', default: '3' },
    'idle-seconds': { type: 'string', default: '30' },
  },
})
const runs = Number(values.runs)
const agents = Number(values.agents)
const idleSeconds = Number(values['idle-seconds'])

const median = (xs: readonly number[]): number => {
  const s = [...xs].sort((a, b) => a - b)
  const m = s.length >> 1
  return s.length % 2 ? (s[m] as number) : ((s[m - 1] as number) + (s[m] as number)) / 2
}
const mb = (bytes: number) => Number((bytes / 1e6).toFixed(1))

interface ImportSample {
  readonly importMs: number
  readonly rss: number
  readonly wallMs: number
}

/** One process: optionally imports the package, then reports the import time and its RSS. */
function importSample(importPackage: boolean): ImportSample {
  const code = importPackage
    ? "const t = performance.now(); await import('tapio-collector-manager'); const ms = performance.now() - t; process.stdout.write(JSON.stringify({ ms, rss: process.memoryUsage.rss() }))"
    : 'process.stdout.write(JSON.stringify({ ms: 0, rss: process.memoryUsage.rss() }))'
  const started = performance.now()
  // From the repository root, `tapio-collector-manager` resolves to this package by name.
  const r = spawnSync(process.execPath, ['--input-type=module', '-e', code], { cwd: root, encoding: 'utf8' })
  const wallMs = performance.now() - started
  if (r.status !== 0) throw new Error(`import sample failed (${r.status}): ${r.stderr}`)
  const out = JSON.parse(r.stdout) as { ms: number; rss: number }
  return { importMs: out.ms, rss: out.rss, wallMs }
}

function vmRss(pid: number): number {
  const m = /^VmRSS:\s+(\d+) kB$/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))
  if (!m) throw new Error(`no VmRSS for ${pid}`)
  return Number(m[1]) * 1024
}

interface AgentSample {
  readonly rss: number
  readonly running: string[]
  readonly skipped: string[]
}

/** One agent with the embedded default, idle for `seconds`; always stopped, also on failure. */
async function idleAgent(seconds: number): Promise<AgentSample> {
  const dir = mkdtempSync(join(tmpdir(), 'tapio-footprint-'))
  const child = spawn(process.execPath, ['dist/src/agent/cli.js', 'run', '--http-port', '0', '--output', join(dir, 'events.ndjson')], {
    cwd: root,
    stdio: ['ignore', 'ignore', 'pipe'],
  })
  let log = ''
  child.stderr.on('data', (d: Buffer) => (log += d.toString()))
  const exited = new Promise<void>((resolve) => child.on('exit', () => resolve()))
  try {
    await new Promise((r) => setTimeout(r, seconds * 1000))
    if (child.exitCode !== null) throw new Error(`agent exited early (${child.exitCode}): ${log}`)
    const rss = vmRss(child.pid as number)
    const lines = log
      .split('\n')
      .filter((l) => l.startsWith('{'))
      .map((l) => JSON.parse(l) as { msg?: string })
    const running = lines.flatMap((l) => (/^(\w+): running$/.exec(l.msg ?? '')?.[1] ? [/^(\w+): running$/.exec(l.msg ?? '')?.[1] as string] : []))
    const skipped = lines.flatMap((l) => (/^(\w+): skipped/.exec(l.msg ?? '')?.[1] ? [/^(\w+): skipped/.exec(l.msg ?? '')?.[1] as string] : []))
    return { rss, running, skipped }
  } finally {
    child.kill('SIGTERM')
    const killer = setTimeout(() => child.kill('SIGKILL'), 15_000)
    await exited
    clearTimeout(killer)
    rmSync(dir, { recursive: true, force: true })
  }
}

const bare: ImportSample[] = []
const pkg: ImportSample[] = []
// Alternate, so machine load drifts hit both alike; one unmeasured warm-up each (disk cache).
importSample(false)
importSample(true)
for (let i = 0; i < runs; i++) {
  bare.push(importSample(false))
  pkg.push(importSample(true))
}
const importMs = median(pkg.map((s) => s.importMs))
const rssImport = median(pkg.map((s) => s.rss))
const rssBare = median(bare.map((s) => s.rss))
const wallImport = median(pkg.map((s) => s.wallMs))
const wallBare = median(bare.map((s) => s.wallMs))
console.log(`root import: ${importMs.toFixed(0)} ms, RSS ${mb(rssImport)} MB (bare node ${mb(rssBare)} MB); process wall ${wallImport.toFixed(0)} ms vs ${wallBare.toFixed(0)} ms`)

const samples = await Promise.all(Array.from({ length: agents }, () => idleAgent(idleSeconds)))
const agentRss = median(samples.map((s) => s.rss))
console.log(`idle agent after ${idleSeconds} s: RSS ${mb(agentRss)} MB (running: ${samples[0]?.running.join(', ')}; skipped: ${samples[0]?.skipped.join(', ')})`)

console.log(
  JSON.stringify({
    bench: 'footprint',
    runs,
    rootImport: {
      importMsMedian: Number(importMs.toFixed(1)),
      rssMBMedian: mb(rssImport),
      rssAboveBareMB: mb(rssImport - rssBare),
      processWallMsMedian: Number(wallImport.toFixed(1)),
    },
    bareNode: { rssMBMedian: mb(rssBare), processWallMsMedian: Number(wallBare.toFixed(1)) },
    ratios: { rss: Number((rssImport / rssBare).toFixed(2)), processWall: Number((wallImport / wallBare).toFixed(2)) },
    idleAgent: {
      agents,
      idleSeconds,
      rssMBMedian: mb(agentRss),
      rssAboveBareMB: mb(agentRss - rssBare),
      rssMBEach: samples.map((s) => mb(s.rss)),
      running: samples[0]?.running ?? [],
      skipped: samples[0]?.skipped ?? [],
    },
  }),
)
