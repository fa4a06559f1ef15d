import { type ChildProcess, spawn } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { afterEach, describe, expect, it } from 'vitest'
import { ip, KernelObjects, suffix } from '../collectors/cni/helpers.js'
import { run, uniqueShell } from '../collectors/ebpf/helpers.js'
import { createHarness, fresh, type Harness } from '../collectors/kubernetes/harness.js'
import { startUserManager, type UserManager } from '../collectors/systemd/user-manager.js'

/**
 * examples/basic.ts as a process, with the four real collectors: eBPF in the running kernel, the
 * Kubernetes test API server, a real systemd user manager on its own bus, real veth pairs. It
 * must print events from every collector and exit by itself.
 */

const root = fileURLToPath(new URL('../..', import.meta.url))
let child: ChildProcess | undefined
let k8s: Harness | undefined
let um: UserManager | undefined
const kernel = new KernelObjects()
const cleanups: (() => void)[] = []

afterEach(async () => {
  child?.kill('SIGKILL')
  child = undefined
  for (const c of cleanups.splice(0)) c()
  expect(kernel.cleanup()).toEqual([])
  await k8s?.close()
  k8s = undefined
  await um?.stop()
  um = undefined
})

describe('examples/basic', () => {
  it('adds ebpf, k8s, systemd and cni by name and prints events from each, then statistics', async () => {
    expect(process.getuid?.(), 'the eBPF and CNI collectors need root; run the suite as root (.ci/run)').toBe(0)
    k8s = await createHarness()
    k8s.server.create('pods', fresh('pod', 'web-0', 'shop'))
    um = await startUserManager()
    const program = uniqueShell()
    cleanups.push(program.cleanup)

    const proc = spawn(
      process.execPath,
      ['dist/examples/basic.js', '--kubeconfig', k8s.kubeconfigPath, '--context', 'fake', '--systemd-address', um.busAddress, '--until-each', '1', '--seconds', '60'],
      { cwd: root, stdio: ['ignore', 'pipe', 'pipe'] },
    )
    child = proc
    let stdout = ''
    let stderr = ''
    proc.stdout?.on('data', (d: Buffer) => (stdout += d.toString()))
    proc.stderr?.on('data', (d: Buffer) => (stderr += d.toString()))
    const exited = new Promise<number | null>((resolve) => proc.on('exit', (code) => resolve(code)))
    let done = false
    void exited.then(() => (done = true))

    // Once all four run, give each something to report until the example has seen them all.
    const deadline = Date.now() + 45_000
    while (!stderr.includes('running:') && !done && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50))
    expect(stderr).toMatch(/^running: ebpf, k8s, systemd, cni$/m)
    let round = 0
    while (!done && Date.now() < deadline) {
      round += 1
      await run(program.path, ['-c', 'exit 0'])
      const veth = kernel.link(`tpb${suffix()}`)
      // Deleting one end deletes the pair: only that end is registered for cleanup.
      ip('link', 'add', veth, 'type', 'veth', 'peer', 'name', `${veth}p`)
      const unit = `tapio-basic-${round}-${suffix()}`
      await um.systemdRun([`--unit=${unit}`, '/bin/true'])
      await new Promise((r) => setTimeout(r, 300))
    }
    expect(await exited, stderr).toBe(0)

    const events = stdout
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { source: string; type: string; data: Record<string, unknown> })
    expect(new Set(events.map((e) => e.source))).toEqual(new Set(['ebpf', 'k8s', 'systemd', 'cni']))
    for (const source of ['ebpf', 'k8s', 'systemd', 'cni']) expect(events.filter((e) => e.source === source).length).toBeGreaterThanOrEqual(1)
    const stats = JSON.parse(stderr.trim().split('\n').at(-1) as string) as { totalEvents: number; deliveredEvents: number; collectors: Record<string, { accepted: number }> }
    expect(Object.keys(stats.collectors).sort()).toEqual(['cni', 'ebpf', 'k8s', 'systemd'])
    expect(stats.deliveredEvents).toBeGreaterThanOrEqual(events.length)
  })
})
