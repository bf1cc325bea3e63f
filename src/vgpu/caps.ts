/**
 * The capability record (contract 1.3): what the device can do, as a guest Vulkan driver needs
 * to know it at start-up — the host device's properties, limits and features **minus what mdgpu
 * does not mediate** (graphics, images, sparse resources, buffer device address), with mdgpu's
 * own limits where they are tighter. `CAPS_READ` writes it into a guest buffer; it is declared
 * once here, generated into `mdgpu_hw.h` as `struct mdgpu_caps`, and documented in
 * docs/device.md.
 *
 * Floats travel as their IEEE-754 binary32 bits in a u32. Text fields are NUL-padded UTF-8.
 */
import { bytes, structWith, u32, u64 } from '../layout/struct.js';

const struct = structWith((message) => new RangeError(message));

/** Layout version of the record; a record with a larger `size` has fields appended. */
export const CAPS_VERSION = 1;

export const Caps = struct('mdgpu_caps', {
  version: u32,
  size: u32,
  /** The host device's Vulkan API version (major << 22 | minor << 12 | patch). */
  hostApiVersion: u32,
  hostDriverVersion: u32,
  hostVendorId: u32,
  hostDeviceId: u32,
  /** VkPhysicalDeviceType of the host device (4: CPU, lavapipe). */
  hostDeviceType: u32,
  /** MDGPU_CAPS_FEATURE_* bits. */
  features: u32,
  hostDeviceName: bytes(256),
  hostDriverName: bytes(64),
  hostDriverInfo: bytes(128),
  /** Identifies compiled pipelines' compatibility: the host device and mdgpu's build of it. */
  pipelineCacheUuid: bytes(16),
  maxComputeSharedMemorySize: u32,
  maxComputeWorkGroupInvocations: u32,
  maxComputeWorkGroupCountX: u32,
  maxComputeWorkGroupCountY: u32,
  maxComputeWorkGroupCountZ: u32,
  maxComputeWorkGroupSizeX: u32,
  maxComputeWorkGroupSizeY: u32,
  maxComputeWorkGroupSizeZ: u32,
  maxPushConstantsSize: u32,
  maxBoundDescriptorSets: u32,
  maxPerStageDescriptorStorageBuffers: u32,
  maxPerStageDescriptorUniformBuffers: u32,
  maxDescriptorSetStorageBuffers: u32,
  maxDescriptorSetUniformBuffers: u32,
  maxStorageBufferRange: u32,
  maxUniformBufferRange: u32,
  minStorageBufferOffsetAlignment: u32,
  minUniformBufferOffsetAlignment: u32,
  /** Descriptors one DISPATCH2 may carry. */
  maxDispatchDescriptors: u32,
  /** Nanoseconds per timestamp tick, binary32 bits (TIMESTAMP writes ns, so 1.0). */
  timestampPeriodBits: u32,
  timestampValidBits: u32,
  subgroupSize: u32,
  /** VkSubgroupFeatureFlags the host device supports in compute shaders. */
  subgroupSupportedOperations: u32,
  /** Largest buffer a guest may allocate (the aperture minus what the device keeps). */
  maxMemoryAllocationSize: u64,
  reserved: bytes(64),
});

/** Bits of `features`: what kernels may use (the host device has it and mdgpu mediates it). */
export const CAPS_FEATURES = {
  SHADER_INT64: { bit: 0, doc: 'Int64 in kernels' },
  SHADER_FLOAT64: { bit: 1, doc: 'Float64 in kernels' },
  SHADER_INT16: { bit: 2, doc: 'Int16 in kernels' },
  SHADER_INT8: { bit: 3, doc: 'Int8 in kernels (shaderInt8)' },
  SHADER_FLOAT16: { bit: 4, doc: 'Float16 in kernels (shaderFloat16)' },
  STORAGE_BUFFER_16BIT: { bit: 5, doc: '16-bit types in storage buffers (storageBuffer16BitAccess)' },
  UNIFORM_16BIT: { bit: 6, doc: '16-bit types in uniform and storage buffers (uniformAndStorageBuffer16BitAccess)' },
  PUSH_CONSTANT_16BIT: { bit: 7, doc: '16-bit types in push constants (storagePushConstant16)' },
  STORAGE_BUFFER_8BIT: { bit: 8, doc: '8-bit types in storage buffers (storageBuffer8BitAccess)' },
  UNIFORM_8BIT: { bit: 9, doc: '8-bit types in uniform and storage buffers (uniformAndStorageBuffer8BitAccess)' },
  PUSH_CONSTANT_8BIT: { bit: 10, doc: '8-bit types in push constants (storagePushConstant8)' },
  ROBUST_BUFFER_ACCESS_2: { bit: 11, doc: "Out-of-bounds accesses stay inside the descriptor's range (robustBufferAccess2)" },
  VARIABLE_POINTERS: { bit: 12, doc: 'Variable pointers to storage buffers (variablePointersStorageBuffer)' },
} as const;

export type CapsFeature = keyof typeof CAPS_FEATURES;

/** The record's values; `version` and `size` are filled when it is written. */
export type CapsRecord = Omit<Parameters<typeof Caps.encode>[0], 'version' | 'size'>;

/** NUL-padded UTF-8 text in a field of `length` bytes (truncated to leave at least one NUL). */
export function textField(text: string, length: number): Uint8Array {
  const out = new Uint8Array(length);
  out.set(new TextEncoder().encode(text).subarray(0, length - 1));
  return out;
}

/** IEEE-754 binary32 bits of `value`, as `timestampPeriodBits` carries it. */
export function float32Bits(value: number): number {
  const view = new DataView(new ArrayBuffer(4));
  view.setFloat32(0, value, true);
  return view.getUint32(0, true);
}

/** The record as `CAPS_READ` writes it. */
export function encodeCaps(record: CapsRecord): Uint8Array {
  return Caps.encode({ version: CAPS_VERSION, size: Caps.size, ...record });
}
