// Plain file descriptors: memfd, eventfd, close, size.
//
// Why native: Node has no memfd_create(2) or eventfd(2) (both Linux-only),
// and the fds this process receives over SCM_RIGHTS are raw integers that
// no Node handle owns, so they are closed here too. Every fd is created
// close-on-exec so that QEMU or any child we spawn never inherits one.
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/stat.h>

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>

#include "common.h"

namespace mdgpu {

namespace {

// close(fd)
// close(2). EINTR is success: on Linux the fd is released before close
// returns, and retrying could close an fd another thread just opened.
Napi::Value Close(const Napi::CallbackInfo& info) {
  Args a(info, "close", 1, "(fd)");
  int fd = a.Fd(0, "fd");
  if (close(fd) < 0 && errno != EINTR) ThrowErrno(a.Env(), errno, "close");
  return a.Env().Undefined();
}

// memfdCreate(name, flags) -> fd
// memfd_create(2): anonymous shared memory that can be mmapped here and passed
// to QEMU (DMA regions, BAR apertures). MFD_CLOEXEC is always added.
Napi::Value MemfdCreate(const Napi::CallbackInfo& info) {
  Args a(info, "memfdCreate", 2, "(name, flags)");
  std::string name = a.String(0, "name");
  uint32_t flags = a.Uint32(1, "flags");
  int fd = memfd_create(name.c_str(), flags | MFD_CLOEXEC);
  if (fd < 0) ThrowErrno(a.Env(), errno, "memfd_create");
  return Napi::Number::New(a.Env(), fd);
}

// ftruncate(fd, size)
// ftruncate(2) sizes a memfd. Node could do this one (fs.ftruncateSync takes
// a raw fd); it sits beside memfd_create so that memfd setup is one module
// with one error shape.
Napi::Value Ftruncate(const Napi::CallbackInfo& info) {
  Args a(info, "ftruncate", 2, "(fd, size)");
  int fd = a.Fd(0, "fd");
  uint64_t size = a.SafeUint(1, "size");
  int r;
  do {
    r = ftruncate(fd, static_cast<off_t>(size));
  } while (r < 0 && errno == EINTR);
  if (r < 0) ThrowErrno(a.Env(), errno, "ftruncate");
  return a.Env().Undefined();
}

// punchHole(fd, offset, length)
// fallocate(2) FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE: the range reads as
// zeros and its pages go back to the kernel, size unchanged. Node has no
// fallocate. Zeroing a freed aperture range by writing would commit every
// page of it instead.
Napi::Value PunchHole(const Napi::CallbackInfo& info) {
  Args a(info, "punchHole", 3, "(fd, offset, length)");
  int fd = a.Fd(0, "fd");
  uint64_t offset = a.SafeUint(1, "offset");
  uint64_t length = a.SafeUint(2, "length");
  int r;
  do {
    r = fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
                  static_cast<off_t>(offset), static_cast<off_t>(length));
  } while (r < 0 && errno == EINTR);
  if (r < 0) ThrowErrno(a.Env(), errno, "fallocate");
  return a.Env().Undefined();
}

// fstatSize(fd) -> bytes
// fstat(2) st_size, to check the size of a memfd a peer sent before mmapping
// it (touching a mapping past the end of a file is SIGBUS, which kills the
// process). fs.fstatSync could do it too; this avoids a Stats object per fd.
Napi::Value FstatSize(const Napi::CallbackInfo& info) {
  Args a(info, "fstatSize", 1, "(fd)");
  int fd = a.Fd(0, "fd");
  struct stat st;
  if (fstat(fd, &st) < 0) ThrowErrno(a.Env(), errno, "fstat");
  return Napi::Number::New(a.Env(), static_cast<double>(st.st_size));
}

// eventfd(initval, flags) -> fd
// eventfd(2): the interrupt and notification fds vfio-user exchanges with
// QEMU. EFD_CLOEXEC | EFD_NONBLOCK are always added.
Napi::Value EventFd(const Napi::CallbackInfo& info) {
  Args a(info, "eventfd", 2, "(initval, flags)");
  uint32_t initval = a.Uint32(0, "initval");
  uint32_t flags = a.Uint32(1, "flags");
  int fd =
      eventfd(initval, static_cast<int>(flags | EFD_CLOEXEC | EFD_NONBLOCK));
  if (fd < 0) ThrowErrno(a.Env(), errno, "eventfd");
  return Napi::Number::New(a.Env(), fd);
}

// eventfdWrite(fd, value)
// write(2) of one 8-byte counter increment. Node could write the 8 bytes
// with fs.writeSync; doing it here takes a number or a bigint without
// allocating a Buffer per interrupt. EAGAIN means the counter would overflow.
Napi::Value EventFdWrite(const Napi::CallbackInfo& info) {
  Args a(info, "eventfdWrite", 2, "(fd, value)");
  int fd = a.Fd(0, "fd");
  uint64_t value;
  if (info[1].IsBigInt()) {
    bool lossless = false;
    value = info[1].As<Napi::BigInt>().Uint64Value(&lossless);
    if (!lossless) {
      a.RangeError("expected value to be a bigint in [0, 2^64 - 1], got " +
                   info[1].ToString().Utf8Value());
    }
  } else if (info[1].IsNumber()) {
    value = a.SafeUint(1, "value");
  } else {
    a.TypeError(1, "value", "a bigint or a number");
  }
  ssize_t n;
  do {
    n = write(fd, &value, sizeof value);
  } while (n < 0 && errno == EINTR);
  if (n < 0) ThrowErrno(a.Env(), errno, "write");
  return a.Env().Undefined();
}

// eventfdRead(fd) -> bigint
// read(2) of the 8-byte counter (or 1 with EFD_SEMAPHORE). EAGAIN when zero.
Napi::Value EventFdRead(const Napi::CallbackInfo& info) {
  Args a(info, "eventfdRead", 1, "(fd)");
  int fd = a.Fd(0, "fd");
  uint64_t value = 0;
  ssize_t n;
  do {
    n = read(fd, &value, sizeof value);
  } while (n < 0 && errno == EINTR);
  if (n < 0) ThrowErrno(a.Env(), errno, "read");
  if (n != sizeof value) ThrowErrno(a.Env(), EINVAL, "read");  // not an eventfd
  return Napi::BigInt::New(a.Env(), value);
}

}  // namespace

void InitFd(Napi::Env env, Napi::Object exports) {
  exports.Set("close", Napi::Function::New(env, Close, "close"));
  exports.Set("memfdCreate",
              Napi::Function::New(env, MemfdCreate, "memfdCreate"));
  exports.Set("ftruncate", Napi::Function::New(env, Ftruncate, "ftruncate"));
  exports.Set("punchHole", Napi::Function::New(env, PunchHole, "punchHole"));
  exports.Set("fstatSize", Napi::Function::New(env, FstatSize, "fstatSize"));
  exports.Set("eventfd", Napi::Function::New(env, EventFd, "eventfd"));
  exports.Set("eventfdWrite",
              Napi::Function::New(env, EventFdWrite, "eventfdWrite"));
  exports.Set("eventfdRead",
              Napi::Function::New(env, EventFdRead, "eventfdRead"));
  exports.Set("MFD_ALLOW_SEALING", Napi::Number::New(env, MFD_ALLOW_SEALING));
  exports.Set("EFD_SEMAPHORE", Napi::Number::New(env, EFD_SEMAPHORE));
}

}  // namespace mdgpu
