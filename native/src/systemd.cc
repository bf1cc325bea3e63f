// The two halves of systemd's service protocols that need syscalls Node lacks.
//
// Why native: sd_notify(3) is one datagram on an AF_UNIX SOCK_DGRAM socket,
// and Node has no datagram Unix sockets. The sockets systemd hands over by
// socket activation (sd_listen_fds(3): fds 3, 4, ...) are raw inherited fds
// that nothing in Node can inspect or mark close-on-exec, and every other fd
// this addon gives out is close-on-exec so that children (the compute worker,
// the kernel builder) never inherit one. Policy (which fd serves what, when to
// notify) is in src/cli/systemd.ts.
//
//   sdNotify(socketPath, state)  one sendto(2) of `state` to NOTIFY_SOCKET
//   adoptSocket(fd) -> info      an inherited socket made close-on-exec, and
//                                what it is: domain, type, listening, path
#include <sys/socket.h>
#include <sys/un.h>

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "common.h"

namespace mdgpu {

namespace {

// sdNotify(socketPath, state)
// A path starting with '@' is in the abstract namespace (systemd's own form):
// sun_path starts with NUL and the address has no terminating NUL.
Napi::Value SdNotify(const Napi::CallbackInfo& info) {
  Args a(info, "sdNotify", 2, "(socketPath, state)");
  std::string path = a.String(0, "socketPath");
  std::string state = a.String(1, "state");
  sockaddr_un addr;
  std::memset(&addr, 0, sizeof addr);
  addr.sun_family = AF_UNIX;
  if (path.size() < 2 || (path[0] != '/' && path[0] != '@')) {
    ThrowErrno(a.Env(), EINVAL, "sendto", path.c_str());
  }
  if (path.size() >= sizeof addr.sun_path) {
    ThrowErrno(a.Env(), ENAMETOOLONG, "sendto", path.c_str());
  }
  std::memcpy(addr.sun_path, path.data(), path.size());
  socklen_t len =
      static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + path.size());
  if (path[0] == '@') {
    addr.sun_path[0] = '\0';
  } else {
    len += 1;  // the NUL memset left after the path
  }
  int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd < 0) ThrowErrno(a.Env(), errno, "socket");
  ssize_t n;
  do {
    n = sendto(fd, state.data(), state.size(), MSG_NOSIGNAL,
               reinterpret_cast<sockaddr*>(&addr), len);
  } while (n < 0 && errno == EINTR);
  int err = n < 0 ? errno : 0;
  close(fd);
  if (err != 0) ThrowErrno(a.Env(), err, "sendto", path.c_str());
  return a.Env().Undefined();
}

int SockOpt(Napi::Env env, int fd, int option) {
  int value = 0;
  socklen_t len = sizeof value;
  if (getsockopt(fd, SOL_SOCKET, option, &value, &len) < 0) {
    ThrowErrno(env, errno, "getsockopt");
  }
  return value;
}

// adoptSocket(fd) -> { domain, type, listening, path }
// fcntl(FD_CLOEXEC), then getsockopt(SO_DOMAIN, SO_TYPE, SO_ACCEPTCONN) and
// getsockname(2). `domain` and `type` are "unix"/"inet"/"inet6"/"other" and
// "stream"/"dgram"/"seqpacket"/"other"; `path` is the bound path of a Unix
// socket ("@name" for the abstract namespace, "" when unnamed). ENOTSOCK for
// an fd that is not a socket, EBADF for one that is not open.
Napi::Value AdoptSocket(const Napi::CallbackInfo& info) {
  Args a(info, "adoptSocket", 1, "(fd)");
  Napi::Env env = a.Env();
  int fd = a.Fd(0, "fd");
  int flags = fcntl(fd, F_GETFD);
  if (flags < 0 || fcntl(fd, F_SETFD, flags | FD_CLOEXEC) < 0) {
    ThrowErrno(env, errno, "fcntl");
  }
  int domain = SockOpt(env, fd, SO_DOMAIN);
  int type = SockOpt(env, fd, SO_TYPE);
  int listening = SockOpt(env, fd, SO_ACCEPTCONN);
  std::string path;
  if (domain == AF_UNIX) {
    sockaddr_un addr;
    std::memset(&addr, 0, sizeof addr);
    socklen_t len = sizeof addr;
    if (getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) < 0) {
      ThrowErrno(env, errno, "getsockname");
    }
    size_t n = len > offsetof(sockaddr_un, sun_path)
                   ? len - offsetof(sockaddr_un, sun_path)
                   : 0;
    if (n > 0 && addr.sun_path[0] == '\0') {
      path = "@" + std::string(addr.sun_path + 1, n - 1);
    } else {
      path = std::string(addr.sun_path, strnlen(addr.sun_path, n));
    }
  }
  Napi::Object out = Napi::Object::New(env);
  out.Set("domain", domain == AF_UNIX    ? "unix"
                    : domain == AF_INET  ? "inet"
                    : domain == AF_INET6 ? "inet6"
                                         : "other");
  out.Set("type", type == SOCK_STREAM      ? "stream"
                  : type == SOCK_DGRAM     ? "dgram"
                  : type == SOCK_SEQPACKET ? "seqpacket"
                                           : "other");
  out.Set("listening", Napi::Boolean::New(env, listening != 0));
  out.Set("path", path);
  return out;
}

}  // namespace

void InitSystemd(Napi::Env env, Napi::Object exports) {
  exports.Set("sdNotify", Napi::Function::New(env, SdNotify, "sdNotify"));
  exports.Set("adoptSocket",
              Napi::Function::New(env, AdoptSocket, "adoptSocket"));
}

}  // namespace mdgpu
