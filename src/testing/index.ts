/**
 * `tapio-collector-manager/testing`: the conformance kit for anyone who writes a collector. Given
 * a factory (and how to make an instance produce), it returns ready test cases and a fast-check
 * property for the contract in docs/collectors/contract.md. It depends on no test framework:
 * register the cases with your own (`for (const c of conformanceCases(subject)) it(c.name, c.run)`).
 *
 * fast-check is an optional peer dependency: only this entry point needs it.
 */
import fc from 'fast-check'
import type { Collector, CollectorFactory, CollectorOutput } from '../core/collector.js'
import { type SourceStatistics, sumValues } from '../core/statistics.js'
import { CollectorManager } from '../manager/collector-manager.js'
import { sumDrops } from '../stream/counters.js'

export interface ConformanceSubject {
  /** What the cases are called after ("ebpf", "my-collector"). */
  readonly name: string
  /** A fresh, unstarted instance per call. */
  readonly factory: CollectorFactory
  /**
   * Makes a started instance produce at least one event, and resolves once it has (e.g. run a
   * process, create a unit, write a file). Without it the cases that need events are left out.
   */
  readonly produce?: (collector: Collector) => Promise<void> | void
  /**
   * Makes a running instance's source fail in a way the collector treats as fatal; enables "fail
   * mid-stream" (events() must throw). Give `survive` instead for a collector that rides out
   * faults of its source by design (retries, counted loss) and never fails mid-stream.
   */
  readonly fail?: (collector: Collector) => Promise<void> | void
  /**
   * For a collector that by design never fails mid-stream: `inject` causes a real fault of its
   * source (the server goes away, the kernel ring overflows...) and resolves once the fault has
   * happened; `heal` (optional) ends it. Enables "ride out a fault mid-stream": events() neither
   * ends nor throws, and afterwards the instance produces again (with `produce`).
   */
  readonly survive?: {
    readonly inject: (collector: Collector) => Promise<void> | void
    readonly heal?: (collector: Collector) => Promise<void> | void
  }
  /** Bound for every start, produce and drain the cases wait for (default 30 s). */
  readonly timeoutMs?: number
  /** How long handles may take to go after stop() before they count as leaked (default 5 s). */
  readonly releaseMs?: number
}

export interface ConformanceCase {
  readonly name: string
  readonly run: () => Promise<void>
}

/** A broken rule of the contract: says which, and what happened instead. */
export class ConformanceError extends Error {
  override readonly name = 'ConformanceError'
}

function check(condition: boolean, rule: string, got?: unknown): asserts condition {
  if (!condition) throw new ConformanceError(got === undefined ? rule : `${rule} (got ${describe(got)})`)
}

function describe(v: unknown): string {
  if (v instanceof Error) return `${v.name}: ${v.message}`
  try {
    return JSON.stringify(v)
  } catch {
    return String(v)
  }
}

/** By name, so a kit and a collector built against different copies of the package agree. */
function isStateError(e: unknown): boolean {
  return e instanceof Error && e.name === 'CollectorStateError'
}

async function outcome(p: () => Promise<void> | void): Promise<{ ok: true } | { ok: false; error: unknown }> {
  try {
    await p()
    return { ok: true }
  } catch (error) {
    return { ok: false, error }
  }
}

function within<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new ConformanceError(`${what} did not happen within ${ms} ms`)), ms)
  })
  return Promise.race([p, timeout]).finally(() => clearTimeout(timer))
}

/** Reads a run's events() to the end, counting events; remembers a failure instead of throwing. */
class Reader {
  events = 0
  error: unknown
  finished = false
  readonly done: Promise<void>
  private waiters: (() => void)[] = []
  constructor(iterable: AsyncIterable<CollectorOutput>) {
    this.done = (async () => {
      try {
        for await (const item of iterable) {
          this.events += Array.isArray(item) ? item.length : 1
          for (const w of this.waiters.splice(0)) w()
        }
      } catch (e) {
        this.error = e
      }
      this.finished = true
      for (const w of this.waiters.splice(0)) w()
    })()
  }
  /** Resolves once at least `n` events were read (or the run ended). */
  async atLeast(n: number): Promise<void> {
    while (this.events < n) {
      let finished = false
      const ended = this.done.then(() => {
        finished = true
      })
      await Promise.race([new Promise<void>((r) => this.waiters.push(r)), ended])
      if (finished) return
    }
  }
}

function handleCounts(): Map<string, number> {
  const counts = new Map<string, number>()
  for (const r of process.getActiveResourcesInfo()) if (r !== 'TTYWrap') counts.set(r, (counts.get(r) ?? 0) + 1)
  return counts
}

function moreThan(after: Map<string, number>, before: Map<string, number>): string[] {
  return [...after].filter(([k, n]) => n > (before.get(k) ?? 0)).map(([k, n]) => `${k}: ${before.get(k) ?? 0} -> ${n}`)
}

const pause = (ms: number) => new Promise<void>((r) => setTimeout(r, ms))

/** Every counter of `b` is at least that of `a` (cumulative figures never go down). */
export function assertMonotonic(a: SourceStatistics, b: SourceStatistics, where = 'statistics()'): void {
  check(b.produced >= a.produced, `${where}: produced went down`, { before: a.produced, after: b.produced })
  for (const [k, v] of Object.entries(a.dropped)) check((b.dropped[k] ?? 0) >= v, `${where}: dropped.${k} went down`, { before: v, after: b.dropped[k] })
  for (const [k, v] of Object.entries(a.counters)) check((b.counters[k] ?? 0) >= v, `${where}: counters.${k} went down`, { before: v, after: b.counters[k] })
}

/** The shape of SourceStatistics, with non-negative integers. */
export function assertStatisticsShape(s: unknown, where = 'statistics()'): asserts s is SourceStatistics {
  const o = s as Record<string, unknown>
  check(typeof s === 'object' && s !== null, `${where} returns an object`, s)
  check(Number.isInteger(o.produced) && (o.produced as number) >= 0, `${where}.produced is a non-negative integer`, o.produced)
  check(Number.isInteger(o.queued) && (o.queued as number) >= 0, `${where}.queued is a non-negative integer`, o.queued)
  for (const key of ['dropped', 'counters'] as const) {
    const r = o[key]
    check(typeof r === 'object' && r !== null, `${where}.${key} is a record`, r)
    for (const [k, v] of Object.entries(r as object)) check(Number.isFinite(v) && (v as number) >= 0, `${where}.${key}.${k} is a non-negative number`, v)
  }
}

/**
 * The contract's test cases for one collector. Each case makes its own instances and stops every
 * one of them, also when it fails.
 */
export function conformanceCases(subject: ConformanceSubject): ConformanceCase[] {
  const timeoutMs = subject.timeoutMs ?? 30_000
  const releaseMs = subject.releaseMs ?? 5_000
  const made: Collector[] = []
  const make = (): Collector => {
    const c = subject.factory()
    made.push(c)
    return c
  }
  const signal = () => AbortSignal.timeout(timeoutMs)
  /** Runs a case, then stops whatever it made (a failing case must not leave a collector running). */
  const guarded =
    (body: () => Promise<void>): (() => Promise<void>) =>
    async () => {
      try {
        await body()
      } finally {
        for (const c of made.splice(0)) await outcome(() => c.stop())
      }
    }
  const n = subject.name
  const cases: ConformanceCase[] = [
    {
      name: `${n}: stop() without start resolves, and twice`,
      run: guarded(async () => {
        const c = make()
        const first = await outcome(() => c.stop())
        check(first.ok, 'stop() without start resolves', !first.ok && first.error)
        const second = await outcome(() => c.stop())
        check(second.ok, 'a second stop() resolves', !second.ok && second.error)
      }),
    },
    {
      name: `${n}: events() before start throws CollectorStateError`,
      run: guarded(async () => {
        const c = make()
        let thrown: unknown
        try {
          c.events()
        } catch (e) {
          thrown = e
        }
        check(isStateError(thrown), 'events() before a successful start throws a CollectorStateError', thrown ?? 'no error')
      }),
    },
    {
      name: `${n}: start twice is refused with CollectorStateError; stop twice resolves`,
      run: guarded(async () => {
        const c = make()
        await within(Promise.resolve(c.start(signal())), timeoutMs, 'start()')
        const again = await outcome(() => c.start(signal()))
        check(!again.ok && isStateError(again.error), 'a second start() while running rejects with a CollectorStateError', again.ok ? 'resolved' : again.error)
        const reader = new Reader(c.events())
        const stops = await Promise.all([outcome(() => c.stop()), outcome(() => c.stop())])
        check(stops.every((s) => s.ok), 'two concurrent stop() calls both resolve', stops)
        await within(reader.done, timeoutMs, 'events() ending after stop()')
      }),
    },
    {
      name: `${n}: start -> stop -> start -> stop on one instance and through the factory; events() ends after each stop`,
      run: guarded(async () => {
        const one = make()
        for (const c of [one, one, make(), make()]) {
          await within(Promise.resolve(c.start(signal())), timeoutMs, 'start()')
          const reader = new Reader(c.events())
          if (subject.produce) {
            await within(Promise.resolve(subject.produce(c)), timeoutMs, 'produce()')
            await within(reader.atLeast(1), timeoutMs, 'a produced event to be read')
          }
          await c.stop()
          await within(reader.done, timeoutMs, 'events() ending after stop()')
          check(reader.error === undefined, 'events() ends without an error after stop()', reader.error)
        }
      }),
    },
    {
      name: `${n}: an aborted start rejects and releases; abort while starting leaves a stoppable, restartable instance`,
      run: guarded(async () => {
        const c = make()
        const pre = new AbortController()
        pre.abort(new Error('aborted before start'))
        const refused = await outcome(() => c.start(pre.signal))
        check(!refused.ok, 'start() with an aborted signal rejects')
        const ac = new AbortController()
        const starting = outcome(() => c.start(ac.signal))
        ac.abort(new Error('aborted while starting'))
        const r = await within(starting, timeoutMs, 'an aborted start() to settle')
        // A start that finished before the abort could be seen is a finished start: stop it.
        const stopped = await outcome(() => c.stop())
        check(stopped.ok, 'stop() after an aborted start resolves', !stopped.ok && stopped.error)
        check(r.ok || !isStateError(r.error), 'an aborted start rejects with its own reason, not a state error', !r.ok && r.error)
        await within(Promise.resolve(c.start(signal())), timeoutMs, 'start() after an aborted start')
        const reader = new Reader(c.events())
        await c.stop()
        await within(reader.done, timeoutMs, 'events() ending after stop()')
      }),
    },
    {
      name: `${n}: counters are monotonic and conserved (produced = read + dropped + queued after stop)`,
      run: guarded(async () => {
        const c = make()
        if (!c.statistics) throw new ConformanceError('statistics() is missing: the contract asks for produced / dropped / queued')
        const samples: SourceStatistics[] = []
        const sample = (where: string) => {
          const s = (c.statistics as () => SourceStatistics)()
          assertStatisticsShape(s, where)
          samples.push(s)
        }
        sample('statistics() before start')
        let read = 0
        for (let round = 0; round < 2; round++) {
          await within(Promise.resolve(c.start(signal())), timeoutMs, 'start()')
          sample('statistics() after start')
          const reader = new Reader(c.events())
          if (subject.produce) {
            await within(Promise.resolve(subject.produce(c)), timeoutMs, 'produce()')
            await within(reader.atLeast(1), timeoutMs, 'a produced event to be read')
          }
          sample('statistics() while running')
          await c.stop()
          await within(reader.done, timeoutMs, 'events() ending after stop()')
          read += reader.events
          sample('statistics() after stop')
        }
        for (let i = 1; i < samples.length; i++) assertMonotonic(samples[i - 1] as SourceStatistics, samples[i] as SourceStatistics)
        const last = samples[samples.length - 1] as SourceStatistics
        if (subject.produce) check(last.produced > 0, 'produced counts what the source produced', last)
        check(last.produced === read + sumValues(last.dropped) + last.queued, 'produced = events read + dropped + queued once stopped and drained', { read, ...last })
      }),
    },
    {
      name: `${n}: leaves no handles behind after stop() (the process can exit by itself)`,
      run: guarded(async () => {
        // Warm up once: lazily loaded addons and connection pools belong to the process, not a run.
        const warm = make()
        await within(Promise.resolve(warm.start(signal())), timeoutMs, 'start()')
        const warmReader = new Reader(warm.events())
        await warm.stop()
        await within(warmReader.done, timeoutMs, 'events() ending after stop()')
        await pause(50)
        const before = handleCounts()
        for (let i = 0; i < 3; i++) {
          const c = make()
          await within(Promise.resolve(c.start(signal())), timeoutMs, 'start()')
          const reader = new Reader(c.events())
          if (subject.produce) await within(Promise.resolve(subject.produce(c)), timeoutMs, 'produce()')
          await c.stop()
          await within(reader.done, timeoutMs, 'events() ending after stop()')
        }
        const deadline = Date.now() + releaseMs
        let extra = moreThan(handleCounts(), before)
        while (extra.length > 0 && Date.now() < deadline) {
          await pause(50)
          extra = moreThan(handleCounts(), before)
        }
        check(extra.length === 0, 'every handle (socket, timer, watcher) a run opened is released by stop()', extra)
      }),
    },
    {
      name: `${n}: under a CollectorManager, a fresh instance per start; the registration's counters survive restarts and add up`,
      run: guarded(async () => {
        const instances: Collector[] = []
        const mgr = new CollectorManager()
        mgr.addCollector(n, () => {
          const c = make()
          instances.push(c)
          return c
        })
        let read = 0
        const consumer = (async () => {
          for await (const _ of mgr.events()) read += 1
        })()
        try {
          await within(mgr.start(), timeoutMs, 'the manager to start the collector')
          if (subject.produce) await within(Promise.resolve(subject.produce(instances[instances.length - 1] as Collector)), timeoutMs, 'produce()')
          const first = mgr.statistics().collectors[n]?.source
          await within(mgr.restartCollector(n), timeoutMs, 'a manual restart')
          check(instances.length === 2, 'the factory is called once per start', instances.length)
          check(instances[0] !== instances[1], 'every start gets a fresh instance')
          if (subject.produce) await within(Promise.resolve(subject.produce(instances[1] as Collector)), timeoutMs, 'produce()')
          const second = mgr.statistics().collectors[n]?.source
          if (first && second) assertMonotonic(first, second, 'the registration statistics across a restart')
        } finally {
          await mgr.stop({ timeoutMs })
          await consumer
        }
        const st = mgr.statistics().collectors[n]
        check(st !== undefined, 'the registration has statistics')
        if (st?.source) {
          const s = st.source
          const accounted = st.delivered + sumValues(s.dropped) + sumDrops(st.dropped) + s.queued + st.queued
          check(accounted === s.produced, 'per registration: produced = delivered + dropped (collector and buffer) + queued', { produced: s.produced, accounted, ...st })
          check(read === st.delivered, 'the consumer read what the manager counts delivered', { read, delivered: st.delivered })
        }
      }),
    },
  ]
  if (subject.fail) {
    const fail = subject.fail
    cases.push({
      name: `${n}: a source failure mid-stream makes events() throw after what was produced; stop() still resolves`,
      run: guarded(async () => {
        const c = make()
        await within(Promise.resolve(c.start(signal())), timeoutMs, 'start()')
        const reader = new Reader(c.events())
        if (subject.produce) {
          await within(Promise.resolve(subject.produce(c)), timeoutMs, 'produce()')
          await within(reader.atLeast(1), timeoutMs, 'a produced event to be read')
        }
        await within(Promise.resolve(fail(c)), timeoutMs, 'fail()')
        await within(reader.done, timeoutMs, 'events() to end after the failure')
        check(reader.error !== undefined, 'events() throws when the source failed', 'it ended normally')
        const stopped = await outcome(() => c.stop())
        check(stopped.ok, 'stop() after a failure resolves', !stopped.ok && stopped.error)
      }),
    })
  }
  if (subject.survive) {
    const { inject, heal } = subject.survive
    cases.push({
      name: `${n}: a source fault mid-stream is ridden out: events() stays open, the instance produces again; stop() ends events()`,
      run: guarded(async () => {
        const c = make()
        await within(Promise.resolve(c.start(signal())), timeoutMs, 'start()')
        const reader = new Reader(c.events())
        if (subject.produce) {
          await within(Promise.resolve(subject.produce(c)), timeoutMs, 'produce()')
          await within(reader.atLeast(1), timeoutMs, 'a produced event to be read')
        }
        const before = c.statistics?.()
        await within(Promise.resolve(inject(c)), timeoutMs, 'the fault (survive.inject())')
        check(!reader.finished, 'events() stays open through a fault the collector rides out', reader.error ?? 'it ended')
        if (heal) await within(Promise.resolve(heal(c)), timeoutMs, 'the end of the fault (survive.heal())')
        if (subject.produce) {
          const read = reader.events
          await within(Promise.resolve(subject.produce(c)), timeoutMs, 'produce() after the fault')
          await within(reader.atLeast(read + 1), timeoutMs, 'an event produced after the fault to be read')
        }
        check(!reader.finished, 'events() stays open after the fault', reader.error ?? 'it ended')
        if (before && c.statistics) assertMonotonic(before, c.statistics(), 'statistics() across the fault')
        const stopped = await outcome(() => c.stop())
        check(stopped.ok, 'stop() after a fault resolves', !stopped.ok && stopped.error)
        await within(reader.done, timeoutMs, 'events() ending after stop()')
        check(reader.error === undefined, 'events() ends without an error after stop()', reader.error)
      }),
    })
  }
  return cases
}

type Op = 'start' | 'stop' | 'events' | 'abortStart'

/**
 * A fast-check property over random sequences of `start`, `stop`, `events()` and aborted starts on
 * one instance, checked against the contract's answers in each state. Run it with
 * `fc.assert(lifecycleProperty(subject), { numRuns })`; real collectors are slow, so few runs.
 */
export function lifecycleProperty(subject: ConformanceSubject, maxLength = 8): fc.IAsyncPropertyWithHooks<[Op[]]> {
  const timeoutMs = subject.timeoutMs ?? 30_000
  const ops = fc.array(fc.constantFrom<Op>('start', 'stop', 'events', 'abortStart'), { minLength: 1, maxLength })
  return fc.asyncProperty(ops, async (sequence) => {
    const c = subject.factory()
    let running = false
    let everStarted = false
    let reader: Reader | undefined
    try {
      for (const op of sequence) {
        if (op === 'start') {
          const r = await within(outcome(() => c.start(AbortSignal.timeout(timeoutMs))), timeoutMs + 1000, 'start()')
          if (running) check(!r.ok && isStateError(r.error), 'start() while running rejects with a CollectorStateError', r.ok ? 'resolved' : r.error)
          else {
            check(r.ok, 'start() of a stopped instance resolves', !r.ok && r.error)
            running = true
            everStarted = true
            reader = undefined
          }
        } else if (op === 'abortStart') {
          const ac = new AbortController()
          ac.abort(new Error('aborted'))
          const r = await outcome(() => c.start(ac.signal))
          check(!r.ok, 'start() with an aborted signal rejects', 'resolved')
        } else if (op === 'stop') {
          const r = await within(outcome(() => c.stop()), timeoutMs, 'stop()')
          check(r.ok, 'stop() resolves in every state', !r.ok && r.error)
          running = false
          if (reader) await within(reader.done, timeoutMs, 'events() ending after stop()')
        } else {
          if (!everStarted) {
            let thrown: unknown
            try {
              c.events()
            } catch (e) {
              thrown = e
            }
            check(isStateError(thrown), 'events() before a successful start throws a CollectorStateError', thrown ?? 'no error')
          } else if (running && reader === undefined) {
            reader = new Reader(c.events())
          }
        }
      }
    } finally {
      await outcome(() => c.stop())
      if (reader) await within(reader.done, timeoutMs, 'events() ending after the final stop()')
    }
  })
}
