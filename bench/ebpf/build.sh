#!/usr/bin/env bash
# Builds the ebpf benchmark helpers into bench/ebpf/out/: `loadgen` (no dependencies) and
# `consumer` (needs the BPF skeleton from native/bpf/prebuild.sh and libbpf-dev).
# usage: build.sh [loadgen] [consumer]   (both when no argument)
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
out="$here/out"
mkdir -p "$out"
targets=("$@")
((${#targets[@]})) || targets=(loadgen consumer)
for t in "${targets[@]}"; do
  case "$t" in
    loadgen)
      [[ "$out/loadgen" -nt "$here/loadgen.c" ]] || cc -O2 -Wall -o "$out/loadgen" "$here/loadgen.c"
      ;;
    consumer)
      skel="$here/../../native/bpf/.out"
      [[ -f "$skel/tapio.skel.h" ]] || bash "$here/../../native/bpf/prebuild.sh"
      [[ "$out/consumer" -nt "$here/consumer.c" && "$out/consumer" -nt "$skel/tapio.skel.h" ]] ||
        cc -O2 -Wall -I"$skel" -o "$out/consumer" "$here/consumer.c" -lbpf -lelf -lz
      ;;
    *) echo "unknown target $t" >&2; exit 2 ;;
  esac
done
