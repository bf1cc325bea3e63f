// Shared helpers for the mdgpu native addon: argument checks and errors
// shaped like Node's own (err.code / err.errno / err.syscall).
//
// The addon is syscall-shaped: every export does one syscall (or one short,
// fixed sequence) and reports failure exactly as the kernel did. Policy lives
// in TypeScript.
#pragma once

#include <napi.h>

#include <cstdint>
#include <string>

namespace mdgpu {

// Throws an Error like Node's fs/net errors:
//   message  "EAGAIN: resource temporarily unavailable, recvmsg"
//   code     "EAGAIN"     (libuv's uv_err_name, strerrorname_np as fallback)
//   errno    -11         (negative, as in Node)
//   syscall  "recvmsg"
//   path     only when given (bind/connect)
// `err` is a positive errno value.
[[noreturn]] void ThrowErrno(Napi::Env env, int err, const char* syscall,
                             const char* path = nullptr);
// The same Error, built but not thrown (for callbacks).
Napi::Error ErrnoError(Napi::Env env, int err, const char* syscall,
                       const char* path = nullptr);

// Argument checking for one call. Throws TypeError (wrong type, code
// ERR_INVALID_ARG_TYPE) or RangeError (right type, bad value, code
// ERR_OUT_OF_RANGE), always naming the function, the argument and what was
// expected. Checks use Is*() before As<>(): with
// NODE_ADDON_API_ENABLE_TYPE_CHECK_ON_AS a wrong As<>() is a fatal error, and
// a native crash is worse than a TypeError.
class Args {
 public:
  // Throws TypeError unless at least `count` arguments were passed.
  // `signature` is shown in the message, e.g. "recvmsg(fd, buf, offset, length, maxFds)".
  Args(const Napi::CallbackInfo& info, const char* fn, size_t count,
       const char* signature);

  // A file descriptor: an integer in [0, 2^31 - 1].
  int Fd(size_t i, const char* name) const;
  // An integer in [0, max] (max at most 2^32 - 1).
  uint32_t Uint32(size_t i, const char* name, uint32_t max = UINT32_MAX) const;
  // A safe integer in [0, 2^53 - 1], for byte offsets and lengths.
  uint64_t SafeUint(size_t i, const char* name) const;
  // A string (UTF-8, no NUL characters).
  std::string String(size_t i, const char* name) const;
  // A Uint8Array (a Buffer is one).
  Napi::Uint8Array Bytes(size_t i, const char* name) const;
  // An Int32Array.
  Napi::Int32Array Int32s(size_t i, const char* name) const;
  Napi::ArrayBuffer ArrayBuf(size_t i, const char* name) const;
  Napi::Function Function(size_t i, const char* name) const;
  // An array of file descriptors, at most `max` long.
  Napi::Array FdArray(size_t i, const char* name, uint32_t max) const;

  // The same checks for the per-message calls (recvmsgInto, sendmsgFrom): one
  // raw napi call per argument on the common path, no handle wrappers; an
  // argument that fails it goes through the checks above for the same error.
  int FastFd(size_t i, const char* name) const;
  uint64_t FastSafeUint(size_t i, const char* name) const;
  // A Uint8Array's bytes (data already at its byteOffset) and length.
  void FastBytes(size_t i, const char* name, uint8_t** data,
                 size_t* length) const;
  // An Int32Array's elements and count.
  void FastInt32s(size_t i, const char* name, int32_t** data,
                  size_t* count) const;

  [[noreturn]] void TypeError(size_t i, const char* name,
                              const char* expected) const;
  [[noreturn]] void RangeError(const std::string& what) const;

  Napi::Env Env() const { return info_.Env(); }
  const Napi::CallbackInfo& Info() const { return info_; }
  const char* Fn() const { return fn_; }

 private:
  const Napi::CallbackInfo& info_;
  const char* fn_;
};

// Exports of each source file, called from addon.cc.
void InitSock(Napi::Env env, Napi::Object exports);
void InitFd(Napi::Env env, Napi::Object exports);
void InitMmap(Napi::Env env, Napi::Object exports);
void InitPoller(Napi::Env env, Napi::Object exports);
void InitLayout(Napi::Env env, Napi::Object exports);
void InitSystemd(Napi::Env env, Napi::Object exports);
void InitProcess(Napi::Env env, Napi::Object exports);

}  // namespace mdgpu
