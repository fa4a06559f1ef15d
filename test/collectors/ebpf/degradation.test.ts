import { execFileSync } from 'node:child_process'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { detectEbpf, EbpfCollector } from '../../../src/collectors/ebpf/index.js'
import { BpfUnavailableError, defaultAddonPath } from '../../../src/native/bpf-addon.js'
import { compileChild } from './helpers.js'

interface ChildReport {
  detect: { supported: boolean; reason: string }
  startError?: { name: string; reason?: string; message: string }
  health: { status: string; message?: string }
  attached?: string[]
  failed?: { program: string; errno: number; message: string }[]
}

describe('ebpf collector: degradation', () => {
  const dir = mkdtempSync(join(tmpdir(), 'tapio-ebpf-degrade-'))
  let child: string

  beforeAll(() => {
    child = compileChild('degrade-child')
  })
  afterAll(() => rmSync(dir, { recursive: true, force: true }))

  /** Runs the child under `prefix` (e.g. a capability-less or private-mount-namespace wrapper). */
  function runChild(prefix: readonly string[], config: Record<string, unknown>): ChildReport {
    const args = [...prefix, process.execPath, child, JSON.stringify({ addonPath: defaultAddonPath(), ...config })]
    const out = execFileSync(args[0] as string, args.slice(1), { encoding: 'utf8', timeout: 60_000 })
    return JSON.parse(out.trim().split('\n').pop() ?? '{}') as ChildReport
  }

  it('addon not built: start fails with "unavailable" and how to fix it; stop is still safe', async () => {
    const collector = new EbpfCollector({ addonPath: join(dir, 'missing', 'tapio_bpf.node') })
    const err = await collector.start(AbortSignal.timeout(5_000)).then(
      () => undefined,
      (e: unknown) => e,
    )
    expect(err).toBeInstanceOf(BpfUnavailableError)
    expect((err as BpfUnavailableError).reason).toBe('addon_missing')
    expect((err as Error).message).toMatch(/^unavailable: native addon not built .*scripts\/build-native\.sh`, which needs .*clang, bpftool, libbpf-dev/)
    expect(collector.health()).toMatchObject({ status: 'permanent_error', message: (err as Error).message })
    expect(() => collector.events()).toThrow(/before a successful start/)
    await collector.stop()
    await collector.stop()
    const d = await detectEbpf({ addonPath: join(dir, 'missing', 'tapio_bpf.node') })
    expect(d.supported).toBe(false)
    expect(d.reason).toMatch(/native addon not built/)
  })

  it('a file that is not the addon: reported as incompatible, not a crash', async () => {
    const bogus = join(dir, 'bogus.node')
    writeFileSync(bogus, 'not an ELF file')
    const d = await detectEbpf({ addonPath: bogus })
    expect(d.supported).toBe(false)
    expect(d.reason).toMatch(/^unavailable: native addon failed to load/)
  })

  it('without capabilities: a specific permission reason', () => {
    // root with an empty bounding set keeps uid 0 but gets no capabilities after exec.
    const r = runChild(['setpriv', '--bounding-set=-all', '--inh-caps=-all', '--'], {})
    expect(r.detect.supported).toBe(false)
    expect(r.detect.reason).toMatch(/needs root or CAP_BPF \+ CAP_PERFMON/)
    expect(r.startError?.name).toBe('BpfUnavailableError')
    expect(r.startError?.reason).toBe('permission')
    expect(r.health.status).toBe('permanent_error')
  })

  it('tracefs not mounted and mounting not allowed by config: a specific reason', () => {
    const r = runChild(
      ['unshare', '-m', '--propagation', 'private', 'sh', '-c', 'umount /sys/kernel/tracing 2>/dev/null; umount /sys/kernel/debug/tracing 2>/dev/null; umount /sys/kernel/debug 2>/dev/null; exec "$@"', 'sh'],
      { mountTracefs: false },
    )
    expect(r.startError?.reason).toBe('no_tracefs')
    expect(r.startError?.message).toMatch(/tracefs is not mounted .*mount -t tracefs/)
  })

  it('tracefs not mounted: the collector mounts it and runs', () => {
    const r = runChild(
      ['unshare', '-m', '--propagation', 'private', 'sh', '-c', 'umount /sys/kernel/tracing 2>/dev/null; umount /sys/kernel/debug/tracing 2>/dev/null; umount /sys/kernel/debug 2>/dev/null; exec "$@"', 'sh'],
      { programs: { tcp: false, oom: false } },
    )
    expect(r.startError).toBeUndefined()
    expect(r.health.status).toBe('ok')
    expect(r.attached).toEqual(['exec', 'exit', 'cgroup'])
  })

  it('one tracepoint missing: that program is reported, the others run', () => {
    // An empty directory over events/oom makes mark_victim look absent to this process only.
    const hide =
      'umount /sys/kernel/debug 2>/dev/null; mount -t tracefs tracefs /sys/kernel/tracing 2>/dev/null; ' +
      'd=$(mktemp -d) && mount --bind "$d" /sys/kernel/tracing/events/oom && exec "$@"'
    const r = runChild(['unshare', '-m', '--propagation', 'private', 'sh', '-c', hide, 'sh'], {
      programs: { exec: true, exit: true, tcp: true, oom: true },
    })
    expect(r.startError).toBeUndefined()
    expect(r.health.status).toBe('ok')
    expect(r.health.message).toBe('running without oom')
    expect(r.attached).toEqual(['exec', 'exit', 'tcp', 'cgroup'])
    expect(r.failed).toEqual([
      { program: 'oom', errno: 2, message: 'tracepoint oom/mark_victim not found in tracefs' },
    ])
  })

  it('cgroup_mkdir missing: events still flow, and health says what identity loses', () => {
    const hide =
      'umount /sys/kernel/debug 2>/dev/null; mount -t tracefs tracefs /sys/kernel/tracing 2>/dev/null; ' +
      'd=$(mktemp -d) && mount --bind "$d" /sys/kernel/tracing/events/cgroup && exec "$@"'
    const r = runChild(['unshare', '-m', '--propagation', 'private', 'sh', '-c', hide, 'sh'], {
      programs: { exec: true, exit: true, tcp: false, oom: false },
    })
    expect(r.startError).toBeUndefined()
    expect(r.attached).toEqual(['exec', 'exit'])
    expect(r.failed).toEqual([
      { program: 'cgroup', errno: 2, message: 'tracepoint cgroup/cgroup_mkdir not found in tracefs' },
    ])
    expect(r.health.status).toBe('ok')
    expect(r.health.message).toMatch(/^running without cgroup \(new cgroups are found by \/proc and walks only/)
  })

  it('the real machine passes detection (a missing prerequisite in CI is a failure)', async () => {
    const d = await detectEbpf()
    expect(d, d.reason).toMatchObject({ supported: true })
    expect(execFileSync('id', ['-u'], { encoding: 'utf8' }).trim()).toBe('0')
  })
})
