/**
 * Kernels of a vGPU (contract 1.2): created from SPIR-V a guest placed in one of its buffers,
 * built off the device's control path, and named by handles that DISPATCH commands use.
 *
 * KERNEL_CREATE does only what is cheap and bounded while the guest's trapped write waits:
 * argument checks, a copy of the SPIR-V out of guest memory (the guest may change it at any
 * time; only the copy is used), the magic number, quota and limits. The build itself — validation
 * and compilation, which a hostile module can make arbitrarily expensive — is the execution
 * backend's, asynchronously: the kernel is BUILDING until it ends, then READY or FAILED, and
 * the KERNEL interrupt source tells the guest to look (KERNEL_STATUS).
 *
 * What a kernel costs is counted against the VM's quota: the SPIR-V kept for rebuilding it
 * after a device reset, and a fixed estimate of its compiled pipeline.
 */
import { guestError, tracer } from '../log.js';
import { KERNEL_STATES, MAILBOX_RESULTS, type MailboxResult } from './mailbox-ops.js';
import { MailboxFailure, type MemoryMediator } from './memory-mediator.js';
import { IRQ_SOURCE_KERNEL } from './regs.js';

const traceKernel = tracer('kernel');

/** SPIR-V words start with this (little-endian, as the guest wrote it). */
export const SPIRV_MAGIC = 0x0723_0203;
/** Largest SPIR-V module a guest may hand over, bytes. */
export const MAX_SPIRV_BYTES = 1 << 20;
/** What a compiled pipeline is assumed to cost, bytes, charged to the VM's quota with its SPIR-V. */
export const KERNEL_PIPELINE_CHARGE = 64 << 10;
export const DEFAULT_MAX_KERNELS = 256;
/** Builds a VM may have in progress at once; more are refused THROTTLED. */
export const DEFAULT_MAX_KERNEL_BUILDS = 4;

/** How kernels are built and destroyed: the execution backend's side (src/exec). */
export interface KernelBuilderPort {
  /**
   * Validate and compile; resolves with the backend's id of the kernel. Rejects with a
   * {@link MailboxFailure} whose result the guest gets (BAD_KERNEL, THROTTLED), or with any
   * other error (then BAD_KERNEL).
   */
  buildKernel(spirv: Uint32Array, bindings: number, pushConstantBytes: number): Promise<number>;
  destroyKernel(id: number): void;
  /** While kernel builds are refused (the vGPU is cooling off): until when, ms since the epoch. */
  buildsThrottledUntil?(): number | null;
}

export interface KernelHost {
  readonly name: string;
  readonly aperture: Uint8Array;
  readonly memory: MemoryMediator;
  readonly backend: KernelBuilderPort | null;
  raiseIrq(bits: number): void;
}

type KernelState = keyof typeof KERNEL_STATES;

interface Kernel {
  readonly id: number;
  readonly ctx: number;
  state: KernelState;
  /** Why it FAILED. */
  failure: Exclude<MailboxResult, 'OK'> | null;
  readonly bindings: number;
  readonly pushConstantBytes: number;
  /** The backend's id, once built. */
  backendId: number | null;
  /** Bytes charged to the VM's quota while the kernel exists. */
  charge: number;
}

/** What the validator and the queue engine need of a READY kernel. */
export interface ReadyKernel {
  readonly bindings: number;
  readonly pushConstantBytes: number;
  readonly backendId: number;
}

export class KernelRegistry {
  private readonly kernels = new Map<number, Kernel>();
  private nextKernel = 1;
  private building = 0;
  maxKernels = DEFAULT_MAX_KERNELS;
  maxBuilds = DEFAULT_MAX_KERNEL_BUILDS;
  /** Builds that ended, by outcome (metrics). */
  readonly stats = { built: 0, failed: 0 };

  constructor(private readonly host: KernelHost) {}

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

  /** KERNEL_CREATE: checks, a copy of the SPIR-V, and a build started; returns the new handle. */
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
    if (this.kernels.size >= this.maxKernels) this.fail('TOO_MANY', `kernel limit ${this.maxKernels} reached`);
    if (size === 0 || size % 4 !== 0 || size > MAX_SPIRV_BYTES || offset % 4 !== 0 || offset + size > buffer.size) {
      this.fail('BAD_SIZE', `SPIR-V of ${size} bytes at ${offset} in a buffer of ${buffer.size}`);
    }
    if (bindings > limits.maxBindings || pushConstantBytes > limits.maxPushConstantBytes || pushConstantBytes % 4 !== 0) {
      this.fail('BAD_FLAGS', `kernel with ${bindings} bindings and ${pushConstantBytes} push-constant bytes`);
    }
    const backend = this.host.backend;
    if (backend === null) this.fail('UNSUPPORTED', 'no execution backend on this device');
    const until = backend.buildsThrottledUntil?.() ?? null;
    if (until !== null) this.fail('THROTTLED', `kernel builds refused until ${new Date(until).toISOString()}: too many builds failed by time or memory`);
    if (this.building >= this.maxBuilds) this.fail('THROTTLED', `${this.building} kernel builds already in progress (at most ${this.maxBuilds})`);
    // Copy the words out of guest memory first: the guest may change them at any time.
    const words = new Uint32Array(size / 4);
    new Uint8Array(words.buffer).set(this.host.aperture.subarray(buffer.offset + offset, buffer.offset + offset + size));
    if (words[0] !== SPIRV_MAGIC) this.fail('BAD_KERNEL', 'not SPIR-V (bad magic number)');
    const charge = size + KERNEL_PIPELINE_CHARGE;
    if (!this.host.memory.charge(charge)) this.fail('OVER_QUOTA', `a kernel of ${size} bytes (${charge} with its pipeline) would exceed the quota`);
    let id = this.nextKernel;
    while (id === 0 || this.kernels.has(id)) id = (id + 1) >>> 0;
    this.nextKernel = (id + 1) >>> 0;
    const kernel: Kernel = { id, ctx, state: 'BUILDING', failure: null, bindings, pushConstantBytes, backendId: null, charge };
    this.kernels.set(id, kernel);
    this.building++;
    traceKernel(() => `${this.host.name}: ctx ${ctx} kernel ${id}: building ${size} bytes of SPIR-V`);
    backend.buildKernel(words, bindings, pushConstantBytes).then(
      (backendId) => this.built(kernel, backendId),
      (err: unknown) => this.failed(kernel, err),
    );
    return id;
  }

  private built(kernel: Kernel, backendId: number): void {
    this.building--;
    this.stats.built++;
    if (this.kernels.get(kernel.id) !== kernel) {
      // Destroyed (or the device reset) while it was being built: nobody wants it.
      this.host.backend?.destroyKernel(backendId);
      return;
    }
    kernel.backendId = backendId;
    kernel.state = 'READY';
    traceKernel(() => `${this.host.name}: kernel ${kernel.id} ready`);
    this.host.raiseIrq(1 << IRQ_SOURCE_KERNEL);
  }

  private failed(kernel: Kernel, err: unknown): void {
    this.building--;
    this.stats.failed++;
    if (this.kernels.get(kernel.id) !== kernel) return;
    kernel.state = 'FAILED';
    kernel.failure = err instanceof MailboxFailure ? err.result : 'BAD_KERNEL';
    // Nothing is kept for a kernel that will never run but its record.
    this.host.memory.uncharge(kernel.charge);
    kernel.charge = 0;
    guestError(
      `${this.host.name}-kernel-${kernel.failure}`,
      `${this.host.name}: kernel ${kernel.id} refused (${kernel.failure}): ${(err as Error)?.message ?? String(err)}`,
    );
    this.host.raiseIrq(1 << IRQ_SOURCE_KERNEL);
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
    this.host.memory.uncharge(k.charge);
    k.charge = 0;
    if (k.backendId !== null) this.host.backend?.destroyKernel(k.backendId);
  }

  /** A context is going away: its kernels go with it (builds in progress are abandoned). */
  destroyContext(ctx: number): void {
    for (const k of [...this.kernels.values()]) if (k.ctx === ctx) this.forget(k);
  }

  /** Device reset or the VM went away: every kernel goes. */
  reset(): void {
    for (const k of [...this.kernels.values()]) this.forget(k);
  }

  /** A READY kernel of `ctx`, for the validator and for execution; undefined otherwise. */
  ready(ctx: number, id: number): ReadyKernel | undefined {
    const k = this.kernels.get(id);
    if (k === undefined || k.ctx !== ctx || k.state !== 'READY' || k.backendId === null) return undefined;
    return { bindings: k.bindings, pushConstantBytes: k.pushConstantBytes, backendId: k.backendId };
  }
}
