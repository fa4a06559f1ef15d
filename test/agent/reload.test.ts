import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, afterEach, describe, expect, it } from 'vitest'
import { sleep, waitFor } from '../support/wait.js'
import { AgentProcess } from './support.js'

/** SIGHUP reloads on a real agent process: serialised, the file read when each reload runs. */

const dir = mkdtempSync(join(tmpdir(), 'tapio-reload-'))
const agents: AgentProcess[] = []
afterEach(async () => {
  await Promise.all(agents.splice(0).map((a) => a.stop()))
})
afterAll(() => rmSync(dir, { recursive: true, force: true }))

interface Status {
  collectors: Record<string, { state: string }>
}

async function status(url: string): Promise<Status> {
  return (await (await fetch(`${url}/api/status`)).json()) as Status
}

describe('overlapping SIGHUPs', () => {
  it('end with the file as it is last: a collector removed while the previous reload hangs in its stop stays removed, and can come back', { timeout: 60_000 }, async () => {
    const cfg = join(dir, 'race.yaml')
    const steady = '  steady: { kind: synthetic, rate: 50, batchSize: 1 }\n'
    // g2 hangs in stop() until its stop timeout forces it: the first reload is slow.
    const g2 = (rate: number) => `  g2: { kind: synthetic, rate: ${rate}, batchSize: 1, hangInStop: true, policy: { stopTimeoutMs: 1500 } }\n`
    writeFileSync(cfg, `http: { port: 0 }\ncollectors:\n${steady}${g2(10)}`)
    const agent = new AgentProcess(['--config', cfg])
    agents.push(agent)
    const url = await agent.url()
    await waitFor(() => agent.events().some((e) => e.source === 'g2'), 'g2 running')

    // The race of the report: change g2, SIGHUP; 0.3 s later remove it, SIGHUP again.
    writeFileSync(cfg, `http: { port: 0 }\ncollectors:\n${steady}${g2(11)}`)
    agent.signal('SIGHUP')
    await sleep(300)
    writeFileSync(cfg, `http: { port: 0 }\ncollectors:\n${steady}`)
    agent.signal('SIGHUP')

    const reloads = () => agent.logs().filter((l) => l.msg === 'config reloaded') as unknown as { removed: string[]; restarted: string[] }[]
    await waitFor(() => reloads().some((r) => r.removed.includes('g2')), 'a reload that removes g2', 30_000)
    expect(Object.keys((await status(url)).collectors)).toEqual(['steady'])
    // No g2 event after the removal has been applied.
    const seen = agent.events().filter((e) => e.source === 'g2').length
    await sleep(500)
    expect(agent.events().filter((e) => e.source === 'g2').length).toBe(seen)

    // Putting it back works (today: `collector "g2" is already registered`).
    writeFileSync(cfg, `http: { port: 0 }\ncollectors:\n${steady}${g2(12)}`)
    agent.signal('SIGHUP')
    await waitFor(() => reloads().some((r) => (r as unknown as { added: string[] }).added.includes('g2')), 'a reload that adds g2 back', 30_000)
    await waitFor(() => agent.events().filter((e) => e.source === 'g2').length > seen + 3, 'g2 emitting again')
    expect(agent.stderr).not.toMatch(/already registered|reload failed/)
    expect((await status(url)).collectors.g2?.state).toBe('running')
    agent.signal('SIGTERM')
    expect(await agent.exited).toBe(0)
  })

  it('parses the file off the event loop: probes keep answering while a huge config is read', { timeout: 90_000 }, async () => {
    const cfg = join(dir, 'huge.yaml')
    writeFileSync(cfg, 'http: { port: 0 }\ncollectors:\n  steady: { kind: synthetic, rate: 50, batchSize: 1 }\n')
    const agent = new AgentProcess(['--config', cfg])
    agents.push(agent)
    const url = await agent.url()
    // 100,000 keys under an unknown key: seconds of parsing, then a rejection naming the key.
    const lines = ['http: { port: 0 }', 'collectors:', '  steady: { kind: synthetic, rate: 50, batchSize: 1, extra: {} }', 'bulk:']
    for (let i = 0; i < 100_000; i++) lines.push(`  k${i}: ${i}`)
    writeFileSync(cfg, `${lines.join('\n')}\n`)
    const rejected = () => agent.logs().some((l) => l.msg.includes('new config rejected'))
    const sent = Date.now()
    agent.signal('SIGHUP')
    let answered = 0
    while (!rejected()) {
      const r = await fetch(`${url}/healthz`, { signal: AbortSignal.timeout(60_000) })
      if (r.status === 200 && !rejected()) answered += 1
      await sleep(20)
    }
    const window = Date.now() - sent
    const problems = (agent.logs().find((l) => l.msg.includes('new config rejected')) as unknown as { problems: string[] }).problems
    expect(problems.join('\n')).toMatch(/bulk: unknown key/)
    // The parse took long enough to matter, and the event loop served probes all along.
    console.log(JSON.stringify({ reloadWindowMs: window, healthzAnswered: answered }))
    expect(window).toBeGreaterThan(500)
    expect(answered).toBeGreaterThanOrEqual(5)
    expect(agent.events().filter((e) => e.source === 'steady').length).toBeGreaterThan(0)
  })
})
