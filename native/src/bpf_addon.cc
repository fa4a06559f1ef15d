// Node-API entry of tapio_bpf.node: thin on purpose; errors carry {stage, errno} and the
// TypeScript side (src/native/bpf-addon.ts) turns them into typed reasons.
#include <napi.h>
#include <sys/mount.h>
#include <time.h>

#include <cerrno>

#include "bpf_loader.h"
#include "bpf_session.h"

namespace {

int64_t ns(clockid_t c) {
  struct timespec ts;
  clock_gettime(c, &ts);
  return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

// clockOffset() -> [seconds, nanoseconds] of CLOCK_REALTIME - CLOCK_BOOTTIME (record stamps are
// boot-time; adding this gives epoch time).
Napi::Value ClockOffset(const Napi::CallbackInfo& info) {
  int64_t best = 0, best_gap = INT64_MAX;
  for (int i = 0; i < 5; i++) {
    int64_t r1 = ns(CLOCK_REALTIME), b = ns(CLOCK_BOOTTIME), r2 = ns(CLOCK_REALTIME);
    if (r2 - r1 < best_gap) {
      best_gap = r2 - r1;
      best = r1 + (r2 - r1) / 2 - b;
    }
  }
  Napi::Array a = Napi::Array::New(info.Env(), 2);
  a.Set(0u, Napi::Number::New(info.Env(), (double)(best / 1000000000LL)));
  a.Set(1u, Napi::Number::New(info.Env(), (double)(best % 1000000000LL)));
  return a;
}

// mountTracefs(path) -> 0 or -errno.
Napi::Value MountTracefs(const Napi::CallbackInfo& info) {
  std::string path = info.Length() > 0 && info[0].IsString() ? info[0].As<Napi::String>().Utf8Value()
                                                             : "/sys/kernel/tracing";
  int r = mount("tracefs", path.c_str(), "tracefs", 0, nullptr);
  return Napi::Number::New(info.Env(), r == 0 ? 0 : -errno);
}

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  install_libbpf_log();
  exports.Set("Session", Session::Init(env));
  exports.Set("clockOffset", Napi::Function::New(env, ClockOffset));
  exports.Set("mountTracefs", Napi::Function::New(env, MountTracefs));
  exports.Set("abiVersion", Napi::Number::New(env, 2));
  return exports;
}

}  // namespace

NODE_API_MODULE(tapio_bpf, Init)
