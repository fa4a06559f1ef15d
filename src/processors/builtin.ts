import type { Enricher } from '../enrich/enricher.js'
import type { TapioEvent } from '../events/event.js'
import { compileMatch, type EventMatch } from './match.js'
import type { Processor, ProcessorContext, Router } from './processor.js'

/** Keep events matching `include` (all when absent) and not matching `exclude`. */
export interface FilterOptions {
  readonly name?: string
  readonly include?: EventMatch
  readonly exclude?: EventMatch
}

export function filterProcessor(o: FilterOptions): Processor {
  const include = o.include ? compileMatch(o.include) : undefined
  const exclude = o.exclude ? compileMatch(o.exclude) : undefined
  const keep = (e: TapioEvent) => (include === undefined || include(e)) && (exclude === undefined || !exclude(e))
  return {
    name: o.name ?? 'filter',
    type: 'filter',
    process(batch, ctx) {
      return keepWhere(batch, keep, ctx)
    },
  }
}

/** The batch itself when everything is kept (no copy), else the kept events with each other one reported. */
function keepWhere(batch: readonly TapioEvent[], keep: (e: TapioEvent) => boolean, ctx: ProcessorContext): readonly TapioEvent[] {
  let out: TapioEvent[] | undefined
  for (let i = 0; i < batch.length; i++) {
    const e = batch[i] as TapioEvent
    if (keep(e)) {
      out?.push(e)
      continue
    }
    out ??= batch.slice(0, i) as TapioEvent[]
    ctx.drop(e)
  }
  return out ?? batch
}

/** What a rate limit counts separately. */
export type RateLimitKey = 'type' | 'source' | 'namespace' | 'pod'

export interface SampleOptions {
  readonly name?: string
  /** Keep one in N events of each listed type (`kernel.*` prefixes allowed; first match wins). */
  readonly perType?: Readonly<Record<string, number>>
  /** At most `perSecond` events per key (token bucket of `burst`, default perSecond). */
  readonly rateLimit?: { readonly key: RateLimitKey; readonly perSecond: number; readonly burst?: number; readonly maxKeys?: number }
}

interface Bucket {
  tokens: number
  at: number
}

/**
 * Deterministic 1-in-N sampling per type (a counter, not a random draw: reproducible, and each
 * type keeps exactly its share) and/or a token-bucket rate limit per key. Keys are bounded:
 * past `maxKeys` the least recently added key is forgotten (it starts with a full bucket again).
 */
export function sampleProcessor(o: SampleOptions): Processor {
  const exact = new Map<string, number>()
  const prefixes: [string, number][] = []
  for (const [t, n] of Object.entries(o.perType ?? {})) {
    if (!Number.isInteger(n) || n < 1) throw new RangeError(`sample.perType[${JSON.stringify(t)}]: expected an integer >= 1, got ${n}`)
    if (t.endsWith('*')) prefixes.push([t.slice(0, -1), n])
    else exact.set(t, n)
  }
  const seen = new Map<string, number>()
  const rate = o.rateLimit
  const burst = rate ? (rate.burst ?? rate.perSecond) : 0
  const maxKeys = rate?.maxKeys ?? 10_000
  const buckets = new Map<string, Bucket>()
  let evicted = 0
  let sampledOut = 0
  let limited = 0
  const keyOf = (e: TapioEvent): string => {
    switch (rate?.key) {
      case 'source':
        return e.source
      case 'namespace':
        return e.k8s?.namespace ?? e.entity?.namespace ?? ''
      case 'pod':
        return e.k8s?.podUid ?? e.k8s?.pod ?? ''
      default:
        return e.type
    }
  }
  const oneIn = (type: string): number => {
    const n = exact.get(type)
    if (n !== undefined) return n
    for (const [p, m] of prefixes) if (type.startsWith(p)) return m
    return 1
  }
  const hasPerType = exact.size > 0 || prefixes.length > 0
  return {
    name: o.name ?? 'sample',
    type: 'sample',
    process(batch, ctx) {
      const now = ctx.now
      return keepWhere(
        batch,
        (e) => {
          if (hasPerType) {
            const n = oneIn(e.type)
            if (n > 1) {
              const c = seen.get(e.type) ?? 0
              seen.set(e.type, c + 1)
              if (c % n !== 0) {
                sampledOut++
                return false
              }
            }
          }
          if (rate) {
            const k = keyOf(e)
            let b = buckets.get(k)
            if (!b) {
              if (buckets.size >= maxKeys) {
                const oldest = buckets.keys().next().value as string
                buckets.delete(oldest)
                evicted++
              }
              b = { tokens: burst, at: now }
              buckets.set(k, b)
            } else if (now > b.at) {
              b.tokens = Math.min(burst, b.tokens + ((now - b.at) / 1000) * rate.perSecond)
              b.at = now
            }
            if (b.tokens < 1) {
              limited++
              return false
            }
            b.tokens -= 1
          }
          return true
        },
        ctx,
      )
    },
    statistics: () => ({ sampled_out: sampledOut, rate_limited: limited, keys: buckets.size, keys_evicted: evicted }),
  }
}

/** Paths a field processor may touch: the event's identity (id, type, source, timestamp, severity) stays. */
export const EDITABLE_ROOTS = ['data', 'k8s', 'entity', 'trace'] as const

function splitPath(path: string, what: string): string[] {
  const parts = path.split('.')
  if (!(EDITABLE_ROOTS as readonly string[]).includes(parts[0] as string) || parts.some((p) => p === ''))
    throw new RangeError(`${what} ${JSON.stringify(path)}: expected a path under ${EDITABLE_ROOTS.join(', ')} (e.g. data.argv)`)
  return parts
}

function getAt(e: TapioEvent, parts: readonly string[]): unknown {
  let v: unknown = e
  for (const p of parts) {
    if (v === null || typeof v !== 'object' || !Object.hasOwn(v, p)) return undefined
    v = (v as Record<string, unknown>)[p]
  }
  return v
}

function hasAt(e: TapioEvent, parts: readonly string[]): boolean {
  let v: unknown = e
  for (const p of parts) {
    if (v === null || typeof v !== 'object' || !Object.hasOwn(v, p)) return false
    v = (v as Record<string, unknown>)[p]
  }
  return true
}

/** A copy of `obj` with `parts` removed (or set), copying only the objects on the path. */
function withAt(obj: Record<string, unknown>, parts: readonly string[], value: unknown, remove: boolean): Record<string, unknown> {
  const [head, ...rest] = parts as [string, ...string[]]
  const copy = { ...obj }
  if (rest.length === 0) {
    if (remove) delete copy[head]
    else copy[head] = value
    return copy
  }
  const child = copy[head]
  const base = child !== null && typeof child === 'object' && !Array.isArray(child) ? (child as Record<string, unknown>) : {}
  copy[head] = withAt(base, rest, value, remove)
  return copy
}

export interface DropFieldsOptions {
  readonly name?: string
  /** Paths such as `data.argv`, `trace`, `k8s.node`. */
  readonly fields: readonly string[]
}

/** Removes fields; an event that has none of them passes as it is (no copy). */
export function dropFieldsProcessor(o: DropFieldsOptions): Processor {
  const paths = o.fields.map((f) => splitPath(f, 'drop field'))
  return {
    name: o.name ?? 'drop',
    type: 'drop',
    process(batch) {
      let out: TapioEvent[] | undefined
      for (let i = 0; i < batch.length; i++) {
        let e = batch[i] as TapioEvent
        const original = e
        for (const p of paths) if (hasAt(e, p)) e = withAt(e as unknown as Record<string, unknown>, p, undefined, true) as unknown as TapioEvent
        if (e !== original) {
          out ??= batch.slice()
          out[i] = e
        }
      }
      return out ?? batch
    },
  }
}

export interface RenameFieldsOptions {
  readonly name?: string
  /** `from: to` paths, e.g. `data.comm: data.command`. */
  readonly fields: Readonly<Record<string, string>>
}

/** Moves fields; an event without any `from` passes as it is (no copy). */
export function renameFieldsProcessor(o: RenameFieldsOptions): Processor {
  const pairs = Object.entries(o.fields).map(([from, to]) => [splitPath(from, 'rename field'), splitPath(to, 'rename target')] as const)
  return {
    name: o.name ?? 'rename',
    type: 'rename',
    process(batch) {
      let out: TapioEvent[] | undefined
      for (let i = 0; i < batch.length; i++) {
        let e = batch[i] as TapioEvent
        const original = e
        for (const [from, to] of pairs) {
          if (!hasAt(e, from)) continue
          const v = getAt(e, from)
          e = withAt(withAt(e as unknown as Record<string, unknown>, from, undefined, true), to, v, false) as unknown as TapioEvent
        }
        if (e !== original) {
          out ??= batch.slice()
          out[i] = e
        }
      }
      return out ?? batch
    },
  }
}

/** Pod identity on kernel and network events (the agent's enrichment as a processor). */
export function enrichProcessor(enricher: Enricher | undefined, name = 'enrich'): Processor {
  return {
    name,
    type: 'enrich',
    process: enricher ? (batch) => enricher.enrich(batch) : (batch) => batch,
    passesUnread: () => enricher === undefined || enricher.passesUnread(),
    statistics: () => enricher?.statistics() ?? {},
  }
}

export interface RouteRule {
  readonly match: EventMatch
  readonly outputs: readonly string[]
}

export interface RouteOptions {
  readonly name?: string
  /** First matching rule decides; an event no rule matches goes to `default`. */
  readonly routes: readonly RouteRule[]
  /** Outputs for unmatched events; `[]` drops them (counted under this processor). */
  readonly default: readonly string[]
}

/** Sends each event to the outputs of the first rule it matches. */
export function routeProcessor(o: RouteOptions): Router {
  const rules = o.routes.map((r) => ({ match: compileMatch(r.match), outputs: [...new Set(r.outputs)] }))
  const outputs = [...new Set([...o.routes.flatMap((r) => r.outputs), ...o.default])]
  const fallback = [...new Set(o.default)]
  return {
    name: o.name ?? 'route',
    type: 'route',
    outputs,
    process(batch) {
      return batch
    },
    assign(batch, ctx) {
      const by = new Map<string, TapioEvent[]>(outputs.map((n) => [n, []]))
      for (const e of batch) {
        let to = fallback
        for (const r of rules) {
          if (r.match(e)) {
            to = r.outputs
            break
          }
        }
        if (to.length === 0) ctx.drop(e)
        for (const n of to) (by.get(n) as TapioEvent[]).push(e)
      }
      return by
    },
  }
}
