import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { type Collector, CollectorStateError } from '../../src/core/collector.js'
import { HandoffQueue, HandoffTotals } from '../../src/core/handoff-queue.js'
import { queueStatistics, type SourceStatistics } from '../../src/core/statistics.js'
import type { EventInput } from '../../src/events/event.js'
import { type ConformanceCase, conformanceCases, lifecycleProperty } from '../../src/testing/index.js'

/** A small collector that keeps the contract; each subclass below breaks one rule. */
class Good implements Collector {
  protected queue: HandoffQueue | undefined
  protected readonly totals = new HandoffTotals()
  protected running = false

  async start(signal: AbortSignal): Promise<void> {
    if (this.running) throw new CollectorStateError('already started')
    await Promise.resolve()
    signal.throwIfAborted()
    this.queue = this.totals.open({ capacity: 100, overflow: 'newest' })
    this.running = true
  }
  async stop(): Promise<void> {
    this.running = false
    this.queue?.end()
  }
  events(): AsyncIterable<readonly EventInput[]> {
    if (!this.queue) throw new CollectorStateError('events() before start')
    return this.queue
  }
  produce(): void {
    this.queue?.push([{ type: 'kit.tick' }, { type: 'kit.tick' }])
  }
  fail(): void {
    this.queue?.fail(new Error('source failed'))
  }
  statistics(): SourceStatistics {
    return queueStatistics(this.totals.counters())
  }
}

class StartsTwice extends Good {
  override async start(signal: AbortSignal): Promise<void> {
    if (this.running) return
    await super.start(signal)
  }
}

class EmptyBeforeStart extends Good {
  override events(): AsyncIterable<readonly EventInput[]> {
    return this.queue ?? (async function* () {})()
  }
}

class Leaky extends Good {
  private timer: ReturnType<typeof setInterval> | undefined
  override async start(signal: AbortSignal): Promise<void> {
    await super.start(signal)
    this.timer = setInterval(() => {}, 1000)
  }
  release(): void {
    clearInterval(this.timer)
  }
}

class Forgetful extends Good {
  // A new instance of the counters per start: they go down after a restart.
  override async start(signal: AbortSignal): Promise<void> {
    if (this.running) throw new CollectorStateError('already started')
    signal.throwIfAborted()
    this.queue = new HandoffQueue({ capacity: 100, overflow: 'newest' })
    this.running = true
  }
  override statistics(): SourceStatistics {
    return queueStatistics(this.queue?.counters() ?? { pushed: 0, taken: 0, dropped: { queue_full: 0, queue_evicted: 0, discarded: 0 }, queued: 0 })
  }
}

class Miscounting extends Good {
  override statistics(): SourceStatistics {
    const s = super.statistics()
    return { ...s, produced: s.produced + 1 }
  }
}

class SwallowsFailure extends Good {
  override fail(): void {
    this.queue?.end()
  }
}

/** Ends events() at a fault its contract says it rides out. */
class GivesUpOnFault extends Good {
  override fail(): void {
    this.queue?.end()
  }
}

class StopRejectsTwice extends Good {
  private stops = 0
  override async stop(): Promise<void> {
    if (++this.stops > 1) throw new Error('already stopped')
    await super.stop()
  }
}

function subject(make: () => Good) {
  return {
    name: make().constructor.name,
    factory: make,
    produce: (c: Collector) => (c as Good).produce(),
    fail: (c: Collector) => (c as Good).fail(),
    // A collector that rides out faults: the Good one ignores this one (it is not a fault for it).
    survive: { inject: (c: Collector) => (c instanceof GivesUpOnFault ? c.fail() : undefined) },
    timeoutMs: 2_000,
    releaseMs: 300,
  }
}

async function failures(cases: readonly ConformanceCase[]): Promise<Record<string, string>> {
  const out: Record<string, string> = {}
  for (const c of cases) {
    try {
      await c.run()
    } catch (e) {
      out[c.name] = e instanceof Error ? `${e.name}: ${e.message}` : String(e)
    }
  }
  return out
}

describe('the conformance kit', () => {
  it('passes a collector that keeps the contract, every case', async () => {
    const cases = conformanceCases(subject(() => new Good()))
    expect(cases.length).toBe(10)
    expect(await failures(cases)).toEqual({})
    await fc.assert(lifecycleProperty(subject(() => new Good())), { numRuns: 100 })
  })

  const broken: [string, () => Good, RegExp, RegExp][] = [
    ['start twice resolving', () => new StartsTwice(), /start twice/, /second start\(\) while running rejects/],
    ['events() before start yielding nothing', () => new EmptyBeforeStart(), /events\(\) before start/, /throws a CollectorStateError/],
    ['a timer left after stop', () => new Leaky(), /no handles behind/, /Timeout: \d+ -> \d+/],
    ['counters that restart from zero', () => new Forgetful(), /monotonic/, /went down/],
    ['an event counted produced but never accounted', () => new Miscounting(), /monotonic and conserved/, /produced = events read \+ dropped \+ queued/],
    ['a failure that ends events() normally', () => new SwallowsFailure(), /failure mid-stream/, /events\(\) throws when the source failed/],
    ['events() ending at a fault it should ride out', () => new GivesUpOnFault(), /fault mid-stream is ridden out/, /events\(\) stays open through a fault/],
    ['a second stop() that rejects', () => new StopRejectsTwice(), /stop\(\) without start resolves, and twice/, /a second stop\(\) resolves/],
  ]
  for (const [what, make, caseName, message] of broken) {
    it(`catches ${what}`, async () => {
      const made: Good[] = []
      const f = await failures(
        conformanceCases(
          subject(() => {
            const c = make()
            made.push(c)
            return c
          }),
        ),
      )
      for (const c of made) if (c instanceof Leaky) c.release()
      const hit = Object.entries(f).find(([name]) => caseName.test(name))
      expect(hit, JSON.stringify(f)).toBeDefined()
      expect(hit?.[1]).toMatch(/^ConformanceError: /)
      expect(hit?.[1]).toMatch(message)
    })
  }

  it('the property catches start twice resolving', async () => {
    const error = await fc.assert(lifecycleProperty(subject(() => new StartsTwice())), { numRuns: 100 }).then(
      () => undefined,
      (e: unknown) => e as Error & { cause?: unknown },
    )
    expect(error?.message).toMatch(/Property failed/)
    expect(String(error?.cause)).toMatch(/start\(\) while running rejects with a CollectorStateError/)
  })
})
