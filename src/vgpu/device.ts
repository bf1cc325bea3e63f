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
import { MDGPU_IRQ_SOURCES, MDGPU_REGS, type RegContext } from './regs.js';

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
  host: DeviceHostOps;
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
  private windowBase = 0;
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
    this.regs = new RegisterFile(`${options.name}/regs`, MDGPU_REGS, this as RegContext);

    const registerPage: RegionHandler = {
      read: (offset, count) => this.readRegisters(offset, count),
      write: (offset, data) => this.writeRegisters(offset, data),
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
  }

  /** Register page accesses: 1, 2, 4 bytes as one access, 8 bytes as two 32-bit ones. */
  private readRegisters(offset: number, count: number): Uint8Array {
    const out = new Uint8Array(count);
    const view = new DataView(out.buffer);
    if (count === 8 && offset % 4 === 0) {
      view.setUint32(0, this.regs.read(offset, 4), true);
      view.setUint32(4, this.regs.read(offset + 4, 4), true);
    } else if ((count === 1 || count === 2 || count === 4) && offset % count === 0) {
      const value = this.regs.read(offset, count);
      for (let i = 0; i < count; i++) out[i] = (value >>> (8 * i)) & 0xff;
    } else {
      guestError(`${this.name}-regwidth`, `${this.name}: register read of ${count} bytes at 0x${offset.toString(16)} ignored`);
    }
    return out;
  }

  private writeRegisters(offset: number, data: Uint8Array): void {
    const view = new DataView(data.buffer, data.byteOffset, data.byteLength);
    const count = data.length;
    if (count === 8 && offset % 4 === 0) {
      this.regs.write(offset, 4, view.getUint32(0, true));
      this.regs.write(offset + 4, 4, view.getUint32(4, true));
    } else if ((count === 1 || count === 2 || count === 4) && offset % count === 0) {
      let value = 0;
      for (let i = 0; i < count; i++) value |= data[i]! << (8 * i);
      this.regs.write(offset, count, value >>> 0);
    } else {
      guestError(`${this.name}-regwidth`, `${this.name}: register write of ${count} bytes at 0x${offset.toString(16)} ignored`);
    }
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

  /** Device reset: registers to reset values, a fresh (zeroed) aperture. */
  private resetDevice(): void {
    this.regs.reset();
    this.windowBase = 0;
    this.options.host.discard(this.apertureFd, 0, Number(this.apertureSize));
  }

  /** Release the aperture mapping and memfd. The device is unusable afterwards. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.pci.detachClient();
    this.options.host.munmap(this.apertureBuffer);
    this.options.host.close(this.apertureFd);
  }
}
