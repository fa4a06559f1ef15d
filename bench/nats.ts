/**
 * NATS JetStream output benchmark: events per second acknowledged by a local JetStream stream
 * (file storage, one nats-server -js on loopback), from
 *   - `agent`: the real Agent (CollectorManager, synthetic collectors, merge buffer, pump) with the
 *     NATS output, counting until every event is acknowledged;
 *   - `bare`: a bare NATS client loop publishing the same messages (same NDJSON packing, same
 *     Nats-Msg-Id headers, same window of unacknowledged events, acks on one wildcard inbox) —
 *     the baseline of what the client and server can do on this machine.
 * Both run with packing (maxEventsPerMessage 100, the default) and with one event per message.
 *   - `agent-tls`: the same agent run against a second nats-server that requires TLS (certificates
 *     made with openssl for the run; the client verifies the server), packed: the TLS cost, as the
 *     ratio to the plain `agent` row of the same run.
 * Last, `reader`: `consumeEvents` reading what one agent run published (validated, acknowledged).
 * Each run is its own process and its own fresh stream; variants alternate; medians reported.
 *
 *   npm run bench:nats [-- --runs 5 --events 1000000]
 *
 * The last output line is one JSON object.
 */
import { type ChildProcess, fork, spawn } from 'node:child_process'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { parseArgs } from 'node:util'
import { jetstreamManager } from '@nats-io/jetstream'
import { connect, createInbox, headers } from '@nats-io/transport-node'
import { Agent } from '../src/agent/agent.js'
import { resolveConfig } from '../src/agent/config.js'
import { createLogger } from '../src/agent/logger.js'
import { builtinKinds, kindMap, validators } from '../src/agent/registry.js'
import { nowNs } from '../src/events/time.js'
import { nextEventId } from '../src/events/id.js'
import { NATS_DEFAULTS } from '../src/outputs/nats/config.js'
import type { NatsOutputStatistics } from '../src/outputs/nats/output.js'
import { consumeEvents } from '../src/outputs/nats/consumer.js'
import { connectOptions } from '../src/outputs/nats/connection.js'
import { makeCa, makeLeaf } from '../test/outputs/nats/certs.js'

const SERVER_NAME = 'nats.bench.test'

type Variant = 'agent' | 'agent-tls' | 'bare' | 'reader'
/** TLS client settings of the `agent-tls` variant. */
interface BenchTls {
  readonly caFile: string
  readonly serverName: string
}
interface RunResult {
  variant: Variant
  pack: number
  events: number
  seconds: number
  perSec: number
  duplicates: number
  failed: number
}

const STREAM = NATS_DEFAULTS.stream.name
const WINDOW = NATS_DEFAULTS.maxPendingEvents
const COLLECTORS = 2
const BATCH = 1000

async function freshStream(url: string, tls?: BenchTls): Promise<void> {
  const nc = await connect(connectOptions({ servers: [url], ...(tls ? { tls } : {}) }))
  const jsm = await jetstreamManager(nc)
  await jsm.streams.delete(STREAM).catch(() => false)
  await nc.close()
}

async function runAgent(url: string, total: number, pack: number, tls?: BenchTls): Promise<RunResult> {
  const kinds = builtinKinds()
  const per = total / COLLECTORS
  const collectors: Record<string, Record<string, unknown>> = {}
  for (let i = 0; i < COLLECTORS; i++) collectors[`gen${i}`] = { kind: 'synthetic', rate: 0, batchSize: BATCH, total: per, policy: { restart: 'temporary' } }
  const config = resolveConfig(
    { node: 'bench-node', collectors, outputs: { nats: { servers: [url], maxEventsPerMessage: pack, ...(tls ? { tls } : {}) } }, http: { enabled: false }, log: { level: 'warn' } },
    'bench',
    validators(kinds),
  )
  const agent = new Agent(config, { kinds: kindMap(kinds), logger: createLogger('warn') })
  const stats = () => agent.outputsHealth()[0]?.health.details as NatsOutputStatistics | undefined
  const t0 = performance.now()
  await agent.start()
  await new Promise<void>((resolve) => {
    const t = setInterval(() => {
      const s = stats()
      if (s && s.ackedEvents + s.failedEvents.total >= total) {
        clearInterval(t)
        resolve()
      }
    }, 5)
  })
  const seconds = (performance.now() - t0) / 1000
  const s = stats()
  await agent.stop()
  return { variant: tls ? 'agent-tls' : 'agent', pack, events: s?.ackedEvents ?? 0, seconds, perSec: (s?.ackedEvents ?? 0) / seconds, duplicates: s?.duplicateEvents ?? 0, failed: s?.failedEvents.total ?? 0 }
}

/** consumeEvents (durable, validated, acknowledged) over what one agent run published. */
async function runReader(url: string, total: number): Promise<RunResult> {
  await runAgent(url, total, 100)
  const ac = new AbortController()
  const reader = consumeEvents({ servers: [url], durable: 'bench-reader', signal: ac.signal })
  const t0 = performance.now()
  let n = 0
  let acks: Promise<void>[] = []
  for await (const c of reader) {
    acks.push(c.ack())
    if (acks.length >= 1000) {
      await Promise.all(acks)
      acks = []
    }
    if (++n >= total) ac.abort()
  }
  await Promise.all(acks)
  const seconds = (performance.now() - t0) / 1000
  return { variant: 'reader', pack: 100, events: n, seconds, perSec: n / seconds, duplicates: reader.statistics().duplicateEvents, failed: reader.statistics().invalidEvents }
}

/** The same wire traffic without the agent: make events, pack, publish, keep WINDOW events unacknowledged. */
async function runBare(url: string, total: number, pack: number): Promise<RunResult> {
  const t0 = performance.now()
  const nc = await connect({ servers: url })
  const jsm = await jetstreamManager(nc)
  await jsm.streams.add({ name: STREAM, subjects: ['tapio.events.>'], duplicate_window: NATS_DEFAULTS.stream.duplicateWindowMs * 1e6 })
  const inbox = createInbox()
  const inFlight = new Map<number, number>()
  let pending = 0
  let acked = 0
  let duplicates = 0
  let wake: (() => void) | undefined
  const decoder = new TextDecoder()
  nc.subscribe(`${inbox}.*`, {
    callback: (_err, m) => {
      const seq = Number(m.subject.slice(m.subject.lastIndexOf('.') + 1))
      const n = inFlight.get(seq) ?? 0
      inFlight.delete(seq)
      const reply = JSON.parse(decoder.decode(m.data)) as { duplicate?: boolean; error?: unknown }
      if (reply.error) throw new Error(`bare publish failed: ${JSON.stringify(reply.error)}`)
      if (reply.duplicate) duplicates += n
      pending -= n
      acked += n
      if (wake && pending < WINDOW) {
        const w = wake
        wake = undefined
        w()
      }
    },
  })
  const subject = 'tapio.events.bench-node.gen0.synthetic.tick'
  let seq = 0
  let made = 0
  while (made < total) {
    const ts = nowNs()
    const batch = []
    for (let i = 0; i < BATCH && made < total; i++, made++) {
      batch.push({ type: 'synthetic.tick', severity: 'info', timestamp: ts, data: { seq: made, generation: 1 }, id: nextEventId(), source: 'gen0' })
    }
    for (let i = 0; i < batch.length; i += pack) {
      const part = batch.slice(i, i + pack)
      let text = ''
      for (const e of part) text += `${JSON.stringify(e)}\n`
      const h = headers()
      const first = part[0]?.id ?? ''
      h.set('Nats-Msg-Id', part.length === 1 ? first : `${first}..${part[part.length - 1]?.id ?? ''}`)
      h.set('Tapio-Node', 'bench-node')
      const s = ++seq
      inFlight.set(s, part.length)
      pending += part.length
      nc.publish(subject, Buffer.from(text), { reply: `${inbox}.${s}`, headers: h })
    }
    if (pending >= WINDOW) await new Promise<void>((r) => (wake = r))
    else if (seq % 64 === 0) await new Promise((r) => setImmediate(r))
  }
  while (acked < total) await new Promise((r) => setTimeout(r, 1))
  const seconds = (performance.now() - t0) / 1000
  await nc.close()
  return { variant: 'bare', pack, events: acked, seconds, perSec: acked / seconds, duplicates, failed: 0 }
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b)
  const m = Math.floor(s.length / 2)
  return s.length % 2 ? (s[m] as number) : ((s[m - 1] as number) + (s[m] as number)) / 2
}

async function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const s = createServer()
    s.listen(0, '127.0.0.1', () => {
      const a = s.address()
      s.close(() => resolve(typeof a === 'object' && a ? a.port : 0))
    })
  })
}

function child(variant: Variant, url: string, events: number, pack: number, ca?: string): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const c: ChildProcess = fork(fileURLToPath(import.meta.url), ['--child', variant, '--url', url, '--events', String(events), '--pack', String(pack), ...(ca ? ['--ca', ca] : [])], { stdio: 'inherit' })
    c.once('message', (m) => resolve(m as RunResult))
    c.once('exit', (code) => (code === 0 ? undefined : reject(new Error(`${variant} run exited with ${code}`))))
  })
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      runs: { type: 'string', default: '5' },
      events: { type: 'string', default: '1000000' },
      'events-unpacked': { type: 'string', default: '200000' },
      'events-reader': { type: 'string', default: '500000' },
      child: { type: 'string' },
      url: { type: 'string' },
      pack: { type: 'string' },
      ca: { type: 'string' },
    },
  })
  if (values.child) {
    const variant = values.child as Variant
    const url = values.url as string
    const events = Number(values.events)
    const pack = Number(values.pack)
    const tls = values.ca ? { caFile: values.ca, serverName: SERVER_NAME } : undefined
    await freshStream(url, tls)
    const r = variant === 'agent' || variant === 'agent-tls' ? await runAgent(url, events, pack, tls) : variant === 'bare' ? await runBare(url, events, pack) : await runReader(url, events)
    process.send?.(r)
    process.exit(0)
  }
  const dir = mkdtempSync(join(tmpdir(), 'bench-nats-'))
  const port = await freePort()
  const tlsPort = await freePort()
  const ca = makeCa(dir, 'bench-ca')
  const cert = makeLeaf(dir, 'bench-server', ca, { san: [`DNS:${SERVER_NAME}`] })
  const tlsConf = join(dir, 'tls.conf')
  writeFileSync(tlsConf, `listen: 127.0.0.1:${tlsPort}\njetstream { store_dir: "${join(dir, 'tls-js')}" }\ntls { cert_file: "${cert.cert}", key_file: "${cert.key}" }\n`)
  const servers = [
    spawn('nats-server', ['-js', '-a', '127.0.0.1', '-p', String(port), '-sd', join(dir, 'plain-js')], { stdio: ['ignore', 'ignore', 'pipe'] }),
    spawn('nats-server', ['-c', tlsConf], { stdio: ['ignore', 'ignore', 'pipe'] }),
  ]
  try {
    for (const server of servers) {
      let log = ''
      server.stderr?.on('data', (d: Buffer) => (log += d.toString()))
      const deadline = Date.now() + 30_000
      while (!/Server is ready/.test(log)) {
        if (Date.now() > deadline || server.exitCode !== null) throw new Error(`nats-server did not start (is the Debian package nats-server installed?):\n${log}`)
        await new Promise((r) => setTimeout(r, 20))
      }
    }
    const url = `nats://127.0.0.1:${port}`
    const tlsUrl = `tls://127.0.0.1:${tlsPort}`
    const runs = Number(values.runs)
    const results: RunResult[] = []
    for (const [pack, events] of [
      [100, Number(values.events)],
      [1, Number(values['events-unpacked'])],
    ] as const) {
      for (let i = 0; i < runs; i++) {
        const order: Variant[] = pack === 100 ? ['agent', 'agent-tls', 'bare'] : ['agent', 'bare']
        for (const v of i % 2 === 0 ? order : [...order].reverse()) {
          const r = v === 'agent-tls' ? await child(v, tlsUrl, events, pack, ca.cert) : await child(v, url, events, pack)
          results.push(r)
          console.log(`${v.padEnd(5)} pack=${String(pack).padEnd(3)} run ${i + 1}: ${Math.round(r.perSec).toLocaleString('en')} events/s acknowledged (${r.events} in ${r.seconds.toFixed(2)} s, duplicates ${r.duplicates}, failed ${r.failed})`)
        }
      }
    }
    for (let i = 0; i < Math.min(3, runs); i++) {
      const r = await child('reader', url, Number(values['events-reader']), 100)
      results.push(r)
      console.log(`reader (consumeEvents) run ${i + 1}: ${Math.round(r.perSec).toLocaleString('en')} events/s read, validated and acknowledged (${r.events} in ${r.seconds.toFixed(2)} s)`)
    }
    const med = (v: Variant, pack: number) => Math.round(median(results.filter((r) => r.variant === v && r.pack === pack).map((r) => r.perSec)))
    const summary = {
      agentAckedPerSec: med('agent', 100),
      bareClientPerSec: med('bare', 100),
      ratio: Number((med('agent', 100) / med('bare', 100)).toFixed(2)),
      eventsPerMessage: 100,
      tls: { agentAckedPerSec: med('agent-tls', 100), plainAgentAckedPerSec: med('agent', 100), ratio: Number((med('agent-tls', 100) / med('agent', 100)).toFixed(2)) },
      unpacked: { agentAckedPerSec: med('agent', 1), bareClientPerSec: med('bare', 1), ratio: Number((med('agent', 1) / med('bare', 1)).toFixed(2)) },
      readerPerSec: med('reader', 100),
      runs,
      events: Number(values.events),
      storage: 'file',
      window: WINDOW,
      failed: results.filter((r) => r.variant !== 'reader').reduce((n, r) => n + r.failed, 0),
      duplicates: results.reduce((n, r) => n + r.duplicates, 0),
    }
    console.log(JSON.stringify(summary))
  } finally {
    for (const server of servers) server.kill('SIGKILL')
    rmSync(dir, { recursive: true, force: true })
  }
}

await main()
