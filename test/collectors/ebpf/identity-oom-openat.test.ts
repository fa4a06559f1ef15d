import { spawn } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { existsSync, mkdirSync, mkdtempSync, openSync, closeSync, readFileSync, rmdirSync, rmSync, statSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { EbpfCollector, findCgroup2Mount } from '../../../src/collectors/ebpf/index.js'
import { data, run, Sink, uniqueShell, waitFor } from './helpers.js'

const cgroup2 = findCgroup2Mount(readFileSync('/proc/self/mountinfo', 'utf8'))

/** Removes cgroup directories deepest first, retrying while their last process is exiting. */
async function removeCgroups(dirs: string[]): Promise<void> {
  for (const dir of dirs.reverse()) {
    for (let i = 0; i < 100 && existsSync(dir); i++) {
      try {
        rmdirSync(dir)
      } catch {
        await new Promise((r) => setTimeout(r, 50))
      }
    }
  }
}

describe('ebpf collector: container identity, OOM kills, file opens', () => {
  const openDir = mkdtempSync(join(tmpdir(), 'tapio-openat-'))
  const collector = new EbpfCollector({
    programs: { exec: true, exit: true, tcp: false, oom: true, openat: true },
    openatPrefixes: [`${openDir}/`],
  })
  let sink: Sink
  const shell = uniqueShell()
  const cgroups: string[] = []

  beforeAll(async () => {
    expect(cgroup2, 'a cgroup2 mount').toBeDefined()
    await collector.start(AbortSignal.timeout(30_000))
    sink = new Sink(collector)
  })

  afterAll(async () => {
    await collector.stop()
    await removeCgroups(cgroups)
    shell.cleanup()
    rmSync(openDir, { recursive: true, force: true })
  })

  it('maps the cgroup id to the cgroup path and container id (k8s.containerId)', async () => {
    const containerId = randomBytes(32).toString('hex')
    const parent = join(cgroup2 as string, `tapio-test-${randomBytes(4).toString('hex')}`)
    const leaf = join(parent, `docker-${containerId}.scope`)
    mkdirSync(parent)
    cgroups.push(parent)
    mkdirSync(leaf)
    cgroups.push(leaf)
    // Joins the cgroup, then becomes the uniquely named program, which stays a moment.
    const { pid, code } = await run('/bin/sh', ['-c', `echo $$ > ${leaf}/cgroup.procs && exec ${shell.path} -c 'sleep 0.5; exit 0'`])
    expect(code).toBe(0)
    const exec = await waitFor('exec in the container cgroup', () =>
      sink.find((e) => e.type === 'kernel.process.exec' && data(e).pid === pid && data(e).comm === shell.name),
    )
    const relPath = leaf.slice((cgroup2 as string).length)
    expect(data(exec)).toMatchObject({ comm: shell.name, cgroupId: String(statSync(leaf).ino), cgroupPath: relPath })
    expect(exec.k8s).toEqual({ containerId })
    const exit = await waitFor('exit', () => sink.find((e) => e.type === 'kernel.process.exit' && data(e).pid === pid))
    expect(exit.k8s).toEqual({ containerId })
  })

  it('reports an OOM kill with the victim', async () => {
    const name = `tapio-oom-${randomBytes(4).toString('hex')}`
    // Memory limits live in the v1 memory hierarchy on hybrid hosts, else in cgroup2.
    const v1 = '/sys/fs/cgroup/memory'
    let dir: string
    if (existsSync(join(v1, 'memory.limit_in_bytes'))) {
      dir = join(v1, name)
      mkdirSync(dir)
      cgroups.push(dir)
      writeFileSync(join(dir, 'memory.limit_in_bytes'), String(32 << 20))
    } else {
      writeFileSync(join(cgroup2 as string, 'cgroup.subtree_control'), '+memory')
      dir = join(cgroup2 as string, name)
      mkdirSync(dir)
      cgroups.push(dir)
      writeFileSync(join(dir, 'memory.max'), String(32 << 20))
      writeFileSync(join(dir, 'memory.swap.max'), '0')
    }
    // tail keeps a line without newlines in memory: it grows until the limit kills it.
    const child = spawn('/bin/sh', ['-c', `echo $$ > ${dir}/cgroup.procs && exec sh -c 'head -c 512M /dev/zero | tail -n 1 >/dev/null'`], {
      stdio: 'ignore',
    })
    try {
      const oom = await waitFor(
        'oom kill',
        () => sink.find((e) => e.type === 'kernel.oom.kill' && data(e).victimComm === 'tail'),
        30_000,
      )
      expect(oom.severity).toBe('error')
      expect(data(oom).victimPid).toBeGreaterThan(0)
      expect(data(oom).anonRssKb).toBeGreaterThan(0)
    } finally {
      if (child.exitCode === null) child.kill('SIGKILL')
      await new Promise((r) => (child.exitCode === null ? child.once('exit', r) : r(undefined)))
    }
  })

  it('reports opens under the configured prefix only', async () => {
    const outside = join(tmpdir(), `tapio-outside-${randomBytes(4).toString('hex')}`)
    writeFileSync(outside, 'x')
    closeSync(openSync(outside, 'r'))
    rmSync(outside)
    const inside = join(openDir, 'watched.txt')
    closeSync(openSync(inside, 'w'))
    const ev = await waitFor('open event', () =>
      sink.find((e) => e.type === 'kernel.file.open' && data(e).path === inside),
    )
    expect(data(ev)).toMatchObject({ pid: process.pid })
    expect(ev.severity).toBe('debug')
    expect(sink.find((e) => e.type === 'kernel.file.open' && data(e).path === outside)).toBeUndefined()
  })
})
