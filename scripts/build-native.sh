#!/usr/bin/env bash
# Builds the optional native addon in native/ (BPF objects first, then the Node-API addon).
# Exit non-zero on failure; scripts/ensure.sh treats that as "addon unavailable", not fatal.
# Skips the work when every built addon is newer than every native source.
set -euo pipefail
cd "$(dirname "$0")/../native" 2>/dev/null || exit 0
[[ -f binding.gyp ]] || exit 0

targets=$(grep -o '"target_name": *"[^"]*"' binding.gyp | sed 's/.*"\([^"]*\)"$/\1/')
fresh=1
for t in $targets; do
  built="build/Release/$t.node"
  if [[ ! -f "$built" ]] || [[ -n "$(find . -path ./build -prune -o -type f -newer "$built" -print | grep -v '^./build' | head -n1)" ]]; then
    fresh=0
  fi
done
if [[ $fresh -eq 1 && "${FORCE_NATIVE_BUILD:-}" != 1 ]]; then
  exit 0
fi

# Each part of the addon may have a prebuild step (e.g. compiling BPF programs and skeletons).
# A failed prebuild only leaves its own target out (binding.gyp checks for its outputs); the
# collector that needs it then reports why at run time.
for pre in */prebuild.sh; do
  [[ -f "$pre" ]] || continue
  bash "$pre" || echo "build-native: $pre failed; that part of the addon is left out" >&2
done

gyp="$(dirname "$(readlink -f "$(command -v npm)")")/../node_modules/node-gyp/bin/node-gyp.js"
args=(rebuild --loglevel=warn)
# Build offline against the system's Node headers (no header download on these machines).
[[ -d /usr/include/node ]] && args+=(--nodedir=/usr)
node "$gyp" "${args[@]}"
