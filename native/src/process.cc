// The calling process's own fate: prctl(PR_SET_PDEATHSIG).
//
// Why native: Node has no prctl(2). The daemon's compute worker must die with
// the daemon even when the daemon is SIGKILLed and the worker's own event loop
// is busy (a long synchronous call into the Vulkan driver), where noticing the
// closed IPC channel would come late or never; the kernel's parent-death
// signal needs no cooperation from the dying parent or the busy child.
#include <sys/prctl.h>

#include <signal.h>
#include <unistd.h>

#include <cerrno>

#include "common.h"

namespace mdgpu {

namespace {

// parentDeathSignal(signal) -> ppid
// prctl(PR_SET_PDEATHSIG, signal): the kernel sends `signal` to this process
// when the thread that created it exits (for a child of Node's main thread:
// when the parent process dies). Returns getppid() read after the call, so
// that the caller can tell whether its parent died before the signal was
// armed (then it has already been reparented, and no signal will come).
Napi::Value ParentDeathSignal(const Napi::CallbackInfo& info) {
  Args a(info, "parentDeathSignal", 1, "(signal)");
  uint32_t sig = a.Uint32(0, "signal", 64);
  if (prctl(PR_SET_PDEATHSIG, static_cast<unsigned long>(sig)) < 0)
    ThrowErrno(a.Env(), errno, "prctl");
  return Napi::Number::New(a.Env(), getppid());
}

}  // namespace

void InitProcess(Napi::Env env, Napi::Object exports) {
  exports.Set("parentDeathSignal",
              Napi::Function::New(env, ParentDeathSignal, "parentDeathSignal"));
}

}  // namespace mdgpu
