/**
 * A compute device as the executor (src/exec) sees it: a device that imports memory, builds
 * kernels from SPIR-V and runs batches of commands, completing each batch as a Promise.
 *
 * The real implementation is {@link HostDevice} in `host-driver.ts` (libmdgpu-host through
 * koffi: Vulkan compute, lavapipe without a GPU). The device model takes a `ComputeDevice`
 * so that it can be tested with another implementation (a fake that completes batches on the
 * CPU, or one that fails on demand).
 *
 * Conventions:
 * - Sizes and offsets are bytes, as JS numbers (safe integers); absolute device and host
 *   times are bigint nanoseconds, durations are number nanoseconds.
 * - The backend checks every command (memory ranges, alignments, counts) and rejects a bad
 *   one with a {@link BackendError}; mdgpu's validator should have rejected it first, with a
 *   guest-facing error, so a BackendError from `submit` is a bug or a device failure.
 */

import type { DeviceCommand, KernelBinding } from '../device-commands.js';

export type { KernelBinding } from '../device-commands.js';

/** Kind of device (the Vulkan numbering). */
export enum DeviceType {
  Other = 0,
  IntegratedGpu = 1,
  DiscreteGpu = 2,
  VirtualGpu = 3,
  Cpu = 4, // Mesa lavapipe
}

/**
 * What a kernel's out-of-bounds buffer access can reach (`enum mdgpu_host_robustness`):
 * - `robustBufferAccess2` (VK_EXT_robustness2): nothing outside its binding's range; reads
 *   outside return 0, writes outside are dropped;
 * - `robustBufferAccess`: nothing outside the imported memory the binding is a range of (a VM's
 *   whole aperture: its other buffers and rings); reads may return any of its values;
 * - `none`: undefined (a device without robustBufferAccess).
 */
export type Robustness = 'robustBufferAccess2' | 'robustBufferAccess' | 'none';

/** What a device is and what it can do (`struct mdgpu_host_device_info`). */
export interface DeviceInfo {
  /** Device name, e.g. `llvmpipe (LLVM 15.0.6, 256 bits)`. */
  name: string;
  /** Driver name, e.g. `llvmpipe`. */
  driverName: string;
  /** Driver version text, e.g. `Mesa 22.3.6 (LLVM 15.0.6)`. */
  driverInfo: string;
  /** Backend, e.g. `vulkan`. */
  backend: string;
  /** Position in the backend's device list (what `--device 1` selects). */
  index: number;
  deviceType: DeviceType;
  vendorId: number;
  deviceId: number;
  /** Backend API version, e.g. `1.3.230`. */
  apiVersion: string;
  /** Zero-copy import of host memory is available (VK_EXT_external_memory_host). */
  hostImport: boolean;
  /** robustBufferAccess is on (how far it confines a kernel: {@link robustness}). */
  robustAccess: boolean;
  /** What a kernel's out-of-bounds access can reach (see {@link Robustness}). */
  robustness: Robustness;
  /** With robustBufferAccess2: bytes a binding's range is rounded up to for the bounds check (1 or 4); else 0. */
  robustAccessAlignment: number;
  /** TIMESTAMP commands and batch device times are available. */
  timestamps: boolean;
  /** TIMESTAMP values are written by the CPU at completion (device tick ≠ 1 ns). */
  cpuTimestamps: boolean;
  maxPushConstantSize: number;
  maxBindings: number;
  maxWorkgroupCount: [number, number, number];
  /** Largest local size (LocalSize, LocalSizeId, WorkgroupSize) per dimension: checked at kernel creation. */
  maxComputeWorkGroupSize: [number, number, number];
  /** Largest product of the local size: checked at kernel creation. */
  maxComputeWorkGroupInvocations: number;
  /** Bytes of Workgroup (shared) variables a kernel may declare: checked at kernel creation. */
  maxComputeSharedMemorySize: number;
  /** Bytes of Private and Function variables per invocation a kernel may declare (`MDGPU_HOST_MAX_PRIVATE_SIZE`). */
  maxKernelPrivateSize: number;
  /** Structs and arrays nested in one type of a kernel (`MDGPU_HOST_MAX_TYPE_DEPTH`). */
  maxKernelTypeDepth: number;
  /** Member paths one type of a kernel expands to (`MDGPU_HOST_MAX_TYPE_PATHS`). */
  maxKernelTypePaths: number;
  /** Member paths validation walks over a whole kernel (`MDGPU_HOST_MAX_MODULE_PATHS`). */
  maxKernelModulePaths: number;
  timestampValidBits: number;
  timestampPeriodNs: number;
  /** Alignment of address and size for a zero-copy import (minImportedHostPointerAlignment); 0 without hostImport. */
  minImportAlignment: number;
  /** Alignment of a binding's offset. */
  minBindingAlignment: number;
  /** Largest binding size. */
  maxBindingSize: number;
  /** Largest single imported memory. */
  maxMemorySize: number;
  /** What a guest Vulkan driver needs beyond the above (contract 1.3's capability record). */
  caps: DeviceCaps;
}

/** Features of the host device that kernels may use (`MDGPU_HOST_FEATURE_*`). */
export interface DeviceFeatures {
  shaderInt64: boolean;
  shaderFloat64: boolean;
  shaderInt16: boolean;
  shaderInt8: boolean;
  shaderFloat16: boolean;
  storageBuffer16BitAccess: boolean;
  uniformAndStorageBuffer16BitAccess: boolean;
  storagePushConstant16: boolean;
  storageBuffer8BitAccess: boolean;
  uniformAndStorageBuffer8BitAccess: boolean;
  storagePushConstant8: boolean;
  variablePointersStorageBuffer: boolean;
}

/** The host device's properties a guest Vulkan driver reports (`struct mdgpu_host_caps`). */
export interface DeviceCaps {
  features: DeviceFeatures;
  /** 16 bytes as 32 hex digits. */
  pipelineCacheUuid: string;
  driverVersion: number;
  maxBoundDescriptorSets: number;
  maxPerStageDescriptorStorageBuffers: number;
  maxPerStageDescriptorUniformBuffers: number;
  maxDescriptorSetStorageBuffers: number;
  maxDescriptorSetUniformBuffers: number;
  maxStorageBufferRange: number;
  maxUniformBufferRange: number;
  minStorageBufferOffsetAlignment: number;
  minUniformBufferOffsetAlignment: number;
  subgroupSize: number;
  /** VkSubgroupFeatureFlags supported in compute shaders. */
  subgroupSupportedOperations: number;
  maxMemoryAllocationSize: number;
}

/** Imported memory: a range of host memory (e.g. of mdgpu's aperture) that commands may use. */
export interface BackendMemory {
  /** Bytes. */
  readonly size: number;
  /** The device uses the host memory itself; otherwise each batch stages copies in and out. */
  readonly zeroCopy: boolean;
  /**
   * Forget the memory. Batches already submitted with it still complete; the host memory must
   * stay mapped until they have.
   */
  destroy(): void;
}

/** A compute kernel built from SPIR-V. */
export interface BackendKernel {
  /** Every descriptor binding it declares (reflected from its SPIR-V by the host driver). */
  readonly layout: readonly KernelBinding[];
  /** Bytes of push constants. */
  readonly pushConstantSize: number;
  /** Its workgroup size, after specialization. */
  readonly localSize: readonly [number, number, number];
  /** Built with {@link KernelOptions.dispatchBase}: dispatches may give a non-zero base. */
  readonly dispatchBase: boolean;
  /**
   * A dispatch of it may run as several over ranges of its workgroups, each given the whole
   * count as `numWorkgroups`, and compute what the whole one does (built with `dispatchBase`,
   * and it does not read NumWorkgroups or the host driver made it read the given count).
   */
  readonly splittable: boolean;
  /** Forget the kernel; batches already submitted with it still complete. */
  destroy(): void;
}

/** A specialization constant's place in {@link Specialization.data} (VkSpecializationMapEntry). */
export interface SpecEntry {
  constantId: number;
  offset: number;
  size: number;
}

/** Specialization constants applied when the kernel is built (VkSpecializationInfo). */
export interface Specialization {
  entries: readonly SpecEntry[];
  data: Uint8Array;
}

/** Options of kernel creation ({@link ComputeDevice.buildKernel}). */
export interface KernelOptions {
  /** Bytes of push constants, a multiple of 4 up to `maxPushConstantSize` (128). */
  pushConstantSize: number;
  /**
   * Contract 1.1 kernels: the module must declare exactly this many storage buffers, set 0,
   * bindings 0..n-1. Leave it out for a kernel whose layout is whatever its SPIR-V declares
   * (contract 1.3: reflected, see {@link BackendKernel.layout}).
   */
  bindings?: number;
  /** The entry point (default `main`). */
  entryPoint?: string;
  specialization?: Specialization;
  /** Allow dispatches with a non-zero base (VK_PIPELINE_CREATE_DISPATCH_BASE). */
  dispatchBase?: boolean;
}

/** Options of memory imports. */
export interface ImportOptions {
  /** Refuse zero copy: use a device buffer with staging copies (for tests of that path). */
  staged?: boolean;
}

/**
 * One command of a batch: the shape the validator produces (src/device-commands.ts), with the
 * kernel of a dispatch a kernel of this device. Every range is a range of the batch's memory.
 */
export type Command = DeviceCommand<BackendKernel>;

/** How a batch went (`struct mdgpu_host_status`). */
export interface SubmissionStatus {
  /** The submission id, 1, 2, … per device. */
  id: bigint;
  /** Device time spent on the batch (end − begin timestamps), ns; undefined without timestamps. */
  deviceNs: number | undefined;
  /** Device clock when the batch began and ended, ns. */
  deviceBeginNs: bigint | undefined;
  deviceEndNs: bigint | undefined;
  /** CLOCK_MONOTONIC when it was submitted, and when its completion was first seen, ns. */
  submitNs: bigint;
  completeNs: bigint;
}

/** Callbacks of {@link ComputeDevice.submit}. */
export interface SubmitHooks {
  /** The batch's work starts on the device now (its time limit counts from here). */
  started?(): void;
}

/** A device that runs compute work. */
export interface ComputeDevice {
  readonly info: DeviceInfo;
  /**
   * Make `buffer` usable by commands (zero copy where the device can import it: page-aligned
   * address and size). The backend keeps `buffer` referenced until the memory is destroyed.
   */
  importMemory(buffer: ArrayBuffer | ArrayBufferView, options?: ImportOptions): BackendMemory;
  /** Import `size` bytes of the file `fd` at `offset` (page aligned); the backend maps it itself and does not keep `fd`. */
  importFd(fd: number, offset: number, size: number, options?: ImportOptions): BackendMemory;
  /**
   * Validate SPIR-V and build a kernel, without blocking the event loop: a kernel may take long
   * to check and compile, and the guest that sent it may be hostile. `owner` (a vGPU name) is
   * who asked, for fair ordering and for blame when a build fails by time or memory. Rejects
   * with a {@link BackendError} (a {@link KernelBuildError} where the device can say more).
   */
  buildKernel(spirv: Uint32Array, options: KernelOptions, owner?: string): Promise<BackendKernel>;
  /**
   * Start a batch on `memory`. Resolves when the device has completed it (its writes are then
   * visible in host memory); rejects with a {@link BackendError} if the batch is refused or the
   * device fails, or with a ContextLostError (src/execution-errors.ts) if the device was reset
   * under it. Never blocks the event loop while the device works. `hooks.started` is called
   * when the batch's work really starts on the device.
   */
  submit(memory: BackendMemory, commands: readonly Command[], hooks?: SubmitHooks): Promise<SubmissionStatus>;
  /** Batches submitted and not yet settled. */
  readonly pending: number;
  /** Wait for pending batches, then release the device and everything made on it. Idempotent. */
  destroy(): Promise<void>;
  /**
   * Stop whatever runs on the device, failing its batches, and carry on with everything made on
   * it (where the device can: the isolated device in `isolated.ts`). For a batch that will not end.
   */
  reset?(reason: string): void;
  /** A promise while the device cannot run batches yet (starting, or back from a reset), else null. */
  whenReady?(): Promise<void> | null;
  /** Resets so far (devices that can reset). */
  readonly resets?: number;
  /** The process running the device's batches, where that is not this one. */
  readonly workerPid?: number | null;
}

/** A failed backend call: `code` is the errno name (`EINVAL`), `errno` negative, `call` the C function. */
export class BackendError extends Error {
  override readonly name: string = 'BackendError';

  constructor(
    readonly code: string,
    readonly errno: number,
    readonly call: string,
    message: string,
  ) {
    super(message);
  }
}

/**
 * A kernel build that failed, and how: `invalid` SPIR-V (refused by validation or by the
 * driver: the guest's fault, cheap), or a build that ran past its time limit or crashed the
 * process it ran in (`timeout`, `crash`: expensive for everyone, so they count against the
 * vGPU that asked, see src/sched/strikes.ts).
 */
export class KernelBuildError extends BackendError {
  override readonly name = 'KernelBuildError';

  constructor(
    readonly fault: 'invalid' | 'timeout' | 'crash' | 'busy' | 'unavailable',
    code: string,
    errno: number,
    message: string,
  ) {
    super(code, errno, 'mdgpu_host_kernel_create', message);
  }
}
