/**
 * Performance testing of your setup: how many events per second the manager moves from N
 * collectors to one consumer, measured beside a baseline in the same run (the same sources read
 * directly, no manager), and what an overloaded buffer does (a slow consumer under `drop-newest`:
 * every event accepted is delivered, dropped with a reason, or still queued).
 *
 *   node dist/examples/performance.js [--collectors N] [--seconds S] [--batch B]
 *
 * The last line on stdout is JSON: baseline and managed events/s, their ratio, batch latency
 * percentiles, and the overload accounting. Synthetic sources stand in for yours: replace them
 * with your own collectors to measure those.
 */
import { parseArgs } from 'node:util'
import { CollectorManager, type EventInput, nowNs, type OverflowPolicy, sumDrops, SyntheticCollector } from 'tapio-collector-manager'

const { values } = parseArgs({
  options: {
    collectors: { type: 'string', default: '4' },
    seconds: { type: 'string', default: '3' },
    batch: { type: 'string', default: '256' },
  },
})
const collectors = Number(values.collectors)
const seconds = Number(values.seconds)
const batchSize = Number(values.batch)
for (const [name, v] of [['collectors', collectors], ['seconds', seconds], ['batch', batchSize]] as const)
  if (!(Number.isFinite(v) && v > 0)) throw new Error(`--${name}: expected a positive number, got ${String(values[name])}`)

const source = () => new SyntheticCollector({ rate: 0, batchSize })

/** The sources alone: N collectors read in turn, for the same time. */
async function baseline(): Promise<number> {
  const started = Array.from({ length: collectors }, source)
  for (const c of started) await c.start(AbortSignal.timeout(10_000))
  const iterators = started.map((c) => c.events()[Symbol.asyncIterator]())
  const deadline = performance.now() + seconds * 1000
  let events = 0
  while (performance.now() < deadline) {
    for (const it of iterators) {
      const r = await it.next()
      if (!r.done) events += Array.isArray(r.value) ? r.value.length : 1
    }
  }
  for (const c of started) await c.stop()
  return events / seconds
}

function percentile(sorted: readonly number[], p: number): number {
  return sorted.length === 0 ? 0 : (sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] as number)
}

/** The same sources through the manager; latency = consumer's now - the batch's first timestamp. */
async function managed(overflow: OverflowPolicy, consumerDelayMs: number) {
  const mgr = new CollectorManager({ overflow })
  for (let i = 0; i < collectors; i++) mgr.addCollector(`gen-${i}`, source)
  await mgr.start()
  const latenciesMs: number[] = []
  let delivered = 0
  const started = performance.now()
  const stop = setTimeout(() => void mgr.stop(), seconds * 1000)
  for await (const batch of mgr.batches()) {
    delivered += batch.length
    const first = batch[0] as EventInput | undefined
    if (first?.timestamp) latenciesMs.push(Number(BigInt(nowNs()) - BigInt(first.timestamp)) / 1e6)
    if (consumerDelayMs > 0) await new Promise((r) => setTimeout(r, consumerDelayMs))
  }
  clearTimeout(stop)
  const elapsed = (performance.now() - started) / 1000
  latenciesMs.sort((a, b) => a - b)
  return { mgr, delivered, eventsPerSec: delivered / elapsed, latencyMs: { p50: percentile(latenciesMs, 50), p99: percentile(latenciesMs, 99) } }
}

const base = await baseline()
const fast = await managed('block', 0)
// A consumer that sleeps 20 ms per batch cannot keep up: drop-newest sheds load, and says so.
const slow = await managed('drop-newest', 20)
const s = slow.mgr.statistics()
const conserved = Object.values(s.collectors).every((c) => c.accepted === c.delivered + c.droppedTotal + c.queued)

process.stdout.write(
  `${JSON.stringify({
    collectors,
    seconds,
    batchSize,
    baseline: { eventsPerSec: Math.round(base) },
    managed: { eventsPerSec: Math.round(fast.eventsPerSec), latencyMs: fast.latencyMs, ratioToBaseline: Number((fast.eventsPerSec / base).toFixed(3)) },
    overload: {
      policy: 'drop-newest',
      accepted: s.totalEvents,
      delivered: s.deliveredEvents,
      dropped: sumDrops(s.droppedEvents),
      droppedByReason: s.droppedEvents,
      conserved,
    },
  })}\n`,
)
