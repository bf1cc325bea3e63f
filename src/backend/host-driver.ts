/**
 * libmdgpu-host (`host-driver/`, C, Vulkan compute) through koffi, as a {@link ComputeBackend}.
 *
 * Why koffi and not a node-addon-api addon or ffi-napi: the library already has a narrow C ABI
 * of plain structs and integer handles, so a foreign-function interface needs no C++ of ours.
 * ffi-napi/ref-napi do not install on Node 20 (build failure) and cost 5–24 µs a call; koffi
 * ships prebuilt binaries in its npm package and costs ~0.1 µs a call (50–200× less).
 *
 * The structs of `host-driver/include/mdgpu_host.h` are declared once, below, as koffi types.
 * Outputs (device info, status) are decoded by koffi. Commands and bindings are encoded by
 * hand into one byte buffer at offsets read from those same declarations: koffi's conversion
 * of an array of objects with unions costs ~2 µs per command, the byte buffer ~0.1 µs. The C
 * library asserts the sizes statically and the tests compare them with these declarations.
 *
 * Completion without blocking the JS thread: `submit` returns at once; each device then keeps
 * at most one `mdgpu_host_wait` running on a koffi worker thread (`.async`), for the oldest
 * unfinished batch, in slices of {@link WAIT_SLICE_NS}. When it returns, every batch that has
 * completed is collected with the non-blocking `mdgpu_host_poll` and its Promise settled, and
 * the wait is re-armed. One waiting thread per device, however many batches are in flight,
 * instead of one per batch (which would exhaust the worker pool with N VMs) — and completion
 * is seen as soon as the fence signals, not at the next tick of a polling timer (which would
 * add up to a timer period of latency, or burn the CPU when the period is short).
 *
 * Kernels without blocking the JS thread: `createKernelAsync` runs `mdgpu_host_kernel_create_errbuf`
 * on a koffi worker thread (checking and compiling a large module takes seconds); the library
 * does not hold the device lock meanwhile, so batches keep completing. The error text comes
 * back in a buffer, since the worker thread's `mdgpu_host_last_error` is out of reach.
 */
import koffi, { type LibraryHandle, type TypeObject } from 'koffi';
import { existsSync } from 'node:fs';
import { constants } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { errnoName } from '../errno.js';
import {
  BackendError,
  type BackendKernel,
  type BackendMemory,
  type Command,
  type ComputeBackend,
  type DeviceInfo,
  type ImportOptions,
  type KernelOptions,
  type Robustness,
  type SubmissionStatus,
  type SubmitHooks,
} from './backend.js';

/** The library's path relative to the package root. */
export const HOST_DRIVER_PATH = 'host-driver/build/libmdgpu-host.so';
/** The ABI major version this binding speaks (`MDGPU_HOST_ABI_MAJOR`). */
export const ABI_MAJOR = 2;
/** How long one worker-thread wait lasts before it is re-armed, ns. */
export const WAIT_SLICE_NS = 200_000_000n;
/**
 * Kernels one device compiles at once on koffi's worker threads ({@link HostDevice.createKernelAsync});
 * more wait their turn. Those threads are libuv's pool (4 by default), which each device's
 * completion wait and Node's own file and DNS work also need: a few slow compiles must not
 * take them all.
 */
export const COMPILE_THREADS = 2;
/** Bytes of the error text `mdgpu_host_kernel_create_errbuf` copies back (as `last_error`). */
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
const DispatchT = koffi.struct('mdgpu_host_cmd_dispatch', {
  kernel: u32,
  group_count_x: u32,
  group_count_y: u32,
  group_count_z: u32,
  first_binding: u32,
  binding_count: u32,
  push_offset: u32,
  push_size: u32,
});
const TimestampT = koffi.struct('mdgpu_host_cmd_timestamp', { mem: u32, pad: u32, offset: u64 });
const CmdArgsT = koffi.union('mdgpu_host_cmd_args', { copy: CopyT, fill: FillT, dispatch: DispatchT, timestamp: TimestampT });
const CmdT = koffi.struct('mdgpu_host_cmd', { op: u32, flags: u32, u: CmdArgsT });
const BindingT = koffi.struct('mdgpu_host_binding', { mem: u32, pad: u32, offset: u64, size: u64 });
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

/** The koffi struct types, for layout tests. */
export const abiTypes = {
  DeviceInfoT,
  MemoryInfoT,
  CopyT,
  FillT,
  DispatchT,
  TimestampT,
  CmdArgsT,
  CmdT,
  BindingT,
  StatusT,
} as const;

/** Byte offset of `field` of `type` (from the declaration above). */
function off(type: TypeObject, field: string): number {
  return koffi.offsetof(type, field);
}

const CMD_SIZE = koffi.sizeof(CmdT);
const U = off(CmdT, 'u');
const CMD = { op: off(CmdT, 'op'), flags: off(CmdT, 'flags') };
const COPY = {
  srcMem: U + off(CopyT, 'src_mem'),
  dstMem: U + off(CopyT, 'dst_mem'),
  srcOffset: U + off(CopyT, 'src_offset'),
  dstOffset: U + off(CopyT, 'dst_offset'),
  size: U + off(CopyT, 'size'),
};
const FILL = { mem: U + off(FillT, 'mem'), value: U + off(FillT, 'value'), offset: U + off(FillT, 'offset'), size: U + off(FillT, 'size') };
const DISPATCH = {
  kernel: U + off(DispatchT, 'kernel'),
  x: U + off(DispatchT, 'group_count_x'),
  y: U + off(DispatchT, 'group_count_y'),
  z: U + off(DispatchT, 'group_count_z'),
  firstBinding: U + off(DispatchT, 'first_binding'),
  bindingCount: U + off(DispatchT, 'binding_count'),
  pushOffset: U + off(DispatchT, 'push_offset'),
  pushSize: U + off(DispatchT, 'push_size'),
};
const TIMESTAMP = { mem: U + off(TimestampT, 'mem'), offset: U + off(TimestampT, 'offset') };
const BINDING_SIZE = koffi.sizeof(BindingT);
const BINDING = { mem: off(BindingT, 'mem'), offset: off(BindingT, 'offset'), size: off(BindingT, 'size') };

/** `enum mdgpu_host_op`. */
export enum Op {
  Copy = 1, // MDGPU_HOST_OP_COPY
  Fill = 2, // MDGPU_HOST_OP_FILL
  Dispatch = 3, // MDGPU_HOST_OP_DISPATCH
  Barrier = 4, // MDGPU_HOST_OP_BARRIER
  Timestamp = 5, // MDGPU_HOST_OP_TIMESTAMP
}

const DEVICE_HOST_IMPORT = 1 << 0;
const DEVICE_ROBUST_ACCESS = 1 << 1;
const DEVICE_TIMESTAMPS = 1 << 2;
const DEVICE_CPU_TIMESTAMPS = 1 << 3;
const OPEN_CPU_TIMESTAMPS = 1 << 0;
const MEMORY_STAGED = 1 << 0;
const MEMORY_ZERO_COPY = 1 << 1;
const STATUS_DEVICE_TIME = 1 << 0;

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
    kernelCreate: Fn;
    kernelCreateErrbuf: Fn;
    kernelDestroy: Fn;
    submit: Fn;
    poll: Fn;
    wait: Fn;
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
  if (abiVersion >>> 16 !== ABI_MAJOR) {
    throw new Error(`mdgpu host driver at ${file} has ABI ${abiVersion >>> 16}.${abiVersion & 0xffff}, need ${ABI_MAJOR}.x; ${hint}`);
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
    kernelCreate: lib.func(
      'int32_t mdgpu_host_kernel_create(uint32_t device, const uint32_t *words, uint32_t word_count, uint32_t binding_count, uint32_t push_constant_size, _Out_ uint32_t *out)',
    ),
    // For async calls (a koffi worker thread): the error text comes back in a buffer of ours.
    kernelCreateErrbuf: lib.func(
      'int32_t mdgpu_host_kernel_create_errbuf(uint32_t device, const uint32_t *words, uint32_t word_count, uint32_t binding_count, uint32_t push_constant_size, _Out_ uint32_t *out, void *error, uint32_t error_size)',
    ),
    kernelDestroy: lib.func('int32_t mdgpu_host_kernel_destroy(uint32_t device, uint32_t kernel)'),
    // Commands and bindings go in as bytes (see the top of this file); out is a BigUint64Array.
    submit: lib.func(
      'int32_t mdgpu_host_submit(uint32_t device, const void *cmds, uint32_t cmd_count, const void *bindings, uint32_t binding_count, const void *push, uint32_t push_size, void *out)',
    ),
    poll: lib.func('int32_t mdgpu_host_poll(uint32_t device, uint64_t submission, _Out_ mdgpu_host_status *status)'),
    wait: lib.func('int32_t mdgpu_host_wait(uint32_t device, uint64_t submission, uint64_t timeout_ns, _Out_ mdgpu_host_status *status)'),
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

// ---- argument checks (types only: the library checks ranges against the device) ----

function checkIndex(name: string, value: unknown, max = Number.MAX_SAFE_INTEGER): number {
  if (typeof value !== 'number' || !Number.isInteger(value)) {
    throw Object.assign(new TypeError(`${name} must be an integer, got ${typeof value === 'number' ? value : typeof value}`), {
      code: 'ERR_INVALID_ARG_TYPE',
    });
  }
  if (value < 0 || value > max) {
    throw Object.assign(new RangeError(`${name} must be 0..${max}, got ${value}`), { code: 'ERR_OUT_OF_RANGE' });
  }
  return value;
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

interface RawStatus {
  submission: number | bigint;
  result: number;
  flags: number;
  device_begin_ns: number | bigint;
  device_end_ns: number | bigint;
  device_ns: number | bigint;
  submit_ns: number | bigint;
  complete_ns: number | bigint;
}

/** `enum mdgpu_host_robustness`, by its Vulkan feature name. */
const ROBUSTNESS: Record<number, Robustness> = { 0: 'none', 1: 'robustBufferAccess', 2: 'robustBufferAccess2' };

function triple(a: number[]): [number, number, number] {
  return [a[0] ?? 0, a[1] ?? 0, a[2] ?? 0];
}

function decodeInfo(raw: RawInfo): DeviceInfo {
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
  };
}

function decodeStatus(raw: RawStatus): SubmissionStatus {
  const timed = (raw.flags & STATUS_DEVICE_TIME) !== 0;
  return {
    id: BigInt(raw.submission),
    deviceNs: timed ? Number(raw.device_ns) : undefined,
    deviceBeginNs: timed ? BigInt(raw.device_begin_ns) : undefined,
    deviceEndNs: timed ? BigInt(raw.device_end_ns) : undefined,
    submitNs: BigInt(raw.submit_ns),
    completeNs: BigInt(raw.complete_ns),
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
    out.push(decodeInfo(raw));
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
    this.device.release('mdgpu_host_memory_destroy', this.handle);
  }
}

/** A kernel built on a {@link HostDevice}. */
export class HostKernel implements BackendKernel {
  #destroyed = false;

  /** @internal */
  constructor(
    readonly device: HostDevice,
    readonly handle: number,
    readonly bindings: number,
    readonly pushConstantSize: number,
  ) {}

  get destroyed(): boolean {
    return this.#destroyed;
  }

  destroy(): void {
    if (this.#destroyed) return;
    this.#destroyed = true;
    this.device.release('mdgpu_host_kernel_destroy', this.handle);
  }
}

/** A kernel waiting for, or on, a compile thread. */
interface CompileJob {
  words: Uint32Array;
  bindings: number;
  push: number;
  resolve: (kernel: HostKernel) => void;
  reject: (err: Error) => void;
}

interface Waiter {
  resolve: (status: SubmissionStatus) => void;
  reject: (err: Error) => void;
  promise: Promise<SubmissionStatus>;
}

/** Options of {@link HostDevice.open}. */
export interface OpenOptions {
  /** Which device: an index (`"1"`) or a case-insensitive name substring (`"llvmpipe"`); default: the first GPU, else lavapipe. */
  device?: string;
  /** Write TIMESTAMP values from the CPU at completion even where the device could (tests). */
  cpuTimestamps?: boolean;
  /** The library to use (default {@link loadHostDriver}). */
  library?: HostDriverLibrary;
  /** How long one worker-thread wait lasts before it is re-armed (default {@link WAIT_SLICE_NS}). */
  waitSliceNs?: bigint;
  /** Kernels compiled at once by {@link HostDevice.createKernelAsync} (default {@link COMPILE_THREADS}). */
  compileThreads?: number;
}

/** A device opened through libmdgpu-host. */
export class HostDevice implements ComputeBackend {
  readonly info: DeviceInfo;
  readonly #lib: HostDriverLibrary;
  readonly #handle: number;
  readonly #waiters = new Map<bigint, Waiter>(); // insertion order is submission order
  #waiting = false;
  #destroyed = false;
  #destroying: Promise<void> | undefined;
  readonly #waitSliceNs: bigint;
  readonly #compileThreads: number;
  readonly #compileQueue: CompileJob[] = [];
  readonly #compiles = new Set<Promise<void>>(); // settle when their compile returns

  private constructor(lib: HostDriverLibrary, handle: number, waitSliceNs: bigint, compileThreads: number) {
    this.#lib = lib;
    this.#handle = handle;
    this.#waitSliceNs = waitSliceNs;
    this.#compileThreads = compileThreads;
    const raw = {} as RawInfo;
    this.#check('mdgpu_host_device_info', lib.fn.deviceInfo(handle, raw) as number);
    this.info = decodeInfo(raw);
  }

  /** Open a device (logs one line naming it, from the library, on stderr). */
  static open(options: OpenOptions = {}): HostDevice {
    const lib = options.library ?? loadHostDriver();
    const compileThreads = checkIndex('compileThreads', options.compileThreads ?? COMPILE_THREADS, 64);
    if (compileThreads < 1) throw Object.assign(new RangeError('compileThreads must be 1..64, got 0'), { code: 'ERR_OUT_OF_RANGE' });
    const out = [0];
    const ret = lib.fn.deviceOpen(options.device ?? null, options.cpuTimestamps ? OPEN_CPU_TIMESTAMPS : 0, out) as number;
    if (ret !== 0) throw fail(lib, 'mdgpu_host_device_open', ret);
    return new HostDevice(lib, out[0]!, options.waitSliceNs ?? WAIT_SLICE_NS, compileThreads);
  }

  get pending(): number {
    return this.#waiters.size;
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

  createKernel(spirv: Uint32Array, options: KernelOptions): HostKernel {
    this.#alive('mdgpu_host_kernel_create');
    if (!(spirv instanceof Uint32Array)) {
      throw Object.assign(new TypeError('createKernel: spirv must be a Uint32Array (see spirvWords)'), { code: 'ERR_INVALID_ARG_TYPE' });
    }
    const bindings = checkIndex('bindings', options.bindings, 0xffff_ffff);
    const push = checkIndex('pushConstantSize', options.pushConstantSize, 0xffff_ffff);
    const out = [0];
    const ret = this.#lib.fn.kernelCreate(this.#handle, spirv, spirv.length, bindings, push, out) as number;
    this.#check('mdgpu_host_kernel_create', ret);
    return new HostKernel(this, out[0]!, bindings, push);
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
      this.#alive('mdgpu_host_kernel_create');
      if (!(spirv instanceof Uint32Array)) {
        throw Object.assign(new TypeError('createKernelAsync: spirv must be a Uint32Array (see spirvWords)'), {
          code: 'ERR_INVALID_ARG_TYPE',
        });
      }
      this.#compileQueue.push({
        words: spirv.slice(),
        bindings: checkIndex('bindings', options.bindings, 0xffff_ffff),
        push: checkIndex('pushConstantSize', options.pushConstantSize, 0xffff_ffff),
        resolve,
        reject,
      });
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
            job.reject(fail(this.#lib, 'mdgpu_host_kernel_create', ret, why || 'no detail'));
          } else {
            job.resolve(new HostKernel(this, out[0]!, job.bindings, job.push));
          }
          done();
          this.#nextCompile();
        };
        try {
          // job.words and error stay referenced by this closure until the call returns.
          this.#lib.fn.kernelCreateErrbuf.async(this.#handle, job.words, job.words.length, job.bindings, job.push, out, error, ERROR_TEXT_SIZE, finish);
        } catch (err) {
          // koffi refused the async call (its queue of async calls is full).
          queueMicrotask(() => finish(err, -1));
        }
      });
      this.#compiles.add(settled);
    }
  }

  /** @internal Destroy a memory or kernel handle (HostMemory/HostKernel.destroy). */
  /** The {@link ComputeBackend} way to build: {@link createKernelAsync}, off the event loop. */
  buildKernel(spirv: Uint32Array, options: KernelOptions): Promise<HostKernel> {
    return this.createKernelAsync(spirv, options);
  }

  release(call: 'mdgpu_host_memory_destroy' | 'mdgpu_host_kernel_destroy', handle: number): void {
    if (this.#destroyed) return; // the device took everything with it
    const fn = call === 'mdgpu_host_memory_destroy' ? this.#lib.fn.memoryDestroy : this.#lib.fn.kernelDestroy;
    this.#check(call, fn(this.#handle, handle) as number);
  }

  #mem(m: BackendMemory, what: string): number {
    if (!(m instanceof HostMemory) || m.device !== this) {
      throw new TypeError(`submit: ${what} is not memory of this device`);
    }
    // A destroyed handle is still sent: the library answers ENOENT, as for any stale handle.
    return m.handle;
  }

  /**
   * Encode `commands` (types checked here, everything else by the library) and submit them.
   * Bad commands reject the Promise with a BackendError (EINVAL, ENOENT, E2BIG…) and run
   * nothing. With staged memory the call waits for earlier batches first (see the C header).
   */
  submit(commands: readonly Command[], hooks?: SubmitHooks): Promise<SubmissionStatus> {
    try {
      this.#alive('mdgpu_host_submit');
      const id = this.#submit(commands);
      // In process, the batch is on the device as soon as the library took it.
      hooks?.started?.();
      let resolve!: (s: SubmissionStatus) => void;
      let reject!: (e: Error) => void;
      const promise = new Promise<SubmissionStatus>((res, rej) => {
        resolve = res;
        reject = rej;
      });
      this.#waiters.set(id, { resolve, reject, promise });
      this.#pump();
      return promise;
    } catch (err) {
      return Promise.reject(err as Error);
    }
  }

  #submit(commands: readonly Command[]): bigint {
    if (!Array.isArray(commands)) throw new TypeError('submit: commands must be an array');
    let bindingCount = 0;
    let pushBytes = 0;
    for (const c of commands) {
      if (c?.op === 'dispatch') {
        bindingCount += c.bindings.length;
        pushBytes += ((c.push?.byteLength ?? 0) + 3) & ~3;
      }
    }
    const cmds = new Uint8Array(Math.max(commands.length, 1) * CMD_SIZE);
    const bindings = new Uint8Array(Math.max(bindingCount, 1) * BINDING_SIZE);
    const push = new Uint8Array(Math.max(pushBytes, 4));
    const cv = new DataView(cmds.buffer);
    const bv = new DataView(bindings.buffer);
    let b = 0;
    let p = 0;
    commands.forEach((c, i) => {
      const at = i * CMD_SIZE;
      const put64 = (field: number, name: string, value: number) => cv.setBigUint64(at + field, BigInt(checkIndex(`command ${i}: ${name}`, value)), true);
      const put32 = (field: number, name: string, value: number) => cv.setUint32(at + field, checkIndex(`command ${i}: ${name}`, value, 0xffff_ffff), true);
      switch (c?.op) {
        case 'copy':
          cv.setUint32(at + CMD.op, Op.Copy, true);
          cv.setUint32(at + COPY.srcMem, this.#mem(c.src, `command ${i}: src`), true);
          cv.setUint32(at + COPY.dstMem, this.#mem(c.dst, `command ${i}: dst`), true);
          put64(COPY.srcOffset, 'srcOffset', c.srcOffset);
          put64(COPY.dstOffset, 'dstOffset', c.dstOffset);
          put64(COPY.size, 'size', c.size);
          break;
        case 'fill':
          cv.setUint32(at + CMD.op, Op.Fill, true);
          cv.setUint32(at + FILL.mem, this.#mem(c.mem, `command ${i}: mem`), true);
          // Any 32-bit pattern: 0..0xffffffff, or a negative int32 (-1 is 0xffffffff).
          if (typeof c.value !== 'number' || !Number.isInteger(c.value) || c.value < -0x8000_0000 || c.value > 0xffff_ffff) {
            throw Object.assign(new RangeError(`command ${i}: value must be a 32-bit integer, got ${String(c.value)}`), {
              code: 'ERR_OUT_OF_RANGE',
            });
          }
          cv.setUint32(at + FILL.value, c.value >>> 0, true);
          put64(FILL.offset, 'offset', c.offset);
          put64(FILL.size, 'size', c.size);
          break;
        case 'dispatch': {
          if (!(c.kernel instanceof HostKernel) || c.kernel.device !== this) {
            throw new TypeError(`submit: command ${i}: kernel is not a kernel of this device`);
          }
          cv.setUint32(at + CMD.op, Op.Dispatch, true);
          cv.setUint32(at + DISPATCH.kernel, c.kernel.handle, true);
          put32(DISPATCH.x, 'groups[0]', c.groups[0]);
          put32(DISPATCH.y, 'groups[1]', c.groups[1] ?? 1);
          put32(DISPATCH.z, 'groups[2]', c.groups[2] ?? 1);
          cv.setUint32(at + DISPATCH.firstBinding, b, true);
          cv.setUint32(at + DISPATCH.bindingCount, c.bindings.length, true);
          for (const [j, bd] of c.bindings.entries()) {
            const bat = b * BINDING_SIZE;
            bv.setUint32(bat + BINDING.mem, this.#mem(bd.mem, `command ${i}: binding ${j}`), true);
            bv.setBigUint64(bat + BINDING.offset, BigInt(checkIndex(`command ${i}: binding ${j}: offset`, bd.offset)), true);
            bv.setBigUint64(bat + BINDING.size, BigInt(checkIndex(`command ${i}: binding ${j}: size`, bd.size)), true);
            b++;
          }
          const data = c.push;
          cv.setUint32(at + DISPATCH.pushOffset, p, true);
          cv.setUint32(at + DISPATCH.pushSize, data?.byteLength ?? 0, true);
          if (data !== undefined) {
            push.set(new Uint8Array(data.buffer, data.byteOffset, data.byteLength), p);
            p += (data.byteLength + 3) & ~3;
          }
          break;
        }
        case 'barrier':
          cv.setUint32(at + CMD.op, Op.Barrier, true);
          break;
        case 'timestamp':
          cv.setUint32(at + CMD.op, Op.Timestamp, true);
          cv.setUint32(at + TIMESTAMP.mem, this.#mem(c.mem, `command ${i}: mem`), true);
          put64(TIMESTAMP.offset, 'offset', c.offset);
          break;
        default:
          throw new TypeError(`submit: command ${i}: unknown op ${String((c as { op?: unknown })?.op)}`);
      }
    });
    const out = new BigUint64Array(1);
    const ret = this.#lib.fn.submit(this.#handle, cmds, commands.length, bindings, bindingCount, push, pushBytes, out) as number;
    this.#check('mdgpu_host_submit', ret);
    return out[0]!;
  }

  #settle(id: bigint, ret: number, raw: RawStatus): void {
    const w = this.#waiters.get(id);
    if (w === undefined) return;
    this.#waiters.delete(id);
    if (ret !== 0) {
      w.reject(fail(this.#lib, 'mdgpu_host_wait', ret));
    } else if (raw.result !== 0) {
      w.reject(fail(this.#lib, 'mdgpu_host_wait', raw.result, `submission ${id} failed on the device`));
    } else {
      w.resolve(decodeStatus(raw));
    }
  }

  /** Collect, without blocking, every batch that has completed (they complete in order). */
  #reap(): void {
    for (const id of [...this.#waiters.keys()]) {
      const raw = {} as RawStatus;
      const ret = this.#lib.fn.poll(this.#handle, id, raw) as number;
      if (ret === -constants.errno.EAGAIN) return;
      this.#settle(id, ret, raw);
    }
  }

  /** Keep one worker-thread wait running on the oldest unfinished batch (see the top of the file). */
  #pump(): void {
    if (this.#waiting) return;
    const first = this.#waiters.keys().next();
    if (first.done === true) return;
    const id = first.value;
    const raw = {} as RawStatus;
    this.#waiting = true;
    try {
      this.#lib.fn.wait.async(this.#handle, id, this.#waitSliceNs, raw, (err: unknown, ret: number) => {
        this.#waiting = false;
        if (err) {
          const w = this.#waiters.get(id);
          this.#waiters.delete(id);
          w?.reject(err instanceof Error ? err : new Error(String(err)));
        } else if (ret !== -constants.errno.ETIMEDOUT) {
          this.#settle(id, ret, raw);
        }
        this.#reap();
        this.#pump();
      });
    } catch {
      // koffi refused the async call (its queue of async calls is full): poll again shortly.
      this.#waiting = false;
      setTimeout(() => {
        this.#reap();
        this.#pump();
      }, 1);
    }
  }

  /**
   * Wait for every pending batch and every kernel compile already started to settle (kernels
   * still waiting for a compile thread are rejected with ENOENT), then destroy the device and
   * all its objects.
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
        await Promise.allSettled([...this.#waiters.values()].map((w) => w.promise));
        await Promise.allSettled([...this.#compiles]);
        this.#check('mdgpu_host_device_destroy', this.#lib.fn.deviceDestroy(this.#handle) as number);
      })();
    }
    return this.#destroying;
  }
}
