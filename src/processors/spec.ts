import { lazySchema } from '../core/lazy-schema.js'
import type { Enricher } from '../enrich/enricher.js'
import { SeveritySchema } from '../events/schema.js'
import { dropFieldsProcessor, enrichProcessor, filterProcessor, renameFieldsProcessor, routeProcessor, sampleProcessor } from './builtin.js'
import { ProcessorChain, type ProcessorCounters } from './chain.js'
import { BUILTIN_CHAINS } from './correlate/chains.js'
import { CORRELATE_DEFAULTS, correlateProcessor } from './correlate/processor.js'
import { ExpressionError } from './expression.js'
import type { Processor } from './processor.js'

const PositiveInt = lazySchema((Schema) => Schema.Int.check(Schema.isGreaterThanOrEqualTo(1)))
const Name = lazySchema((Schema) => Schema.String.check(Schema.isPattern(/^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$/, { description: "letters, digits, '.', '_' or '-'" })))
const NameField = lazySchema((Schema) => Schema.optional(Name).annotate({ description: 'Unique in the chain; the drop reason in statistics and /metrics. Defaults to the type (then type-2, type-3 ...).' }))

export const EventMatchSchema = lazySchema((Schema) => Schema.Struct({
  types: Schema.optional(Schema.Array(Schema.String)).annotate({ description: 'Event types; a trailing * matches a prefix (kernel.*).' }),
  sources: Schema.optional(Schema.Array(Schema.String)).annotate({ description: 'Collector names.' }),
  severities: Schema.optional(Schema.Array(SeveritySchema)).annotate({ description: 'Severities (debug, info, warning, error, critical).' }),
  minSeverity: Schema.optional(SeveritySchema).annotate({ description: 'At least this severity.' }),
  namespaces: Schema.optional(Schema.Array(Schema.String)).annotate({ description: 'Kubernetes namespaces (k8s.namespace, else entity.namespace).' }),
  labels: Schema.optional(Schema.Record(Schema.String, Schema.String)).annotate({ description: "Labels every one of which the event's data.labels must carry." }),
  where: Schema.optional(Schema.String).annotate({ description: 'A small expression: field paths, "strings", numbers, == != < <= > >=, && || ! and parentheses (docs/processors.md).' }),
}).annotate({ description: 'Which events match; every criterion given must hold.' }))

const FilterSpec = lazySchema((Schema) => Schema.Struct({
  type: Schema.Literal('filter').annotate({ description: 'Keep events matching include and not matching exclude.' }),
  name: NameField,
  include: Schema.optional(EventMatchSchema).annotate({ description: 'Keep only events that match (all when absent).' }),
  exclude: Schema.optional(EventMatchSchema).annotate({ description: 'Drop events that match.' }),
}))
const SampleSpec = lazySchema((Schema) => Schema.Struct({
  type: Schema.Literal('sample').annotate({ description: 'Keep one in N per type and/or rate-limit per key.' }),
  name: NameField,
  perType: Schema.optional(Schema.Record(Schema.String, PositiveInt)).annotate({ description: 'Type (or prefix*) to N: keep one event in N of that type.' }),
  rateLimit: Schema.optional(
    Schema.Struct({
      key: Schema.Literals(['type', 'source', 'namespace', 'pod']).annotate({ description: 'What is limited separately: type, source, namespace or pod.' }),
      perSecond: Schema.Finite.check(Schema.isGreaterThan(0)).annotate({ description: 'Events per second per key.' }),
      burst: Schema.optional(PositiveInt).annotate({ description: 'Events a key may send at once (default perSecond).' }),
      maxKeys: Schema.optional(PositiveInt).annotate({ description: 'Keys remembered at most (bounded memory; default 10000).' }),
    }),
  ).annotate({ description: 'A token bucket per key.' }),
}))
const DropSpec = lazySchema((Schema) => Schema.Struct({
  type: Schema.Literal('drop').annotate({ description: 'Remove fields from events.' }),
  name: NameField,
  fields: Schema.Array(Schema.String).annotate({ description: 'Paths under data, k8s, entity or trace (data.argv).' }),
}))
const RenameSpec = lazySchema((Schema) => Schema.Struct({
  type: Schema.Literal('rename').annotate({ description: 'Move fields.' }),
  name: NameField,
  fields: Schema.Record(Schema.String, Schema.String).annotate({ description: 'from: to paths under data, k8s, entity or trace.' }),
}))
const EnrichSpec = lazySchema((Schema) => Schema.Struct({
  type: Schema.Literal('enrich').annotate({ description: 'Pod identity on kernel and network events from the Kubernetes collector.' }),
  name: NameField,
}))
const RouteSpec = lazySchema((Schema) => Schema.Struct({
  type: Schema.Literal('route').annotate({ description: 'Send events to named outputs (the last processor).' }),
  name: NameField,
  routes: Schema.Array(
    Schema.Struct({
      match: EventMatchSchema,
      outputs: Schema.Array(Schema.String).annotate({ description: 'Output names: stdout, file, nats.' }),
    }),
  ).annotate({ description: 'The first rule an event matches decides its outputs.' }),
  default: Schema.optional(Schema.Array(Schema.String)).annotate({ description: 'Outputs of events no rule matches (default: every output; [] drops them).' }),
}))

const CorrelateSpec = lazySchema((Schema) => Schema.Struct({
  type: Schema.Literal('correlate').annotate({
    description: 'Link events of one workload across collectors within a window and emit tapio.correlation.incident / .updated events (docs/processors.md).',
  }),
  name: NameField,
  chains: Schema.optional(Schema.Array(Schema.String)).annotate({
    description: `Chains to run (default: all): ${Object.values(BUILTIN_CHAINS).map((c) => `${c.name} (${c.description})`).join('; ')}.`,
  }),
  windowMs: Schema.optional(PositiveInt).annotate({
    description: `Members of one chain instance lie within this many ms of each other (event time); an instance nothing joined for this long is forgotten (default ${CORRELATE_DEFAULTS.windowMs}).`,
  }),
  maxKeys: Schema.optional(PositiveInt).annotate({
    description: `Keys tracked at most over all open chain instances (bounded memory; the least recently active is evicted; default ${CORRELATE_DEFAULTS.maxKeys}).`,
  }),
}))

export const ProcessorSpecSchema = lazySchema((Schema) => Schema.Union([FilterSpec, SampleSpec, DropSpec, RenameSpec, EnrichSpec, RouteSpec, CorrelateSpec]))
export const ProcessorsSchema = lazySchema((Schema) => Schema.Array(ProcessorSpecSchema).annotate({
  description: 'The processor stage between the merged stream and the outputs, in order (docs/processors.md). Default: [{ type: enrich }].',
}))
export type ProcessorSpec = typeof ProcessorSpecSchema.Type

export interface BuildOptions {
  readonly enricher?: Enricher
  /** The configured outputs (route targets, and the default of route.default). */
  readonly outputs: readonly string[]
  readonly counters?: ProcessorCounters
}

/** Default names: the type, then type-2, type-3 ... for repeats. */
export function processorNames(specs: readonly ProcessorSpec[]): string[] {
  const used = new Map<string, number>()
  return specs.map((s) => {
    if (s.name !== undefined) return s.name
    const n = (used.get(s.type) ?? 0) + 1
    used.set(s.type, n)
    return n === 1 ? s.type : `${s.type}-${n}`
  })
}

function build(spec: ProcessorSpec, name: string, o: BuildOptions): Processor {
  switch (spec.type) {
    case 'filter':
      return filterProcessor({ name, ...(spec.include ? { include: spec.include } : {}), ...(spec.exclude ? { exclude: spec.exclude } : {}) })
    case 'sample':
      return sampleProcessor({ name, ...(spec.perType ? { perType: spec.perType } : {}), ...(spec.rateLimit ? { rateLimit: spec.rateLimit } : {}) })
    case 'drop':
      return dropFieldsProcessor({ name, fields: spec.fields })
    case 'rename':
      return renameFieldsProcessor({ name, fields: spec.fields })
    case 'enrich':
      return enrichProcessor(o.enricher, name)
    case 'route':
      return routeProcessor({ name, routes: spec.routes, default: spec.default ?? o.outputs })
    case 'correlate':
      return correlateProcessor({
        name,
        ...(spec.chains ? { chains: spec.chains } : {}),
        ...(spec.windowMs !== undefined ? { windowMs: spec.windowMs } : {}),
        ...(spec.maxKeys !== undefined ? { maxKeys: spec.maxKeys } : {}),
      })
  }
}

/**
 * Problems a decoded spec list still has, as `processors[i].key: what` lines: expressions that do
 * not parse, field paths outside the editable roots, repeated names, a route that is not last or
 * names an output that is not configured.
 */
export function processorProblems(specs: readonly ProcessorSpec[], outputs: readonly string[]): string[] {
  const problems: string[] = []
  const names = processorNames(specs)
  const seen = new Set<string>()
  specs.forEach((s, i) => {
    const at = `processors[${i}]`
    const name = names[i] as string
    if (seen.has(name)) problems.push(`${at}.name: ${JSON.stringify(name)} is used by an earlier processor (names are drop reasons: make them unique)`)
    seen.add(name)
    if (s.type === 'route') {
      if (i !== specs.length - 1) problems.push(`${at}: a route processor must be the last one`)
      s.routes.forEach((r, j) =>
        r.outputs.forEach((o, k) => {
          if (!outputs.includes(o)) problems.push(`${at}.routes[${j}].outputs[${k}]: expected a configured output (${outputs.join(', ') || 'none'}), got ${JSON.stringify(o)}`)
        }),
      )
      s.default?.forEach((o, k) => {
        if (!outputs.includes(o)) problems.push(`${at}.default[${k}]: expected a configured output (${outputs.join(', ') || 'none'}), got ${JSON.stringify(o)}`)
      })
    }
    const matches: [string, { where?: string | undefined } | undefined][] =
      s.type === 'filter' ? [['include', s.include], ['exclude', s.exclude]] : s.type === 'route' ? s.routes.map((r, j) => [`routes[${j}].match`, r.match]) : []
    for (const [key, m] of matches) {
      if (m?.where === undefined) continue
      try {
        build({ type: 'filter', include: { where: m.where } }, name, { outputs })
      } catch (e) {
        problems.push(`${at}.${key}.where: ${e instanceof ExpressionError ? e.message : String(e)}`)
      }
    }
    if (s.type === 'correlate') {
      const given = new Set<string>()
      s.chains?.forEach((c, j) => {
        if (!Object.hasOwn(BUILTIN_CHAINS, c)) problems.push(`${at}.chains[${j}]: expected a chain (${Object.keys(BUILTIN_CHAINS).join(', ')}), got ${JSON.stringify(c)}`)
        else if (given.has(c)) problems.push(`${at}.chains[${j}]: ${JSON.stringify(c)} is listed twice`)
        given.add(c)
      })
    }
    if (s.type === 'drop' || s.type === 'rename' || s.type === 'sample') {
      try {
        build(s, name, { outputs })
      } catch (e) {
        problems.push(`${at}.fields: ${(e as Error).message}`)
      }
    }
  })
  return problems
}

/** A chain from checked specs (throws on what processorProblems reports). */
export function buildProcessorChain(specs: readonly ProcessorSpec[], o: BuildOptions): ProcessorChain {
  const names = processorNames(specs)
  return new ProcessorChain(
    specs.map((s, i) => build(s, names[i] as string, o)),
    o.counters,
  )
}
