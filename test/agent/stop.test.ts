import { type ChildProcessWithoutNullStreams, spawn } from 'node:child_process'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, afterEach, describe, expect, it } from 'vitest'
import { waitFor } from '../support/wait.js'
import { CLI, ROOT } from './support.js'

/**
 * SIGTERM with stdout into a pipe whose reader is slow, or stalled: every event the agent reports
 * as written reaches the reader, the stop is bounded, and what could not be written is counted as
 * dropped (`shutdown`) in the final statistics. Real agent process, real pipes.
 */

const dir = mkdtempSync(join(tmpdir(), 'tapio-stop-'))
const children: ChildProcessWithoutNullStreams[] = []
afterEach(() => {
  for (const c of children.splice(0)) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL')
})
afterAll(() => rmSync(dir, { recursive: true, force: true }))

interface Stopped {
  delivered: number
  dropped: number
  outputs: { stdout: { written: number; lost: number; dropped: { shutdown: number; write_error: number } } }
}

interface Running {
  readonly child: ChildProcessWithoutNullStreams
  readonly stderr: () => string
  readonly stdout: () => string
  readonly exited: Promise<number | null>
}

/**
 * The agent with stdout paused: the test reads it at its own pace. A 'data' listener is there from
 * the start (Node resumes an unused child stdout when the child exits, losing what it held).
 */
function startAgent(name: string, yaml: string): Running {
  const p = join(dir, name)
  writeFileSync(p, yaml)
  const child = spawn(process.execPath, [CLI, '--config', p], { cwd: ROOT })
  children.push(child)
  let stdout = ''
  let stderr = ''
  child.stdout.on('data', (d: Buffer) => (stdout += d.toString()))
  child.stdout.pause()
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()))
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)))
  return { child, stderr: () => stderr, stdout: () => stdout, exited }
}

function stoppedLine(stderr: string): Stopped {
  const line = stderr.split('\n').find((l) => l.includes('"msg":"stopped"'))
  if (!line) throw new Error(`no "stopped" line in:\n${stderr}`)
  return JSON.parse(line) as Stopped
}

/** Complete NDJSON lines (a line cut by the exit has no newline and does not count). */
function completeLines(text: string): number {
  return text.split('\n').length - 1
}

/** Everything the agent wrote, once its stdout ends. */
async function readRest(a: Running): Promise<string> {
  const closed = new Promise<void>((resolve) => a.child.stdout.once('close', () => resolve()))
  a.child.stdout.resume()
  if (!a.child.stdout.closed) await closed
  return a.stdout()
}

describe('a bounded stop that flushes stdout', () => {
  it('a slow reader gets every event the agent counts as written, and that is all of them', { timeout: 60_000 }, async () => {
    const total = 3000
    const a = startAgent(
      'slow.yaml',
      `http: { port: 0 }
supervisor: { stopTimeoutMs: 30000 }
outputs: { stdout: { enabled: true }, flushTimeoutMs: 30000 }
collectors:
  gen: { kind: synthetic, rate: 0, batchSize: 100, total: ${total}, type: synthetic.padded.${'x'.repeat(150)}, policy: { restart: temporary } }
`,
    )
    // A slow reader: a few milliseconds of reading every 100 ms; the ~750 KiB of events take
    // seconds after SIGTERM.
    const reader = setInterval(() => {
      a.child.stdout.resume()
      setTimeout(() => a.child.stdout.pause(), 2)
    }, 100)
    try {
      await waitFor(() => /"msg":"agent running"/.test(a.stderr()), 'the agent to run')
      await waitFor(() => completeLines(a.stdout()) > 50, 'the first events read')
      a.child.kill('SIGTERM')
      const code = await a.exited
      expect(code).toBe(0)
    } finally {
      clearInterval(reader)
    }
    const text = await readRest(a)
    const stopped = stoppedLine(a.stderr())
    console.log(JSON.stringify({ slowReader: { read: completeLines(text), delivered: stopped.delivered, written: stopped.outputs.stdout.written, lost: stopped.outputs.stdout.lost } }))
    expect(stopped.delivered).toBe(total)
    expect(stopped.outputs.stdout).toEqual({ written: total, lost: 0, dropped: { shutdown: 0, write_error: 0 } })
    expect(completeLines(text)).toBe(total)
  })

  it('a stalled reader: the stop ends on its own, and what stdout did not take is counted as shutdown', { timeout: 60_000 }, async () => {
    const a = startAgent(
      'stalled.yaml',
      `http: { port: 0 }
supervisor: { stopTimeoutMs: 1000 }
outputs: { stdout: { enabled: true }, flushTimeoutMs: 1000 }
collectors:
  gen: { kind: synthetic, rate: 0, batchSize: 100 }
`,
    )
    await waitFor(() => /"msg":"agent running"/.test(a.stderr()), 'the agent to run')
    // Nobody reads stdout: the pipe and the agent's stream buffer fill, the pump waits.
    await new Promise((r) => setTimeout(r, 500))
    a.child.kill('SIGTERM')
    const code = await Promise.race([a.exited, new Promise<'hung'>((r) => setTimeout(() => r('hung'), 30_000))])
    expect(code).toBe(0)
    const text = await readRest(a)
    const stopped = stoppedLine(a.stderr())
    const out = stopped.outputs.stdout
    const read = completeLines(text)
    console.log(JSON.stringify({ stalledReader: { read, delivered: stopped.delivered, written: out.written, shutdown: out.dropped.shutdown, bufferDropped: stopped.dropped } }))
    // Books closed per output: everything delivered to stdout was written or counted.
    expect(out.written + out.dropped.shutdown + out.dropped.write_error).toBe(stopped.delivered)
    expect(out.dropped.shutdown).toBeGreaterThan(0)
    // The reader has every event counted as written; at most those of the one write the pipe took
    // in part besides (counted as shutdown, conservatively).
    expect(read).toBeGreaterThanOrEqual(out.written)
    expect(read).toBeLessThanOrEqual(out.written + out.dropped.shutdown)
  })
})
