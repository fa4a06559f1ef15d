/**
 * Subjects: `<prefix>.<node>.<source>.<type tokens>`. A token must not be empty, contain a dot,
 * whitespace or a wildcard (`*`, `>`): anything else would publish to the wrong place or be
 * rejected. Node and source become one token each; the dotted event type keeps its dots so
 * consumers can filter on its parts (`tapio.events.*.*.kernel.>`).
 */

const BAD = /[^A-Za-z0-9_-]/g

/** One subject token from arbitrary text. */
export function subjectToken(s: string): string {
  const t = s.replace(BAD, '_')
  return t.length > 0 ? t : '_'
}

/** The type's dot-separated tokens, each made safe. */
export function typeTokens(type: string): string {
  return type.split('.').map(subjectToken).join('.')
}

export function eventSubject(prefix: string, node: string, source: string, type: string): string {
  return `${prefix}.${subjectToken(node)}.${subjectToken(source)}.${typeTokens(type)}`
}

/** Subject per (source, type), remembered: the hot path sees a handful of distinct pairs. */
export class SubjectCache {
  private readonly bySource = new Map<string, Map<string, string>>()
  private readonly base: string

  constructor(prefix: string, node: string) {
    this.base = `${prefix}.${subjectToken(node)}.`
  }

  subject(source: string, type: string): string {
    let types = this.bySource.get(source)
    if (!types) {
      // Unbounded growth would need unbounded distinct names; collectors use a fixed set.
      if (this.bySource.size > 10_000) this.bySource.clear()
      types = new Map()
      this.bySource.set(source, types)
    }
    let s = types.get(type)
    if (s === undefined) {
      if (types.size > 10_000) types.clear()
      s = `${this.base}${subjectToken(source)}.${typeTokens(type)}`
      types.set(type, s)
    }
    return s
  }
}

/** Parse `<prefix>.<node>.<source>.<type...>` back (node and source as sanitized). */
export function parseEventSubject(prefix: string, subject: string): { node: string; source: string; type: string } | undefined {
  if (!subject.startsWith(`${prefix}.`)) return undefined
  const parts = subject.slice(prefix.length + 1).split('.')
  if (parts.length < 3) return undefined
  return { node: parts[0] as string, source: parts[1] as string, type: parts.slice(2).join('.') }
}
