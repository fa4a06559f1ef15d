import { spawn } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { describe, expect, it } from 'vitest'

const root = fileURLToPath(new URL('../..', import.meta.url))

/** Runs a built example as its own process (it imports the package by name); it must exit by itself. */
async function runExample(name: string, args: string[] = [], timeoutMs = 60_000): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const child = spawn(process.execPath, [`dist/examples/${name}.js`, ...args], { cwd: root, stdio: ['ignore', 'pipe', 'pipe'] })
  let stdout = ''
  let stderr = ''
  child.stdout.on('data', (d: Buffer) => (stdout += d.toString()))
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()))
  const code = await new Promise<number | null>((resolve, reject) => {
    const guard = setTimeout(() => {
      child.kill('SIGKILL')
      reject(new Error(`examples/${name} did not exit by itself within ${timeoutMs} ms; stderr: ${stderr}`))
    }, timeoutMs)
    child.on('exit', (c) => {
      clearTimeout(guard)
      resolve(c)
    })
  })
  return { code, stdout, stderr }
}

const lastJson = <T>(text: string): T => JSON.parse(text.trim().split('\n').at(-1) as string) as T

describe('examples', () => {
  it('downstream: an Effect pipeline on mgr.stream sees exactly the events it asked for, from every source, with the alerts', async () => {
    const r = await runExample('downstream', ['--events', '3000'])
    expect(r.code, r.stderr).toBe(0)
    const windows = r.stdout.trim().split('\n').map((l) => JSON.parse(l) as { events: number; bySourceAndType: Record<string, number>; alerts: number })
    const summary = lastJson<{ events: number; windows: number; bySource: Record<string, number>; alerts: number; statistics: { totalEvents: number; deliveredEvents: number } }>(r.stderr)
    expect(summary.events).toBe(3000)
    expect(windows.reduce((n, w) => n + w.events, 0)).toBe(3000)
    expect(summary.windows).toBe(windows.length)
    for (const w of windows) expect(w.events).toBeLessThanOrEqual(1000)
    expect(Object.keys(summary.bySource).sort()).toEqual(['db', 'heartbeat', 'web'])
    // Only the heartbeat sends warnings (every fifth beat).
    expect(summary.alerts).toBe(windows.reduce((n, w) => n + w.alerts, 0))
    expect(summary.alerts).toBeGreaterThan(0)
    expect(summary.alerts).toBeLessThanOrEqual(Math.ceil((summary.bySource.heartbeat ?? 0) / 5))
    // The pipeline took 3000; the manager may have handed over more in the last batch.
    expect(summary.statistics.deliveredEvents).toBeGreaterThanOrEqual(3000)
  })

  it('performance: reports managed and baseline throughput from the same run, and conserved accounting under overload', async () => {
    const r = await runExample('performance', ['--seconds', '1', '--collectors', '3'])
    expect(r.code, r.stderr).toBe(0)
    const out = lastJson<{
      collectors: number
      baseline: { eventsPerSec: number }
      managed: { eventsPerSec: number; latencyMs: { p50: number; p99: number }; ratioToBaseline: number }
      overload: { accepted: number; delivered: number; dropped: number; droppedByReason: Record<string, number>; conserved: boolean }
    }>(r.stdout)
    expect(out.collectors).toBe(3)
    expect(out.baseline.eventsPerSec).toBeGreaterThan(0)
    expect(out.managed.eventsPerSec).toBeGreaterThan(0)
    expect(out.managed.ratioToBaseline).toBeCloseTo(out.managed.eventsPerSec / out.baseline.eventsPerSec, 2)
    expect(out.managed.latencyMs.p99).toBeGreaterThanOrEqual(out.managed.latencyMs.p50)
    expect(out.overload.conserved).toBe(true)
    // A consumer sleeping 20 ms per batch cannot keep up with unthrottled sources: drops, counted.
    expect(out.overload.dropped).toBeGreaterThan(0)
    expect(out.overload.droppedByReason.buffer_full).toBe(out.overload.dropped)
    expect(out.overload.accepted).toBeGreaterThanOrEqual(out.overload.delivered + out.overload.dropped)
  })

  it('error-handling: start failure, crash and restart, a finite source, give-up and a manual restart', async () => {
    const r = await runExample('error-handling')
    expect(r.code, r.stderr).toBe(0)
    const byPattern = Object.fromEntries(
      r.stdout
        .trim()
        .split('\n')
        .map((l) => JSON.parse(l) as { pattern: string } & Record<string, unknown>)
        .map((p) => [p.pattern, p]),
    )
    expect(byPattern['start-failure']).toMatchObject({
      failed: ['misconfigured'],
      reason: expect.stringContaining('injected start failure'),
      healthy: 'running',
      misconfigured: 'permanent_error',
    })
    const crash = byPattern['crash-restart'] as unknown as { failures: number; restartDelaysMs: number[]; recovered: number }
    expect(crash.recovered).toBeGreaterThanOrEqual(2)
    expect(crash.failures).toBeGreaterThanOrEqual(2)
    // Exponential backoff without jitter: 50 ms, then 100 ms, capped at 200 ms.
    expect(crash.restartDelaysMs.slice(0, 3)).toEqual([50, 100, 200].slice(0, crash.restartDelaysMs.length))
    expect(byPattern['finite-source']).toEqual({ pattern: 'finite-source', normalExits: 1, restarts: 0, state: 'stopped', delivered: 300 })
    expect(byPattern['give-up']).toMatchObject({ starts: 4, gaveUp: 'permanent_error', steadyMeanwhile: 'ok', aggregate: 'permanent_error', afterManualRestart: 'ok' })
  })
})
