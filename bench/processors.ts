/**
 * The processor stage's cost in the agent's consumer loop: the same batches, in the same run,
 * through the loop the agent runs (chain -> NdjsonBatch -> write the NDJSON bytes to /dev/null)
 *
 *   without   processors: []            (the stage skipped: serialise and write)
 *   with      filter (exclude debug) + sample (1 in 2 kernel.file.open, a token bucket per type)
 *             + enrich (pod identity from a 50-pod metadata source: container-id hits for the
 *             containerised execs, misses for host processes)
 *
 * alternating, `--runs` times each; the figures are medians of events per second *entering* the
 * loop (the chain removes about 20% of them, reported as `deliveredFraction`, so `with` also
 * serialises less: the ratio is the cost of the whole stage as a user sees it, not of the chain alone).
 *
 *   npm run bench:processors [-- --runs 11 --events 300000 --batch 1000] [--correlate]
 *
 * `--correlate` appends a `correlate` processor (every built-in chain) to the `with` chain: its
 * cost on a stream where no chain completes (one type lookup per event; pod updates are looked up
 * as the veth chain's join-only step).
 *
 * The last output line is one JSON object.
 */
import { closeSync, openSync, writeSync } from 'node:fs'
import { parseArgs } from 'node:util'
import { createEnricher } from '../src/enrich/enricher.js'
import type { PodMetadata } from '../src/core/pod-metadata.js'
import { makeEvent, type TapioEvent } from '../src/index.js'
import { NdjsonBatch } from '../src/outputs/ndjson.js'
import { buildProcessorChain, type ProcessorSpec } from '../src/processors/index.js'

const { values } = parseArgs({ options: { correlate: { type: 'boolean', default: false }, runs: { type: 'string', default: '11' }, events: { type: 'string', default: '300000' }, batch: { type: 'string', default: '1000' } } })
const RUNS = Number(values.runs)
const EVENTS = Number(values.events)
const BATCH = Number(values.batch)

const PODS: PodMetadata[] = Array.from({ length: 50 }, (_, i) => ({
  namespace: i % 2 ? 'prod' : 'dev',
  name: `web-${i}`,
  uid: `uid-${i}`,
  ips: [`10.0.0.${i}`],
  hostNetwork: false,
  labels: { app: 'web' },
  containers: [{ name: 'app', id: `c${i.toString().padStart(63, '0')}` }],
  ownerChain: [{ kind: 'Deployment', name: 'web' }],
  workload: { kind: 'Deployment', name: 'web' },
}))
const byContainer = new Map(PODS.map((p) => [p.containers[0]?.id as string, p]))
const source = {
  podByUid: (uid: string) => PODS.find((p) => p.uid === uid),
  podByContainerId: (id: string) => byContainer.get(id.replace(/^[a-z]+:\/\//, '')),
  podByIp: () => undefined,
  generation: 1,
  status: () => 'ready' as const,
}

/** 60% containerised execs, 20% host file opens, 10% pod updates, 10% debug noise. */
function makeBatches(): TapioEvent[][] {
  const out: TapioEvent[][] = []
  for (let n = 0; n < EVENTS; n += BATCH) {
    const b: TapioEvent[] = []
    for (let i = 0; i < BATCH; i++) {
      const k = (n + i) % 10
      if (k < 6) {
        const pod = PODS[(n + i) % PODS.length] as PodMetadata
        b.push(
          makeEvent('ebpf', 'kernel.process.exec', { pid: 1000 + i, ppid: 1, comm: 'sh', filename: '/bin/sh', argv: ['sh', '-c', 'true'], uid: 0 } as never, {
            k8s: { containerId: `containerd://${pod.containers[0]?.id}` },
          }),
        )
      } else if (k < 8) b.push(makeEvent('ebpf', 'kernel.file.open', { pid: 1, comm: 'systemd', path: '/etc/hosts', flags: 0 } as never))
      else if (k < 9) b.push(makeEvent('kubernetes', 'k8s.pod.updated', { name: 'web-1', namespace: 'prod', phase: 'Running', labels: { app: 'web' } } as never))
      else b.push(makeEvent('app', 'app.debug', { msg: 'tick', n: i } as never, { severity: 'debug' }))
    }
    out.push(b)
  }
  return out
}

const CHAIN: ProcessorSpec[] = [
  { type: 'filter', exclude: { severities: ['debug'] } },
  { type: 'sample', perType: { 'kernel.file.open': 2 }, rateLimit: { key: 'type', perSecond: 1e12 } },
  { type: 'enrich' },
  ...(values.correlate ? [{ type: 'correlate' } as const] : []),
]

function runOnce(batches: readonly TapioEvent[][], withProcessors: boolean, fd: number): { perSec: number; delivered: number } {
  const chain = withProcessors ? buildProcessorChain(CHAIN, { outputs: ['stdout'], enricher: createEnricher(source) }) : undefined
  let delivered = 0
  const t0 = process.hrtime.bigint()
  for (const merged of batches) {
    const result = chain ? chain.run(merged) : { events: merged }
    if (result.events.length === 0) continue
    const batch = NdjsonBatch.from(result.events)
    writeSync(fd, batch.bytes)
    delivered += batch.length
  }
  const s = Number(process.hrtime.bigint() - t0) / 1e9
  if (chain) {
    // The stage's own law, checked on every run: nothing unaccounted.
    const st = chain.statistics()
    const dropped = Object.values(st.dropped).reduce((a, b) => a + b, 0)
    if (st.received !== EVENTS || st.delivered !== delivered || st.received + st.emitted !== delivered + dropped) throw new Error(`accounting broken: ${JSON.stringify(st)}`)
  } else if (delivered !== EVENTS) throw new Error(`delivered ${delivered} of ${EVENTS}`)
  return { perSec: EVENTS / s, delivered }
}

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b)
  const m = s.length >> 1
  return s.length % 2 ? (s[m] as number) : ((s[m - 1] as number) + (s[m] as number)) / 2
}

const batches = makeBatches()
const fd = openSync('/dev/null', 'w')
// Warm-up of both paths (JIT), not counted.
runOnce(batches, false, fd)
runOnce(batches, true, fd)
const without: number[] = []
const withP: number[] = []
let delivered = 0
for (let r = 0; r < RUNS; r++) {
  without.push(runOnce(batches, false, fd).perSec)
  const w = runOnce(batches, true, fd)
  withP.push(w.perSec)
  delivered = w.delivered
  console.log(`run ${r + 1}: without ${Math.round(without[r] as number)}/s, with ${Math.round(w.perSec)}/s`)
}
closeSync(fd)
const withoutProcessorsPerSec = Math.round(median(without))
const withProcessorsPerSec = Math.round(median(withP))
console.log(
  JSON.stringify({
    bench: 'processors',
    events: EVENTS,
    batch: BATCH,
    runs: RUNS,
    chain: CHAIN.map((p) => p.type).join('+'),
    deliveredFraction: delivered / EVENTS,
    withoutProcessorsPerSec,
    withProcessorsPerSec,
    ratio: Number((withProcessorsPerSec / withoutProcessorsPerSec).toFixed(3)),
  }),
)
