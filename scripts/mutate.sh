#!/usr/bin/env bash
# npm run mutate [-- <stryker options, e.g. --mutate src/supervisor/policy.ts --concurrency 1>]
# StrykerJS over the supervisor, the stream, the machines and the collectors' pure parts with the
# tests that exercise them (stryker.config.mjs), then the score per file; JSON summary last.
set -euo pipefail
cd "$(dirname "$0")/.."
npx --no-install stryker run "$@" >&2
# Static mutants (module-load code) are not activated by the 9.6 vitest runner with vitest 4.1:
# re-check the survivors among them by hand (scripts/mutation-static-recheck.mjs).
node scripts/mutation-static-recheck.mjs "${MUTATION_REPORT:-reports/mutation/mutation.json}" >&2
node scripts/mutation-summary.mjs "${MUTATION_REPORT:-reports/mutation/mutation.json}"
