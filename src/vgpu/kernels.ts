/**
 * Kernels of a vGPU: created from SPIR-V a guest placed in one of its buffers, built off the
 * device's control path (contract 1.2), and named by handles that dispatches use.
 *
 * KERNEL_CREATE (1.1: storage buffers in set 0, push constants) and KERNEL_CREATE2 (1.3: a
 * `struct mdgpu_kernel_desc` naming the SPIR-V, the entry point and specialization constants in
 * the same buffer; the layout is whatever the SPIR-V declares) do only what is cheap and bounded
 * while the guest's trapped write waits: argument checks, a copy of everything out of guest
 * memory (the guest may change it at any time; only the copy is used), the magic number, quota
 * and limits. The build itself — validation and compilation, which a hostile module can make
 * arbitrarily expensive — is the executor's, asynchronously: the kernel is BUILDING
 * until it ends, then READY (with the descriptor layout the host reflected) or FAILED, and the
 * KERNEL interrupt source tells the guest to look (KERNEL_STATUS).
 *
 * What a kernel costs is counted against the VM's quota: what is kept to rebuild it after a
 * device reset (its SPIR-V and specialization), and a fixed estimate of its compiled pipeline.
 *
 * Builds go through the VM's kernel cache (kernel-cache.ts): a kernel made from exactly the
 * bytes of one this VM built before — still in use, destroyed since but kept, or being built —
 * shares that build, READY at once (or when the build it joined ends), and costs nothing more.
 */
import type { KernelBinding } from '../device-commands.js';
import { structWith, u32, u64 } from '../layout/struct.js';
import { guestError, tracer } from '../log.js';
import { KERNEL_STATES, MAILBOX_RESULTS, type MailboxResult } from './mailbox-ops.js';
import { type CacheEntry, KernelCache } from './kernel-cache.js';
import { type BuiltKernel, type KernelBuildRequest, requestDigest } from './kernel-request.js';
import { MailboxFailure, type MemoryMediator } from './memory-mediator.js';
import { IRQ_SOURCE_KERNEL } from './regs.js';

const traceKernel = tracer('kernel');
const struct = structWith((message) => new MailboxFailure('BAD_SIZE', message));

/** SPIR-V words start with this (little-endian, as the guest wrote it). */
export const SPIRV_MAGIC = 0x0723_0203;
/** Largest SPIR-V module a guest may hand over, bytes. */
export const MAX_SPIRV_BYTES = 1 << 20;
/** What a compiled pipeline is assumed to cost, bytes, charged to the VM's quota with its SPIR-V. */
export const KERNEL_PIPELINE_CHARGE = 64 << 10;
/** Kernels a VM may have at once (contract 1.3: thousands, each charged to its quota). */
export const DEFAULT_MAX_KERNELS = 4096;
/** Builds a VM may have in progress at once; more are refused THROTTLED. */
export const DEFAULT_MAX_KERNEL_BUILDS = 4;
/** Longest entry point name, bytes (contract 1.3). */
export const MAX_ENTRY_NAME = 255;
/** Most specialization constants and bytes of specialization data of one kernel (contract 1.3). */
export const MAX_SPEC_ENTRIES = 256;
export const MAX_SPEC_DATA = 4096;

/** KERNEL_CREATE2's record (contract 1.3); every offset is into the buffer that holds it. */
export const KernelDesc = struct('mdgpu_kernel_desc', {
  flags: u32,
  pushBytes: u32,
  spirvSize: u32,
  entrySize: u32,
  spirvOffset: u64,
  entryOffset: u64,
  specMapOffset: u64,
  specMapCount: u32,
  specDataSize: u32,
  specDataOffset: u64,
  reserved: u64,
});

/** One specialization constant of a kernel record (VkSpecializationMapEntry with a u32 size). */
export const SpecMapEntry = struct('mdgpu_spec_map_entry', { constantId: u32, offset: u32, size: u32, reserved: u32 });

/** Flags of a kernel record. */
export const KERNEL_FLAGS = {
  DISPATCH_BASE: { bit: 0, doc: 'DISPATCH2 may give a non-zero base (vkCmdDispatchBase)' },
} as const;
const KERNEL_FLAGS_KNOWN = 0x1;

export type { BuiltKernel, KernelBuildRequest } from './kernel-request.js';

/** How kernels are built and destroyed: the executor's side (src/exec). */
export interface KernelBuilderPort {
  /**
   * Validate and compile. Rejects with a {@link MailboxFailure} whose result the guest gets
   * (BAD_KERNEL, THROTTLED), or with any other error (then BAD_KERNEL).
   */
  buildKernel(request: KernelBuildRequest): Promise<BuiltKernel>;
  destroyKernel(handle: unknown): void;
  /** While kernel builds are refused (the vGPU is cooling off): until when, ms since the epoch. */
  buildsThrottledUntil?(): number | null;
}

export interface KernelHost {
  readonly name: string;
  readonly aperture: Uint8Array;
  readonly memory: MemoryMediator;
  readonly executor: KernelBuilderPort | null;
  raiseIrq(bits: number): void;
}

type KernelState = keyof typeof KERNEL_STATES;

interface Kernel {
  readonly id: number;
  readonly ctx: number;
  state: KernelState;
  /** Why it FAILED. */
  failure: Exclude<MailboxResult, 'OK'> | null;
  readonly pushConstantBytes: number;
  readonly dispatchBase: boolean;
  /** The build it shares (and is charged with) while BUILDING or READY; null once FAILED or destroyed. */
  entry: CacheEntry | null;
}

/** What the validator and the queue engine need of a READY kernel. */
export interface ReadyKernel {
  /** For DISPATCH (1.1): the count of storage buffers at set 0, bindings 0..n-1, or -1 if its layout is not that. */
  readonly bindings: number;
  readonly pushConstantBytes: number;
  readonly layout: readonly KernelBinding[];
  readonly dispatchBase: boolean;
  /** The backend's kernel, carried through to the device. */
  readonly handle: unknown;
}

/** A 1.1-shaped layout (storage buffers at set 0, bindings 0..n-1): n; otherwise -1. */
function legacyBindings(layout: readonly KernelBinding[]): number {
  const ok = layout.every((b, i) => b.set === 0 && b.binding === i && b.type === 'storage' && b.count === 1);
  return ok ? layout.length : -1;
}

export class KernelRegistry {
  private readonly kernels = new Map<number, Kernel>();
  /** Kernels BUILDING, by the build they wait for. */
  private readonly waiting = new Map<CacheEntry, Set<Kernel>>();
  private nextKernel = 1;
  private building = 0;
  maxKernels = DEFAULT_MAX_KERNELS;
  maxBuilds = DEFAULT_MAX_KERNEL_BUILDS;
  /** Builds that ended, by outcome (metrics). */
  readonly stats = { built: 0, failed: 0 };
  /** This VM's built kernels, shared by identical creations and kept after their last user (kernel-cache.ts). */
  readonly cache: KernelCache;

  constructor(private readonly host: KernelHost) {
    this.cache = new KernelCache({ release: (entry) => this.releaseEntry(entry) });
    // Idle cached kernels are given back before the VM is refused quota.
    host.memory.reclaimer = this.cache;
  }

  get count(): number {
    return this.kernels.size;
  }

  /** Builds in progress now. */
  get buildsInProgress(): number {
    return this.building;
  }

  private fail(result: Exclude<MailboxResult, 'OK'>, message: string): never {
    guestError(`${this.host.name}-kernel-${result}`, `${this.host.name}: ${message}`);
    throw new MailboxFailure(result, message);
  }

  /** Checks every creation shares: room for a handle, and a backend. */
  private admit(): KernelBuilderPort {
    if (this.kernels.size >= this.maxKernels) this.fail('TOO_MANY', `kernel limit ${this.maxKernels} reached`);
    const backend = this.host.executor;
    if (backend === null) this.fail('UNSUPPORTED', 'no executor on this device');
    return backend;
  }

  /** Checks a creation the cache cannot answer shares: no cool-off, not too many builds at once. */
  private admitBuild(backend: KernelBuilderPort): void {
    const until = backend.buildsThrottledUntil?.() ?? null;
    if (until !== null) this.fail('THROTTLED', `kernel builds refused until ${new Date(until).toISOString()}: too many builds failed by time or memory`);
    if (this.building >= this.maxBuilds) this.fail('THROTTLED', `${this.building} kernel builds already in progress (at most ${this.maxBuilds})`);
  }

  /** A copy of `size` bytes at `offset` of a buffer, checked to lie inside it (bigint bounds). */
  private copyOut(buffer: { offset: number; size: number }, offset: bigint, size: number, what: string): Uint8Array {
    if (offset < 0n || offset + BigInt(size) > BigInt(buffer.size))
      this.fail('BAD_SIZE', `${what} of ${size} bytes at ${offset} outside a buffer of ${buffer.size}`);
    const at = buffer.offset + Number(offset);
    return this.host.aperture.slice(at, at + size);
  }

  private spirvOf(bytes: Uint8Array): Uint32Array {
    if (bytes.length === 0 || bytes.length % 4 !== 0 || bytes.length > MAX_SPIRV_BYTES) this.fail('BAD_SIZE', `SPIR-V of ${bytes.length} bytes`);
    const words = new Uint32Array(bytes.buffer, bytes.byteOffset, bytes.length / 4);
    if (words[0] !== SPIRV_MAGIC) this.fail('BAD_KERNEL', 'not SPIR-V (bad magic number)');
    return words;
  }

  /** KERNEL_CREATE (contract 1.1 layout): checks, a copy of the SPIR-V, and a build started. */
  create(
    ctx: number,
    bufferHandle: number,
    offset: number,
    size: number,
    bindings: number,
    pushConstantBytes: number,
    limits: { maxBindings: number; maxPushConstantBytes: number },
  ): number {
    const buffer = this.host.memory.buffer(ctx, bufferHandle);
    const backend = this.admit();
    if (size === 0 || size % 4 !== 0 || size > MAX_SPIRV_BYTES || offset % 4 !== 0 || offset + size > buffer.size) {
      this.fail('BAD_SIZE', `SPIR-V of ${size} bytes at ${offset} in a buffer of ${buffer.size}`);
    }
    if (bindings > limits.maxBindings || pushConstantBytes > limits.maxPushConstantBytes || pushConstantBytes % 4 !== 0) {
      this.fail('BAD_FLAGS', `kernel with ${bindings} bindings and ${pushConstantBytes} push-constant bytes`);
    }
    // Copy the words out of guest memory first: the guest may change them at any time.
    const spirv = this.spirvOf(this.copyOut(buffer, BigInt(offset), size, 'SPIR-V'));
    return this.start(ctx, backend, { spirv, pushConstantBytes, bindings, dispatchBase: false }, size);
  }

  /** KERNEL_CREATE2 (contract 1.3): the record, its SPIR-V, entry point and specialization copied out and checked. */
  createFromDesc(ctx: number, bufferHandle: number, offset: number, size: number, limits: { maxPushConstantBytes: number }): number {
    const buffer = this.host.memory.buffer(ctx, bufferHandle);
    const backend = this.admit();
    if (size < KernelDesc.size || size > 4096) this.fail('BAD_SIZE', `a kernel record of ${size} bytes (${KernelDesc.size} expected)`);
    const desc = KernelDesc.decode(this.copyOut(buffer, BigInt(offset), KernelDesc.size, 'kernel record'));
    if ((desc.flags & ~KERNEL_FLAGS_KNOWN) !== 0 || desc.reserved !== 0n) this.fail('BAD_FLAGS', `kernel record flags 0x${desc.flags.toString(16)}`);
    if (desc.pushBytes > limits.maxPushConstantBytes || desc.pushBytes % 4 !== 0) this.fail('BAD_FLAGS', `${desc.pushBytes} push-constant bytes`);
    if (desc.spirvSize % 4 !== 0 || desc.spirvOffset % 4n !== 0n) this.fail('BAD_SIZE', `SPIR-V of ${desc.spirvSize} bytes at ${desc.spirvOffset}`);
    const spirv = this.spirvOf(this.copyOut(buffer, desc.spirvOffset, desc.spirvSize, 'SPIR-V'));
    let entryPoint: string | undefined;
    if (desc.entrySize > 0) {
      if (desc.entrySize > MAX_ENTRY_NAME) this.fail('BAD_SIZE', `an entry point name of ${desc.entrySize} bytes`);
      const name = this.copyOut(buffer, desc.entryOffset, desc.entrySize, 'entry point name');
      if (name.some((b) => b === 0)) this.fail('BAD_FLAGS', 'an entry point name with a NUL in it');
      entryPoint = new TextDecoder('utf-8', { fatal: true }).decode(name);
    }
    let specialization: KernelBuildRequest['specialization'];
    if (desc.specMapCount > 0 || desc.specDataSize > 0) {
      if (desc.specMapCount > MAX_SPEC_ENTRIES || desc.specDataSize > MAX_SPEC_DATA) {
        this.fail('BAD_SIZE', `${desc.specMapCount} specialization constants and ${desc.specDataSize} bytes of data`);
      }
      const map = this.copyOut(buffer, desc.specMapOffset, desc.specMapCount * SpecMapEntry.size, 'specialization map');
      const data = this.copyOut(buffer, desc.specDataOffset, desc.specDataSize, 'specialization data');
      const ids = new Set<number>();
      const entries = Array.from({ length: desc.specMapCount }, (_, i) => {
        const e = SpecMapEntry.decode(map, i * SpecMapEntry.size);
        if (e.reserved !== 0 || ![1, 2, 4, 8].includes(e.size) || e.offset + e.size > desc.specDataSize || ids.has(e.constantId)) {
          this.fail('BAD_FLAGS', `specialization constant ${i}: id ${e.constantId}, ${e.size} bytes at ${e.offset}`);
        }
        ids.add(e.constantId);
        return { constantId: e.constantId, offset: e.offset, size: e.size };
      });
      specialization = { entries, data };
    }
    const request: KernelBuildRequest = {
      spirv,
      pushConstantBytes: desc.pushBytes,
      dispatchBase: (desc.flags & (1 << KERNEL_FLAGS.DISPATCH_BASE.bit)) !== 0,
      ...(entryPoint !== undefined ? { entryPoint } : {}),
      ...(specialization !== undefined ? { specialization } : {}),
    };
    return this.start(ctx, backend, request, desc.spirvSize + desc.entrySize + desc.specDataSize + desc.specMapCount * SpecMapEntry.size);
  }

  /**
   * A kernel from `request`: from the VM's cache when it holds the same bytes (READY at once, or
   * BUILDING with the build it joins), else charged to the quota and built.
   */
  private start(ctx: number, backend: KernelBuilderPort, request: KernelBuildRequest, keptBytes: number): number {
    const digest = this.cache.maxEntries > 0 ? requestDigest(request) : '';
    const found = this.cache.find(digest, request);
    if (found !== undefined) {
      this.cache.use(found);
      const kernel = this.name(ctx, request, found);
      if (found.built !== null) kernel.state = 'READY';
      else this.waiting.get(found)!.add(kernel);
      traceKernel(() => `${this.host.name}: ctx ${ctx} kernel ${kernel.id}: ${kernel.state} from the kernel cache`);
      return kernel.id;
    }
    this.admitBuild(backend);
    const charge = keptBytes + KERNEL_PIPELINE_CHARGE;
    if (!this.host.memory.charge(charge)) this.fail('OVER_QUOTA', `a kernel of ${keptBytes} bytes (${charge} with its pipeline) would exceed the quota`);
    const entry = this.cache.add(digest, request, charge);
    const kernel = this.name(ctx, request, entry);
    this.waiting.set(entry, new Set([kernel]));
    this.building++;
    traceKernel(() => `${this.host.name}: ctx ${ctx} kernel ${kernel.id}: building ${request.spirv.byteLength} bytes of SPIR-V`);
    backend.buildKernel(request).then(
      (built) => this.built(entry, built),
      (err: unknown) => this.failed(entry, err),
    );
    return kernel.id;
  }

  /** A new handle for a kernel of `ctx` that uses `entry` (BUILDING until told otherwise). */
  private name(ctx: number, request: KernelBuildRequest, entry: CacheEntry): Kernel {
    let id = this.nextKernel;
    while (id === 0 || this.kernels.has(id)) id = (id + 1) >>> 0;
    this.nextKernel = (id + 1) >>> 0;
    const kernel: Kernel = {
      id,
      ctx,
      state: 'BUILDING',
      failure: null,
      pushConstantBytes: request.pushConstantBytes,
      dispatchBase: request.dispatchBase,
      entry,
    };
    this.kernels.set(id, kernel);
    return kernel;
  }

  private built(entry: CacheEntry, built: BuiltKernel): void {
    this.building--;
    this.stats.built++;
    const waiters = this.waiting.get(entry);
    this.waiting.delete(entry);
    if (entry.dropped) {
      // The device was reset (or the VM went away) while it was being built: nobody wants it.
      this.host.executor?.destroyKernel(built.handle);
      return;
    }
    this.cache.built(entry, built);
    if (waiters === undefined || waiters.size === 0) return;
    for (const kernel of waiters) {
      kernel.state = 'READY';
      traceKernel(() => `${this.host.name}: kernel ${kernel.id} ready (${built.layout.length} descriptor bindings)`);
    }
    this.host.raiseIrq(1 << IRQ_SOURCE_KERNEL);
  }

  private failed(entry: CacheEntry, err: unknown): void {
    this.building--;
    this.stats.failed++;
    const waiters = this.waiting.get(entry);
    this.waiting.delete(entry);
    const failure = err instanceof MailboxFailure ? err.result : 'BAD_KERNEL';
    // Nothing is kept for a kernel that will never run but its record: the charge goes back
    // with the entry, and the next creation of the same bytes builds again.
    for (const kernel of waiters ?? []) {
      kernel.state = 'FAILED';
      kernel.failure = failure;
      kernel.entry = null;
    }
    this.cache.failed(entry);
    if (waiters === undefined || waiters.size === 0) return;
    const ids = [...waiters].map((k) => k.id).join(', ');
    guestError(`${this.host.name}-kernel-${failure}`, `${this.host.name}: kernel ${ids} refused (${failure}): ${(err as Error)?.message ?? String(err)}`);
    this.host.raiseIrq(1 << IRQ_SOURCE_KERNEL);
  }

  /** An entry left the cache and nobody uses it: its charge and device kernel go back. */
  private releaseEntry(entry: CacheEntry): void {
    this.host.memory.uncharge(entry.charge);
    if (entry.built !== null) this.host.executor?.destroyKernel(entry.built.handle);
  }

  private kernel(ctx: number, id: number): Kernel {
    const k = this.kernels.get(id);
    if (k === undefined || k.ctx !== ctx) this.fail('BAD_HANDLE', `no kernel ${id} in context ${ctx}`);
    return k;
  }

  /** KERNEL_STATUS: the state code and, when FAILED, the result code that says why. */
  status(ctx: number, id: number): [number, number] {
    const k = this.kernel(ctx, id);
    return [KERNEL_STATES[k.state].code, k.failure === null ? 0 : MAILBOX_RESULTS[k.failure].code];
  }

  destroy(ctx: number, id: number): void {
    this.forget(this.kernel(ctx, id));
  }

  private forget(k: Kernel): void {
    this.kernels.delete(k.id);
    const entry = k.entry;
    if (entry === null) return;
    k.entry = null;
    if (k.state === 'BUILDING') this.waiting.get(entry)?.delete(k);
    // Its build stays in the cache (idle once nobody else uses it) until evicted or reset.
    this.cache.release(entry);
  }

  /** A context is going away: its kernels go with it (builds in progress are abandoned). */
  destroyContext(ctx: number): void {
    for (const k of [...this.kernels.values()]) if (k.ctx === ctx) this.forget(k);
  }

  /**
   * Device reset or the VM went away: every kernel goes, and the cache with them — whoever
   * uses the device next (a rebooted guest, or another VM the vGPU is given to) starts cold.
   */
  reset(): void {
    for (const k of [...this.kernels.values()]) this.forget(k);
    this.cache.clear();
  }

  /** A READY kernel of `ctx`, for the validator and for execution; undefined otherwise. */
  ready(ctx: number, id: number): ReadyKernel | undefined {
    const k = this.kernels.get(id);
    const built = k?.entry?.built;
    if (k === undefined || k.ctx !== ctx || k.state !== 'READY' || built == null) return undefined;
    return {
      bindings: legacyBindings(built.layout),
      pushConstantBytes: k.pushConstantBytes,
      layout: built.layout,
      dispatchBase: k.dispatchBase,
      handle: built.handle,
    };
  }
}
