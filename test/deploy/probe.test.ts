import { execFile } from 'node:child_process'
import { promisify } from 'node:util'
import { afterEach, describe, expect, it } from 'vitest'
import { Agent } from '../../src/agent/agent.js'
import { loadConfigText } from '../../src/agent/config.js'
import { createLogger } from '../../src/agent/logger.js'
import { builtinKinds, kindMap, validators } from '../../src/agent/registry.js'
import { CLI, ROOT } from '../agent/support.js'
import { waitFor } from '../support/wait.js'

const run = promisify(execFile)
const kinds = builtinKinds()

const PROBE = 'dist/src/agent/probe.js'

/**
 * The probe as the kubelet runs it (only the exit code matters), through the DaemonSet's entry
 * point and, with `viaCli`, as `tapio-agent probe`.
 */
async function probe(...args: string[]): Promise<{ code: number; out: string }> {
  return exec([PROBE, ...args])
}
async function probeViaCli(...args: string[]): Promise<{ code: number; out: string }> {
  return exec([CLI, 'probe', ...args])
}

async function exec(argv: string[]): Promise<{ code: number; out: string }> {
  try {
    const r = await run(process.execPath, argv, { cwd: ROOT })
    return { code: 0, out: r.stdout }
  } catch (e) {
    const err = e as { code?: number; stderr?: string }
    return { code: err.code ?? -1, out: err.stderr ?? '' }
  }
}

let agent: Agent | undefined
afterEach(async () => {
  await agent?.stop()
  agent = undefined
})

async function startAgent(collectors: string): Promise<string> {
  const config = loadConfigText(`collectors:\n${collectors}\noutputs: { stdout: { enabled: false } }\nhttp: { port: 0 }\n`, 'probe-test.yaml', validators(kinds))
  agent = new Agent(config, { kinds: kindMap(kinds), logger: createLogger('error', () => {}) })
  await agent.start()
  const url = agent.httpUrl
  if (!url) throw new Error('agent http did not start')
  return url
}

describe('tapio-agent probe (the DaemonSet exec probes)', () => {
  it('exits 0 for live and ready while every collector is ok', async () => {
    const url = await startAgent('  gen: { kind: synthetic, rate: 10 }')
    expect(await probe('live', '--url', url)).toMatchObject({ code: 0 })
    expect(await probe('ready', '--url', url)).toMatchObject({ code: 0 })
    expect(await probeViaCli('ready', '--url', url)).toMatchObject({ code: 0 })
    expect(await probeViaCli('live', '--url', url)).toMatchObject({ code: 0 })
  })

  it('exits 1 for ready (but 0 for live) when a collector failed', async () => {
    const url = await startAgent('  broken: { kind: synthetic, failAtStart: true, policy: { restart: temporary } }')
    await waitFor(() => {
      const s = agent?.manager.health().collectors.broken?.status
      return s !== undefined && s !== 'ok' && s !== 'starting'
    }, 'the collector to fail')
    const ready = await probe('ready', '--url', url)
    expect(ready.code).toBe(1)
    expect(ready.out).toMatch(/HTTP 503/)
    expect(await probe('live', '--url', url)).toMatchObject({ code: 0 })
    expect((await probeViaCli('ready', '--url', url)).code).toBe(1)
  })

  it('exits 1 when nothing answers, and 2 for an unknown target', async () => {
    const url = await startAgent('  gen: { kind: synthetic, rate: 10 }')
    await agent?.stop()
    agent = undefined
    const down = await probe('live', '--url', url)
    expect(down.code).toBe(1)
    expect(down.out).toMatch(/cannot reach/)
    expect((await probe('sideways')).code).toBe(2)
    expect((await probeViaCli('sideways')).code).toBe(2)
    expect((await probe('live', '--bogus')).code).toBe(2)
  })
})
