import { type ChildProcessWithoutNullStreams, execFile, spawn } from 'node:child_process'
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { afterAll, afterEach, describe, expect, it } from 'vitest'
import { COMMANDS } from '../../src/agent/cli-help.js'
import { formatEvent } from '../../src/agent/event-format.js'
import { waitFor } from '../support/wait.js'
import { AgentProcess, CLI, ROOT } from './support.js'

const exec = promisify(execFile)
const dir = mkdtempSync(join(tmpdir(), 'tapio-cli-'))
const procs: { stop(): Promise<void> }[] = []
afterEach(async () => {
  await Promise.all(procs.splice(0).map((p) => p.stop()))
})
afterAll(() => rmSync(dir, { recursive: true, force: true }))

function config(name: string, yaml: string): string {
  const p = join(dir, name)
  writeFileSync(p, yaml)
  return p
}

function agent(args: string[]): AgentProcess {
  const a = new AgentProcess(args)
  procs.push(a)
  return a
}

/** Any other CLI process (tail, status): output kept, killed at the end of the test if still running. */
class Cli {
  readonly child: ChildProcessWithoutNullStreams
  stdout = ''
  stderr = ''
  code: number | null | undefined
  readonly exited: Promise<number | null>
  constructor(args: string[]) {
    this.child = spawn(process.execPath, [CLI, ...args], { cwd: ROOT })
    this.child.stdout.on('data', (d: Buffer) => (this.stdout += d.toString()))
    this.child.stderr.on('data', (d: Buffer) => (this.stderr += d.toString()))
    this.exited = new Promise((r) => this.child.on('exit', (c) => r((this.code = c))))
    procs.push(this)
  }
  lines(): string[] {
    return this.stdout.split('\n').filter(Boolean)
  }
  async stop(): Promise<void> {
    if (this.code === undefined) {
      this.child.kill('SIGKILL')
      await this.exited
    }
  }
}

async function freePort(): Promise<number> {
  const srv = createServer()
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', () => r()))
  const port = (srv.address() as { port: number }).port
  await new Promise<void>((r) => srv.close(() => r()))
  return port
}

const STACK = /\n\s+at /
const FAST = 'http: { port: 0 }\ncollectors:\n  fast: { kind: synthetic, rate: 2000, batchSize: 10 }\n'

describe('a good Unix citizen', () => {
  it('`tapio-agent | head -2`: a closed stdout stops the agent gracefully, one line says why, the books still close', async () => {
    const a = agent(['--config', config('pipe.yaml', FAST.replace('rate: 2000', 'rate: 0'))])
    await waitFor(() => a.stdout.split('\n').length > 2, 'two lines on stdout')
    a.child.stdout.destroy()
    expect(await a.exited, a.stderr).toBe(0)
    const logs = a.logs()
    expect(logs.filter((l) => /stdout/.test(l.msg)).map((l) => l.msg), a.stderr).toEqual(['stdout closed by its reader: stopping (drain, then exit)'])
    const stopped = logs.find((l) => l.msg === 'stopped') as unknown as { delivered: number; outputs: { stdout: { written: number; lost: number } } }
    expect(stopped.outputs?.stdout, a.stderr).toBeDefined()
    expect(stopped.outputs.stdout.written + stopped.outputs.stdout.lost, a.stderr).toBe(stopped.delivered)
    expect(a.stderr).not.toMatch(STACK)
    expect(a.stderr).not.toMatch(/EPIPE/)
  })

  it('`tapio-agent tail | head -1` ends quietly with exit 0', async () => {
    const a = agent(['--config', config('fast.yaml', FAST)])
    const url = await a.url()
    const t = new Cli(['tail', '--url', url])
    await waitFor(() => t.stdout.includes('\n'), 'a tailed line')
    t.child.stdout.destroy()
    expect(await t.exited).toBe(0)
    expect(t.stderr).toBe('')
  })

  it('a busy port names --http-port / http.port, without a stack trace', async () => {
    const port = await freePort()
    const first = agent(['--config', config('port.yaml', FAST.replace('port: 0', `port: ${port}`))])
    await first.url()
    const byFlag = agent(['--config', config('other.yaml', FAST), '--http-port', String(port)])
    expect(await byFlag.exited).toBe(1)
    expect(byFlag.stderr).toMatch(new RegExp(`cannot listen on 127\\.0\\.0\\.1:${port}: the address is already in use .*--http-port`))
    const byConfig = agent(['--config', config('port.yaml', FAST.replace('port: 0', `port: ${port}`))])
    expect(await byConfig.exited).toBe(1)
    expect(byConfig.stderr).toMatch(/already in use .*http\.port in the config/)
    for (const p of [byFlag, byConfig]) expect(p.stderr).not.toMatch(STACK)
  })

  it('--output creates its directory, or says why it cannot', async () => {
    const out = join(dir, 'new', 'nested', 'events.ndjson')
    const a = agent(['--config', config('out.yaml', FAST), '--output', out])
    await a.url()
    await waitFor(() => existsSync(out) && readFileSync(out, 'utf8').split('\n').length > 3, 'events in the file')
    const file = join(dir, 'plain-file')
    writeFileSync(file, 'x')
    const bad = agent(['--config', config('out2.yaml', FAST), '--output', join(file, 'events.ndjson')])
    expect(await bad.exited).toBe(2)
    expect(bad.stderr).toMatch(new RegExp(`--output ${file}/events\\.ndjson: cannot create the directory ${file}: .*(EEXIST|ENOTDIR)`))
    const isDir = agent(['--config', config('out3.yaml', FAST), '--output', dir])
    expect(await isDir.exited).toBe(2)
    expect(isDir.stderr).toMatch(/: is a directory; give a file path/)
    for (const p of [bad, isDir]) expect(p.stderr).not.toMatch(STACK)
  })

  it('--version, help per command, and a bad option names the command', async () => {
    const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { version: string }
    expect((await exec(process.execPath, [CLI, '--version'], { cwd: ROOT })).stdout).toBe(`tapio-agent ${pkg.version} (tapio-collector-manager, Node.js ${process.version})\n`)
    const statusHelp = (await exec(process.execPath, [CLI, 'status', '--help'], { cwd: ROOT })).stdout
    expect(statusHelp).toMatch(/^usage: tapio-agent status /)
    expect(statusHelp).toMatch(/--watch/)
    expect(statusHelp).not.toMatch(/consume/)
    expect((await exec(process.execPath, [CLI, 'help', 'tail'], { cwd: ROOT })).stdout).toMatch(/^usage: tapio-agent tail .*--format json\|pretty\|logfmt.*--limit N/)
    expect((await exec(process.execPath, [CLI, 'probe', '--help'], { cwd: ROOT })).stdout).toMatch(/^usage: tapio-agent probe ready\|live/)
    const overview = (await exec(process.execPath, [CLI, '--help'], { cwd: ROOT })).stdout
    for (const c of COMMANDS) expect(overview).toContain(c.usage)
    const bad = await exec(process.execPath, [CLI, 'status', '--sources', 'x'], { cwd: ROOT }).catch((e: { code: number; stderr: string }) => e)
    expect(bad).toMatchObject({ code: 2 })
    expect((bad as { stderr: string }).stderr).toMatch(/^tapio-agent status: Unknown option '--sources'.*\nusage: tapio-agent status /s)
  })

  it('docs/agent.md describes every command', () => {
    const doc = readFileSync(join(ROOT, 'docs/agent.md'), 'utf8')
    for (const c of COMMANDS) {
      expect(doc).toContain(c.usage.replace(/ {2,}/g, ' '))
      expect(doc).toMatch(new RegExp(`^\\| \`${c.name}\``, 'm'))
    }
  })
})

describe('tail and status', () => {
  it('tail: --limit, --format pretty|logfmt, and a warning for an unknown source', async () => {
    const a = agent(['--config', config('fmt.yaml', FAST)])
    const url = await a.url()
    const pretty = new Cli(['tail', '--url', url, '--format', 'pretty', '--limit', '3'])
    expect(await pretty.exited).toBe(0)
    expect(pretty.lines()).toHaveLength(3)
    for (const l of pretty.lines()) expect(l).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z INFO {5}fast synthetic\.tick seq=\d+ generation=1$/)
    const logfmt = new Cli(['tail', '--url', url, '--format', 'logfmt', '-n', '1', '--source', 'fast,nope'])
    expect(await logfmt.exited).toBe(0)
    expect(logfmt.lines()).toHaveLength(1)
    expect(logfmt.lines()[0]).toMatch(/^time=\S+Z type=synthetic\.tick severity=info data\.seq=\d+ data\.generation=1 id=\S+ source=fast$/)
    expect(logfmt.stderr).toBe('tail: warning: the agent runs no collector named "nope" (it runs: fast); nothing will match it\n')
    const bad = new Cli(['tail', '--url', url, '--format', 'xml'])
    expect(await bad.exited).toBe(2)
    expect(bad.stderr).toMatch(/--format: expected json, pretty, logfmt, got "xml"/)
  })

  it('tail and status --watch say when the agent goes away and reconnect with backoff when it is back', async () => {
    const port = await freePort()
    const cfg = config('away.yaml', FAST.replace('port: 0', `port: ${port}`))
    const url = `http://127.0.0.1:${port}`
    let a = agent(['--config', cfg])
    await a.url()
    const t = new Cli(['tail', '--url', url])
    const w = new Cli(['status', '--watch', '--interval', '0.2', '--url', url])
    await waitFor(() => t.lines().length > 5 && /COLLECTOR/.test(w.stdout), 'tail and status --watch to show the agent')
    a.signal('SIGTERM')
    expect(await a.exited).toBe(0)
    await waitFor(() => /tail: connection to .* lost \(.*\); reconnecting in \d+\.\d s \(attempt 1\)/.test(t.stderr), 'tail to say it lost the agent')
    await waitFor(() => /status: cannot reach .*; retrying in \d+\.\d s \(attempt \d+\)/.test(w.stderr), 'status --watch to say it cannot reach the agent')
    const before = t.lines().length
    a = agent(['--config', cfg])
    await a.url()
    await waitFor(() => /tail: reconnected to /.test(t.stderr) && t.lines().length > before + 5, 'tail to reconnect and go on')
    await waitFor(() => /status: .* answers again/.test(w.stderr), 'status --watch to reach the agent again')
    expect(t.code).toBeUndefined()
    expect(t.stderr).not.toMatch(STACK)
  })

  it('tail exits 1 with a clear message when there is no agent at all', async () => {
    const port = await freePort()
    const t = new Cli(['tail', '--url', `http://127.0.0.1:${port}`])
    expect(await t.exited).toBe(1)
    expect(t.stderr).toMatch(/^tapio-agent tail: cannot reach http:\/\/127\.0\.0\.1:\d+\/events: connect ECONNREFUSED/)
  })
})

describe('event formats', () => {
  const e = {
    id: 'a-1',
    timestamp: '1795982878687339621',
    type: 'k8s.pod.updated',
    source: 'kube',
    severity: 'warning',
    entity: { kind: 'Pod', namespace: 'prod', name: 'web-1' },
    data: { phase: 'Running', restarts: 2, labels: { app: 'web app' }, ready: false },
  }
  const json = JSON.stringify(e)
  it('json is the line as received; pretty and logfmt flatten data and quote what needs it', () => {
    expect(formatEvent('json', json)).toBe(json)
    expect(formatEvent('pretty', json)).toBe('2026-11-29T20:07:58.687339621Z WARNING  kube k8s.pod.updated Pod/prod/web-1 phase=Running restarts=2 labels.app="web app" ready=false')
    expect(formatEvent('logfmt', json)).toBe(
      'time=2026-11-29T20:07:58.687339621Z id=a-1 type=k8s.pod.updated source=kube severity=warning entity.kind=Pod entity.namespace=prod entity.name=web-1 data.phase=Running data.restarts=2 data.labels.app="web app" data.ready=false',
    )
  })
})
