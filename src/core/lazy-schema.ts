/**
 * Effect schemas that are built on first use, so that importing the package does not evaluate
 * `effect/Schema`.
 *
 * Why: `effect/Schema` pulls in about 75 modules that Effect's streams do not need (codecs for
 * crypto, HTTP, network addresses, JSON Schema, SemVer ...): ~60 ms of CPU and ~7 MB, more than a
 * third of what the root import took, for code that a supervisor embedding collectors never runs
 * unless it validates something. The root entry still exports every schema (`TapioEventSchema`,
 * the event vocabulary, config schemas): each export is a proxy that builds the real schema, and
 * loads `effect/Schema`, the first time anything touches it (`.ast`, `.fields`,
 * `Schema.decodeUnknown(x)`, nesting it in another schema). After that the proxy mirrors the built
 * schema, so it is one in every observable way: same prototype, same own properties,
 * `Schema.isSchema` holds, it decodes alike.
 *
 * The load on first touch is synchronous (`lazyModule`: `require()` of the ES module, the same
 * instance as an `import` of it), so schemas built here are the user's own Effect schemas.
 */
import type * as SchemaModule from 'effect/Schema'
import { lazyModule } from './lazy-module.js'

export type SchemaApi = typeof SchemaModule

/** `effect/Schema`, loaded on the first call (see lazy-module.ts). */
export const schemaApi: () => SchemaApi = lazyModule('effect/Schema')

/**
 * A schema built by `build` on first touch. Typed as the schema itself: the proxy is
 * indistinguishable from it once built (see the module comment).
 */
export function lazySchema<S extends SchemaModule.Top>(build: (Schema: SchemaApi) => S): S {
  // A function, as Effect's schemas are (`make` builds them on `function Schema() {}`); once built,
  // it carries the schema's prototype and own properties, which keeps every Proxy invariant.
  const target = function Schema() {}
  let built = false
  const materialise = (): void => {
    if (built) return
    const schema = build(schemaApi())
    if (typeof schema !== 'function') throw new TypeError('lazySchema: expected an Effect schema (a function object)')
    for (const key of Reflect.ownKeys(target)) {
      if (Object.getOwnPropertyDescriptor(target, key)?.configurable) Reflect.deleteProperty(target, key)
    }
    Object.defineProperties(target, Object.getOwnPropertyDescriptors(schema))
    Object.setPrototypeOf(target, Object.getPrototypeOf(schema))
    built = true
  }
  const handler: ProxyHandler<typeof target> = {
    get: (t, key, receiver) => (materialise(), Reflect.get(t, key, receiver)),
    set: (t, key, value, receiver) => (materialise(), Reflect.set(t, key, value, receiver)),
    has: (t, key) => (materialise(), Reflect.has(t, key)),
    ownKeys: (t) => (materialise(), Reflect.ownKeys(t)),
    getOwnPropertyDescriptor: (t, key) => (materialise(), Reflect.getOwnPropertyDescriptor(t, key)),
    defineProperty: (t, key, d) => (materialise(), Reflect.defineProperty(t, key, d)),
    deleteProperty: (t, key) => (materialise(), Reflect.deleteProperty(t, key)),
    getPrototypeOf: (t) => (materialise(), Reflect.getPrototypeOf(t)),
    setPrototypeOf: (t, proto) => (materialise(), Reflect.setPrototypeOf(t, proto)),
    isExtensible: (t) => (materialise(), Reflect.isExtensible(t)),
    preventExtensions: (t) => (materialise(), Reflect.preventExtensions(t)),
    apply: (t, self, args) => (materialise(), Reflect.apply(t, self, args)),
  }
  return new Proxy(target, handler) as unknown as S
}
