#!/usr/bin/env bash
# Builds the native addons in native/ (BPF objects and skeleton first, then the Node-API addons)
# into native/build/Release/<target>.node.
#
#   build-native.sh            build what is stale (checkout, scripts/ensure.sh); exit 1 when a
#                              target could not be built, saying why
#   build-native.sh --pack     as above, but every target must build and load (npm prepack: the
#                              tarball carries them all)
#   build-native.sh --install  npm's install hook in an installed package: keep the shipped addons
#                              that load here; rebuild the others in native/.rebuild and keep what
#                              loads. What still fails is reported on stderr and in
#                              native/build/<target>.failure.txt (the collectors quote it), and the
#                              install goes on: the supervisor itself needs no addon.
set -euo pipefail
mode=${1:-dev}
case "$mode" in dev | --pack | --install) ;; *) echo "usage: $0 [--pack|--install]" >&2; exit 2 ;; esac
here=$(cd "$(dirname "$0")/.." && pwd)
cd "$here/native"

targets=$(grep -o '"target_name": *"[^"]*"' binding.gyp | sed 's/.*"\([^"]*\)"$/\1/')
say() { printf 'build-native: %s\n' "$*" >&2; }

# Loading is the test that matters (a file can be there and still not load: libbpf, arch, libc).
loads() { [[ -f "$1" ]] && node -e 'require(require("path").resolve(process.argv[1]))' "$1" 2>/dev/null; }
load_error() { [[ -f "$1" ]] || { echo missing; return; }; node -e 'require(require("path").resolve(process.argv[1]))' "$1" 2>&1 | grep -m1 -i 'error' || true; }

# The first line of a build log that says what went wrong (compiler, make, missing tool or header).
first_error() {
  grep -m1 -E 'error:|Error [0-9]|not found|No such file|cannot find' "$1" | grep -v '^gyp ' | sed 's/^[[:space:]]*//' || true
  grep -q -m1 -E 'error:|Error [0-9]|not found|No such file|cannot find' "$1" || tail -n1 "$1"
}

gyp=${npm_config_node_gyp:-"$(dirname "$(readlink -f "$(command -v npm)")")/../node_modules/node-gyp/bin/node-gyp.js"}
gyp_args=(rebuild --loglevel=warn)
# Build offline against the system's Node headers when present (no header download).
[[ -d /usr/include/node ]] && gyp_args+=(--nodedir=/usr)

# Compile in $1 (a directory holding binding.gyp, src/ and bpf/); the output of the steps goes to
# $2 so that a failure can be reported with its cause.
compile() {
  local dir=$1 log=$2
  : >"$log"
  # A failed prebuild only leaves tapio_bpf out (binding.gyp builds it only with the skeleton).
  for pre in "$dir"/*/prebuild.sh; do
    [[ -f "$pre" ]] || continue
    bash "$pre" >>"$log" 2>&1 || say "$(basename "$(dirname "$pre")")/prebuild.sh failed: $(tail -n1 "$log")"
  done
  (cd "$dir" && node "$gyp" "${gyp_args[@]}") >>"$log" 2>&1
}

# node-gyp links Release/x.node to obj.target/x.node; npm pack would store the second as a hard
# link, which npm install does not extract. One plain file each.
unlink_hard() {
  for f in "$1"/*.node; do
    [[ -f "$f" ]] || continue
    cp "$f" "$f.tmp" && mv -f "$f.tmp" "$f"
  done
}

if [[ "$mode" == --install ]]; then
  mkdir -p build/Release
  stale=()
  for t in $targets; do loads "build/Release/$t.node" || stale+=("$t"); done
  ((${#stale[@]})) || exit 0
  if [[ -f "build/Release/${stale[0]}.node" ]]; then
    say "rebuilding ${stale[*]} for $(uname -m), Node $(node -p process.version) (the shipped linux-x64 build does not load here)"
  else
    say "building ${stale[*]} (not built yet)"
  fi
  rm -rf .rebuild && mkdir .rebuild
  cp -r binding.gyp src bpf .rebuild/
  log=build/rebuild.log
  compile .rebuild "$log" || true
  for t in "${stale[@]}"; do
    built=.rebuild/build/Release/$t.node
    if [[ -f "$built" ]] && loads "$built"; then
      cp "$built" "build/Release/$t.node"
      rm -f "build/$t.failure.txt"
      say "$t rebuilt"
    else
      # The first line says why (the collector's error quotes it); the log's tail follows.
      why=$(first_error "$log")
      { echo "$t could not be rebuilt on $(uname -m) with Node $(node -p process.version): $why (full log: $here/native/$log)"; tail -n 15 "$log"; } >"build/$t.failure.txt"
      say "$t is unavailable: $why (full log: $here/native/$log)"
    fi
  done
  rm -rf .rebuild
  exit 0
fi

# dev / --pack: skip the work when every built addon loads and is newer than every source.
fresh=1
for t in $targets; do
  built="build/Release/$t.node"
  if [[ ! -f "$built" ]] || [[ -n "$(find binding.gyp src bpf -type f -newer "$built" -not -path 'bpf/.out/*' -print -quit)" ]] || ! loads "$built"; then
    fresh=0
  fi
done
if [[ $fresh -eq 0 || "${FORCE_NATIVE_BUILD:-}" == 1 ]]; then
  mkdir -p build
  log=build/build.log
  if ! compile . "$log"; then
    say "node-gyp failed:"
    tail -n 20 "$log" >&2
    exit 1
  fi
fi
[[ -d build/Release ]] && unlink_hard build/Release

status=0
for t in $targets; do
  built="build/Release/$t.node"
  if loads "$built"; then
    rm -f "build/$t.failure.txt"
  else
    say "$t not built or does not load ($(load_error "$built")); see $here/native/build/build.log"
    status=1
  fi
done
if [[ "$mode" == --pack && $status -ne 0 ]]; then
  say "npm pack needs every addon: install the packages in scripts/apt-packages.txt and run again"
fi
exit $status
