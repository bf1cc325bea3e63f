/**
 * PCI configuration space as bytes plus per-byte write masks, as QEMU's PCIDevice does
 * (`config`, `wmask`, `w1cmask`): a write changes only the bits set in `wmask`, and a 1 written
 * to a bit set in `w1cmask` clears it. BAR sizing falls out of `wmask = ~(size - 1)`.
 *
 * The layout (register offsets, capability ids) is declared once here and read by the device
 * model and the tests.
 */

export const PCI_CONFIG_SPACE_SIZE = 256;
export const PCIE_CONFIG_SPACE_SIZE = 4096;

/** Standard header (type 0) register offsets. */
export const PciReg = {
  VENDOR_ID: 0x00,
  DEVICE_ID: 0x02,
  COMMAND: 0x04,
  STATUS: 0x06,
  REVISION_ID: 0x08,
  CLASS_PROG: 0x09,
  CLASS_DEVICE: 0x0a,
  CACHE_LINE_SIZE: 0x0c,
  LATENCY_TIMER: 0x0d,
  HEADER_TYPE: 0x0e,
  BIST: 0x0f,
  BAR0: 0x10,
  CARDBUS_CIS: 0x28,
  SUBSYSTEM_VENDOR_ID: 0x2c,
  SUBSYSTEM_ID: 0x2e,
  ROM_ADDRESS: 0x30,
  CAPABILITY_LIST: 0x34,
  INTERRUPT_LINE: 0x3c,
  INTERRUPT_PIN: 0x3d,
  MIN_GNT: 0x3e,
  MAX_LAT: 0x3f,
} as const;

export const PciCommand = {
  IO: 1 << 0,
  MEMORY: 1 << 1,
  MASTER: 1 << 2,
  PARITY: 1 << 6,
  SERR: 1 << 8,
  INTX_DISABLE: 1 << 10,
} as const;

export const PciStatus = {
  INTERRUPT: 1 << 3,
  CAP_LIST: 1 << 4,
  /** Error bits software clears by writing 1 (parity, target/master abort, SERR, parity error). */
  W1C_ERRORS: 0xf900,
} as const;

/** Capability ids of the standard list. */
export const PciCapId = {
  PM: 0x01,
  MSI: 0x05,
  VENDOR: 0x09,
  EXP: 0x10,
  MSIX: 0x11,
} as const;

export class ConfigSpace {
  readonly size: number;
  readonly bytes: Uint8Array;
  /** Bits a write may change. */
  readonly wmask: Uint8Array;
  /** Bits a write of 1 clears. */
  readonly w1cmask: Uint8Array;
  private readonly view: DataView;
  private lastCap = 0;
  private nextCapOffset = 0x40;

  constructor(size: typeof PCI_CONFIG_SPACE_SIZE | typeof PCIE_CONFIG_SPACE_SIZE) {
    this.size = size;
    this.bytes = new Uint8Array(size);
    this.wmask = new Uint8Array(size);
    this.w1cmask = new Uint8Array(size);
    this.view = new DataView(this.bytes.buffer);
  }

  u8(offset: number): number {
    return this.view.getUint8(offset);
  }
  u16(offset: number): number {
    return this.view.getUint16(offset, true);
  }
  u32(offset: number): number {
    return this.view.getUint32(offset, true);
  }
  setU8(offset: number, value: number): void {
    this.view.setUint8(offset, value);
  }
  setU16(offset: number, value: number): void {
    this.view.setUint16(offset, value, true);
  }
  setU32(offset: number, value: number): void {
    this.view.setUint32(offset, value >>> 0, true);
  }

  /** Declare which bits of a little-endian field of `width` bytes are writable / write-1-to-clear. */
  setMasks(offset: number, width: 1 | 2 | 4, writable: number, w1c = 0): void {
    for (let i = 0; i < width; i++) {
      this.wmask[offset + i] = (writable >>> (8 * i)) & 0xff;
      this.w1cmask[offset + i] = (w1c >>> (8 * i)) & 0xff;
    }
  }

  /** Read `count` bytes; the caller has bounds-checked offset and count against `size`. */
  read(offset: number, count: number): Uint8Array {
    return this.bytes.slice(offset, offset + count);
  }

  /**
   * Apply a write byte by byte with the masks: `new = (old & ~wmask) | (val & wmask)`, then
   * clear w1c bits written as 1. Returns the bytes as they were before, for change hooks.
   */
  write(offset: number, data: Uint8Array): Uint8Array {
    const before = this.bytes.slice(offset, offset + data.length);
    for (let i = 0; i < data.length; i++) {
      const at = offset + i;
      const old = this.bytes[at]!;
      const value = data[i]!;
      const wmask = this.wmask[at]!;
      const w1c = this.w1cmask[at]!;
      this.bytes[at] = ((old & ~wmask) | (value & wmask)) & ~(value & w1c);
    }
    return before;
  }

  /**
   * Append a capability of `length` bytes to the standard list and return its offset. The
   * list is built in call order; the `next` byte of each capability is read-only.
   */
  addCapability(id: number, length: number): number {
    const offset = this.nextCapOffset;
    if (offset + length > PCI_CONFIG_SPACE_SIZE) {
      throw new RangeError(`Capability 0x${id.toString(16)} does not fit in standard config space`);
    }
    this.setU8(offset, id);
    this.setU8(offset + 1, 0);
    if (this.lastCap === 0) {
      this.setU8(PciReg.CAPABILITY_LIST, offset);
      this.setU16(PciReg.STATUS, this.u16(PciReg.STATUS) | PciStatus.CAP_LIST);
    } else {
      this.setU8(this.lastCap + 1, offset);
    }
    this.lastCap = offset;
    // Keep capabilities dword-aligned, as the spec requires.
    this.nextCapOffset = (offset + length + 3) & ~3;
    return offset;
  }

  /** Offsets of the standard capabilities in list order, following `next` pointers (loop-safe). */
  capabilities(): { id: number; offset: number }[] {
    const found: { id: number; offset: number }[] = [];
    if ((this.u16(PciReg.STATUS) & PciStatus.CAP_LIST) === 0) return found;
    let offset = this.u8(PciReg.CAPABILITY_LIST) & ~3;
    const seen = new Set<number>();
    while (offset >= 0x40 && offset < PCI_CONFIG_SPACE_SIZE && !seen.has(offset)) {
      seen.add(offset);
      found.push({ id: this.u8(offset), offset });
      offset = this.u8(offset + 1) & ~3;
    }
    return found;
  }
}
