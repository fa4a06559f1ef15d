/**
 * What the inspector's live event sample costs the agent's consumer loop, per event. The agent
 * hands every consumed batch to `inspector.observe(batch)` after its outputs wrote it; this
 * measures that call against the same loop without it (the baseline), in the same run, and puts
 * the difference next to what the least an agent does per event costs: serialising it to NDJSON
 * (every stdout/file output does), measured in the same run too (`share` = extra / serialise).
 *
 * - `baseline`: the loop over merged batches, nothing sampled;
 * - `nobody-watching`: `observe` with no card asking (the normal case);
 * - `watching-one`: one card open on a collector that sends a quarter of the batches;
 * - `watching-absent`: one card open on a collector that sends nothing (every batch scanned to the
 *   end: the worst case);
 * - `watching-all`: cards open on all four collectors.
 *
 * - `watching-absent-uncapped`: the worst case again with the scan budget never running out (a
 *   stream below its ceiling of 200,000 events/s): the cost per event looked at.
 *
 * Batches of 1024 events, one collector per batch in turn (the merge buffer's round-robin takes),
 * plus a mixed-batch case for `watching-absent`. The loop runs far above 200,000 events/s, so the
 * other variants show the capped regime of a busy agent. Medians of several runs.
 *
 *   npm run bench:inspector-sample [-- --runs 7 --events 20000000]
 *
 * The last output line is one JSON object.
 */
import { parseArgs } from 'node:util'
import type { TapioEvent } from '../src/events/event.js'
import { EventSampler } from '../src/inspector/sampler.js'
import { NdjsonBatch } from '../src/outputs/ndjson.js'

const BATCH = 1024
const SOURCES = ['ebpf', 'kubernetes', 'systemd', 'cni'] as const

const { values } = parseArgs({ options: { runs: { type: 'string', default: '7' }, events: { type: 'string', default: '20000000' } } })
const runs = Number(values.runs)
const total = Number(values.events)

function makeBatches(mixed: boolean): TapioEvent[][] {
  // 64 distinct batches reused: the loop measures the sampler, not allocation.
  return Array.from({ length: 64 }, (_, b) =>
    Array.from({ length: BATCH }, (_, i) => {
      const source = SOURCES[(mixed ? i : b) % SOURCES.length] as string
      return { id: `${b}-${i}`, timestamp: String(i), type: 'bench.tick', source, severity: 'info', data: { i } } as TapioEvent
    }),
  )
}

type Variant = 'baseline' | 'nobody-watching' | 'watching-one' | 'watching-absent' | 'watching-absent-mixed' | 'watching-all' | 'watching-absent-uncapped'

function run(variant: Variant): number {
  const batches = makeBatches(variant === 'watching-absent-mixed')
  // `uncapped`: a clock that moves 100 ms per batch, so the scan budget never runs out (what a
  // stream below the ceiling of 200,000 events/s costs per event).
  let batchNo = 0
  const sampler = variant === 'watching-absent-uncapped' ? new EventSampler(8, () => batchNo * 100) : new EventSampler()
  if (variant === 'watching-one') sampler.watch('systemd')
  if (variant === 'watching-absent' || variant === 'watching-absent-mixed' || variant === 'watching-absent-uncapped') sampler.watch('not-configured')
  if (variant === 'watching-all') for (const s of SOURCES) sampler.watch(s)
  const observe = variant === 'baseline' ? undefined : (b: readonly TapioEvent[]) => sampler.observe(b)
  let sink = 0
  const n = Math.ceil(total / BATCH)
  const t0 = process.hrtime.bigint()
  for (let i = 0; i < n; i++) {
    batchNo = i
    const batch = batches[i % batches.length] as TapioEvent[]
    sink += batch.length
    observe?.(batch)
    // The page takes once a second; here every 1000 batches, so samples stay fresh.
    if (i % 1000 === 0) for (const s of SOURCES) sink += sampler.take(s).events.length
  }
  const ns = Number(process.hrtime.bigint() - t0)
  if (sink < 0) console.log(sink)
  return ns / (n * BATCH)
}

/** ns per event to serialise batches to NDJSON (fresh wrappers: no cached form reused). */
function serialise(): number {
  const batches = makeBatches(false)
  const n = Math.ceil(Math.min(total, 1_000_000) / BATCH)
  let sink = 0
  const t0 = process.hrtime.bigint()
  for (let i = 0; i < n; i++) sink += NdjsonBatch.from([...(batches[i % batches.length] as TapioEvent[])]).bytes.length
  const ns = Number(process.hrtime.bigint() - t0)
  if (sink < 0) console.log(sink)
  return ns / (n * BATCH)
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] as number
const variants: Variant[] = ['baseline', 'nobody-watching', 'watching-one', 'watching-absent', 'watching-absent-mixed', 'watching-all', 'watching-absent-uncapped']
const results: Record<string, number[]> = Object.fromEntries(variants.map((v) => [v, []]))
const serialiseRuns: number[] = []
for (let r = 0; r < runs; r++) {
  for (const v of variants) results[v]?.push(run(v))
  serialiseRuns.push(serialise())
}
const base = median(results.baseline as number[])
const ser = median(serialiseRuns)
const summary = Object.fromEntries(
  variants.map((v) => {
    const m = median(results[v] as number[])
    return [v, { nsPerEvent: +m.toFixed(3), extraNsPerEvent: +(m - base).toFixed(3), shareOfSerialise: +((m - base) / ser).toFixed(5) }]
  }),
)
for (const v of variants) console.log(`${v.padEnd(24)} ${summary[v]?.nsPerEvent.toFixed(3)} ns/event (${summary[v]?.extraNsPerEvent.toFixed(3)} more; ${((summary[v]?.shareOfSerialise ?? 0) * 100).toFixed(3)}% of serialising)`)
console.log(`serialise to NDJSON      ${ser.toFixed(1)} ns/event`)
console.log(JSON.stringify({ bench: 'inspector-sample', runs, eventsPerRun: total, batch: BATCH, baselineNsPerEvent: +base.toFixed(3), serialiseNsPerEvent: +ser.toFixed(1), variants: summary }))
