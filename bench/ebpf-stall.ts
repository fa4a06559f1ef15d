/**
 * Ring buffer size against consumer stalls: how many kernel records does each ring size hold
 * while the JavaScript thread is busy (a long GC, a slow output, a large config reload) before
 * the kernel starts dropping?
 *
 * The C load generator calls getppid() `--events` times as fast as it can (each call one 48-byte
 * probe record, 56 bytes in the ring with its header), traced by the ebpf collector's probe
 * program. As soon as the first batch reaches JavaScript, the consumer blocks its thread (a busy
 * loop) until the load generator has exited: everything after that first batch is written while
 * nothing is taken, so what the ring (plus the native reader's `maxBatchesInFlight` batches)
 * holds is absorbed and the rest is dropped and counted by the kernel. Absorbed records divided
 * by a node's record rate is the stall it survives. (A paced load with a timed stall measures this
 * worse: on a busy machine the generator is starved during the stall and catches up after it.)
 * Baseline in the same run: the same load with no stall (no drops expected). Ring sizes
 * interleaved, `--runs` times; medians.
 *
 *   npm run bench:ebpf-stall [-- --events 1000000 --rings 4,8,16 --runs 3]
 *
 * The last output line is one JSON object.
 */
import { execFileSync, spawn } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { parseArgs } from 'node:util'
import { EbpfCollector } from '../src/collectors/ebpf/index.js'
import { repoRoot } from './support/repo-root.js'

const { values } = parseArgs({
  options: {
    events: { type: 'string', default: '1000000' },
    rings: { type: 'string', default: '4,8,16' },
    runs: { type: 'string', default: '3' },
  },
})
const events = Number(values.events)
const ringsMiB = values.rings.split(',').map(Number)
const runs = Number(values.runs)
/** Ring bytes per probe record: 48 bytes of record plus the ring's 8-byte header. */
const RING_BYTES_PER_RECORD = 56

const root = repoRoot()
const out = join(root, 'bench', 'ebpf', 'out')
execFileSync('bash', [join(root, 'bench', 'ebpf', 'build.sh'), 'loadgen'], { stdio: 'inherit' })

interface StallRun {
  readonly ringMiB: number
  readonly stalled: boolean
  readonly generated: number
  readonly delivered: number
  readonly droppedKernel: number
  readonly droppedUser: number
  /** Records written while the consumer was blocked that were not dropped. */
  readonly absorbed: number
}

/** The load generator has finished (a zombie until this blocked process reaps it, or gone). */
function exitedProcess(pid: number): boolean {
  try {
    return /^\d+ \(.*\) Z/.test(readFileSync(`/proc/${pid}/stat`, 'utf8'))
  } catch {
    return true
  }
}

async function stallRun(ringMiB: number, stall: boolean): Promise<StallRun> {
  const child = spawn(join(out, 'loadgen'), [String(events)], { stdio: ['pipe', 'pipe', 'inherit'] })
  const pid = await new Promise<number>((resolve, reject) => {
    child.once('error', reject)
    child.stdout.once('data', (c: Buffer) => resolve(Number(c.toString().split('\n')[0])))
  })
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()))
  const collector = new EbpfCollector({
    programs: { exec: false, exit: false, tcp: false, oom: false, openat: false },
    probePid: pid,
    ringBufferBytes: ringMiB << 20,
  })
  try {
    await collector.start(AbortSignal.timeout(30_000))
    let takenBeforeStall = -1
    const consumer = (async () => {
      let taken = 0
      for await (const item of collector.events()) {
        taken += Array.isArray(item) ? item.length : 1
        if (stall && takenBeforeStall < 0) {
          takenBeforeStall = taken
          // Nothing is taken from here until the whole load has been written.
          while (!exitedProcess(pid)) {
            // busy: the JS thread is held, as in a long stall
          }
        }
      }
    })()
    child.stdin.end('go\n')
    await exited
    // Drops never reach the consumer: wait until every generated record is delivered or dropped.
    const deadline = performance.now() + 60_000
    for (;;) {
      const t = collector.totals()
      if (t.generated === events && t.pending === 0) break
      if (performance.now() > deadline) throw new Error(`not accounted after 60 s: ${JSON.stringify(t)}`)
      await new Promise((r) => setTimeout(r, 5))
    }
    await collector.stop()
    await consumer
    const t = collector.totals()
    const absorbed = stall ? events - Math.max(0, takenBeforeStall) - t.droppedKernel : 0
    return { ringMiB, stalled: stall, generated: t.generated, delivered: t.delivered, droppedKernel: t.droppedKernel, droppedUser: t.droppedUser, absorbed }
  } finally {
    child.kill('SIGKILL')
    await collector.stop().catch(() => undefined)
  }
}

function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b)
  const m = Math.floor(s.length / 2)
  return s.length % 2 ? (s[m] ?? 0) : ((s[m - 1] ?? 0) + (s[m] ?? 0)) / 2
}

// One unmeasured run: JIT and the addon's first load are not what is measured.
await stallRun(ringsMiB[0] ?? 16, false)
const all: StallRun[] = []
for (let i = 0; i < runs; i++) {
  for (const stall of [false, true]) {
    for (const ringMiB of ringsMiB) {
      const r = await stallRun(ringMiB, stall)
      all.push(r)
      console.log(
        `run ${i + 1}: ring ${ringMiB} MiB, ${stall ? 'consumer blocked' : 'no stall (baseline)'}: dropped ${r.droppedKernel} of ${r.generated}` +
          (stall ? `, absorbed while blocked ${r.absorbed}` : ''),
      )
    }
  }
}
const table = ringsMiB.map((ringMiB) => {
  const of = (stall: boolean) => all.filter((r) => r.ringMiB === ringMiB && r.stalled === stall)
  const absorbed = median(of(true).map((r) => r.absorbed))
  return {
    ringMiB,
    /** Probe records the ring alone holds. */
    ringRecords: Math.floor((ringMiB << 20) / RING_BYTES_PER_RECORD),
    baselineDropped: median(of(false).map((r) => r.droppedKernel)),
    blockedDropped: median(of(true).map((r) => r.droppedKernel)),
    absorbedRecords: absorbed,
    absorbedBytes: absorbed * RING_BYTES_PER_RECORD,
  }
})
for (const row of table)
  console.log(`ring ${row.ringMiB} MiB: absorbed ${row.absorbedRecords} records (${(row.absorbedBytes / 2 ** 20).toFixed(1)} MiB of ring records) while blocked; baseline dropped ${row.baselineDropped}`)
console.log(
  JSON.stringify({
    events,
    runs,
    ringBytesPerRecord: RING_BYTES_PER_RECORD,
    table,
    allAccounted: all.every((r) => r.generated === events && r.generated === r.delivered + r.droppedKernel + r.droppedUser),
  }),
)
