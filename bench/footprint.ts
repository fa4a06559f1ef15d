/**
 * Footprint: what it costs to import the package and to run the agent idle, beside a bare
 * `node` in the same run.
 *
 * 1. Root import: a process that runs `await import('tapio-collector-manager')` (resolved by name
 *    through package.json exports, as a user's import is) reports the import's duration and its
 *    RSS afterwards; a bare process (`node -e ''` with the same measurement and no import) is the
 *    baseline, and a process importing only the peer modules the root loads
 *    (`bench/root-peer-modules.ts`: XState; Effect loads on first use) shows the floor that any
 *    user of those pays. A fourth process imports the root and then validates one event: what the
 *    first validation adds (it loads `effect/Schema`, which the root import leaves out). A fifth
 *    imports the root, starts a manager with one synthetic collector and reads its first event:
 *    what running adds (Effect's runtime, which the pump loads on start, the synthetic config's
 *    schema). All alternate, `--runs` times each; medians. Also the CPU time (on a machine shared
 *    with other work, wall time is mostly waiting for a core) and the whole process's wall time.
 * 2. Idle agent: `tapio-agent run` with its embedded default (every collector this machine
 *    supports, `enabled: auto`), NDJSON to a file, HTTP on an ephemeral port; RSS (VmRSS) after
 *    `--idle-seconds` (30). `--agents` of them run side by side; median.
 *
 *   npm run bench:footprint [-- --runs 9 --agents 3 --idle-seconds 30]
 *
 * `--agents 0` measures the import part only.
 *
 * The last output line is one JSON object. Targets (issue 11): root import <= 150 ms and <= 60 MB
 * RSS (the process's, absolute); idle agent <= 100 MB RSS.
 */
import { spawn, spawnSync } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { parseArgs } from 'node:util'
import { agentNodeFlags } from './agent-node-flags.js'
import { ROOT_PEER_MODULES } from './root-peer-modules.js'

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
  /** CPU time (user + system) the import took: what wall time is on an idle core, load or not. */
  readonly importCpuMs: number
  readonly rss: number
  readonly wallMs: number
}

type Subject = 'bare' | 'peers' | 'package' | 'validated' | 'started'


const ONE_EVENT = JSON.stringify({ id: 'a-1', timestamp: '1', type: 'kernel.process.exec', source: 's', severity: 'info', data: { pid: 'one' } })

/**
 * What one process imports: nothing (bare node), only the peer modules the root entry loads (the
 * floor any user of those pays anyway), the package by name, the package by name plus one
 * `validateEvent` (which loads `effect/Schema` and builds the decoders), or the package by name
 * plus a started manager with one synthetic collector, up to its first event (stopped after the
 * measurement).
 */
const IMPORTS: Record<Subject, string> = {
  bare: '',
  peers: `await Promise.all(${JSON.stringify(ROOT_PEER_MODULES)}.map((m) => import(m)));`,
  package: "await import('tapio-collector-manager');",
  validated: `const m = await import('tapio-collector-manager'); if (m.validateEvent(${ONE_EVENT})._tag !== 'Failure') throw new Error('validateEvent accepted a bad event');`,
  started:
    "const m = await import('tapio-collector-manager'); const mgr = new m.CollectorManager(); mgr.addCollector('s', () => new m.SyntheticCollector({ rate: 1000, batchSize: 10 })); " +
    "const events = mgr.events(); await mgr.start(); const first = await events.next(); if (first.done || first.value.source !== 's') throw new Error('no event from the synthetic collector');",
}

/** One process: imports its subject, then reports the import's wall and CPU time and its RSS. */
function importSample(subject: Subject): ImportSample {
  const stop = subject === 'started' ? ' await mgr.stop();' : ''
  const code = `const c = process.cpuUsage(); const t = performance.now(); ${IMPORTS[subject]} const ms = performance.now() - t; const u = process.cpuUsage(c); process.stdout.write(JSON.stringify({ ms, cpuMs: (u.user + u.system) / 1000, rss: process.memoryUsage.rss() }));${stop}`
  const started = performance.now()
  // From the repository root, `tapio-collector-manager` resolves to this package by name.
  const r = spawnSync(process.execPath, ['--input-type=module', '-e', code], { cwd: root, encoding: 'utf8' })
  const wallMs = performance.now() - started
  if (r.status !== 0) throw new Error(`import sample (${subject}) failed (${r.status}): ${r.stderr}`)
  const out = JSON.parse(r.stdout) as { ms: number; cpuMs: number; rss: number }
  return { importMs: out.ms, importCpuMs: out.cpuMs, rss: out.rss, wallMs }
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
  // With the CLI's shebang flags: the agent as the installed `tapio-agent` command runs it.
  const child = spawn(process.execPath, [...agentNodeFlags(join(root, 'dist/src/agent/cli.js')), 'dist/src/agent/cli.js', 'run', '--http-port', '0', '--output', join(dir, 'events.ndjson')], {
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
const peers: ImportSample[] = []
const pkg: ImportSample[] = []
const validated: ImportSample[] = []
const started: ImportSample[] = []
// Interleaved, so drifts in machine load hit all alike; one unmeasured warm-up each (disk cache).
for (const s of ['bare', 'peers', 'package', 'validated', 'started'] as const) importSample(s)
for (let i = 0; i < runs; i++) {
  bare.push(importSample('bare'))
  peers.push(importSample('peers'))
  pkg.push(importSample('package'))
  validated.push(importSample('validated'))
  started.push(importSample('started'))
}
const importMs = median(pkg.map((s) => s.importMs))
const importCpuMs = median(pkg.map((s) => s.importCpuMs))
const rssImport = median(pkg.map((s) => s.rss))
const rssBare = median(bare.map((s) => s.rss))
const wallImport = median(pkg.map((s) => s.wallMs))
const wallBare = median(bare.map((s) => s.wallMs))
const peersMs = median(peers.map((s) => s.importMs))
const peersCpuMs = median(peers.map((s) => s.importCpuMs))
const rssPeers = median(peers.map((s) => s.rss))
const validatedMs = median(validated.map((s) => s.importMs))
const validatedCpuMs = median(validated.map((s) => s.importCpuMs))
const rssValidated = median(validated.map((s) => s.rss))
const startedMs = median(started.map((s) => s.importMs))
const startedCpuMs = median(started.map((s) => s.importCpuMs))
const rssStarted = median(started.map((s) => s.rss))
const peerNames = ROOT_PEER_MODULES.join(' + ')
console.log(
  `root import: ${importMs.toFixed(0)} ms (${importCpuMs.toFixed(0)} ms CPU), RSS ${mb(rssImport)} MB; bare node ${mb(rssBare)} MB; ` +
    `${peerNames} alone ${peersMs.toFixed(0)} ms (${peersCpuMs.toFixed(0)} ms CPU), ${mb(rssPeers)} MB; ` +
    `root import + first validateEvent ${validatedMs.toFixed(0)} ms (${validatedCpuMs.toFixed(0)} ms CPU), ${mb(rssValidated)} MB; ` +
    `root import + started synthetic manager, first event ${startedMs.toFixed(0)} ms (${startedCpuMs.toFixed(0)} ms CPU), ${mb(rssStarted)} MB`,
)

const loadAverage = (await import('node:os')).loadavg()[0] as number
const samples = await Promise.all(Array.from({ length: agents }, () => idleAgent(idleSeconds)))
const agentRss = samples.length > 0 ? median(samples.map((s) => s.rss)) : Number.NaN
if (agents > 0)
  console.log(`idle agent after ${idleSeconds} s: RSS ${mb(agentRss)} MB (running: ${samples[0]?.running.join(', ')}; skipped: ${samples[0]?.skipped.join(', ')})`)

console.log(
  JSON.stringify({
    bench: 'footprint',
    runs,
    loadAverage1m: Number(loadAverage.toFixed(1)),
    rootImport: {
      importMsMedian: Number(importMs.toFixed(1)),
      importCpuMsMedian: Number(importCpuMs.toFixed(1)),
      rssMBMedian: mb(rssImport),
      rssAboveBareMB: mb(rssImport - rssBare),
      processWallMsMedian: Number(wallImport.toFixed(1)),
    },
    bareNode: { rssMBMedian: mb(rssBare), processWallMsMedian: Number(wallBare.toFixed(1)) },
    rootPeerModulesAlone: { modules: ROOT_PEER_MODULES, importMsMedian: Number(peersMs.toFixed(1)), importCpuMsMedian: Number(peersCpuMs.toFixed(1)), rssMBMedian: mb(rssPeers) },
    rootImportThenValidateEvent: { importMsMedian: Number(validatedMs.toFixed(1)), importCpuMsMedian: Number(validatedCpuMs.toFixed(1)), rssMBMedian: mb(rssValidated) },
    rootImportThenStartedManager: { msToFirstEventMedian: Number(startedMs.toFixed(1)), cpuMsMedian: Number(startedCpuMs.toFixed(1)), rssMBMedian: mb(rssStarted) },
    ratios: {
      rssVsBare: Number((rssImport / rssBare).toFixed(2)),
      processWallVsBare: Number((wallImport / wallBare).toFixed(2)),
      importCpuVsRootPeers: Number((importCpuMs / peersCpuMs).toFixed(2)),
      importMsVsRootPeers: Number((importMs / peersMs).toFixed(2)),
    },
    idleAgent: agents === 0 ? null : {
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
