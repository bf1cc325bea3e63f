// Argument checks and Node-shaped errors (see common.h).
#include "common.h"

#include <uv.h>

#include <cmath>
#include <cstring>

namespace mdgpu {

namespace {

constexpr double kMaxSafeInteger = 9007199254740991.0;  // 2^53 - 1

// Error code name for a positive errno: libuv's table first (what Node uses
// for fs and net errors), glibc's for anything libuv does not know.
std::string ErrnoName(int err) {
  char buf[64];
  uv_err_name_r(-err, buf, sizeof buf);
  if (std::strncmp(buf, "Unknown", 7) != 0) return buf;
  const char* name = strerrorname_np(err);
  return name != nullptr ? name : "EUNKNOWN";
}

std::string ErrnoMessage(int err) {
  char buf[128];
  uv_strerror_r(-err, buf, sizeof buf);
  if (std::strncmp(buf, "Unknown", 7) != 0) return buf;
  return std::strerror(err);
}

const char* TypeName(const Napi::Value& v) {
  switch (v.Type()) {
    case napi_undefined:
      return "undefined";
    case napi_null:
      return "null";
    case napi_boolean:
      return "boolean";
    case napi_number:
      return "number";
    case napi_string:
      return "string";
    case napi_symbol:
      return "symbol";
    case napi_object:
      return v.IsArray() ? "array" : "object";
    case napi_function:
      return "function";
    case napi_external:
      return "external";
    case napi_bigint:
      return "bigint";
  }
  return "unknown";
}

[[noreturn]] void ThrowWithCode(Napi::Error err, const char* code) {
  err.Set("code", code);
  throw err;
}

}  // namespace

Napi::Error ErrnoError(Napi::Env env, int err, const char* syscall,
                       const char* path) {
  std::string code = ErrnoName(err);
  std::string message = code + ": " + ErrnoMessage(err) + ", " + syscall;
  if (path != nullptr) message += std::string(" '") + path + "'";
  Napi::Error e = Napi::Error::New(env, message);
  e.Set("errno", Napi::Number::New(env, -err));
  e.Set("code", code);
  e.Set("syscall", syscall);
  if (path != nullptr) e.Set("path", path);
  return e;
}

void ThrowErrno(Napi::Env env, int err, const char* syscall, const char* path) {
  throw ErrnoError(env, err, syscall, path);
}

Args::Args(const Napi::CallbackInfo& info, const char* fn, size_t count,
           const char* signature)
    : info_(info), fn_(fn) {
  if (info.Length() < count) {
    ThrowWithCode(Napi::TypeError::New(
                      info.Env(),
                      std::string(fn) + ": expected " + std::to_string(count) +
                          " argument" + (count == 1 ? "" : "s") + " " +
                          signature + ", got " + std::to_string(info.Length())),
                  "ERR_MISSING_ARGS");
  }
}

void Args::TypeError(size_t i, const char* name, const char* expected) const {
  ThrowWithCode(Napi::TypeError::New(Env(), std::string(fn_) + ": expected " +
                                                name + " to be " + expected +
                                                ", got " + TypeName(info_[i])),
                "ERR_INVALID_ARG_TYPE");
}

void Args::RangeError(const std::string& what) const {
  ThrowWithCode(Napi::RangeError::New(Env(), std::string(fn_) + ": " + what),
                "ERR_OUT_OF_RANGE");
}

namespace {

// Integer-valued number in [0, max]; returns it as a double.
double CheckedInteger(const Args& a, size_t i, const char* name, double max,
                      const char* expected) {
  Napi::Value v = a.Info()[i];
  if (!v.IsNumber()) a.TypeError(i, name, expected);
  double d = v.As<Napi::Number>().DoubleValue();
  if (!std::isfinite(d) || std::trunc(d) != d || d < 0 || d > max) {
    // Primitive number to string: no user code runs.
    a.RangeError(std::string("expected ") + name + " to be " + expected +
                 " in [0, " +
                 Napi::Number::New(a.Env(), max).ToString().Utf8Value() +
                 "], got " + v.ToString().Utf8Value());
  }
  return d;
}

}  // namespace

int Args::Fd(size_t i, const char* name) const {
  return static_cast<int>(
      CheckedInteger(*this, i, name, INT32_MAX, "an integer file descriptor"));
}

uint32_t Args::Uint32(size_t i, const char* name, uint32_t max) const {
  return static_cast<uint32_t>(
      CheckedInteger(*this, i, name, max, "an integer"));
}

uint64_t Args::SafeUint(size_t i, const char* name) const {
  return static_cast<uint64_t>(
      CheckedInteger(*this, i, name, kMaxSafeInteger, "a safe integer"));
}

std::string Args::String(size_t i, const char* name) const {
  Napi::Value v = info_[i];
  if (!v.IsString()) TypeError(i, name, "a string");
  std::string s = v.As<Napi::String>().Utf8Value();
  if (s.find('\0') != std::string::npos) {
    ThrowWithCode(Napi::TypeError::New(
                      Env(), std::string(fn_) + ": expected " + name +
                                 " to be a string without NUL characters"),
                  "ERR_INVALID_ARG_VALUE");
  }
  return s;
}

Napi::Uint8Array Args::Bytes(size_t i, const char* name) const {
  Napi::Value v = info_[i];
  if (!v.IsTypedArray() ||
      v.As<Napi::TypedArray>().TypedArrayType() != napi_uint8_array) {
    TypeError(i, name, "a Uint8Array");
  }
  return v.As<Napi::Uint8Array>();
}

Napi::Int32Array Args::Int32s(size_t i, const char* name) const {
  Napi::Value v = info_[i];
  if (!v.IsTypedArray() ||
      v.As<Napi::TypedArray>().TypedArrayType() != napi_int32_array) {
    TypeError(i, name, "an Int32Array");
  }
  return v.As<Napi::Int32Array>();
}

int Args::FastFd(size_t i, const char* name) const {
  double d;
  if (napi_get_value_double(Env(), info_[i], &d) == napi_ok && d >= 0 &&
      d <= INT32_MAX && std::trunc(d) == d) {
    return static_cast<int>(d);
  }
  return Fd(i, name);
}

uint64_t Args::FastSafeUint(size_t i, const char* name) const {
  double d;
  if (napi_get_value_double(Env(), info_[i], &d) == napi_ok && d >= 0 &&
      d <= kMaxSafeInteger && std::trunc(d) == d) {
    return static_cast<uint64_t>(d);
  }
  return SafeUint(i, name);
}

void Args::FastBytes(size_t i, const char* name, uint8_t** data,
                     size_t* length) const {
  napi_typedarray_type type;
  void* raw = nullptr;
  if (napi_get_typedarray_info(Env(), info_[i], &type, length, &raw, nullptr,
                               nullptr) == napi_ok &&
      type == napi_uint8_array) {
    *data = static_cast<uint8_t*>(raw);
    return;
  }
  Napi::Uint8Array bytes = Bytes(i, name);
  *data = bytes.Data();
  *length = bytes.ByteLength();
}

void Args::FastInt32s(size_t i, const char* name, int32_t** data,
                      size_t* count) const {
  napi_typedarray_type type;
  void* raw = nullptr;
  if (napi_get_typedarray_info(Env(), info_[i], &type, count, &raw, nullptr,
                               nullptr) == napi_ok &&
      type == napi_int32_array) {
    *data = static_cast<int32_t*>(raw);
    return;
  }
  Napi::Int32Array ints = Int32s(i, name);
  *data = ints.Data();
  *count = ints.ElementLength();
}

Napi::ArrayBuffer Args::ArrayBuf(size_t i, const char* name) const {
  Napi::Value v = info_[i];
  if (!v.IsArrayBuffer()) TypeError(i, name, "an ArrayBuffer");
  return v.As<Napi::ArrayBuffer>();
}

Napi::Function Args::Function(size_t i, const char* name) const {
  Napi::Value v = info_[i];
  if (!v.IsFunction()) TypeError(i, name, "a function");
  return v.As<Napi::Function>();
}

Napi::Array Args::FdArray(size_t i, const char* name, uint32_t max) const {
  Napi::Value v = info_[i];
  if (!v.IsArray()) TypeError(i, name, "an array of file descriptors");
  Napi::Array arr = v.As<Napi::Array>();
  if (arr.Length() > max) {
    RangeError(std::string("expected ") + name + " to hold at most " +
               std::to_string(max) + " file descriptors, got " +
               std::to_string(arr.Length()));
  }
  return arr;
}

}  // namespace mdgpu
