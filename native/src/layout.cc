// Test-only layout cross-check: sizeof/offsetof of the kernel's <linux/vfio.h>
// structs that vfio-user reuses on the wire, as the C compiler sees them.
//
// Why native: only a C compiler knows the real layout; the TypeScript codecs
// declare the same structs by hand, and a test compares the two (the
// fs-native-extensions sizeof_* / shared-structs approach).
//
// Keys: "vfio_region_info" for a sizeof, "vfio_region_info.cap_offset" for an
// offsetof. Every field of each struct is listed.
#include <cstddef>
#include <type_traits>

#include "common.h"

#if __has_include(<linux/vfio.h>)
#include <linux/vfio.h>
#define MDGPU_HAVE_VFIO_H 1
#else
// linux-libc-dev provides it; without it both tables are empty and the layout
// test fails saying so.
#define MDGPU_HAVE_VFIO_H 0
#endif

namespace mdgpu {

namespace {

#if MDGPU_HAVE_VFIO_H
// Linux 6.5+ headers end vfio_device_info with `__u32 pad` (sizeof 24 instead
// of 20). Detect the member so the table lists exactly the fields present.
template <typename T, typename = void>
struct HasPad : std::false_type {};
template <typename T>
struct HasPad<T, std::void_t<decltype(T::pad)>> : std::true_type {};

template <typename T>
void AddPadOffset(Napi::Env env, Napi::Object offsets, const char* key) {
  if constexpr (HasPad<T>::value) {
    offsets.Set(key, Napi::Number::New(env, offsetof(T, pad)));
  }
}
#endif

Napi::Value Sizeofs(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Object sizes = Napi::Object::New(env);
#if MDGPU_HAVE_VFIO_H
#define SIZEOF(T) sizes.Set(#T, Napi::Number::New(env, sizeof(struct T)))
  SIZEOF(vfio_info_cap_header);
  SIZEOF(vfio_device_info);
  SIZEOF(vfio_region_info);
  SIZEOF(vfio_region_sparse_mmap_area);
  SIZEOF(vfio_region_info_cap_sparse_mmap);
  SIZEOF(vfio_irq_info);
  SIZEOF(vfio_irq_set);
#undef SIZEOF
#endif
  return sizes;
}

Napi::Value Offsetofs(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Object offsets = Napi::Object::New(env);
#if MDGPU_HAVE_VFIO_H
#define OFFSETOF(T, F) \
  offsets.Set(#T "." #F, Napi::Number::New(env, offsetof(struct T, F)))
  OFFSETOF(vfio_info_cap_header, id);
  OFFSETOF(vfio_info_cap_header, version);
  OFFSETOF(vfio_info_cap_header, next);

  OFFSETOF(vfio_device_info, argsz);
  OFFSETOF(vfio_device_info, flags);
  OFFSETOF(vfio_device_info, num_regions);
  OFFSETOF(vfio_device_info, num_irqs);
  OFFSETOF(vfio_device_info, cap_offset);
  AddPadOffset<struct vfio_device_info>(env, offsets, "vfio_device_info.pad");

  OFFSETOF(vfio_region_info, argsz);
  OFFSETOF(vfio_region_info, flags);
  OFFSETOF(vfio_region_info, index);
  OFFSETOF(vfio_region_info, cap_offset);
  OFFSETOF(vfio_region_info, size);
  OFFSETOF(vfio_region_info, offset);

  OFFSETOF(vfio_region_sparse_mmap_area, offset);
  OFFSETOF(vfio_region_sparse_mmap_area, size);

  OFFSETOF(vfio_region_info_cap_sparse_mmap, header);
  OFFSETOF(vfio_region_info_cap_sparse_mmap, nr_areas);
  OFFSETOF(vfio_region_info_cap_sparse_mmap, reserved);
  OFFSETOF(vfio_region_info_cap_sparse_mmap, areas);

  OFFSETOF(vfio_irq_info, argsz);
  OFFSETOF(vfio_irq_info, flags);
  OFFSETOF(vfio_irq_info, index);
  OFFSETOF(vfio_irq_info, count);

  OFFSETOF(vfio_irq_set, argsz);
  OFFSETOF(vfio_irq_set, flags);
  OFFSETOF(vfio_irq_set, index);
  OFFSETOF(vfio_irq_set, start);
  OFFSETOF(vfio_irq_set, count);
  OFFSETOF(vfio_irq_set, data);
#undef OFFSETOF
#endif
  return offsets;
}

}  // namespace

void InitLayout(Napi::Env env, Napi::Object exports) {
  exports.Set("sizeofs", Napi::Function::New(env, Sizeofs, "sizeofs"));
  exports.Set("offsetofs", Napi::Function::New(env, Offsetofs, "offsetofs"));
}

}  // namespace mdgpu
