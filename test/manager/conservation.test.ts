import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { type Collector, CollectorStateError } from '../../src/core/collector.js'
import { HandoffQueue, type HandoffOverflow } from '../../src/core/handoff-queue.js'
import { queueStatistics, type SourceStatistics, sumValues } from '../../src/core/statistics.js'
import type { EventInput } from '../../src/events/event.js'
import { CollectorManager, type CollectorStatistics, type OverflowPolicy, sumDrops } from '../../src/index.js'
import { sleep } from '../support/wait.js'

/**
 * A collector on the shared hand-off queue whose source the test drives. Each registration makes a
 * fresh instance per start (the factory form), so cumulative counters must survive instances.
 */
class Source {
  current: Instance | undefined
  instances = 0
  constructor(
    readonly capacity: number,
    readonly overflow: HandoffOverflow,
  ) {}
  factory = (): Collector => {
    this.instances += 1
    return new Instance(this)
  }
}

class Instance implements Collector {
  private queue: HandoffQueue | undefined
  private crashes = 0
  constructor(private readonly src: Source) {}

  async start(signal: AbortSignal): Promise<void> {
    if (this.queue && !this.queue.isEnded) throw new CollectorStateError('already started')
    signal.throwIfAborted()
    this.queue = new HandoffQueue({ capacity: this.src.capacity, overflow: this.src.overflow })
    this.src.current = this
  }

  async stop(): Promise<void> {
    this.queue?.end()
    if (this.src.current === this) this.src.current = undefined
  }

  events(): AsyncIterable<readonly EventInput[]> {
    if (!this.queue) throw new CollectorStateError('events() before start')
    return this.queue
  }

  produce(n: number): void {
    const batch: EventInput[] = []
    for (let i = 0; i < n; i++) batch.push({ type: 'conservation.tick', data: { i } })
    this.queue?.push(batch)
  }

  crash(): void {
    this.crashes += 1
    this.queue?.fail(new Error('injected crash'))
  }

  statistics(): SourceStatistics {
    const q = this.queue?.counters() ?? { pushed: 0, taken: 0, dropped: { queue_full: 0, queue_evicted: 0, discarded: 0 }, queued: 0 }
    return queueStatistics(q, { crashes: this.crashes })
  }
}

/** The law, per registration: produced = delivered + dropped (source and buffer) + queued (source and buffer). */
function balance(c: CollectorStatistics): { produced: number; accounted: number } {
  const s = c.source as SourceStatistics
  return { produced: s.produced, accounted: c.delivered + sumValues(s.dropped) + sumDrops(c.dropped) + s.queued + c.queued }
}

type Step =
  | { kind: 'produce'; who: number; n: number }
  | { kind: 'crash'; who: number }
  | { kind: 'restart'; who: number }
  | { kind: 'pause'; ms: number }

const step: fc.Arbitrary<Step> = fc.oneof(
  { weight: 6, arbitrary: fc.record({ kind: fc.constant('produce' as const), who: fc.nat(2), n: fc.integer({ min: 1, max: 40 }) }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('crash' as const), who: fc.nat(2) }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('restart' as const), who: fc.nat(2) }) },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant('pause' as const), ms: fc.integer({ min: 0, max: 5 }) }) },
)

describe('accounting from the source', () => {
  it('produced = delivered + dropped (collector and buffer) + queued, per registration, across crashes and restarts', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.constantFrom<OverflowPolicy>('block', 'drop-newest', 'drop-oldest', 'sample'),
        fc.constantFrom<HandoffOverflow>('newest', 'oldest'),
        fc.integer({ min: 1, max: 3 }),
        fc.array(step, { minLength: 5, maxLength: 40 }),
        async (policy, overflow, consumerEvery, steps) => {
          const mgr = new CollectorManager({ bufferCapacity: 64, overflow: policy, maxBatch: 16 })
          const sources = [new Source(30, overflow), new Source(50, overflow), new Source(10, overflow)]
          const restartPolicy = { maxRestarts: 1000, withinMs: 60_000, backoff: { initialMs: 0, maxMs: 1, jitter: 0 } }
          sources.forEach((s, i) => mgr.addCollector(`c${i}`, s.factory, restartPolicy))
          await mgr.start()
          // A slow consumer: reads every few ticks, so queues fill and drop.
          let read = 0
          const consumer = (async () => {
            let n = 0
            for await (const _ of mgr.events()) {
              read += 1
              if (++n % (consumerEvery * 16) === 0) await sleep(1)
            }
          })()
          const seen: SourceStatistics[][] = [[], [], []]
          for (const s of steps) {
            if (s.kind === 'produce') sources[s.who]?.current?.produce(s.n)
            else if (s.kind === 'crash') sources[s.who]?.current?.crash()
            else if (s.kind === 'restart') await mgr.restartCollector(`c${s.who}`)
            else await sleep(s.ms)
            const st = mgr.statistics()
            for (let i = 0; i < 3; i++) {
              const src = st.collectors[`c${i}`]?.source
              if (src) (seen[i] as SourceStatistics[]).push(src)
            }
          }
          await mgr.stop({ timeoutMs: 5_000 })
          await consumer
          const st = mgr.statistics()
          let delivered = 0
          for (let i = 0; i < 3; i++) {
            const c = st.collectors[`c${i}`] as CollectorStatistics
            const b = balance(c)
            expect(b.accounted, `c${i}: ${JSON.stringify(c)}`).toBe(b.produced)
            delivered += c.delivered
            // Cumulative per registration: nothing ever goes down, whatever instance is current.
            const series = [...(seen[i] as SourceStatistics[]), c.source as SourceStatistics]
            for (let k = 1; k < series.length; k++) {
              const a = series[k - 1] as SourceStatistics
              const z = series[k] as SourceStatistics
              expect(z.produced).toBeGreaterThanOrEqual(a.produced)
              for (const [reason, v] of Object.entries(a.dropped)) expect(z.dropped[reason] ?? 0).toBeGreaterThanOrEqual(v)
              expect(z.counters.crashes ?? 0).toBeGreaterThanOrEqual(a.counters.crashes ?? 0)
            }
          }
          expect(read).toBe(delivered)
        },
      ),
      { numRuns: 40 },
    )
  })

  it('keeps counting over fresh instances: what a crashed instance produced stays in the registration', async () => {
    const mgr = new CollectorManager()
    const src = new Source(100, 'newest')
    mgr.addCollector('c', src.factory, { maxRestarts: 10, withinMs: 60_000, backoff: { initialMs: 0, maxMs: 1, jitter: 0 } })
    await mgr.start()
    const got: unknown[] = []
    const consumer = (async () => {
      for await (const e of mgr.events()) got.push(e)
    })()
    src.current?.produce(10)
    const first = src.current
    first?.crash()
    while (src.current === first || src.current === undefined) await sleep(1)
    src.current?.produce(5)
    await mgr.stop()
    await consumer
    const c = mgr.statistics().collectors.c as CollectorStatistics
    expect(src.instances).toBe(2)
    expect(c.source).toMatchObject({ produced: 15, queued: 0, counters: { crashes: 1 } })
    expect(c.delivered).toBe(15)
    expect(got).toHaveLength(15)
  })
})
