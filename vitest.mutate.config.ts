import { defineConfig } from 'vitest/config'

/**
 * The tests `npm run mutate` runs against each mutant (docs/testing.md): the pure core's tests,
 * without the global setup (no tsc build: TypeScript 7 has no JS API and the mutants live only in
 * Stryker's sandbox) and with the model test at fewer sequences, so a run fits on a shared machine.
 */
export default defineConfig({
  test: {
    include: [
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
    ],
    env: { MODEL_RUNS: process.env.MODEL_RUNS ?? '300' },
    testTimeout: 60_000,
    pool: 'forks',
  },
})
