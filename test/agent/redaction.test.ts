import { execFile } from 'node:child_process'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { afterAll, describe, expect, it } from 'vitest'
import { freePort, NatsServer } from '../outputs/nats/nats-server.js'
import { waitFor } from '../support/wait.js'
import { httpRequest } from './http-raw.js'
import { AgentProcess, CLI, ROOT } from './support.js'

/**
 * A run configured with secrets (a NATS URL with a password, an HTTP token): no log line, HTTP
 * body or CLI output may contain them, while NATS is down (errors quote the URL), after it comes
 * up, on reload, and in config errors.
 */

const PASSWORD = 'Pa55-w0rd-s3cret-xyz'
const TOKEN = 'tok-3f9a2c71d8e64b05a1'
const run = promisify(execFile)
const dir = mkdtempSync(join(tmpdir(), 'tapio-redaction-'))
const agents: AgentProcess[] = []
let nats: NatsServer | undefined
afterAll(async () => {
  await Promise.all(agents.map((a) => a.stop()))
  await nats?.destroy()
  rmSync(dir, { recursive: true, force: true })
})

async function cli(args: string[]): Promise<string> {
  const r = await run(process.execPath, [CLI, ...args], { cwd: ROOT }).catch((e: { stdout: string; stderr: string }) => e)
  return `${r.stdout}${r.stderr}`
}

describe('secrets are redacted everywhere', () => {
  it('never shows the NATS password or the HTTP token in logs, HTTP bodies, status or check-config', { timeout: 90_000 }, async () => {
    const port = await freePort()
    const server = `nats://alice:${PASSWORD}@127.0.0.1:${port}`
    const yaml = (rate: number) => `node: n1
log: { level: debug }
http: { host: 127.0.0.1, port: 0, token: ${JSON.stringify(TOKEN)} }
collectors:
  g: { kind: synthetic, rate: ${rate}, batchSize: 5 }
outputs:
  nats: { servers: [${JSON.stringify(server)}], user: alice, pass: ${JSON.stringify(PASSWORD)}, retry: { initialMs: 100, maxMs: 300 } }
`
    const cfg = join(dir, 'agent.yaml')
    writeFileSync(cfg, yaml(50))
    const agent = new AgentProcess(['--config', cfg])
    agents.push(agent)
    const url = await agent.url()
    const auth = { authorization: `Bearer ${TOKEN}` }
    const bodies: string[] = []
    const get = async (path: string) => {
      const r = await httpRequest(url, path, { headers: auth })
      bodies.push(`${path} ${r.status} ${r.body}`)
      return r
    }

    // NATS down: the connection error names the server; the password must not be in it.
    await waitFor(() => /cannot connect/.test(agent.stderr), 'a connection error logged')
    const ready = await get('/readyz')
    expect(ready.status).toBe(503)
    expect(ready.body).toMatch(/nats:\/\/\*\*\*@127\.0\.0\.1/)
    for (const p of ['/api/status', '/metrics', '/api/actors', '/healthz', '/api/inspect/stream']) await get(p)
    const statusText = await cli(['status', '--url', url, '--token', TOKEN])
    expect(statusText).toMatch(/nats/)

    // NATS up (with that password): connects, publishes.
    nats = await NatsServer.start({ port, auth: { user: 'alice', pass: PASSWORD } })
    await waitFor(() => /nats: connected/.test(agent.stderr), 'the agent to connect to NATS', 30_000)
    await waitFor(() => {
      const m = /"ready":\s*true/.exec(bodies.at(-1) ?? '')
      void get('/api/status')
      return m !== null
    }, 'the NATS output to be ready', 30_000)
    for (const p of ['/readyz', '/api/status', '/metrics']) await get(p)
    const statusJson = await cli(['status', '--url', url, '--token', TOKEN, '--json'])

    // A reload, and a rejected reload whose errors are about the secrets themselves.
    writeFileSync(cfg, yaml(60))
    agent.signal('SIGHUP')
    await waitFor(() => agent.logs().some((l) => l.msg === 'config reloaded'), 'the reload')
    writeFileSync(cfg, yaml(60).replace(JSON.stringify(TOKEN), JSON.stringify(PASSWORD.slice(0, 8))).replace(`[${JSON.stringify(server)}]`, `[${JSON.stringify(server)}, 7]`))
    agent.signal('SIGHUP')
    await waitFor(() => agent.logs().some((l) => l.msg.includes('new config rejected')), 'the rejection')

    // check-config on a valid file and on one with a short token and a bad server entry.
    const valid = join(dir, 'valid.yaml')
    writeFileSync(valid, yaml(50))
    const checkOk = await cli(['check-config', '--config', valid])
    expect(checkOk).toMatch(/valid/)
    const bad = join(dir, 'bad.yaml')
    writeFileSync(bad, `http: { host: 0.0.0.0, token: "${PASSWORD.slice(0, 9)}" }\noutputs:\n  nats: { servers: ["${server}", 7], pass: "${PASSWORD}x", user: 3 }\n`)
    const checkBad = await cli(['check-config', '--config', bad])
    expect(checkBad).toMatch(/http\.token/)

    agent.signal('SIGTERM')
    await agent.exited

    const everything = [agent.stderr, ...bodies, statusText, statusJson, checkOk, checkBad].join('\n')
    expect(agent.stderr.split('\n').length).toBeGreaterThan(10)
    for (const secret of [PASSWORD, encodeURIComponent(PASSWORD), TOKEN, PASSWORD.slice(0, 8), PASSWORD.slice(0, 9)]) {
      const leaks = everything.split('\n').filter((l) => l.includes(secret))
      expect(leaks, `lines containing ${secret}`).toEqual([])
    }
    // Redacted, not removed: the server is still named.
    expect(agent.stderr).toMatch(/nats:\/\/\*\*\*@127\.0\.0\.1:\d+/)
  })
})
