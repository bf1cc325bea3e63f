/**
 * libmdgpu-host (`host-driver/`, C, Vulkan compute) through koffi, as a {@link ComputeDevice}.
 *
 * Why koffi and not a node-addon-api addon or ffi-napi: the library already has a narrow C ABI
 * of plain structs and integer handles, so a foreign-function interface needs no C++ of ours.
 * ffi-napi/ref-napi do not install on Node 20 (build failure) and cost 5–24 µs a call; koffi
 * ships prebuilt binaries in its npm package and costs ~0.1 µs a call (50–200× less).
 *
 * The structs of `host-driver/include/mdgpu_host.h` are declared once, below, as koffi types.
 * Outputs (device info, capabilities) are decoded by koffi. A batch is encoded by hand into the
 * host driver's own records (host-records.ts: the one encoder, shared with the daemon, which
 * never loads this library); when this module loads it checks that encoder's layouts against
 * the declarations below, and the C library asserts the sizes statically.
 *
 * Batches go through a submission ring (ring.ts, `mdgpu_host_ring_create`), the same data path
 * as the daemon's compute worker: `submit` encodes the batch straight into the ring's shared
 * memory and takes it on this thread (`mdgpu_host_ring_take`: `mdgpu_host_submit2` with every
 * check, and the batch is on the device when `submit` returns); the library's ring service
 * thread then waits for the fence itself and posts the completion, and an eventfd watched on
 * the event loop settles the Promise. No libuv pool thread waits, no thread hop is added to
 * the submission, nothing is allocated per batch but what the caller gets back. The ring is
 * made at the first `submit` (a device that only builds kernels, like the kernel builder's,
 * never has one). A device can also serve a ring another process writes (`ring` of
 * {@link OpenOptions}: the compute worker of isolated.ts), binding that process's ids to its
 * memories and kernels.
 *
 * Kernels without blocking the JS thread: `createKernelAsync` runs `mdgpu_host_kernel_create2`
 * on a koffi worker thread (checking and compiling a large module takes seconds); the library
 * does not hold the device lock meanwhile, so batches keep completing. The error text comes
 * back in a buffer, since the worker thread's `mdgpu_host_last_error` is out of reach. Every
 * kernel, contract 1.1's included (`bindings` given), is made by `mdgpu_host_kernel_create2`;
 * what it declares (its descriptor layout, local size) comes back from `mdgpu_host_kernel_info`.
 */
import koffi, { type LibraryHandle, type TypeObject } from 'koffi';
import { existsSync } from 'node:fs';
import { constants } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { DescriptorType, KernelBinding } from '../device-commands.js';
import { errnoName } from '../errno.js';
import { loadNative, type NativeBinding } from '../native/binding.js';
import {
  BackendError,
  type BackendKernel,
  type BackendMemory,
  type Command,
  type ComputeDevice,
  type DeviceCaps,
  type DeviceInfo,
  type ImportOptions,
  type KernelOptions,
  type Robustness,
  type SubmissionStatus,
  type SubmitHooks,
} from './backend.js';
import { BatchEncoder, CMD2, checkIndex, DESCRIPTOR, STATUS } from './host-records.js';
import { RingClient, RingKind, RingMemory, ringRequest } from './ring.js';

export { Op } from './host-records.js';

/** The library's path relative to the package root. */
export const HOST_DRIVER_PATH = 'host-driver/build/libmdgpu-host.so';
/** The ABI major version this binding speaks (`MDGPU_HOST_ABI_MAJOR`). */
export const ABI_MAJOR = 2;
/** The least ABI minor version it needs (2.1: capabilities, kernel_create2, submit2; 2.2: the ring service). */
export const ABI_MINOR = 2;
/** How long the ring service waits for a running batch before it looks for new ones, ns. */
export const WAIT_SLICE_NS = 2_000_000n;
/**
 * Kernels one device compiles at once on koffi's worker threads ({@link HostDevice.createKernelAsync});
 * more wait their turn. Those threads are libuv's pool (4 by default), which Node's own file
 * and DNS work also need: a few slow compiles must not take them all.
 */
export const COMPILE_THREADS = 2;
/** Bytes of the error text `mdgpu_host_kernel_create2` copies back (as `last_error`). */
const ERROR_TEXT_SIZE = 1024;

// ---- the ABI, declared once (host-driver/include/mdgpu_host.h) ----

const u32 = 'uint32_t';
const u64 = 'uint64_t';

const DeviceInfoT = koffi.struct('mdgpu_host_device_info', {
  name: koffi.array('char', 256),
  driver_name: koffi.array('char', 256),
  driver_info: koffi.array('char', 256),
  backend: koffi.array('char', 16),
  index: u32,
  device_type: u32,
  vendor_id: u32,
  device_id: u32,
  api_version: u32,
  driver_version: u32,
  flags: u32,
  max_push_constant_size: u32,
  max_bindings: u32,
  max_workgroup_count: koffi.array(u32, 3, 'Array'),
  max_workgroup_size: koffi.array(u32, 3, 'Array'),
  max_workgroup_invocations: u32,
  timestamp_valid_bits: u32,
  timestamp_period_ns: 'float',
  min_import_alignment: u64,
  min_binding_alignment: u64,
  max_binding_size: u64,
  max_memory_size: u64,
  max_shared_memory_size: u32,
  robustness: u32,
  robust_access_alignment: u32,
  max_kernel_private_size: u32,
  max_kernel_type_depth: u32,
  max_kernel_type_paths: u32,
  max_kernel_module_paths: u32,
  reserved: koffi.array(u32, 19, 'Array'),
});
const MemoryInfoT = koffi.struct('mdgpu_host_memory_info', { size: u64, host_address: u64, flags: u32, pad: u32 });
const CopyT = koffi.struct('mdgpu_host_cmd_copy', {
  src_mem: u32,
  dst_mem: u32,
  src_offset: u64,
  dst_offset: u64,
  size: u64,
});
const FillT = koffi.struct('mdgpu_host_cmd_fill', { mem: u32, value: u32, offset: u64, size: u64 });
const TimestampT = koffi.struct('mdgpu_host_cmd_timestamp', { mem: u32, pad: u32, offset: u64 });
const StatusT = koffi.struct('mdgpu_host_status', {
  submission: u64,
  result: 'int32_t',
  flags: u32,
  device_begin_ns: u64,
  device_end_ns: u64,
  device_ns: u64,
  submit_ns: u64,
  complete_ns: u64,
});
// ---- ABI 2.1 ----
const CapsT = koffi.struct('mdgpu_host_caps', {
  size: u32,
  features: u32,
  pipeline_cache_uuid: koffi.array('uint8_t', 16),
  driver_version: u32,
  max_bound_descriptor_sets: u32,
  max_per_stage_storage_buffers: u32,
  max_per_stage_uniform_buffers: u32,
  max_set_storage_buffers: u32,
  max_set_uniform_buffers: u32,
  max_storage_buffer_range: u32,
  max_uniform_buffer_range: u32,
  min_storage_offset_alignment: u32,
  min_uniform_offset_alignment: u32,
  subgroup_size: u32,
  subgroup_operations: u32,
  max_memory_allocation_size: u64,
  reserved: koffi.array(u32, 16, 'Array'),
});
const SpecEntryT = koffi.struct('mdgpu_host_spec_entry', { constant_id: u32, offset: u32, size: u32, pad: u32 });
// Pointers as `const void *`: koffi passes a TypedArray's own memory for them, no copy.
const KernelDescT = koffi.struct('mdgpu_host_kernel_desc', {
  words: 'const void *',
  word_count: u32,
  flags: u32,
  entry: 'const char *',
  spec_entries: 'const void *',
  spec_entry_count: u32,
  spec_data_size: u32,
  spec_data: 'const void *',
  push_size: u32,
  legacy_bindings: 'int32_t',
  reserved: koffi.array(u32, 4, 'Array'),
});
const KernelBindingT = koffi.struct('mdgpu_host_kernel_binding', { set: u32, binding: u32, type: u32, count: u32 });
const KernelInfoT = koffi.struct('mdgpu_host_kernel_info', {
  binding_count: u32,
  local_size: koffi.array(u32, 3, 'Array'),
  push_size: u32,
  flags: u32,
  reserved: koffi.array(u32, 6, 'Array'),
});
const DescriptorT = koffi.struct('mdgpu_host_descriptor', {
  mem: u32,
  set: u32,
  binding: u32,
  index: u32,
  type: u32,
  pad: u32,
  offset: u64,
  range: u64,
});
const UpdateT = koffi.struct('mdgpu_host_cmd_update', { mem: u32, size: u32, offset: u64, data_offset: u32, pad: u32 });
const Dispatch2T = koffi.struct('mdgpu_host_cmd_dispatch2', {
  kernel: u32,
  first_descriptor: u32,
  descriptor_count: u32,
  push_offset: u32,
  push_size: u32,
  base: koffi.array(u32, 3, 'Array'),
  groups: koffi.array(u32, 3, 'Array'),
  num_workgroups: koffi.array(u32, 3, 'Array'),
});
const Cmd2ArgsT = koffi.union('mdgpu_host_cmd2_args', {
  copy: CopyT,
  fill: FillT,
  timestamp: TimestampT,
  update: UpdateT,
  dispatch2: Dispatch2T,
  raw: koffi.array('uint8_t', 56),
});
const Cmd2T = koffi.struct('mdgpu_host_cmd2', { op: u32, flags: u32, u: Cmd2ArgsT });

// ---- ABI 2.2 ----
const RingDescT = koffi.struct('mdgpu_host_ring_desc', {
  fd: 'int32_t',
  submit_event: 'int32_t',
  complete_event: 'int32_t',
  flags: u32,
  wait_slice_ns: u64,
  started_delay_ns: u64,
  reserved: koffi.array(u32, 8, 'Array'),
});

/** The koffi struct types, for layout tests. */
export const abiTypes = {
  DeviceInfoT,
  MemoryInfoT,
  CopyT,
  FillT,
  TimestampT,
  StatusT,
  CapsT,
  SpecEntryT,
  KernelDescT,
  KernelBindingT,
  KernelInfoT,
  DescriptorT,
  UpdateT,
  Dispatch2T,
  Cmd2ArgsT,
  Cmd2T,
  RingDescT,
} as const;

/** Byte offset of `field` of `type` (from the declaration above). */
function off(type: TypeObject, field: string): number {
  return koffi.offsetof(type, field);
}

/**
 * The encoder's layouts (host-records.ts, plain numbers so that the daemon needs no koffi) are
 * these declarations': a mismatch is a build error, reported the moment this module loads.
 */
function checkEncoderLayouts(): void {
  const u = off(Cmd2T, 'u');
  const pairs: [string, number, number][] = [
    ['cmd2 size', CMD2.size, koffi.sizeof(Cmd2T)],
    ['cmd2.op', CMD2.op, off(Cmd2T, 'op')],
    ['cmd2.flags', CMD2.flags, off(Cmd2T, 'flags')],
    ['cmd2.u', CMD2.u, u],
    ['copy.src_mem', CMD2.copy.srcMem, u + off(CopyT, 'src_mem')],
    ['copy.dst_mem', CMD2.copy.dstMem, u + off(CopyT, 'dst_mem')],
    ['copy.src_offset', CMD2.copy.srcOffset, u + off(CopyT, 'src_offset')],
    ['copy.dst_offset', CMD2.copy.dstOffset, u + off(CopyT, 'dst_offset')],
    ['copy.size', CMD2.copy.size, u + off(CopyT, 'size')],
    ['fill.mem', CMD2.fill.mem, u + off(FillT, 'mem')],
    ['fill.value', CMD2.fill.value, u + off(FillT, 'value')],
    ['fill.offset', CMD2.fill.offset, u + off(FillT, 'offset')],
    ['fill.size', CMD2.fill.size, u + off(FillT, 'size')],
    ['timestamp.mem', CMD2.timestamp.mem, u + off(TimestampT, 'mem')],
    ['timestamp.offset', CMD2.timestamp.offset, u + off(TimestampT, 'offset')],
    ['update.mem', CMD2.update.mem, u + off(UpdateT, 'mem')],
    ['update.size', CMD2.update.size, u + off(UpdateT, 'size')],
    ['update.offset', CMD2.update.offset, u + off(UpdateT, 'offset')],
    ['update.data_offset', CMD2.update.dataOffset, u + off(UpdateT, 'data_offset')],
    ['dispatch2.kernel', CMD2.dispatch2.kernel, u + off(Dispatch2T, 'kernel')],
    ['dispatch2.first_descriptor', CMD2.dispatch2.firstDescriptor, u + off(Dispatch2T, 'first_descriptor')],
    ['dispatch2.descriptor_count', CMD2.dispatch2.descriptorCount, u + off(Dispatch2T, 'descriptor_count')],
    ['dispatch2.push_offset', CMD2.dispatch2.pushOffset, u + off(Dispatch2T, 'push_offset')],
    ['dispatch2.push_size', CMD2.dispatch2.pushSize, u + off(Dispatch2T, 'push_size')],
    ['dispatch2.base', CMD2.dispatch2.base, u + off(Dispatch2T, 'base')],
    ['dispatch2.groups', CMD2.dispatch2.groups, u + off(Dispatch2T, 'groups')],
    ['dispatch2.num_workgroups', CMD2.dispatch2.numWorkgroups, u + off(Dispatch2T, 'num_workgroups')],
    ['descriptor size', DESCRIPTOR.size, koffi.sizeof(DescriptorT)],
    ['descriptor.mem', DESCRIPTOR.mem, off(DescriptorT, 'mem')],
    ['descriptor.set', DESCRIPTOR.set, off(DescriptorT, 'set')],
    ['descriptor.binding', DESCRIPTOR.binding, off(DescriptorT, 'binding')],
    ['descriptor.index', DESCRIPTOR.index, off(DescriptorT, 'index')],
    ['descriptor.type', DESCRIPTOR.type, off(DescriptorT, 'type')],
    ['descriptor.offset', DESCRIPTOR.offset, off(DescriptorT, 'offset')],
    ['descriptor.range', DESCRIPTOR.range, off(DescriptorT, 'range')],
    ['status size', STATUS.size, koffi.sizeof(StatusT)],
    ['status.submission', STATUS.submission, off(StatusT, 'submission')],
    ['status.result', STATUS.result, off(StatusT, 'result')],
    ['status.flags', STATUS.flags, off(StatusT, 'flags')],
    ['status.device_begin_ns', STATUS.deviceBeginNs, off(StatusT, 'device_begin_ns')],
    ['status.device_end_ns', STATUS.deviceEndNs, off(StatusT, 'device_end_ns')],
    ['status.device_ns', STATUS.deviceNs, off(StatusT, 'device_ns')],
    ['status.submit_ns', STATUS.submitNs, off(StatusT, 'submit_ns')],
    ['status.complete_ns', STATUS.completeNs, off(StatusT, 'complete_ns')],
  ];
  const wrong = pairs.filter(([, encoder, declared]) => encoder !== declared);
  if (wrong.length > 0) {
    throw new Error(`host-records.ts disagrees with the ABI declarations: ${wrong.map(([f, e, d]) => `${f} ${e} ≠ ${d}`).join(', ')}`);
  }
}
checkEncoderLayouts();

const SPEC_ENTRY_SIZE = koffi.sizeof(SpecEntryT);
const KERNEL_BINDING_SIZE = koffi.sizeof(KernelBindingT);
const CAPS_SIZE = koffi.sizeof(CapsT);

const DESCRIPTOR_TYPE_NAMES: readonly DescriptorType[] = ['storage', 'uniform'];

/** Library limits of ABI 2.1 (`mdgpu_host.h`). */
export const MAX_ENTRY_NAME = 255; // MDGPU_HOST_MAX_ENTRY_NAME
/** Descriptors a kernel may declare at most (storage plus uniform, MDGPU_HOST_MAX_STAGE_DESCRIPTORS each). */
export const MAX_KERNEL_DESCRIPTORS = 256;

// Flags of the C ABI, by their `MDGPU_HOST_*` names (test/backend/host-abi.test.ts compares every
// one with the header, compiled).
export const KERNEL_DISPATCH_BASE = 1 << 0;
export const KERNEL_SPLITTABLE = 0x8000_0000;
export const DEVICE_HOST_IMPORT = 1 << 0;
export const DEVICE_ROBUST_ACCESS = 1 << 1;
export const DEVICE_TIMESTAMPS = 1 << 2;
export const DEVICE_CPU_TIMESTAMPS = 1 << 3;
export const OPEN_CPU_TIMESTAMPS = 1 << 0;
export const MEMORY_STAGED = 1 << 0;
export const MEMORY_ZERO_COPY = 1 << 1;

type Fn = ReturnType<LibraryHandle['func']>;

/** The loaded library: one koffi function per export. */
export interface HostDriverLibrary {
  readonly path: string;
  readonly abiVersion: number;
  readonly fn: {
    lastError: Fn;
    enumerate: Fn;
    deviceOpen: Fn;
    deviceInfo: Fn;
    deviceDestroy: Fn;
    memoryImport: Fn;
    memoryImportFd: Fn;
    memoryInfo: Fn;
    memoryDestroy: Fn;
    kernelDestroy: Fn;
    poll: Fn;
    wait: Fn;
    enumerateCaps: Fn;
    kernelCreate2: Fn;
    kernelInfo: Fn;
    submit2: Fn;
    ringCreate: Fn;
    ringBind: Fn;
    ringTake: Fn;
    ringDestroy: Fn;
  };
}

function findPackageRoot(from: string): string {
  for (let dir = from; ; dir = dirname(dir)) {
    if (existsSync(join(dir, 'package.json'))) return dir;
    if (dirname(dir) === dir) throw new Error(`No package.json at or above ${from}`);
  }
}

/**
 * Load libmdgpu-host from `file` (uncached). Builds nothing: a missing, unloadable or stale
 * library is an Error that says to run `make -C host-driver`.
 */
export function loadHostDriverFrom(file: string): HostDriverLibrary {
  const root = findPackageRoot(dirname(file));
  const hint = `run \`make -C host-driver\` in ${root} (needs libvulkan-dev, spirv-tools, glslang-tools)`;
  if (!existsSync(file)) throw new Error(`mdgpu host driver not built: ${file} is missing; ${hint}`);
  let lib: LibraryHandle;
  try {
    lib = koffi.load(file);
  } catch (cause) {
    throw new Error(`mdgpu host driver failed to load from ${file} (is libvulkan1 installed?); ${hint}`, { cause });
  }
  let abiVersion: number;
  try {
    abiVersion = lib.func('uint32_t mdgpu_host_abi_version(void)')() as number;
  } catch (cause) {
    throw new Error(`mdgpu host driver at ${file} lacks mdgpu_host_abi_version; ${hint}`, { cause });
  }
  if (abiVersion >>> 16 !== ABI_MAJOR || (abiVersion & 0xffff) < ABI_MINOR) {
    throw new Error(
      `mdgpu host driver at ${file} has ABI ${abiVersion >>> 16}.${abiVersion & 0xffff}, need ${ABI_MAJOR}.${ABI_MINOR} or a later ${ABI_MAJOR}.x; ${hint}`,
    );
  }
  const fn = {
    lastError: lib.func('const char *mdgpu_host_last_error(void)'),
    enumerate: lib.func('int32_t mdgpu_host_enumerate(uint32_t index, _Out_ mdgpu_host_device_info *info)'),
    deviceOpen: lib.func('int32_t mdgpu_host_device_open(const char *selector, uint32_t flags, _Out_ uint32_t *out)'),
    deviceInfo: lib.func('int32_t mdgpu_host_device_info(uint32_t device, _Out_ mdgpu_host_device_info *info)'),
    deviceDestroy: lib.func('int32_t mdgpu_host_device_destroy(uint32_t device)'),
    memoryImport: lib.func('int32_t mdgpu_host_memory_import(uint32_t device, void *ptr, uint64_t size, uint32_t flags, _Out_ uint32_t *out)'),
    memoryImportFd: lib.func(
      'int32_t mdgpu_host_memory_import_fd(uint32_t device, int32_t fd, uint64_t offset, uint64_t size, uint32_t flags, _Out_ uint32_t *out)',
    ),
    memoryInfo: lib.func('int32_t mdgpu_host_memory_info(uint32_t device, uint32_t mem, _Out_ mdgpu_host_memory_info *info)'),
    memoryDestroy: lib.func('int32_t mdgpu_host_memory_destroy(uint32_t device, uint32_t mem)'),
    kernelDestroy: lib.func('int32_t mdgpu_host_kernel_destroy(uint32_t device, uint32_t kernel)'),
    poll: lib.func('int32_t mdgpu_host_poll(uint32_t device, uint64_t submission, _Out_ mdgpu_host_status *status)'),
    wait: lib.func('int32_t mdgpu_host_wait(uint32_t device, uint64_t submission, uint64_t timeout_ns, _Out_ mdgpu_host_status *status)'),
    // caps goes in as bytes: its size field is read by the library (koffi.decode afterwards).
    enumerateCaps: lib.func('int32_t mdgpu_host_enumerate_caps(uint32_t index, void *caps)'),
    // Also for async calls (a koffi worker thread): the error text comes back in a buffer of ours.
    kernelCreate2: lib.func(
      'int32_t mdgpu_host_kernel_create2(uint32_t device, const mdgpu_host_kernel_desc *desc, _Out_ uint32_t *out, void *error, uint32_t error_size)',
    ),
    kernelInfo: lib.func(
      'int32_t mdgpu_host_kernel_info(uint32_t device, uint32_t kernel, _Out_ mdgpu_host_kernel_info *info, void *bindings, uint32_t capacity)',
    ),
    // Commands, descriptors and data go in as bytes (see the top of this file); out is a BigUint64Array.
    submit2: lib.func(
      'int32_t mdgpu_host_submit2(uint32_t device, const void *cmds, uint32_t cmd_count, const void *descriptors, uint32_t descriptor_count, const void *data, uint32_t data_size, void *out)',
    ),
    ringCreate: lib.func('int32_t mdgpu_host_ring_create(uint32_t device, const mdgpu_host_ring_desc *desc, _Out_ uint32_t *out)'),
    ringBind: lib.func('int32_t mdgpu_host_ring_bind(uint32_t ring, uint32_t kind, uint32_t id, uint32_t handle)'),
    ringTake: lib.func('int32_t mdgpu_host_ring_take(uint32_t ring)'),
    ringDestroy: lib.func('int32_t mdgpu_host_ring_destroy(uint32_t ring)'),
  };
  return { path: file, abiVersion, fn };
}

let cached: HostDriverLibrary | undefined;

/** libmdgpu-host from this package's `host-driver/build/`, loaded once. */
export function loadHostDriver(): HostDriverLibrary {
  if (cached === undefined) {
    const root = findPackageRoot(dirname(fileURLToPath(import.meta.url)));
    cached = loadHostDriverFrom(join(root, HOST_DRIVER_PATH));
  }
  return cached;
}

// ---- errors ----

function fail(lib: HostDriverLibrary, call: string, ret: number, detail?: string): BackendError {
  const code = errnoName(-ret); // the C ABI returns -errno
  const why = detail ?? ((lib.fn.lastError() as string | null) || 'no detail');
  return new BackendError(code, ret, call, `Host driver ${call} failed with ${code}: ${why}`);
}

// ---- decoding ----

interface RawInfo {
  name: string;
  driver_name: string;
  driver_info: string;
  backend: string;
  index: number;
  device_type: number;
  vendor_id: number;
  device_id: number;
  api_version: number;
  flags: number;
  max_push_constant_size: number;
  max_bindings: number;
  max_workgroup_count: number[];
  max_workgroup_size: number[];
  max_workgroup_invocations: number;
  timestamp_valid_bits: number;
  timestamp_period_ns: number;
  min_import_alignment: number | bigint;
  min_binding_alignment: number | bigint;
  max_binding_size: number | bigint;
  max_memory_size: number | bigint;
  max_shared_memory_size: number;
  robustness: number;
  robust_access_alignment: number;
  max_kernel_private_size: number;
  max_kernel_type_depth: number;
  max_kernel_type_paths: number;
  max_kernel_module_paths: number;
}

/** `enum mdgpu_host_robustness`, by its Vulkan feature name. */
export const ROBUSTNESS: Record<number, Robustness> = { 0: 'none', 1: 'robustBufferAccess', 2: 'robustBufferAccess2' };

function triple(a: number[]): [number, number, number] {
  return [a[0] ?? 0, a[1] ?? 0, a[2] ?? 0];
}

interface RawCaps {
  features: number;
  pipeline_cache_uuid: Uint8Array;
  driver_version: number;
  max_bound_descriptor_sets: number;
  max_per_stage_storage_buffers: number;
  max_per_stage_uniform_buffers: number;
  max_set_storage_buffers: number;
  max_set_uniform_buffers: number;
  max_storage_buffer_range: number;
  max_uniform_buffer_range: number;
  min_storage_offset_alignment: number;
  min_uniform_offset_alignment: number;
  subgroup_size: number;
  subgroup_operations: number;
  max_memory_allocation_size: number | bigint;
}

/** `MDGPU_HOST_FEATURE_*` bits by their Vulkan feature names. */
export const FEATURE_BITS = {
  shaderInt64: 1 << 0,
  shaderFloat64: 1 << 1,
  shaderInt16: 1 << 2,
  shaderInt8: 1 << 3,
  shaderFloat16: 1 << 4,
  storageBuffer16BitAccess: 1 << 5,
  uniformAndStorageBuffer16BitAccess: 1 << 6,
  storagePushConstant16: 1 << 7,
  storageBuffer8BitAccess: 1 << 8,
  uniformAndStorageBuffer8BitAccess: 1 << 9,
  storagePushConstant8: 1 << 10,
  variablePointersStorageBuffer: 1 << 12,
} as const;

/** The capabilities of the device at `index` (`mdgpu_host_enumerate_caps`). */
function enumerateCaps(lib: HostDriverLibrary, index: number): DeviceCaps {
  const bytes = new Uint8Array(CAPS_SIZE);
  new DataView(bytes.buffer).setUint32(0, CAPS_SIZE, true); // caps.size: the struct this binding knows
  const ret = lib.fn.enumerateCaps(index, bytes) as number;
  if (ret !== 0) throw fail(lib, 'mdgpu_host_enumerate_caps', ret);
  const raw = koffi.decode(bytes, CapsT) as RawCaps;
  const features = Object.fromEntries(Object.entries(FEATURE_BITS).map(([name, bit]) => [name, (raw.features & bit) !== 0]));
  return {
    features: features as unknown as DeviceCaps['features'],
    pipelineCacheUuid: Buffer.from(raw.pipeline_cache_uuid).toString('hex'),
    driverVersion: raw.driver_version,
    maxBoundDescriptorSets: raw.max_bound_descriptor_sets,
    maxPerStageDescriptorStorageBuffers: raw.max_per_stage_storage_buffers,
    maxPerStageDescriptorUniformBuffers: raw.max_per_stage_uniform_buffers,
    maxDescriptorSetStorageBuffers: raw.max_set_storage_buffers,
    maxDescriptorSetUniformBuffers: raw.max_set_uniform_buffers,
    maxStorageBufferRange: raw.max_storage_buffer_range,
    maxUniformBufferRange: raw.max_uniform_buffer_range,
    minStorageBufferOffsetAlignment: raw.min_storage_offset_alignment,
    minUniformBufferOffsetAlignment: raw.min_uniform_offset_alignment,
    subgroupSize: raw.subgroup_size,
    subgroupSupportedOperations: raw.subgroup_operations,
    maxMemoryAllocationSize: Number(raw.max_memory_allocation_size),
  };
}

function decodeInfo(raw: RawInfo, caps: DeviceCaps): DeviceInfo {
  const v = raw.api_version;
  return {
    name: raw.name,
    driverName: raw.driver_name,
    driverInfo: raw.driver_info,
    backend: raw.backend,
    index: raw.index,
    deviceType: raw.device_type,
    vendorId: raw.vendor_id,
    deviceId: raw.device_id,
    apiVersion: `${v >>> 22}.${(v >>> 12) & 0x3ff}.${v & 0xfff}`,
    hostImport: (raw.flags & DEVICE_HOST_IMPORT) !== 0,
    robustAccess: (raw.flags & DEVICE_ROBUST_ACCESS) !== 0,
    timestamps: (raw.flags & DEVICE_TIMESTAMPS) !== 0,
    cpuTimestamps: (raw.flags & DEVICE_CPU_TIMESTAMPS) !== 0,
    maxPushConstantSize: raw.max_push_constant_size,
    maxBindings: raw.max_bindings,
    robustness: ROBUSTNESS[raw.robustness] ?? 'none',
    robustAccessAlignment: raw.robust_access_alignment,
    maxWorkgroupCount: triple(raw.max_workgroup_count),
    maxComputeWorkGroupSize: triple(raw.max_workgroup_size),
    maxComputeWorkGroupInvocations: raw.max_workgroup_invocations,
    maxComputeSharedMemorySize: raw.max_shared_memory_size,
    maxKernelPrivateSize: raw.max_kernel_private_size,
    maxKernelTypeDepth: raw.max_kernel_type_depth,
    maxKernelTypePaths: raw.max_kernel_type_paths,
    maxKernelModulePaths: raw.max_kernel_module_paths,
    timestampValidBits: raw.timestamp_valid_bits,
    timestampPeriodNs: raw.timestamp_period_ns,
    minImportAlignment: Number(raw.min_import_alignment),
    minBindingAlignment: Number(raw.min_binding_alignment),
    maxBindingSize: Number(raw.max_binding_size),
    maxMemorySize: Number(raw.max_memory_size),
    caps,
  };
}

/** Describe every device the library sees, without opening any. */
export function listDevices(lib: HostDriverLibrary = loadHostDriver()): DeviceInfo[] {
  const out: DeviceInfo[] = [];
  for (let i = 0; ; i++) {
    const raw = {} as RawInfo;
    const ret = lib.fn.enumerate(i, raw) as number;
    if (ret === -constants.errno.ENOENT) return out;
    if (ret !== 0) throw fail(lib, 'mdgpu_host_enumerate', ret);
    out.push(decodeInfo(raw, enumerateCaps(lib, i)));
  }
}

/** SPIR-V bytes (e.g. a `.spv` file read with readFileSync) as 32-bit words, copied if unaligned. */
export function spirvWords(bytes: Uint8Array): Uint32Array {
  if (bytes.byteLength % 4 !== 0) throw new RangeError(`SPIR-V is ${bytes.byteLength} bytes, not a multiple of 4`);
  if (bytes.byteOffset % 4 === 0) return new Uint32Array(bytes.buffer, bytes.byteOffset, bytes.byteLength / 4);
  return new Uint32Array(bytes.slice().buffer);
}

// ---- objects ----

/** Memory imported into a {@link HostDevice}. */
export class HostMemory implements BackendMemory {
  #destroyed = false;
  /** @internal The id it is bound to in the device's ring (0: none yet); the ring owns the handle then. */
  ringId = 0;

  /** @internal */
  constructor(
    readonly device: HostDevice,
    /** The library's handle. */
    readonly handle: number,
    readonly size: number,
    readonly zeroCopy: boolean,
    /** Host address the library uses (the buffer's, or its own mapping of an fd). */
    readonly hostAddress: bigint,
    /** The imported buffer, kept referenced so the GC cannot free it under the device. */
    readonly buffer: ArrayBuffer | ArrayBufferView | undefined,
  ) {}

  get destroyed(): boolean {
    return this.#destroyed;
  }

  destroy(): void {
    if (this.#destroyed) return;
    this.#destroyed = true;
    this.device.release('mdgpu_host_memory_destroy', this.handle, this.ringId);
  }
}

/** A kernel built on a {@link HostDevice}: what it declares comes from `mdgpu_host_kernel_info`. */
export class HostKernel implements BackendKernel {
  #destroyed = false;
  /** @internal The id it is bound to in the device's ring (0: none yet); the ring owns the handle then. */
  ringId = 0;

  /** @internal */
  constructor(
    readonly device: HostDevice,
    readonly handle: number,
    readonly layout: readonly KernelBinding[],
    readonly pushConstantSize: number,
    readonly localSize: readonly [number, number, number],
    readonly dispatchBase: boolean,
    readonly splittable: boolean,
  ) {}

  get destroyed(): boolean {
    return this.#destroyed;
  }

  destroy(): void {
    if (this.#destroyed) return;
    this.#destroyed = true;
    this.device.release('mdgpu_host_kernel_destroy', this.handle, this.ringId);
  }
}

/** A kernel waiting for, or on, a compile thread. */
interface CompileJob {
  desc: KernelDesc;
  resolve: (kernel: HostKernel) => void;
  reject: (err: Error) => void;
}

/**
 * `struct mdgpu_host_kernel_desc` as koffi converts it; its arrays (the SPIR-V words, the
 * specialization entries and data) stay referenced by it until the call returns.
 */
interface KernelDesc {
  words: Uint32Array;
  word_count: number;
  flags: number;
  entry: string | null;
  spec_entries: Uint8Array | null;
  spec_entry_count: number;
  spec_data_size: number;
  spec_data: Uint8Array | null;
  push_size: number;
  legacy_bindings: number;
  reserved: number[];
}

const utf8 = new TextEncoder();

/** Check {@link KernelOptions} (TypeError, RangeError) and encode them with `spirv`. */
function kernelDesc(call: string, spirv: Uint32Array, options: KernelOptions, copy: boolean): KernelDesc {
  if (!(spirv instanceof Uint32Array)) {
    throw Object.assign(new TypeError(`${call}: spirv must be a Uint32Array (see spirvWords)`), { code: 'ERR_INVALID_ARG_TYPE' });
  }
  if (typeof options !== 'object' || options === null) {
    throw Object.assign(new TypeError(`${call}: options must be an object`), { code: 'ERR_INVALID_ARG_TYPE' });
  }
  const push = checkIndex('pushConstantSize', options.pushConstantSize, 0xffff_ffff);
  const legacy = options.bindings === undefined ? -1 : checkIndex('bindings', options.bindings, 0x7fff_ffff);
  let entry: string | null = null;
  if (options.entryPoint !== undefined) {
    if (typeof options.entryPoint !== 'string') {
      throw Object.assign(new TypeError(`${call}: entryPoint must be a string`), { code: 'ERR_INVALID_ARG_TYPE' });
    }
    const bytes = utf8.encode(options.entryPoint).length;
    if (bytes === 0 || bytes > MAX_ENTRY_NAME || options.entryPoint.includes('\0')) {
      throw Object.assign(new RangeError(`${call}: entryPoint must be 1..${MAX_ENTRY_NAME} bytes of UTF-8 without NUL, got ${bytes} bytes`), {
        code: 'ERR_OUT_OF_RANGE',
      });
    }
    entry = options.entryPoint;
  }
  let entries: Uint8Array | null = null;
  let data: Uint8Array | null = null;
  let count = 0;
  const spec = options.specialization;
  if (spec !== undefined) {
    if (typeof spec !== 'object' || spec === null || !Array.isArray(spec.entries) || !(spec.data instanceof Uint8Array)) {
      throw Object.assign(new TypeError(`${call}: specialization must be { entries: SpecEntry[], data: Uint8Array }`), {
        code: 'ERR_INVALID_ARG_TYPE',
      });
    }
    count = spec.entries.length;
    entries = new Uint8Array(Math.max(count, 1) * SPEC_ENTRY_SIZE);
    const dv = new DataView(entries.buffer);
    spec.entries.forEach((e, i) => {
      const at = i * SPEC_ENTRY_SIZE;
      dv.setUint32(at, checkIndex(`specialization.entries[${i}].constantId`, e?.constantId, 0xffff_ffff), true);
      dv.setUint32(at + 4, checkIndex(`specialization.entries[${i}].offset`, e?.offset, 0xffff_ffff), true);
      dv.setUint32(at + 8, checkIndex(`specialization.entries[${i}].size`, e?.size, 0xffff_ffff), true);
    });
    checkIndex('specialization.data.byteLength', spec.data.byteLength, 0xffff_ffff);
    data = spec.data.byteLength > 0 ? spec.data.slice() : null;
  }
  if (options.dispatchBase !== undefined && typeof options.dispatchBase !== 'boolean') {
    throw Object.assign(new TypeError(`${call}: dispatchBase must be a boolean`), { code: 'ERR_INVALID_ARG_TYPE' });
  }
  return {
    words: copy ? spirv.slice() : spirv,
    word_count: spirv.length,
    flags: options.dispatchBase === true ? KERNEL_DISPATCH_BASE : 0,
    entry,
    spec_entries: count > 0 ? entries : null,
    spec_entry_count: count,
    spec_data_size: data?.byteLength ?? 0,
    spec_data: data,
    push_size: push,
    legacy_bindings: legacy,
    reserved: [0, 0, 0, 0],
  };
}

/** A ring another process writes, for a device to serve (the compute worker's: isolated.ts). */
export interface ServedRing {
  /** The ring's memory (a memfd with its header written). */
  fd: number;
  /** eventfd the writer adds to after publishing records. */
  submitEvent: number;
  /** eventfd the service adds 1 to after publishing completions. */
  completeEvent: number;
}

/** Options of {@link HostDevice.open}. */
export interface OpenOptions {
  /** Which device: an index (`"1"`) or a case-insensitive name substring (`"llvmpipe"`); default: the first GPU, else lavapipe. */
  device?: string;
  /** Write TIMESTAMP values from the CPU at completion even where the device could (tests). */
  cpuTimestamps?: boolean;
  /** The library to use (default {@link loadHostDriver}). */
  library?: HostDriverLibrary;
  /** How long the ring service waits for a running batch before it looks for new ones (default {@link WAIT_SLICE_NS}). */
  waitSliceNs?: bigint;
  /** Kernels compiled at once by {@link HostDevice.createKernelAsync} (default {@link COMPILE_THREADS}). */
  compileThreads?: number;
  /**
   * Serve this ring, written by another process, instead of taking batches from this one:
   * {@link HostDevice.submit} is then refused, and that process's ids are bound to this device's
   * objects with {@link HostDevice.bind}.
   */
  ring?: ServedRing;
  /** Bytes of the submission area of the device's own ring (a power of two; default ring.ts's `SUBMIT_AREA_SIZE`). */
  submitAreaSize?: number;
  /**
   * Who takes a batch from the device's own ring: `'caller'` (default) takes it on the
   * submitting thread (`mdgpu_host_ring_take`); `'service'` rings the service thread's doorbell,
   * as a process writing a served ring does (for measuring the difference).
   */
  takeOn?: 'caller' | 'service';
}

/** The ring a device's batches go through. */
interface DeviceRing {
  handle: number;
  /** This process writes it: its memory and client. Null for a served ring. */
  client: RingClient | null;
}

/** A device opened through libmdgpu-host. */
export class HostDevice implements ComputeDevice {
  readonly info: DeviceInfo;
  readonly #lib: HostDriverLibrary;
  readonly #handle: number;
  #destroyed = false;
  #destroying: Promise<void> | undefined;
  readonly #options: OpenOptions;
  readonly #compileThreads: number;
  readonly #compileQueue: CompileJob[] = [];
  readonly #compiles = new Set<Promise<void>>(); // settle when their compile returns
  /** The ring batches go through: made at the first submit, or the one served (see the top of the file). */
  #ring: DeviceRing | null = null;
  #native: NativeBinding | null = null;
  /** The ring broke (see #client): no more batches. */
  #ringBroken: BackendError | null = null;
  #nextTag = 1;
  /** Kernels are named in the ring by their handles (bound in {@link submit}). */
  readonly #encoder = new BatchEncoder<unknown>((kernel) => (kernel as HostKernel).handle);
  /** mdgpu_host_kernel_info's bindings, for the largest layout a kernel can have. */
  readonly #kernelBindings = new Uint8Array(MAX_KERNEL_DESCRIPTORS * KERNEL_BINDING_SIZE);

  private constructor(lib: HostDriverLibrary, handle: number, options: OpenOptions, compileThreads: number) {
    this.#lib = lib;
    this.#handle = handle;
    this.#options = options;
    this.#compileThreads = compileThreads;
    const raw = {} as RawInfo;
    this.#check('mdgpu_host_device_info', lib.fn.deviceInfo(handle, raw) as number);
    // What the device enables is what enumerate_caps reports for its index.
    this.info = decodeInfo(raw, enumerateCaps(lib, raw.index));
  }

  /** Open a device (logs one line naming it, from the library, on stderr). */
  static open(options: OpenOptions = {}): HostDevice {
    const lib = options.library ?? loadHostDriver();
    const compileThreads = checkIndex('compileThreads', options.compileThreads ?? COMPILE_THREADS, 64);
    if (compileThreads < 1) throw Object.assign(new RangeError('compileThreads must be 1..64, got 0'), { code: 'ERR_OUT_OF_RANGE' });
    if (options.waitSliceNs !== undefined && (typeof options.waitSliceNs !== 'bigint' || options.waitSliceNs < 0n)) {
      throw Object.assign(new TypeError('waitSliceNs must be a bigint ≥ 0'), { code: 'ERR_INVALID_ARG_TYPE' });
    }
    const out = [0];
    const ret = lib.fn.deviceOpen(options.device ?? null, options.cpuTimestamps ? OPEN_CPU_TIMESTAMPS : 0, out) as number;
    if (ret !== 0) throw fail(lib, 'mdgpu_host_device_open', ret);
    const device = new HostDevice(lib, out[0]!, options, compileThreads);
    if (options.ring !== undefined) {
      try {
        device.#ring = { handle: device.#startService(options.ring), client: null };
      } catch (err) {
        lib.fn.deviceDestroy(out[0]!);
        throw err;
      }
    }
    return device;
  }

  /** Batches submitted and not yet settled. */
  get pending(): number {
    return this.#ring?.client?.pending ?? 0;
  }

  get destroyed(): boolean {
    return this.#destroyed;
  }

  #check(call: string, ret: number): void {
    if (ret !== 0) throw fail(this.#lib, call, ret);
  }

  #alive(call: string): void {
    if (this.#destroyed) throw new BackendError('ENOENT', -constants.errno.ENOENT, call, `Host driver ${call}: the device is destroyed`);
  }

  #memory(call: string, handle: number, buffer: ArrayBuffer | ArrayBufferView | undefined): HostMemory {
    const info = {} as { size: number | bigint; host_address: number | bigint; flags: number };
    this.#check(call, this.#lib.fn.memoryInfo(this.#handle, handle, info) as number);
    return new HostMemory(this, handle, Number(info.size), (info.flags & MEMORY_ZERO_COPY) !== 0, BigInt(info.host_address), buffer);
  }

  importMemory(buffer: ArrayBuffer | ArrayBufferView, options: ImportOptions = {}): HostMemory {
    this.#alive('mdgpu_host_memory_import');
    if (!(buffer instanceof ArrayBuffer) && !ArrayBuffer.isView(buffer)) {
      throw Object.assign(new TypeError('importMemory: buffer must be an ArrayBuffer or an ArrayBufferView'), {
        code: 'ERR_INVALID_ARG_TYPE',
      });
    }
    const out = [0];
    // koffi passes the buffer's own memory (byteOffset included), not a copy.
    const ret = this.#lib.fn.memoryImport(this.#handle, buffer, buffer.byteLength, options.staged ? MEMORY_STAGED : 0, out) as number;
    this.#check('mdgpu_host_memory_import', ret);
    return this.#memory('mdgpu_host_memory_info', out[0]!, buffer);
  }

  importFd(fd: number, offset: number, size: number, options: ImportOptions = {}): HostMemory {
    this.#alive('mdgpu_host_memory_import_fd');
    checkIndex('fd', fd, 0x7fff_ffff);
    checkIndex('offset', offset);
    checkIndex('size', size);
    const out = [0];
    const ret = this.#lib.fn.memoryImportFd(this.#handle, fd, offset, size, options.staged ? MEMORY_STAGED : 0, out) as number;
    this.#check('mdgpu_host_memory_import_fd', ret);
    return this.#memory('mdgpu_host_memory_info', out[0]!, undefined);
  }

  /**
   * Validate SPIR-V and build a kernel on this thread (see {@link createKernelAsync} for the
   * event loop's sake). `options.bindings` makes a contract 1.1 kernel (that many storage
   * buffers, set 0); without it the layout is what the module declares. Throws a BackendError
   * (EINVAL, E2BIG, EIO…) for what the library refuses, a TypeError or RangeError for options
   * of the wrong type.
   */
  createKernel(spirv: Uint32Array, options: KernelOptions): HostKernel {
    this.#alive('mdgpu_host_kernel_create2');
    const desc = kernelDesc('createKernel', spirv, options, false);
    const out = [0];
    const ret = this.#lib.fn.kernelCreate2(this.#handle, desc, out, null, 0) as number;
    this.#check('mdgpu_host_kernel_create2', ret);
    return this.#kernel(out[0]!);
  }

  /** A new kernel handle as a {@link HostKernel}: what it declares, from `mdgpu_host_kernel_info`. */
  #kernel(handle: number): HostKernel {
    const info = {} as { binding_count: number; local_size: number[]; push_size: number; flags: number };
    const bytes = this.#kernelBindings;
    const ret = this.#lib.fn.kernelInfo(this.#handle, handle, info, bytes, MAX_KERNEL_DESCRIPTORS) as number;
    if (ret !== 0) {
      this.#lib.fn.kernelDestroy(this.#handle, handle);
      throw fail(this.#lib, 'mdgpu_host_kernel_info', ret);
    }
    const dv = new DataView(bytes.buffer, bytes.byteOffset);
    const layout: KernelBinding[] = [];
    for (let i = 0; i < Math.min(info.binding_count, MAX_KERNEL_DESCRIPTORS); i++) {
      const at = i * KERNEL_BINDING_SIZE;
      layout.push(
        Object.freeze({
          set: dv.getUint32(at, true),
          binding: dv.getUint32(at + 4, true),
          type: DESCRIPTOR_TYPE_NAMES[dv.getUint32(at + 8, true)] ?? 'storage',
          count: dv.getUint32(at + 12, true),
        }),
      );
    }
    return new HostKernel(
      this,
      handle,
      Object.freeze(layout),
      info.push_size,
      Object.freeze(triple(info.local_size)),
      (info.flags & KERNEL_DISPATCH_BASE) !== 0,
      (info.flags & KERNEL_SPLITTABLE) !== 0,
    );
  }

  /**
   * {@link createKernel} on a koffi worker thread: checking and compiling a kernel (up to
   * seconds for a large module) never blocks the event loop, and batches keep completing
   * meanwhile (the library does not hold the device lock while it compiles). At most
   * `compileThreads` kernels compile at once per device; the others wait their turn. The
   * SPIR-V is copied first, so the caller may reuse `spirv` at once. Rejects as
   * createKernel throws (a BackendError: EINVAL, E2BIG…); `destroy()` waits for compiles
   * that have started and rejects those still waiting with ENOENT.
   */
  createKernelAsync(spirv: Uint32Array, options: KernelOptions): Promise<HostKernel> {
    // A throw in the executor rejects the promise.
    return new Promise<HostKernel>((resolve, reject) => {
      this.#alive('mdgpu_host_kernel_create2');
      this.#compileQueue.push({ desc: kernelDesc('createKernelAsync', spirv, options, true), resolve, reject });
      this.#nextCompile();
    });
  }

  /** Kernels being compiled or waiting to be ({@link createKernelAsync}). */
  get compiling(): number {
    return this.#compiles.size + this.#compileQueue.length;
  }

  /** Start queued compiles while fewer than `compileThreads` run. */
  #nextCompile(): void {
    while (this.#compiles.size < this.#compileThreads && this.#compileQueue.length > 0) {
      const job = this.#compileQueue.shift()!;
      const out = [0];
      const error = new Uint8Array(ERROR_TEXT_SIZE);
      const settled = new Promise<void>((done) => {
        const finish = (err: unknown, ret: number) => {
          this.#compiles.delete(settled);
          if (err) {
            job.reject(err instanceof Error ? err : new Error(String(err)));
          } else if (ret !== 0) {
            const end = error.indexOf(0);
            const why = new TextDecoder().decode(error.subarray(0, end < 0 ? error.length : end));
            job.reject(fail(this.#lib, 'mdgpu_host_kernel_create2', ret, why || 'no detail'));
          } else {
            try {
              job.resolve(this.#kernel(out[0]!));
            } catch (e) {
              job.reject(e as Error);
            }
          }
          done();
          this.#nextCompile();
        };
        try {
          // job.desc (its arrays) and error stay referenced by this closure until the call returns.
          this.#lib.fn.kernelCreate2.async(this.#handle, job.desc, out, error, ERROR_TEXT_SIZE, finish);
        } catch (err) {
          // koffi refused the async call (its queue of async calls is full).
          queueMicrotask(() => finish(err, -1));
        }
      });
      this.#compiles.add(settled);
    }
  }

  /** The {@link ComputeDevice} way to build: {@link createKernelAsync}, off the event loop. */
  buildKernel(spirv: Uint32Array, options: KernelOptions, _owner?: string): Promise<HostKernel> {
    return this.createKernelAsync(spirv, options);
  }

  /**
   * @internal Destroy a memory or kernel handle (HostMemory/HostKernel.destroy). Bound to the
   * device's ring (`ringId`), it is the ring's: released there after the batches submitted
   * before (a RELEASE record), or at once for a served ring.
   */
  release(call: 'mdgpu_host_memory_destroy' | 'mdgpu_host_kernel_destroy', handle: number, ringId = 0): void {
    if (this.#destroyed) return; // the device took everything with it
    const kind = call === 'mdgpu_host_memory_destroy' ? RingKind.Memory : RingKind.Kernel;
    const ring = this.#ring;
    if (ringId !== 0 && ring !== null) {
      if (ring.client !== null) ring.client.release(kind, ringId);
      else this.#check('mdgpu_host_ring_bind', this.#lib.fn.ringBind(ring.handle, kind, ringId, 0) as number);
      return;
    }
    const fn = kind === RingKind.Memory ? this.#lib.fn.memoryDestroy : this.#lib.fn.kernelDestroy;
    this.#check(call, fn(this.#handle, handle) as number);
  }

  /** Start the library's ring service on `ring`; its handle. */
  #startService(ring: ServedRing): number {
    const out = [0];
    const desc = {
      fd: ring.fd,
      submit_event: ring.submitEvent,
      complete_event: ring.completeEvent,
      flags: 0,
      wait_slice_ns: this.#options.waitSliceNs ?? WAIT_SLICE_NS,
      started_delay_ns: 0,
      reserved: [0, 0, 0, 0, 0, 0, 0, 0],
    };
    this.#check('mdgpu_host_ring_create', this.#lib.fn.ringCreate(this.#handle, desc, out) as number);
    return out[0]!;
  }

  /** The device's own ring, made now if it has none yet. */
  #client(): RingClient {
    if (this.#ringBroken !== null) throw this.#ringBroken;
    if (this.#ring !== null) {
      if (this.#ring.client === null) {
        throw new BackendError('EPERM', -constants.errno.EPERM, 'mdgpu_host_submit2', 'This device serves a ring another process writes: submit there');
      }
      return this.#ring.client;
    }
    const native = (this.#native ??= loadNative());
    const memory = RingMemory.create(native, this.#options.submitAreaSize);
    let handle = 0;
    try {
      handle = this.#startService({ fd: memory.fd, submitEvent: memory.submitEvent, completeEvent: memory.completeEvent });
      const takeHere = this.#options.takeOn !== 'service';
      const client: RingClient = new RingClient(native, memory, this.#encoder, {
        // In this process the submitting thread takes the batch itself: it is on the device
        // when submit returns, and its STARTED (or refusal) can be read at once.
        ...(takeHere
          ? {
              kick: () => {
                this.#lib.fn.ringTake(handle);
                client.drain();
              },
            }
          : {}),
        onBroken: (message) => {
          // Our own records are well formed: this is a bug (or memory corruption), not an input
          // to live with. Nothing more is submitted here; destroy() still releases everything.
          const err = new BackendError('EPROTO', -constants.errno.EPROTO, 'mdgpu_host_submit2', `Host driver ring: ${message}`);
          this.#ringBroken = err;
          for (const r of client.close()) r.reject(err);
        },
      });
      this.#ring = { handle, client };
      return client;
    } catch (err) {
      if (handle !== 0) this.#lib.fn.ringDestroy(handle);
      memory.close();
      throw err;
    }
  }

  /**
   * Bind `id` of the ring this device serves (another process's name for it) to `object`, a
   * memory or kernel of this device: batches in the ring that name `id` use it, and the ring
   * owns its handle from now on (`object.destroy()` then releases `id` at once).
   */
  bind(id: number, object: HostMemory | HostKernel): void {
    const ring = this.#ring;
    if (ring === null || ring.client !== null) throw new TypeError('bind: this device serves no ring (open it with `ring`)');
    if (object.device !== this || object.destroyed || object.ringId !== 0) throw new TypeError('bind: a live, unbound object of this device');
    checkIndex('id', id, 0xffff_ffff);
    const kind = object instanceof HostMemory ? RingKind.Memory : RingKind.Kernel;
    this.#check('mdgpu_host_ring_bind', this.#lib.fn.ringBind(ring.handle, kind, id, object.handle) as number);
    object.ringId = id;
  }

  /**
   * Release `id` of the ring this device serves now (destroying what it is bound to), without
   * waiting for records before; false if it was not bound.
   */
  unbind(kind: 'memory' | 'kernel', id: number): boolean {
    const ring = this.#ring;
    if (ring === null || ring.client !== null) throw new TypeError('unbind: this device serves no ring (open it with `ring`)');
    const ret = this.#lib.fn.ringBind(ring.handle, kind === 'memory' ? RingKind.Memory : RingKind.Kernel, checkIndex('id', id, 0xffff_ffff), 0) as number;
    if (ret === -constants.errno.ENOENT) return false;
    this.#check('mdgpu_host_ring_bind', ret);
    return true;
  }

  /** Bind `object` to the device's own ring (its handle is its id), once. */
  #bindOwn(ring: DeviceRing, object: HostMemory | HostKernel): void {
    if (object.ringId !== 0 || object.destroyed) return; // a destroyed one stays unbound: the batch fails with ENOENT
    const kind = object instanceof HostMemory ? RingKind.Memory : RingKind.Kernel;
    this.#check('mdgpu_host_ring_bind', this.#lib.fn.ringBind(ring.handle, kind, object.handle, object.handle) as number);
    object.ringId = object.handle;
  }

  /**
   * Encode `commands` on `memory` into the device's ring (types checked here, everything else by
   * the library) and take them. Bad commands reject the Promise with a BackendError (EINVAL,
   * ENOENT, E2BIG…) and run nothing; arguments of the wrong type reject it with a TypeError or
   * RangeError. With staged memory the take waits for earlier batches first (see the C header).
   */
  submit(memory: BackendMemory, commands: readonly Command[], hooks?: SubmitHooks): Promise<SubmissionStatus> {
    try {
      this.#alive('mdgpu_host_submit2');
      if (!(memory instanceof HostMemory) || memory.device !== this) throw new TypeError('submit: memory is not memory of this device');
      if (!Array.isArray(commands)) throw new TypeError('submit: commands must be an array');
      for (let i = 0; i < commands.length; i++) {
        const c = commands[i];
        if (c?.kind === 'dispatch' && !(c.kernel instanceof HostKernel && c.kernel.device === this)) {
          throw new TypeError(`submit: command ${i}: kernel is not a kernel of this device`);
        }
      }
      const client = this.#client();
      const ring = this.#ring!;
      // Tags are 32 bits and wrap; a tag still in use (after 2^32 batches) is skipped.
      do this.#nextTag = this.#nextTag >= 0xffff_ffff ? 1 : this.#nextTag + 1;
      while (client.inUse(this.#nextTag));
      const r = ringRequest(this.#nextTag, memory.handle, commands, hooks, this.#encoder, client.ringSubmitSize);
      // Objects are bound when a batch first names them: a destroy after this goes behind it.
      this.#bindOwn(ring, memory);
      for (const c of commands) if (c.kind === 'dispatch') this.#bindOwn(ring, c.kernel as HostKernel);
      client.submit(r);
      return r.promise;
    } catch (err) {
      return Promise.reject(err as Error);
    }
  }

  /**
   * Wait for every pending batch and every kernel compile already started to settle (kernels
   * still waiting for a compile thread are rejected with ENOENT), then stop the ring service and
   * destroy the device and all its objects.
   */
  destroy(): Promise<void> {
    if (this.#destroying === undefined) {
      this.#destroyed = true; // no new work from here on
      for (const job of this.#compileQueue.splice(0)) {
        job.reject(
          new BackendError('ENOENT', -constants.errno.ENOENT, 'mdgpu_host_kernel_create', 'Host driver mdgpu_host_kernel_create: the device is destroyed'),
        );
      }
      this.#destroying = (async () => {
        const client = this.#ring?.client;
        if (client != null && this.#ringBroken === null) await client.idle();
        await Promise.allSettled([...this.#compiles]);
        const ring = this.#ring;
        this.#ring = null;
        if (ring !== null) {
          this.#check('mdgpu_host_ring_destroy', this.#lib.fn.ringDestroy(ring.handle) as number);
          ring.client?.close();
        }
        this.#check('mdgpu_host_device_destroy', this.#lib.fn.deviceDestroy(this.#handle) as number);
      })();
    }
    return this.#destroying;
  }
}
