import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { request } from 'node:http'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Writable } from 'node:stream'
import { afterAll, describe, expect, it } from 'vitest'
import { Agent } from '../../src/agent/agent.js'
import { loadConfigText } from '../../src/agent/config.js'
import { createLogger } from '../../src/agent/logger.js'
import { type CollectorKind, kindMap } from '../../src/agent/registry.js'
import type { Collector } from '../../src/core/collector.js'
import { makeEvent, type TapioEvent } from '../../src/index.js'
import { NdjsonBatch } from '../../src/outputs/ndjson.js'
import { waitFor } from '../support/wait.js'

const dir = mkdtempSync(join(tmpdir(), 'tapio-ndjson-'))
afterAll(() => rmSync(dir, { recursive: true, force: true }))

describe('NdjsonBatch', () => {
  it('is the NDJSON of the events, byte for byte, with line offsets, also for multi-byte text', () => {
    const texts = ['plain', 'é accent', '日本語のテキスト', 'emoji 🚀🚀', 'quote " and \\ and \n newline', '']
    const events = texts.map((t, i) => makeEvent('src', 'test.text', { t, i }))
    const b = NdjsonBatch.from(events)
    const expected = events.map((e) => `${JSON.stringify(e)}\n`)
    expect(b.bytes.toString('utf8')).toBe(expected.join(''))
    expect(b.lines).toEqual(expected.map((l) => l.slice(0, -1)))
    let at = 0
    for (let i = 0; i < events.length; i++) {
      expect(b.offset(i)).toBe(at)
      expect(b.slice(i, i + 1).toString('utf8')).toBe(expected[i])
      at += Buffer.byteLength(expected[i] as string)
    }
    expect(b.offset(events.length)).toBe(at)
    expect(b.slice(1, 4).toString('utf8')).toBe(expected.slice(1, 4).join(''))
    // Made once: the same objects on every read, and from() of a batch is that batch.
    expect(b.lines).toBe(b.lines)
    expect(b.bytes).toBe(b.bytes)
    expect(NdjsonBatch.from(b)).toBe(b)
    expect(NdjsonBatch.from([]).bytes.length).toBe(0)
  })

  it('grows its buffer when a long batch of wide characters does not fit the first guess', () => {
    const events = Array.from({ length: 200 }, (_, i) => makeEvent('src', 'test.wide', { t: '語'.repeat(100 + i) }))
    const b = NdjsonBatch.from(events)
    expect(b.bytes.toString('utf8')).toBe(events.map((e) => `${JSON.stringify(e)}\n`).join(''))
    expect(b.offset(200)).toBe(b.bytes.length)
  })
})

/** A collector whose every event counts how often it is serialised (JSON.stringify calls toJSON). */
class CountingCollector implements Collector {
  static serialised = 0
  static open: () => void = () => {}
  /** Events flow once the test's tail clients are connected. */
  static readonly gate = new Promise<void>((resolve) => {
    CountingCollector.open = resolve
  })
  private running = false
  async start(): Promise<void> {
    this.running = true
  }
  async stop(): Promise<void> {
    this.running = false
  }
  async *events(): AsyncGenerator<readonly TapioEvent[]> {
    await CountingCollector.gate
    for (let n = 0; n < 20 && this.running; n++) {
      const batch: TapioEvent[] = []
      for (let i = 0; i < 50; i++) {
        const data = { seq: n * 50 + i, toJSON: () => (CountingCollector.serialised++, { seq: n * 50 + i }) }
        batch.push(makeEvent('counting', 'test.counted', data))
      }
      yield batch
      await new Promise((r) => setTimeout(r, 5))
    }
  }
}

const countingKind: CollectorKind = {
  kind: 'counting',
  description: 'test',
  configSchema: undefined as unknown as CollectorKind['configSchema'],
  detect: async () => ({ supported: true, reason: 'test' }),
  create: async () => () => new CountingCollector(),
}

describe('serialise once', () => {
  it('every event is serialised once for stdout, the file output and every unfiltered /events client', async () => {
    const file = join(dir, 'once.ndjson')
    const config = loadConfigText(
      `http: { port: 0 }
outputs:
  stdout: { enabled: true }
  file: { path: ${file} }
collectors:
  c: { kind: counting, policy: { restart: temporary } }
`,
      'once-test',
      new Map([['counting', () => []]]),
      {},
    )
    let stdout = ''
    const sink = new Writable({
      write(chunk: Buffer, _enc, cb) {
        stdout += chunk.toString()
        cb()
      },
    })
    const agent = new Agent(config, { kinds: kindMap([countingKind]), logger: createLogger('error'), stdout: sink })
    const tails: string[] = ['', '']
    const reqs: ReturnType<typeof request>[] = []
    try {
      // Subscribe two tail clients before the collector starts, so they see every event.
      const started = agent.start()
      await waitFor(() => agent.httpUrl !== undefined, 'http up')
      const base = new URL(agent.httpUrl as string)
      for (let k = 0; k < tails.length; k++) {
        const req = request({ host: base.hostname, port: base.port, path: '/events', method: 'GET' }, (res) => res.on('data', (d: Buffer) => (tails[k] += d.toString())))
        req.end()
        reqs.push(req)
      }
      await waitFor(() => agent.tail.size === tails.length, 'tail clients connected')
      await started
      CountingCollector.open()
      await waitFor(() => tails.every((t) => (t.match(/^data: /gm) ?? []).length === 1000), 'every event at both tail clients')
    } finally {
      for (const r of reqs) r.destroy()
      await agent.stop()
    }
    const lines = stdout.trim().split('\n')
    expect(lines).toHaveLength(1000)
    expect(readFileSync(file, 'utf8')).toBe(stdout)
    expect(JSON.parse(lines[999] as string).data).toEqual({ seq: 999 })
    // Four consumers of the plain form, one serialisation per event.
    expect(CountingCollector.serialised).toBe(1000)
  })
})
