/**
 * A generic PCI Express function (type 0 header) as a vfio-user server exposes it: config space
 * with a capability list (PM, MSI-X, PCIe v2 Endpoint), up to six memory BARs with trapped
 * handlers and optional mmappable areas backed by an fd, MSI-X delivery through eventfds, INTx
 * with resample, DMA mappings of guest memory, and reset.
 *
 * Nothing here knows vfio-user's wire format: the server translates messages into these calls
 * (libvfio-user's region callbacks and rust-vmm's ServerBackend make the same split).
 */
import { guestError, tracer } from '../log.js';
import { ConfigSpace, PCIE_CONFIG_SPACE_SIZE, PciCapId, PciCommand, PciReg, PciStatus } from './config-space.js';
import { DmaSpace, type MemoryOps } from './dma-space.js';
import { IrqController, IrqIndex, type EventFdOps } from './irqs.js';

const traceCfg = tracer('config');

/** vfio's PCI region indices (linux vfio.h VFIO_PCI_*_REGION_INDEX). */
export const RegionIndex = { BAR0: 0, BAR5: 5, ROM: 6, CONFIG: 7, VGA: 8, COUNT: 9 } as const;

/** Trapped accesses to a region: every call is one VM exit the guest paid for. */
export interface RegionHandler {
  /** Read `count` bytes at `offset` (already bounds-checked against the region). */
  read(offset: number, count: number): Uint8Array;
  /** Write `data` at `offset` (bounds-checked); `data` is the handler's to keep. */
  write(offset: number, data: Uint8Array): void;
  /**
   * Optional allocation-free read (register pages): `count` bytes at `offset` into `out` at `at`.
   * Used instead of `read` when present; `out` is a reused buffer, not the handler's to keep.
   */
  readInto?(offset: number, count: number, out: Uint8Array, at: number): void;
  /**
   * Optional allocation-free write: `count` bytes from `src` at `at`, written at `offset`. Used
   * instead of `write` when present; `src` is the transport's input buffer, valid during the call only.
   */
  writeFrom?(offset: number, src: Uint8Array, at: number, count: number): void;
}

export interface MmapDescriptor {
  /** The fd QEMU mmaps; owned by the device, sent (duplicated by SCM_RIGHTS) in REGION_INFO. */
  fd: number;
  /** Where the region starts in the fd. */
  fdOffset: number;
  /** Page-aligned, sorted, non-overlapping areas relative to the region start. */
  areas: { offset: number; size: number }[];
}

export interface BarSpec {
  /** Size in bytes, a power of two (≥ 4096 when mmappable). */
  size: number;
  is64: boolean;
  prefetchable: boolean;
  handler: RegionHandler;
  mmap?: MmapDescriptor;
}

export interface RegionInfo {
  size: number;
  readable: boolean;
  writable: boolean;
  mmap?: MmapDescriptor;
}

export interface PciIdentity {
  vendorId: number;
  deviceId: number;
  subsystemVendorId: number;
  subsystemId: number;
  revision: number;
  /** 24-bit class code: base class, subclass, programming interface. */
  classCode: number;
}

export interface MsixPlacement {
  vectors: number;
  bar: number;
  tableOffset: number;
  pbaOffset: number;
}

export interface PciFunctionOptions {
  name: string;
  identity: PciIdentity;
  /** Index = BAR number; a 64-bit BAR takes the following slot, which must be undefined. */
  bars: (BarSpec | undefined)[];
  msix?: MsixPlacement;
  eventfds: EventFdOps;
  memory: MemoryOps;
}

/** An access error the transport turns into an errno reply. */
export class RegionError extends Error {
  constructor(
    message: string,
    readonly errno: 'EINVAL' | 'ENOTSUP' = 'EINVAL',
  ) {
    super(message);
  }
}

const MSIX_ENTRY_SIZE = 16;
const MSIX_CTRL_ENABLE = 1 << 15;
const MSIX_CTRL_MASKALL = 1 << 14;

export class PciFunction {
  readonly name: string;
  readonly config = new ConfigSpace(PCIE_CONFIG_SPACE_SIZE);
  readonly irqs: IrqController;
  readonly dma: DmaSpace;
  /** Trapped accesses per region index (REGION_READ / REGION_WRITE): the VM exits. */
  readonly trappedReads = new Array<number>(RegionIndex.COUNT).fill(0);
  readonly trappedWrites = new Array<number>(RegionIndex.COUNT).fill(0);
  private readonly bars: (BarSpec | undefined)[];
  private readonly msix: MsixPlacement | undefined;
  private readonly msixTable: Uint8Array;
  private msixCapOffset = 0;
  private configAtReset: { bytes: Uint8Array } = { bytes: new Uint8Array(0) };
  private readonly resetHooks: (() => void)[] = [];
  private readonly detachHooks: (() => void)[] = [];

  constructor(options: PciFunctionOptions) {
    this.name = options.name;
    this.bars = options.bars.slice(0, 6);
    this.msix = options.msix;
    validateBars(this.bars, this.msix);
    this.irqs = new IrqController({ msixVectors: this.msix?.vectors ?? 0, intx: true }, options.eventfds);
    this.dma = new DmaSpace(options.memory, () => this.busMasterEnabled);
    this.msixTable = new Uint8Array((this.msix?.vectors ?? 0) * MSIX_ENTRY_SIZE);
    this.buildConfig(options.identity);
    this.configAtReset = { bytes: this.config.bytes.slice() };
    this.resetMsixTable();
  }

  private buildConfig(id: PciIdentity): void {
    const c = this.config;
    c.setU16(PciReg.VENDOR_ID, id.vendorId);
    c.setU16(PciReg.DEVICE_ID, id.deviceId);
    c.setMasks(PciReg.COMMAND, 2, PciCommand.MEMORY | PciCommand.MASTER | PciCommand.PARITY | PciCommand.SERR | PciCommand.INTX_DISABLE);
    c.setMasks(PciReg.STATUS, 2, 0, PciStatus.W1C_ERRORS);
    c.setU8(PciReg.REVISION_ID, id.revision);
    c.setU8(PciReg.CLASS_PROG, id.classCode & 0xff);
    c.setU16(PciReg.CLASS_DEVICE, (id.classCode >>> 8) & 0xffff);
    c.setMasks(PciReg.CACHE_LINE_SIZE, 1, 0xff);
    c.setU16(PciReg.SUBSYSTEM_VENDOR_ID, id.subsystemVendorId);
    c.setU16(PciReg.SUBSYSTEM_ID, id.subsystemId);
    c.setMasks(PciReg.INTERRUPT_LINE, 1, 0xff);
    c.setU8(PciReg.INTERRUPT_PIN, 1);

    for (let n = 0; n < 6; n++) {
      const bar = this.bars[n];
      if (bar === undefined) continue;
      const at = PciReg.BAR0 + 4 * n;
      // Memory BAR type bits: 64-bit = 0b10 in bits 2:1; prefetchable = bit 3. QEMU reads them once.
      const typeBits = (bar.is64 ? 0b100 : 0) | (bar.prefetchable ? 0b1000 : 0);
      c.setU32(at, typeBits);
      // Sizing: only the address bits above the size are writable, so ~0 reads back ~(size-1).
      const low = Number(BigInt.asUintN(32, ~(BigInt(bar.size) - 1n))) & ~0xf;
      c.setMasks(at, 4, low >>> 0);
      if (bar.is64) c.setMasks(at + 4, 4, Number(BigInt.asUintN(32, ~(BigInt(bar.size) - 1n) >> 32n)));
    }
    // No expansion ROM: the ROM BAR reads 0 even after QEMU's sizing write.

    const pm = c.addCapability(PciCapId.PM, 8);
    c.setU16(pm + 2, 0x0003); // PM version 3, no PME, D0 only
    c.setMasks(pm + 4, 2, 0x0003); // PMCSR power state
    c.setU16(pm + 4, 0x0008); // No_Soft_Reset: state is kept across D3hot->D0

    if (this.msix !== undefined) {
      const m = this.msix;
      const cap = c.addCapability(PciCapId.MSIX, 12);
      this.msixCapOffset = cap;
      c.setU16(cap + 2, m.vectors - 1);
      c.setMasks(cap + 2, 2, MSIX_CTRL_ENABLE | MSIX_CTRL_MASKALL);
      c.setU32(cap + 4, m.tableOffset | m.bar);
      c.setU32(cap + 8, m.pbaOffset | m.bar);
    }

    // PCI Express capability v2, Endpoint (type 0): QEMU refuses other port types.
    const exp = c.addCapability(PciCapId.EXP, 0x3c);
    c.setU16(exp + 0x02, 0x0002); // version 2, device/port type 0 (Endpoint)
    c.setU32(exp + 0x04, 0x0000_8000); // DevCap: 128-byte max payload, role-based error reporting
    c.setMasks(exp + 0x08, 2, 0x7fff); // DevCtl
    c.setU16(exp + 0x08, 0x2810); // relaxed ordering, no snoop, 512-byte max read request
    c.setMasks(exp + 0x0a, 2, 0, 0x000f); // DevSta error bits are write-1-to-clear
    c.setU32(exp + 0x0c, 0x0000_0011); // LnkCap: 2.5 GT/s, x1
    c.setMasks(exp + 0x10, 2, 0x0fc3); // LnkCtl
    c.setU16(exp + 0x12, 0x0011); // LnkSta: 2.5 GT/s, x1
    c.setMasks(exp + 0x28, 2, 0x041f); // DevCtl2
    c.setU32(exp + 0x2c, 0x0000_0002); // LnkCap2: 2.5 GT/s supported
    c.setMasks(exp + 0x30, 2, 0x000f); // LnkCtl2 target speed
    c.setU16(exp + 0x30, 0x0001);
    // 0x100 stays 0: no extended capabilities.
  }

  get commandRegister(): number {
    return this.config.u16(PciReg.COMMAND);
  }

  get busMasterEnabled(): boolean {
    return (this.commandRegister & PciCommand.MASTER) !== 0;
  }

  get memoryEnabled(): boolean {
    return (this.commandRegister & PciCommand.MEMORY) !== 0;
  }

  get msixEnabled(): boolean {
    if (this.msix === undefined) return false;
    const ctrl = this.config.u16(this.msixCapOffset + 2);
    return (ctrl & MSIX_CTRL_ENABLE) !== 0 && (ctrl & MSIX_CTRL_MASKALL) === 0;
  }

  /** Register an action for when the client (the VM's QEMU) goes away. */
  onDetach(hook: () => void): void {
    this.detachHooks.push(hook);
  }

  /** Register a device-level reset action (DEVICE_RESET, FLR-like). */
  onReset(hook: () => void): void {
    this.resetHooks.push(hook);
  }

  regionInfo(index: number): RegionInfo {
    if (!Number.isInteger(index) || index < 0 || index >= RegionIndex.COUNT) {
      throw new RegionError(`Bad region index: ${index}`);
    }
    if (index === RegionIndex.CONFIG) return { size: this.config.size, readable: true, writable: true };
    const bar = index <= RegionIndex.BAR5 ? this.bars[index] : undefined;
    if (bar === undefined) return { size: 0, readable: false, writable: false };
    return { size: bar.size, readable: true, writable: true, ...(bar.mmap ? { mmap: bar.mmap } : {}) };
  }

  /** Size of region `index` in bytes (0: none); no allocation, for the per-access check. */
  private regionSize(index: number): number {
    if (index === RegionIndex.CONFIG) return this.config.size;
    return index <= RegionIndex.BAR5 ? (this.bars[index]?.size ?? 0) : 0;
  }

  /** Validate an access in plain numbers (regions are far below 2^53); returns the offset. */
  private checkAccess(index: number, offset: bigint | number, count: number): number {
    if (!Number.isInteger(index) || index < 0 || index >= RegionIndex.COUNT) {
      throw new RegionError(`Bad region index: ${index}`);
    }
    const size = this.regionSize(index);
    const at = typeof offset === 'bigint' ? (offset >= 0n && offset <= BigInt(size) ? Number(offset) : -1) : offset;
    if (!Number.isInteger(count) || count <= 0 || !Number.isInteger(at) || at < 0 || at + count > size) {
      throw new RegionError(`Region access out of bounds: region ${index}, 0x${offset.toString(16)}+${count} > 0x${size.toString(16)}`);
    }
    return at;
  }

  regionRead(index: number, offset: bigint | number, count: number): Uint8Array {
    const at = this.checkAccess(index, offset, count);
    const out = new Uint8Array(count);
    this.readAt(index, at, count, out, 0);
    return out;
  }

  /**
   * {@link regionRead} into `out` at `outAt` (the transport's reused reply buffer): no allocation
   * for register pages. Throws RegionError before reading anything if the access is out of bounds.
   */
  regionReadInto(index: number, offset: number, count: number, out: Uint8Array, outAt: number): void {
    this.readAt(index, this.checkAccess(index, offset, count), count, out, outAt);
  }

  regionWrite(index: number, offset: bigint | number, data: Uint8Array): void {
    this.regionWriteFrom(index, offset, data, 0, data.length);
  }

  /**
   * {@link regionWrite} of `src[srcAt, srcAt + count)` (the transport's input buffer, valid during
   * the call only): no allocation for register pages.
   */
  regionWriteFrom(index: number, offset: bigint | number, src: Uint8Array, srcAt: number, count: number): void {
    const at = this.checkAccess(index, offset, count);
    this.trappedWrites[index]!++;
    if (index === RegionIndex.CONFIG) {
      this.writeConfig(at, src.subarray(srcAt, srcAt + count));
      return;
    }
    this.barWrite(index, at, src, srcAt, count);
  }

  private readAt(index: number, at: number, count: number, out: Uint8Array, outAt: number): void {
    this.trappedReads[index]!++;
    if (index === RegionIndex.CONFIG) out.set(this.readConfig(at, count), outAt);
    else this.barRead(index, at, count, out, outAt);
  }

  private readConfig(at: number, count: number): Uint8Array {
    const out = this.config.read(at, count);
    // STATUS.INTERRUPT mirrors the INTx level.
    if (at <= PciReg.STATUS && at + count > PciReg.STATUS && this.irqs.intxAsserted) {
      out[PciReg.STATUS - at]! |= PciStatus.INTERRUPT;
    }
    traceCfg(() => `${this.name} cfg RD 0x${at.toString(16)}+${count}`);
    return out;
  }

  private writeConfig(at: number, data: Uint8Array): void {
    const commandBefore = this.commandRegister;
    this.config.write(at, data);
    traceCfg(() => `${this.name} cfg WR 0x${at.toString(16)}+${data.length} = ${Buffer.from(data).toString('hex')}`);
    const command = this.commandRegister;
    if (command !== commandBefore) {
      this.irqs.setIntxDisabled((command & PciCommand.INTX_DISABLE) !== 0);
    }
  }

  private msixRange(index: number, at: number, count: number): 'table' | 'pba' | null {
    const m = this.msix;
    if (m === undefined || index !== m.bar) return null;
    const tableEnd = m.tableOffset + m.vectors * MSIX_ENTRY_SIZE;
    const pbaEnd = m.pbaOffset + Math.ceil(m.vectors / 64) * 8;
    if (at >= m.tableOffset && at + count <= tableEnd) return 'table';
    if (at >= m.pbaOffset && at + count <= pbaEnd) return 'pba';
    return null;
  }

  private barRead(index: number, at: number, count: number, out: Uint8Array, outAt: number): void {
    const msix = this.msixRange(index, at, count);
    if (msix === 'table') {
      const off = at - this.msix!.tableOffset;
      out.set(this.msixTable.subarray(off, off + count), outAt);
      return;
    }
    if (msix === 'pba') {
      out.set(this.readPba(at - this.msix!.pbaOffset, count), outAt);
      return;
    }
    const handler = this.bars[index]!.handler;
    if (handler.readInto !== undefined) {
      handler.readInto(at, count, out, outAt);
      return;
    }
    const data = handler.read(at, count);
    // Exactly `count` bytes: `out` may be a reused buffer, so a short answer must not leave old bytes.
    out.set(data.length > count ? data.subarray(0, count) : data, outAt);
    if (data.length < count) out.fill(0, outAt + data.length, outAt + count);
  }

  private barWrite(index: number, at: number, src: Uint8Array, srcAt: number, count: number): void {
    const msix = this.msixRange(index, at, count);
    if (msix === 'table') {
      // QEMU emulates the table itself, so this only serves other clients; kept for reads.
      this.msixTable.set(src.subarray(srcAt, srcAt + count), at - this.msix!.tableOffset);
      return;
    }
    if (msix === 'pba') {
      guestError(`${this.name}-pba`, `${this.name}: write to the MSI-X PBA ignored`);
      return;
    }
    const handler = this.bars[index]!.handler;
    if (handler.writeFrom !== undefined) handler.writeFrom(at, src, srcAt, count);
    // A copy: `src` may be the transport's buffer, and `write` may keep what it is given.
    else handler.write(at, srcAt === 0 && count === src.length ? src : src.slice(srcAt, srcAt + count));
  }

  private readPba(off: number, count: number): Uint8Array {
    const bits = this.irqs.msixPendingBits();
    const out = new Uint8Array(count);
    for (let i = 0; i < count; i++) {
      let byte = 0;
      for (let b = 0; b < 8; b++) if (bits[(off + i) * 8 + b] === true) byte |= 1 << b;
      out[i] = byte;
    }
    return out;
  }

  private resetMsixTable(): void {
    this.msixTable.fill(0);
    // Vector Control: every vector starts masked (PCI spec).
    for (let v = 0; v * MSIX_ENTRY_SIZE < this.msixTable.length; v++) this.msixTable[v * MSIX_ENTRY_SIZE + 12] = 1;
  }

  /** Deliver an interrupt: MSI-X vector when enabled, else the INTx line (level, until `lowerIntx`). */
  raiseInterrupt(vector: number): void {
    if (this.msixEnabled) {
      this.irqs.raiseMsix(vector);
    } else if (this.msix !== undefined && this.config.u16(this.msixCapOffset + 2) & MSIX_CTRL_ENABLE) {
      // MSI-X enabled but function-masked: QEMU tracks pending state; nothing to do here.
    } else {
      this.irqs.setIntxLevel(true);
    }
  }

  /** Drop the INTx level (the guest acknowledged the device's interrupt status). */
  lowerIntx(): void {
    this.irqs.setIntxLevel(false);
  }

  /** DEVICE_RESET: config space back to power-on values, interrupts deasserted, device hooks run. */
  reset(): void {
    this.config.bytes.set(this.configAtReset.bytes);
    this.irqs.reset();
    this.resetMsixTable();
    for (const hook of this.resetHooks) hook();
  }

  /** The client disconnected: drop its DMA mappings and eventfds, keep device state. */
  detachClient(): void {
    this.dma.setMessageDma(null);
    this.dma.unmapAll();
    this.irqs.releaseAll();
    for (const hook of this.detachHooks) hook();
  }

  /** Total trapped accesses (VM exits) across all regions. */
  get trappedAccesses(): number {
    return this.trappedReads.reduce((a, b) => a + b, 0) + this.trappedWrites.reduce((a, b) => a + b, 0);
  }
}

function isPowerOfTwo(n: number): boolean {
  return n > 0 && Number.isSafeInteger(n) && (BigInt(n) & (BigInt(n) - 1n)) === 0n;
}

function validateBars(bars: (BarSpec | undefined)[], msix: MsixPlacement | undefined): void {
  bars.forEach((bar, n) => {
    if (bar === undefined) return;
    if (!isPowerOfTwo(bar.size) || bar.size < 16) throw new Error(`BAR${n} size must be a power of two ≥ 16: ${bar.size}`);
    if (!bar.is64 && bar.size > 0x8000_0000) throw new Error(`BAR${n} is 32-bit but ${bar.size} bytes`);
    if (bar.is64 && (n === 5 || bars[n + 1] !== undefined)) throw new Error(`BAR${n} is 64-bit and needs BAR${n + 1} free`);
    for (const area of bar.mmap?.areas ?? []) {
      if (area.offset % 4096 !== 0 || area.size % 4096 !== 0 || area.size === 0 || area.offset + area.size > bar.size) {
        throw new Error(`BAR${n} mmap area must be page aligned and inside the BAR: 0x${area.offset.toString(16)}+0x${area.size.toString(16)}`);
      }
    }
  });
  if (msix !== undefined) {
    const bar = bars[msix.bar];
    if (bar === undefined) throw new Error(`MSI-X BAR${msix.bar} does not exist`);
    if (msix.vectors < 1 || msix.vectors > 2048) throw new Error(`MSI-X vectors out of range: ${msix.vectors}`);
    if (msix.tableOffset % 8 !== 0 || msix.pbaOffset % 8 !== 0) throw new Error('MSI-X table and PBA must be 8-byte aligned');
    if (msix.tableOffset + msix.vectors * MSIX_ENTRY_SIZE > bar.size || msix.pbaOffset + Math.ceil(msix.vectors / 64) * 8 > bar.size) {
      throw new Error('MSI-X table or PBA outside its BAR');
    }
    if ((bar.mmap?.areas ?? []).some((a) => a.offset < msix.pbaOffset + 8 && msix.tableOffset < a.offset + a.size)) {
      throw new Error('MSI-X table/PBA must not be inside an mmapped area');
    }
  }
}

export { IrqIndex };
