/**
 * Run by restart.test.ts in its own process (compiled with tsc): starts and stops the collector
 * 50 times, then reports what it holds. It must exit by itself afterwards: no process.exit here.
 */
import { execFileSync } from 'node:child_process'
import { readdirSync, readFileSync, readlinkSync } from 'node:fs'
import { EbpfCollector } from '../../../src/collectors/ebpf/index.js'

const addonPath = process.argv[2]
const cycles = Number(process.argv[3] ?? 50)

interface Held {
  fds: number
  bpfFds: number
  threads: number
  progIds: number[]
  linkIds: number[]
}

function held(): Held {
  const out: Held = { fds: 0, bpfFds: 0, threads: readdirSync('/proc/self/task').length, progIds: [], linkIds: [] }
  for (const fd of readdirSync('/proc/self/fd')) {
    let target: string
    try {
      target = readlinkSync(`/proc/self/fd/${fd}`)
    } catch {
      continue
    }
    out.fds++
    if (/^anon_inode:(bpf|\[perf_event\])/.test(target)) out.bpfFds++
    let info = ''
    try {
      info = readFileSync(`/proc/self/fdinfo/${fd}`, 'utf8')
    } catch {
      continue
    }
    const prog = /^prog_id:\s*(\d+)/m.exec(info)
    if (prog?.[1] && target.includes('bpf-prog')) out.progIds.push(Number(prog[1]))
    const link = /^link_id:\s*(\d+)/m.exec(info)
    if (link?.[1]) out.linkIds.push(Number(link[1]))
  }
  return out
}

function liveIds(kind: 'prog' | 'link'): Set<number> {
  const list = JSON.parse(execFileSync('bpftool', ['-j', kind, 'list'], { encoding: 'utf8' })) as { id: number }[]
  return new Set(list.map((x) => x.id))
}

async function cycle(collector: EbpfCollector, seen: { prog: Set<number>; link: Set<number> }): Promise<void> {
  await collector.start(AbortSignal.timeout(30_000))
  const h = held()
  for (const id of h.progIds) seen.prog.add(id)
  for (const id of h.linkIds) seen.link.add(id)
  let n = 0
  const consumer = (async () => {
    for await (const batch of collector.events()) n += Array.isArray(batch) ? batch.length : 1
  })()
  execFileSync('/bin/true')
  await collector.stop()
  await consumer
  void n
}

async function main(): Promise<void> {
  const config = { addonPath, programs: { exec: true, exit: true, tcp: true, oom: true, openat: true } }
  const seen = { prog: new Set<number>(), link: new Set<number>() }
  // Warm-up: lazily created libuv threads and the addon's first load are not leaks.
  await cycle(new EbpfCollector(config), { prog: new Set(), link: new Set() })
  const before = held()
  // Half the cycles reuse one instance (start -> stop -> start), half use a fresh one.
  const reused = new EbpfCollector(config)
  for (let i = 0; i < cycles; i++) await cycle(i % 2 === 0 ? reused : new EbpfCollector(config), seen)
  const after = held()
  const progs = liveIds('prog')
  const links = liveIds('link')
  console.log(
    JSON.stringify({
      before,
      after,
      programsSeen: seen.prog.size,
      linksSeen: seen.link.size,
      programsStillLoaded: [...seen.prog].filter((id) => progs.has(id)),
      linksStillLive: [...seen.link].filter((id) => links.has(id)),
    }),
  )
}

main().catch((e: unknown) => {
  console.error(e)
  process.exitCode = 1
})
