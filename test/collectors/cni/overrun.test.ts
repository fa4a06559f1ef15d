import { spawn } from 'node:child_process'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import { CniCollector } from '../../../src/collectors/cni/index.js'
import { data, eventually, KernelObjects, Recorder, suffix } from './helpers.js'

const objects = new KernelObjects()
const dir = mkdtempSync(join(tmpdir(), 'tapio-cni-burst-'))
const collectors: CniCollector[] = []
afterAll(async () => {
  for (const c of collectors) await c.stop()
  objects.cleanup()
  rmSync(dir, { recursive: true, force: true })
})

/**
 * Runs `ip -batch` while this process is stopped (SIGSTOP), so the kernel must queue every
 * notification into our (deliberately tiny) socket buffer and drop what does not fit. The shell
 * resumes us on exit whatever happens.
 */
function burstWhileStopped(batchFile: string): Promise<void> {
  const script = `trap 'kill -CONT ${process.pid}' EXIT; kill -STOP ${process.pid}; ip -batch ${batchFile}`
  return new Promise((resolve, reject) => {
    spawn('sh', ['-c', script], { stdio: 'ignore' }).on('exit', (code) => (code === 0 ? resolve() : reject(new Error(`ip -batch exited ${code}`))))
  })
}

describe('cni collector: kernel overrun (ENOBUFS)', () => {
  it('notices dropped notifications and rebuilds the state with a dump, reporting each change once', async () => {
    const s = suffix()
    const names = Array.from({ length: 200 }, (_, i) => objects.link(`tpx${s}${i}`))
    const add = join(dir, 'add.batch')
    const del = join(dir, 'del.batch')
    writeFileSync(add, `${names.map((n) => `link add ${n} type bridge`).join('\n')}\n`)
    writeFileSync(del, `${names.map((n) => `link del ${n}`).join('\n')}\n`)

    // A 1-byte request is raised to the kernel minimum (a few KiB): far too small for 200 links.
    const c = new CniCollector({ netlink: { receiveBufferBytes: 1 }, cniConfig: { enabled: false }, cniResults: { enabled: false }, netns: { enabled: false } })
    collectors.push(c)
    await c.start(AbortSignal.timeout(30_000))
    const rec = new Recorder(c)
    const stat = (name: string): number => c.statistics().counters[name] ?? Number.NaN
    const ours = (type: string) => (): number => rec.events.filter((e) => e.type === type && String(data(e).name).startsWith(`tpx${s}`)).length
    try {
      await burstWhileStopped(add)
      await eventually(() => ours('network.link.added')() === names.length, 'every bridge reported added')
      expect(stat('netlinkOverruns')).toBeGreaterThanOrEqual(1)
      expect(stat('netlinkResyncs')).toBeGreaterThanOrEqual(2)
      // What the kernel dropped came back through the dump.
      expect(rec.events.some((e) => e.type === 'network.link.added' && data(e).snapshot === true && String(data(e).name).startsWith(`tpx${s}`))).toBe(true)

      const overrunsAfterAdd = stat('netlinkOverruns')
      await burstWhileStopped(del)
      await eventually(() => ours('network.link.removed')() === names.length, 'every bridge reported removed')
      expect(stat('netlinkOverruns')).toBeGreaterThan(overrunsAfterAdd)
      // Each once: no duplicates from the overlap of notifications and dumps.
      const added = new Set(rec.events.filter((e) => e.type === 'network.link.added').map((e) => data(e).name))
      expect(ours('network.link.added')()).toBe(names.length)
      expect(names.every((n) => added.has(n))).toBe(true)
      expect(ours('network.link.removed')()).toBe(names.length)
      // Batches: after a stop, many records arrive per crossing into JavaScript.
      expect(stat('netlinkRecords')).toBeGreaterThan(stat('netlinkBatches'))
    } finally {
      await c.stop()
      objects.cleanup()
    }
  })
})
