// A running capture: the ring-buffer consumer thread and its hand-off of batches to JavaScript.
#pragma once
#include <napi.h>

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <thread>
#include <vector>

#include "bpf_loader.h"

struct ring_buffer;

// Batches handed to JS: [u32 magic][u32 record count] then per record
// [u32 length][u32 0][record bytes, padded to 8].
constexpr uint32_t kBatchMagic = 0x31425054;  // "TPB1" little-endian
constexpr uint32_t kMaxRecord = 4096;

struct Batch {
  std::vector<uint8_t> bytes;
  uint32_t count = 0;
  bool end = false;  // the last call: the consumer has stopped
  int err = 0;       // with end: why it stopped on its own (positive errno), 0 after stop()
};

class Session : public Napi::ObjectWrap<Session> {
 public:
  static Napi::Function Init(Napi::Env env);
  explicit Session(const Napi::CallbackInfo& info);
  ~Session() override;

  // Called by libbpf for each ring-buffer sample (consumer thread) and by the test hook.
  int OnSample(const void* data, size_t len);

 private:
  Napi::Value Open(const Napi::CallbackInfo& info);
  Napi::Value Start(const Napi::CallbackInfo& info);
  Napi::Value Release(const Napi::CallbackInfo& info);
  Napi::Value Stop(const Napi::CallbackInfo& info);
  Napi::Value Close(const Napi::CallbackInfo& info);
  Napi::Value Counters(const Napi::CallbackInfo& info);
  Napi::Value InjectForTest(const Napi::CallbackInfo& info);

  Napi::Object CountersObject(Napi::Env env);
  void Run();
  void Send(Batch* b);
  Batch* NewBatch();
  bool AcquireCredit();
  void Drain();
  void JoinAndDestroy();

  LoaderOptions opts_;
  uint32_t batch_bytes_ = 1u << 18;
  uint32_t max_in_flight_ = 8;
  int drain_ms_ = 5;

  LoadResult loaded_;
  ring_buffer* rb_ = nullptr;
  Napi::ThreadSafeFunction tsfn_;
  bool tsfn_live_ = false;
  std::thread thread_;

  std::mutex mu_;  // guards the ring drain and the current batch against the test hook
  // Guards in_flight_ alone, so that JS handing a batch back (release) never waits for a drain
  // of the ring in progress under mu_. Lock order: mu_, then credit_mu_.
  std::mutex credit_mu_;
  std::condition_variable cv_;
  uint32_t in_flight_ = 0;
  std::atomic<bool> stop_{false};
  Batch* current_ = nullptr;

  std::atomic<uint64_t> consumed_{0};
  std::atomic<uint64_t> malformed_{0};
  std::atomic<uint64_t> forwarded_{0};
  std::atomic<uint64_t> batches_{0};
  std::atomic<uint64_t> stalls_{0};
  KernelCounters final_;
  bool have_final_ = false;
};
