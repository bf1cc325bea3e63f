// mdgpu_native: the export table.
//
// The only place in mdgpu that makes syscalls Node lacks. Each export is one
// syscall-shaped primitive with no policy and no vfio-user knowledge; the
// TypeScript interface is src/native/binding.ts and must list exactly these.
//
//   sock.cc    listenUnix, accept, connectUnix, unixSocketListening, socketpair,
//              recvmsg, sendmsg, recvmsgInto, sendmsgFrom, WOULD_BLOCK
//   fd.cc      close, memfdCreate, ftruncate, punchHole, fstatSize,
//              eventfd, eventfdWrite, eventfdRead, MFD_ALLOW_SEALING, EFD_SEMAPHORE
//   mmap.cc    mmap, munmap, liveMappings, PROT_READ, PROT_WRITE
//   poller.cc  Poller, POLL_READABLE, POLL_WRITABLE
//   process.cc parentDeathSignal
//   layout.cc  sizeofs, offsetofs (test-only <linux/vfio.h> cross-check)
//   systemd.cc sdNotify, adoptSocket
#include "common.h"

namespace {

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  mdgpu::InitSock(env, exports);
  mdgpu::InitFd(env, exports);
  mdgpu::InitMmap(env, exports);
  mdgpu::InitPoller(env, exports);
  mdgpu::InitLayout(env, exports);
  mdgpu::InitSystemd(env, exports);
  mdgpu::InitProcess(env, exports);
  return exports;
}

}  // namespace

NODE_API_MODULE(mdgpu_native, Init)
