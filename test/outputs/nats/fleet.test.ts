import { spawn, spawnSync } from 'node:child_process'
import { afterAll, describe, expect, it } from 'vitest'
import { ROOT } from './agents.js'

interface FleetRun {
  nodes: number
  syntheticExpected: number
  syntheticSeen: number
  lost: number
  duplicated: number
  unflaggedDuplicates: number
  auditEvents: number
  auditDuplicated: number
  killed: string | null
}

/** The fleet harness (bench/fleet.ts) at two nodes: network namespaces, veths, a 3-node cluster. */
describe('a simulated fleet of two agents in their own network namespaces, stream leader killed mid-run', () => {
  let child: ReturnType<typeof spawn> | undefined
  afterAll(async () => {
    // SIGTERM lets the harness kill its processes and delete its namespaces itself.
    if (child && child.exitCode === null) {
      const gone = new Promise((r) => child?.once('exit', r))
      child.kill('SIGTERM')
      await gone
    }
  })

  it('no synthetic event is lost, the stream holds each event once, readers see copies only as flagged redeliveries, nothing is left behind', async () => {
    const c = spawn(process.execPath, ['dist/bench/fleet.js', '--nodes', '2', '--readers', '2', '--rate', '100', '--seconds', '12', '--baseline-seconds', '1', '--timeout-s', '150'], {
      cwd: ROOT,
      stdio: ['ignore', 'pipe', 'pipe'],
    })
    child = c
    let out = ''
    let err = ''
    c.stdout?.on('data', (d: Buffer) => (out += d.toString()))
    c.stderr?.on('data', (d: Buffer) => (err += d.toString()))
    const code = await new Promise<number | null>((r) => c.once('exit', r))
    expect(code, err).toBe(0)
    const summary = JSON.parse(out.trim().split('\n').at(-1) ?? '') as { runs: FleetRun[]; lost: number; duplicatedInStream: number; unflaggedDuplicates: number }
    const [run] = summary.runs
    console.log(`fleet N=2 kill run: ${JSON.stringify(run)}`)
    expect(run?.nodes).toBe(2)
    expect(run?.killed).toMatch(/^n[123]$/)
    expect(run?.syntheticExpected).toBe(2 * 100 * 12)
    expect(run?.syntheticSeen).toBe(run?.syntheticExpected)
    expect(run?.lost).toBe(0)
    // Readers get each event at least once: a copy handed out twice is only allowed as JetStream's
    // flagged redelivery of a message whose ack died with the killed server.
    expect(run?.unflaggedDuplicates).toBe(0)
    expect(run?.auditDuplicated).toBe(0)
    // The stream holds the synthetic events plus the cni collectors' link/address events.
    expect(run?.auditEvents).toBeGreaterThan(run?.syntheticExpected ?? Number.POSITIVE_INFINITY)
    expect(summary.lost).toBe(0)
    expect(summary.duplicatedInStream).toBe(0)
    expect(summary.unflaggedDuplicates).toBe(0)
    // Namespaces are named after the harness's pid: none may survive it.
    const left = spawnSync('ip', ['netns', 'list'], { encoding: 'utf8' }).stdout
    expect(left).not.toMatch(new RegExp(`\\btf${(c.pid ?? 0) % 100000}-`))
  }, 180_000)
})
