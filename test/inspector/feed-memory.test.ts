import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { get } from 'node:http'
import { connect, type Socket } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import { AgentProcess, ROOT } from '../agent/support.js'
import { sleep, waitFor } from '../support/wait.js'
import { freePort } from '../outputs/nats/nats-server.js'

/**
 * Issue 13 item 6: 30 clients that never read `/api/inspect/stream` grew the agent's heap from 63
 * to 175 MB in 40 s. Here a real agent process feeds the inspector a heavy stream (six collectors
 * failing and restarting in a loop: thousands of transitions a second), 30 never-reading clients
 * hold it, and the agent's heap (after a full GC, sampled inside the process) and RSS stay flat:
 * the cap turns 14 of them away and the other 16 are dropped once they hold their bound.
 */

const ARTIFACTS = join(ROOT, 'test-artifacts', 'inspector')
const CLIENTS = 30
const CAP = 16 // DEFAULT_SSE_LIMITS.maxClients

function config(dir: string, port: number): string {
  const crashing = Array.from(
    { length: 6 },
    (_, i) => `
  crash${i}:
    kind: synthetic
    rate: 1000
    batchSize: 10
    failAfter: 10
    policy: { maxRestarts: 100000000, withinMs: 1000, backoff: { initialMs: 1, maxMs: 1, factor: 1, jitter: 0 } }`,
  ).join('')
  return `
collectors:
  steady: { kind: synthetic, rate: 2000, batchSize: 50 }${crashing}
outputs:
  file: { path: ${JSON.stringify(join(dir, 'events.ndjson'))}, maxBytes: 1000000, maxFiles: 1 }
http: { host: 127.0.0.1, port: ${port} }
log: { level: error }
`
}

interface Sample {
  t: number
  heapUsed: number
  rss: number
}

const MB = 1024 * 1024

describe('inspector feed memory under never-reading clients', () => {
  const sockets: Socket[] = []
  let agent: AgentProcess | undefined
  let dir = ''

  afterAll(async () => {
    for (const s of sockets) s.destroy()
    await agent?.stop()
    if (dir) rmSync(dir, { recursive: true, force: true })
  })

  it(`holds ${CLIENTS} never-reading clients with a flat heap and RSS, each counted`, { timeout: 240_000 }, async () => {
    dir = mkdtempSync(join(tmpdir(), 'tapio-feed-memory-'))
    const probeFile = join(dir, 'heap.ndjson')
    // Errors only on stderr (the crash loop would write thousands of lines a second), so the
    // address is not logged: the test picks the port.
    const port = await freePort()
    writeFileSync(join(dir, 'agent.yaml'), config(dir, port))
    agent = new AgentProcess(['--config', join(dir, 'agent.yaml')], { HEAP_PROBE_FILE: probeFile }, [], ['--expose-gc', '--import', join(ROOT, 'test', 'support', 'heap-probe.mjs')])
    const url = new URL(`http://127.0.0.1:${port}`)
    await waitFor(() => agent?.exitCode !== undefined || existsSync(probeFile), 'the agent to start', 30_000)
    for (let ok = false; !ok; ) {
      if (agent.exitCode !== undefined) throw new Error(`agent exited: ${agent.stderr}`)
      ok = await fetch(`${url.origin}/healthz`).then((r) => r.ok, () => false)
      if (!ok) await sleep(200)
    }
    const samples = (): Sample[] =>
      readFileSync(probeFile, 'utf8')
        .split('\n')
        .filter(Boolean)
        .map((l) => JSON.parse(l) as Sample)
    const status = async () => (await (await fetch(`${url.origin}/api/status`)).json()) as { streams: { inspect: { clients: number; accepted: number; rejected: number; dropped: { slow: number; stuck: number } } } }

    // Warm up (collectors cycling, the file output rotating), then take the baseline.
    await sleep(5_000)
    const before = samples().slice(-4)
    const baseline = { heapUsed: Math.max(...before.map((s) => s.heapUsed)), rss: Math.max(...before.map((s) => s.rss)) }
    const holdStart = Date.now()

    for (let i = 0; i < CLIENTS; i++) {
      const s = connect(Number(url.port), url.hostname)
      sockets.push(s)
      s.on('error', () => {})
      s.once('connect', () => {
        s.write(`GET /api/inspect/stream HTTP/1.1\r\nHost: ${url.host}\r\n\r\n`)
        s.pause()
      })
    }

    // Every accepted client is eventually dropped: first the kernel's socket buffers fill (a few MB
    // each, outside the heap), then the agent's bound; the crash loop makes that take seconds.
    let last = await status()
    const deadline = Date.now() + 150_000
    while (last.streams.inspect.dropped.slow + last.streams.inspect.dropped.stuck < CAP) {
      if (Date.now() > deadline) throw new Error(`clients not dropped in time: ${JSON.stringify(last.streams.inspect)}`)
      await sleep(1_000)
      last = await status()
    }
    // Hold on a little longer with everything still connected on the client side.
    await sleep(10_000)
    last = await status()
    const during = samples().filter((s) => s.t >= holdStart)
    const peak = { heapUsed: Math.max(...during.map((s) => s.heapUsed)), rss: Math.max(...during.map((s) => s.rss)) }
    const figures = {
      clients: CLIENTS,
      heldSeconds: Math.round((Date.now() - holdStart) / 1000),
      heapBaselineMB: +(baseline.heapUsed / MB).toFixed(1),
      heapPeakMB: +(peak.heapUsed / MB).toFixed(1),
      rssBaselineMB: +(baseline.rss / MB).toFixed(1),
      rssPeakMB: +(peak.rss / MB).toFixed(1),
      inspect: last.streams.inspect,
    }
    mkdirSync(ARTIFACTS, { recursive: true })
    writeFileSync(join(ARTIFACTS, 'feed-memory.json'), `${JSON.stringify(figures, null, 2)}\n`)
    console.log(`inspector feed memory: ${JSON.stringify(figures)}`)

    expect(last.streams.inspect).toEqual({ clients: 0, accepted: CAP, rejected: CLIENTS - CAP, dropped: { slow: last.streams.inspect.dropped.slow, stuck: last.streams.inspect.dropped.stuck } })
    expect(last.streams.inspect.dropped.slow + last.streams.inspect.dropped.stuck).toBe(CAP)
    // The agent holds at most 256 KiB per client (16 x 256 KiB = 4 MiB); without bounds the
    // same run grew the heap by about 400 MB and the RSS by about 420 MB in 40 s.
    expect(peak.heapUsed - baseline.heapUsed).toBeLessThan(16 * MB)
    expect(peak.rss - baseline.rss).toBeLessThan(48 * MB)

    // A well-behaved client is served again once the stuck ones are gone.
    const hello = await new Promise<string>((resolve, reject) => {
      const req = get(`${url.origin}/api/inspect/stream`, (res) => {
        let text = ''
        res.on('data', (d: Buffer) => {
          text += d.toString()
          if (text.includes('event: hello')) {
            resolve(text)
            req.destroy()
          }
        })
      })
      req.on('error', reject)
    })
    expect(hello).toContain('event: hello')
  })
})
