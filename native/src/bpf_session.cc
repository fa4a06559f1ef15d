#include "bpf_session.h"

#include <bpf/libbpf.h>
#include <linux/types.h>
#include <sys/epoll.h>

#include <cerrno>
#include <chrono>
#include <cstring>

#include "tapio_records.h"

namespace {

// Programs that failed to load or attach, as JS objects for the health report.
Napi::Array failed_programs(Napi::Env env, const std::vector<ProgramFailure>& failed) {
  Napi::Array out = Napi::Array::New(env, failed.size());
  for (size_t i = 0; i < failed.size(); i++) {
    Napi::Object f = Napi::Object::New(env);
    f.Set("program", failed[i].program);
    f.Set("errno", failed[i].err);
    f.Set("message", failed[i].message);
    out.Set(i, f);
  }
  return out;
}

int sample_cb(void* ctx, void* data, size_t len) {
  return static_cast<Session*>(ctx)->OnSample(data, len);
}

Napi::Error make_error(Napi::Env env, const std::string& stage, int err, const std::string& msg) {
  Napi::Error e = Napi::Error::New(env, stage + ": " + msg);
  e.Set("stage", Napi::String::New(env, stage));
  e.Set("errno", Napi::Number::New(env, err));
  return e;
}

uint32_t get_u32(const Napi::Object& o, const char* key, uint32_t dflt) {
  Napi::Value v = o.Get(key);
  return v.IsNumber() ? v.As<Napi::Number>().Uint32Value() : dflt;
}

std::vector<std::string> get_strings(const Napi::Object& o, const char* key) {
  std::vector<std::string> out;
  Napi::Value v = o.Get(key);
  if (!v.IsArray()) return out;
  Napi::Array a = v.As<Napi::Array>();
  for (uint32_t i = 0; i < a.Length(); i++) {
    Napi::Value s = a.Get(i);
    if (s.IsString()) out.push_back(s.As<Napi::String>().Utf8Value());
  }
  return out;
}

Napi::Array to_array(Napi::Env env, const std::vector<uint64_t>& v) {
  Napi::Array a = Napi::Array::New(env, v.size());
  for (size_t i = 0; i < v.size(); i++) a.Set(i, Napi::Number::New(env, (double)v[i]));
  return a;
}

}  // namespace

Napi::Function Session::Init(Napi::Env env) {
  return DefineClass(env, "Session",
                     {
                         InstanceMethod("open", &Session::Open),
                         InstanceMethod("start", &Session::Start),
                         InstanceMethod("release", &Session::Release),
                         InstanceMethod("stop", &Session::Stop),
                         InstanceMethod("close", &Session::Close),
                         InstanceMethod("counters", &Session::Counters),
                         InstanceMethod("injectForTest", &Session::InjectForTest),
                     });
}

// new Session(options)
Session::Session(const Napi::CallbackInfo& info) : Napi::ObjectWrap<Session>(info) {
  if (info.Length() < 1 || !info[0].IsObject()) {
    Napi::TypeError::New(info.Env(), "Session(options) needs an options object").ThrowAsJavaScriptException();
    return;
  }
  Napi::Object o = info[0].As<Napi::Object>();
  opts_.ring_bytes = get_u32(o, "ringBytes", opts_.ring_bytes);
  opts_.wakeup_bytes = get_u32(o, "wakeupBytes", (uint32_t)opts_.wakeup_bytes);
  opts_.probe_tgid = get_u32(o, "probePid", 0);
  opts_.programs = get_strings(o, "programs");
  opts_.open_prefixes = get_strings(o, "openPrefixes");
  batch_bytes_ = get_u32(o, "batchBytes", batch_bytes_);
  if (batch_bytes_ < 2 * (kMaxRecord + 16)) batch_bytes_ = 2 * (kMaxRecord + 16);
  max_in_flight_ = get_u32(o, "maxBatchesInFlight", max_in_flight_);
  if (max_in_flight_ < 1) max_in_flight_ = 1;
  drain_ms_ = (int)get_u32(o, "drainIntervalMs", (uint32_t)drain_ms_);
  if (drain_ms_ < 1) drain_ms_ = 1;
}

Session::~Session() {
  // The JS side always closes; this only guards against a forgotten session at exit.
  if (thread_.joinable()) {
    stop_ = true;
    cv_.notify_all();
    thread_.join();
  }
  if (rb_) ring_buffer__free(rb_);
  destroy(loaded_);
}

// open() -> { attached: string[], failed: {program, errno, message}[] }; throws when nothing loads.
Napi::Value Session::Open(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (loaded_.skel) {
    make_error(env, "open", EALREADY, "already open").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  loaded_ = load_and_attach(opts_);
  if (!loaded_.skel) {
    Napi::Error e = make_error(env, loaded_.stage, loaded_.err, loaded_.message);
    // Programs rejected one by one before the whole load failed, for the health report.
    e.Set("failed", failed_programs(env, loaded_.failed));
    e.ThrowAsJavaScriptException();
    return env.Undefined();
  }
  rb_ = ring_buffer__new(events_map_fd(loaded_.skel), sample_cb, this, nullptr);
  if (!rb_) {
    int e = errno;
    destroy(loaded_);
    make_error(env, "ring_buffer", e, strerror(e)).ThrowAsJavaScriptException();
    return env.Undefined();
  }
  Napi::Object r = Napi::Object::New(env);
  Napi::Array attached = Napi::Array::New(env, loaded_.attached.size());
  for (size_t i = 0; i < loaded_.attached.size(); i++) attached.Set(i, loaded_.attached[i]);
  r.Set("attached", attached);
  r.Set("failed", failed_programs(env, loaded_.failed));
  return r;
}

// start(onBatch: (batch: Buffer | null, err?: number) => void): null marks the end, with a positive
// errno when the consumer stopped on its own.
Napi::Value Session::Start(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!rb_ || thread_.joinable() || info.Length() < 1 || !info[0].IsFunction()) {
    make_error(env, "start", EINVAL, "start(onBatch) needs an open, not yet started session")
        .ThrowAsJavaScriptException();
    return env.Undefined();
  }
  tsfn_ = Napi::ThreadSafeFunction::New(env, info[0].As<Napi::Function>(), "tapio_bpf", 0, 1);
  tsfn_live_ = true;
  stop_ = false;
  thread_ = std::thread([this] { Run(); });
  return env.Undefined();
}

// release(n): JS has taken n batches off its queue; the consumer may fill that many more.
Napi::Value Session::Release(const Napi::CallbackInfo& info) {
  uint32_t n = info.Length() > 0 && info[0].IsNumber() ? info[0].As<Napi::Number>().Uint32Value() : 1;
  {
    std::lock_guard<std::mutex> lock(credit_mu_);
    in_flight_ = n > in_flight_ ? 0 : in_flight_ - n;
  }
  cv_.notify_all();
  return info.Env().Undefined();
}

// stop(): detach, drain what the kernel already wrote, then deliver the end marker.
Napi::Value Session::Stop(const Napi::CallbackInfo& info) {
  stop_ = true;
  cv_.notify_all();
  return info.Env().Undefined();
}

void Session::JoinAndDestroy() {
  stop_ = true;
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
  if (loaded_.skel && read_kernel_counters(loaded_.skel, final_) == 0) have_final_ = true;
  if (rb_) ring_buffer__free(rb_);
  rb_ = nullptr;
  destroy(loaded_);
}

// close(): joins the consumer and frees every kernel object; returns the final counters.
Napi::Value Session::Close(const Napi::CallbackInfo& info) {
  JoinAndDestroy();
  return CountersObject(info.Env());
}

Napi::Value Session::Counters(const Napi::CallbackInfo& info) { return CountersObject(info.Env()); }

Napi::Object Session::CountersObject(Napi::Env env) {
  KernelCounters k;
  if (loaded_.skel) {
    if (read_kernel_counters(loaded_.skel, k) != 0) k = KernelCounters{};
  } else if (have_final_) {
    k = final_;
  }
  if (k.attempted.empty()) {
    k.attempted.assign(TAPIO_KIND_COUNT, 0);
    k.dropped.assign(TAPIO_KIND_COUNT, 0);
  }
  Napi::Object o = Napi::Object::New(env);
  o.Set("attempted", to_array(env, k.attempted));
  o.Set("droppedKernel", to_array(env, k.dropped));
  o.Set("consumed", Napi::Number::New(env, (double)consumed_.load()));
  o.Set("malformed", Napi::Number::New(env, (double)malformed_.load()));
  o.Set("forwarded", Napi::Number::New(env, (double)forwarded_.load()));
  o.Set("batches", Napi::Number::New(env, (double)batches_.load()));
  o.Set("stalls", Napi::Number::New(env, (double)stalls_.load()));
  return o;
}

Batch* Session::NewBatch() {
  Batch* b = new Batch();
  b->bytes.reserve(batch_bytes_);
  b->bytes.resize(8);
  return b;
}

int Session::OnSample(const void* data, size_t len) {
  consumed_++;
  if (len < sizeof(tapio_hdr) || len > kMaxRecord) {
    malformed_++;
    return 0;
  }
  if (!current_) current_ = NewBatch();
  std::vector<uint8_t>& v = current_->bytes;
  size_t at = v.size();
  size_t padded = (len + 7) & ~size_t(7);
  v.resize(at + 8 + padded);
  uint32_t head[2] = {(uint32_t)len, 0};
  memcpy(v.data() + at, head, 8);
  memcpy(v.data() + at + 8, data, len);
  if (padded > len) memset(v.data() + at + 8 + len, 0, padded - len);
  current_->count++;
  forwarded_++;
  // Stop consuming before the batch could overflow; the record just copied is kept.
  return v.size() + kMaxRecord + 16 > batch_bytes_ ? -ENOSPC : 0;
}

void Session::Send(Batch* b) {
  uint32_t head[2] = {kBatchMagic, b->count};
  if (b->bytes.size() < 8) b->bytes.resize(8);
  memcpy(b->bytes.data(), head, 8);
  batches_++;
  napi_status st = tsfn_.NonBlockingCall(b, [](Napi::Env env, Napi::Function fn, Batch* batch) {
    if (env != nullptr && fn != nullptr) {
      if (batch->end) {
        fn.Call({env.Null(), Napi::Number::New(env, batch->err)});
      } else {
        // One copy per batch (not per record) keeps the native buffer's lifetime simple.
        fn.Call({Napi::Buffer<uint8_t>::Copy(env, batch->bytes.data(), batch->bytes.size())});
      }
    }
    delete batch;
  });
  if (st != napi_ok) delete b;
}

// Waits until JS has room for another batch. While it waits nothing is consumed, so the ring
// fills and the kernel counts the overflow: memory stays bounded and the loss stays counted.
bool Session::AcquireCredit() {
  std::unique_lock<std::mutex> lock(credit_mu_);
  if (in_flight_ >= max_in_flight_) stalls_++;
  while (!stop_ && in_flight_ >= max_in_flight_) cv_.wait_for(lock, std::chrono::milliseconds(50));
  if (stop_) return false;
  in_flight_++;
  return true;
}

void Session::Run() {
  int epfd = ring_buffer__epoll_fd(rb_);
  bool have_credit = false;
  int failures = 0, fatal = 0;
  while (!stop_ && !fatal) {
    if (!have_credit && !(have_credit = AcquireCredit())) break;
    int n;
    {
      std::lock_guard<std::mutex> lock(mu_);
      n = ring_buffer__consume(rb_);
    }
    bool full = n == -ENOSPC;
    // Anything else negative is the ring itself failing; a few in a row end the session with the
    // reason, which JS turns into a thrown error (the supervisor restarts per its policy).
    if (n < 0 && !full && n != -EINTR) {
      if (++failures >= 100) fatal = -n;
    } else {
      failures = 0;
    }
    if (current_ && current_->count > 0 && (full || n >= 0)) {
      Batch* b;
      {
        std::lock_guard<std::mutex> lock(mu_);
        b = current_;
        current_ = nullptr;
      }
      Send(b);
      have_credit = false;
    }
    if (full) continue;
    // Ring empty: sleep until the kernel's fill-level wakeup or the drain interval.
    struct epoll_event ev;
    epoll_wait(epfd, &ev, 1, drain_ms_);
  }
  if (have_credit) {
    std::lock_guard<std::mutex> lock(credit_mu_);
    if (in_flight_ > 0) in_flight_--;
  }
  Drain();
  Batch* end = new Batch();
  end->end = true;
  end->err = fatal;
  Send(end);
  tsfn_.Release();
}

// After stop: detach so nothing new arrives, then hand over everything the kernel already wrote,
// ignoring the credit limit (the ring's size bounds it), so the final counters add up.
void Session::Drain() {
  detach_all(loaded_);
  int quiet = 0;
  while (quiet < 2) {
    int n;
    {
      std::lock_guard<std::mutex> lock(mu_);
      n = ring_buffer__consume(rb_);
    }
    if (current_ && current_->count > 0) {
      Batch* b = current_;
      current_ = nullptr;
      Send(b);
    }
    if (n == -ENOSPC) continue;
    if (n <= 0) {
      quiet++;
      // A program still running on another CPU may hold a reserved record for a moment.
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    } else {
      quiet = 0;
    }
  }
  delete current_;
  current_ = nullptr;
}

// injectForTest(frames: Buffer): frames of [u32 length][bytes]; each goes through OnSample as if
// it came from the ring, then the batch is sent like any other. Exercises the malformed paths.
Napi::Value Session::InjectForTest(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!tsfn_live_ || stop_ || info.Length() < 1 || !info[0].IsBuffer()) {
    make_error(env, "inject", EINVAL, "injectForTest(buffer) needs a started session").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  Napi::Buffer<uint8_t> buf = info[0].As<Napi::Buffer<uint8_t>>();
  std::lock_guard<std::mutex> lock(mu_);
  Batch* saved = current_;
  current_ = nullptr;
  size_t off = 0;
  uint32_t frames = 0;
  while (off + 4 <= buf.Length()) {
    uint32_t len;
    memcpy(&len, buf.Data() + off, 4);
    off += 4;
    if (len > buf.Length() - off) break;
    OnSample(buf.Data() + off, len);
    off += len;
    frames++;
  }
  Batch* b = current_ ? current_ : NewBatch();
  current_ = saved;
  {
    std::lock_guard<std::mutex> credit(credit_mu_);
    in_flight_++;
  }
  Send(b);
  return Napi::Number::New(env, frames);
}
