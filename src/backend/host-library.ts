/**
 * libmdgpu-host's C ABI as koffi declares it: the structs of `host-driver/include/mdgpu_host.h`
 * (declared once, here), its flags and limits, loading the library and checking its ABI
 * version, and what it says about the host's devices (device info and capabilities, decoded).
 * The device itself — memories, kernels, batches through the ring — is host-driver.ts's
 * `HostDevice`. test/backend/host-abi.test.ts compares every declaration and constant here with
 * the header, compiled.
 *
 * Why koffi and not a node-addon-api addon or ffi-napi: the library already has a narrow C ABI
 * of plain structs and integer handles, so a foreign-function interface needs no C++ of ours.
 * ffi-napi/ref-napi do not install on Node 20 (build failure) and cost 5–24 µs a call; koffi
 * ships prebuilt binaries in its npm package and costs ~0.1 µs a call (50–200× less).
 */
import koffi, { type LibraryHandle, type TypeObject } from 'koffi';
import { existsSync } from 'node:fs';
import { constants } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { DescriptorType } from '../device-commands.js';
import { errnoName } from '../errno.js';
import { BackendError, type DeviceCaps, type DeviceInfo, type Robustness } from './backend.js';
import { CMD2, DESCRIPTOR, STATUS } from './host-records.js';

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
export const ERROR_TEXT_SIZE = 1024;

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
export function off(type: TypeObject, field: string): number {
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

export const SPEC_ENTRY_SIZE = koffi.sizeof(SpecEntryT);
export const KERNEL_BINDING_SIZE = koffi.sizeof(KernelBindingT);
const CAPS_SIZE = koffi.sizeof(CapsT);

export const DESCRIPTOR_TYPE_NAMES: readonly DescriptorType[] = ['storage', 'uniform'];

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

export function fail(lib: HostDriverLibrary, call: string, ret: number, detail?: string): BackendError {
  const code = errnoName(-ret); // the C ABI returns -errno
  const why = detail ?? ((lib.fn.lastError() as string | null) || 'no detail');
  return new BackendError(code, ret, call, `Host driver ${call} failed with ${code}: ${why}`);
}

// ---- decoding ----

export interface RawInfo {
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

export function triple(a: number[]): [number, number, number] {
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
export function enumerateCaps(lib: HostDriverLibrary, index: number): DeviceCaps {
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

export function decodeInfo(raw: RawInfo, caps: DeviceCaps): DeviceInfo {
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
