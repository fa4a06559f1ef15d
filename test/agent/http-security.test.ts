import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { httpRequest, rawRequest } from './http-raw.js'
import { AgentProcess } from './support.js'

/**
 * The agent's HTTP face under attack, on a real process: cross-site control and DNS rebinding on
 * the default loopback bind without a token, malformed input, the token on a non-loopback bind,
 * and path traversal on /inspect.
 */

const dir = mkdtempSync(join(tmpdir(), 'tapio-http-security-'))
const agents: AgentProcess[] = []
afterAll(async () => {
  await Promise.all(agents.map((a) => a.stop()))
  rmSync(dir, { recursive: true, force: true })
})

async function startAgent(name: string, yaml: string): Promise<{ agent: AgentProcess; url: string }> {
  const p = join(dir, name)
  writeFileSync(p, yaml)
  const agent = new AgentProcess(['--config', p])
  agents.push(agent)
  return { agent, url: await agent.url() }
}

async function collectorState(url: string, name: string): Promise<string> {
  const s = (await (await fetch(`${url}/api/status`)).json()) as { collectors: Record<string, { state: string }> }
  return s.collectors[name]?.state ?? 'absent'
}

describe('loopback bind without a token (the default)', () => {
  let url = ''
  let port = ''
  beforeAll(async () => {
    ;({ url } = await startAgent('open.yaml', 'http: { host: 127.0.0.1, port: 0, allowControl: true }\ncollectors:\n  g: { kind: synthetic, rate: 50, batchSize: 1 }\n'))
    port = new URL(url).port
  })

  it('refuses the cross-site control request a browser sends without a preflight', async () => {
    // Exactly the request of the report: a text/plain POST from a page on evil.example.
    const attack = await httpRequest(url, '/api/collectors/g/stop', {
      method: 'POST',
      headers: { 'content-type': 'text/plain', origin: 'http://evil.example', host: 'evil.example' },
      body: 'x',
    })
    expect(attack.status).toBe(403)
    // The same with the agent's own Host (a page on another origin reaching 127.0.0.1 directly).
    for (const origin of ['http://evil.example', 'null', `http://127.0.0.1:${Number(port) + 1}`, `https://127.0.0.1:${port}`]) {
      const r = await httpRequest(url, '/api/collectors/g/stop', { method: 'POST', headers: { 'content-type': 'text/plain', origin, host: `127.0.0.1:${port}` }, body: 'x' })
      expect(r.status, origin).toBe(403)
    }
    // A browser that sends no Origin but says the request is cross-site.
    const fetchMeta = await httpRequest(url, '/api/collectors/g/stop', { method: 'POST', headers: { host: `127.0.0.1:${port}`, 'sec-fetch-site': 'cross-site' } })
    expect(fetchMeta.status).toBe(403)
    expect(await collectorState(url, 'g')).toBe('running')
  })

  it('refuses DNS rebinding (a foreign Host) on reads too, every endpoint', async () => {
    for (const path of ['/api/status', '/events', '/healthz', '/readyz', '/metrics', '/api/actors', '/api/inspect/stream', '/inspect']) {
      const r = await httpRequest(url, path, { headers: { host: 'evil.example' } })
      expect(r.status, path).toBe(403)
      expect(r.body, path).not.toMatch(/"collectors"|tapio_events|data: /)
    }
    expect((await httpRequest(url, '/api/status', { headers: { host: `evil.example:${port}` } })).status).toBe(403)
    expect((await httpRequest(url, '/api/status', { headers: { host: 'localhost.evil.example' } })).status).toBe(403)
  })

  it('answers its own names: IP literals, localhost, without and with a same-origin Origin', async () => {
    for (const host of [`127.0.0.1:${port}`, `localhost:${port}`, 'LOCALHOST', `[::1]:${port}`, '10.1.2.3:9464']) {
      const r = await httpRequest(url, '/api/status', { headers: { host } })
      expect(r.status, host).toBe(200)
    }
    const sameOrigin = await httpRequest(url, '/api/status', { headers: { host: `localhost:${port}`, origin: `http://localhost:${port}` } })
    expect(sameOrigin.status).toBe(200)
    const events = await httpRequest(url, '/events', { headers: { host: `127.0.0.1:${port}` } })
    expect(events.status).toBe(200)
  })

  it('answers malformed input with 400, never 500', async () => {
    const badName = await httpRequest(url, '/api/collectors/%E0%A4%A/stop', { method: 'POST', headers: { origin: `http://127.0.0.1:${port}`, host: `127.0.0.1:${port}` } })
    expect(badName.status).toBe(400)
    for (const target of ['http://evil.example/api/status', 'http://[::1/api/status', '//evil.example/api/status', '*']) {
      const r = await rawRequest(url, `GET ${target} HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nConnection: close\r\n\r\n`)
      expect(r.status, target).toBe(400)
    }
    const badHost = await rawRequest(url, `GET /api/status HTTP/1.1\r\nHost: a:b:c\r\nConnection: close\r\n\r\n`)
    expect(badHost.status).toBe(400)
    expect(await collectorState(url, 'g')).toBe('running')
  })

  it('lets the same-origin page (and clients that name this agent as Origin) control collectors', async () => {
    const r = await httpRequest(url, '/api/collectors/g/stop', { method: 'POST', headers: { host: `127.0.0.1:${port}`, origin: `http://127.0.0.1:${port}`, 'sec-fetch-site': 'same-origin' } })
    expect(r.status).toBe(200)
    expect(await collectorState(url, 'g')).toBe('stopped')
    // A program on the node (a pod on the host network) that sends neither Origin nor the token.
    const blind = await httpRequest(url, '/api/collectors/g/restart', { method: 'POST' })
    expect(blind.status).toBe(403)
    expect(blind.body).toMatch(/needs a same-origin Origin header .* or the token/)
    expect(await collectorState(url, 'g')).toBe('stopped')
    const curl = await httpRequest(url, '/api/collectors/g/restart', { method: 'POST', headers: { origin: `http://127.0.0.1:${port}`, host: `127.0.0.1:${port}` } })
    expect(curl.status).toBe(200)
    expect(await collectorState(url, 'g')).not.toBe('stopped')
  })

  it('never serves a file outside the inspector folder, however the path is spelled', async () => {
    const variants = [
      '/inspect/../package.json',
      '/inspect/../../package.json',
      '/inspect/%2e%2e/%2e%2e/package.json',
      '/inspect/%2e%2e%2f%2e%2e%2fpackage.json',
      '/inspect/..%2f..%2f..%2fpackage.json',
      '/inspect/%252e%252e/%252e%252e/package.json',
      '/inspect/....//....//package.json',
      '/inspect/..\\..\\..\\package.json',
      '/inspect/.%2e/.%2e/.%2e/package.json',
      '/inspect/app.js/../../../../package.json',
      '/inspect/../../../../../../etc/passwd',
      '/inspect/index.html%00.js',
      '/inspect//etc/passwd',
      '/inspect/%2fetc%2fpasswd',
      '/inspect/../agent/http.ts',
    ]
    for (const v of variants) {
      const r = await rawRequest(url, `GET ${v} HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nConnection: close\r\n\r\n`)
      expect([400, 404], v).toContain(r.status)
      expect(r.text, v).not.toMatch(/tapio-collector-manager|root:x:0|import /)
    }
    expect((await httpRequest(url, '/inspect/app.js')).status).toBe(200)
  })
})

describe('non-loopback bind with a token', () => {
  const token = 'correct-horse-battery-staple-42'
  let url = ''
  beforeAll(async () => {
    ;({ url } = await startAgent('token.yaml', `http: { host: 0.0.0.0, port: 0, token: ${JSON.stringify(token)}, allowControl: true }\ncollectors:\n  g: { kind: synthetic, rate: 50, batchSize: 1 }\n`))
    url = url.replace('0.0.0.0', '127.0.0.1')
  })

  it('refuses wrong tokens of every length and accepts the right one', async () => {
    for (const wrong of ['', 'x', token.slice(0, -1), `${token}x`, token.replace(/.$/, '3'), token.toUpperCase()]) {
      const r = await httpRequest(url, '/api/status', { headers: { authorization: `Bearer ${wrong}` } })
      expect(r.status, wrong).toBe(401)
    }
    expect((await httpRequest(url, '/api/status', { headers: { authorization: `Bearer ${token}` } })).status).toBe(200)
    expect((await httpRequest(url, '/healthz')).status).toBe(200)
  })

  it('sets an HttpOnly SameSite=Strict cookie and answers a malformed one with 400', async () => {
    const login = await httpRequest(url, `/inspect?token=${encodeURIComponent(token)}`)
    expect(login.status).toBe(303)
    const cookie = String(login.headers['set-cookie'])
    expect(cookie).toMatch(/^tapio_token=[^;]+; HttpOnly; SameSite=Strict; Path=\//)
    expect((await httpRequest(url, '/api/status', { headers: { cookie: cookie.split(';')[0] as string } })).status).toBe(200)
    expect((await httpRequest(url, '/api/status', { headers: { cookie: 'tapio_token=%E0%A4%A' } })).status).toBe(400)
    expect((await httpRequest(url, '/api/status', { headers: { cookie: 'other=%%%; tapio_token=nope' } })).status).toBe(401)
  })

  it('keeps a foreign Host out even with the cookie; the bearer token is enough on its own', async () => {
    const login = await httpRequest(url, `/inspect?token=${encodeURIComponent(token)}`)
    const cookie = String(login.headers['set-cookie']).split(';')[0] as string
    expect((await httpRequest(url, '/api/status', { headers: { host: 'evil.example', cookie } })).status).toBe(403)
    const r = await httpRequest(url, '/api/collectors/g/stop', { method: 'POST', headers: { host: 'evil.example', origin: 'http://evil.example', cookie } })
    expect(r.status).toBe(403)
    // An API client through a proxy that rewrites Host: the token authenticates it.
    expect((await httpRequest(url, '/api/status', { headers: { host: 'agents.internal', authorization: `Bearer ${token}` } })).status).toBe(200)
  })
})
