// Shared mappings of fds as ArrayBuffers, with explicit unmap.
//
// Why native: Node cannot mmap(2) at all. The mapping is exposed as an
// external ArrayBuffer so JS reads and writes guest memory and BAR apertures
// in place, with no copies.
//
// Why explicit munmap: the GC sees an external ArrayBuffer as a few bytes,
// not as the megabytes of address space behind it, so it has no reason to
// collect it soon (100 mappings of 64 MiB reached 7.4 GB before a GC ran).
// munmap() releases the mapping now and detaches the ArrayBuffer so JS sees
// byteLength 0 instead of touching freed memory. The finalizer only unmaps
// what was never unmapped explicitly.
//
// A registry of live mappings, keyed by base address, lets munmap() reject an
// ArrayBuffer that did not come from mmap() or was already unmapped (EINVAL)
// instead of unmapping whatever now lives at that address. Mappings belong
// to the process, so the registry is process-wide (shared by worker threads).
#include <sys/mman.h>

#include <unistd.h>

#include <cerrno>
#include <mutex>
#include <unordered_map>

#include "common.h"

namespace mdgpu {

namespace {

struct Mapping {
  void* base;
  size_t length;
  bool
      unmapped;  // set under g_mutex by munmap(); then only the record is freed
};

std::mutex g_mutex;
std::unordered_map<void*, Mapping*> g_live;

// Runs when the ArrayBuffer is collected (or detached and released, or at
// environment teardown). The record is owned by the ArrayBuffer.
void FinalizeMapping(Napi::Env /*env*/, void* /*data*/, Mapping* m) {
  {
    std::lock_guard<std::mutex> lock(g_mutex);
    if (!m->unmapped) {
      munmap(m->base, m->length);
      auto it = g_live.find(m->base);
      if (it != g_live.end() && it->second == m) g_live.erase(it);
    }
  }
  delete m;
}

// mmap(fd, offset, length, prot) -> ArrayBuffer
// mmap(2) with MAP_SHARED: writes are seen by every other mapping of the fd,
// in this process and in QEMU. Caveats JS cannot guard against: a write to a
// PROT_READ mapping is SIGSEGV, and touching pages past the end of the file
// is SIGBUS. Both kill the process, so check sizes (fstatSize) first.
Napi::Value Mmap(const Napi::CallbackInfo& info) {
  Args a(info, "mmap", 4, "(fd, offset, length, prot)");
  Napi::Env env = a.Env();
  int fd = a.Fd(0, "fd");
  uint64_t offset = a.SafeUint(1, "offset");
  uint64_t length = a.SafeUint(2, "length");
  uint32_t prot = a.Uint32(3, "prot");
  uint64_t page = static_cast<uint64_t>(sysconf(_SC_PAGESIZE));
  if (offset % page != 0) {
    a.RangeError("expected offset to be a multiple of the page size (" +
                 std::to_string(page) + "), got " + std::to_string(offset));
  }
  if (prot == 0 ||
      (prot & ~static_cast<uint32_t>(PROT_READ | PROT_WRITE)) != 0) {
    a.RangeError("expected prot to be PROT_READ, PROT_WRITE or both, got " +
                 std::to_string(prot));
  }

  void* base =
      mmap(nullptr, static_cast<size_t>(length), static_cast<int>(prot),
           MAP_SHARED, fd, static_cast<off_t>(offset));
  if (base == MAP_FAILED) ThrowErrno(env, errno, "mmap");

  Mapping* m = new Mapping{base, static_cast<size_t>(length), false};
  {
    std::lock_guard<std::mutex> lock(g_mutex);
    g_live[base] = m;
  }
  try {
    return Napi::ArrayBuffer::New(env, base, m->length, FinalizeMapping, m);
  } catch (...) {
    // No ArrayBuffer, so no finalizer will ever run for this mapping.
    {
      std::lock_guard<std::mutex> lock(g_mutex);
      g_live.erase(base);
    }
    munmap(base, m->length);
    delete m;
    throw;
  }
}

// munmap(buffer)
// munmap(2) of a buffer returned by mmap(), then detach it. EINVAL for a
// buffer that is not a live mapping from mmap().
Napi::Value Munmap(const Napi::CallbackInfo& info) {
  Args a(info, "munmap", 1, "(buffer)");
  Napi::Env env = a.Env();
  Napi::ArrayBuffer buffer = a.ArrayBuf(0, "buffer");
  void* base = buffer.Data();
  size_t length = buffer.ByteLength();

  Mapping* m = nullptr;
  {
    std::lock_guard<std::mutex> lock(g_mutex);
    auto it = g_live.find(base);
    if (base != nullptr && it != g_live.end() && it->second->length == length) {
      m = it->second;
      // Claim the mapping before Detach(): in some Node versions detaching
      // releases the backing store and runs the finalizer synchronously, and
      // the finalizer must then leave the unmapping to us.
      m->unmapped = true;
      g_live.erase(it);
    }
  }
  if (m == nullptr) ThrowErrno(env, EINVAL, "munmap");  // not under g_mutex
  try {
    buffer.Detach();
  } catch (...) {
    std::lock_guard<std::mutex> lock(g_mutex);
    m->unmapped = false;
    g_live[base] = m;
    throw;
  }
  // `m` may already be freed by the finalizer here; use the copies.
  if (::munmap(base, length) < 0) ThrowErrno(env, errno, "munmap");
  return env.Undefined();
}

// liveMappings() -> count of mappings made by mmap() and not yet unmapped,
// explicitly or by the finalizer. For leak tests.
Napi::Value LiveMappings(const Napi::CallbackInfo& info) {
  std::lock_guard<std::mutex> lock(g_mutex);
  return Napi::Number::New(info.Env(), static_cast<double>(g_live.size()));
}

}  // namespace

void InitMmap(Napi::Env env, Napi::Object exports) {
  exports.Set("mmap", Napi::Function::New(env, Mmap, "mmap"));
  exports.Set("munmap", Napi::Function::New(env, Munmap, "munmap"));
  exports.Set("liveMappings",
              Napi::Function::New(env, LiveMappings, "liveMappings"));
  exports.Set("PROT_READ", Napi::Number::New(env, PROT_READ));
  exports.Set("PROT_WRITE", Napi::Number::New(env, PROT_WRITE));
}

}  // namespace mdgpu
