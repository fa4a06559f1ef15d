#!/usr/bin/env bash
# Installs whatever this checkout lacks, then builds it. Idempotent and quiet when nothing is missing.
# Used by `npm start`, `npm test` (pre-hooks) and .ci/run.
set -euo pipefail
cd "$(dirname "$0")/.."

log() { printf '[ensure] %s\n' "$*" >&2; }

# 1. Debian packages (only as root; otherwise say what is missing and go on).
mapfile -t wanted < <(grep -v '^\s*#' scripts/apt-packages.txt | tr -s ' \t' '\n' | grep -v '^$' || true)
missing=()
for p in "${wanted[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if ((${#missing[@]})); then
  if [[ $(id -u) -eq 0 ]]; then
    log "installing Debian packages: ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >/dev/null
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  else
    log "missing Debian packages (run as root to install): ${missing[*]}"
  fi
fi

# 2. npm dependencies (npm ci when the lock file changed since the last install).
if [[ ! -f node_modules/.package-lock.json ]] || [[ package-lock.json -nt node_modules/.package-lock.json ]]; then
  log "installing npm dependencies"
  npm ci --no-audit --no-fund --loglevel=error
fi

# 3. Native addon (optional: collectors that need it report why it is unavailable).
if [[ -f scripts/build-native.sh ]]; then
  bash scripts/build-native.sh || log "native addon not built; the ebpf and cni collectors will report it as unavailable"
fi

# 4. TypeScript build (the CLI, examples and benchmarks run from dist/).
log "building"
npx --no-install tsc -p tsconfig.json
