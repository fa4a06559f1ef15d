/**
 * Container identity for processes that are gone before their records are decoded, in cgroups
 * created moments before (issue 12, item 6): the case people debug (a crash-looping container's
 * short-lived process) is exactly the one /proc can no longer answer and a rate-limited walk of
 * the cgroup tree has not seen yet.
 */
import { randomBytes, randomUUID } from 'node:crypto'
import { existsSync, mkdirSync, readFileSync, rmdirSync } from 'node:fs'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { EbpfCollector, findCgroup2Mount } from '../../../src/collectors/ebpf/index.js'
import type { EventInput } from '../../../src/events/event.js'
import { data, run, Sink, uniqueShell, waitFor } from './helpers.js'

const cgroup2 = findCgroup2Mount(readFileSync('/proc/self/mountinfo', 'utf8'))
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

async function removeCgroup(dir: string): Promise<void> {
  // The last process of a cgroup may still be exiting for a moment.
  for (let i = 0; i < 100 && existsSync(dir); i++) {
    try {
      rmdirSync(dir)
    } catch {
      await sleep(50)
    }
  }
}

interface Container {
  readonly containerId: string
  readonly podUid: string
  readonly leaf: string
  readonly pids: number[]
}

describe('ebpf collector: container identity of short-lived processes in new cgroups', () => {
  const collector = new EbpfCollector({ programs: { exec: true, exit: true, tcp: false, oom: false, openat: false } })
  const shell = uniqueShell()
  const parent = join(cgroup2 ?? '/nonexistent', `tapio-k8s-${randomBytes(4).toString('hex')}.slice`)
  const made: string[] = []
  let sink: Sink

  beforeAll(async () => {
    expect(cgroup2, 'a cgroup2 mount').toBeDefined()
    mkdirSync(parent)
    made.push(parent)
    await collector.start(AbortSignal.timeout(30_000))
    sink = new Sink(collector)
  })

  afterAll(async () => {
    await collector.stop()
    for (const dir of made.reverse()) await removeCgroup(dir)
    shell.cleanup()
  })

  /** A pod slice and a container scope named the way containerd's systemd cgroup driver names them. */
  function makeContainer(): Container {
    const podUid = randomUUID()
    const containerId = randomBytes(32).toString('hex')
    const pod = join(parent, `kubepods-besteffort-pod${podUid.replace(/-/g, '_')}.slice`)
    const leaf = join(pod, `cri-containerd-${containerId}.scope`)
    mkdirSync(pod)
    made.push(pod)
    mkdirSync(leaf)
    made.push(leaf)
    return { containerId, podUid, leaf, pids: [] }
  }

  /** Joins the cgroup, then becomes the uniquely named program, which exits at once. */
  async function shortRun(c: Container): Promise<void> {
    const { pid, code } = await run('/bin/sh', ['-c', `echo $$ > ${c.leaf}/cgroup.procs && exec ${shell.path} -c 'exit 0'`])
    expect(code).toBe(0)
    c.pids.push(pid)
  }

  function eventsOf(c: Container): EventInput[] {
    return sink.events.filter(
      (e) =>
        (e.type === 'kernel.process.exec' || e.type === 'kernel.process.exit') &&
        c.pids.includes(data(e).pid as number) &&
        data(e).comm === shell.name,
    )
  }

  it('four cgroups created 1 s apart, three short runs in each: all 24 events carry the container', async () => {
    const containers: Container[] = []
    for (let i = 0; i < 4; i++) {
      if (i > 0) await sleep(1000)
      const c = makeContainer()
      containers.push(c)
      for (let r = 0; r < 3; r++) await shortRun(c)
    }
    await waitFor('24 exec/exit events', () => containers.every((c) => eventsOf(c).length === 6))
    const all = containers.flatMap((c) => eventsOf(c).map((e) => ({ c, e })))
    const withIdentity = all.filter(({ c, e }) => e.k8s?.containerId === c.containerId && e.k8s?.podUid === c.podUid)
    console.log(`container identity: ${withIdentity.length} of ${all.length} events`)
    expect(all).toHaveLength(24)
    // Learned from the kernel's announcements (a pod slice and a container scope per container).
    expect(collector.statistics().counters.cgroupsAnnounced).toBeGreaterThanOrEqual(8)
    for (const { c, e } of all) {
      expect(e.k8s, `${e.type} of pid ${String(data(e).pid)}`).toEqual({ containerId: c.containerId, podUid: c.podUid })
      expect(data(e).cgroupPath).toBe(c.leaf.slice((cgroup2 as string).length))
    }
  })

  it('keeps the identity when the cgroup is removed right after its process exited (as containerd does)', async () => {
    const c = makeContainer()
    await shortRun(c)
    // Gone before the records are decoded in all likelihood: neither /proc nor a walk can find it.
    await removeCgroup(c.leaf)
    expect(existsSync(c.leaf)).toBe(false)
    await waitFor('exec and exit of the removed container', () => eventsOf(c).length === 2)
    for (const e of eventsOf(c)) expect(e.k8s).toEqual({ containerId: c.containerId, podUid: c.podUid })
  })
})
