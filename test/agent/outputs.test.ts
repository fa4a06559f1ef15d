import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { request } from 'node:http'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Writable } from 'node:stream'
import { afterAll, describe, expect, it } from 'vitest'
import { Agent } from '../../src/agent/agent.js'
import { loadConfigText } from '../../src/agent/config.js'
import { createLogger } from '../../src/agent/logger.js'
import { FILE_HIGH_WATER_MARK, RotatingFileOutput } from '../../src/agent/outputs.js'
import { builtinKinds, kindMap, validators } from '../../src/agent/registry.js'
import { makeEvent } from '../../src/index.js'
import { waitFor } from '../support/wait.js'

const dir = mkdtempSync(join(tmpdir(), 'tapio-outputs-'))
afterAll(() => rmSync(dir, { recursive: true, force: true }))
const kinds = builtinKinds()

describe('agent outputs', () => {
  it('the file output takes batches up to FILE_HIGH_WATER_MARK bytes without waiting, then waits for drain', async () => {
    const path = join(dir, 'hwm.ndjson')
    const out = new RotatingFileOutput(path, 2 ** 40, 1)
    const batch = Array.from({ length: 1000 }, (_, i) => makeEvent('t', 'synthetic.tick', { seq: i, generation: 1 }))
    const batchBytes = Buffer.byteLength(batch.map((e) => `${JSON.stringify(e)}\n`).join(''))
    // Several whole batches fit: the next one is serialised while these are written.
    const fit = Math.floor((FILE_HIGH_WATER_MARK - 1) / batchBytes)
    expect(fit).toBeGreaterThanOrEqual(4)
    const waits: (Promise<void> | undefined)[] = []
    for (let i = 0; i <= fit; i++) waits.push(out.write(batch))
    expect(waits.slice(0, fit).every((p) => p === undefined)).toBe(true)
    expect(waits[fit]).toBeInstanceOf(Promise)
    await waits[fit]
    await out.close()
    expect(readFileSync(path, 'utf8').split('\n').length - 1).toBe((fit + 1) * 1000)
    expect(out.written).toBe((fit + 1) * 1000)
  })

  it('rotates the file output by size and keeps maxFiles files', async () => {
    const path = join(dir, 'events.ndjson')
    const out = new RotatingFileOutput(path, 2000, 3)
    for (let i = 0; i < 40; i++) {
      const p = out.write([makeEvent('t', 'synthetic.tick', { seq: i, generation: 1 })])
      if (p) await p
    }
    await out.close()
    expect(existsSync(path)).toBe(true)
    expect(existsSync(`${path}.1`)).toBe(true)
    expect(existsSync(`${path}.2`)).toBe(true)
    expect(existsSync(`${path}.3`)).toBe(false)
    for (const f of [path, `${path}.1`, `${path}.2`]) {
      const text = readFileSync(f, 'utf8')
      expect(Buffer.byteLength(text)).toBeLessThanOrEqual(2000)
      for (const line of text.trim().split('\n')) expect(JSON.parse(line).type).toBe('synthetic.tick')
    }
    // The newest file holds the last event; the rotated ones are older.
    const last = readFileSync(path, 'utf8').trim().split('\n').at(-1) as string
    expect(JSON.parse(last).data.seq).toBe(39)
  })

  it('a tail client that never reads loses its own events, counted, and never slows the main stream', async () => {
    const config = loadConfigText(
      `http: { port: 0, tailQueue: 50 }
collectors:
  fast: { kind: synthetic, rate: 0, batchSize: 100 }
`,
      'tail-test',
      validators(kinds),
    )
    let written = 0
    const sink = new Writable({
      write(chunk: Buffer, _enc, cb) {
        written += chunk.toString().split('\n').length - 1
        cb()
      },
    })
    const agent = new Agent(config, { kinds: kindMap(kinds), logger: createLogger('error'), stdout: sink })
    // Subscribe a tail client that never reads its socket before the events flow.
    const url = new URL('/events', 'http://127.0.0.1')
    let req: ReturnType<typeof request> | undefined
    try {
      const started = agent.start()
      await waitFor(() => agent.httpUrl !== undefined, 'http up')
      const base = new URL(agent.httpUrl as string)
      req = request({ host: base.hostname, port: base.port, path: url.pathname, method: 'GET' }, (res) => res.pause())
      req.end()
      await started
      // The stalled client fills its queue and then loses events while stdout keeps flowing.
      await waitFor(() => agent.tail.dropped > 10_000, 'the stalled tail client to lose events')
      const before = written
      await waitFor(() => written > before + 10_000, 'stdout to keep flowing')
    } finally {
      req?.destroy()
      await agent.stop()
    }
    const st = agent.manager.statistics()
    expect(st.droppedEvents.total).toBe(0)
    expect(written).toBe(st.deliveredEvents)
  })
})
