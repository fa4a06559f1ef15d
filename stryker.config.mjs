// StrykerJS: `npm run mutate` (docs/testing.md). Not part of .ci/run: a full run takes long.
// Scope one file while iterating: npm run mutate -- --mutate src/supervisor/policy.ts
/** @type {import('@stryker-mutator/api/core').PartialStrykerOptions} */
export default {
  testRunner: 'vitest',
  vitest: { configFile: 'vitest.mutate.config.ts', related: false },
  mutate: [
    'src/supervisor/**/*.ts',
    'src/stream/**/*.ts',
    'machines/**/*.ts',
    'src/core/clock.ts',
    'src/core/delay.ts',
    'src/core/backoff.ts',
    // Collectors' pure parts: the eBPF record decoder, the systemd unit states and their table,
    // the Kubernetes object-change mapping, the CNI collector's link/address and route tables and
    // its conf/cache-file parsers.
    'src/collectors/ebpf/decode.ts',
    'src/collectors/systemd/units.ts',
    'src/collectors/systemd/table.ts',
    'src/collectors/kubernetes/mapping.ts',
    'src/collectors/cni/network-state.ts',
    'src/collectors/cni/route-state.ts',
    'src/collectors/cni/cni-files.ts',
    '!machines/index.ts',
  ],
  // TypeScript 7 has no JS API: point the tsconfig rewriter at a file that does not exist, and
  // use no type-checker (vitest strips types; a mutant that does not compile fails its tests).
  tsconfigFile: 'stryker.tsconfig.absent.json',
  checkers: [],
  disableTypeChecks: true,
  coverageAnalysis: 'perTest',
  concurrency: 2,
  timeoutMS: 30_000,
  timeoutFactor: 2,
  reporters: ['json', 'clear-text', 'progress'],
  // Two scoped runs can go side by side with their own report and sandbox (MUTATION_REPORT, MUTATION_TMP).
  jsonReporter: { fileName: process.env.MUTATION_REPORT ?? 'reports/mutation/mutation.json' },
  htmlReporter: { fileName: 'reports/mutation/mutation.html' },
  tempDirName: process.env.MUTATION_TMP ?? '.stryker-tmp',
  // Not copied into the sandbox: other runs' sandboxes, reports, build output.
  ignorePatterns: ['.stryker-tmp*', 'reports', 'dist', 'test-artifacts', 'native/build'],
  cleanTempDir: 'always',
}
