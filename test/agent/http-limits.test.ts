import { readdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { connect, type Socket } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { execFile } from 'node:child_process'
import { promisify } from 'node:util'
import { afterAll, describe, expect, it } from 'vitest'
import { waitFor } from '../support/wait.js'
import { AgentProcess } from './support.js'

/**
 * Half-open connections (TCP open, headers never finished) must not be able to take the agent's
 * probes down. The agent runs with a small file limit, as a busy node would have it nearly used up;
 * the attacker opens more connections than that limit allows and holds them.
 */

const run = promisify(execFile)
const dir = mkdtempSync(join(tmpdir(), 'tapio-http-limits-'))
const agents: AgentProcess[] = []
const held: Socket[] = []
afterAll(async () => {
  for (const s of held) s.destroy()
  await Promise.all(agents.map((a) => a.stop()))
  rmSync(dir, { recursive: true, force: true })
})

/** File descriptors left to the agent beyond what it holds once started. */
const FD_HEADROOM = 100
const CAP = 64
const ATTACKERS = 300 // more than FD_HEADROOM

function openFds(pid: number): number {
  return readdirSync(`/proc/${pid}/fd`).length
}

describe('HTTP server limits', () => {
  it('keeps /healthz answering while more half-open connections than the file limit are held', { timeout: 60_000 }, async () => {
    const cfg = join(dir, 'limits.yaml')
    writeFileSync(cfg, `http: { port: 0, maxConnections: ${CAP} }\ncollectors:\n  g: { kind: synthetic, rate: 20, batchSize: 1 }\n`)
    const agent = new AgentProcess(['--config', cfg])
    agents.push(agent)
    const url = new URL(await agent.url())
    const pid = agent.child.pid as number
    const baseline = openFds(pid)
    // Start-up opens many files (module loading); the limit is set on the running process.
    await run('prlimit', ['--pid', String(pid), `--nofile=${baseline + FD_HEADROOM}`])

    let closedByAgent = 0
    for (let i = 0; i < ATTACKERS; i++) {
      const s = connect(Number(url.port), url.hostname)
      s.on('error', () => {})
      s.on('close', () => (closedByAgent += 1))
      // Headers started, never finished (slowloris); the socket stays open on our side.
      s.on('connect', () => s.write('GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: '))
      held.push(s)
      if (i % 50 === 49) await new Promise((r) => setTimeout(r, 50))
    }
    await waitFor(() => held.every((s) => !s.connecting), 'every attacker connection to be accepted or refused')
    // While every attacker still holds its socket: the probe gets through, several times.
    for (let i = 0; i < 5; i++) {
      const r = await fetch(`${url.origin}/healthz`)
      expect(r.status).toBe(200)
    }
    const during = openFds(pid)
    expect(during - baseline).toBeLessThanOrEqual(CAP + 2)
    expect(closedByAgent).toBeGreaterThanOrEqual(ATTACKERS - CAP)
    const s = (await (await fetch(`${url.origin}/api/status`)).json()) as { collectors: Record<string, { state: string }> }
    expect(s.collectors.g?.state).toBe('running')
    agent.signal('SIGTERM')
    expect(await agent.exited).toBe(0)
  })
})
