// Opening, loading and attaching the BPF object, independent of Node-API.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

struct tapio_bpf;
struct bpf_link;

struct LoaderOptions {
  uint32_t ring_bytes = 1u << 24;
  uint64_t wakeup_bytes = 1u << 20;
  uint32_t probe_tgid = 0;
  std::vector<std::string> programs;      // names: exec, exit, tcp, oom, openat, probe, cgroup
  std::vector<std::string> open_prefixes;
};

struct ProgramFailure {
  std::string program;
  int err;  // positive errno
  std::string message;
};

struct LoadResult {
  tapio_bpf* skel = nullptr;
  std::vector<std::string> attached;
  std::vector<bpf_link*> links;
  std::vector<ProgramFailure> failed;
  // Set when nothing could be loaded at all.
  int err = 0;
  std::string stage;
  std::string message;
};

LoadResult load_and_attach(const LoaderOptions& opts);
void detach_all(LoadResult& r);
void destroy(LoadResult& r);

struct KernelCounters {
  std::vector<uint64_t> attempted;
  std::vector<uint64_t> dropped;
};
int read_kernel_counters(tapio_bpf* skel, KernelCounters& out);
int events_map_fd(tapio_bpf* skel);

// The tail of libbpf's log since the last call, for error messages.
std::string take_libbpf_log();
void install_libbpf_log();
