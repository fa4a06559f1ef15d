/**
 * The agent end to end: the real `tapio-agent run` process (CLI, config, supervisor, collectors,
 * merge buffer, enrichment, outputs, HTTP) with its real outputs, each scenario beside a baseline
 * measured in the same run:
 *
 *   synthetic  2 synthetic collectors (rate 0, fresh events) -> agent -> NDJSON file
 *              vs a bare loop making the same events, serialising them and writing them to a file;
 *   ebpf-file  the bench:ebpf load generator (getppid() N times, a traced event each) -> the ebpf
 *              collector -> agent -> NDJSON file
 *              vs the plain C libbpf consumer writing the same records as JSON text lines;
 *   ebpf-nats  the same load -> agent -> NATS JetStream (acknowledged; a real nats-server started
 *              and stopped here, fresh stream per run)
 *              vs a bare NATS client publishing the same bytes (same packing, headers, window).
 *
 * Every run accounts for every event: generated = delivered (lines in the file / acknowledged) +
 * counted drops (kernel, userspace, buffer, output). The agent's peak RSS (VmHWM) and CPU time are
 * read from /proc while it runs; the baselines report their own (getrusage).
 *
 * Clocks: synthetic from the first byte in the output file (start-up is reported apart), eBPF from
 * the moment the load starts; file runs end when the agent has exited (its stop drains and closes
 * the file), NATS runs when the last event is acknowledged.
 *
 *   npm run bench:agent [-- --runs 3 --synthetic 10000000 --ebpf 5000000 --nats 2000000 --only ebpf-file]
 *
 * The agent runs with the Node.js flags of the CLI's shebang (what `tapio-agent` runs with);
 * `--node-flags ''` (or other flags) measures it without them.
 *
 * BENCH_AGENT_PROFILE_DIR=dir writes a V8 CPU profile of every agent process there (node --cpu-prof).
 *
 * The last output line is one JSON object.
 */
import { type ChildProcess, execFileSync, fork, spawn } from 'node:child_process'
import { once } from 'node:events'
import { createReadStream, createWriteStream, existsSync, mkdtempSync, openSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs'
import { createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { parseArgs } from 'node:util'
import { jetstreamManager } from '@nats-io/jetstream'
import { connect, createInbox, headers } from '@nats-io/transport-node'
import { nextEventId } from '../src/events/id.js'
import { nowNs } from '../src/events/time.js'
import { NATS_DEFAULTS } from '../src/outputs/nats/config.js'
import { agentNodeFlags } from './agent-node-flags.js'
import { repoRoot } from './support/repo-root.js'

const STREAM = NATS_DEFAULTS.stream.name
const WINDOW = NATS_DEFAULTS.maxPendingEvents
const PACK = NATS_DEFAULTS.maxEventsPerMessage
const BATCH = 1000
const RING_BYTES = 16 << 20
const DRAIN_MS = 5
const NODE = 'bench-node'

const root = repoRoot()
const helpers = join(root, 'bench', 'ebpf', 'out')
const cli = join(root, 'dist', 'src', 'agent', 'cli.js')
/** Node.js flags of every agent process (set from --node-flags or the CLI's shebang). */
let agentFlags: string[] = []

/** One measured run of one variant. */
interface Run {
  readonly scenario: 'synthetic' | 'ebpf-file' | 'ebpf-nats'
  readonly variant: 'agent' | 'baseline'
  readonly generated: number
  /** Lines in the file or events acknowledged. */
  readonly delivered: number
  /** Every counted loss (kernel, userspace, buffer, output); 0 for the baselines unless reported. */
  readonly dropped: number
  readonly seconds: number
  readonly perSec: number
  readonly cpuSeconds: number
  readonly peakRssMB: number
  /** Agent only: from spawn to the first event written. */
  readonly startupSeconds?: number
  readonly bytesPerEvent?: number
}

const closed = (r: Run) => r.generated === r.delivered + r.dropped

// ---- helpers ---------------------------------------------------------------------------------

function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b)
  const m = Math.floor(s.length / 2)
  return s.length === 0 ? 0 : s.length % 2 ? (s[m] as number) : ((s[m - 1] as number) + (s[m] as number)) / 2
}

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer()
    s.once('error', reject)
    s.listen(0, '127.0.0.1', () => {
      const a = s.address()
      s.close(() => resolve(typeof a === 'object' && a ? a.port : 0))
    })
  })
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

async function countLines(path: string): Promise<number> {
  let n = 0
  for await (const chunk of createReadStream(path, { highWaterMark: 1 << 20 }) as AsyncIterable<Buffer>) {
    for (let i = chunk.indexOf(10); i !== -1; i = chunk.indexOf(10, i + 1)) n++
  }
  return n
}

const CLK_TCK = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100

/** CPU seconds and peak RSS of a live process, from /proc (undefined once it is gone). */
function procUsage(pid: number): { cpuSeconds: number; peakRssMB: number } | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
    // Fields after the parenthesised command name: state is field 3, utime 14, stime 15.
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
    const cpuSeconds = (Number(f[11]) + Number(f[12])) / CLK_TCK
    // A zombie (exited, not yet reaped) has no memory map: no VmHWM line then.
    const hwm = /VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))
    return { cpuSeconds, peakRssMB: hwm ? Number(hwm[1]) / 1024 : 0 }
  } catch {
    return undefined
  }
}

interface Status {
  totals: { accepted: number; delivered: number; dropped: { total: number } }
  collectors: Record<
    string,
    {
      state: string
      source?: { produced: number; queued: number; dropped: Record<string, number>; counters: Record<string, number> }
    }
  >
  outputs: Record<string, { details?: { ackedEvents: number; failedEvents: { total: number } } }>
}

/** `BENCH_AGENT_STDOUT=file` appends the agents' stdout there (where `--trace-gc` prints). */
function agentStdout(): 'ignore' | number {
  const path = process.env.BENCH_AGENT_STDOUT
  return path ? openSync(path, 'a') : 'ignore'
}

/** The real agent as a child process, with its HTTP endpoint and resource sampling. */
class AgentProcess {
  readonly child: ChildProcess
  readonly spawnedAt = performance.now()
  private usage = { cpuSeconds: 0, peakRssMB: 0 }
  private readonly sampler: ReturnType<typeof setInterval>
  private stderr = ''
  readonly exited: Promise<number>
  exitedAt = 0

  constructor(
    config: Record<string, unknown>,
    dir: string,
    private readonly port: number,
  ) {
    const path = join(dir, 'agent.yaml')
    writeFileSync(path, JSON.stringify(config))
    const profile = process.env.BENCH_AGENT_PROFILE_DIR
    const flags = [...agentFlags, ...(profile ? ['--cpu-prof', '--cpu-prof-dir', profile] : [])]
    this.child = spawn(process.execPath, [...flags, cli, 'run', '--config', path], { stdio: ['ignore', agentStdout(), 'pipe'] })
    this.child.stderr?.on('data', (d: Buffer) => (this.stderr += d.toString()))
    this.exited = new Promise((resolve) =>
      this.child.once('exit', (code) => {
        this.exitedAt = performance.now()
        clearInterval(this.sampler)
        resolve(code ?? -1)
      }),
    )
    this.sampler = setInterval(() => this.sample(), 20)
  }

  sample(): void {
    const u = this.child.pid === undefined ? undefined : procUsage(this.child.pid)
    if (u) this.usage = { cpuSeconds: Math.max(this.usage.cpuSeconds, u.cpuSeconds), peakRssMB: Math.max(this.usage.peakRssMB, u.peakRssMB) }
  }

  get resources(): { cpuSeconds: number; peakRssMB: number } {
    return this.usage
  }

  /** The agent's own final statistics (its `stopped` log line). */
  stopped(): { totalEvents: number; delivered: number; dropped: number } | undefined {
    for (const line of this.stderr.split('\n')) {
      if (!line.includes('"stopped"')) continue
      try {
        const o = JSON.parse(line) as { msg?: string; totalEvents?: number; delivered?: number; dropped?: number }
        if (o.msg === 'stopped') return { totalEvents: o.totalEvents ?? 0, delivered: o.delivered ?? 0, dropped: o.dropped ?? 0 }
      } catch {
        // not a log line
      }
    }
    return undefined
  }

  get log(): string {
    return this.stderr
  }

  async status(): Promise<Status | undefined> {
    try {
      const r = await fetch(`http://127.0.0.1:${this.port}/api/status`)
      return (await r.json()) as Status
    } catch {
      return undefined
    }
  }

  /** Poll `/api/status` until `done` says so (or the agent dies / the deadline passes). */
  async until(done: (s: Status) => boolean, what: string, timeoutMs = 120_000, everyMs = 20): Promise<Status> {
    const deadline = Date.now() + timeoutMs
    for (;;) {
      if (this.exitedAt) throw new Error(`agent exited while waiting for ${what}:\n${this.stderr.slice(-4000)}`)
      const s = await this.status()
      if (s && done(s)) return s
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}; last status ${JSON.stringify(s)}\n${this.stderr.slice(-4000)}`)
      await sleep(everyMs)
    }
  }

  async stop(): Promise<number> {
    this.sample()
    this.child.kill('SIGTERM')
    const timer = setTimeout(() => this.child.kill('SIGKILL'), 60_000)
    const code = await this.exited
    clearTimeout(timer)
    return code
  }
}

/** Started agents, killed on the way out whatever happens. */
const live = new Set<ChildProcess>()
function track<T extends ChildProcess>(c: T): T {
  live.add(c)
  c.once('exit', () => live.delete(c))
  return c
}

function baseConfig(port: number): Record<string, unknown> {
  // `BENCH_AGENT_CONFIG={"buffer":{"capacity":2000}}` adds to (or replaces) top-level settings.
  const extra = process.env.BENCH_AGENT_CONFIG ? (JSON.parse(process.env.BENCH_AGENT_CONFIG) as Record<string, unknown>) : {}
  return { node: NODE, http: { enabled: true, host: '127.0.0.1', port }, log: { level: 'info' }, ...extra }
}

function fileOutput(path: string): Record<string, unknown> {
  return { stdout: { enabled: false }, file: { path, maxBytes: 2 ** 40, maxFiles: 1 } }
}

// ---- synthetic -> agent -> file ----------------------------------------------------------------

async function syntheticAgent(total: number): Promise<Run> {
  const dir = mkdtempSync(join(tmpdir(), 'bench-agent-'))
  try {
    const port = await freePort()
    const out = join(dir, 'events.ndjson')
    const collectors: Record<string, unknown> = {}
    for (let i = 0; i < 2; i++) collectors[`gen${i}`] = { kind: 'synthetic', rate: 0, batchSize: BATCH, total: total / 2, policy: { restart: 'temporary' } }
    const agent = new AgentProcess({ ...baseConfig(port), collectors, outputs: fileOutput(out) }, dir, port)
    track(agent.child)
    let first = 0
    while (first === 0) {
      if (agent.exitedAt) throw new Error(`agent exited before writing:\n${agent.log}`)
      if (existsSync(out) && statSync(out).size > 0) first = performance.now()
      else await sleep(2)
    }
    await agent.until((s) => s.totals.accepted >= total && s.totals.delivered + s.totals.dropped.total >= total, 'all synthetic events delivered')
    const code = await agent.stop()
    if (code !== 0) throw new Error(`agent exited with ${code}:\n${agent.log.slice(-4000)}`)
    const seconds = (agent.exitedAt - first) / 1000
    const lines = await countLines(out)
    const final = agent.stopped()
    const bytes = statSync(out).size
    return {
      scenario: 'synthetic',
      variant: 'agent',
      generated: final?.totalEvents ?? 0,
      delivered: lines,
      dropped: final?.dropped ?? Number.NaN,
      seconds,
      perSec: lines / seconds,
      ...agent.resources,
      startupSeconds: (first - agent.spawnedAt) / 1000,
      bytesPerEvent: bytes / Math.max(1, lines),
    }
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
}

/** Same events, same serialisation, same file writes; no agent. Runs in its own process. */
async function syntheticBare(total: number, out: string): Promise<Run> {
  const t0 = performance.now()
  const stream = createWriteStream(out)
  for (let made = 0, gen = 0; made < total; gen = (gen + 1) % 2) {
    const ts = nowNs()
    const n = Math.min(BATCH, total - made)
    const batch = new Array<unknown>(n)
    for (let i = 0; i < n; i++) batch[i] = { type: 'synthetic.tick', severity: 'info', timestamp: ts, data: { seq: made + i, generation: 1 }, id: nextEventId(), source: `gen${gen}` }
    made += n
    let text = ''
    for (const e of batch) text += `${JSON.stringify(e)}\n`
    if (!stream.write(text)) await once(stream, 'drain')
  }
  stream.end()
  await once(stream, 'finish')
  const seconds = (performance.now() - t0) / 1000
  const lines = await countLines(out)
  return { scenario: 'synthetic', variant: 'baseline', generated: total, delivered: lines, dropped: 0, seconds, perSec: lines / seconds, ...selfUsage(), bytesPerEvent: statSync(out).size / Math.max(1, lines) }
}

function selfUsage(): { cpuSeconds: number; peakRssMB: number } {
  const u = process.resourceUsage()
  return { cpuSeconds: (u.userCPUTime + u.systemCPUTime) / 1e6, peakRssMB: u.maxRSS / 1024 }
}

// ---- eBPF -> agent -> file / NATS --------------------------------------------------------------

interface Loadgen {
  readonly pid: number
  go(): void
  readonly exited: Promise<void>
}

async function startLoadgen(events: number): Promise<Loadgen> {
  const child = track(spawn(join(helpers, 'loadgen'), [String(events)], { stdio: ['pipe', 'pipe', 'inherit'] }))
  const pid = await new Promise<number>((resolve, reject) => {
    child.once('error', reject)
    child.stdout.once('data', (c: Buffer) => resolve(Number(c.toString().split('\n')[0])))
  })
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()))
  return { pid, go: () => child.stdin.end('go\n'), exited }
}

function ebpfCollectorConfig(pid: number): Record<string, unknown> {
  return {
    kind: 'ebpf',
    programs: { exec: false, exit: false, tcp: false, oom: false, openat: false },
    probePid: pid,
    ringBufferBytes: RING_BYTES,
    drainIntervalMs: DRAIN_MS,
    policy: { restart: 'temporary' },
    // `BENCH_AGENT_EBPF={"batchBytes":65536}` tries other collector settings.
    ...(process.env.BENCH_AGENT_EBPF ? (JSON.parse(process.env.BENCH_AGENT_EBPF) as Record<string, unknown>) : {}),
  }
}

interface EbpfCounts {
  generated: number
  droppedKernel: number
  droppedUser: number
}

/** The collector's source accounting once every generated event is delivered or counted. */
function kernelDone(s: Status, events: number): EbpfCounts | undefined {
  const src = s.collectors.ebpf?.source
  if (!src || src.produced !== events || src.queued !== 0) return undefined
  const droppedKernel = src.dropped.kernel_ring_full ?? 0
  let droppedUser = 0
  for (const [reason, n] of Object.entries(src.dropped)) if (reason !== 'kernel_ring_full') droppedUser += n
  if ((src.counters.delivered ?? 0) + droppedKernel + droppedUser !== src.produced) return undefined
  // The merge buffer has handed everything it accepted to the agent's consumer.
  if (s.totals.delivered + s.totals.dropped.total < s.totals.accepted) return undefined
  return { generated: src.produced, droppedKernel, droppedUser }
}

async function ebpfAgent(events: number, output: 'file' | 'nats', natsUrl: string): Promise<Run> {
  const dir = mkdtempSync(join(tmpdir(), 'bench-agent-'))
  let load: Loadgen | undefined
  try {
    const port = await freePort()
    const out = join(dir, 'events.ndjson')
    load = await startLoadgen(events)
    const outputs = output === 'file' ? fileOutput(out) : { stdout: { enabled: false }, nats: { servers: [natsUrl] } }
    const agent = new AgentProcess({ ...baseConfig(port), collectors: { ebpf: ebpfCollectorConfig(load.pid) }, outputs }, dir, port)
    track(agent.child)
    await agent.until((s) => s.collectors.ebpf?.state === 'running' && (output === 'file' || s.outputs.nats?.details !== undefined), 'the ebpf collector running', 60_000)
    if (output === 'nats') await agent.until((s) => (s.outputs.nats as { ready?: boolean } | undefined)?.ready === true, 'the NATS output ready', 30_000)
    const t0 = performance.now()
    load.go()
    await load.exited
    let counts: EbpfCounts | undefined
    let acked = 0
    let failed = 0
    await agent.until((s) => {
      counts = kernelDone(s, events)
      if (!counts || output === 'file') return counts !== undefined
      const d = s.outputs.nats?.details
      acked = d?.ackedEvents ?? 0
      failed = d?.failedEvents.total ?? 0
      return acked + failed >= s.totals.delivered
    }, `all ${events} kernel events through the agent`, 120_000, 5)
    const ackedAt = performance.now()
    agent.sample()
    const usageAtEnd = agent.resources
    const code = await agent.stop()
    if (code !== 0) throw new Error(`agent exited with ${code}:\n${agent.log.slice(-4000)}`)
    const final = agent.stopped()
    const c = counts as EbpfCounts
    const delivered = output === 'file' ? await countLines(out) : acked
    const seconds = ((output === 'file' ? agent.exitedAt : ackedAt) - t0) / 1000
    return {
      scenario: output === 'file' ? 'ebpf-file' : 'ebpf-nats',
      variant: 'agent',
      generated: c.generated,
      delivered,
      dropped: c.droppedKernel + c.droppedUser + (final?.dropped ?? Number.NaN) + failed,
      seconds,
      perSec: delivered / seconds,
      ...(output === 'file' ? agent.resources : usageAtEnd),
      ...(output === 'file' ? { bytesPerEvent: statSync(out).size / Math.max(1, delivered) } : {}),
    }
  } finally {
    await load?.exited
    rmSync(dir, { recursive: true, force: true })
  }
}

interface CResult {
  generated: number
  delivered: number
  droppedKernel: number
  seconds: number
  eventsPerSec: number
  cpuSeconds: number
  maxRssKb: number
}

async function ebpfCText(events: number): Promise<Run> {
  const dir = mkdtempSync(join(tmpdir(), 'bench-agent-'))
  try {
    const out = join(dir, 'events.ndjson')
    const c = track(spawn(join(helpers, 'consumer'), [String(events), String(RING_BYTES), String(DRAIN_MS), join(helpers, 'loadgen'), out], { stdio: ['ignore', 'pipe', 'inherit'] }))
    let text = ''
    c.stdout.on('data', (d: Buffer) => (text += d.toString()))
    const [code] = (await once(c, 'exit')) as [number | null]
    if (code !== 0) throw new Error(`C consumer exited with ${code}`)
    const r = JSON.parse(text.trim().split('\n').pop() ?? '{}') as CResult
    const lines = await countLines(out)
    return {
      scenario: 'ebpf-file',
      variant: 'baseline',
      generated: r.generated,
      delivered: lines,
      dropped: r.droppedKernel,
      seconds: r.seconds,
      perSec: lines / r.seconds,
      cpuSeconds: r.cpuSeconds,
      peakRssMB: r.maxRssKb / 1024,
      bytesPerEvent: statSync(out).size / Math.max(1, lines),
    }
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
}

/**
 * A bare client publishing what the agent publishes for the probe load: the same event shape and
 * subject, NDJSON-packed 100 to a message, the same headers, the same window of unacknowledged
 * events, acknowledgements on one wildcard inbox. Runs in its own process.
 */
async function natsBare(url: string, total: number): Promise<Run> {
  const nc = await connect({ servers: url })
  const jsm = await jetstreamManager(nc)
  await jsm.streams.add({ name: STREAM, subjects: ['tapio.events.>'], duplicate_window: NATS_DEFAULTS.stream.duplicateWindowMs * 1e6 })
  const inbox = createInbox()
  const inFlight = new Map<number, number>()
  let pending = 0
  let acked = 0
  let failed = 0
  let wake: (() => void) | undefined
  const decoder = new TextDecoder()
  nc.subscribe(`${inbox}.*`, {
    callback: (_err, m) => {
      const seq = Number(m.subject.slice(m.subject.lastIndexOf('.') + 1))
      const n = inFlight.get(seq) ?? 0
      inFlight.delete(seq)
      const reply = JSON.parse(decoder.decode(m.data)) as { error?: unknown }
      if (reply.error) failed += n
      else acked += n
      pending -= n
      if (wake && pending < WINDOW) {
        const w = wake
        wake = undefined
        w()
      }
    },
  })
  const subject = `tapio.events.${NODE}.ebpf.kernel.probe.hit`
  const t0 = performance.now()
  let seq = 0
  let made = 0
  let pid = 4242
  while (made < total) {
    const n = Math.min(BATCH, total - made)
    const batch = new Array<{ id: string }>(n)
    for (let i = 0; i < n; i++) {
      batch[i] = {
        type: 'kernel.probe.hit',
        timestamp: nowNs(),
        severity: 'debug',
        data: { pid, tid: pid, uid: 0, comm: 'loadgen', cgroupId: '4711', cgroupPath: '/user.slice/user-0.slice/session-1.scope' },
        id: nextEventId(),
        source: 'ebpf',
      } as { id: string }
    }
    made += n
    for (let i = 0; i < n; i += PACK) {
      const part = batch.slice(i, i + PACK)
      let text = ''
      for (const e of part) text += `${JSON.stringify(e)}\n`
      const h = headers()
      h.set('Nats-Msg-Id', `${part[0]?.id ?? ''}..${part[part.length - 1]?.id ?? ''}`)
      h.set('Tapio-Node', NODE)
      const s = ++seq
      inFlight.set(s, part.length)
      pending += part.length
      nc.publish(subject, Buffer.from(text), { reply: `${inbox}.${s}`, headers: h })
    }
    pid = pid === 4242 ? 4243 : 4242
    if (pending >= WINDOW) await new Promise<void>((r) => (wake = r))
    else if (seq % 64 === 0) await new Promise((r) => setImmediate(r))
  }
  while (acked + failed < total) await sleep(1)
  const seconds = (performance.now() - t0) / 1000
  await nc.close()
  return { scenario: 'ebpf-nats', variant: 'baseline', generated: total, delivered: acked, dropped: failed, seconds, perSec: acked / seconds, ...selfUsage() }
}

async function freshStream(url: string): Promise<void> {
  const nc = await connect({ servers: url })
  const jsm = await jetstreamManager(nc)
  await jsm.streams.delete(STREAM).catch(() => false)
  await nc.close()
}

function inChild(args: string[]): Promise<Run> {
  return new Promise((resolve, reject) => {
    const c = track(fork(fileURLToPath(import.meta.url), args, { stdio: 'inherit' }))
    c.once('message', (m) => resolve(m as Run))
    c.once('exit', (code) => (code === 0 ? undefined : reject(new Error(`baseline ${args.join(' ')} exited with ${code}`))))
  })
}

// ---- main --------------------------------------------------------------------------------------

async function startNats(): Promise<{ url: string; stop: () => Promise<void> }> {
  const dir = mkdtempSync(join(tmpdir(), 'bench-agent-nats-'))
  const port = await freePort()
  const server = track(spawn('nats-server', ['-js', '-a', '127.0.0.1', '-p', String(port), '-sd', dir], { stdio: ['ignore', 'ignore', 'pipe'] }))
  let log = ''
  server.stderr?.on('data', (d: Buffer) => (log += d.toString()))
  const stop = async () => {
    if (server.exitCode === null && server.signalCode === null) {
      server.kill('SIGTERM')
      await once(server, 'exit')
    }
    rmSync(dir, { recursive: true, force: true })
  }
  const deadline = Date.now() + 30_000
  while (!/Server is ready/.test(log)) {
    if (Date.now() > deadline || server.exitCode !== null) {
      await stop()
      throw new Error(`nats-server did not start (is the Debian package nats-server installed?):\n${log}`)
    }
    await sleep(20)
  }
  return { url: `nats://127.0.0.1:${port}`, stop }
}

function describe(r: Run): string {
  const extra = [
    r.startupSeconds !== undefined ? `start-up ${r.startupSeconds.toFixed(2)} s` : '',
    r.bytesPerEvent !== undefined ? `${Math.round(r.bytesPerEvent)} B/event` : '',
  ].filter(Boolean)
  return `${r.scenario.padEnd(9)} ${r.variant.padEnd(8)} ${Math.round(r.perSec).toLocaleString('en').padStart(10)} events/s  ${r.seconds.toFixed(2)} s  generated ${r.generated} = delivered ${r.delivered} + dropped ${r.dropped}${closed(r) ? '' : ' (NOT CLOSED)'}  peak RSS ${Math.round(r.peakRssMB)} MB  CPU ${((r.cpuSeconds / Math.max(1, r.delivered)) * 1e6).toFixed(2)} s/M events${extra.length ? `  ${extra.join(', ')}` : ''}`
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      runs: { type: 'string', default: '3' },
      synthetic: { type: 'string', default: '10000000' },
      ebpf: { type: 'string', default: '5000000' },
      nats: { type: 'string', default: '2000000' },
      only: { type: 'string' },
      child: { type: 'string' },
      url: { type: 'string' },
      events: { type: 'string' },
      out: { type: 'string' },
      // The agent's Node.js flags; default: the CLI's shebang flags (what `tapio-agent` runs with).
      'node-flags': { type: 'string' },
    },
  })
  if (values.child) {
    const events = Number(values.events)
    const r = values.child === 'synthetic' ? await syntheticBare(events, values.out as string) : await natsBare(values.url as string, events)
    process.send?.(r)
    process.exit(0)
  }
  if (!existsSync(cli)) throw new Error(`${cli} missing: run npm run build first`)
  execFileSync('bash', [join(root, 'bench', 'ebpf', 'build.sh')], { stdio: 'inherit' })
  const runs = Number(values.runs)
  const nSynthetic = Number(values.synthetic)
  const nEbpf = Number(values.ebpf)
  const nNats = Number(values.nats)
  agentFlags = values['node-flags'] !== undefined ? values['node-flags'].split(/\s+/).filter(Boolean) : agentNodeFlags(cli)
  const scenarios = ['synthetic', 'ebpf-file', 'ebpf-nats']
  const only = new Set((values.only ?? scenarios.join(',')).split(','))
  const unknown = [...only].filter((s) => !scenarios.includes(s))
  if (unknown.length > 0) throw new Error(`--only: unknown scenario ${unknown.join(', ')} (known: ${scenarios.join(', ')})`)
  const results: Run[] = []
  const record = (r: Run) => {
    results.push(r)
    console.log(describe(r))
  }
  const nats = only.has('ebpf-nats') ? await startNats() : undefined
  const tmp = mkdtempSync(join(tmpdir(), 'bench-agent-bare-'))
  try {
    for (let i = 0; i < runs; i++) {
      // Alternate which variant goes first: a shared machine's load drifts.
      const agentFirst = i % 2 === 0
      const pair = async (agent: () => Promise<Run>, base: () => Promise<Run>) => {
        for (const f of agentFirst ? [agent, base] : [base, agent]) record(await f())
      }
      if (only.has('synthetic'))
        await pair(
          () => syntheticAgent(nSynthetic),
          async () => {
            const out = join(tmp, 'bare.ndjson')
            try {
              return await inChild(['--child', 'synthetic', '--events', String(nSynthetic), '--out', out])
            } finally {
              rmSync(out, { force: true })
            }
          },
        )
      if (only.has('ebpf-file')) await pair(() => ebpfAgent(nEbpf, 'file', ''), () => ebpfCText(nEbpf))
      if (nats)
        await pair(
          async () => {
            await freshStream(nats.url)
            return ebpfAgent(nNats, 'nats', nats.url)
          },
          async () => {
            await freshStream(nats.url)
            return inChild(['--child', 'nats', '--url', nats.url, '--events', String(nNats)])
          },
        )
    }
  } finally {
    rmSync(tmp, { recursive: true, force: true })
    for (const c of live) c.kill('SIGKILL')
    await nats?.stop()
  }
  const pick = (scenario: Run['scenario'], variant: Run['variant']) => results.filter((r) => r.scenario === scenario && r.variant === variant)
  const med = (scenario: Run['scenario'], variant: Run['variant'], f: (r: Run) => number) => median(pick(scenario, variant).map(f))
  const perSec = (s: Run['scenario'], v: Run['variant']) => Math.round(med(s, v, (r) => r.perSec))
  const ratio = (s: Run['scenario']) => {
    const b = perSec(s, 'baseline')
    return b > 0 ? Number((perSec(s, 'agent') / b).toFixed(3)) : 0
  }
  const resources = (s: Run['scenario'], v: Run['variant']) => ({
    peakRssMB: Math.round(med(s, v, (r) => r.peakRssMB)),
    cpuSecondsPerMillion: Number(med(s, v, (r) => (r.cpuSeconds / Math.max(1, r.delivered)) * 1e6).toFixed(2)),
  })
  const summary = {
    bench: 'agent',
    runs,
    agentNodeFlags: agentFlags,
    events: { synthetic: nSynthetic, ebpf: nEbpf, nats: nNats },
    syntheticFilePerSec: perSec('synthetic', 'agent'),
    syntheticBarePerSec: perSec('synthetic', 'baseline'),
    syntheticRatio: ratio('synthetic'),
    syntheticStartupSeconds: Number(med('synthetic', 'agent', (r) => r.startupSeconds ?? 0).toFixed(2)),
    ebpfFilePerSec: perSec('ebpf-file', 'agent'),
    ebpfCTextPerSec: perSec('ebpf-file', 'baseline'),
    ebpfFileRatio: ratio('ebpf-file'),
    ebpfNatsPerSec: perSec('ebpf-nats', 'agent'),
    natsBarePerSec: perSec('ebpf-nats', 'baseline'),
    ebpfNatsRatio: ratio('ebpf-nats'),
    resources: {
      syntheticFile: resources('synthetic', 'agent'),
      syntheticBare: resources('synthetic', 'baseline'),
      ebpfFile: resources('ebpf-file', 'agent'),
      ebpfCText: resources('ebpf-file', 'baseline'),
      ebpfNats: resources('ebpf-nats', 'agent'),
      natsBare: resources('ebpf-nats', 'baseline'),
    },
    accountingClosed: results.length > 0 && results.every(closed),
    generated: results.reduce((n, r) => n + r.generated, 0),
    delivered: results.reduce((n, r) => n + r.delivered, 0),
    dropped: results.reduce((n, r) => n + r.dropped, 0),
  }
  console.log(JSON.stringify(summary))
}

try {
  await main()
} catch (e) {
  for (const c of live) c.kill('SIGKILL')
  throw e
}
