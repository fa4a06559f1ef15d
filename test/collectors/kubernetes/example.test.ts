import { execFileSync, spawn } from 'node:child_process'
import { existsSync, rmSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import { main, parseArgs } from '../../../examples/kubernetes.js'
import { validateEvent } from '../../../src/events/event.js'
import '../../../src/collectors/kubernetes/index.js'
import { createHarness, fresh, type Harness } from './harness.js'

const root = fileURLToPath(new URL('../../../', import.meta.url))
const outDir = join(root, 'test-artifacts', `k8s-example-${process.pid}`)

let h: Harness | undefined
afterEach(async () => {
  await h?.close()
  h = undefined
})

async function seeded(): Promise<Harness> {
  const harness = await createHarness()
  harness.server.create('nodes', fresh('node', 'worker-1'))
  harness.server.create('deployments', fresh('deployment', 'web', 'shop'))
  for (let i = 0; i < 3; i++) harness.server.create('pods', fresh('pod', `web-${i}`, 'shop'))
  return harness
}

describe('examples/kubernetes.ts', () => {
  it('parses argv and env', () => {
    expect(parseArgs(['--kubeconfig', '/k', '--context', 'c', '--events', '3'], { K8S_SECONDS: '2' })).toEqual({
      kubeconfig: '/k',
      context: 'c',
      events: 3,
      seconds: 2,
    })
    expect(parseArgs([], { KUBE_CONTEXT: 'env-ctx' })).toMatchObject({ context: 'env-ctx', events: 20, seconds: 30 })
    expect(() => parseArgs(['--events', 'many'], {})).toThrow('--events must be a positive number')
  })

  it('main() prints N valid NDJSON events from the test API server', async () => {
    h = await seeded()
    const lines: string[] = []
    const n = await main(['--kubeconfig', h.kubeconfigPath, '--context', 'fake', '--events', '5', '--seconds', '60'], {}, (l) => lines.push(l), () => {})
    expect(n).toBe(5)
    const events = lines.join('').trim().split('\n').map((l) => JSON.parse(l) as unknown)
    expect(events).toHaveLength(5)
    for (const e of events) expect(validateEvent(e)._tag).toBe('Success')
    expect(new Set(events.map((e) => (e as { type: string }).type))).toEqual(new Set(['k8s.node.added', 'k8s.deployment.added', 'k8s.pod.added']))
  })

  it('main() stops after T seconds when fewer events come', async () => {
    h = await seeded()
    const lines: string[] = []
    const n = await main(['--kubeconfig', h.kubeconfigPath, '--context', 'fake', '--events', '1000', '--seconds', '1'], {}, (l) => lines.push(l), () => {})
    expect(n).toBe(5)
    expect(lines).toHaveLength(5)
  })
})

describe('examples/kubernetes.ts as a program', () => {
  beforeAll(() => {
    // Compile the project as the build does; type errors elsewhere would still emit, so check the file.
    try {
      execFileSync(join(root, 'node_modules', '.bin', 'tsc'), ['-p', join(root, 'tsconfig.json'), '--outDir', outDir], { stdio: 'pipe' })
    } catch {
      // reported below if the example was not emitted
    }
    if (!existsSync(join(outDir, 'examples', 'kubernetes.js'))) throw new Error(`tsc did not emit ${outDir}/examples/kubernetes.js`)
  }, 120_000)
  afterAll(() => rmSync(outDir, { recursive: true, force: true }))

  it('runs against the test API server, prints NDJSON and exits by itself', async () => {
    h = await seeded()
    const child = spawn(process.execPath, [join(outDir, 'examples', 'kubernetes.js'), '--events', '4', '--seconds', '30'], {
      env: { ...process.env, KUBECONFIG: h.kubeconfigPath, KUBE_CONTEXT: 'fake' },
      stdio: ['ignore', 'pipe', 'pipe'],
    })
    let stdout = ''
    let stderr = ''
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()))
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()))
    try {
      // Exiting on its own (no kill) shows no timer, socket or watch outlives stop().
      const code = await new Promise<number | null | 'still running'>((resolve) => {
        const t = setTimeout(() => resolve('still running'), 40_000)
        child.on('exit', (c) => {
          clearTimeout(t)
          resolve(c)
        })
      })
      expect(code, stderr).toBe(0)
    } finally {
      if (child.exitCode === null) child.kill('SIGKILL')
    }
    const events = stdout.trim().split('\n').map((l) => JSON.parse(l) as { type: string; source: string })
    expect(events).toHaveLength(4)
    expect(events.every((e) => e.source === 'kubernetes' && e.type.startsWith('k8s.'))).toBe(true)
    expect(JSON.parse(stderr.trim().split('\n').pop() ?? '{}')).toMatchObject({ health: { status: 'ok' } })
  })
})
