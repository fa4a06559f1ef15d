/**
 * Effect modules loaded on first use rather than when the package is imported.
 *
 * Why: the root import is meant to be light for a process that embeds the supervisor. Effect's
 * runtime (`effect/Effect`, `effect/Stream` and what they pull in: ~80 modules, ~20 MB RSS) is
 * needed only once a collector runs (the pump), the merged stream is asked for as an Effect
 * `Stream`, or an `effectCollector` is made; `effect/Schema` (~75 more modules) only once
 * something is validated (see lazy-schema.ts). Whoever gets that far pays it then, and a user
 * who hands the package an Effect stream has loaded those modules already.
 *
 * The load is synchronous: `require()` of an ES module, which Node.js runs without a flag from
 * 20.19 (hence `engines`). It resolves the same file as an `import` of the specifier from this
 * package, and Node.js shares one instance between the two, so what is built here is the user's
 * own Effect (a `Stream` from `mgr.stream` is one of theirs; `Stream.isStream` holds for theirs).
 */
import { createRequire } from 'node:module'

/** The modules loaded this way, by specifier. `typeof import(...)` is a type: it loads nothing. */
export interface LazyModules {
  'effect/Cause': typeof import('effect/Cause')
  'effect/Effect': typeof import('effect/Effect')
  'effect/Exit': typeof import('effect/Exit')
  'effect/Fiber': typeof import('effect/Fiber')
  'effect/Result': typeof import('effect/Result')
  'effect/Schema': typeof import('effect/Schema')
  'effect/Scope': typeof import('effect/Scope')
  'effect/Stream': typeof import('effect/Stream')
}

const requireFromHere = createRequire(import.meta.url)

/** A function that returns the module `specifier`, loading it on its first call. */
export function lazyModule<K extends keyof LazyModules>(specifier: K): () => LazyModules[K] {
  let loaded: LazyModules[K] | undefined
  return () => {
    if (loaded === undefined) {
      try {
        loaded = requireFromHere(specifier) as LazyModules[K]
      } catch (e) {
        throw new Error(
          `tapio-collector-manager: cannot load ${specifier} synchronously (require of an ES module needs Node.js >= 20.19; this is ${process.version}): ${e instanceof Error ? e.message : String(e)}`,
          { cause: e },
        )
      }
    }
    return loaded
  }
}
