/**
 * The mdgpu virtual GPGPU as a PCI function:
 *
 *   BAR0  64-bit prefetchable "aperture" (device memory), backed by a memfd. Everything except
 *         the first page is mmapped by QEMU straight into the guest (sparse mmap), so guest
 *         loads and stores there never exit. The first page stays trapped: it is a window onto
 *         the aperture at WINDOW_BASE, the slow path the benchmarks compare against.
 *   BAR2  32-bit, trapped: the register page at 0, the MSI-X table at 0x1000, the PBA at 0x2000.
 *
 * See docs/device.md for the contract.
 */
import { guestError } from '../log.js';
import type { EventFdOps } from '../pci/irqs.js';
import type { MemoryOps } from '../pci/dma-space.js';
import { PciFunction, type PciIdentity, type RegionHandler } from '../pci/pci-function.js';
import { RegisterFile } from '../pci/reg-file.js';
import {
  IRQ_SOURCE_MAILBOX,
  MAILBOX_ARGS,
  MAILBOX_RETS,
  MDGPU_CONTRACT_MAJOR,
  MDGPU_CONTRACT_MINOR,
  MDGPU_IRQ_SOURCES,
  MDGPU_REGS,
  type RegContext,
} from './regs.js';
import { MAILBOX_OPS, MAILBOX_RESULTS, QUERY_PARAMS } from './mailbox-ops.js';
import { ApertureAllocator } from './allocator.js';
import { MailboxFailure, MemoryMediator } from './memory-mediator.js';
import { QueueEngine } from './queues.js';
import type { Executor } from './queue-execution.js';
import { Caps, encodeCaps } from './caps.js';

/** Not assigned by the PCI-SIG: "MD" / "GP". Override with --vendor-id / --device-id. */
export const DEFAULT_IDENTITY: PciIdentity = {
  vendorId: 0x4d44,
  deviceId: 0x4750,
  subsystemVendorId: 0x4d44,
  subsystemId: 0x0001,
  revision: 0x01,
  classCode: 0x03_02_00, // display controller, 3D controller
};

export const APERTURE_BAR = 0;
export const REGISTER_BAR = 2;
export const REGISTER_BAR_SIZE = 0x4000;
export const MSIX_TABLE_OFFSET = 0x1000;
export const MSIX_PBA_OFFSET = 0x2000;
/** The trapped first page of the aperture BAR. */
export const TRAPPED_WINDOW_SIZE = 0x1000;
export const MIN_APERTURE_SIZE = 0x10000;
/** Buffers are carved from the aperture above the trapped window page. */
export const ALLOC_BASE = TRAPPED_WINDOW_SIZE;
export const DEFAULT_MAX_CONTEXTS = 256;
export const DEFAULT_MAX_BUFFERS = 16384;

/** Host facilities the device needs, injected (the native addon in production). */
export interface DeviceHostOps extends EventFdOps, MemoryOps {
  /** A new memfd of `size` bytes (sparse: pages cost memory only when touched). */
  createMemfd(name: string, size: number): number;
  /**
   * Zero a range of a memfd and give its pages back (fallocate PUNCH_HOLE): zeroing by writing
   * would commit every page of the aperture.
   */
  discard(fd: number, offset: number, length: number): void;
}

export interface MdgpuDeviceOptions {
  name: string;
  /** Aperture (BAR0) size in bytes: a power of two ≥ 64 KiB. */
  apertureSize: number;
  msixVectors?: number;
  identity?: Partial<PciIdentity>;
  /** Bytes this VM may allocate (default: the whole allocatable aperture). */
  quota?: number;
  maxContexts?: number;
  maxBuffers?: number;
  host: DeviceHostOps;
  /** Executes queue submissions (the Vulkan host driver); without one, queues cannot be created. */
  executor?: Executor | null;
  /** The time limit of one kernel build, ms (reported to the guest by QUERY KERNEL_BUILD_MS). */
  kernelBuildMs?: number;
}

/** Mailbox operations executed and trapped register accesses, for metrics. */
export interface MailboxStats {
  operations: number;
  failures: number;
}

export class MdgpuDevice implements RegContext {
  readonly name: string;
  readonly pci: PciFunction;
  readonly apertureSize: bigint;
  readonly apertureFd: number;
  /** mdgpu's own mapping of the aperture memfd: the same pages the guest sees through BAR0. */
  readonly aperture: Uint8Array;
  private readonly apertureBuffer: ArrayBuffer;
  readonly regs: RegisterFile<RegContext>;
  readonly memory: MemoryMediator;
  readonly queues: QueueEngine;
  private attachedExecutor: Executor | null;
  readonly mailboxStats: MailboxStats = { operations: 0, failures: 0 };
  /** Called on every guest write to SCRATCH, e.g. to mark benchmark phases. */
  readonly scratchListeners: ((value: number) => void)[] = [];
  private windowBase = 0;
  private mailboxSeq = 0;
  private closed = false;

  constructor(private readonly options: MdgpuDeviceOptions) {
    const size = options.apertureSize;
    if (!Number.isSafeInteger(size) || size < MIN_APERTURE_SIZE || (BigInt(size) & (BigInt(size) - 1n)) !== 0n) {
      throw new RangeError(`Aperture size must be a power of two ≥ 64 KiB: ${size}`);
    }
    this.name = options.name;
    this.apertureSize = BigInt(size);
    const host = options.host;
    this.apertureFd = host.createMemfd(`mdgpu-aperture-${options.name}`, size);
    try {
      this.apertureBuffer = host.mmap(this.apertureFd, 0, size, true);
    } catch (err) {
      host.close(this.apertureFd);
      throw err;
    }
    this.aperture = new Uint8Array(this.apertureBuffer);
    const allocator = new ApertureAllocator(ALLOC_BASE, size);
    const quota = options.quota ?? allocator.capacity;
    if (!Number.isSafeInteger(quota) || quota < 0) throw new RangeError(`Bad quota: ${quota}`);
    this.memory = new MemoryMediator({
      name: options.name,
      allocator,
      quota,
      maxContexts: options.maxContexts ?? DEFAULT_MAX_CONTEXTS,
      maxBuffers: options.maxBuffers ?? DEFAULT_MAX_BUFFERS,
      zero: (offset, length) => host.discard(this.apertureFd, offset, length),
    });
    this.attachedExecutor = options.executor ?? null;
    this.queues = new QueueEngine(this);
    this.regs = new RegisterFile(`${options.name}/regs`, MDGPU_REGS, this as RegContext);

    const registerPage: RegionHandler = {
      read: (offset, count) => this.readRegisters(offset, count, new Uint8Array(count), 0),
      write: (offset, data) => this.writeRegisters(offset, data, 0, data.length),
      readInto: (offset, count, out, at) => this.readRegisters(offset, count, out, at),
      writeFrom: (offset, src, at, count) => this.writeRegisters(offset, src, at, count),
    };
    const window: RegionHandler = {
      read: (offset, count) => this.aperture.slice(this.windowBase + offset, this.windowBase + offset + count),
      write: (offset, data) => this.aperture.set(data, this.windowBase + offset),
    };
    const apertureHandler: RegionHandler = {
      // QEMU maps everything past the first page; a trapped access there means the mmap failed
      // (QEMU then traps the whole BAR) or another client: serve it from the memfd all the same.
      read: (offset, count) => (offset + count <= TRAPPED_WINDOW_SIZE ? window.read(offset, count) : this.aperture.slice(offset, offset + count)),
      write: (offset, data) => (offset + data.length <= TRAPPED_WINDOW_SIZE ? window.write(offset, data) : this.aperture.set(data, offset)),
    };
    const vectors = options.msixVectors ?? 4;
    this.pci = new PciFunction({
      name: options.name,
      identity: { ...DEFAULT_IDENTITY, ...options.identity },
      bars: [
        {
          size,
          is64: true,
          prefetchable: true,
          handler: apertureHandler,
          mmap: { fd: this.apertureFd, fdOffset: 0, areas: [{ offset: TRAPPED_WINDOW_SIZE, size: size - TRAPPED_WINDOW_SIZE }] },
        },
        undefined,
        { size: REGISTER_BAR_SIZE, is64: false, prefetchable: false, handler: registerPage },
      ],
      msix: { vectors, bar: REGISTER_BAR, tableOffset: MSIX_TABLE_OFFSET, pbaOffset: MSIX_PBA_OFFSET },
      eventfds: host,
      memory: host,
    });
    this.pci.onReset(() => this.resetDevice());
    // The VM is gone (QEMU exited or was killed): nothing can drive its queues any more, so they
    // stop and its kernels are released from the host driver. Device memory, contexts and
    // registers stay, as vfio-user asks of a disconnect; the next QEMU resets the device anyway.
    this.pci.onDetach(() => this.queues.reset());
  }

  /**
   * Register page accesses: 1, 2, 4 bytes as one access, 8 bytes as two 32-bit ones. Reads go
   * into `out` at `at` (little-endian) and return it; no allocation, the transport's reply buffer
   * is `out` on the fast path.
   */
  private readRegisters(offset: number, count: number, out: Uint8Array, at: number): Uint8Array {
    if (count === 8 && offset % 4 === 0) {
      putU32(out, at, this.regs.read(offset, 4));
      putU32(out, at + 4, this.regs.read(offset + 4, 4));
    } else if ((count === 1 || count === 2 || count === 4) && offset % count === 0) {
      const value = this.regs.read(offset, count);
      for (let i = 0; i < count; i++) out[at + i] = (value >>> (8 * i)) & 0xff;
    } else {
      guestError(`${this.name}-regwidth`, `${this.name}: register read of ${count} bytes at 0x${offset.toString(16)} ignored`);
      out.fill(0, at, at + count);
    }
    return out;
  }

  /** `count` bytes of `src` at `at` (the transport's input buffer on the fast path), little-endian. */
  private writeRegisters(offset: number, src: Uint8Array, at: number, count: number): void {
    if (count === 8 && offset % 4 === 0) {
      this.regs.write(offset, 4, getU32(src, at));
      this.regs.write(offset + 4, 4, getU32(src, at + 4));
    } else if ((count === 1 || count === 2 || count === 4) && offset % count === 0) {
      let value = 0;
      for (let i = 0; i < count; i++) value |= src[at + i]! << (8 * i);
      this.regs.write(offset, count, value >>> 0);
    } else {
      guestError(`${this.name}-regwidth`, `${this.name}: register write of ${count} bytes at 0x${offset.toString(16)} ignored`);
    }
  }

  get executor(): Executor | null {
    return this.attachedExecutor;
  }

  /** Attach the executor once it exists (it imports this device's aperture). */
  attachExecutor(backend: Executor): void {
    if (this.attachedExecutor !== null) throw new Error(`${this.name} already has an executor`);
    this.attachedExecutor = backend;
  }

  queueDoorbell(queue: number): void {
    this.queues.doorbell(queue);
  }

  /** Raise interrupt sources from the device side (fences, errors). */
  raiseIrq(bits: number): void {
    this.raiseIrqBits(bits);
  }

  scratchWritten(value: number): void {
    for (const listener of this.scratchListeners) listener(value);
  }

  windowChanged(): void {
    const base = (BigInt(this.regs.get('WINDOW_BASE_HI')) << 32n) | BigInt(this.regs.get('WINDOW_BASE_LO'));
    if (base + BigInt(TRAPPED_WINDOW_SIZE) > this.apertureSize) {
      guestError(`${this.name}-window`, `${this.name}: window base 0x${base.toString(16)} outside the aperture; window reset to 0`);
      this.regs.set('WINDOW_BASE_LO', 0);
      this.regs.set('WINDOW_BASE_HI', 0);
      this.windowBase = 0;
      return;
    }
    this.windowBase = Number(base);
  }

  raiseIrqBits(bits: number): void {
    const newBits = bits & ~this.regs.get('IRQ_STATUS') & ((1 << MDGPU_IRQ_SOURCES) - 1);
    this.regs.set('IRQ_STATUS', this.regs.get('IRQ_STATUS') | bits);
    this.updateInterrupts(newBits);
  }

  /**
   * Recompute interrupts. With MSI-X each newly raised, enabled source fires its vector (edge);
   * with INTx the line is the level of (IRQ_STATUS & IRQ_ENABLE).
   */
  updateInterrupts(newBits = 0): void {
    const active = this.regs.get('IRQ_STATUS') & this.regs.get('IRQ_ENABLE');
    if (this.pci.msixEnabled) {
      for (let source = 0; source < MDGPU_IRQ_SOURCES; source++) {
        if ((newBits & active & (1 << source)) !== 0) this.pci.raiseInterrupt(source);
      }
      return;
    }
    if (active !== 0) this.pci.raiseInterrupt(0);
    else this.pci.lowerIntx();
  }

  /**
   * MBOX_DOORBELL: run the operation synchronously, so by the time the guest's (non-posted)
   * doorbell write completes, MBOX_STATUS and MBOX_RETn hold the result. Completion also raises
   * the MAILBOX interrupt source for drivers that prefer to sleep.
   */
  mailboxDoorbell(): void {
    const opcode = this.regs.get('MBOX_OPCODE') & 0xffff;
    const args = Array.from({ length: MAILBOX_ARGS }, (_, i) => this.regs.get(`MBOX_ARG${i}`));
    let rets: number[] = [];
    let result: number = MAILBOX_RESULTS.OK.code;
    this.mailboxStats.operations++;
    try {
      rets = this.executeMailbox(opcode, args);
    } catch (err) {
      if (!(err instanceof MailboxFailure)) throw err;
      result = MAILBOX_RESULTS[err.result].code;
      this.mailboxStats.failures++;
    }
    for (let i = 0; i < MAILBOX_RETS; i++) this.regs.set(`MBOX_RET${i}`, rets[i] ?? 0);
    this.mailboxSeq = (this.mailboxSeq + 1) & 0xffff;
    this.regs.set('MBOX_STATUS', (this.mailboxSeq << 16) | result);
    this.raiseIrqBits(1 << IRQ_SOURCE_MAILBOX);
  }

  private executeMailbox(opcode: number, args: number[]): number[] {
    const a = (i: number) => args[i] ?? 0;
    const u64 = (lo: number, hi: number) => (BigInt(hi >>> 0) << 32n) | BigInt(lo >>> 0);
    const split = (v: number | bigint) => [Number(BigInt(v) & 0xffff_ffffn), Number(BigInt(v) >> 32n)];
    const mem = this.memory;
    switch (opcode) {
      case MAILBOX_OPS.NOP.code:
        return [];
      case MAILBOX_OPS.QUERY.code:
        return split(this.query(a(0)));
      case MAILBOX_OPS.CTX_CREATE.code:
        return [mem.createContext()];
      case MAILBOX_OPS.CAPS_READ.code: {
        const buffer = mem.buffer(a(0), a(1));
        const record = this.capsRecord();
        if (a(2) > buffer.size || record.length > buffer.size - a(2)) {
          throw new MailboxFailure('BAD_SIZE', `the ${record.length}-byte capability record does not fit at ${a(2)} in a buffer of ${buffer.size}`);
        }
        this.aperture.set(record, buffer.offset + a(2));
        return [record.length];
      }
      case MAILBOX_OPS.CTX_DESTROY.code:
        if (mem.hasContext(a(0))) this.queues.destroyContext(a(0));
        return [mem.destroyContext(a(0))];
      case MAILBOX_OPS.BO_ALLOC.code: {
        const bo = mem.alloc(a(0), u64(a(1), a(2)), a(3), a(4));
        return [bo.handle, ...split(bo.offset)];
      }
      case MAILBOX_OPS.BO_FREE.code:
        mem.free(a(0), a(1));
        return [];
      case MAILBOX_OPS.BO_INFO.code: {
        const bo = mem.buffer(a(0), a(1));
        return [...split(bo.offset), ...split(bo.size)];
      }
      case MAILBOX_OPS.QUEUE_CREATE.code:
        return [this.queues.createQueue(a(0), a(1), a(2))];
      case MAILBOX_OPS.QUEUE_DESTROY.code:
        this.requireContext(a(0));
        this.queues.destroyQueue(a(0), a(1));
        return [];
      case MAILBOX_OPS.KERNEL_CREATE.code:
        return [this.queues.createKernel(a(0), a(1), a(2), a(3), a(4), a(5))];
      case MAILBOX_OPS.KERNEL_DESTROY.code:
        this.requireContext(a(0));
        this.queues.destroyKernel(a(0), a(1));
        return [];
      case MAILBOX_OPS.KERNEL_CREATE2.code:
        return [this.queues.createKernelFromDesc(a(0), a(1), a(2), a(3))];
      case MAILBOX_OPS.KERNEL_STATUS.code:
        this.requireContext(a(0));
        return this.queues.kernels.status(a(0), a(1));
      default:
        guestError(`${this.name}-mbox-op`, `${this.name}: unknown mailbox opcode 0x${opcode.toString(16)}`);
        throw new MailboxFailure('UNKNOWN_OPCODE', `unknown opcode 0x${opcode.toString(16)}`);
    }
  }

  private requireContext(ctx: number): void {
    if (!this.memory.hasContext(ctx)) throw new MailboxFailure('BAD_CONTEXT', `no context ${ctx}`);
  }

  private query(param: number): number | bigint {
    const mem = this.memory;
    switch (param) {
      case QUERY_PARAMS.VERSION.code:
        return (MDGPU_CONTRACT_MAJOR << 16) | MDGPU_CONTRACT_MINOR;
      case QUERY_PARAMS.APERTURE_SIZE.code:
        return this.apertureSize;
      case QUERY_PARAMS.ALLOC_BASE.code:
        return mem.allocator.base;
      case QUERY_PARAMS.QUOTA.code:
        return mem.quota;
      case QUERY_PARAMS.USED.code:
        // Idle cached kernels are given back on demand: not what the VM holds.
        return mem.inUse;
      case QUERY_PARAMS.MAX_CONTEXTS.code:
        return this.options.maxContexts ?? DEFAULT_MAX_CONTEXTS;
      case QUERY_PARAMS.MAX_BUFFERS.code:
        return this.options.maxBuffers ?? DEFAULT_MAX_BUFFERS;
      case QUERY_PARAMS.MIN_ALIGN.code:
        return mem.allocator.granule;
      case QUERY_PARAMS.LARGEST_FREE.code:
        return mem.allocator.largestFree;
      case QUERY_PARAMS.CONTEXTS.code:
        return mem.contextCount;
      case QUERY_PARAMS.BUFFERS.code:
        return mem.bufferCount;
      case QUERY_PARAMS.MAX_QUEUES.code:
        return this.queues.maxQueues;
      case QUERY_PARAMS.MAX_KERNELS.code:
        return this.queues.maxKernels;
      case QUERY_PARAMS.MAX_SUBMISSION.code:
        return this.queues.limits.maxSubmissionBytes;
      case QUERY_PARAMS.GRACE_US.code:
        return Math.round(this.queues.graceMs * 1000);
      case QUERY_PARAMS.HAS_BACKEND.code:
        return this.executor === null ? 0 : 1;
      case QUERY_PARAMS.BINDING_ALIGN.code:
        return this.queues.limits.bindingAlignment;
      case QUERY_PARAMS.MAX_BINDING.code:
        return this.queues.limits.maxBindingBytes;
      case QUERY_PARAMS.KERNEL_BUILD_MS.code:
        return this.options.kernelBuildMs ?? 0;
      case QUERY_PARAMS.MAX_KERNEL_BUILDS.code:
        return this.queues.kernels.maxBuilds;
      case QUERY_PARAMS.CAPS_SIZE.code:
        return Caps.size;
      default:
        throw new MailboxFailure('BAD_PARAM', `unknown query parameter ${param}`);
    }
  }

  /**
   * The capability record (contract 1.3): the executor's (the host device's, minus what
   * mdgpu does not mediate, within the validator's limits), with this VM's memory limits; without
   * a backend there is nothing a kernel could do.
   */
  private capsRecord(): Uint8Array {
    const backend = this.executor;
    if (backend === null) throw new MailboxFailure('UNSUPPORTED', 'no executor on this device');
    const record = backend.caps(this.queues.limits);
    return encodeCaps({ ...record, maxMemoryAllocationSize: BigInt(Math.min(this.memory.quota, this.memory.allocator.capacity)) });
  }

  /** Device reset: registers to reset values, no contexts or buffers, a fresh (zeroed) aperture. */
  private resetDevice(): void {
    this.regs.reset();
    this.queues.reset();
    this.memory.reset();
    this.mailboxSeq = 0;
    this.windowBase = 0;
    this.options.host.discard(this.apertureFd, 0, Number(this.apertureSize));
  }

  /** Release the aperture mapping and memfd. The device is unusable afterwards. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    // Stop the queues first: nothing may touch the aperture once it is unmapped below.
    this.queues.reset();
    this.pci.detachClient();
    this.options.host.munmap(this.apertureBuffer);
    this.options.host.close(this.apertureFd);
  }
}

/** Little-endian u32 into a byte array, without a DataView (register accesses). */
function putU32(out: Uint8Array, at: number, value: number): void {
  out[at] = value & 0xff;
  out[at + 1] = (value >>> 8) & 0xff;
  out[at + 2] = (value >>> 16) & 0xff;
  out[at + 3] = value >>> 24;
}

/** Little-endian u32 from a byte array. */
function getU32(src: Uint8Array, at: number): number {
  return (src[at]! | (src[at + 1]! << 8) | (src[at + 2]! << 16) | (src[at + 3]! << 24)) >>> 0;
}
