import { execFile } from 'node:child_process'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { afterAll, afterEach, describe, expect, it } from 'vitest'
import { waitFor } from '../support/wait.js'
import { AgentProcess, CLI, metric, ROOT } from './support.js'

const run = promisify(execFile)
const dir = mkdtempSync(join(tmpdir(), 'tapio-agent-e2e-'))
const agents: AgentProcess[] = []
afterEach(async () => {
  await Promise.all(agents.splice(0).map((a) => a.stop()))
})
afterAll(() => rmSync(dir, { recursive: true, force: true }))

function config(name: string, yaml: string): string {
  const p = join(dir, name)
  writeFileSync(p, yaml)
  return p
}

function start(args: string[]): AgentProcess {
  const a = new AgentProcess(args)
  agents.push(a)
  return a
}

describe('tapio-agent (real process)', () => {
  it('writes NDJSON whose counts match /metrics, and exits 0 on SIGTERM with nothing delivered lost', async () => {
    const cfg = config(
      'finite.yaml',
      `collectors:
  alpha: { kind: synthetic, rate: 0, batchSize: 50, total: 2000, policy: { restart: transient } }
  beta: { kind: synthetic, rate: 0, batchSize: 7, total: 700, policy: { restart: transient } }
http: { port: 0 }
`,
    )
    const agent = start(['--config', cfg])
    const url = await agent.url()
    await waitFor(() => agent.events().length === 2700, 'all 2700 events on stdout')
    const text = await (await fetch(`${url}/metrics`)).text()
    const events = agent.events()
    for (const [name, n] of [['alpha', 2000], ['beta', 700]] as const) {
      expect(events.filter((e) => e.source === name).length).toBe(n)
      expect(metric(text, 'tapio_events_accepted_total', { collector: name })).toBe(n)
      expect(metric(text, 'tapio_events_delivered_total', { collector: name })).toBe(n)
      expect(metric(text, 'tapio_events_dropped_total', { collector: name, reason: 'buffer_full' })).toBe(0)
      // Counted at the source too: what the collector produced, all of it delivered.
      expect(metric(text, 'tapio_collector_events_produced_total', { collector: name })).toBe(n)
    }
    expect(metric(text, 'tapio_output_events_total', { output: 'stdout' })).toBe(2700)
    expect(metric(text, 'tapio_buffer_capacity')).toBe(10000)
    expect(metric(text, 'tapio_collector_state', { collector: 'alpha', state: 'stopped' })).toBe(1)
    expect(text).toMatch(/^process_resident_memory_bytes /m)
    agent.signal('SIGTERM')
    expect(await agent.exited).toBe(0)
    const stopped = agent.logs().find((l) => l.msg === 'stopped')
    expect(stopped?.delivered).toBe(2700)
  })

  it('reloads on SIGHUP: adds, restarts and removes collectors; the untouched one loses nothing', async () => {
    const base = `http: { port: 0 }
collectors:
  steady: { kind: synthetic, rate: 400, batchSize: 4 }
  changing: { kind: synthetic, rate: 100, batchSize: 2 }
  leaving: { kind: synthetic, rate: 100, batchSize: 2 }
`
    const cfg = config('reload.yaml', base)
    const agent = start(['--config', cfg])
    await agent.url()
    await waitFor(() => agent.events().filter((e) => e.source === 'leaving').length > 20, 'events from every collector')
    writeFileSync(
      cfg,
      `http: { port: 0 }
collectors:
  steady: { kind: synthetic, rate: 400, batchSize: 4 }
  changing: { kind: synthetic, rate: 100, batchSize: 1, type: synthetic.changed }
  arriving: { kind: synthetic, rate: 100, batchSize: 2 }
`,
    )
    agent.signal('SIGHUP')
    await waitFor(() => agent.logs().some((l) => l.msg === 'config reloaded'), 'the reload')
    const reload = agent.logs().find((l) => l.msg === 'config reloaded') as unknown as Record<string, string[]>
    expect(reload.added).toEqual(['arriving'])
    expect(reload.removed).toEqual(['leaving'])
    expect(reload.restarted).toEqual(['changing'])
    expect(reload.unchanged).toEqual(['steady'])
    await waitFor(() => agent.events().some((e) => e.source === 'arriving') && agent.events().some((e) => e.type === 'synthetic.changed'), 'new and changed collectors')

    // A bad config on reload is rejected and the running one kept.
    writeFileSync(cfg, 'collectors:\n  steady: { kind: synthetic, rate: -5 }\n')
    agent.signal('SIGHUP')
    await waitFor(() => agent.logs().some((l) => l.msg.includes('new config rejected')), 'the rejection')
    const rejected = agent.logs().find((l) => l.msg.includes('new config rejected')) as unknown as { problems: string[] }
    expect(rejected.problems.join('\n')).toMatch(/collectors\.steady\.rate: expected a value greater than or equal to 0, got -5/)
    const before = agent.events().filter((e) => e.source === 'steady').length
    await waitFor(() => agent.events().filter((e) => e.source === 'steady').length > before + 20, 'steady still running')

    agent.signal('SIGTERM')
    expect(await agent.exited).toBe(0)
    const steady = agent.events().filter((e) => e.source === 'steady')
    // Same instance from start to end: one generation, no gap in its sequence.
    expect(new Set(steady.map((e) => e.data.generation))).toEqual(new Set([1]))
    steady.forEach((e, i) => expect(e.data.seq).toBe(i))
    const stopped = agent.logs().find((l) => l.msg === 'stopped')
    expect(stopped?.delivered).toBe(agent.events().length)
  })

  it('keeps /healthz green while a collector is down; /readyz lists it; status and tail work', async () => {
    const cfg = config(
      'degraded.yaml',
      `http: { port: 0 }
collectors:
  good: { kind: synthetic, rate: 200, batchSize: 2, severity: warning }
  broken: { kind: synthetic, failAtStart: true, policy: { maxRestarts: 0 } }
`,
    )
    const agent = start(['--config', cfg])
    const url = await agent.url()
    await waitFor(() => agent.logs().some((l) => l.msg === 'agent running'), 'the startup lines')
    expect(agent.logs().some((l) => l.msg === 'good: running')).toBe(true)
    expect((await fetch(`${url}/healthz`)).status).toBe(200)
    const ready = await fetch(`${url}/readyz`)
    expect(ready.status).toBe(503)
    const body = (await ready.json()) as { failing: { name: string; status: string }[] }
    expect(body.failing.map((f) => [f.name, f.status])).toEqual([['broken', 'permanent_error']])

    const { stdout } = await run(process.execPath, [CLI, 'status', '--url', url], { cwd: ROOT })
    expect(stdout).toMatch(/COLLECTOR\s+STATE/)
    expect(stdout).toMatch(/good\s+running\s+ok/)
    expect(stdout).toMatch(/broken\s+gaveUp\s+permanent_error/)

    // Live tail with a filter: only `good`, only warning and above.
    const ctl = new AbortController()
    const res = await fetch(`${url}/events?source=good&severity=warning`, { signal: ctl.signal })
    const reader = (res.body as ReadableStream<Uint8Array>).getReader()
    let text = ''
    while ((text.match(/^data: /gm) ?? []).length < 5) text += new TextDecoder().decode((await reader.read()).value)
    ctl.abort()
    const tailed = text
      .split('\n')
      .filter((l) => l.startsWith('data: '))
      .map((l) => JSON.parse(l.slice(6)) as { source: string; severity: string })
    expect(tailed.every((e) => e.source === 'good' && e.severity === 'warning')).toBe(true)
    expect((await fetch(`${url}/events?severity=loud`)).status).toBe(400)
  })

  it('refuses to start on a bad config, naming the path, without a stack trace', async () => {
    const cfg = config('bad.yaml', 'collectors:\n  s:\n    kind: synthetic\n    batchSize: 0\n    policy: { restart: sometimes }\nhttp: { host: 0.0.0.0 }\n')
    const agent = start(['--config', cfg])
    expect(await agent.exited).toBe(2)
    expect(agent.stderr).toMatch(/collectors\.s\.batchSize: expected a value greater than or equal to 1, got 0/)
    expect(agent.stderr).toMatch(/collectors\.s\.policy\.restart: expected "permanent" \| "transient" \| "temporary", got "sometimes"/)
    expect(agent.stderr).toMatch(/http\.token: expected a bearer token/)
    expect(agent.stderr).not.toMatch(/\n\s+at /)
  })

  it('requires the bearer token when one is configured', async () => {
    const cfg = config('token.yaml', 'http: { port: 0, token: "0123456789abcdef0123" }\ncollectors: {}\n')
    const agent = start(['--config', cfg])
    const url = await agent.url()
    expect((await fetch(`${url}/healthz`)).status).toBe(200)
    expect((await fetch(`${url}/metrics`)).status).toBe(401)
    expect((await fetch(`${url}/metrics`, { headers: { authorization: 'Bearer 0123456789abcdef0123' } })).status).toBe(200)
    // The browser page authenticates by cookie (EventSource cannot send an Authorization header).
    expect((await fetch(`${url}/inspect?token=wrong`, { redirect: 'manual' })).status).toBe(401)
    const login = await fetch(`${url}/inspect?token=0123456789abcdef0123`, { redirect: 'manual' })
    expect(login.status).toBe(303)
    const cookie = (login.headers.get('set-cookie') ?? '').split(';')[0] as string
    expect(cookie).toMatch(/^tapio_token=/)
    expect((await fetch(`${url}/inspect`)).status).toBe(401)
    expect((await fetch(`${url}/inspect`, { headers: { cookie } })).status).toBe(200)
  })

  it('runs the embedded default with no config at all, printing a line per collector', async () => {
    const agent = start(['--http-port', '0'])
    const url = await agent.url()
    await waitFor(() => agent.logs().some((l) => l.msg === 'agent running'), 'startup')
    for (const kind of ['kubernetes', 'systemd']) expect(agent.logs().some((l) => l.msg.startsWith(`${kind}: `))).toBe(true)
    expect((await fetch(`${url}/healthz`)).status).toBe(200)
    agent.signal('SIGINT')
    expect(await agent.exited).toBe(0)
  })
})
