import { execFile } from 'node:child_process'
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { PassThrough } from 'node:stream'
import { promisify } from 'node:util'
import { afterAll, afterEach, describe, expect, it } from 'vitest'
import { createLogger, stderrWriter } from '../../src/agent/logger.js'
import { RotatingFileOutput, StreamOutput } from '../../src/agent/outputs.js'
import { makeEvent } from '../../src/index.js'
import { waitFor } from '../support/wait.js'
import { AgentProcess, CLI, metric, ROOT } from './support.js'

/** Outputs and the logger under ordinary faults: a full disk, a missing directory, closed pipes. */

const run = promisify(execFile)
const dir = mkdtempSync(join(tmpdir(), 'tapio-output-faults-'))
const agents: AgentProcess[] = []
afterEach(async () => {
  await Promise.all(agents.splice(0).map((a) => a.stop()))
})
afterAll(() => rmSync(dir, { recursive: true, force: true }))

function events(n: number) {
  return Array.from({ length: n }, (_, i) => makeEvent('t', 'synthetic.tick', { seq: i, generation: 1 }))
}

describe('file output faults', () => {
  it('a full disk (ENOSPC): reported in /readyz, /api/status and /metrics, counted, retried; recovers when the disk does; never a crash', { timeout: 60_000 }, async () => {
    const out = join(dir, 'full')
    mkdirSync(out)
    const path = join(out, 'events.ndjson')
    // Every write to /dev/full fails with ENOSPC: a disk that filled up.
    symlinkSync('/dev/full', path)
    const cfg = join(dir, 'full.yaml')
    writeFileSync(cfg, `http: { port: 0 }\ncollectors:\n  gen: { kind: synthetic, rate: 200, batchSize: 10 }\noutputs:\n  file: { path: ${JSON.stringify(path)} }\n`)
    const agent = new AgentProcess(['--config', cfg])
    agents.push(agent)
    const url = await agent.url()

    await waitFor(() => /ENOSPC/.test(agent.stderr), 'the write error logged')
    const ready = await fetch(`${url}/readyz`)
    expect(ready.status).toBe(503)
    expect(await ready.text()).toMatch(/output:file[\s\S]*ENOSPC|ENOSPC[\s\S]*file/)
    const status = (await (await fetch(`${url}/api/status`)).json()) as { outputs: Record<string, { ready: boolean; lastError: string }> }
    expect(status.outputs.file?.ready).toBe(false)
    expect(status.outputs.file?.lastError).toMatch(/ENOSPC/)
    await waitFor(() => agent.logs().filter((l) => /ENOSPC/.test(l.msg)).length >= 2, 'a retry (a second attempt logged)')
    const m1 = await (await fetch(`${url}/metrics`)).text()
    const dropped1 = metric(m1, 'tapio_output_dropped_events_total', { output: 'file', reason: 'write_error' }) ?? 0
    expect(dropped1).toBeGreaterThan(0)
    expect((await fetch(`${url}/healthz`)).status).toBe(200)

    // The disk has room again: the retry reopens the file and events land in it.
    rmSync(path)
    await waitFor(() => existsSync(path) && readFileSync(path, 'utf8').split('\n').length > 20, 'events written after recovery', 40_000)
    const status2 = (await (await fetch(`${url}/api/status`)).json()) as { outputs: Record<string, { ready: boolean; lastError: string | null }> }
    expect(status2.outputs.file).toMatchObject({ ready: true, lastError: null })
    expect((await fetch(`${url}/readyz`)).status).toBe(200)

    agent.signal('SIGTERM')
    expect(await agent.exited).toBe(0)
    const stopped = agent.logs().find((l) => l.msg === 'stopped') as unknown as { delivered: number; outputs: { file: { written: number; lost: number; dropped: { write_error: number } } } }
    const file = stopped.outputs.file
    console.log(JSON.stringify({ fullDisk: { delivered: stopped.delivered, written: file.written, writeError: file.dropped.write_error } }))
    expect(file.written + file.lost).toBe(stopped.delivered)
    expect(file.dropped.write_error).toBeGreaterThanOrEqual(dropped1)
    expect(readFileSync(path, 'utf8').split('\n').length - 1).toBe(file.written)
    expect(agent.stderr).not.toMatch(/\n\s+at /)
  })

  it('a directory that cannot be created: the output reports it and counts, the process lives', async () => {
    const blocker = join(dir, 'not-a-dir')
    writeFileSync(blocker, 'x')
    const errors: string[] = []
    const out = new RotatingFileOutput(join(blocker, 'sub', 'events.ndjson'), 1_000_000, 2, (m) => errors.push(m))
    for (let i = 0; i < 3; i++) await out.write(events(10))
    expect(out.health().ready).toBe(false)
    expect(out.health().lastError).toMatch(/ENOTDIR|EEXIST/)
    expect(out.dropped().write_error).toBe(30)
    expect(out.written).toBe(0)
    expect(errors.length).toBeGreaterThan(0)
    await out.close(100)
  })

  it('check-config refuses a file path whose directory cannot be created, accepts one that can be', async () => {
    const blocker = join(dir, 'blocker-file')
    writeFileSync(blocker, 'x')
    const locked = join(dir, 'locked')
    mkdirSync(locked)
    chmodSync(locked, 0o500)
    const check = async (path: string) => {
      const cfg = join(dir, `check-${Math.random().toString(36).slice(2)}.yaml`)
      writeFileSync(cfg, `collectors: {}\noutputs:\n  file: { path: ${JSON.stringify(path)} }\n`)
      return run(process.execPath, [CLI, 'check-config', '--config', cfg], { cwd: ROOT }).then(
        (r) => ({ code: 0, out: r.stdout + r.stderr }),
        (e: { code: number; stdout: string; stderr: string }) => ({ code: e.code, out: e.stdout + e.stderr }),
      )
    }
    const bad = await check(join(blocker, 'sub', 'events.ndjson'))
    expect(bad.code).toBe(2)
    expect(bad.out).toMatch(/outputs\.file\.path: cannot create the directory of .*: .*blocker-file is not a directory/)
    expect((await check(join(dir, 'new', 'deeper', 'events.ndjson'))).code).toBe(0)
    expect(existsSync(join(dir, 'new'))).toBe(false)
    // root may write anywhere: the permission case only means something for other users.
    if (process.getuid?.() !== 0) expect((await check(join(locked, 'events.ndjson'))).code).toBe(2)
  })
})

describe('closed pipes', () => {
  it('stdout closed by its reader (EPIPE): the output counts what it could not write, and nothing throws', async () => {
    const stream = new PassThrough({ highWaterMark: 16 })
    const out = new StreamOutput('stdout', stream)
    // Nobody reads: the write waits for a drain that never comes, until the pipe breaks.
    const waiting = out.write(events(5))
    expect(waiting).toBeInstanceOf(Promise)
    stream.destroy(Object.assign(new Error('write EPIPE'), { code: 'EPIPE' }))
    await waiting
    expect(out.write(events(7))).toBeUndefined()
    expect(out.health()).toMatchObject({ ready: false, lastError: 'write EPIPE' })
    expect(out.written + out.dropped().write_error).toBe(12)
    expect(out.dropped().write_error).toBeGreaterThanOrEqual(7)
    await out.close(100)
  })

  it('stderr closed: the logger stops writing instead of crashing the process', async () => {
    const stream = new PassThrough()
    const write = stderrWriter(stream)
    const log = createLogger('info', write)
    log.info('before')
    stream.destroy(Object.assign(new Error('write EPIPE'), { code: 'EPIPE' }))
    await new Promise((r) => setImmediate(r))
    expect(() => log.error('after', { n: 1 })).not.toThrow()
  })

  it('a real agent whose stderr reader went away keeps running and serving', { timeout: 30_000 }, async () => {
    const cfg = join(dir, 'stderr.yaml')
    writeFileSync(cfg, 'http: { port: 0, allowControl: true }\nlog: { level: debug }\ncollectors:\n  gen: { kind: synthetic, rate: 100, batchSize: 1 }\n')
    const agent = new AgentProcess(['--config', cfg])
    agents.push(agent)
    const url = await agent.url()
    agent.child.stderr.destroy()
    await new Promise((r) => setTimeout(r, 200))
    // Each restart logs lines (control action, lifecycle): each write would be an EPIPE.
    for (let i = 0; i < 3; i++) expect((await fetch(`${url}/api/collectors/gen/restart`, { method: 'POST', headers: { origin: url } })).status).toBe(200)
    for (let i = 0; i < 5; i++) expect((await fetch(`${url}/api/status`)).status).toBe(200)
    const before = agent.events().length
    await waitFor(() => agent.events().length > before + 50, 'events still flowing')
    expect(agent.exitCode).toBeUndefined()
  })
})
