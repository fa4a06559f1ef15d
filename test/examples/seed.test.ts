import { spawn } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { Result } from 'effect'
import { describe, expect, it } from 'vitest'
import { validateEvent } from '../../src/index.js'

const root = fileURLToPath(new URL('../..', import.meta.url))

describe('examples/seed', () => {
  it('runs as a process, prints valid NDJSON events from both collectors and exits by itself', async () => {
    const child = spawn(process.execPath, ['dist/examples/seed.js', '--events', '300'], { cwd: root, stdio: ['ignore', 'pipe', 'pipe'] })
    let out = ''
    let err = ''
    child.stdout.on('data', (d: Buffer) => (out += d.toString()))
    child.stderr.on('data', (d: Buffer) => (err += d.toString()))
    const code = await new Promise<number | null>((resolve, reject) => {
      // The process must exit by itself once stop() released every handle; no kill here.
      const guard = setTimeout(() => {
        child.kill('SIGKILL')
        reject(new Error(`seed example did not exit by itself; stderr: ${err}`))
      }, 30_000)
      child.on('exit', (c) => {
        clearTimeout(guard)
        resolve(c)
      })
    })
    expect(code).toBe(0)
    const lines = out.trim().split('\n')
    expect(lines.length).toBe(300)
    const events = lines.map((l) => {
      const r = validateEvent(JSON.parse(l))
      if (Result.isFailure(r)) throw r.failure
      return r.success
    })
    expect(new Set(events.map((e) => e.source))).toEqual(new Set(['alpha', 'beta']))
    expect(new Set(events.map((e) => e.id)).size).toBe(300)
    const summary = JSON.parse(err.trim().split('\n').at(-1) as string) as { delivered: number; totalEvents: number }
    expect(summary.delivered).toBe(300)
    expect(summary.totalEvents).toBeGreaterThanOrEqual(300)
  })
})
