import { request } from 'node:http'
import { connect, type Socket } from 'node:net'
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import { sleep, waitFor } from '../support/wait.js'
import { AgentProcess } from './support.js'

const dir = mkdtempSync(join(tmpdir(), 'tapio-tail-bounds-'))
afterAll(() => rmSync(dir, { recursive: true, force: true }))

const STUCK = 300
const CAP = STUCK + 1

function rssMB(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))
  return Number(m?.[1] ?? 0) / 1024
}

interface Totals {
  totals: { delivered: number; tailDropped: number; tailRefused: number }
}

async function status(url: string): Promise<Totals> {
  const r = await fetch(`${url}/api/status`)
  return (await r.json()) as Totals
}

/** A client that sends the request, takes the response head, and never reads again. */
function stuckClient(url: URL): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const s = connect(Number(url.port), url.hostname)
    s.once('error', reject)
    s.once('connect', () => s.write(`GET /events HTTP/1.1\r\nHost: ${url.host}\r\n\r\n`))
    s.once('data', (d: Buffer) => {
      s.pause()
      if (!d.toString().startsWith('HTTP/1.1 200')) reject(new Error(`stuck client was answered ${d.toString().split('\r\n')[0]}`))
      else resolve(s)
    })
  })
}

describe('/events bounds (real agent process)', () => {
  it(`holds ${STUCK} never-reading clients at 20k events/s with bounded RSS, keeps a reading client fed, and refuses clients beyond the cap`, async () => {
    const out = join(dir, 'events.ndjson')
    const cfg = join(dir, 'agent.yaml')
    writeFileSync(
      cfg,
      `collectors:
  gen: { kind: synthetic, rate: 20000, batchSize: 200 }
outputs:
  file: { path: ${out} }
http: { port: 0, tailQueue: 1000, maxTailClients: ${CAP}, maxConnections: ${CAP + 50} }
`,
    )
    const agent = new AgentProcess(['--config', cfg])
    const sockets: Socket[] = []
    let reader: ReturnType<typeof request> | undefined
    try {
      const url = await agent.url()
      const pid = agent.child.pid as number
      // Warm up: the heap sizes itself to the event flow before the baseline is taken.
      const warm = Date.now()
      while ((await status(url)).totals.delivered < 40_000) {
        if (Date.now() - warm > 30_000) throw new Error('events are not flowing')
        await sleep(100)
      }
      const baseline = rssMB(pid)

      const base = new URL(url)
      for (let i = 0; i < STUCK; i++) sockets.push(await stuckClient(base))

      // One client that reads keeps receiving events while the others are stuck.
      let frames = 0
      reader = request({ host: base.hostname, port: base.port, path: '/events', method: 'GET' }, (res) => {
        res.on('data', (d: Buffer) => {
          for (let i = d.indexOf('data: '); i !== -1; i = d.indexOf('data: ', i + 6)) frames++
        })
      })
      reader.end()
      await waitFor(() => frames > 0, 'the reading client to get events')

      // Beyond the cap: a clear refusal, not a stream.
      const refused = await fetch(`${url}/events`)
      expect(refused.status).toBe(503)
      expect(refused.headers.get('retry-after')).toBe('5')
      expect(((await refused.json()) as { error: string }).error).toMatch(/too many \/events clients \(limit 301/)

      // Let the stuck clients fall as far behind as they can, sampling the agent's memory.
      let peak = rssMB(pid)
      const framesBefore = frames
      const deliveredBefore = (await status(url)).totals.delivered
      const until = Date.now() + 8000
      while (Date.now() < until) {
        await sleep(200)
        peak = Math.max(peak, rssMB(pid))
      }
      const after = await status(url)
      const growth = peak - baseline
      console.log(`/events bounds: RSS ${baseline.toFixed(0)} MB before ${STUCK} stuck clients, peak ${peak.toFixed(0)} MB with them (+${growth.toFixed(0)} MB); tail dropped ${after.totals.tailDropped}`)
      // The main stream kept flowing, the stuck clients lost their own events (counted)...
      expect(after.totals.delivered - deliveredBefore).toBeGreaterThan(50_000)
      expect(after.totals.tailDropped).toBeGreaterThan(STUCK * 10_000)
      expect(after.totals.tailRefused).toBe(1)
      // ...the reading client kept up...
      expect(frames - framesBefore).toBeGreaterThan(50_000)
      // ...and memory stayed bounded: at most tailQueue events per client, shared frames.
      expect(growth).toBeLessThan(120)
    } finally {
      reader?.destroy()
      for (const s of sockets) s.destroy()
      await agent.stop()
    }
  }, 120_000)
})
