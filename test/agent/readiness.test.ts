import { Writable } from 'node:stream'
import { afterEach, describe, expect, it } from 'vitest'
import { Agent } from '../../src/agent/agent.js'
import { ConfigError, loadConfigText } from '../../src/agent/config.js'
import { createLogger } from '../../src/agent/logger.js'
import type { ReadinessReport } from '../../src/agent/readiness.js'
import { builtinKinds, kindMap, validators } from '../../src/agent/registry.js'
import { sleep } from '../support/wait.js'

const kinds = builtinKinds()
const agents: Agent[] = []
afterEach(async () => {
  await Promise.all(agents.splice(0).map((a) => a.stop()))
})

async function startAgent(yaml: string): Promise<{ agent: Agent; url: string }> {
  const sink = new Writable({ write: (_c, _e, cb) => cb() })
  const agent = new Agent(loadConfigText(yaml, 'readiness-test', validators(kinds)), { kinds: kindMap(kinds), logger: createLogger('error', () => {}), stdout: sink })
  agents.push(agent)
  await agent.start()
  return { agent, url: agent.httpUrl as string }
}

async function readyz(url: string): Promise<{ code: number; body: ReadinessReport }> {
  const res = await fetch(`${url}/readyz`)
  return { code: res.status, body: (await res.json()) as ReadinessReport }
}

describe('readiness policy', () => {
  it('a collector restarted within its budget stays ready through its failure cycle (in grace)', async () => {
    const { url } = await startAgent(`http: { port: 0 }
readiness: { graceMs: 60000 }
collectors:
  steady: { kind: synthetic, rate: 100, batchSize: 1 }
  cycling: { kind: synthetic, rate: 0, batchSize: 10, failAfter: 50, policy: { maxRestarts: 1000, backoff: { initialMs: 30, maxMs: 30, jitter: 0 } } }
`)
    // Sample /readyz across many failure cycles: always 200, and at least once in grace.
    const codes: number[] = []
    let sawGrace = false
    const until = Date.now() + 1500
    while (Date.now() < until) {
      const r = await readyz(url)
      codes.push(r.code)
      if (r.body.grace.some((g) => g.name === 'cycling')) sawGrace = true
      await sleep(5)
    }
    expect(new Set(codes)).toEqual(new Set([200]))
    expect(sawGrace).toBe(true)
  })

  it('a collector that stays down beyond the grace period makes the agent unready, naming why', async () => {
    const { url } = await startAgent(`http: { port: 0 }
readiness: { graceMs: 1500 }
collectors:
  steady: { kind: synthetic, rate: 100, batchSize: 1 }
  down: { kind: synthetic, failAtStart: true, faultyStarts: 1, policy: { backoff: { initialMs: 60000, jitter: 0 } } }
`)
    const first = await readyz(url)
    expect(first.code).toBe(200)
    expect(first.body.grace.map((g) => [g.name, g.reason])).toEqual([['down', 'start failed: synthetic: injected start failure']])
    await sleep(1600)
    const later = await readyz(url)
    expect(later.code).toBe(503)
    expect(later.body.failing.map((f) => [f.name, f.status, f.reason])).toEqual([['down', 'recoverable_error', 'start failed: synthetic: injected start failure']])
  })

  it('a collector stopped by an operator does not make the agent unready; a given-up or crashed temporary one does, with its reason', async () => {
    const { agent, url } = await startAgent(`http: { port: 0 }
collectors:
  steady: { kind: synthetic, rate: 100, batchSize: 1 }
  paused: { kind: synthetic, rate: 100, batchSize: 1 }
  broken: { kind: synthetic, failAtStart: true, policy: { maxRestarts: 0 } }
  once: { kind: synthetic, failAtStart: true, policy: { restart: temporary } }
`)
    await agent.manager.stopCollector('paused')
    const r = await readyz(url)
    expect(r.code).toBe(503)
    expect(r.body.ignored).toEqual(['paused'])
    expect(r.body.failing).toEqual([
      {
        name: 'broken',
        status: 'permanent_error',
        state: 'gaveUp',
        reason: 'restart intensity exceeded: 0 restarts within 60000 ms (max 0); last error: start failed: synthetic: injected start failure',
        required: true,
      },
      // Stopped by its policy, but after a crash: not on purpose.
      { name: 'once', status: 'stopped', state: 'stopped', reason: 'stopped after a failure its policy does not restart: start failed: synthetic: injected start failure', required: true },
    ])
    // The same reason in /api/status.
    const status = (await (await fetch(`${url}/api/status`)).json()) as { ready: boolean; collectors: Record<string, { lastError: string | null; state: string }> }
    expect(status.ready).toBe(false)
    expect(status.collectors.broken?.lastError).toMatch(/^restart intensity exceeded: .*injected start failure$/)
    expect(status.collectors.paused?.state).toBe('stopped')
  })

  it('require: [names] counts only those; require: any needs one of them ok', async () => {
    const yaml = (require: string) => `http: { port: 0 }
readiness: { require: ${require} }
collectors:
  steady: { kind: synthetic, rate: 100, batchSize: 1 }
  broken: { kind: synthetic, failAtStart: true, policy: { maxRestarts: 0 } }
`
    const named = await startAgent(yaml('[steady]'))
    const r = await readyz(named.url)
    expect(r.code).toBe(200)
    expect(r.body.failing.map((f) => [f.name, f.required])).toEqual([['broken', false]])
    const any = await startAgent(yaml('any'))
    expect((await readyz(any.url)).code).toBe(200)
    const all = await startAgent(yaml('all'))
    expect((await readyz(all.url)).code).toBe(503)
    const onlyBroken = await startAgent(yaml('[broken]'))
    expect((await readyz(onlyBroken.url)).code).toBe(503)
  })

  it('a collector required by name must be configured', () => {
    const load = () =>
      loadConfigText('readiness: { require: [stedy] }\ncollectors:\n  steady: { kind: synthetic }\n', 'readiness-test', validators(kinds))
    expect(load).toThrow(ConfigError)
    expect(load).toThrow(/readiness\.require\[0\]: expected the name of a configured collector \(steady\), got "stedy"/)
  })
})
