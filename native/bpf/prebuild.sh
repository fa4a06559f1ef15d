#!/usr/bin/env bash
# Compiles the BPF programs (CO-RE) and generates their libbpf skeleton into native/bpf/.out/,
# which the tapio_bpf target of binding.gyp includes. Fails with a reason when a tool is missing;
# scripts/build-native.sh then leaves the tapio_bpf target out (the collector says why at run time).
set -euo pipefail
cd "$(dirname "$0")"
out=.out
need() { command -v "$1" >/dev/null 2>&1 || { echo "ebpf prebuild: $1 not found (apt-get install $2)" >&2; exit 1; }; }
need clang clang
need bpftool bpftool
[[ -f /usr/include/bpf/libbpf.h ]] || { echo "ebpf prebuild: libbpf headers missing (apt-get install libbpf-dev libelf-dev)" >&2; exit 1; }
mkdir -p "$out"

# vmlinux.h: from the running kernel's BTF; the programs are CO-RE, so any BTF kernel works.
if [[ ! -s $out/vmlinux.h ]]; then
  [[ -r /sys/kernel/btf/vmlinux ]] || { echo "ebpf prebuild: /sys/kernel/btf/vmlinux missing (kernel without BTF)" >&2; exit 1; }
  bpftool btf dump file /sys/kernel/btf/vmlinux format c > "$out/vmlinux.h.tmp"
  mv "$out/vmlinux.h.tmp" "$out/vmlinux.h"
fi

arch=$(uname -m); case "$arch" in x86_64) barch=x86 ;; aarch64) barch=arm64 ;; *) barch=$arch ;; esac
if [[ ! -s $out/tapio.skel.h || tapio.bpf.c -nt $out/tapio.skel.h || tapio_records.h -nt $out/tapio.skel.h ]]; then
  clang -O2 -g -Wall -target bpf -D__TARGET_ARCH_"$barch" -I"$out" -I. -c tapio.bpf.c -o "$out/tapio.bpf.o"
  bpftool gen skeleton "$out/tapio.bpf.o" name tapio_bpf > "$out/tapio.skel.h.tmp"
  mv "$out/tapio.skel.h.tmp" "$out/tapio.skel.h"
fi
cp tapio_records.h "$out/tapio_records.h"
