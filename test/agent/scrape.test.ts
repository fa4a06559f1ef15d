// The scrape listener (http.scrape): a second address serving /metrics, /healthz and /readyz without
// the token, while the main listener keeps its token and is the only one with control, the live tail
// and the inspector. 127.0.0.2 stands in for the pod IP (not in the loopback set the config treats as
// token-free, so the main listener there needs a token).
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, afterEach, describe, expect, it } from 'vitest'
import { loadConfigText } from '../../src/agent/config.js'
import { waitFor } from '../support/wait.js'
import { AgentProcess, metric } from './support.js'

const dir = mkdtempSync(join(tmpdir(), 'tapio-scrape-'))
const agents: AgentProcess[] = []
afterEach(async () => {
  await Promise.all(agents.splice(0).map((a) => a.stop()))
})
afterAll(() => rmSync(dir, { recursive: true, force: true }))

const TOKEN = 'scrape-test-token-0123456789'

async function scrapeUrl(a: AgentProcess): Promise<string> {
  await waitFor(() => /scrape listener .* on http/.test(a.stderr) || a.exitCode !== undefined, 'the scrape listener')
  const m = /scrape listener [^"]* on (http:\/\/[^"\s]+)/.exec(a.stderr)
  if (!m) throw new Error(`no scrape listener: ${a.stderr}`)
  return m[1] as string
}

describe('http.scrape', () => {
  it('serves only /metrics, /healthz and /readyz, without the token; the main listener keeps it', async () => {
    const path = join(dir, 'agent.yaml')
    writeFileSync(
      path,
      `http: { host: 127.0.0.2, port: 0, token: ${TOKEN}, allowControl: true, scrape: { host: 127.0.0.2, port: 0 } }
collectors:
  ticks: { kind: synthetic, rate: 0, batchSize: 10, total: 100, policy: { restart: transient } }
outputs: { stdout: { enabled: true } }
`,
    )
    const a = new AgentProcess(['--config', path])
    agents.push(a)
    const main = await a.url()
    const scrape = await scrapeUrl(a)
    expect(new URL(scrape).hostname).toBe('127.0.0.2')
    expect(scrape).not.toBe(main)

    // Without a token: the main listener refuses even /metrics, the scrape listener serves it.
    expect((await fetch(`${main}/metrics`)).status).toBe(401)
    const metrics = await fetch(`${scrape}/metrics`)
    expect(metrics.status).toBe(200)
    expect(metrics.headers.get('content-type')).toMatch(/^text\/plain; version=0\.0\.4/)
    await waitFor(() => a.events().length >= 100, 'the synthetic events')
    const text = await (await fetch(`${scrape}/metrics`)).text()
    expect(metric(text, 'tapio_events_delivered_total', { collector: 'ticks' })).toBe(100)
    expect((await fetch(`${scrape}/healthz`)).status).toBe(200)
    const ready = await fetch(`${scrape}/readyz`)
    const mainReady = await fetch(`${main}/readyz`, { headers: { authorization: `Bearer ${TOKEN}` } })
    expect(ready.status).toBe(mainReady.status)
    expect(Object.keys((await ready.json()) as object).sort()).toEqual(Object.keys((await mainReady.json()) as object).sort())

    // Nothing else is there, with or without the token; HEAD works, other methods do not.
    for (const p of ['/events', '/inspect', '/api/status', '/api/actors', '/', '/metrics/']) {
      const r = await fetch(`${scrape}${p}`, { headers: { authorization: `Bearer ${TOKEN}` } })
      expect(r.status, p).toBe(404)
    }
    const control = await fetch(`${scrape}/api/collectors/ticks/stop`, { method: 'POST', headers: { authorization: `Bearer ${TOKEN}` } })
    expect(control.status).toBe(404)
    expect((await fetch(`${scrape}/metrics`, { method: 'POST' })).status).toBe(405)
    expect((await fetch(`${scrape}/metrics`, { method: 'HEAD' })).status).toBe(200)
    // The collector was not stopped through the scrape listener; the main one still has control.
    const status = (await (await fetch(`${main}/api/status`, { headers: { authorization: `Bearer ${TOKEN}` } })).json()) as {
      collectors: Record<string, { state: string }>
    }
    expect(status.collectors.ticks).toBeDefined()
    expect(a.stderr).not.toContain('control: stop ticks')
  })

  it('is off unless configured, takes its port default, and rejects a section without a host', () => {
    expect(loadConfigText('http: { port: 0 }', 'a').http.scrape).toBeUndefined()
    expect(loadConfigText('http: { scrape: { host: 10.0.0.5 } }', 'b').http.scrape).toEqual({ host: '10.0.0.5', port: 8498 })
    expect(loadConfigText('http: { scrape: { host: 10.0.0.5, enabled: false } }', 'c').http.scrape).toBeUndefined()
    expect(loadConfigText('http: {}', 'd').http.port).toBe(8497)
    expect(() => loadConfigText('http: { scrape: { port: 9 } }', 'e.yaml')).toThrow(/http\.scrape\.host/)
  })
})
