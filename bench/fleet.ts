/**
 * A simulated fleet: N real `tapio-agent` processes, each in its own network namespace as a node
 * (synthetic + cni collectors, distinct node names), publishing over veth pairs to a 3-node
 * JetStream cluster (real nats-server, stream replicas 3); K readers share one durable consumer
 * (`consumeEvents`). In each fleet run the stream leader is SIGKILLed mid-run, and every event is
 * counted by id across readers: lost = synthetic events a node emitted that no reader saw,
 * duplicated = an id handed to readers more than once (JetStream is at-least-once: an ack lost with
 * the killed server is redelivered, flagged, to another reader; `unflaggedDuplicates` counts copies
 * without that flag); an audit consumer then reads the whole stream (remembering no ids) to check
 * that the stream itself holds each event once.
 *
 * Baseline in the same run: one bare NATS client in one node namespace publishing the same
 * packed bytes (100 events per message, Nats-Msg-Id headers, a window of unacknowledged
 * messages) as fast as the cluster acknowledges them into a replicas-3 stream.
 *
 * Topology (all addresses in 10.213.0.0/16 exist only in namespaces made here):
 *   netns <tag>-hub: bridge br0 10.213.0.1, the 3 nats-servers, the readers (this process, re-run
 *     inside it), veth v<i> enslaved to br0;
 *   netns <tag>-n<i>: eth0 10.213.1.<i> (peer of v<i>) and one agent.
 * The outer process only builds and removes namespaces; everything else runs inside the hub.
 * Processes, namespaces and veths are removed on success, failure, SIGINT/SIGTERM and timeout.
 *
 *   npm run bench:fleet [-- --nodes 4,8,16 --readers 2 --rate 150 --seconds 30 --timeout-s 900]
 *
 * The last output line is one JSON object.
 */
import { type ChildProcess, spawn, spawnSync } from 'node:child_process'
import { mkdtempSync, mkdirSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { parseArgs } from 'node:util'
import { jetstreamManager } from '@nats-io/jetstream'
import { connect, createInbox, headers } from '@nats-io/transport-node'
import { consumeEvents, type EventConsumer } from '../src/outputs/nats/consumer.js'
import { NATS_DEFAULTS } from '../src/outputs/nats/config.js'
import { nextEventId } from '../src/events/id.js'
import { nowNs } from '../src/events/time.js'

const SELF = fileURLToPath(import.meta.url)
const ROOT = fileURLToPath(new URL('../..', import.meta.url))
const CLI = join(ROOT, 'dist/src/agent/cli.js')
const HUB_IP = '10.213.0.1'
const CLIENT_PORTS = [4222, 4223, 4224] as const
const ROUTE_PORTS = [6222, 6223, 6224] as const
const STREAM = NATS_DEFAULTS.stream.name
const BASELINE_STREAM = 'FLEET_BASELINE'

const args = parseArgs({
  options: {
    nodes: { type: 'string', default: '4,8,16' },
    readers: { type: 'string', default: '2' },
    rate: { type: 'string', default: '150' },
    seconds: { type: 'string', default: '30' },
    'baseline-seconds': { type: 'string', default: '5' },
    'timeout-s': { type: 'string', default: '900' },
    'no-kill': { type: 'boolean', default: false },
    verbose: { type: 'boolean', default: false },
    inside: { type: 'string' },
    dir: { type: 'string' },
    bare: { type: 'boolean', default: false },
  },
}).values

function positiveInt(name: string, v: string | undefined): number {
  const n = Number(v)
  if (!Number.isInteger(n) || n <= 0) throw new Error(`bench:fleet: --${name} must be a positive integer, got ${JSON.stringify(v)}`)
  return n
}

const NODE_COUNTS = (args.nodes ?? '').split(',').map((s) => positiveInt('nodes', s))
const MAX_NODES = Math.max(...NODE_COUNTS)
if (MAX_NODES > 250) throw new Error('bench:fleet: at most 250 nodes (one /24 of node addresses)')
const READERS = positiveInt('readers', args.readers)
const RATE = positiveInt('rate', args.rate)
const SECONDS = positiveInt('seconds', args.seconds)
const BASELINE_SECONDS = positiveInt('baseline-seconds', args['baseline-seconds'])
const TIMEOUT_S = positiveInt('timeout-s', args['timeout-s'])
const KILL = !args['no-kill']

function ip(...a: string[]): void {
  const r = spawnSync('ip', a, { encoding: 'utf8' })
  if (r.status !== 0) throw new Error(`ip ${a.join(' ')} failed: ${r.stderr || r.error?.message}`)
}

// ---------------------------------------------------------------------------------------------
// Outer: namespaces and veths, then this file again inside the hub namespace.

interface Net {
  readonly hub: string
  readonly nodes: string[]
}

function buildNet(tag: string, n: number, net: Net): void {
  ip('netns', 'add', net.hub)
  ip('-n', net.hub, 'link', 'set', 'lo', 'up')
  ip('-n', net.hub, 'link', 'add', 'br0', 'type', 'bridge')
  ip('-n', net.hub, 'addr', 'add', `${HUB_IP}/16`, 'dev', 'br0')
  ip('-n', net.hub, 'link', 'set', 'br0', 'up')
  for (let i = 1; i <= n; i++) {
    const ns = `${tag}-n${i}`
    ip('netns', 'add', ns)
    net.nodes.push(ns)
    ip('-n', ns, 'link', 'set', 'lo', 'up')
    // Created inside the hub with its peer placed straight into the node: never in the root namespace.
    ip('-n', net.hub, 'link', 'add', `v${i}`, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', ns)
    ip('-n', net.hub, 'link', 'set', `v${i}`, 'master', 'br0', 'up')
    ip('-n', ns, 'addr', 'add', `10.213.1.${i}/16`, 'dev', 'eth0')
    ip('-n', ns, 'link', 'set', 'eth0', 'up')
  }
}

/** Kill whatever still runs in our namespaces (all started by this bench), then delete them. */
function teardownNet(net: Net): void {
  for (const ns of [...net.nodes, net.hub]) {
    const pids = spawnSync('ip', ['netns', 'pids', ns], { encoding: 'utf8' }).stdout ?? ''
    for (const p of pids.split('\n').filter(Boolean)) {
      try {
        process.kill(Number(p), 'SIGKILL')
      } catch {
        // already gone
      }
    }
  }
  for (const ns of [...net.nodes, net.hub]) spawnSync('ip', ['netns', 'del', ns])
}

async function outer(): Promise<void> {
  const tag = `tf${process.pid % 100000}`
  const net: Net = { hub: `${tag}-hub`, nodes: [] }
  let inner: ChildProcess | undefined
  let cleaned = false
  const dir = mkdtempSync(join(tmpdir(), 'bench-fleet-'))
  const cleanup = () => {
    if (cleaned) return
    cleaned = true
    if (inner && inner.exitCode === null) inner.kill('SIGKILL')
    teardownNet(net)
    rmSync(dir, { recursive: true, force: true })
  }
  const onSignal = (sig: NodeJS.Signals) => {
    console.error(`bench:fleet: ${sig}: stopping and removing namespaces`)
    cleanup()
    process.exit(130)
  }
  process.once('SIGINT', onSignal)
  process.once('SIGTERM', onSignal)
  process.once('exit', cleanup)
  try {
    buildNet(tag, MAX_NODES, net)
    const passOn = process.argv.slice(2)
    inner = spawn('ip', ['netns', 'exec', net.hub, process.execPath, SELF, ...passOn, '--inside', net.nodes.join(','), '--dir', dir], { stdio: 'inherit' })
    const child = inner
    const timer = setTimeout(() => {
      console.error(`bench:fleet: timed out after ${TIMEOUT_S} s`)
      child.kill('SIGKILL')
    }, TIMEOUT_S * 1000)
    const code = await new Promise<number | null>((resolve) => child.once('exit', (c) => resolve(c)))
    clearTimeout(timer)
    if (code !== 0) process.exitCode = 1
  } finally {
    cleanup()
  }
}

// ---------------------------------------------------------------------------------------------
// Inside the hub namespace: servers, agents (in node namespaces), readers, counting.

class Server {
  private child: ChildProcess | undefined
  private log = ''
  constructor(
    readonly name: string,
    private readonly conf: string,
  ) {}
  get running(): boolean {
    return this.child !== undefined
  }
  async start(): Promise<void> {
    this.log = ''
    const c = spawn('nats-server', ['-c', this.conf], { stdio: ['ignore', 'pipe', 'pipe'] })
    this.child = c
    c.stdout?.on('data', (d: Buffer) => (this.log += d.toString()))
    c.stderr?.on('data', (d: Buffer) => (this.log += d.toString()))
    const deadline = Date.now() + 30_000
    while (!/Server is ready/.test(this.log)) {
      if (c.exitCode !== null || Date.now() > deadline) throw new Error(`nats-server ${this.name} did not start (Debian package nats-server):\n${this.log}`)
      await sleep(20)
    }
  }
  async kill(): Promise<void> {
    const c = this.child
    if (!c) return
    this.child = undefined
    if (c.exitCode === null) {
      const gone = new Promise((r) => c.once('exit', r))
      c.kill('SIGKILL')
      await gone
    }
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms))
}

function quantile(sorted: readonly number[], q: number): number {
  if (sorted.length === 0) return Number.NaN
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] as number
}

const round = (x: number, d = 1) => Number(x.toFixed(d))

function startCluster(dir: string): Server[] {
  return CLIENT_PORTS.map((port, i) => {
    const name = `n${i + 1}`
    const conf = join(dir, `${name}.conf`)
    writeFileSync(
      conf,
      [
        `server_name: ${name}`,
        `listen: ${HUB_IP}:${port}`,
        `jetstream { store_dir: "${join(dir, name)}" }`,
        `cluster { name: fleet, listen: ${HUB_IP}:${ROUTE_PORTS[i]}, routes: [${ROUTE_PORTS.filter((_, j) => j !== i)
          .map((p) => `nats-route://${HUB_IP}:${p}`)
          .join(', ')}] }`,
      ].join('\n') + '\n',
    )
    return new Server(name, conf)
  })
}

const URLS = CLIENT_PORTS.map((p) => `nats://${HUB_IP}:${p}`)

/** Until JetStream has a meta leader and can create a replicas-3 stream. */
async function clusterReady(): Promise<void> {
  const deadline = Date.now() + 60_000
  for (;;) {
    try {
      const nc = await connect({ servers: URLS, timeout: 2000 })
      try {
        const jsm = await jetstreamManager(nc)
        await jsm.streams.add({ name: 'FLEET_PROBE', subjects: ['fleet.probe'], num_replicas: 3 })
        await jsm.streams.delete('FLEET_PROBE')
        return
      } finally {
        await nc.close()
      }
    } catch (e) {
      if (Date.now() > deadline) throw new Error(`JetStream cluster not ready: ${String(e)}`)
      await sleep(500)
    }
  }
}

async function dropStream(name: string): Promise<void> {
  const nc = await connect({ servers: URLS })
  try {
    const jsm = await jetstreamManager(nc)
    await jsm.streams.delete(name).catch(() => false)
  } finally {
    await nc.close()
  }
}

async function streamLeader(): Promise<string | undefined> {
  const nc = await connect({ servers: URLS })
  try {
    const jsm = await jetstreamManager(nc)
    return (await jsm.streams.info(STREAM)).cluster?.leader
  } finally {
    await nc.close()
  }
}

interface Agent {
  readonly node: string
  readonly child: ChildProcess
  stderr: string
}

function startAgent(ns: string, node: string, dir: string, total: number): Agent {
  const nodeDir = join(dir, node)
  mkdirSync(join(nodeDir, 'net.d'), { recursive: true })
  mkdirSync(join(nodeDir, 'results'), { recursive: true })
  const config = join(nodeDir, 'agent.yaml')
  const batch = Math.max(1, Math.round(RATE / 20))
  writeFileSync(
    config,
    `node: ${node}
collectors:
  synth: { kind: synthetic, rate: ${RATE}, batchSize: ${batch}, total: ${total}, policy: { restart: transient } }
  net: { kind: cni, netlink: { mode: required }, cniConfig: { dir: ${JSON.stringify(join(nodeDir, 'net.d'))} }, cniResults: { dir: ${JSON.stringify(join(nodeDir, 'results'))} }, netns: { enabled: false } }
outputs:
  nats: { servers: [${URLS.map((u) => JSON.stringify(u)).join(', ')}], ackTimeoutMs: 1000, retry: { initialMs: 50, maxMs: 500 }, stream: { replicas: 3 } }
http: { enabled: false }
log: { level: ${args.verbose ? 'info' : 'warn'} }
`,
  )
  const child = spawn('ip', ['netns', 'exec', ns, process.execPath, CLI, '--config', config], { cwd: ROOT, stdio: ['ignore', 'ignore', 'pipe'] })
  const a: Agent = { node, child, stderr: '' }
  child.stderr?.on('data', (d: Buffer) => (a.stderr += d.toString()))
  return a
}

async function stopAgent(a: Agent): Promise<void> {
  if (a.child.exitCode !== null || a.child.signalCode !== null) return
  const gone = new Promise((r) => a.child.once('exit', r))
  a.child.kill('SIGKILL')
  await gone
}

interface Seen {
  count: number
  node: string
  synthetic: boolean
}

interface FleetRun {
  nodes: number
  readers: number
  ratePerNode: number
  offeredPerSec: number
  ackedPerSec: number
  syntheticExpected: number
  syntheticSeen: number
  cniEvents: number
  lost: number
  duplicated: number
  /** Of `duplicated`: copies that arrived without the redelivered flag. */
  unflaggedDuplicates: number
  redeliveredSkipped: number
  auditEvents: number
  auditDuplicated: number
  streamMessages: number
  streamBytesPerEvent: number
  killed: string | null
  /** Events created until 1 s before the kill: the steady state. Per node, then median and max over nodes. */
  latencyMs: { p50Median: number; p50Max: number; p99Median: number; p99Max: number }
  /** Events created from 1 s before the kill on (in flight at the kill, or after it), all nodes: what a failover costs. */
  failoverLatencyMs: { p50: number; p99: number; max: number; events: number } | null
  measuredFromS: number
  perNode: { node: string; p50Ms: number; p99Ms: number; events: number }[]
}

function nowMs(): number {
  return performance.timeOrigin + performance.now()
}

async function fleetRun(nodes: readonly string[], n: number, servers: Server[], dir: string): Promise<FleetRun> {
  for (const s of servers) if (!s.running) await s.start()
  await clusterReady()
  await dropStream(STREAM)
  const total = RATE * SECONDS
  const seen = new Map<string, Seen>()
  const latencies = new Map<string, number[]>()
  const afterKill: number[] = []
  // A copy handed to a second reader that JetStream did not mark redelivered would be a real bug;
  // a redelivered copy is at-least-once delivery doing its job (an ack lost with the killed server).
  let unflaggedDuplicates = 0
  let killAt = Number.POSITIVE_INFINITY
  const runStart = nowMs()
  const ackTimes: number[] = []
  // Events created before every reader had attached wait for the readers, not for the cluster.
  let measureFromMs = Number.POSITIVE_INFINITY
  let synthSeen = 0
  const durable = `fleet-${n}`
  const readers: { ac: AbortController; consumer: EventConsumer; done: Promise<void> }[] = []
  const agents: Agent[] = []
  let killed: string | null = null
  try {
    for (let i = 0; i < n; i++) agents.push(startAgent(nodes[i] as string, `node-${i + 1}`, dir, total))
    await streamExists()
    for (let k = 0; k < READERS; k++) {
      const ac = new AbortController()
      const consumer = consumeEvents({ servers: URLS, durable, signal: ac.signal, ackWaitMs: 3000 })
      const done = (async () => {
        for await (const c of consumer) {
          await c.ack()
          const t = nowMs()
          ackTimes.push(t)
          const e = c.event
          const prev = seen.get(e.id)
          if (prev) {
            prev.count += 1
            if (!c.redelivered) unflaggedDuplicates += 1
            continue
          }
          const synthetic = e.source === 'synth'
          seen.set(e.id, { count: 1, node: c.node, synthetic })
          if (!synthetic) continue
          synthSeen += 1
          const created = Number(e.timestamp) / 1e6
          if (created < measureFromMs) continue
          if (created >= killAt - 1000) {
            afterKill.push(t - created)
            continue
          }
          let l = latencies.get(c.node)
          if (!l) latencies.set(c.node, (l = []))
          l.push(t - created)
        }
      })()
      readers.push({ ac, consumer, done })
    }
    measureFromMs = nowMs() + 1000
    const expected = n * total
    if (KILL) {
      const deadline = Date.now() + 120_000
      // Mid-run: half the events read and a few seconds of steady state measured first.
      while (synthSeen < expected / 2 || nowMs() < measureFromMs + 3000) {
        if (Date.now() > deadline) throw new Error(`N=${n}: half of the events never arrived (${synthSeen}/${expected})`)
        await sleep(50)
      }
      const leader = await streamLeader()
      const victim = servers.find((s) => s.name === leader) ?? (servers[0] as Server)
      killAt = nowMs()
      await victim.kill()
      killed = victim.name
      console.error(`N=${n}: killed stream leader ${victim.name} at ${synthSeen}/${expected} synthetic events`)
    }
    const deadline = Date.now() + (SECONDS + 120) * 1000
    while (synthSeen < expected && Date.now() < deadline) {
      const dead = agents.find((a) => a.child.exitCode !== null)
      if (dead) throw new Error(`agent ${dead.node} exited (${dead.child.exitCode}):\n${dead.stderr.slice(-2000)}`)
      await sleep(100)
    }
    // Let late redeliveries (ack wait 3 s) show up as duplicates if there are any.
    await sleep(4000)
  } finally {
    for (const r of readers) r.ac.abort()
    await Promise.all(readers.map((r) => r.done.catch((e: unknown) => console.error(`reader: ${String(e)}`))))
    await Promise.all(agents.map(stopAgent))
    if (args.verbose) for (const a of agents) console.error(`--- ${a.node}\n${a.stderr.slice(-3000)}`)
  }
  const audit = await auditStream()
  const perNode = [...latencies.entries()]
    .map(([node, l]) => {
      l.sort((a, b) => a - b)
      return { node, p50Ms: round(quantile(l, 0.5)), p99Ms: round(quantile(l, 0.99)), events: l.length }
    })
    .sort((a, b) => a.node.localeCompare(b.node, 'en', { numeric: true }))
  const p50s = perNode.map((p) => p.p50Ms).sort((a, b) => a - b)
  const p99s = perNode.map((p) => p.p99Ms).sort((a, b) => a - b)
  let duplicated = 0
  let cni = 0
  for (const s of seen.values()) {
    duplicated += s.count - 1
    if (!s.synthetic) cni += 1
  }
  return {
    nodes: n,
    readers: READERS,
    ratePerNode: RATE,
    offeredPerSec: n * RATE,
    ackedPerSec: steadyRate(ackTimes),
    syntheticExpected: n * total,
    syntheticSeen: synthSeen,
    cniEvents: cni,
    lost: n * total - synthSeen,
    duplicated,
    unflaggedDuplicates,
    redeliveredSkipped: readers.reduce((s, r) => s + r.consumer.statistics().duplicateEvents, 0),
    auditEvents: audit.events,
    auditDuplicated: audit.duplicated,
    streamMessages: audit.messages,
    streamBytesPerEvent: Math.round(audit.bytes / Math.max(1, audit.events)),
    killed,
    latencyMs: { p50Median: quantile(p50s, 0.5), p50Max: p50s.at(-1) ?? Number.NaN, p99Median: quantile(p99s, 0.5), p99Max: p99s.at(-1) ?? Number.NaN },
    failoverLatencyMs: KILL
      ? (() => {
          afterKill.sort((a, b) => a - b)
          return { p50: round(quantile(afterKill, 0.5)), p99: round(quantile(afterKill, 0.99)), max: round(afterKill.at(-1) ?? Number.NaN), events: afterKill.length }
        })()
      : null,
    measuredFromS: round((measureFromMs - runStart) / 1000),
    perNode,
  }
}

/** Until an agent has created the stream (readers attach then, as a deployment's would). */
async function streamExists(): Promise<void> {
  const nc = await connect({ servers: URLS })
  try {
    const jsm = await jetstreamManager(nc)
    const deadline = Date.now() + 120_000
    for (;;) {
      const ok = await jsm.streams.info(STREAM).then(
        () => true,
        () => false,
      )
      if (ok) return
      if (Date.now() > deadline) throw new Error('no agent created the stream within 120 s')
      await sleep(100)
    }
  } finally {
    await nc.close()
  }
}

/** Acked events per second between the 10th and 90th percentile of ack times (start-up and drain left out). */
function steadyRate(times: readonly number[]): number {
  if (times.length < 10) return Number.NaN
  const s = [...times].sort((a, b) => a - b)
  const lo = quantile(s, 0.1)
  const hi = quantile(s, 0.9)
  return Math.round((0.8 * s.length) / ((hi - lo) / 1000))
}

/** Read the whole stream with a fresh consumer that remembers no ids: what the stream holds. */
async function auditStream(): Promise<{ events: number; duplicated: number; messages: number; bytes: number }> {
  const nc = await connect({ servers: URLS })
  let target = 0
  let bytes = 0
  try {
    const jsm = await jetstreamManager(nc)
    const state = (await jsm.streams.info(STREAM)).state
    target = state.messages
    bytes = state.bytes
  } finally {
    await nc.close()
  }
  const ac = new AbortController()
  const consumer = consumeEvents({ servers: URLS, durable: `audit-${Date.now()}`, signal: ac.signal, rememberIds: 0 })
  const ids = new Map<string, number>()
  const timer = setTimeout(() => ac.abort(), 60_000)
  for await (const c of consumer) {
    ids.set(c.event.id, (ids.get(c.event.id) ?? 0) + 1)
    void c.ack()
    if (consumer.statistics().messages >= target) ac.abort()
  }
  clearTimeout(timer)
  let duplicated = 0
  for (const n of ids.values()) duplicated += n - 1
  return { events: ids.size, duplicated, messages: target, bytes }
}

interface Baseline {
  ackedPerSec: number
  messagesPerSec: number
  p50Ms: number
  p99Ms: number
}

/** In a node namespace: one bare client, packed synthetic-shaped events, acks awaited in a window. */
async function bare(): Promise<void> {
  const nc = await connect({ servers: URLS })
  const inbox = createInbox()
  const sentAt = new Map<number, number>()
  const lat: number[] = []
  const window = 64
  let pending = 0
  let acked = 0
  let wake: (() => void) | undefined
  nc.subscribe(`${inbox}.*`, {
    callback: (_e, m) => {
      const seq = Number(m.subject.slice(m.subject.lastIndexOf('.') + 1))
      const t = sentAt.get(seq)
      if (t !== undefined) lat.push(performance.now() - t)
      sentAt.delete(seq)
      const reply = JSON.parse(m.string()) as { error?: unknown }
      if (reply.error) throw new Error(`baseline publish failed: ${JSON.stringify(reply.error)}`)
      pending -= 1
      acked += 1
      if (wake && pending < window) {
        const w = wake
        wake = undefined
        w()
      }
    },
  })
  const subject = 'fleet.baseline.node-1.synth.synthetic.tick'
  const t0 = performance.now()
  let seq = 0
  while (performance.now() - t0 < BASELINE_SECONDS * 1000) {
    const ts = nowNs()
    let text = ''
    let first = ''
    let last = ''
    for (let i = 0; i < 100; i++) {
      const id = nextEventId()
      if (i === 0) first = id
      last = id
      text += `${JSON.stringify({ type: 'synthetic.tick', severity: 'info', timestamp: ts, data: { seq: seq * 100 + i, generation: 1 }, id, source: 'synth' })}\n`
    }
    const h = headers()
    h.set('Nats-Msg-Id', `${first}..${last}`)
    h.set('Tapio-Node', 'node-1')
    const s = ++seq
    sentAt.set(s, performance.now())
    pending += 1
    nc.publish(subject, Buffer.from(text), { reply: `${inbox}.${s}`, headers: h })
    if (pending >= window) await new Promise<void>((r) => (wake = r))
  }
  const stopAt = Date.now() + 30_000
  while (pending > 0 && Date.now() < stopAt) await sleep(5)
  const seconds = (performance.now() - t0) / 1000
  await nc.close()
  lat.sort((a, b) => a - b)
  const r: Baseline = { ackedPerSec: Math.round((acked * 100) / seconds), messagesPerSec: Math.round(acked / seconds), p50Ms: round(quantile(lat, 0.5), 2), p99Ms: round(quantile(lat, 0.99), 2) }
  console.log(JSON.stringify(r))
}

async function baseline(ns: string): Promise<Baseline> {
  await clusterReady()
  const nc = await connect({ servers: URLS })
  try {
    const jsm = await jetstreamManager(nc)
    await jsm.streams.delete(BASELINE_STREAM).catch(() => false)
    await jsm.streams.add({ name: BASELINE_STREAM, subjects: ['fleet.baseline.>'], num_replicas: 3, duplicate_window: NATS_DEFAULTS.stream.duplicateWindowMs * 1e6 })
  } finally {
    await nc.close()
  }
  const child = spawn('ip', ['netns', 'exec', ns, process.execPath, SELF, '--bare', '--baseline-seconds', String(BASELINE_SECONDS), '--nodes', '1'], { stdio: ['ignore', 'pipe', 'inherit'] })
  let out = ''
  child.stdout?.on('data', (d: Buffer) => (out += d.toString()))
  const code = await new Promise<number | null>((r) => child.once('exit', r))
  if (code !== 0) throw new Error(`baseline client exited with ${code}`)
  await dropStream(BASELINE_STREAM)
  return JSON.parse(out.trim().split('\n').at(-1) ?? '{}') as Baseline
}

async function inside(nodes: string[], dir: string): Promise<void> {
  const servers = startCluster(dir)
  try {
    for (const s of servers) await s.start()
    const base = await baseline(nodes[0] as string)
    console.error(`baseline (one bare client, packed 100/msg, R3): ${base.ackedPerSec} events/s, publish-to-ack p50 ${base.p50Ms} ms p99 ${base.p99Ms} ms`)
    const runs: FleetRun[] = []
    for (const n of NODE_COUNTS) {
      const r = await fleetRun(nodes, n, servers, dir)
      runs.push(r)
      console.error(
        `N=${String(n).padStart(2)}: ${r.ackedPerSec} events/s acked (offered ${r.offeredPerSec}), latency p50 med ${r.latencyMs.p50Median} ms / p99 med ${r.latencyMs.p99Median} max ${r.latencyMs.p99Max} ms, failover p50 ${r.failoverLatencyMs?.p50 ?? '-'} p99 ${r.failoverLatencyMs?.p99 ?? '-'} ms, lost ${r.lost}, duplicated ${r.duplicated} (unflagged ${r.unflaggedDuplicates}), audit ${r.auditEvents} events ${r.auditDuplicated} dup, killed ${r.killed ?? '-'}`,
      )
    }
    const biggest = runs.at(-1)
    console.log(
      JSON.stringify({
        bench: 'fleet',
        readers: READERS,
        ratePerNode: RATE,
        seconds: SECONDS,
        replicas: 3,
        killedMidRun: KILL,
        baseline: base,
        runs: runs.map(({ perNode: _p, ...r }) => r),
        perNode: Object.fromEntries(runs.map((r) => [r.nodes, r.perNode])),
        ratioLargestFleetToBaseline: biggest ? round(biggest.ackedPerSec / base.ackedPerSec, 3) : null,
        lost: runs.reduce((s, r) => s + r.lost, 0),
        duplicatedDeliveries: runs.reduce((s, r) => s + r.duplicated, 0),
        duplicatedInStream: runs.reduce((s, r) => s + r.auditDuplicated, 0),
        unflaggedDuplicates: runs.reduce((s, r) => s + r.unflaggedDuplicates, 0),
      }),
    )
  } finally {
    await Promise.all(servers.map((s) => s.kill()))
  }
}

async function main(): Promise<void> {
  if (args.bare) return bare()
  if (args.inside !== undefined) {
    const nodes = args.inside.split(',')
    // The outer process owns the namespaces; here only our own children need stopping on a signal.
    for (const sig of ['SIGINT', 'SIGTERM'] as const) process.once(sig, () => process.exit(130))
    if (args.dir === undefined) throw new Error('bench:fleet --inside needs --dir')
    return inside(nodes, args.dir)
  }
  if (process.getuid?.() !== 0) throw new Error('bench:fleet needs root (ip netns, veth)')
  return outer()
}

main().catch((e: unknown) => {
  console.error(e instanceof Error ? (e.stack ?? e.message) : String(e))
  process.exit(1)
})
