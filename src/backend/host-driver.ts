import { constants } from 'node:os';
import type { KernelBinding } from '../device-commands.js';
import { loadNative, type NativeBinding } from '../native/binding.js';
import {
  BackendError,
  type BackendKernel,
  type BackendMemory,
  type Command,
  type ComputeDevice,
  type DeviceInfo,
  type ImportOptions,
  type KernelOptions,
  type SubmissionStatus,
  type SubmitHooks,
} from './backend.js';
import { BatchEncoder, checkIndex } from './host-records.js';
import { RingClient, RingKind, RingMemory, ringRequest } from './ring.js';

import {
  WAIT_SLICE_NS,
  COMPILE_THREADS,
  ERROR_TEXT_SIZE,
  SPEC_ENTRY_SIZE,
  KERNEL_BINDING_SIZE,
  DESCRIPTOR_TYPE_NAMES,
  MAX_ENTRY_NAME,
  MAX_KERNEL_DESCRIPTORS,
  KERNEL_DISPATCH_BASE,
  KERNEL_SPLITTABLE,
  OPEN_CPU_TIMESTAMPS,
  MEMORY_STAGED,
  MEMORY_ZERO_COPY,
  type HostDriverLibrary,
  loadHostDriver,
  fail,
  type RawInfo,
  triple,
  enumerateCaps,
  decodeInfo,
} from './host-library.js';

// The library's API, for this module's users.
export {
  ABI_MAJOR,
  ABI_MINOR,
  abiTypes,
  COMPILE_THREADS,
  HOST_DRIVER_PATH,
  type HostDriverLibrary,
  listDevices,
  loadHostDriver,
  loadHostDriverFrom,
  spirvWords,
  WAIT_SLICE_NS,
} from './host-library.js';
export { Op } from './host-records.js';

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
