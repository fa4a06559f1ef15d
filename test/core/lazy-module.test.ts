import * as Effect from 'effect/Effect'
import * as Stream from 'effect/Stream'
import { describe, expect, it } from 'vitest'
import { lazyModule } from '../../src/core/lazy-module.js'

describe('lazyModule', () => {
  it("returns the same module instance as an import of it (one Effect: the user's)", () => {
    const stream = lazyModule('effect/Stream')
    expect(stream()).toBe(Stream)
    expect(stream()).toBe(stream())
    expect(lazyModule('effect/Effect')()).toBe(Effect)
    // A stream built through it is one of the importer's streams, and runs with its Effect.
    const s = lazyModule('effect/Stream')().make(1, 2, 3)
    expect(Stream.isStream(s)).toBe(true)
    expect(Effect.runSync(Stream.runCollect(s))).toEqual([1, 2, 3])
  })

  it('names the module and the Node.js version when the module cannot be loaded', () => {
    // Not a key of LazyModules: the cast stands for a module that is missing where the package runs.
    const missing = lazyModule('effect/NoSuchModule' as 'effect/Stream')
    expect(() => missing()).toThrow(new RegExp(`cannot load effect/NoSuchModule synchronously .*this is ${process.version.replace(/\./g, '\\.')}\\): .*NoSuchModule`))
  })
})
