// Poller: readiness of a raw fd on Node's own event loop (uv_poll_t).
//
// Why native: Node offers no way to wait for readability or writability of an
// fd it does not own (our sockets from listenUnix/accept, eventfds). libuv
// can, through uv_poll_t (epoll underneath); this exposes it as a class, after
// serialport's Poller.
//
// Lifetime:
// - The uv_poll_t is heap-allocated and freed in the uv_close callback, so it
//   outlives the JS object if it must.
// - While polling is started the JS wrapper is held with a strong reference
//   (ObjectWrap::Ref), so it cannot be collected while libuv may call it.
//   stop() and close() drop that reference.
// - An active handle keeps the event loop alive (like a net.Socket); a stopped
//   or closed one does not.
// - close() is uv_close(2): no callback fires after it, and it is idempotent.
//   Close the Poller before closing its fd: epoll must not see a stale fd.
// - One Poller per fd: libuv does not support two handles polling one fd.
#include <uv.h>

#include <fcntl.h>

#include <cerrno>
#include <memory>

#include "common.h"

namespace mdgpu {

namespace {

class Poller : public Napi::ObjectWrap<Poller> {
 public:
  static Napi::Function Define(Napi::Env env) {
    return DefineClass(env, "Poller",
                       {InstanceMethod<&Poller::Start>("start"),
                        InstanceMethod<&Poller::Stop>("stop"),
                        InstanceMethod<&Poller::Close>("close"),
                        InstanceMethod<&Poller::SetRef>("ref"),
                        InstanceMethod<&Poller::SetUnref>("unref")});
  }

  // new Poller(fd, callback(err, events))
  explicit Poller(const Napi::CallbackInfo& info)
      : Napi::ObjectWrap<Poller>(info) {
    Args a(info, "Poller", 2, "(fd, callback)");
    Napi::Env env = a.Env();
    fd_ = a.Fd(0, "fd");
    Napi::Function callback = a.Function(1, "callback");

    uv_loop_t* loop = nullptr;
    if (napi_get_uv_event_loop(env, &loop) != napi_ok || loop == nullptr) {
      throw Napi::Error::New(
          env, "Poller: no libuv event loop for this environment");
    }
    callback_ = Napi::Persistent(callback);
    async_ = std::make_unique<Napi::AsyncContext>(
        env, "mdgpu:Poller", info.This().As<Napi::Object>());
    // Last, so that nothing can throw after the handle exists. uv_poll_init
    // also sets O_NONBLOCK on the fd. EPERM: epoll cannot watch this kind of
    // fd (a regular file).
    auto handle = std::make_unique<uv_poll_t>();
    int r = uv_poll_init(loop, handle.get(), fd_);
    if (r < 0) ThrowErrno(env, -r, "uv_poll_init");
    handle_ = handle.release();
    handle_->data = this;
  }

  ~Poller() override {
    // Collected without close(): polling was stopped (else we would be
    // referenced), so only the handle is left to release.
    if (handle_ != nullptr) {
      handle_->data = nullptr;
      uv_close(reinterpret_cast<uv_handle_t*>(handle_), OnClose);
      handle_ = nullptr;
    }
  }

 private:
  // start(events): events is POLL_READABLE | POLL_WRITABLE. Calling it again
  // replaces the event mask.
  Napi::Value Start(const Napi::CallbackInfo& info) {
    Args a(info, "Poller.start", 1, "(events)");
    Napi::Env env = a.Env();
    uint32_t events = a.Uint32(0, "events", UV_READABLE | UV_WRITABLE);
    if (events == 0)
      a.RangeError(
          "expected events to include POLL_READABLE or POLL_WRITABLE, got 0");
    if (handle_ == nullptr) ThrowClosed(env, "start");
    // libuv aborts the process if epoll_ctl later fails on a closed fd; an
    // fcntl(2) turns the common mistake (starting a poller on an fd closed
    // already) into an EBADF error instead. Only on the first start: callers
    // re-start only to change the mask, and that is on a hot path.
    if (!started_ && fcntl(fd_, F_GETFD) < 0) {
      ThrowErrno(env, errno, "uv_poll_start");
    }
    int r = uv_poll_start(handle_, static_cast<int>(events), OnPoll);
    if (r < 0) ThrowErrno(env, -r, "uv_poll_start");
    started_ = true;
    if (!active_) {
      active_ = true;
      Ref();
    }
    return env.Undefined();
  }

  // stop(): no more callbacks until start() again. No-op when closed.
  Napi::Value Stop(const Napi::CallbackInfo& info) {
    if (handle_ != nullptr) {
      int r = uv_poll_stop(handle_);
      if (r < 0) ThrowErrno(info.Env(), -r, "uv_poll_stop");
    }
    Deactivate();
    return info.Env().Undefined();
  }

  // close(): release the handle. Idempotent; no callback fires afterwards.
  Napi::Value Close(const Napi::CallbackInfo& info) {
    if (handle_ != nullptr) {
      handle_->data = nullptr;
      uv_close(reinterpret_cast<uv_handle_t*>(handle_), OnClose);
      handle_ = nullptr;
    }
    Deactivate();
    callback_.Reset();
    // Closing from inside our own callback: the async context is still in
    // use by MakeCallback, so OnPoll releases it when the callback returns.
    if (!in_callback_) async_.reset();
    return info.Env().Undefined();
  }

  // ref() / unref(): whether a started poller keeps the event loop alive
  // (uv_ref / uv_unref: a flag on the handle, no syscall). A poller that waits
  // for replies only while requests are outstanding unrefs itself when idle.
  // No-ops when closed.
  Napi::Value SetRef(const Napi::CallbackInfo& info) {
    if (handle_ != nullptr) uv_ref(reinterpret_cast<uv_handle_t*>(handle_));
    return info.Env().Undefined();
  }

  Napi::Value SetUnref(const Napi::CallbackInfo& info) {
    if (handle_ != nullptr) uv_unref(reinterpret_cast<uv_handle_t*>(handle_));
    return info.Env().Undefined();
  }

  void Deactivate() {
    if (active_) {
      active_ = false;
      Unref();
    }
  }

  [[noreturn]] static void ThrowClosed(Napi::Env env, const char* method) {
    Napi::Error e = Napi::Error::New(
        env, std::string("Poller.") + method + ": poller is closed");
    e.Set("code", "ERR_INVALID_STATE");
    throw e;
  }

  static void OnClose(uv_handle_t* handle) {
    delete reinterpret_cast<uv_poll_t*>(handle);
  }

  // Runs on the loop thread from libuv, outside any JS frame: needs its own
  // handle scope, and MakeCallback so that nextTicks and promise jobs queued
  // by the callback run right after it (and async_hooks see a resource).
  static void OnPoll(uv_poll_t* handle, int status, int events) {
    auto* self = static_cast<Poller*>(handle->data);
    if (self == nullptr || self->callback_.IsEmpty()) return;
    Napi::Env env = self->Env();
    Napi::HandleScope scope(env);
    // A local handle to the wrapper keeps it alive even if the callback
    // calls close() (which drops the strong reference).
    Napi::Object recv = self->Value();
    self->in_callback_ = true;
    try {
      Napi::Value err =
          status < 0 ? ErrnoError(env, -status, "uv_poll").Value() : env.Null();
      self->callback_.MakeCallback(
          recv, {err, Napi::Number::New(env, status < 0 ? 0 : events)},
          *self->async_);
    } catch (const Napi::Error& e) {
      // Thrown by the JS callback: report it as an uncaught exception, as
      // Node does for its own handles, instead of unwinding into libuv.
      self->in_callback_ = false;
      if (self->handle_ == nullptr) self->async_.reset();
      napi_fatal_exception(env, e.Value());
      return;
    }
    self->in_callback_ = false;
    if (self->handle_ == nullptr) self->async_.reset();
  }

  int fd_ = -1;
  uv_poll_t* handle_ = nullptr;  // null once closed
  bool active_ = false;          // started and holding a strong reference
  bool started_ = false;         // start() succeeded at least once
  bool in_callback_ = false;     // inside OnPoll's MakeCallback
  Napi::FunctionReference callback_;
  std::unique_ptr<Napi::AsyncContext> async_;
};

}  // namespace

void InitPoller(Napi::Env env, Napi::Object exports) {
  exports.Set("Poller", Poller::Define(env));
  exports.Set("POLL_READABLE", Napi::Number::New(env, UV_READABLE));
  exports.Set("POLL_WRITABLE", Napi::Number::New(env, UV_WRITABLE));
}

}  // namespace mdgpu
