import type * as SchemaAST from 'effect/SchemaAST'

/**
 * "Did you mean": the keys a schema allows at a path, and the one closest to a mistyped key.
 * Walks Effect's schema AST (structs, optional and union members, arrays, records), so every
 * schema the agent decodes with gets suggestions without a list to keep in step.
 */

type Ast = SchemaAST.AST

function children(ast: Ast): Ast[] {
  const a = ast as unknown as { _tag: string; types?: Ast[]; thunk?: () => Ast }
  if (a._tag === 'Union') return (a.types ?? []).flatMap((t) => [t, ...children(t)].filter((x) => (x as { _tag: string })._tag !== 'Union'))
  if (a._tag === 'Suspend' && a.thunk) return [a.thunk()]
  return [ast]
}

function step(ast: Ast, key: PropertyKey): Ast[] {
  const out: Ast[] = []
  for (const node of children(ast)) {
    const n = node as unknown as {
      _tag: string
      propertySignatures?: { name: PropertyKey; type: Ast }[]
      indexSignatures?: { type: Ast }[]
      rest?: Ast[]
      elements?: Ast[]
    }
    if (n._tag === 'Objects') {
      const p = n.propertySignatures?.find((s) => s.name === key)
      if (p) out.push(p.type)
      else for (const i of n.indexSignatures ?? []) out.push(i.type)
    } else if (n._tag === 'Arrays' && typeof key === 'number') {
      const e = n.elements?.[key] ?? n.rest?.[0]
      if (e) out.push(e)
    }
  }
  return out
}

/** Property names the schema defines for the object at `path` (empty when it is a free-form record). */
export function knownKeysAt(ast: Ast, path: readonly PropertyKey[]): string[] {
  let nodes = [ast]
  for (const k of path) nodes = nodes.flatMap((n) => step(n, k))
  const keys = new Set<string>()
  for (const n of nodes.flatMap(children)) {
    const o = n as unknown as { _tag: string; propertySignatures?: { name: PropertyKey }[] }
    if (o._tag === 'Objects') for (const p of o.propertySignatures ?? []) if (typeof p.name === 'string') keys.add(p.name)
  }
  return [...keys]
}

/** Optimal string alignment distance (a swap of two neighbours costs 1: `rtae` -> `rate`). */
export function editDistance(a: string, b: string): number {
  const d: number[][] = Array.from({ length: a.length + 1 }, (_, i) => Array.from({ length: b.length + 1 }, (_, j) => (i === 0 ? j : j === 0 ? i : 0)))
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      const row = d[i] as number[]
      const prev = d[i - 1] as number[]
      const cost = a[i - 1] === b[j - 1] ? 0 : 1
      row[j] = Math.min((prev[j] as number) + 1, (row[j - 1] as number) + 1, (prev[j - 1] as number) + cost)
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) row[j] = Math.min(row[j] as number, ((d[i - 2] as number[])[j - 2] as number) + 1)
    }
  }
  return (d[a.length] as number[])[b.length] as number
}

/** The candidate a mistyped key most likely meant, if one is close enough (case ignored). */
export function closest(word: string, candidates: readonly string[]): string | undefined {
  const w = word.toLowerCase()
  let best: string | undefined
  let bestD = Infinity
  for (const c of candidates) {
    const d = editDistance(w, c.toLowerCase())
    if (d < bestD) {
      best = c
      bestD = d
    }
  }
  // Short keys tolerate one edit, longer ones about a third of their length.
  const limit = Math.max(1, Math.floor(Math.max(w.length, 3) / 3))
  return best !== undefined && bestD <= limit ? best : undefined
}
