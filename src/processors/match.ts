import type { TapioEvent } from '../events/event.js'
import type { Severity } from '../events/schema.js'
import { compileExpression, type EventPredicate } from './expression.js'

/** Which events a filter or route rule selects; every given criterion must hold (and). */
export interface EventMatch {
  /** Event types; `kernel.*` matches a prefix. */
  readonly types?: readonly string[]
  readonly sources?: readonly string[]
  readonly severities?: readonly Severity[]
  /** At least this severity (debug < info < warning < error < critical). */
  readonly minSeverity?: Severity
  /** `k8s.namespace` (or `entity.namespace`) is one of these. */
  readonly namespaces?: readonly string[]
  /** Every label here equals the event's `data.labels` (Kubernetes object events). */
  readonly labels?: Readonly<Record<string, string>>
  /** A small expression (see expression.ts), e.g. `data.exitCode != 0`. */
  readonly where?: string
}

const SEVERITY_RANK: Readonly<Record<Severity, number>> = { debug: 0, info: 1, warning: 2, error: 3, critical: 4 }

function typeMatcher(patterns: readonly string[]): EventPredicate {
  const exact = new Set(patterns.filter((p) => !p.endsWith('*')))
  const prefixes = patterns.filter((p) => p.endsWith('*')).map((p) => p.slice(0, -1))
  if (prefixes.length === 0) return (e) => exact.has(e.type)
  return (e) => exact.has(e.type) || prefixes.some((p) => e.type.startsWith(p))
}

/** One predicate from a match; compiled once (the expression parsed up front, so errors show at load). */
export function compileMatch(m: EventMatch): EventPredicate {
  const checks: EventPredicate[] = []
  if (m.types) checks.push(typeMatcher(m.types))
  if (m.sources) {
    const s = new Set(m.sources)
    checks.push((e) => s.has(e.source))
  }
  if (m.severities) {
    const s = new Set<string>(m.severities)
    checks.push((e) => s.has(e.severity))
  }
  if (m.minSeverity) {
    const min = SEVERITY_RANK[m.minSeverity]
    checks.push((e) => (SEVERITY_RANK[e.severity] ?? 0) >= min)
  }
  if (m.namespaces) {
    const s = new Set(m.namespaces)
    checks.push((e) => {
      const ns = e.k8s?.namespace ?? e.entity?.namespace
      return ns !== undefined && s.has(ns)
    })
  }
  if (m.labels) {
    const want = Object.entries(m.labels)
    checks.push((e) => {
      const labels = (e.data as { labels?: unknown }).labels
      if (labels === null || typeof labels !== 'object') return false
      return want.every(([k, v]) => Object.hasOwn(labels, k) && (labels as Record<string, unknown>)[k] === v)
    })
  }
  if (m.where !== undefined) checks.push(compileExpression(m.where))
  if (checks.length === 0) return () => true
  if (checks.length === 1) return checks[0] as EventPredicate
  return (e) => {
    for (const c of checks) if (!c(e)) return false
    return true
  }
}
