import type { TapioEvent } from '../events/event.js'

/**
 * A small, safe expression over one event, compiled once into closures (no eval, no access to
 * anything but the event's own fields):
 *
 *   severity == "error" && data.exitCode != 0
 *   !(source == "ebpf") || k8s.namespace == "prod"
 *
 * Operands: a field path (`type`, `source`, `severity`, `id`, `timestamp`, `data.x.y`, `k8s.x`,
 * `entity.x`, `trace.x`), a "string" or 'string', a number, true, false, null.
 * Operators: == != < <= > >= (comparisons), && || ! and parentheses. A bare path is true when the
 * field is present and not false, 0, "" or null.
 */
export type EventPredicate = (e: TapioEvent) => boolean

export class ExpressionError extends Error {
  override readonly name = 'ExpressionError'
  constructor(
    readonly expression: string,
    readonly position: number,
    what: string,
  ) {
    super(`${what} at column ${position + 1} of ${JSON.stringify(expression)}`)
  }
}

type Token =
  | { readonly kind: 'path'; readonly parts: readonly string[]; readonly at: number }
  | { readonly kind: 'literal'; readonly value: string | number | boolean | null; readonly at: number }
  | { readonly kind: 'op'; readonly op: string; readonly at: number }
  | { readonly kind: 'end'; readonly at: number }

const ROOTS = new Set(['id', 'timestamp', 'type', 'source', 'severity', 'data', 'k8s', 'entity', 'trace'])
const OPERATORS = ['==', '!=', '<=', '>=', '&&', '||', '<', '>', '!', '(', ')']
const MAX_LENGTH = 1000

function tokenize(src: string): Token[] {
  const out: Token[] = []
  let i = 0
  while (i < src.length) {
    const c = src[i] as string
    if (c === ' ' || c === '\t' || c === '\n') {
      i++
      continue
    }
    const op = OPERATORS.find((o) => src.startsWith(o, i))
    if (op) {
      out.push({ kind: 'op', op, at: i })
      i += op.length
      continue
    }
    if (c === '"' || c === "'") {
      const end = src.indexOf(c, i + 1)
      if (end < 0) throw new ExpressionError(src, i, 'unterminated string')
      out.push({ kind: 'literal', value: src.slice(i + 1, end), at: i })
      i = end + 1
      continue
    }
    const num = /^-?\d+(\.\d+)?/.exec(src.slice(i))
    if (num) {
      out.push({ kind: 'literal', value: Number(num[0]), at: i })
      i += num[0].length
      continue
    }
    const word = /^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z0-9_]+)*/.exec(src.slice(i))
    if (word) {
      const w = word[0]
      if (w === 'true' || w === 'false') out.push({ kind: 'literal', value: w === 'true', at: i })
      else if (w === 'null') out.push({ kind: 'literal', value: null, at: i })
      else {
        const parts = w.split('.')
        if (!ROOTS.has(parts[0] as string)) throw new ExpressionError(src, i, `unknown field ${JSON.stringify(w)} (fields start with ${[...ROOTS].join(', ')})`)
        out.push({ kind: 'path', parts, at: i })
      }
      i += w.length
      continue
    }
    throw new ExpressionError(src, i, `unexpected ${JSON.stringify(c)}`)
  }
  out.push({ kind: 'end', at: src.length })
  return out
}

type Value = (e: TapioEvent) => unknown

function pathGetter(parts: readonly string[]): Value {
  if (parts.length === 1) {
    const k = parts[0] as keyof TapioEvent
    return (e) => e[k]
  }
  return (e) => {
    let v: unknown = e
    for (const p of parts) {
      if (v === null || typeof v !== 'object') return undefined
      // Own fields only: a path like data.constructor must not reach the prototype.
      v = Object.hasOwn(v, p) ? (v as Record<string, unknown>)[p] : undefined
    }
    return v
  }
}

function truthy(v: unknown): boolean {
  return v !== undefined && v !== null && v !== false && v !== 0 && v !== ''
}

function compare(op: string, a: unknown, b: unknown): boolean {
  switch (op) {
    case '==':
      return a === b || (a === undefined && b === null)
    case '!=':
      return !(a === b || (a === undefined && b === null))
  }
  // Ordering only between two numbers or two strings; anything else is false.
  if (!((typeof a === 'number' && typeof b === 'number') || (typeof a === 'string' && typeof b === 'string'))) return false
  switch (op) {
    case '<':
      return a < b
    case '<=':
      return a <= b
    case '>':
      return a > b
    default:
      return a >= b
  }
}

/** Compile an expression; throws ExpressionError naming the column of the problem. */
export function compileExpression(src: string): EventPredicate {
  if (src.length > MAX_LENGTH) throw new ExpressionError(src.slice(0, 40), 0, `expression longer than ${MAX_LENGTH} characters`)
  const tokens = tokenize(src)
  let pos = 0
  const peek = () => tokens[pos] as Token
  const isOp = (op: string) => {
    const t = peek()
    return t.kind === 'op' && t.op === op
  }
  const expectOp = (op: string) => {
    if (!isOp(op)) throw new ExpressionError(src, peek().at, `expected ${op}`)
    pos++
  }
  const operand = (): Value => {
    const t = peek()
    if (t.kind === 'path') {
      pos++
      return pathGetter(t.parts)
    }
    if (t.kind === 'literal') {
      pos++
      const v = t.value
      return () => v
    }
    throw new ExpressionError(src, t.at, t.kind === 'end' ? 'unexpected end' : 'expected a field or a value')
  }
  const primary = (): EventPredicate => {
    if (isOp('(')) {
      pos++
      const inner = or()
      expectOp(')')
      return inner
    }
    const left = operand()
    const t = peek()
    if (t.kind === 'op' && ['==', '!=', '<', '<=', '>', '>='].includes(t.op)) {
      pos++
      const right = operand()
      const op = t.op
      return (e) => compare(op, left(e), right(e))
    }
    return (e) => truthy(left(e))
  }
  const unary = (): EventPredicate => {
    if (isOp('!')) {
      pos++
      const inner = unary()
      return (e) => !inner(e)
    }
    return primary()
  }
  const and = (): EventPredicate => {
    let left = unary()
    while (isOp('&&')) {
      pos++
      const a = left
      const b = unary()
      left = (e) => a(e) && b(e)
    }
    return left
  }
  const or = (): EventPredicate => {
    let left = and()
    while (isOp('||')) {
      pos++
      const a = left
      const b = and()
      left = (e) => a(e) || b(e)
    }
    return left
  }
  const result = or()
  if (peek().kind !== 'end') throw new ExpressionError(src, peek().at, 'unexpected text after the expression')
  return result
}
