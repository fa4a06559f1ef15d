#include "bpf_loader.h"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdarg>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <mutex>

#include "tapio.skel.h"
#include "tapio_records.h"

namespace {

struct ProgramSpec {
  const char* name;      // config name
  const char* bpf_name;  // function name in tapio.bpf.c
  const char* category;  // tracefs events/<category>/<event>
  const char* event;
};

const ProgramSpec kPrograms[] = {
    {"exec", "tapio_exec", "sched", "sched_process_exec"},
    {"exit", "tapio_exit", "sched", "sched_process_exit"},
    {"tcp", "tapio_tcp", "sock", "inet_sock_set_state"},
    {"oom", "tapio_oom", "oom", "mark_victim"},
    {"openat", "tapio_openat", "syscalls", "sys_enter_openat"},
    {"probe", "tapio_probe", "syscalls", "sys_enter_getppid"},
    {"cgroup", "tapio_cgroup", "cgroup", "cgroup_mkdir"},
};

std::mutex g_log_mu;
std::string g_log;

int capture(enum libbpf_print_level level, const char* fmt, va_list args) {
  // Verifier logs arrive as one long message; keep all of it, then only the tail below.
  char* line = nullptr;
  if (vasprintf(&line, fmt, args) < 0 || !line) return 0;
  if (getenv("TAPIO_BPF_DEBUG")) fputs(line, stderr);
  if (level == LIBBPF_DEBUG) {
    free(line);
    return 0;
  }
  std::lock_guard<std::mutex> lock(g_log_mu);
  g_log += line;
  free(line);
  if (g_log.size() > 8192) g_log.erase(0, g_log.size() - 8192);
  return 0;
}

const ProgramSpec* find_spec(const std::string& name) {
  for (const auto& s : kPrograms)
    if (name == s.name) return &s;
  return nullptr;
}

bool tracepoint_exists(const ProgramSpec& s) {
  for (const char* root : {"/sys/kernel/tracing/events", "/sys/kernel/debug/tracing/events"}) {
    std::string p = std::string(root) + "/" + s.category + "/" + s.event;
    struct stat st;
    if (stat(p.c_str(), &st) == 0) return true;
  }
  return false;
}

// Opens the skeleton with only `enabled` programs set to load, configured from opts.
int open_configured(const LoaderOptions& opts, const std::vector<const ProgramSpec*>& enabled,
                    tapio_bpf** out, std::string& stage) {
  stage = "open";
  tapio_bpf* skel = tapio_bpf__open();
  if (!skel) return errno ? errno : EINVAL;
  stage = "configure";
  int err = bpf_map__set_max_entries(skel->maps.events, opts.ring_bytes);
  if (err) {
    tapio_bpf__destroy(skel);
    return -err;
  }
  skel->rodata->wakeup_bytes = opts.wakeup_bytes;
  skel->rodata->probe_tgid = opts.probe_tgid;
  uint32_t n = 0;
  for (const auto& p : opts.open_prefixes) {
    if (n >= TAPIO_MAX_PREFIXES) break;
    size_t len = p.size() < TAPIO_PREFIX_LEN - 1 ? p.size() : TAPIO_PREFIX_LEN - 1;
    memcpy((void*)skel->rodata->open_prefixes[n], p.data(), len);
    skel->rodata->open_prefix_lens[n] = (uint32_t)len;
    n++;
  }
  skel->rodata->open_prefix_count = n;
  for (const auto& s : kPrograms) {
    bool on = false;
    for (auto* e : enabled) on = on || e == &s;
    bpf_program* prog = bpf_object__find_program_by_name(skel->obj, s.bpf_name);
    if (prog) bpf_program__set_autoload(prog, on);
  }
  stage = "load";
  err = tapio_bpf__load(skel);
  if (err) {
    tapio_bpf__destroy(skel);
    return -err;
  }
  *out = skel;
  return 0;
}

}  // namespace

void install_libbpf_log() { libbpf_set_print(capture); }

std::string take_libbpf_log() {
  std::lock_guard<std::mutex> lock(g_log_mu);
  std::string out;
  out.swap(g_log);
  return out;
}

LoadResult load_and_attach(const LoaderOptions& opts) {
  LoadResult r;
  take_libbpf_log();
  std::vector<const ProgramSpec*> enabled;
  for (const auto& name : opts.programs) {
    const ProgramSpec* s = find_spec(name);
    if (!s) {
      r.failed.push_back({name, EINVAL, "unknown program"});
      continue;
    }
    // A missing tracepoint would only fail at attach; skipping it up front keeps the object
    // loadable on kernels that lack some of them.
    if (!tracepoint_exists(*s)) {
      r.failed.push_back({name, ENOENT, std::string("tracepoint ") + s->category + "/" + s->event +
                                            " not found in tracefs"});
      continue;
    }
    enabled.push_back(s);
  }

  std::string stage;
  int err = open_configured(opts, enabled, &r.skel, stage);
  if (err && (stage == "load") && enabled.size() > 1) {
    // One program the verifier rejects must not cost the others: find the ones that load alone.
    std::vector<const ProgramSpec*> good;
    for (auto* s : enabled) {
      tapio_bpf* probe = nullptr;
      std::string st;
      int e = open_configured(opts, {s}, &probe, st);
      if (e == 0) {
        tapio_bpf__destroy(probe);
        good.push_back(s);
      } else {
        std::string log = take_libbpf_log();
        if (log.size() > 600) log = log.substr(log.size() - 600);
        r.failed.push_back({s->name, e, std::string("load failed: ") + strerror(e) + "; " + log});
      }
    }
    enabled = good;
    err = enabled.empty() ? err : open_configured(opts, enabled, &r.skel, stage);
  }
  if (err) {
    r.err = err;
    r.stage = stage;
    std::string log = take_libbpf_log();
    if (log.size() > 1000) log = log.substr(log.size() - 1000);
    r.message = std::string(strerror(err)) + (log.empty() ? "" : "; libbpf: " + log);
    r.skel = nullptr;
    return r;
  }

  for (auto* s : enabled) {
    bpf_program* prog = bpf_object__find_program_by_name(r.skel->obj, s->bpf_name);
    bpf_link* link = prog ? bpf_program__attach(prog) : nullptr;
    if (!link) {
      int e = errno ? errno : ENOENT;
      std::string log = take_libbpf_log();
      if (log.size() > 400) log = log.substr(log.size() - 400);
      r.failed.push_back({s->name, e, std::string("attach failed: ") + strerror(e) + "; " + log});
      continue;
    }
    r.links.push_back(link);
    r.attached.push_back(s->name);
  }
  return r;
}

void detach_all(LoadResult& r) {
  for (auto* l : r.links) bpf_link__destroy(l);
  r.links.clear();
}

void destroy(LoadResult& r) {
  detach_all(r);
  if (r.skel) tapio_bpf__destroy(r.skel);
  r.skel = nullptr;
}

int events_map_fd(tapio_bpf* skel) { return bpf_map__fd(skel->maps.events); }

int read_kernel_counters(tapio_bpf* skel, KernelCounters& out) {
  int ncpu = libbpf_num_possible_cpus();
  if (ncpu <= 0) return -ncpu;
  std::vector<tapio_counters> per(ncpu);
  uint32_t key = 0;
  int err = bpf_map__lookup_elem(skel->maps.counters, &key, sizeof key, per.data(),
                                 sizeof(tapio_counters) * ncpu, 0);
  if (err) return -err;
  out.attempted.assign(TAPIO_KIND_COUNT, 0);
  out.dropped.assign(TAPIO_KIND_COUNT, 0);
  for (const auto& c : per)
    for (int k = 0; k < TAPIO_KIND_COUNT; k++) {
      out.attempted[k] += c.attempted[k];
      out.dropped[k] += c.dropped[k];
    }
  return 0;
}
