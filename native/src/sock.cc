// Unix-domain stream sockets with file-descriptor passing.
//
// Why native: Node's `net` module owns its sockets' fds and never exposes
// them, and it has no sendmsg/recvmsg, so SCM_RIGHTS ancillary data (how
// vfio-user passes memfds and eventfds) cannot be sent or received from JS.
// These wrappers are non-blocking and return EAGAIN; readiness comes from
// Poller (poller.cc).
#include <sys/socket.h>
#include <sys/un.h>

#include <fcntl.h>
#include <poll.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <vector>

#include "common.h"

namespace mdgpu {

namespace {

// SCM_RIGHTS carries at most SCM_MAX_FD (253) descriptors per message.
constexpr uint32_t kMaxFds = 253;

// Fills a sockaddr_un; a path that does not fit sun_path (with its NUL) is
// ENAMETOOLONG, which is what Node's net module reports for the same mistake.
socklen_t UnixAddress(Napi::Env env, const std::string& path,
                      const char* syscall, sockaddr_un* addr) {
  std::memset(addr, 0, sizeof *addr);
  addr->sun_family = AF_UNIX;
  if (path.empty()) ThrowErrno(env, ENOENT, syscall, path.c_str());
  if (path.size() >= sizeof addr->sun_path) {
    ThrowErrno(env, ENAMETOOLONG, syscall, path.c_str());
  }
  std::memcpy(addr->sun_path, path.c_str(), path.size() + 1);
  return static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + path.size() +
                                1);
}

// listenUnix(path, backlog) -> fd
// socket(2) + bind(2) + listen(2). Does not unlink an existing path: that is
// the caller's policy.
Napi::Value ListenUnix(const Napi::CallbackInfo& info) {
  Args a(info, "listenUnix", 2, "(path, backlog)");
  std::string path = a.String(0, "path");
  int backlog = static_cast<int>(a.Uint32(1, "backlog", INT32_MAX));
  sockaddr_un addr;
  socklen_t len = UnixAddress(a.Env(), path, "bind", &addr);

  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) ThrowErrno(a.Env(), errno, "socket");
  if (bind(fd, reinterpret_cast<sockaddr*>(&addr), len) < 0) {
    int err = errno;
    close(fd);
    ThrowErrno(a.Env(), err, "bind", path.c_str());
  }
  if (listen(fd, backlog) < 0) {
    int err = errno;
    close(fd);
    ThrowErrno(a.Env(), err, "listen");
  }
  return Napi::Number::New(a.Env(), fd);
}

// accept(fd) -> fd
// accept4(2) so the new fd is non-blocking and close-on-exec atomically.
Napi::Value Accept(const Napi::CallbackInfo& info) {
  Args a(info, "accept", 1, "(fd)");
  int fd = a.Fd(0, "fd");
  int conn;
  do {
    conn = accept4(fd, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
  } while (conn < 0 && errno == EINTR);
  if (conn < 0) ThrowErrno(a.Env(), errno, "accept4");
  return Napi::Number::New(a.Env(), conn);
}

// connectUnix(path) -> fd
// socket(2) + a blocking connect(2), then O_NONBLOCK. Connecting to a Unix
// socket only blocks while the listener's backlog is full. Used by the test
// client; a server never connects.
Napi::Value ConnectUnix(const Napi::CallbackInfo& info) {
  Args a(info, "connectUnix", 1, "(path)");
  std::string path = a.String(0, "path");
  sockaddr_un addr;
  socklen_t len = UnixAddress(a.Env(), path, "connect", &addr);

  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) ThrowErrno(a.Env(), errno, "socket");
  int err = 0;
  if (connect(fd, reinterpret_cast<sockaddr*>(&addr), len) < 0) {
    err = errno;
    if (err == EINTR) {
      // An interrupted connect(2) carries on in the background: wait for it
      // and read its outcome instead of calling connect(2) again.
      pollfd p = {fd, POLLOUT, 0};
      int r;
      do {
        r = poll(&p, 1, -1);
      } while (r < 0 && errno == EINTR);
      socklen_t errlen = sizeof err;
      if (r < 0) {
        err = errno;
      } else if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &errlen) < 0) {
        err = errno;
      }
    }
  }
  if (err != 0) {
    close(fd);
    ThrowErrno(a.Env(), err, "connect", path.c_str());
  }
  int flags = fcntl(fd, F_GETFL);
  if (flags < 0 || fcntl(fd, F_SETFL, flags | O_NONBLOCK) < 0) {
    err = errno;
    close(fd);
    ThrowErrno(a.Env(), err, "fcntl");
  }
  return Napi::Number::New(a.Env(), fd);
}

// unixSocketListening(path) -> bool
// Whether a server accepts connections on the Unix socket at `path`: a
// non-blocking connect(2) that never waits. Success, or EAGAIN (its backlog is
// full), means a live server; ECONNREFUSED means a stale socket file left by
// one that is gone. Other errors (ENOENT, EACCES, ENOTSOCK...) are thrown.
Napi::Value UnixSocketListening(const Napi::CallbackInfo& info) {
  Args a(info, "unixSocketListening", 1, "(path)");
  std::string path = a.String(0, "path");
  sockaddr_un addr;
  socklen_t len = UnixAddress(a.Env(), path, "connect", &addr);

  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) ThrowErrno(a.Env(), errno, "socket");
  int r;
  do {
    r = connect(fd, reinterpret_cast<sockaddr*>(&addr), len);
  } while (r < 0 && errno == EINTR);
  int err = r < 0 ? errno : 0;
  close(fd);
  if (err == 0 || err == EAGAIN || err == EINPROGRESS) {
    return Napi::Boolean::New(a.Env(), true);
  }
  if (err == ECONNREFUSED) return Napi::Boolean::New(a.Env(), false);
  ThrowErrno(a.Env(), err, "connect", path.c_str());
}

// socketpair() -> [fd, fd]
// socketpair(2): two connected AF_UNIX stream sockets, for tests and for
// handing one end to a child.
Napi::Value SocketPair(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int sv[2];
  if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv) <
      0) {
    ThrowErrno(env, errno, "socketpair");
  }
  Napi::Array result = Napi::Array::New(env, 2);
  result.Set(0u, Napi::Number::New(env, sv[0]));
  result.Set(1u, Napi::Number::New(env, sv[1]));
  return result;
}

// recvmsg(fd, buf, offset, length, maxFds) -> { bytes, fds, truncated }
// recvmsg(2) with MSG_CMSG_CLOEXEC, so received fds are close-on-exec from the
// start. Fds that arrived are returned even when the control buffer was too
// small (MSG_CTRUNC, `truncated`), so the caller can close them; the kernel
// has already closed the ones that did not fit.
Napi::Value RecvMsg(const Napi::CallbackInfo& info) {
  Args a(info, "recvmsg", 5, "(fd, buf, offset, length, maxFds)");
  Napi::Env env = a.Env();
  int fd = a.Fd(0, "fd");
  Napi::Uint8Array buf = a.Bytes(1, "buf");
  uint64_t offset = a.SafeUint(2, "offset");
  uint64_t length = a.SafeUint(3, "length");
  uint32_t maxFds = a.Uint32(4, "maxFds", kMaxFds);
  if (length == 0) {
    // recvmsg(2) with no room returns 0, which would read as EOF.
    a.RangeError("expected length to be at least 1, got 0");
  }
  if (offset > buf.ByteLength() || length > buf.ByteLength() - offset) {
    a.RangeError("expected offset + length <= buf.byteLength, got " +
                 std::to_string(offset) + " + " + std::to_string(length) +
                 " > " + std::to_string(buf.ByteLength()));
  }

  iovec iov = {buf.Data() + offset, static_cast<size_t>(length)};
  // The kernel installs (controllen - sizeof(cmsghdr)) / sizeof(int) fds.
  // CMSG_SPACE rounds up to 8 bytes (room for 2 fds when maxFds is 1), so
  // the buffer is CMSG_SPACE but the length we offer is CMSG_LEN: exactly
  // maxFds fds, and MSG_CTRUNC beyond.
  std::vector<char> control(maxFds > 0 ? CMSG_SPACE(maxFds * sizeof(int)) : 0);
  msghdr msg = {};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  msg.msg_control = control.empty() ? nullptr : control.data();
  msg.msg_controllen = maxFds > 0 ? CMSG_LEN(maxFds * sizeof(int)) : 0;

  ssize_t n;
  do {
    n = recvmsg(fd, &msg, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
  } while (n < 0 && errno == EINTR);
  if (n < 0) ThrowErrno(env, errno, "recvmsg");

  std::vector<int> received;
  if (msg.msg_controllen > 0) {
    for (cmsghdr* c = CMSG_FIRSTHDR(&msg); c != nullptr;
         c = CMSG_NXTHDR(&msg, c)) {
      if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS) continue;
      size_t nfds = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
      for (size_t k = 0; k < nfds; k++) {
        int rfd;
        std::memcpy(&rfd, CMSG_DATA(c) + k * sizeof(int), sizeof(int));
        received.push_back(rfd);
      }
    }
  }

  Napi::Object result;
  try {
    Napi::Array fds = Napi::Array::New(env, received.size());
    for (uint32_t k = 0; k < received.size(); k++) {
      fds.Set(k, Napi::Number::New(env, received[k]));
    }
    result = Napi::Object::New(env);
    result.Set("bytes", Napi::Number::New(env, static_cast<double>(n)));
    result.Set("fds", fds);
    result.Set("truncated",
               Napi::Boolean::New(env, (msg.msg_flags & MSG_CTRUNC) != 0));
  } catch (...) {
    // Only if the JS heap is failing: the fds must not leak with the message.
    for (int rfd : received) close(rfd);
    throw;
  }
  return result;
}

// sendmsg(fd, data, fds) -> bytes sent
// One sendmsg(2) with the fds as SCM_RIGHTS. MSG_NOSIGNAL: a closed peer is
// EPIPE, never SIGPIPE. MSG_DONTWAIT: never blocks the JS thread. The count
// may be short; the fds travel with the first byte, so a retry of the rest
// must not send them again.
Napi::Value SendMsg(const Napi::CallbackInfo& info) {
  Args a(info, "sendmsg", 3, "(fd, data, fds)");
  Napi::Env env = a.Env();
  int fd = a.Fd(0, "fd");
  Napi::Uint8Array data = a.Bytes(1, "data");
  Napi::Array fdArray = a.FdArray(2, "fds", kMaxFds);
  uint32_t nfds = fdArray.Length();

  std::vector<int> fds(nfds);
  for (uint32_t k = 0; k < nfds; k++) {
    Napi::Value v = fdArray.Get(k);
    double d = v.IsNumber() ? v.As<Napi::Number>().DoubleValue() : -1;
    if (d < 0 || d > INT32_MAX ||
        static_cast<double>(static_cast<int>(d)) != d) {
      a.TypeError(2, "fds", "an array of integer file descriptors");
    }
    fds[k] = static_cast<int>(d);
  }
  if (nfds > 0 && data.ByteLength() == 0) {
    // A stream socket only delivers ancillary data attached to a byte.
    a.RangeError("expected data to hold at least 1 byte when sending fds");
  }

  iovec iov = {data.Data(), data.ByteLength()};
  std::vector<char> control(nfds > 0 ? CMSG_SPACE(nfds * sizeof(int)) : 0);
  msghdr msg = {};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  if (nfds > 0) {
    msg.msg_control = control.data();
    msg.msg_controllen = control.size();
    cmsghdr* c = CMSG_FIRSTHDR(&msg);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(nfds * sizeof(int));
    std::memcpy(CMSG_DATA(c), fds.data(), nfds * sizeof(int));
  }

  ssize_t n;
  do {
    n = sendmsg(fd, &msg, MSG_NOSIGNAL | MSG_DONTWAIT);
  } while (n < 0 && errno == EINTR);
  if (n < 0) ThrowErrno(env, errno, "sendmsg");
  return Napi::Number::New(env, static_cast<double>(n));
}

// The fd-carrying part of a message as a fixed, stack-sized control buffer:
// room for kMaxFds fds, aligned for cmsghdr. No allocation on the per-message
// path (recvmsgInto, sendmsgFrom).
union ControlBuffer {
  char bytes[CMSG_SPACE(kMaxFds * sizeof(int))];
  cmsghdr align;
};

// What recvmsgInto and sendmsgFrom return for EAGAIN (exported as WOULD_BLOCK).
constexpr int kWouldBlock = -1;

// Layout of the Int32Array that recvmsgInto fills (see binding.ts).
constexpr uint32_t kRecvFdCount = 0;
constexpr uint32_t kRecvTruncated = 1;
constexpr uint32_t kRecvFirstFd = 2;

// Checks `offset + length <= byteLength` for a (buf, offset, length) triple.
void CheckSpan(const Args& a, uint64_t offset, uint64_t length,
               size_t byteLength) {
  if (offset > byteLength || length > byteLength - offset) {
    a.RangeError("expected offset + length <= buf.byteLength, got " +
                 std::to_string(offset) + " + " + std::to_string(length) +
                 " > " + std::to_string(byteLength));
  }
}

// recvmsgInto(fd, buf, offset, length, fds) -> bytes | WOULD_BLOCK
// recvmsg, allocation-free: the byte count is the return value (0 is EOF),
// and WOULD_BLOCK (-1) means "nothing to read now" (EAGAIN) instead of a thrown Error,
// because running out of input is the normal end of every read loop. Fds and
// MSG_CTRUNC go into the caller's Int32Array `fds`:
//   fds[0] = number of fds received, fds[1] = 1 if MSG_CTRUNC else 0,
//   fds[2 ..] = the fds; at most fds.length - 2 (≤ 253) are accepted.
// Other errors throw as recvmsg does.
Napi::Value RecvMsgInto(const Napi::CallbackInfo& info) {
  Args a(info, "recvmsgInto", 5, "(fd, buf, offset, length, fds)");
  Napi::Env env = a.Env();
  int fd = a.FastFd(0, "fd");
  uint8_t* data;
  size_t byteLength;
  a.FastBytes(1, "buf", &data, &byteLength);
  uint64_t offset = a.FastSafeUint(2, "offset");
  uint64_t length = a.FastSafeUint(3, "length");
  int32_t* result;
  size_t slots;
  a.FastInt32s(4, "fds", &result, &slots);
  if (slots < kRecvFirstFd || slots > kRecvFirstFd + kMaxFds) {
    a.RangeError("expected fds to hold 2 to " +
                 std::to_string(kRecvFirstFd + kMaxFds) + " elements, got " +
                 std::to_string(slots));
  }
  if (length == 0) {
    a.RangeError("expected length to be at least 1, got 0");
  }
  CheckSpan(a, offset, length, byteLength);
  uint32_t maxFds = static_cast<uint32_t>(slots - kRecvFirstFd);

  iovec iov = {data + offset, static_cast<size_t>(length)};
  ControlBuffer control;
  msghdr msg = {};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  // As in recvmsg: offer exactly maxFds fds (CMSG_LEN), MSG_CTRUNC beyond.
  msg.msg_control = maxFds > 0 ? control.bytes : nullptr;
  msg.msg_controllen = maxFds > 0 ? CMSG_LEN(maxFds * sizeof(int)) : 0;

  ssize_t n;
  do {
    n = recvmsg(fd, &msg, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
  } while (n < 0 && errno == EINTR);
  result[kRecvFdCount] = 0;
  result[kRecvTruncated] = 0;
  if (n < 0) {
    if (errno == EAGAIN || errno == EWOULDBLOCK)
      return Napi::Number::New(env, kWouldBlock);
    ThrowErrno(env, errno, "recvmsg");
  }

  uint32_t count = 0;
  if (msg.msg_controllen > 0) {
    for (cmsghdr* c = CMSG_FIRSTHDR(&msg); c != nullptr;
         c = CMSG_NXTHDR(&msg, c)) {
      if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS) continue;
      size_t nfds = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
      for (size_t k = 0; k < nfds; k++) {
        int rfd;
        std::memcpy(&rfd, CMSG_DATA(c) + k * sizeof(int), sizeof(int));
        // The kernel installs no more than the control buffer offers.
        if (count < maxFds) {
          result[kRecvFirstFd + count++] = rfd;
        } else {
          close(rfd);
        }
      }
    }
  }
  result[kRecvFdCount] = static_cast<int32_t>(count);
  result[kRecvTruncated] = (msg.msg_flags & MSG_CTRUNC) != 0 ? 1 : 0;
  return Napi::Number::New(env, static_cast<double>(n));
}

// sendmsgFrom(fd, buf, offset, length, fds) -> bytes sent | WOULD_BLOCK
// sendmsg of buf[offset, offset + length) with `fds` (an array, usually
// empty) as SCM_RIGHTS, allocation-free; WOULD_BLOCK (-1) means the socket buffer is full
// (EAGAIN) instead of a thrown Error. Otherwise as sendmsg: MSG_NOSIGNAL,
// MSG_DONTWAIT, possibly short, fds with the first byte.
Napi::Value SendMsgFrom(const Napi::CallbackInfo& info) {
  Args a(info, "sendmsgFrom", 5, "(fd, buf, offset, length, fds)");
  Napi::Env env = a.Env();
  int fd = a.FastFd(0, "fd");
  uint8_t* data;
  size_t byteLength;
  a.FastBytes(1, "buf", &data, &byteLength);
  uint64_t offset = a.FastSafeUint(2, "offset");
  uint64_t length = a.FastSafeUint(3, "length");
  // The common case, no fds, costs one napi call; anything else is checked in full.
  bool isArray = false;
  uint32_t nfds = 0;
  Napi::Array fdArray;
  if (napi_is_array(env, info[4], &isArray) != napi_ok || !isArray ||
      napi_get_array_length(env, info[4], &nfds) != napi_ok || nfds > 0) {
    fdArray = a.FdArray(4, "fds", kMaxFds);
    nfds = fdArray.Length();
  }
  CheckSpan(a, offset, length, byteLength);
  if (nfds > 0 && length == 0) {
    // A stream socket only delivers ancillary data attached to a byte.
    a.RangeError("expected length to be at least 1 when sending fds");
  }

  iovec iov = {data + offset, static_cast<size_t>(length)};
  ControlBuffer control;
  msghdr msg = {};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  if (nfds > 0) {
    msg.msg_control = control.bytes;
    msg.msg_controllen = CMSG_SPACE(nfds * sizeof(int));
    cmsghdr* c = CMSG_FIRSTHDR(&msg);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(nfds * sizeof(int));
    for (uint32_t k = 0; k < nfds; k++) {
      Napi::Value v = fdArray.Get(k);
      double d = v.IsNumber() ? v.As<Napi::Number>().DoubleValue() : -1;
      if (d < 0 || d > INT32_MAX ||
          static_cast<double>(static_cast<int>(d)) != d) {
        a.TypeError(4, "fds", "an array of integer file descriptors");
      }
      int one = static_cast<int>(d);
      std::memcpy(CMSG_DATA(c) + k * sizeof(int), &one, sizeof(int));
    }
  }

  ssize_t n;
  do {
    n = sendmsg(fd, &msg, MSG_NOSIGNAL | MSG_DONTWAIT);
  } while (n < 0 && errno == EINTR);
  if (n < 0) {
    if (errno == EAGAIN || errno == EWOULDBLOCK)
      return Napi::Number::New(env, kWouldBlock);
    ThrowErrno(env, errno, "sendmsg");
  }
  return Napi::Number::New(env, static_cast<double>(n));
}

}  // namespace

void InitSock(Napi::Env env, Napi::Object exports) {
  exports.Set("listenUnix", Napi::Function::New(env, ListenUnix, "listenUnix"));
  exports.Set("accept", Napi::Function::New(env, Accept, "accept"));
  exports.Set("connectUnix",
              Napi::Function::New(env, ConnectUnix, "connectUnix"));
  exports.Set(
      "unixSocketListening",
      Napi::Function::New(env, UnixSocketListening, "unixSocketListening"));
  exports.Set("socketpair", Napi::Function::New(env, SocketPair, "socketpair"));
  exports.Set("recvmsg", Napi::Function::New(env, RecvMsg, "recvmsg"));
  exports.Set("sendmsg", Napi::Function::New(env, SendMsg, "sendmsg"));
  exports.Set("recvmsgInto",
              Napi::Function::New(env, RecvMsgInto, "recvmsgInto"));
  exports.Set("sendmsgFrom",
              Napi::Function::New(env, SendMsgFrom, "sendmsgFrom"));
  exports.Set("WOULD_BLOCK", Napi::Number::New(env, kWouldBlock));
}

}  // namespace mdgpu
