// The image, run here the way deploy/kubernetes/ runs it on a node: built by scripts/build-image.sh
// from a local Debian base, started by podman with exactly the DaemonSet's capabilities, user,
// host namespaces and hostPath mounts (derived from daemonset.yaml, not restated), configured by the
// ConfigMap's agent.yaml. It must answer /healthz and report a program started on the host (eBPF)
// and a veth created on the host (rtnetlink).
import { type ChildProcessWithoutNullStreams, execFileSync, spawn } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmdirSync, rmSync, writeFileSync } from 'node:fs'
import { createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { waitFor } from '../support/wait.js'
import { ROOT } from '../agent/support.js'
import { agentConfigOf, daemonSetOf, manifestObjects, missingHostDirs, podmanOptions, seccompWithBpfCaps } from './daemonset.js'

const PODMAN = ['podman', '--runtime', '/usr/sbin/runc', '--cgroup-manager=cgroupfs']
// Podman's default limits (nofile 1048576, nproc unlimited) cannot be set on this kind of host.
const ULIMITS = ['--ulimit', 'nofile=20000:20000', '--ulimit', 'nproc=4096:4096']
const podman = (...args: string[]): string => execFileSync(PODMAN[0] as string, [...PODMAN.slice(1), ...args], { encoding: 'utf8' })

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer()
    s.once('error', reject)
    s.listen(0, '127.0.0.1', () => {
      const a = s.address()
      s.close(() => resolve(typeof a === 'object' && a ? a.port : 0))
    })
  })
}

/** The DaemonSet's downward-API environment, with the values a kubelet would fill in on this host. */
function downwardEnv(env: { name: string; value?: string; valueFrom?: { fieldRef?: { fieldPath: string } } }[]): string[] {
  const values: Record<string, string> = {
    'spec.nodeName': 'image-test-node',
    'metadata.name': 'tapio-agent-image-test',
    'metadata.namespace': 'tapio-system',
    // hostNetwork: the pod IP is the node's; loopback here (the host's other addresses are shared).
    'status.podIP': '127.0.0.1',
  }
  return env.flatMap((e) => {
    const field = e.valueFrom?.fieldRef?.fieldPath
    const value = e.value ?? (field ? values[field] : undefined)
    if (value === undefined) throw new Error(`env ${e.name}: no test value for ${field ?? 'its source'}`)
    return ['-e', `${e.name}=${value}`]
  })
}

interface Event {
  type: string
  data: Record<string, unknown>
}

describe('the container image, run as the DaemonSet runs it', () => {
  let image = ''
  const suffix = randomBytes(3).toString('hex')
  const name = `tapio-image-test-${suffix}`
  const dir = mkdtempSync(join(tmpdir(), 'tapio-image-'))
  let child: ChildProcessWithoutNullStreams | undefined
  let stdout = ''
  let stderr = ''

  beforeAll(() => {
    // Cold (no cached base, no layers) this takes minutes; with the inputs unchanged it reuses the image.
    const out = execFileSync('bash', ['scripts/build-image.sh', '--local-base'], {
      cwd: ROOT,
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'inherit'],
      timeout: 20 * 60_000,
    })
    image = out.trim().split('\n').pop() ?? ''
    expect(image).toMatch(/^localhost\/tapio-agent:[0-9a-f]{16}$/)
  }, 21 * 60_000)

  afterAll(() => {
    child?.kill('SIGKILL')
    try {
      podman('rm', '-f', '--time', '0', name)
    } catch {
      // never started
    }
    rmSync(dir, { recursive: true, force: true })
  })

  it('is within the size budget and runs the CLI', () => {
    const size = Number(podman('image', 'inspect', '--format', '{{.Size}}', image).trim())
    expect(size).toBeGreaterThan(0)
    expect(size).toBeLessThan(250_000_000)
    expect(podman('run', '--rm', ...ULIMITS, '--network', 'none', image, '--version').trim()).toMatch(/\d+\.\d+\.\d+/)
  })

  it('answers /healthz and reports an exec and a veth from the host with only the DaemonSet privileges', async () => {
    const objects = [...manifestObjects('configmap.yaml'), ...manifestObjects('daemonset.yaml')]
    const spec = daemonSetOf(objects)
    const container = spec.containers[0]
    if (!container) throw new Error('no container')
    // The ConfigMap's config, with the loopback port moved to a free one: this host's loopback is
    // shared with other tests (hostNetwork puts the agent in the host's network namespace).
    const port = await freePort()
    const scrapePort = await freePort()
    const config = agentConfigOf(objects).replace(/^(\s+port:\s*)8497$/m, `$1${port}`).replace(/^(\s+port:\s*)8498$/m, `$1${scrapePort}`)
    expect(config).toContain(`port: ${port}`)
    expect(config).toContain(`port: ${scrapePort}`)
    writeFileSync(join(dir, 'agent.yaml'), config)
    // RuntimeDefault as a current runtime has it (see seccompWithBpfCaps; Debian 12's podman default
    // would skip the ebpf collector, which this test would then report as a missing exec event).
    const seccomp = join(dir, 'seccomp.json')
    writeFileSync(seccomp, seccompWithBpfCaps(readFileSync('/usr/share/containers/seccomp.json', 'utf8')))
    const opts = podmanOptions(spec, dir, seccomp)
    expect(opts).not.toContain('--privileged')
    expect(opts.slice(opts.indexOf('--cap-drop'), opts.indexOf('--cap-drop') + 2)).toEqual(['--cap-drop', 'ALL'])

    // What a kubelet does for hostPath volumes of type DirectoryOrCreate (CNI dirs on a node without CNI).
    const created = missingHostDirs(spec)
    for (const d of created) mkdirSync(d, { recursive: true })
    const veth = `tvimg${suffix}`
    const program = join(dir, `tapimg${suffix}`) // comm: 12 characters, under the kernel's 15
    copyFileSync('/bin/sleep', program)
    try {
      child = spawn(PODMAN[0] as string, [
        ...PODMAN.slice(1),
        'run', '--rm', '--name', name,
        ...ULIMITS,
        ...opts,
        ...downwardEnv(container.env ?? []),
        image,
        ...container.args,
      ])
      child.stdout.on('data', (d: Buffer) => (stdout += d.toString()))
      child.stderr.on('data', (d: Buffer) => (stderr += d.toString()))
      const events = (): Event[] =>
        stdout.split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as Event)

      let health = 0
      await waitFor(() => {
        void fetch(`http://127.0.0.1:${port}/healthz`).then((r) => (health = r.status), () => {})
        return health === 200 || child?.exitCode !== null
      }, `/healthz on 127.0.0.1:${port} (stderr: ${stderr.slice(-2000)})`, 60_000, 250)
      expect(health, stderr.slice(-2000)).toBe(200)
      // The probe the DaemonSet's readiness check runs, inside the container.
      const probe = container.readinessProbe.exec?.command ?? []
      expect(probe.slice(0, 2)).toEqual(['node', '/app/dist/src/agent/probe.js'])
      const ready = await fetch(`http://127.0.0.1:${port}/readyz`)
      expect([200, 503]).toContain(ready.status)
      // Every collector has started or said why not; the ebpf and cni collectors must run here.
      await waitFor(() => stderr.includes('"msg":"agent running"'), 'the agent running', 60_000, 100)
      for (const name of ['ebpf', 'cni']) expect(stderr).toContain(`"name":"${name}","kind":"${name}","outcome":"running"`)
      execFileSync(program, ['0'])
      execFileSync('ip', ['link', 'add', veth, 'type', 'veth', 'peer', 'name', `${veth}p`])
      await waitFor(
        () => events().some((e) => e.type === 'kernel.process.exec' && e.data.comm === `tapimg${suffix}`),
        `an exec event for tapimg${suffix} (stderr: ${stderr.slice(-2000)})`,
        60_000,
        100,
      )
      await waitFor(() => events().some((e) => e.type === 'network.link.added' && e.data.name === veth), `network.link.added for ${veth}`, 60_000, 100)
      const exec = events().find((e) => e.type === 'kernel.process.exec' && e.data.comm === `tapimg${suffix}`)
      expect(exec?.data).toMatchObject({ filename: program })
      // The scrape listener on the pod IP, the port the DaemonSet declares as `metrics`.
      expect(container.ports?.find((p) => p.name === 'metrics')?.containerPort).toBe(8498)
      const metrics = await fetch(`http://127.0.0.1:${scrapePort}/metrics`)
      expect(metrics.status).toBe(200)
      const exposition = await metrics.text()
      expect(exposition).toMatch(/^tapio_events_accepted_total\{collector="ebpf"\} [1-9]\d*$/m)

      // The skipped collectors say why (no D-Bus system bus or API server here), the others run.
      expect(stderr).not.toMatch(/"level":"(error|fatal)"/)
    } finally {
      try {
        execFileSync('ip', ['link', 'del', veth], { stdio: 'ignore' })
      } catch {
        // not created
      }
      child?.kill('SIGTERM')
      for (const d of created.reverse()) {
        try {
          rmdirSync(d)
        } catch {
          // no longer empty: something else uses it now
        }
      }
    }
  }, 180_000)
})
