import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import {
  compileExpression,
  correlateProcessor,
  dropFieldsProcessor,
  ExpressionError,
  filterProcessor,
  makeEvent,
  type Processor,
  ProcessorChain,
  ProcessorChainError,
  renameFieldsProcessor,
  routeProcessor,
  sampleProcessor,
  type Severity,
  type TapioEvent,
} from '../../src/index.js'

function ev(source: string, type: string, data: Record<string, unknown> = {}, severity: Severity = 'info', namespace?: string): TapioEvent {
  return makeEvent(source, type, data as never, { severity, ...(namespace ? { k8s: { namespace } } : {}) })
}

describe('expressions', () => {
  const e = ev('ebpf', 'kernel.process.exit', { exitCode: 137, comm: 'java', nested: { ok: true } }, 'error', 'prod')
  it.each([
    ['severity == "error"', true],
    ["severity == 'info'", false],
    ['data.exitCode != 0 && k8s.namespace == "prod"', true],
    ['data.exitCode > 100 && data.exitCode <= 137', true],
    ['data.exitCode < 100 || source == "ebpf"', true],
    ['!(source == "ebpf")', false],
    ['data.nested.ok', true],
    ['data.missing', false],
    ['data.missing == null', true],
    ['data.comm >= 5', false],
    ['data.constructor', false],
  ])('%s → %s', (src, want) => {
    expect(compileExpression(src)(e)).toBe(want)
  })
  it.each([
    ['severity ==', /unexpected end at column 12/],
    ['process.env == 1', /unknown field "process.env"/],
    ['severity == "x', /unterminated string at column 13/],
    ['(severity == "x"', /expected \) at column 17/],
    ['severity == "x" foo', /unknown field "foo"/],
    ['type; 1', /unexpected ";" at column 5/],
  ])('rejects %s, naming where', (src, msg) => {
    expect(() => compileExpression(src)).toThrow(ExpressionError)
    expect(() => compileExpression(src)).toThrow(msg)
  })
})

describe('built-in processors', () => {
  const run = (p: Processor, batch: TapioEvent[]) => {
    const chain = new ProcessorChain([p])
    return { out: chain.run(batch, 0), stats: chain.statistics() }
  }

  it('filter keeps by type prefix, severity, namespace, label, expression, and counts what it drops under its name', () => {
    const batch = [
      ev('a', 'kernel.process.exec', {}, 'info', 'prod'),
      ev('a', 'kernel.process.exit', { exitCode: 1 }, 'error', 'prod'),
      ev('b', 'k8s.pod.updated', { labels: { app: 'web' } }, 'info', 'dev'),
      ev('b', 'k8s.pod.updated', { labels: { app: 'db' } }, 'warning', 'prod'),
    ]
    expect(run(filterProcessor({ name: 'k', include: { types: ['kernel.*'] } }), batch).out.events).toEqual(batch.slice(0, 2))
    expect(run(filterProcessor({ include: { minSeverity: 'warning' } }), batch).out.events).toEqual([batch[1], batch[3]])
    expect(run(filterProcessor({ include: { namespaces: ['dev'] } }), batch).out.events).toEqual([batch[2]])
    expect(run(filterProcessor({ include: { labels: { app: 'db' } } }), batch).out.events).toEqual([batch[3]])
    const r = run(filterProcessor({ name: 'no-exits', exclude: { where: 'data.exitCode != null' } }), batch)
    expect(r.out.events).toEqual([batch[0], batch[2], batch[3]])
    expect(r.stats.sources.a).toEqual({ received: 2, emitted: 0, delivered: 1, dropped: { 'no-exits': 1 } })
    expect(r.stats.dropped).toEqual({ 'no-exits': 1 })
  })

  it('filter passes a batch it keeps whole without copying it', () => {
    const batch = [ev('a', 'x.y'), ev('a', 'x.z')]
    expect(run(filterProcessor({ include: { sources: ['a'] } }), batch).out.events).toBe(batch)
  })

  it('sample keeps exactly one in N of each listed type, and rate-limits per key with a token bucket', () => {
    const batch = Array.from({ length: 10 }, (_, i) => ev('a', i % 2 ? 'x.odd' : 'x.even', { i }))
    const r = run(sampleProcessor({ name: 's', perType: { 'x.odd': 5 } }), batch)
    expect(r.out.events.map((e) => (e.data as { i: number }).i)).toEqual([0, 1, 2, 4, 6, 8])
    expect(r.stats.dropped).toEqual({ s: 4 })

    const limiter = sampleProcessor({ name: 'rl', rateLimit: { key: 'source', perSecond: 2, burst: 3, maxKeys: 2 } })
    const chain = new ProcessorChain([limiter])
    const burst = (source: string, n: number) => Array.from({ length: n }, () => ev(source, 'x.y'))
    expect(chain.run(burst('a', 5), 1000).events).toHaveLength(3)
    expect(chain.run(burst('a', 5), 1500).events).toHaveLength(1) // +1 token after 0.5 s
    expect(chain.run(burst('a', 5), 3500).events).toHaveLength(3) // refilled to the burst, not beyond
    chain.run(burst('b', 1), 3500)
    chain.run(burst('c', 1), 3500) // a third key: the oldest (a) is forgotten
    expect(limiter.statistics?.()).toMatchObject({ keys: 2, keys_evicted: 1, rate_limited: 8 })
    expect(chain.statistics().sources.a).toEqual({ received: 15, emitted: 0, delivered: 7, dropped: { rl: 8 } })
  })

  it('drop and rename copy the events they change and leave the shared originals alone', () => {
    const original = ev('a', 'x.y', { argv: ['secret'], comm: 'sh', keep: 1 })
    const frozen = Object.freeze({ ...original, data: Object.freeze({ ...original.data }) }) as TapioEvent
    const dropped = run(dropFieldsProcessor({ fields: ['data.argv', 'trace'] }), [frozen]).out.events[0] as TapioEvent
    expect(dropped.data).toEqual({ comm: 'sh', keep: 1 })
    expect(frozen.data).toEqual({ argv: ['secret'], comm: 'sh', keep: 1 })
    const renamed = run(renameFieldsProcessor({ fields: { 'data.comm': 'data.process.command' } }), [frozen]).out.events[0] as TapioEvent
    expect(renamed.data).toEqual({ argv: ['secret'], process: { command: 'sh' }, keep: 1 })
    expect(renamed.id).toBe(frozen.id)
    const untouched = [ev('a', 'x.y', { other: 1 })]
    expect(run(dropFieldsProcessor({ fields: ['data.argv'] }), untouched).out.events).toBe(untouched)
    expect(() => dropFieldsProcessor({ fields: ['type'] })).toThrow(/drop field "type": expected a path under data, k8s, entity, trace/)
  })

  it('route sends each event to the outputs of the first rule it matches; no output is a counted drop', () => {
    const batch = [ev('a', 'kernel.oom.kill', {}, 'critical'), ev('a', 'x.y'), ev('b', 'k8s.pod.updated')]
    const r = run(
      routeProcessor({ name: 'r', routes: [{ match: { minSeverity: 'error' }, outputs: ['nats', 'stdout'] }, { match: { sources: ['b'] }, outputs: [] }], default: ['stdout'] }),
      batch,
    )
    expect(r.out.routes?.get('nats')).toEqual([batch[0]])
    expect(r.out.routes?.get('stdout')).toEqual([batch[0], batch[1]])
    expect(r.out.events).toEqual([batch[0], batch[1]])
    expect(r.stats.sources.b).toEqual({ received: 1, emitted: 0, delivered: 0, dropped: { r: 1 } })
  })

  it('a chain refuses repeated names and a route that is not last', () => {
    expect(() => new ProcessorChain([filterProcessor({}), filterProcessor({})])).toThrow(ProcessorChainError)
    expect(() => new ProcessorChain([routeProcessor({ routes: [], default: ['stdout'] }), filterProcessor({})])).toThrow(/must be the last/)
  })
})

// --- Properties: any chain conserves events per source and keeps each source's order. ---

const SOURCES = ['a', 'b', 'c']
// With the OOM chain's types, so correlate processors in a chain link events and emit incidents.
const TYPES = ['kernel.process.exec', 'kernel.process.exit', 'k8s.pod.updated', 'x.y', 'kernel.oom.kill', 'k8s.pod.oom_killed', 'k8s.pod.crash_loop_backoff']
const SEVERITIES: Severity[] = ['debug', 'info', 'warning', 'error', 'critical']

const eventArb = fc.record({
  source: fc.constantFrom(...SOURCES),
  type: fc.constantFrom(...TYPES),
  severity: fc.constantFrom(...SEVERITIES),
  n: fc.integer({ min: 0, max: 5 }),
  ns: fc.option(fc.constantFrom('prod', 'dev'), { nil: undefined }),
  container: fc.constantFrom('1', '2', '3'),
})

/** An event whose pod context (container id, pod uid, container name) is one of three containers. */
function chainEv(x: { source: string; type: string; severity: Severity; n: number; ns: string | undefined; container: string }): TapioEvent {
  const podUid = `pod-${x.container}`
  return makeEvent(x.source, x.type, { n: x.n, uid: podUid, container: 'app' } as never, {
    severity: x.severity,
    k8s: { ...(x.ns ? { namespace: x.ns } : {}), containerId: x.container.repeat(64), podUid, container: 'app' },
  })
}

const matchArb = fc.record(
  {
    types: fc.subarray([...TYPES, 'kernel.*']),
    sources: fc.subarray(SOURCES),
    minSeverity: fc.constantFrom(...SEVERITIES),
    namespaces: fc.subarray(['prod', 'dev']),
    where: fc.constantFrom('data.n > 2', 'data.n == 0 || severity == "error"', '!(data.n < 4)'),
  },
  { requiredKeys: [] },
)

const processorArb: fc.Arbitrary<(i: number) => Processor> = fc.oneof(
  fc.record({ include: fc.option(matchArb, { nil: undefined }), exclude: fc.option(matchArb, { nil: undefined }) }).map((o) => (i: number) =>
    filterProcessor({ name: `filter-${i}`, ...(o.include ? { include: o.include } : {}), ...(o.exclude ? { exclude: o.exclude } : {}) }),
  ),
  fc.record({ every: fc.integer({ min: 1, max: 4 }), per: fc.integer({ min: 1, max: 5 }), key: fc.constantFrom('type' as const, 'source' as const, 'namespace' as const) }).map(
    (o) => (i: number) => sampleProcessor({ name: `sample-${i}`, perType: { 'kernel.*': o.every }, rateLimit: { key: o.key, perSecond: o.per, maxKeys: 2 } }),
  ),
  fc.constant((i: number) => dropFieldsProcessor({ name: `drop-${i}`, fields: ['data.n'] })),
  fc.constant((i: number) => renameFieldsProcessor({ name: `rename-${i}`, fields: { 'data.n': 'data.m' } })),
  fc.record({ maxKeys: fc.integer({ min: 1, max: 6 }), windowMs: fc.integer({ min: 1, max: 1000 }) }).map((o) => (i: number) => correlateProcessor({ name: `correlate-${i}`, ...o })),
)

const routeArb = fc.option(
  fc.record({ match: matchArb, outputs: fc.subarray(['stdout', 'file']), fallback: fc.subarray(['stdout', 'file']) }).map((o) =>
    routeProcessor({ name: 'route', routes: [{ match: o.match, outputs: o.outputs }], default: o.fallback }),
  ),
  { nil: undefined },
)

describe('properties of the processor stage', () => {
  it('every combination conserves events per source (received + emitted = delivered + dropped by processor) and keeps per-source order', () => {
    fc.assert(
      fc.property(fc.array(processorArb, { maxLength: 5 }), routeArb, fc.array(fc.array(eventArb, { maxLength: 30 }), { maxLength: 6 }), (makers, route, batches) => {
        const processors = makers.map((m, i) => m(i))
        if (route) processors.push(route)
        const chain = new ProcessorChain(processors)
        const input: TapioEvent[] = []
        const delivered: TapioEvent[] = []
        const perOutput = new Map<string, TapioEvent[]>()
        batches.forEach((b, t) => {
          const batch = b.map(chainEv)
          input.push(...batch)
          const r = chain.run(batch, t * 300)
          delivered.push(...r.events)
          for (const [o, es] of r.routes ?? []) perOutput.set(o, [...(perOutput.get(o) ?? []), ...es])
        })
        const s = chain.statistics()
        const emitters = processors.filter((p) => p.type === 'correlate').map((p) => p.name)
        for (const source of [...SOURCES, ...emitters]) {
          const got = delivered.filter((e) => e.source === source)
          const sent = input.filter((e) => e.source === source)
          const c = s.sources[source] ?? { received: 0, emitted: 0, delivered: 0, dropped: {} }
          const dropped = Object.values(c.dropped).reduce((x, y) => x + y, 0)
          expect(c.received).toBe(sent.length)
          expect(c.delivered).toBe(got.length)
          expect(c.received + c.emitted).toBe(c.delivered + dropped)
          if (emitters.includes(source)) {
            // What a correlate processor emitted equals its own count, and names only events of the stream.
            const counters = s.processors[source]?.counters ?? {}
            expect(c.emitted).toBe(counters.emitted)
            const known = new Set([...input, ...delivered].map((e) => e.id))
            for (const e of got) for (const m of (e.data as { members: { id: string }[] }).members) expect(known.has(m.id)).toBe(true)
            continue
          }
          expect(c.emitted).toBe(0)
          // Order: the delivered ids are a subsequence of the input ids, per source and per output.
          const order = new Map(sent.map((e, i) => [e.id, i]))
          const increasing = (es: TapioEvent[]) => es.every((e, i) => i === 0 || (order.get(e.id) as number) > (order.get((es[i - 1] as TapioEvent).id) as number))
          expect(increasing(got)).toBe(true)
          for (const es of perOutput.values()) expect(increasing(es.filter((e) => e.source === source))).toBe(true)
        }
        // Every drop reason is a processor of the chain.
        for (const reason of Object.keys(s.dropped)) expect(processors.map((p) => p.name)).toContain(reason)
      }),
      { numRuns: 300 },
    )
  })

  it('a correlate processor keeps its keys within maxKeys and emits one incident per chain instance', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 5 }), fc.array(fc.array(eventArb, { maxLength: 20 }), { maxLength: 8 }), (maxKeys, batches) => {
        const p = correlateProcessor({ maxKeys })
        const chain = new ProcessorChain([p])
        const incidents = new Map<string, number>()
        batches.forEach((b, t) => {
          for (const e of chain.run(b.map(chainEv), t * 1000).events) {
            if (e.type !== 'tapio.correlation.incident' && e.type !== 'tapio.correlation.updated') continue
            const id = (e.data as { incident: string }).incident
            if (e.type === 'tapio.correlation.incident') {
              expect(id).toBe(e.id)
              expect(incidents.has(id)).toBe(false)
              incidents.set(id, 0)
            } else {
              // An update refers to an incident already emitted.
              expect(incidents.has(id)).toBe(true)
            }
          }
          // The bound gives way only to the one instance being changed (here at most 2 keys: one container's).
          expect((p.statistics?.() ?? {}).keys).toBeLessThanOrEqual(Math.max(maxKeys, 2))
        })
        const c = p.statistics?.() ?? {}
        expect(c.incidents).toBe(incidents.size)
      }),
      { numRuns: 300 },
    )
  })
})
