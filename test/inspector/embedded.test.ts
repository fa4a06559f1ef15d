import { request } from 'node:http'
import { afterEach, describe, expect, it } from 'vitest'
import { CollectorManager, SyntheticCollector } from 'tapio-collector-manager'
import { type InspectorServer, serveInspector } from 'tapio-collector-manager/inspector'

/**
 * The inspector for an embedded CollectorManager (`tapio-collector-manager/inspector`): page,
 * feed and control over real HTTP. The page itself in a browser is `inspector.test.ts` (the agent
 * serves it through the same `createInspector`).
 */

let mgr: CollectorManager | undefined
let server: InspectorServer | undefined
afterEach(async () => {
  await server?.close()
  await mgr?.stop()
  server = undefined
  mgr = undefined
})

async function started(): Promise<CollectorManager> {
  const m = new CollectorManager()
  m.addCollector('ticks', () => new SyntheticCollector({ rate: 100, batchSize: 10 }))
  await m.start()
  // Someone has to read, or `block` stops the collector once the buffer is full.
  void (async () => {
    for await (const _ of m.batches());
  })()
  return m
}

/** The first `hello` of the feed, parsed. */
async function hello(url: string): Promise<{ actors: { id: string; state: string }[]; control: boolean }> {
  return new Promise((resolve, reject) => {
    const req = request(`${url}/api/inspect/stream`, (res) => {
      let buf = ''
      res.on('data', (d: Buffer) => {
        buf += d.toString()
        const m = /event: hello\ndata: (.*)\n\n/.exec(buf)
        if (m) {
          req.destroy()
          resolve(JSON.parse(m[1] as string))
        }
      })
    })
    req.on('error', (e) => (e.message === 'socket hang up' ? undefined : reject(e)))
    req.end()
  })
}

/** Frames of one SSE stream until `done` says enough (then the request is closed). */
async function frames(url: string, done: (text: string) => boolean): Promise<string> {
  return new Promise((resolve, reject) => {
    const req = request(url, (res) => {
      let buf = ''
      res.on('data', (d: Buffer) => {
        buf += d.toString()
        if (done(buf)) {
          req.destroy()
          resolve(buf)
        }
      })
    })
    req.on('error', (e) => (e.message === 'socket hang up' ? undefined : reject(e)))
    req.end()
  })
}

describe('serveInspector for an embedded manager', () => {
  it('redacts what transitions carry and samples the batches it is given', async () => {
    mgr = new CollectorManager()
    mgr.addCollector('ticks', () => new SyntheticCollector({ rate: 200, batchSize: 10, failAfter: 30 }), { maxRestarts: 100, backoff: { initialMs: 50, maxMs: 50 } })
    await mgr.start()
    server = await serveInspector(mgr, { redact: (t) => t.replaceAll('injected', '[redacted]') })
    const s = server
    void (async () => {
      for await (const batch of mgr?.batches() ?? []) s.observe(batch)
    })()
    // Transitions: the failure's error as detail, redacted; readable labels.
    const transitions = (t: string) => t.split('\n\n').filter((f) => f.startsWith('event: transition'))
    const feed = await frames(`${s.url}/api/inspect/stream`, (t) => {
      const ts = transitions(t)
      return ts.some((f) => f.includes('"event":"SOURCE_FAILED"')) && ts.some((f) => f.includes('"label":"backoff elapsed"'))
    })
    const failed = transitions(feed).find((f) => f.includes('"event":"SOURCE_FAILED"')) ?? ''
    expect(failed).toContain(`"detail":"event source failed: synthetic: [redacted] failure after 30 events"`)
    expect(feed).not.toContain('injected')
    // A sample of the collector's newest events, from the batches handed to observe().
    const sample = await frames(`${s.url}/api/inspect/sample?collector=ticks`, (t) => /"fresh":true/.test(t))
    const data = JSON.parse(/event: sample\ndata: (.*)\n\n/.exec(sample.slice(sample.lastIndexOf('event: sample')))?.[1] ?? '{}') as { events: { type: string }[] }
    expect(data.events.length).toBeGreaterThan(0)
    expect(data.events.length).toBeLessThanOrEqual(8)
    expect(data.events.every((e) => e.type === 'synthetic.tick')).toBe(true)
    expect((await fetch(`${s.url}/api/inspect/sample?collector=nope`)).status).toBe(404)
  })

  it('serves the page, its assets and a feed with the manager actors', async () => {
    mgr = await started()
    server = await serveInspector(mgr)
    expect(server.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/)
    const page = await fetch(`${server.url}/inspect`)
    expect(page.status).toBe(200)
    expect(page.headers.get('content-security-policy')).toContain("default-src 'self'")
    expect(await page.text()).toContain('<script')
    expect((await fetch(`${server.url}/inspect/app.js`)).status).toBe(200)
    expect((await fetch(`${server.url}/inspect/../../package.json`)).status).toBe(404)
    // A rebound DNS name (a page on evil.example resolving to 127.0.0.1) is not this server.
    const rebound = await new Promise<number | undefined>((resolve, reject) => {
      const req = request(`${server?.url}/inspect`, { headers: { host: 'evil.example' } }, (res) => {
        res.resume()
        resolve(res.statusCode)
      })
      req.on('error', reject)
      req.end()
    })
    expect(rebound).toBe(403)
    const h = await hello(server.url)
    expect(h.control).toBe(false)
    expect(h.actors.map((a) => a.id)).toEqual(expect.arrayContaining(['supervisor', 'collector:ticks']))
    expect(h.actors.find((a) => a.id === 'collector:ticks')?.state).toBe('running')
  })

  it('control is off by default, same-origin only when on, and restarts the collector', async () => {
    mgr = await started()
    server = await serveInspector(mgr)
    expect((await fetch(`${server.url}/api/collectors/ticks/restart`, { method: 'POST' })).status).toBe(403)
    await server.close()

    const actions: string[] = []
    server = await serveInspector(mgr, { allowControl: true, onControl: (a, n) => actions.push(`${a} ${n}`) })
    const host = new URL(server.url).host
    const cross = await fetch(`${server.url}/api/collectors/ticks/restart`, { method: 'POST', headers: { origin: 'http://evil.example' } })
    expect(cross.status).toBe(403)
    expect(actions).toEqual([])
    expect((await fetch(`${server.url}/api/collectors/ticks/restart`, { method: 'POST' })).status).toBe(403)
    expect((await fetch(`${server.url}/api/collectors/nope/restart`, { method: 'POST', headers: { origin: `http://${host}` } })).status).toBe(404)
    const ok = await fetch(`${server.url}/api/collectors/ticks/restart`, { method: 'POST', headers: { origin: `http://${host}` } })
    expect(ok.status).toBe(200)
    expect(actions).toEqual(['restart ticks'])
    expect(mgr.health().collectors.ticks?.state).toBe('running')
    expect((await fetch(`${server.url}/api/collectors/ticks/stop`, { method: 'POST', headers: { origin: `http://${host}` } })).status).toBe(200)
    expect(mgr.health().collectors.ticks?.state).toBe('stopped')
  })
})
