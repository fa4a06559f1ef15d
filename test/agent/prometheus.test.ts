import { type ChildProcess, spawn } from 'node:child_process'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, afterEach, describe, expect, it } from 'vitest'
import { waitFor } from '../support/wait.js'
import { AgentProcess, metric } from './support.js'

const dir = mkdtempSync(join(tmpdir(), 'tapio-prometheus-'))
const agents: AgentProcess[] = []
afterEach(async () => {
  await Promise.all(agents.splice(0).map((a) => a.stop()))
})
afterAll(() => rmSync(dir, { recursive: true, force: true }))

function startAgent(name: string, yaml: string): AgentProcess {
  const path = join(dir, name)
  writeFileSync(path, yaml)
  const a = new AgentProcess(['--config', path])
  agents.push(a)
  return a
}

/** `promtool check metrics` (Debian's prometheus package) on an exposition: exit code and findings. */
function promtool(text: string): Promise<{ code: number | null; out: string }> {
  return new Promise((resolve, reject) => {
    const p = spawn('promtool', ['check', 'metrics'])
    let out = ''
    p.stdout.on('data', (d: Buffer) => (out += d.toString()))
    p.stderr.on('data', (d: Buffer) => (out += d.toString()))
    p.on('error', reject)
    p.on('close', (code) => resolve({ code, out }))
    p.stdin.end(text)
  })
}

/**
 * prom-client's default metrics keep their standard names (stock Node.js dashboards use them);
 * three of them are gauges named `*_total`, which promtool's linter flags. Nothing else may be.
 */
const STANDARD_NODEJS_NAMES = new Set(['nodejs_active_handles_total', 'nodejs_active_requests_total', 'nodejs_active_resources_total'])

async function freePort(): Promise<number> {
  const srv = createServer()
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', () => r()))
  const port = (srv.address() as { port: number }).port
  await new Promise<void>((r) => srv.close(() => r()))
  return port
}

const CONFIG = `http: { port: 0 }
collectors:
  finite: { kind: synthetic, rate: 0, batchSize: 25, total: 500, policy: { restart: transient } }
  flaky: { kind: synthetic, rate: 0, batchSize: 10, failAfter: 30, policy: { maxRestarts: 1, backoff: { initialMs: 10, jitter: 0 } } }
outputs: { stdout: { enabled: true } }
`

describe('Prometheus', () => {
  it('promtool check metrics accepts a live agent /metrics (and flags a broken exposition: the check can fail)', async () => {
    // A real kernel collector too: its statistics() (kernel drops by record kind, malformed records,
    // gauges) are exported generically and must lint clean as well.
    const agent = startAgent('promtool.yaml', `${CONFIG.replace('outputs:', '  kernel: { kind: ebpf, enabled: true, programs: { exec: true, exit: true, tcp: false, oom: false } }\noutputs:')}`)
    const url = await agent.url()
    await waitFor(() => agent.logs().some((l) => l.event === 'collector.gave_up'), 'flaky to be given up on')
    await waitFor(() => agent.logs().some((l) => l.msg === 'agent running'), 'the start-up summary')
    expect(agent.logs().find((l) => l.msg === 'kernel: running'), agent.stderr).toBeDefined()
    const text = await (await fetch(`${url}/metrics`)).text()
    const r = await promtool(text)
    const findings = r.out.split('\n').filter(Boolean)
    // 0: clean; 3: lint findings only (1 would be a parse error).
    expect([0, 3]).toContain(r.code)
    expect(findings.filter((f) => !STANDARD_NODEJS_NAMES.has(f.split(' ')[0] as string))).toEqual([])

    // What the exposition must hold: build info, standard process/Node.js names, collectors' counters.
    expect(metric(text, 'tapio_build_info', { version: '0.1.0', nodejs_version: process.version })).toBe(1)
    expect(text).toMatch(/^process_resident_memory_bytes \d+/m)
    expect(text).toMatch(/^nodejs_heap_size_used_bytes \d+/m)
    expect(text).not.toMatch(/^tapio_process_|^tapio_nodejs_/m)
    expect(metric(text, 'tapio_collector_restarts_total', { collector: 'flaky' })).toBe(1)
    expect(metric(text, 'tapio_collector_counted_total', { collector: 'kernel', counter: 'droppedKernel.exec' })).toBeGreaterThanOrEqual(0)
    expect(metric(text, 'tapio_collector_counted_total', { collector: 'kernel', counter: 'malformedNative' })).toBe(0)
    expect(metric(text, 'tapio_collector_events_dropped_total', { collector: 'kernel', reason: 'kernel_ring_full' })).toBeGreaterThanOrEqual(0)
    expect(metric(text, 'tapio_collector_value', { collector: 'kernel', gauge: 'programsAttached' })).toBeGreaterThan(0)
    expect(metric(text, 'tapio_config_last_reload_successful')).toBe(1)
    expect(metric(text, 'tapio_output_bytes_total', { output: 'stdout' })).toBeGreaterThan(0)

    const broken = await promtool('# HELP requests Requests.\n# TYPE requests counter\nrequests 1\n')
    expect(broken.code).toBe(3)
    expect(broken.out).toMatch(/counter metrics should have "_total" suffix/)
    const garbage = await promtool('this is { not an exposition\n')
    expect(garbage.code).toBe(1)
  })

  it('a real Prometheus server scrapes the agent; its HTTP API returns the delivered counter', async () => {
    const agent = startAgent('scraped.yaml', CONFIG)
    const url = await agent.url()
    await waitFor(() => agent.events().filter((e) => e.source === 'finite').length === 500, 'the 500 events of finite')
    await waitFor(() => agent.logs().some((l) => l.event === 'collector.gave_up'), 'flaky to be given up on (nothing more is written)')
    // Every byte counted reaches the reader (it may still be in the pipe when /metrics answers).
    const bytes = metric(await (await fetch(`${url}/metrics`)).text(), 'tapio_output_bytes_total', { output: 'stdout' }) as number
    expect(bytes).toBeGreaterThan(0)
    await waitFor(() => Buffer.byteLength(agent.stdout) >= bytes, 'the counted bytes on stdout')
    expect(Buffer.byteLength(agent.stdout)).toBe(bytes)
    const port = await freePort()
    const data = join(dir, 'tsdb')
    const promConfig = join(dir, 'prometheus.yml')
    writeFileSync(
      promConfig,
      `global: { scrape_interval: 1s, evaluation_interval: 1s }
scrape_configs:
  - job_name: tapio
    static_configs: [{ targets: ['${new URL(url).host}'] }]
`,
    )
    let prom: ChildProcess | undefined
    let log = ''
    try {
      prom = spawn('prometheus', [`--config.file=${promConfig}`, `--storage.tsdb.path=${data}`, `--web.listen-address=127.0.0.1:${port}`], { stdio: ['ignore', 'pipe', 'pipe'] })
      prom.stderr?.on('data', (d: Buffer) => (log += d.toString()))
      prom.stdout?.on('data', (d: Buffer) => (log += d.toString()))
      type QueryResult = { data?: { result?: { value: [number, string] }[] } }
      const query = async (q: string): Promise<string[]> => {
        const body = (await (await fetch(`http://127.0.0.1:${port}/api/v1/query?query=${encodeURIComponent(q)}`)).json()) as QueryResult
        return (body.data?.result ?? []).map((r) => r.value[1])
      }
      let value: string | undefined
      const deadline = Date.now() + 60_000
      while (value === undefined) {
        if (Date.now() > deadline) throw new Error(`Prometheus did not scrape the agent within 60 s; its log: ${log.slice(-1000)}`)
        value = (await query('tapio_events_delivered_total{collector="finite",job="tapio"}').catch(() => []))[0]
        if (value === undefined) await new Promise((r) => setTimeout(r, 250))
      }
      expect(value).toBe('500')
      expect(await query('up{job="tapio"}')).toEqual(['1'])
    } finally {
      if (prom && prom.exitCode === null) {
        const exited = new Promise((r) => prom?.once('exit', r))
        prom.kill('SIGTERM')
        const timer = setTimeout(() => prom?.kill('SIGKILL'), 5000)
        await exited
        clearTimeout(timer)
      }
    }
  })
})
