import { defineConfig } from 'vitest/config'

/**
 * The tests `npm run mutate` runs against each mutant (docs/testing.md): the pure core's tests,
 * without the global setup (no tsc build: TypeScript 7 has no JS API and the mutants live only in
 * Stryker's sandbox), on the driven clock only (a test that sleeps would make every mutant cost
 * seconds) and with the model test and the machines' properties at fewer sequences.
 *
 * MUTATION_TESTS=a.test.ts,b.test.ts narrows the set to those files (a scoped run: the tests that
 * import the mutated file). A mutant they kill, the whole set kills too; the score is a lower bound.
 */
export default defineConfig({
  test: {
    include: process.env.MUTATION_TESTS?.split(',').filter(Boolean) ?? [
      'test/core/clock.test.ts',
      'test/core/delay.test.ts',
      'test/core/backoff.test.ts',
      'test/supervisor/*.test.ts',
      'test/stream/*.test.ts',
      'test/machines/*.test.ts',
      'test/manager/model.test.ts',
      'test/manager/supervision.test.ts',
      'test/collectors/ebpf/decode.test.ts',
      'test/collectors/systemd/units.test.ts',
      'test/collectors/systemd/table.test.ts',
      'test/collectors/kubernetes/mapping.test.ts',
      'test/collectors/cni/state.test.ts',
      'test/collectors/cni/cni-files.test.ts',
    ],
    env: { MODEL_RUNS: process.env.MODEL_RUNS ?? '100' },
    testTimeout: 60_000,
    pool: 'forks',
  },
})
