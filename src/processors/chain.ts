import type { TapioEvent } from '../events/event.js'
import { type Batch, DeferredBatch } from '../stream/deferred-batch.js'
import { isRouter, type Processor, type ProcessorContext, type Router } from './processor.js'

/** One source's flow through the stage: `received + emitted = delivered + Σ dropped`. */
export interface ProcessorSourceCounts {
  readonly received: number
  /** Events a processor added under this source (the correlate processor's incidents). */
  readonly emitted: number
  readonly delivered: number
  /** Events removed, by the name of the processor that removed them. */
  readonly dropped: Readonly<Record<string, number>>
}

export interface ProcessorStageStatistics {
  readonly received: number
  readonly emitted: number
  readonly delivered: number
  readonly dropped: Readonly<Record<string, number>>
  readonly sources: Readonly<Record<string, ProcessorSourceCounts>>
  /** Each current processor's own counters (the enricher's hits and misses, a rate limiter's keys). */
  readonly processors: Readonly<Record<string, { readonly type: string; readonly counters: Readonly<Record<string, number>> }>>
}

interface MutableSourceCounts {
  received: number
  emitted: number
  delivered: number
  dropped: Map<string, number>
}

/**
 * The stage's counters. Kept apart from any one chain so they survive a reload that replaces the
 * chain (SIGHUP): counters are cumulative for the life of the agent, by processor name.
 */
export class ProcessorCounters {
  private readonly sources = new Map<string, MutableSourceCounts>()

  source(name: string): MutableSourceCounts {
    let c = this.sources.get(name)
    if (!c) {
      c = { received: 0, emitted: 0, delivered: 0, dropped: new Map() }
      this.sources.set(name, c)
    }
    return c
  }

  snapshot(processors: readonly Processor[] = []): ProcessorStageStatistics {
    let received = 0
    let emitted = 0
    let delivered = 0
    const dropped: Record<string, number> = {}
    for (const p of processors) dropped[p.name] = 0
    const sources: Record<string, ProcessorSourceCounts> = {}
    for (const [name, c] of this.sources) {
      received += c.received
      emitted += c.emitted
      delivered += c.delivered
      const d = Object.fromEntries(c.dropped)
      for (const [p, n] of c.dropped) dropped[p] = (dropped[p] ?? 0) + n
      sources[name] = { received: c.received, emitted: c.emitted, delivered: c.delivered, dropped: d }
    }
    const own: Record<string, { type: string; counters: Readonly<Record<string, number>> }> = {}
    for (const p of processors) own[p.name] = { type: p.type, counters: p.statistics?.() ?? {} }
    return { received, emitted, delivered, dropped, sources, processors: own }
  }
}

export interface ChainResult {
  /** The events that passed every processor (with a route: that reached an output), in order. */
  readonly events: readonly TapioEvent[]
  /** With a `route` processor: the events each output receives (in order); absent: all to all. */
  readonly routes?: ReadonlyMap<string, readonly TapioEvent[]>
}

/** `ChainResult` for `runBatch`: the events may still be a deferred batch (nothing read them). */
export interface BatchChainResult {
  readonly events: Batch
  readonly routes?: ReadonlyMap<string, readonly TapioEvent[]>
}

export class ProcessorChainError extends Error {
  override readonly name = 'ProcessorChainError'
}

/** Count one batch's events per source into `field`, in one pass with one Map lookup per run of a source. */
function countBySource(counters: ProcessorCounters, events: readonly TapioEvent[], field: 'received' | 'delivered', cache: Map<string, MutableSourceCounts>): void {
  let last: string | undefined
  let run = 0
  for (let i = 0; i < events.length; i++) {
    const s = (events[i] as TapioEvent).source
    if (s === last) {
      run++
      continue
    }
    if (last !== undefined) sourceOf(counters, last, cache)[field] += run
    last = s
    run = 1
  }
  if (last !== undefined) sourceOf(counters, last, cache)[field] += run
}

function sourceOf(counters: ProcessorCounters, name: string, cache: Map<string, MutableSourceCounts>): MutableSourceCounts {
  let c = cache.get(name)
  if (!c) {
    c = counters.source(name)
    cache.set(name, c)
  }
  return c
}

/**
 * Processors in order between the merged stream and the outputs. Synchronous over whole batches;
 * every event removed is counted under the removing processor's name for its source, and every
 * event a processor adds as emitted for its own source, so for each source
 * `received + emitted = delivered + Σ dropped` at all times between batches.
 */
export class ProcessorChain {
  readonly processors: readonly Processor[]
  private readonly steps: readonly Processor[]
  private readonly router: Router | undefined
  private readonly contexts: (ProcessorContext & { now: number })[]
  private readonly cache = new Map<string, MutableSourceCounts>()

  constructor(
    processors: readonly Processor[],
    readonly counters: ProcessorCounters = new ProcessorCounters(),
  ) {
    const names = new Set<string>()
    processors.forEach((p, i) => {
      if (names.has(p.name)) throw new ProcessorChainError(`processor name ${JSON.stringify(p.name)} is used twice (names are the drop reasons; make them unique)`)
      names.add(p.name)
      if (isRouter(p) && i !== processors.length - 1) throw new ProcessorChainError(`route processor ${JSON.stringify(p.name)} must be the last processor`)
    })
    this.processors = processors
    const last = processors.at(-1)
    this.router = last && isRouter(last) ? last : undefined
    this.steps = this.router ? processors.slice(0, -1) : processors
    this.contexts = processors.map((p) => {
      const name = p.name
      return {
        now: 0,
        drop: (e: TapioEvent) => {
          const c = sourceOf(this.counters, e.source, this.cache)
          c.dropped.set(name, (c.dropped.get(name) ?? 0) + 1)
        },
        emit: (e: TapioEvent) => {
          sourceOf(this.counters, e.source, this.cache).emitted++
        },
      }
    })
  }

  run(batch: readonly TapioEvent[], now: number = Date.now()): ChainResult {
    countBySource(this.counters, batch, 'received', this.cache)
    let events = batch
    for (let i = 0; i < this.steps.length && events.length > 0; i++) {
      const ctx = this.contexts[i] as ProcessorContext & { now: number }
      ctx.now = now
      events = (this.steps[i] as Processor).process(events, ctx)
    }
    if (!this.router || events.length === 0) {
      countBySource(this.counters, events, 'delivered', this.cache)
      return { events }
    }
    const ctx = this.contexts[this.steps.length] as ProcessorContext & { now: number }
    ctx.now = now
    const routes = this.router.assign(events, ctx)
    // Delivered: every event that reached at least one output, once.
    const reached = new Set<TapioEvent>()
    for (const list of routes.values()) for (const e of list) reached.add(e)
    const delivered = events.length === reached.size ? events : events.filter((e) => reached.has(e))
    countBySource(this.counters, delivered, 'delivered', this.cache)
    return { events: delivered, routes }
  }

  /**
   * `run` for any batch of the data plane: a deferred batch stays one (its NDJSON made without
   * objects) through every processor that passes it unread; the first that reads events gets them
   * as objects, and so does every processor after it.
   */
  runBatch(batch: Batch, now: number = Date.now()): BatchChainResult {
    if (!(batch instanceof DeferredBatch)) return this.run(batch, now)
    let i = 0
    while (i < this.steps.length && (this.steps[i] as Processor).passesUnread?.() === true) i++
    if (i < this.steps.length || this.router !== undefined) return this.run(batch.events(), now)
    // Every event of a deferred batch is from one source, stamped by the pump.
    if (batch.length > 0) {
      const c = sourceOf(this.counters, batch.source as string, this.cache)
      c.received += batch.length
      c.delivered += batch.length
    }
    return { events: batch }
  }

  statistics(): ProcessorStageStatistics {
    return this.counters.snapshot(this.processors)
  }

  /** The chain over a stream of batches (e.g. `manager.batches()`); empty results are skipped. */
  async *apply(batches: AsyncIterable<readonly TapioEvent[]>): AsyncGenerator<ChainResult> {
    for await (const b of batches) {
      const r = this.run(b)
      if (r.events.length > 0) yield r
    }
  }
}
