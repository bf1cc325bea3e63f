/**
 * The one command shape of a batch, from the validator to the host driver's C ABI: what the
 * device model (src/vgpu) produces after validating a guest's submission, what the executor
 * (src/exec) hands the compute device (src/backend) unchanged, and what the host driver encodes
 * into `struct mdgpu_host_cmd2`. Every range is a byte range of the one memory a batch runs on
 * (a vGPU's aperture); a kernel is whatever object the compute device gave out for it, carried
 * through opaquely. Like execution-errors.ts, every layer may import this file; it imports
 * nothing.
 */

/** A byte range of the batch's memory (a vGPU's aperture). */
export interface MemoryRange {
  readonly offset: number;
  readonly size: number;
}

/** Descriptor types (contract 1.3): a storage or a uniform buffer. */
export type DescriptorType = 'storage' | 'uniform';

/** One descriptor of a dispatch: `range` bound at (set, binding, array index). */
export interface Descriptor<R extends MemoryRange = MemoryRange> {
  readonly set: number;
  readonly binding: number;
  readonly index: number;
  readonly type: DescriptorType;
  readonly range: R;
}

/** A descriptor binding a kernel declares, reflected from its SPIR-V by the host driver. */
export interface KernelBinding {
  readonly set: number;
  readonly binding: number;
  readonly type: DescriptorType;
  /** Array size (1 for a single descriptor). */
  readonly count: number;
}

/**
 * One command. `K` is how the kernel of a dispatch is named: the compute device's kernel object
 * on the way to the device; the guest's kernel handle inside the device model.
 */
export type DeviceCommand<K = unknown, R extends MemoryRange = MemoryRange> =
  /** Copy `src.size` bytes (any alignment); the ranges must not overlap. */
  | { readonly kind: 'copy'; readonly src: R; readonly dst: R }
  /** Fill with a 32-bit value; offset and size multiples of 4. */
  | { readonly kind: 'fill'; readonly dst: R; readonly value: number }
  /** Write `data` (≤ 64 KiB, a multiple of 4 bytes) at `dst` (a multiple of 4). */
  | { readonly kind: 'update'; readonly dst: R; readonly data: Uint8Array }
  /**
   * Run `kernel` on workgroups `base` .. `base + groups - 1`. Descriptors the kernel declares and
   * the command leaves out are bound to a small zeroed buffer of the host's. `numWorkgroups` is
   * what the kernel's NumWorkgroups reads when the dispatch is one range of a larger one (the
   * scheduler splits long dispatches, src/exec/batch-parts.ts): the whole dispatch's count;
   * left out, it is `groups` (Vulkan's meaning). Only a kernel that is `splittable` (or does not
   * read NumWorkgroups) may be given another count.
   */
  | {
      readonly kind: 'dispatch';
      readonly kernel: K;
      readonly base: readonly [number, number, number];
      readonly groups: readonly [number, number, number];
      readonly numWorkgroups?: readonly [number, number, number];
      readonly descriptors: readonly Descriptor<R>[];
      readonly pushConstants: Uint8Array;
    }
  /** Write the device time (u64 ns) when every earlier command completed, at an 8-aligned offset. */
  | { readonly kind: 'timestamp'; readonly dst: R }
  /** Every earlier command's writes are visible to every later command. */
  | { readonly kind: 'barrier' };
