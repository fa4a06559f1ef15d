import * as Schema from 'effect/Schema'
import { describe, expect, it } from 'vitest'
import { lazySchema, schemaApi } from '../../src/core/lazy-schema.js'

const build = (S: typeof Schema) =>
  S.Struct({
    name: S.String.check(S.isMinLength(1)),
    count: S.optional(S.Int.check(S.isGreaterThanOrEqualTo(0))),
    tags: S.Array(S.Literals(['a', 'b'])),
  })

describe('lazySchema', () => {
  it('builds nothing until first touched, then builds exactly once', () => {
    let builds = 0
    const lazy = lazySchema((S) => {
      builds++
      return build(S)
    })
    expect(builds).toBe(0)
    const holder = { lazy }
    expect(holder.lazy).toBe(lazy) // passing it around is no touch
    expect(builds).toBe(0)
    void lazy.ast
    void lazy.fields
    expect(Schema.isSchema(lazy)).toBe(true)
    expect(builds).toBe(1)
  })

  it('is, once built, the schema it builds: same prototype, own properties and decoding', () => {
    const eager = build(Schema)
    const lazy = lazySchema(build)
    expect(typeof lazy).toBe('function')
    expect(Schema.isSchema(lazy)).toBe(true)
    expect(Object.getPrototypeOf(lazy)).toBe(Object.getPrototypeOf(eager))
    expect(Reflect.ownKeys(lazy).map(String).sort()).toEqual(Reflect.ownKeys(eager).map(String).sort())
    expect(Object.keys(lazy.fields)).toEqual(['name', 'count', 'tags'])
    const good = { name: 'x', count: 2, tags: ['a'] }
    const bad = { name: '', count: -1, tags: ['c'] }
    expect(Schema.decodeUnknownSync(lazy)(good)).toEqual(good)
    expect(String(Schema.decodeUnknownResult(lazy)(bad, { errors: 'all' }))).toBe(String(Schema.decodeUnknownResult(eager)(bad, { errors: 'all' })))
    expect(Schema.toJsonSchemaDocument(lazy)).toEqual(Schema.toJsonSchemaDocument(eager))
  })

  it('composes like a schema: nested, refined, annotated, made optional', () => {
    const lazy = lazySchema(build)
    const outer = Schema.Struct({ inner: lazy, maybe: Schema.optional(lazy) })
    expect(Schema.decodeUnknownSync(outer)({ inner: { name: 'n', tags: [] } })).toEqual({ inner: { name: 'n', tags: [] } })
    expect(() => Schema.decodeUnknownSync(outer)({ inner: { name: 'n', tags: [] }, maybe: { name: 1 } })).toThrow(/maybe/)
    const annotated = lazy.annotate({ description: 'a thing' })
    expect(annotated.ast.annotations?.description).toBe('a thing')
    const checked = lazy.check(Schema.makeFilter((v) => v.tags.length > 0 || 'expected a tag'))
    expect(() => Schema.decodeUnknownSync(checked)({ name: 'n', tags: [] })).toThrow(/expected a tag/)
    const inner = lazySchema((S) => S.String.check(S.isMinLength(2)))
    const nested = lazySchema((S) => S.Struct({ id: inner }))
    expect(() => Schema.decodeUnknownSync(nested)({ id: 'x' })).toThrow(/id/)
  })

  it('loads the same effect/Schema as an import does (one Effect)', () => {
    expect(schemaApi()).toBe(Schema)
  })
})
