// A NETLINK_ROUTE socket read on its own thread. Datagrams are packed into frames and handed
// over in batches (one callback per wakeup), so JavaScript pays one crossing per batch.
// Decoding happens in TypeScript (src/native/netlink-codec.ts); this side stays thin.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <thread>
#include <vector>

namespace tapio {

// Frame layout (host byte order): u32 kind, u32 length, payload, zero padding to 4 bytes.
enum FrameKind : uint32_t {
  kFrameDatagram = 1,  // payload: one netlink datagram as received
  kFrameOverrun = 2,   // payload: none; the kernel dropped messages (ENOBUFS): resync needed
  kFrameFatal = 3,     // payload: i32 errno; the reader stopped
};

using BatchSink = std::function<void(std::vector<uint8_t>*)>;

class NetlinkSocket {
 public:
  // Returns 0 or -errno. `groups` are RTNLGRP_* numbers joined with NETLINK_ADD_MEMBERSHIP.
  int Open(const std::vector<uint32_t>& groups, int rcvbuf_bytes, BatchSink sink);
  // Returns bytes sent or -errno. Sends to the kernel (portid 0).
  int Send(const uint8_t* data, size_t len);
  // Stops the reader thread and closes the descriptors. Safe to call twice.
  void Close();
  uint32_t PortId() const { return port_id_; }
  ~NetlinkSocket() { Close(); }

 private:
  void ReadLoop();

  int fd_ = -1;
  int wake_fd_ = -1;
  uint32_t port_id_ = 0;
  std::thread reader_;
  std::atomic<bool> stopping_{false};
  BatchSink sink_;
};

}  // namespace tapio
