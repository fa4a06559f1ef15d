/**
 * Kernel path benchmark: a C load generator calls getppid() as fast as it can (a traced event
 * each, filtered to its pid in the kernel); we measure events/s arriving in JavaScript as
 * TapioEvents through the ebpf collector, and, in the same run, a plain C libbpf consumer of the
 * same BPF object as the baseline. The last output line is one JSON object.
 *
 * usage: node dist/bench/ebpf.js [events per run (5000000)] [runs (3)]
 */
import { execFileSync, spawn } from 'node:child_process'
import { join } from 'node:path'
import { EbpfCollector } from '../src/collectors/ebpf/index.js'
import { repoRoot } from './support/repo-root.js'

const events = Number(process.argv[2] ?? 5_000_000)
const runs = Number(process.argv[3] ?? 3)
const ringBytes = 16 << 20
const drainIntervalMs = 5

const root = repoRoot()
const out = join(root, 'bench', 'ebpf', 'out')
execFileSync('bash', [join(root, 'bench', 'ebpf', 'build.sh')], { stdio: 'inherit' })

interface JsRun {
  eventsPerSec: number
  generated: number
  delivered: number
  droppedKernel: number
  droppedUser: number
  seconds: number
}

async function jsRun(count = events): Promise<JsRun> {
  const events = count
  const child = spawn(join(out, 'loadgen'), [String(events)], { stdio: ['pipe', 'pipe', 'inherit'] })
  const pid = await new Promise<number>((resolve, reject) => {
    child.once('error', reject)
    child.stdout.once('data', (c: Buffer) => resolve(Number(c.toString().split('\n')[0])))
  })
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()))
  const collector = new EbpfCollector({
    programs: { exec: false, exit: false, tcp: false, oom: false, openat: false },
    probePid: pid,
    ringBufferBytes: ringBytes,
    drainIntervalMs,
  })
  await collector.start(AbortSignal.timeout(30_000))
  let received = 0
  let doneAt = 0
  let resolveAll: () => void = () => {}
  const all = new Promise<void>((r) => {
    resolveAll = r
  })
  const consumer = (async () => {
    for await (const item of collector.events()) received += Array.isArray(item) ? item.length : 1
  })()
  const t0 = performance.now()
  child.stdin.end('go\n')
  await exited
  // Drops never reach the consumer: poll (cheaply, every 5 ms) until everything is accounted for.
  const poll = setInterval(() => {
    const t = collector.totals()
    if (t.generated === events && t.pending === 0 && doneAt === 0) {
      doneAt = performance.now()
      resolveAll()
    }
  }, 5)
  await all
  clearInterval(poll)
  await collector.stop()
  await consumer
  const t = collector.totals()
  const seconds = (doneAt - t0) / 1000
  return { eventsPerSec: Math.round(t.delivered / seconds), seconds, generated: t.generated, delivered: t.delivered, droppedKernel: t.droppedKernel, droppedUser: t.droppedUser + (received - t.delivered) }
}

interface CRun {
  eventsPerSec: number
  generated: number
  delivered: number
  droppedKernel: number
}

function cRun(): CRun {
  const text = execFileSync(join(out, 'consumer'), [String(events), String(ringBytes), String(drainIntervalMs), join(out, 'loadgen')], {
    encoding: 'utf8',
  })
  return JSON.parse(text.trim().split('\n').pop() ?? '{}') as CRun
}

function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b)
  const m = Math.floor(s.length / 2)
  return s.length % 2 ? (s[m] ?? 0) : ((s[m - 1] ?? 0) + (s[m] ?? 0)) / 2
}

const js: JsRun[] = []
const c: CRun[] = []
// One unmeasured round first: JIT, heap sizing and the addon's first load are not the kernel path.
await jsRun()
cRun()
for (let i = 0; i < runs; i++) {
  const j = await jsRun()
  js.push(j)
  console.log(`js  run ${i + 1}: ${j.eventsPerSec.toLocaleString()} events/s (delivered ${j.delivered}, dropped kernel ${j.droppedKernel}, user ${j.droppedUser})`)
  const r = cRun()
  c.push(r)
  console.log(`c   run ${i + 1}: ${r.eventsPerSec.toLocaleString()} events/s (delivered ${r.delivered}, dropped kernel ${r.droppedKernel})`)
}
const jsMedian = median(js.map((r) => r.eventsPerSec))
const cMedian = median(c.map((r) => r.eventsPerSec))
const sum = (f: (r: JsRun) => number) => js.reduce((a, r) => a + f(r), 0)
const result = {
  events,
  runs,
  ringBytes,
  drainIntervalMs,
  jsEventsPerSec: jsMedian,
  cEventsPerSec: cMedian,
  ratio: Number((jsMedian / cMedian).toFixed(3)),
  generated: sum((r) => r.generated),
  delivered: sum((r) => r.delivered),
  droppedKernel: sum((r) => r.droppedKernel),
  droppedUser: sum((r) => r.droppedUser),
  allAccounted: js.every((r) => r.generated === events && r.delivered + r.droppedKernel + r.droppedUser === events),
  jsRuns: js.map((r) => r.eventsPerSec),
  cRuns: c.map((r) => r.eventsPerSec),
}
console.log(JSON.stringify(result))
