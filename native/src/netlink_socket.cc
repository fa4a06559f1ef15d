#include "netlink_socket.h"

#include <linux/netlink.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace tapio {

namespace {

constexpr size_t kRecvBufferBytes = 64 * 1024;
// Bound one batch so a flood cannot hold the JS thread for long; the rest comes in the next one.
constexpr size_t kMaxBatchBytes = 1024 * 1024;

void AppendFrame(std::vector<uint8_t>* out, uint32_t kind, const uint8_t* payload, uint32_t len) {
  const size_t start = out->size();
  const size_t padded = (static_cast<size_t>(len) + 3u) & ~static_cast<size_t>(3u);
  out->resize(start + 8 + padded, 0);
  std::memcpy(out->data() + start, &kind, 4);
  std::memcpy(out->data() + start + 4, &len, 4);
  if (len > 0) std::memcpy(out->data() + start + 8, payload, len);
}

}  // namespace

int NetlinkSocket::Open(const std::vector<uint32_t>& groups, int rcvbuf_bytes, BatchSink sink) {
  fd_ = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC | SOCK_NONBLOCK, NETLINK_ROUTE);
  if (fd_ < 0) return -errno;
  int err = 0;
  if (rcvbuf_bytes > 0) {
    // FORCE needs CAP_NET_ADMIN; the plain option is capped by rmem_max but still helps.
    if (setsockopt(fd_, SOL_SOCKET, SO_RCVBUFFORCE, &rcvbuf_bytes, sizeof rcvbuf_bytes) < 0) {
      setsockopt(fd_, SOL_SOCKET, SO_RCVBUF, &rcvbuf_bytes, sizeof rcvbuf_bytes);
    }
  }
  // Strict checking makes the kernel reject malformed requests instead of guessing.
  int one = 1;
  setsockopt(fd_, SOL_NETLINK, NETLINK_EXT_ACK, &one, sizeof one);
  sockaddr_nl addr{};
  addr.nl_family = AF_NETLINK;
  if (bind(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) < 0) {
    err = -errno;
    Close();
    return err;
  }
  socklen_t alen = sizeof addr;
  if (getsockname(fd_, reinterpret_cast<sockaddr*>(&addr), &alen) == 0) port_id_ = addr.nl_pid;
  for (uint32_t g : groups) {
    if (setsockopt(fd_, SOL_NETLINK, NETLINK_ADD_MEMBERSHIP, &g, sizeof g) < 0) {
      err = -errno;
      Close();
      return err;
    }
  }
  wake_fd_ = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (wake_fd_ < 0) {
    err = -errno;
    Close();
    return err;
  }
  sink_ = std::move(sink);
  stopping_ = false;
  reader_ = std::thread([this] { ReadLoop(); });
  return 0;
}

int NetlinkSocket::Send(const uint8_t* data, size_t len) {
  if (fd_ < 0) return -EBADF;
  sockaddr_nl kernel{};
  kernel.nl_family = AF_NETLINK;
  ssize_t n = sendto(fd_, data, len, 0, reinterpret_cast<sockaddr*>(&kernel), sizeof kernel);
  return n < 0 ? -errno : static_cast<int>(n);
}

void NetlinkSocket::ReadLoop() {
  std::vector<uint8_t> buf(kRecvBufferBytes);
  pollfd fds[2] = {{fd_, POLLIN, 0}, {wake_fd_, POLLIN, 0}};
  while (!stopping_) {
    int rc = poll(fds, 2, -1);
    if (rc < 0) {
      if (errno == EINTR) continue;
      const int e = errno;
      auto* batch = new std::vector<uint8_t>();
      AppendFrame(batch, kFrameFatal, reinterpret_cast<const uint8_t*>(&e), 4);
      sink_(batch);
      return;
    }
    if (stopping_ || (fds[1].revents & POLLIN)) return;
    auto* batch = new std::vector<uint8_t>();
    bool fatal = false;
    while (batch->size() < kMaxBatchBytes) {
      ssize_t n = recv(fd_, buf.data(), buf.size(), MSG_DONTWAIT);
      if (n > 0) {
        AppendFrame(batch, kFrameDatagram, buf.data(), static_cast<uint32_t>(n));
        continue;
      }
      if (n == 0) break;
      if (errno == EINTR) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK) break;
      if (errno == ENOBUFS) {
        AppendFrame(batch, kFrameOverrun, nullptr, 0);
        continue;
      }
      const int e = errno;
      AppendFrame(batch, kFrameFatal, reinterpret_cast<const uint8_t*>(&e), 4);
      fatal = true;
      break;
    }
    if (batch->empty()) {
      delete batch;
    } else {
      sink_(batch);
    }
    if (fatal) return;
  }
}

void NetlinkSocket::Close() {
  stopping_ = true;
  if (wake_fd_ >= 0) {
    uint64_t one = 1;
    ssize_t ignored = write(wake_fd_, &one, sizeof one);
    (void)ignored;
  }
  if (reader_.joinable()) reader_.join();
  if (fd_ >= 0) close(fd_);
  if (wake_fd_ >= 0) close(wake_fd_);
  fd_ = -1;
  wake_fd_ = -1;
}

}  // namespace tapio
