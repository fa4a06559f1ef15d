/**
 * The NDJSON serialiser alone: batches of events into NDJSON bytes with line offsets (what every
 * output and tail client shares), in the same run:
 *
 *   baseline  JSON.stringify per event, the lines written into one buffer (`frameLines`: what
 *             NdjsonBatch did before the compiled serialisers)
 *   compiled  the per-type serialisers compiled from the event schemas (`encodeNdjson`)
 *
 * over four workloads shaped as the agent sees them: synthetic ticks (as the synthetic collector
 * and the pump make them), eBPF probe hits (the bench:agent eBPF load), kernel.process.exec with
 * a container cgroup, and k8s.pod.updated (labels, owner references). Variants alternate, `--runs`
 * times each; events are made afresh for every run (outside the clock) so no run reads strings an
 * earlier one flattened. Every run checks that both variants wrote the same bytes.
 *
 *   npm run bench:serialise [-- --runs 9 --events 200000]   (node --expose-gc: collected between runs)
 *
 * Figures: medians of events per second (wall clock) and CPU nanoseconds per event (this process'
 * user+system time: the steadier figure on a shared machine). The last output line is one JSON object.
 */
import { parseArgs } from 'node:util'
import { type EventInput, nextEventId, nowNs, stampEvent, type TapioEvent } from '../src/index.js'
import { encodeNdjson } from '../src/outputs/json/event-encoder.js'
import { frameLines } from '../src/outputs/ndjson.js'

const { values } = parseArgs({ options: { runs: { type: 'string', default: '9' }, events: { type: 'string', default: '200000' } } })
const RUNS = Number(values.runs)
const EVENTS = Number(values.events)
const BATCH = 1000

type Make = (n: number) => TapioEvent[]

const WORKLOADS: Record<string, Make> = {
  /** As the synthetic collector yields them and the pump stamps them. */
  synthetic: (base) => {
    const ts = nowNs()
    const b: TapioEvent[] = new Array(BATCH)
    for (let i = 0; i < BATCH; i++) {
      const e: EventInput = { type: 'synthetic.tick', severity: 'info', timestamp: ts, data: { seq: base + i, generation: 1 }, id: undefined, source: undefined }
      b[i] = stampEvent(e, 'gen0')
    }
    return b
  },
  probe: () => {
    const b: TapioEvent[] = new Array(BATCH)
    for (let i = 0; i < BATCH; i++) {
      b[i] = { id: nextEventId(), timestamp: nowNs(), type: 'kernel.probe.hit', source: 'ebpf', severity: 'debug', data: { pid: 4242 + (i & 1), tid: 4242, uid: 0, comm: 'loadgen', cgroupId: '4711', cgroupPath: '/user.slice/user-0.slice/session-1.scope' } }
    }
    return b
  },
  exec: (base) => {
    const b: TapioEvent[] = new Array(BATCH)
    for (let i = 0; i < BATCH; i++) {
      const pid = 10_000 + ((base + i) % 50_000)
      b[i] = {
        id: nextEventId(),
        timestamp: nowNs(),
        type: 'kernel.process.exec',
        source: 'ebpf',
        severity: 'info',
        data: { pid, tid: pid, uid: 1000, comm: 'python3', cgroupId: '123456', cgroupPath: `/kubepods.slice/kubepods-pod${i % 50}.slice/cri-containerd-${'ab'.repeat(32)}.scope`, ppid: 1, filename: '/usr/bin/python3' },
      }
    }
    return b
  },
  pod: (base) => {
    const b: TapioEvent[] = new Array(BATCH)
    for (let i = 0; i < BATCH; i++) {
      const n = (base + i) % 500
      b[i] = {
        id: nextEventId(),
        timestamp: nowNs(),
        type: 'k8s.pod.updated',
        source: 'kubernetes',
        severity: 'info',
        entity: { kind: 'Pod', name: `web-${n}`, namespace: 'prod', uid: `uid-${n}` },
        data: {
          kind: 'Pod',
          namespace: 'prod',
          name: `web-${n}`,
          uid: `uid-${n}`,
          resourceVersion: String(100_000 + base + i),
          labels: { app: 'web', 'app.kubernetes.io/name': 'web', 'pod-template-hash': '7d9f8c6b5' },
          ownerReferences: [{ kind: 'ReplicaSet', name: 'web-7d9f8c6b5', uid: 'rs-uid', controller: true }],
          ownerChain: [{ kind: 'ReplicaSet', name: 'web-7d9f8c6b5' }, { kind: 'Deployment', name: 'web' }],
          nodeName: 'node-1',
          phase: 'Running',
        },
      }
    }
    return b
  },
}

function baseline(batch: readonly TapioEvent[]): Buffer {
  const lines = new Array<string>(batch.length)
  for (let i = 0; i < batch.length; i++) lines[i] = JSON.stringify(batch[i])
  return frameLines(lines, '', '\n').bytes
}

function compiled(batch: readonly TapioEvent[]): Buffer {
  return encodeNdjson(batch).bytes
}

const VARIANTS = { baseline, compiled } as const
type Variant = keyof typeof VARIANTS

function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b)
  const m = Math.floor(s.length / 2)
  return s.length % 2 ? (s[m] as number) : ((s[m - 1] as number) + (s[m] as number)) / 2
}

interface Sample {
  perSec: number
  cpuNsPerEvent: number
}

function measure(workload: Make, variant: Variant): Sample {
  const batches: TapioEvent[][] = []
  for (let n = 0; n < EVENTS; n += BATCH) batches.push(workload(n))
  const f = VARIANTS[variant]
  // The garbage of the previous run is collected before the clock starts, not charged to this one.
  ;(globalThis as { gc?: () => void }).gc?.()
  let bytes = 0
  const cpu0 = process.cpuUsage()
  const t0 = performance.now()
  for (let i = 0; i < batches.length; i++) bytes += f(batches[i] as TapioEvent[]).length
  const seconds = (performance.now() - t0) / 1000
  const cpu = process.cpuUsage(cpu0)
  const events = batches.length * BATCH
  if (bytes === 0) throw new Error('nothing serialised')
  return { perSec: events / seconds, cpuNsPerEvent: ((cpu.user + cpu.system) * 1000) / events }
}

const results: Record<string, Record<Variant, Sample[]>> = {}
// One unmeasured round: both variants warmed up (and compiled) before the first figure.
for (const make of Object.values(WORKLOADS)) for (const v of Object.keys(VARIANTS) as Variant[]) measure(make, v)
for (let r = 0; r < RUNS; r++) {
  for (const [name, make] of Object.entries(WORKLOADS)) {
    const order: Variant[] = r % 2 === 0 ? ['baseline', 'compiled'] : ['compiled', 'baseline']
    for (const v of order) (results[name] ??= { baseline: [], compiled: [] })[v].push(measure(make, v))
    // Each variant gets events of its own (fresh ids and timestamps): one more batch, both ways, must match.
    const check = make(r * BATCH)
    if (!baseline(check).equals(compiled(check))) throw new Error(`${name}: the compiled serialiser wrote other bytes than JSON.stringify`)
  }
}

const summary: Record<string, unknown> = { bench: 'serialise', runs: RUNS, eventsPerRun: EVENTS, batch: BATCH }
for (const [name, r] of Object.entries(results)) {
  const b = median(r.baseline.map((s) => s.perSec))
  const c = median(r.compiled.map((s) => s.perSec))
  const bCpu = median(r.baseline.map((s) => s.cpuNsPerEvent))
  const cCpu = median(r.compiled.map((s) => s.cpuNsPerEvent))
  summary[name] = {
    baselinePerSec: Math.round(b),
    compiledPerSec: Math.round(c),
    ratio: Number((c / b).toFixed(2)),
    baselineCpuNsPerEvent: Math.round(bCpu),
    compiledCpuNsPerEvent: Math.round(cCpu),
    cpuRatio: Number((bCpu / cCpu).toFixed(2)),
  }
  console.log(`${name.padEnd(10)} JSON.stringify ${Math.round(b).toLocaleString('en').padStart(11)} events/s (${Math.round(bCpu)} CPU ns/event)  compiled ${Math.round(c).toLocaleString('en').padStart(11)} events/s (${Math.round(cCpu)} CPU ns/event)  ratio ${(c / b).toFixed(2)}`)
}
console.log(JSON.stringify(summary))
