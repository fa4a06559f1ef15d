// Node-API face of NetlinkSocket: open(groups, rcvbufBytes, onBatch) -> handle {send, close, portId}.
// Errors are thrown as Error objects with a positive `errno` and the failing `syscall`;
// src/native/netlink.ts turns them into typed errors.
#include <napi.h>

#include <cstring>
#include <memory>

#include "netlink_socket.h"

namespace {

Napi::Error ErrnoError(Napi::Env env, int neg_errno, const char* syscall) {
  const int e = -neg_errno;
  Napi::Error err = Napi::Error::New(env, std::string(syscall) + ": " + std::strerror(e));
  err.Set("errno", Napi::Number::New(env, e));
  err.Set("syscall", Napi::String::New(env, syscall));
  return err;
}

class NetlinkHandle : public Napi::ObjectWrap<NetlinkHandle> {
 public:
  static Napi::Function Init(Napi::Env env) {
    return DefineClass(env, "NetlinkHandle",
                       {InstanceMethod("send", &NetlinkHandle::Send),
                        InstanceMethod("close", &NetlinkHandle::Close),
                        InstanceAccessor("portId", &NetlinkHandle::PortId, nullptr)});
  }

  explicit NetlinkHandle(const Napi::CallbackInfo& info) : Napi::ObjectWrap<NetlinkHandle>(info) {
    Napi::Env env = info.Env();
    if (info.Length() < 3 || !info[0].IsArray() || !info[1].IsNumber() || !info[2].IsFunction()) {
      throw Napi::TypeError::New(env, "open(groups: number[], rcvbufBytes: number, onBatch: function)");
    }
    Napi::Array arr = info[0].As<Napi::Array>();
    std::vector<uint32_t> groups;
    for (uint32_t i = 0; i < arr.Length(); i++) {
      Napi::Value v = arr.Get(i);
      if (!v.IsNumber()) throw Napi::TypeError::New(env, "groups must be numbers");
      groups.push_back(v.As<Napi::Number>().Uint32Value());
    }
    const int rcvbuf = info[1].As<Napi::Number>().Int32Value();
    tsfn_ = Napi::ThreadSafeFunction::New(env, info[2].As<Napi::Function>(), "tapio_netlink", 0, 1);
    tsfn_live_ = true;
    Napi::ThreadSafeFunction tsfn = tsfn_;
    int rc = socket_.Open(groups, rcvbuf, [tsfn](std::vector<uint8_t>* batch) mutable {
      napi_status s = tsfn.BlockingCall(batch, [](Napi::Env env, Napi::Function cb, std::vector<uint8_t>* data) {
        std::unique_ptr<std::vector<uint8_t>> owned(data);
        if (env == nullptr || cb.IsEmpty()) return;
        try {
          cb.Call({Napi::Buffer<uint8_t>::Copy(env, owned->data(), owned->size())});
        } catch (const Napi::Error&) {
          // The exception stays pending in JS and is reported there as uncaught.
        }
      });
      if (s != napi_ok) delete batch;
    });
    if (rc < 0) {
      ReleaseTsfn();
      throw ErrnoError(env, rc, "netlink open");
    }
  }

  ~NetlinkHandle() override {
    socket_.Close();
    ReleaseTsfn();
  }

 private:
  void ReleaseTsfn() {
    if (tsfn_live_) {
      tsfn_live_ = false;
      tsfn_.Release();
    }
  }

  Napi::Value Send(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (info.Length() < 1 || !info[0].IsBuffer()) throw Napi::TypeError::New(env, "send(buffer)");
    auto buf = info[0].As<Napi::Buffer<uint8_t>>();
    int rc = socket_.Send(buf.Data(), buf.Length());
    if (rc < 0) throw ErrnoError(env, rc, "sendto");
    return Napi::Number::New(env, rc);
  }

  Napi::Value Close(const Napi::CallbackInfo& info) {
    socket_.Close();
    ReleaseTsfn();
    return info.Env().Undefined();
  }

  Napi::Value PortId(const Napi::CallbackInfo& info) {
    return Napi::Number::New(info.Env(), socket_.PortId());
  }

  tapio::NetlinkSocket socket_;
  Napi::ThreadSafeFunction tsfn_;
  bool tsfn_live_ = false;
};

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  Napi::Function ctor = NetlinkHandle::Init(env);
  auto* ref = new Napi::FunctionReference(Napi::Persistent(ctor));
  env.SetInstanceData(ref);
  exports.Set("open", Napi::Function::New(env, [](const Napi::CallbackInfo& info) -> Napi::Value {
    auto* r = info.Env().GetInstanceData<Napi::FunctionReference>();
    std::vector<napi_value> args;
    for (size_t i = 0; i < info.Length(); i++) args.push_back(info[i]);
    return r->New(args);
  }));
  exports.Set("abiVersion", Napi::Number::New(env, 1));
  return exports;
}

}  // namespace

NODE_API_MODULE(tapio_netlink, Init)
