import { fileURLToPath } from 'node:url'
import { defineConfig } from 'vitest/config'

const src = (path: string) => fileURLToPath(new URL(path, import.meta.url))

export default defineConfig({
  resolve: {
    // Examples import the package by name, as its users do; in tests that name means these sources
    // (one copy of every module, shared with the tests' own relative imports).
    alias: [
      { find: /^tapio-collector-manager$/, replacement: src('./src/index.ts') },
      { find: /^tapio-collector-manager\/machines$/, replacement: src('./machines/index.ts') },
      { find: /^tapio-collector-manager\/testing$/, replacement: src('./src/testing/index.ts') },
      { find: /^tapio-collector-manager\/(ebpf|kubernetes|systemd|cni|nats|inspector)$/, replacement: src('./src/public/$1.ts') },
    ],
  },
  test: {
    include: ['test/**/*.test.ts'],
    globalSetup: ['test/global-setup.ts'],
    // Tests start real processes (dbus-daemon, systemd, nats-server); give them room on a 2-core machine.
    testTimeout: 60_000,
    hookTimeout: 120_000,
    pool: 'forks',
    reporters: ['default'],
  },
})
