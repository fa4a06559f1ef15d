import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, afterEach, describe, expect, it } from 'vitest'
import { waitFor } from '../support/wait.js'
import { AgentProcess, metric } from './support.js'

/** The processor stage in a real agent process: configured in the file, changed by SIGHUP. */

const dir = mkdtempSync(join(tmpdir(), 'tapio-processors-'))
const agents: AgentProcess[] = []
afterEach(async () => {
  await Promise.all(agents.splice(0).map((a) => a.stop()))
})
afterAll(() => rmSync(dir, { recursive: true, force: true }))

interface Status {
  collectors: Record<string, { state: string; restarts: number }>
  processors: { sources: Record<string, { received: number; delivered: number; dropped: Record<string, number> }> }
}

const collectors = `collectors:
  a: { kind: synthetic, rate: 200, batchSize: 5, type: app.tick }
  b: { kind: synthetic, rate: 200, batchSize: 5, type: noise.tick, severity: debug }
`

describe('processors in the agent', () => {
  it('SIGHUP swaps the chain without restarting a collector; every removed event is counted under its processor', { timeout: 60_000 }, async () => {
    const cfg = join(dir, 'agent.yaml')
    writeFileSync(cfg, `http: { port: 0 }\n${collectors}processors:\n  - { type: filter, name: no-debug, exclude: { severities: [debug] } }\n`)
    const agent = new AgentProcess(['--config', cfg])
    agents.push(agent)
    const url = await agent.url()
    await waitFor(() => agent.events().filter((e) => e.source === 'a').length > 50, 'events of a')
    expect(agent.events().some((e) => e.source === 'b')).toBe(false)

    // Now: b passes, and a is sampled one in 4 and loses a field.
    writeFileSync(
      cfg,
      `http: { port: 0 }\n${collectors}processors:\n  - { type: sample, name: quarter, perType: { app.tick: 4 } }\n  - { type: rename, fields: { data.seq: data.n } }\n`,
    )
    const before = agent.events().length
    agent.signal('SIGHUP')
    const reloads = () => agent.logs().filter((l) => l.msg === 'config reloaded') as unknown as { restarted: string[]; unchanged: string[]; processors: string }[]
    await waitFor(() => reloads().length === 1, 'the reload')
    expect(reloads()[0]).toMatchObject({ restarted: [], unchanged: ['a', 'b'], processors: 'applied' })
    await waitFor(() => agent.events().slice(before).filter((e) => e.source === 'b').length > 50, 'b passing after the reload')

    const after = agent.events().slice(before)
    // The new chain from one batch on: renamed fields, a at a quarter of its rate.
    const firstNew = after.findIndex((e) => 'n' in e.data)
    expect(firstNew).toBeGreaterThanOrEqual(0)
    const fresh = after.slice(firstNew)
    expect(fresh.every((e) => 'n' in e.data && !('seq' in e.data))).toBe(true)
    const aSeqs = fresh.filter((e) => e.source === 'a').map((e) => e.data.n as number)
    const bSeqs = fresh.filter((e) => e.source === 'b').map((e) => e.data.n as number)
    // Not restarted: each collector's own sequence carries on, never starting again from 0.
    expect(aSeqs.every((n, i) => i === 0 || n > (aSeqs[i - 1] as number))).toBe(true)
    expect(bSeqs.every((n, i) => i === 0 || n === (bSeqs[i - 1] as number) + 1)).toBe(true)
    expect(aSeqs.every((n) => n > 0) && bSeqs.every((n) => n > 0)).toBe(true)
    expect(aSeqs.length).toBeLessThan(bSeqs.length / 2)

    const status = (await (await fetch(`${url}/api/status`)).json()) as Status
    expect(status.collectors.a?.restarts).toBe(0)
    expect(status.collectors.b?.restarts).toBe(0)
    const a = status.processors.sources.a
    const b = status.processors.sources.b
    if (!a || !b) throw new Error('no processor counts for a and b')
    // Counts are cumulative across the reload: b's drops by no-debug stay, a's new drops are by quarter.
    expect(b.dropped['no-debug']).toBeGreaterThan(0)
    expect(a.dropped.quarter).toBeGreaterThan(0)
    for (const c of [a, b]) expect(c.received).toBe(c.delivered + Object.values(c.dropped).reduce((x, y) => x + y, 0))

    const text = await (await fetch(`${url}/metrics`)).text()
    expect(metric(text, 'tapio_processor_events_dropped_total', { collector: 'b', processor: 'no-debug' })).toBeGreaterThan(0)
    expect(metric(text, 'tapio_processor_events_dropped_total', { collector: 'a', processor: 'quarter' })).toBeGreaterThan(0)
    expect(metric(text, 'tapio_processor_events_received_total', { collector: 'a' })).toBeGreaterThan(0)

    // A chain that does not load is refused as a whole; the running chain stays.
    writeFileSync(cfg, `http: { port: 0 }\n${collectors}processors:\n  - { type: filter, include: { where: 'data.n >' } }\n`)
    agent.signal('SIGHUP')
    await waitFor(() => agent.logs().some((l) => l.msg.includes('new config rejected')), 'the rejection')
    const rejected = agent.logs().find((l) => l.msg.includes('new config rejected')) as unknown as { problems: string[] }
    expect(rejected.problems).toEqual(['processors[0].include.where: unexpected end at column 9 of "data.n >"'])

    // A route to an output that only a restart would start is refused before anything changes.
    const out = join(dir, 'later.ndjson')
    writeFileSync(
      cfg,
      `http: { port: 0 }\noutputs: { stdout: { enabled: true }, file: { path: ${JSON.stringify(out)} } }\n${collectors}processors:\n  - { type: route, routes: [ { match: {}, outputs: [file] } ] }\n`,
    )
    agent.signal('SIGHUP')
    await waitFor(() => agent.logs().some((l) => l.msg === 'reload failed'), 'the refusal')
    const failed = agent.logs().find((l) => l.msg === 'reload failed') as unknown as { error: string }
    expect(failed.error).toMatch(/processors not applied \(the running outputs are stdout\): processors\[0\]\.routes\[0\]\.outputs\[0\]: expected a configured output \(stdout\), got "file"/)
    const n = agent.events().length
    await waitFor(() => agent.events().length > n + 20, 'events still flowing through the old chain')
    expect(agent.events().slice(n).every((e) => 'n' in e.data)).toBe(true)

    // A correlate processor comes in by SIGHUP like any other; its counters show in status and /metrics.
    writeFileSync(cfg, `http: { port: 0 }\n${collectors}processors:\n  - { type: correlate, name: corr, windowMs: 5000, maxKeys: 100 }\n`)
    agent.signal('SIGHUP')
    await waitFor(() => reloads().length === 2, 'the reload with correlate')
    expect(reloads()[1]).toMatchObject({ restarted: [], processors: 'applied' })
    const withCorr = (await (await fetch(`${url}/api/status`)).json()) as Status & { processors: { processors: Record<string, { type: string; counters: Record<string, number> }> } }
    expect(withCorr.processors.processors.corr).toEqual({ type: 'correlate', counters: { tracked: 0, keys: 0, members: 0, expired: 0, evicted: 0, merged: 0, incidents: 0, updates: 0, emitted: 0 } })
    const m = await (await fetch(`${url}/metrics`)).text()
    expect(metric(m, 'tapio_processor_state', { processor: 'corr', type: 'correlate', counter: 'evicted' })).toBe(0)
    agent.signal('SIGTERM')
    expect(await agent.exited).toBe(0)
  })
})
