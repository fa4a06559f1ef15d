/**
 * Data-plane benchmark: 4 synthetic collectors, 5,000,000 events in all, read through `events()`
 * and `batches()`, against a bare async-generator merge of the same batches (the baseline) in the
 * same run. Each variant runs in its own process (clean heap and RSS), several times; medians are
 * reported. A last variant checks memory with a consumer 10x slower than the producers (`block`).
 *
 *   npm run bench:merge [-- --runs 3 --events 5000000]
 *
 * The last output line is one JSON object.
 */
import { fork } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { parseArgs } from 'node:util'
import { CollectorManager, makeEvent, SyntheticCollector, type TapioEvent } from '../src/index.js'

const COLLECTORS = 4
const BATCH = 1024

type Variant = 'events' | 'batches' | 'baseline' | 'fresh-batches' | 'slow-consumer'

interface VariantResult {
  variant: Variant
  events: number
  seconds: number
  perSec: number
  peakRssMB: number
}

function trackRss(): { peak: () => number; stop: () => void } {
  let peak = process.memoryUsage.rss()
  const t = setInterval(() => {
    peak = Math.max(peak, process.memoryUsage.rss())
  }, 20)
  return {
    peak: () => Math.max(peak, process.memoryUsage.rss()) / 1024 / 1024,
    stop: () => clearInterval(t),
  }
}

async function runManager(variant: 'events' | 'batches' | 'fresh-batches', total: number): Promise<VariantResult> {
  const per = Math.floor(total / COLLECTORS)
  const mgr = new CollectorManager()
  for (let i = 0; i < COLLECTORS; i++) {
    mgr.addCollector(
      `c${i}`,
      new SyntheticCollector({ rate: 0, batchSize: BATCH, total: per, reuseBatch: variant !== 'fresh-batches' }),
      { restart: 'transient' },
    )
  }
  const rss = trackRss()
  let count = 0
  const expected = per * COLLECTORS
  await mgr.start()
  // The clock starts at the first event (steady-state throughput, as for the baseline: actor
  // start-up is not the data plane). Every consumer reads a field of every event, so no loop can
  // be optimised into a no-op.
  let t0 = 0
  let touched = 0
  if (variant === 'events') {
    for await (const e of mgr.events()) {
      if (t0 === 0) t0 = performance.now()
      touched += e.severity.length
      if (++count === expected) break
    }
  } else {
    outer: for await (const b of mgr.batches()) {
      if (t0 === 0) t0 = performance.now()
      for (let i = 0; i < b.length; i++) {
        touched += (b[i] as TapioEvent).severity.length
        if (++count === expected) break outer
      }
    }
  }
  if (touched === 0) throw new Error('nothing consumed')
  const seconds = (performance.now() - t0) / 1000
  await mgr.stop()
  rss.stop()
  return { variant, events: count, seconds, perSec: count / seconds, peakRssMB: rss.peak() }
}

/** The baseline: plain async generators yielding the same prebuilt batches, merged round-robin. */
async function runBaseline(total: number): Promise<VariantResult> {
  const per = Math.floor(total / COLLECTORS)
  const rss = trackRss()
  async function* source(name: string): AsyncGenerator<readonly TapioEvent[]> {
    const template = Array.from({ length: BATCH }, (_, i) => makeEvent(name, 'synthetic.tick', { seq: i, generation: 1 }))
    for (let sent = 0; sent < per; sent += BATCH) yield sent + BATCH <= per ? template : template.slice(0, per - sent)
  }
  async function* merge(sources: AsyncGenerator<readonly TapioEvent[]>[]): AsyncGenerator<readonly TapioEvent[]> {
    const live = [...sources]
    while (live.length > 0) {
      for (let i = 0; i < live.length; i++) {
        const r = await (live[i] as AsyncGenerator<readonly TapioEvent[]>).next()
        if (r.done) live.splice(i--, 1)
        else yield r.value
      }
    }
  }
  let count = 0
  let touched = 0
  let t0 = 0
  for await (const b of merge(Array.from({ length: COLLECTORS }, (_, i) => source(`c${i}`)))) {
    if (t0 === 0) t0 = performance.now()
    for (let i = 0; i < b.length; i++) {
      touched += (b[i] as TapioEvent).severity.length
      count++
    }
  }
  if (touched === 0) throw new Error('nothing consumed')
  const seconds = (performance.now() - t0) / 1000
  rss.stop()
  return { variant: 'baseline', events: count, seconds, perSec: count / seconds, peakRssMB: rss.peak() }
}

/** Producers at a fixed rate, a consumer that needs 10x their time per event, `block` policy. */
async function runSlowConsumer(seconds: number): Promise<VariantResult> {
  const producerRate = 50_000
  const mgr = new CollectorManager({ overflow: 'block' })
  for (let i = 0; i < COLLECTORS; i++) {
    mgr.addCollector(`c${i}`, new SyntheticCollector({ rate: producerRate, batchSize: 256 }))
  }
  // Busy work per event sized so the consumer manages a tenth of the producers' total rate.
  const perEventNs = 1e9 / ((producerRate * COLLECTORS) / 10)
  const rss = trackRss()
  await mgr.start()
  let count = 0
  const t0 = performance.now()
  const end = t0 + seconds * 1000
  outer: for await (const b of mgr.batches()) {
    for (let i = 0; i < b.length; i++) {
      const until = process.hrtime.bigint() + BigInt(Math.round(perEventNs))
      while (process.hrtime.bigint() < until) {}
      count++
    }
    if (performance.now() > end) break outer
  }
  const secs = (performance.now() - t0) / 1000
  const st = mgr.statistics()
  await mgr.stop({ timeoutMs: 2000 })
  rss.stop()
  if (st.droppedEvents.buffer_full + st.droppedEvents.evicted + st.droppedEvents.sampled > 0) throw new Error('block policy dropped events')
  return { variant: 'slow-consumer', events: count, seconds: secs, perSec: count / secs, peakRssMB: rss.peak() }
}

async function child(variant: Variant, total: number): Promise<void> {
  const r =
    variant === 'baseline'
      ? await runBaseline(total)
      : variant === 'slow-consumer'
        ? await runSlowConsumer(5)
        : await runManager(variant, total)
  process.send?.(r)
}

function runInChild(variant: Variant, total: number): Promise<VariantResult> {
  return new Promise((resolve, reject) => {
    const c = fork(fileURLToPath(import.meta.url), ['--child', variant, '--events', String(total)], { stdio: 'inherit' })
    let result: VariantResult | undefined
    c.on('message', (m) => {
      result = m as VariantResult
    })
    c.on('exit', (code) => (result && code === 0 ? resolve(result) : reject(new Error(`${variant}: child exited ${code}`))))
  })
}

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b)
  return s[Math.floor(s.length / 2)] as number
}

const { values } = parseArgs({
  options: {
    child: { type: 'string' },
    events: { type: 'string', default: '5000000' },
    runs: { type: 'string', default: '3' },
  },
})
const total = Number(values.events)
if (values.child) {
  await child(values.child as Variant, total)
} else {
  const runs = Number(values.runs)
  const all: Record<string, VariantResult[]> = {}
  const order: Variant[] = ['baseline', 'events', 'batches', 'fresh-batches', 'slow-consumer']
  for (let r = 0; r < runs; r++) {
    // Interleave variants so machine noise spreads over all of them.
    for (const v of order) {
      const res = await runInChild(v, total)
      ;(all[v] ??= []).push(res)
      console.log(JSON.stringify({ run: r + 1, ...res, perSec: Math.round(res.perSec), peakRssMB: Math.round(res.peakRssMB) }))
    }
  }
  const med = (v: Variant) => median((all[v] ?? []).map((x) => x.perSec))
  const baselinePerSec = med('baseline')
  const summary = {
    bench: 'merge',
    collectors: COLLECTORS,
    events: total,
    runs,
    eventsPerSec: Math.round(med('events')),
    batchesPerSec: Math.round(med('batches')),
    freshBatchesPerSec: Math.round(med('fresh-batches')),
    baselinePerSec: Math.round(baselinePerSec),
    eventsVsBaseline: Number((med('events') / baselinePerSec).toFixed(3)),
    batchesVsBaseline: Number((med('batches') / baselinePerSec).toFixed(3)),
    slowConsumerPeakRssMB: Math.round(Math.max(...(all['slow-consumer'] ?? []).map((x) => x.peakRssMB))),
    slowConsumerEventsPerSec: Math.round(med('slow-consumer')),
    peakRssMB: Object.fromEntries(Object.entries(all).map(([k, v]) => [k, Math.round(Math.max(...v.map((x) => x.peakRssMB)))])),
  }
  console.log(JSON.stringify(summary))
}
