/**
 * The Effect and XState modules that `import 'tapio-collector-manager'` loads: the floor of the
 * root import that `bench/footprint.ts` measures beside it. Effect's runtime and `effect/Schema`
 * are not among them: the package loads them on first use (src/core/lazy-module.ts).
 * `test/package/entry-points.test.ts` checks this list against the root import's module graph.
 */
export const ROOT_PEER_MODULES: readonly string[] = ['xstate']
