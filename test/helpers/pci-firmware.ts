/**
 * A tiny PCI "firmware" for guest-less (qtest) tests of the q35 machine, on the test side of
 * the device: config space access, bus numbering, BAR sizing and assignment, bridge windows and
 * command bits, so a test can then read and write a device's BARs by physical address. (The
 * device's own PCI function is src/pci/pci-function.ts; this walks config space from outside.)
 *
 * Config access: under `-accel qtest` no firmware runs, and q35's MCH comes out of reset
 * with PCIEXBAR = 0xb0000000 but its enable bit clear, so ECAM (MMCONFIG) decodes nothing
 * (reads return 0). SeaBIOS enables it by writing PCIEXBAR through the legacy 0xcf8/0xcfc
 * mechanism; {@link PciFirmware.init} does the same (256 MiB at 0xb0000000, buses 0–255), after
 * which all config access, including extended config space (offsets ≥ 0x100), goes through
 * ECAM. On a host bridge that is not q35's MCH it stays on 0xcf8/0xcfc (256-byte config).
 *
 * Address map used by {@link PciFirmware.assignBars} (q35 with up to 2.75 GiB of low RAM):
 * 32-bit MMIO 0xc000_0000–0xfebf_ffff (above ECAM, below the I/O APIC), 64-bit prefetchable
 * MMIO from 512 GiB, I/O ports 0xc000–0xffff. Under qtest the whole PCI address space sits
 * below system RAM, so any address not claimed by RAM or a chipset device reaches PCI.
 */
import { PciCapId, PciCommand, PciReg, PciStatus } from '../../src/pci/config-space.js';
import type { PhysIo } from './qtest.js';

/** Bus/device/function. */
export interface Bdf {
  bus: number;
  dev: number;
  fn: number;
}

export const formatBdf = (b: Bdf) => `${b.bus.toString(16).padStart(2, '0')}:${b.dev.toString(16).padStart(2, '0')}.${b.fn}`;

/**
 * Type 1 (PCI-PCI bridge) header registers (PCI-to-PCI Bridge Architecture 1.2): the device model
 * has no bridge, so they are declared here; the type 0 ones are the model's {@link PciReg}.
 */
export const BridgeReg = {
  PRIMARY_BUS: 0x18,
  SECONDARY_BUS: 0x19,
  SUBORDINATE_BUS: 0x1a,
  IO_BASE: 0x1c,
  IO_LIMIT: 0x1d,
  MEMORY_BASE: 0x20,
  MEMORY_LIMIT: 0x22,
  PREF_MEMORY_BASE: 0x24,
  PREF_MEMORY_LIMIT: 0x26,
  PREF_BASE_UPPER32: 0x28,
  PREF_LIMIT_UPPER32: 0x2c,
  IO_BASE_UPPER16: 0x30,
  IO_LIMIT_UPPER16: 0x32,
} as const;

/** q35 MCH (host bridge 00:00.0) PCIEXBAR register and its enable bit. */
export const Q35_PCIEXBAR = 0x60;
export const Q35_PCIEXBAR_ENABLE = 0x1;
/** Where q35 firmware (SeaBIOS, OVMF) puts ECAM and where QEMU's ACPI MCFG expects it. */
export const Q35_ECAM_BASE = 0xb000_0000n;
const Q35_MCH = { vendor: 0x8086, device: 0x29c0 };

/** A present function found by a scan. */
export interface ScannedFunction {
  bdf: Bdf;
  vendor: number;
  device: number;
  /** 24-bit class code (class, subclass, prog-if), e.g. 0x060400 for a PCI-PCI bridge. */
  classCode: number;
  revision: number;
  /** Header layout: 0 endpoint, 1 PCI-PCI bridge. */
  headerType: number;
  /** For bridges: the secondary bus number assigned by {@link PciFirmware.enumerate}. */
  secondaryBus?: number;
  subordinateBus?: number;
}

/** One BAR as found by sizing. */
export interface BarInfo {
  index: number;
  kind: 'mem' | 'io';
  is64: boolean;
  prefetchable: boolean;
  size: bigint;
  /** The current (after assignBars: assigned) address. */
  address: bigint;
}

/** A bridge's forwarding windows; `undefined` when closed. Ranges are [base, limit] inclusive. */
export interface BridgeWindows {
  io?: [bigint, bigint];
  mem?: [bigint, bigint];
  pref?: [bigint, bigint];
}

export interface PciLayout {
  /** 32-bit non-prefetchable MMIO pool [start, end). */
  mem32: [bigint, bigint];
  /** 64-bit prefetchable MMIO pool [start, end). */
  mem64: [bigint, bigint];
  /** I/O port pool [start, end). */
  io: [bigint, bigint];
}

export const DEFAULT_LAYOUT: PciLayout = {
  mem32: [0xc000_0000n, 0xfec0_0000n],
  mem64: [0x80_0000_0000n, 0x100_0000_0000n],
  io: [0xc000n, 0x1_0000n],
};

/** The result of {@link PciFirmware.assignBars}. */
export interface PciAssignment {
  functions: (ScannedFunction & { bars: BarInfo[]; windows?: BridgeWindows })[];
}

const alignUp = (v: bigint, a: bigint) => ((v + a - 1n) / a) * a;

class Pool {
  constructor(
    private cur: bigint,
    private readonly end: bigint,
    private readonly name: string,
  ) {}
  alloc(size: bigint, align: bigint): bigint {
    const at = alignUp(this.cur, align);
    if (at + size > this.end) throw new Error(`PCI ${this.name} space exhausted: need 0x${size.toString(16)} at 0x${at.toString(16)}`);
    this.cur = at + size;
    return at;
  }
  align(a: bigint): bigint {
    this.cur = alignUp(this.cur, a);
    return this.cur;
  }
  get position(): bigint {
    return this.cur;
  }
}

/** Config access and enumeration over qtest (or anything implementing {@link PhysIo}). */
export class PciFirmware {
  /** ECAM base once enabled; undefined while on 0xcf8/0xcfc. */
  ecamBase?: bigint;
  private functions?: ScannedFunction[];

  constructor(
    readonly io: PhysIo,
    readonly layout: PciLayout = DEFAULT_LAYOUT,
  ) {}

  /** Enable ECAM on q35 (idempotent); otherwise keep the legacy mechanism. Returns the ECAM base or undefined. */
  async init(opts: { ecamBase?: bigint } = {}): Promise<bigint | undefined> {
    if (this.ecamBase !== undefined) return this.ecamBase;
    const host = { bus: 0, dev: 0, fn: 0 };
    const id = await this.legacyRead(host, PciReg.VENDOR_ID, 4);
    if ((id & 0xffff) !== Q35_MCH.vendor || id >>> 16 !== Q35_MCH.device) return undefined;
    const lo = await this.legacyRead(host, Q35_PCIEXBAR, 4);
    const hi = await this.legacyRead(host, Q35_PCIEXBAR + 4, 4);
    if (lo & Q35_PCIEXBAR_ENABLE) {
      // Already on (firmware ran): use its base, whatever length it chose.
      this.ecamBase = (BigInt(hi) << 32n) | BigInt(lo & 0xf000_0000);
      return this.ecamBase;
    }
    const base = opts.ecamBase ?? Q35_ECAM_BASE;
    // Length field (bits 2:1) 0 = 256 MiB; high dword first, as SeaBIOS does.
    await this.legacyWrite(host, Q35_PCIEXBAR + 4, 4, Number(base >> 32n));
    await this.legacyWrite(host, Q35_PCIEXBAR, 4, Number(base & 0xffff_ffffn) | Q35_PCIEXBAR_ENABLE);
    this.ecamBase = base;
    const check = await this.cfgRead(host, PciReg.VENDOR_ID, 4);
    if (check !== id) throw new Error(`ECAM at 0x${base.toString(16)} reads 0x${check.toString(16)}, expected 0x${id.toString(16)}`);
    return base;
  }

  private cf8(b: Bdf, off: number): number {
    return (0x8000_0000 | (b.bus << 16) | (b.dev << 11) | (b.fn << 8) | (off & 0xfc)) >>> 0;
  }

  private async legacyRead(b: Bdf, off: number, width: 1 | 2 | 4): Promise<number> {
    await this.io.outl(0xcf8, this.cf8(b, off));
    const port = 0xcfc + (off & 3);
    return width === 1 ? this.io.inb(port) : width === 2 ? this.io.inw(port) : this.io.inl(port);
  }

  private async legacyWrite(b: Bdf, off: number, width: 1 | 2 | 4, v: number): Promise<void> {
    await this.io.outl(0xcf8, this.cf8(b, off));
    const port = 0xcfc + (off & 3);
    if (width === 1) await this.io.outb(port, v);
    else if (width === 2) await this.io.outw(port, v);
    else await this.io.outl(port, v);
  }

  private ecamAddr(b: Bdf, off: number): bigint {
    return this.ecamBase! + BigInt((b.bus << 20) | (b.dev << 15) | (b.fn << 12) | off);
  }

  private check(b: Bdf, off: number, width: number): void {
    const limit = this.ecamBase === undefined ? 0x100 : 0x1000;
    if (b.bus > 255 || b.dev > 31 || b.fn > 7 || b.bus < 0 || b.dev < 0 || b.fn < 0) throw new RangeError(`Invalid BDF ${formatBdf(b)}`);
    if (![1, 2, 4].includes(width) || off < 0 || off % width !== 0 || off + width > limit) {
      throw new RangeError(`Invalid config access ${formatBdf(b)} +0x${off.toString(16)}/${width}`);
    }
  }

  /** Read config space (naturally aligned 1, 2 or 4 bytes). */
  async cfgRead(b: Bdf, off: number, width: 1 | 2 | 4): Promise<number> {
    this.check(b, off, width);
    if (this.ecamBase === undefined) return this.legacyRead(b, off, width);
    const a = this.ecamAddr(b, off);
    return width === 1 ? this.io.readb(a) : width === 2 ? this.io.readw(a) : (await this.io.readl(a)) >>> 0;
  }

  /** Write config space (naturally aligned 1, 2 or 4 bytes). */
  async cfgWrite(b: Bdf, off: number, width: 1 | 2 | 4, v: number): Promise<void> {
    this.check(b, off, width);
    if (this.ecamBase === undefined) return this.legacyWrite(b, off, width, v);
    const a = this.ecamAddr(b, off);
    if (width === 1) await this.io.writeb(a, v);
    else if (width === 2) await this.io.writew(a, v);
    else await this.io.writel(a, v);
  }

  private async readFunction(b: Bdf): Promise<ScannedFunction | undefined> {
    const id = await this.cfgRead(b, PciReg.VENDOR_ID, 4);
    const vendor = id & 0xffff;
    if (vendor === 0xffff || vendor === 0) return undefined;
    const cls = await this.cfgRead(b, PciReg.REVISION_ID, 4); // revision, then the 24-bit class code
    return {
      bdf: b,
      vendor,
      device: id >>> 16,
      classCode: cls >>> 8,
      revision: cls & 0xff,
      headerType: (await this.cfgRead(b, PciReg.HEADER_TYPE, 1)) & 0x7f,
    };
  }

  /**
   * Scan from bus 0, giving every bridge a secondary bus depth-first (as firmware does),
   * and return all functions found. Run once; later calls return the cached scan.
   */
  async enumerate(): Promise<ScannedFunction[]> {
    if (this.functions) return this.functions;
    await this.init();
    const found: ScannedFunction[] = [];
    let nextBus = 1;
    const scan = async (bus: number): Promise<void> => {
      for (let dev = 0; dev < 32; dev++) {
        const f0 = await this.readFunction({ bus, dev, fn: 0 });
        if (!f0) continue;
        const multi = ((await this.cfgRead({ bus, dev, fn: 0 }, PciReg.HEADER_TYPE, 1)) & 0x80) !== 0;
        for (let fn = 0; fn < (multi ? 8 : 1); fn++) {
          const f = fn === 0 ? f0 : await this.readFunction({ bus, dev, fn });
          if (!f) continue;
          found.push(f);
          if (f.headerType === 1) {
            const sec = nextBus++;
            if (sec > 255) throw new Error('PCI bus numbers exhausted');
            await this.cfgWrite(f.bdf, BridgeReg.PRIMARY_BUS, 1, bus);
            await this.cfgWrite(f.bdf, BridgeReg.SECONDARY_BUS, 1, sec);
            await this.cfgWrite(f.bdf, BridgeReg.SUBORDINATE_BUS, 1, 0xff);
            await scan(sec);
            await this.cfgWrite(f.bdf, BridgeReg.SUBORDINATE_BUS, 1, nextBus - 1);
            f.secondaryBus = sec;
            f.subordinateBus = nextBus - 1;
          }
        }
      }
    };
    await scan(0);
    this.functions = found;
    return found;
  }

  /** The `index`-th function with this vendor and device id (enumerates first if needed). */
  async findDevice(vendor: number, device: number, index = 0): Promise<ScannedFunction | undefined> {
    return (await this.enumerate()).filter((f) => f.vendor === vendor && f.device === device)[index];
  }

  /** Functions with this 24-bit class code, or this class/subclass when `classCode` ≤ 0xffff. */
  async findClass(classCode: number): Promise<ScannedFunction[]> {
    const fns = await this.enumerate();
    return fns.filter((f) => (classCode > 0xffff ? f.classCode === classCode : f.classCode >>> 8 === classCode));
  }

  /**
   * Size BAR `n` (0–5 for endpoints, 0–1 for bridges) by writing all ones with decoding
   * off, and restore it. Undefined when the BAR is not implemented or is the upper half
   * of a 64-bit BAR.
   */
  async sizeBar(b: Bdf, n: number): Promise<BarInfo | undefined> {
    const header = (await this.cfgRead(b, PciReg.HEADER_TYPE, 1)) & 0x7f;
    const count = header === 1 ? 2 : header === 0 ? 6 : 0;
    if (n < 0 || n >= count) throw new RangeError(`BAR ${n} does not exist on ${formatBdf(b)} (header type ${header})`);
    // Walk the BARs below n by their type bits: n may be the upper dword of a 64-bit BAR.
    for (let i = 0; i < n; ) {
      const v = await this.cfgRead(b, PciReg.BAR0 + 4 * i, 4);
      i += (v & 1) === 0 && (v & 0x6) === 0x4 ? 2 : 1;
      if (i > n) return undefined;
    }
    const off = PciReg.BAR0 + 4 * n;
    const cmd = await this.cfgRead(b, PciReg.COMMAND, 2);
    await this.cfgWrite(b, PciReg.COMMAND, 2, cmd & ~(PciCommand.IO | PciCommand.MEMORY));
    try {
      const orig = await this.cfgRead(b, off, 4);
      const isIo = (orig & 1) === 1;
      const is64 = !isIo && (orig & 0x6) === 0x4;
      await this.cfgWrite(b, off, 4, 0xffff_ffff);
      const lo = await this.cfgRead(b, off, 4);
      await this.cfgWrite(b, off, 4, orig);
      let mask: bigint;
      let address: bigint;
      if (is64) {
        const origHi = await this.cfgRead(b, off + 4, 4);
        await this.cfgWrite(b, off + 4, 4, 0xffff_ffff);
        const hi = await this.cfgRead(b, off + 4, 4);
        await this.cfgWrite(b, off + 4, 4, origHi);
        mask = (BigInt(hi) << 32n) | BigInt(lo & ~0xf);
        address = (BigInt(origHi) << 32n) | BigInt(orig & ~0xf);
      } else if (isIo) {
        mask = BigInt((lo & ~0x3) | 0xffff_0000) & 0xffff_ffffn;
        address = BigInt(orig & ~0x3);
      } else {
        mask = BigInt(lo & ~0xf);
        address = BigInt(orig & ~0xf);
      }
      if (mask === 0n || lo === 0) return undefined;
      const width = is64 ? 64 : 32;
      const size = BigInt.asUintN(width, ~mask + 1n);
      return {
        index: n,
        kind: isIo ? 'io' : 'mem',
        is64,
        prefetchable: !isIo && (orig & 0x8) !== 0,
        size,
        address: BigInt.asUintN(width, address),
      };
    } finally {
      await this.cfgWrite(b, PciReg.COMMAND, 2, cmd);
    }
  }

  /** All implemented BARs of a function. */
  async bars(b: Bdf): Promise<BarInfo[]> {
    const header = (await this.cfgRead(b, PciReg.HEADER_TYPE, 1)) & 0x7f;
    const count = header === 1 ? 2 : header === 0 ? 6 : 0;
    const out: BarInfo[] = [];
    for (let n = 0; n < count; n++) {
      const bar = await this.sizeBar(b, n);
      if (bar) {
        out.push(bar);
        if (bar.is64) n++;
      }
    }
    return out;
  }

  /** Program BAR `bar.index` with `address`. */
  async setBar(b: Bdf, bar: BarInfo, address: bigint): Promise<void> {
    const off = PciReg.BAR0 + 4 * bar.index;
    await this.cfgWrite(b, off, 4, Number(address & 0xffff_ffffn));
    if (bar.is64) await this.cfgWrite(b, off + 4, 4, Number(address >> 32n));
    bar.address = address;
  }

  /** Standard capabilities: `[id, offset]` in list order. */
  async capabilities(b: Bdf): Promise<[number, number][]> {
    const out: [number, number][] = [];
    if (((await this.cfgRead(b, PciReg.STATUS, 2)) & PciStatus.CAP_LIST) === 0) return out;
    let p = (await this.cfgRead(b, PciReg.CAPABILITY_LIST, 1)) & 0xfc;
    for (let guard = 0; p !== 0 && guard < 48; guard++) {
      out.push([await this.cfgRead(b, p, 1), p]);
      p = (await this.cfgRead(b, p + 1, 1)) & 0xfc;
    }
    return out;
  }

  /** Offset of standard capability `id`, if present. */
  async findCapability(b: Bdf, id: number): Promise<number | undefined> {
    return (await this.capabilities(b)).find(([i]) => i === id)?.[1];
  }

  /** PCIe extended capabilities (needs ECAM): `[id, version, offset]` in list order. */
  async extCapabilities(b: Bdf): Promise<[number, number, number][]> {
    if (this.ecamBase === undefined) return [];
    const out: [number, number, number][] = [];
    let p = 0x100;
    for (let guard = 0; p !== 0 && guard < 64; guard++) {
      const h = await this.cfgRead(b, p, 4);
      if (h === 0 || h === 0xffff_ffff) break;
      out.push([h & 0xffff, (h >>> 16) & 0xf, p]);
      p = (h >>> 20) & 0xffc;
    }
    return out;
  }

  /**
   * Enable MSI with one vector writing `data` to `address`. Under qtest there is no CPU to
   * take the interrupt: point `address` at guest RAM and poll it to see the message.
   */
  async enableMsi(b: Bdf, address: bigint, data: number): Promise<void> {
    const cap = await this.findCapability(b, PciCapId.MSI);
    if (cap === undefined) throw new Error(`${formatBdf(b)} has no MSI capability`);
    const ctrl = await this.cfgRead(b, cap + 2, 2);
    const is64 = (ctrl & 0x80) !== 0;
    await this.cfgWrite(b, cap + 4, 4, Number(address & 0xffff_ffffn));
    if (is64) await this.cfgWrite(b, cap + 8, 4, Number(address >> 32n));
    else if (address >> 32n) throw new RangeError(`${formatBdf(b)} has 32-bit MSI; address 0x${address.toString(16)} too high`);
    await this.cfgWrite(b, cap + (is64 ? 12 : 8), 2, data);
    // One vector (Multiple Message Enable = 0), enable.
    await this.cfgWrite(b, cap + 2, 2, (ctrl & ~0x70) | 0x1);
  }

  /** Where a function's MSI-X table lives (its BAR must be assigned). */
  async msixTable(b: Bdf): Promise<{ cap: number; entries: number; bar: number; address: bigint; pbaAddress: bigint }> {
    const cap = await this.findCapability(b, PciCapId.MSIX);
    if (cap === undefined) throw new Error(`${formatBdf(b)} has no MSI-X capability`);
    const ctrl = await this.cfgRead(b, cap + 2, 2);
    const table = await this.cfgRead(b, cap + 4, 4);
    const pba = await this.cfgRead(b, cap + 8, 4);
    const bars = await this.bars(b);
    const barAddr = (bir: number) => {
      const bar = bars.find((x) => x.index === bir);
      if (!bar || bar.address === 0n) throw new Error(`${formatBdf(b)}: MSI-X BAR ${bir} is not assigned`);
      return bar.address;
    };
    return {
      cap,
      entries: (ctrl & 0x7ff) + 1,
      bar: table & 7,
      address: barAddr(table & 7) + BigInt(table & ~7),
      pbaAddress: barAddr(pba & 7) + BigInt(pba & ~7),
    };
  }

  /**
   * Program MSI-X vector `n` (address, data, unmasked) and enable MSI-X with the function
   * unmasked. As with MSI, under qtest point `address` at guest RAM and poll it.
   */
  async setMsixVector(b: Bdf, n: number, address: bigint, data: number): Promise<void> {
    const t = await this.msixTable(b);
    if (n < 0 || n >= t.entries) throw new RangeError(`${formatBdf(b)} has ${t.entries} MSI-X vectors, not ${n + 1}`);
    const e = t.address + BigInt(16 * n);
    await this.io.writel(e, Number(address & 0xffff_ffffn));
    await this.io.writel(e + 4n, Number(address >> 32n));
    await this.io.writel(e + 8n, data);
    await this.io.writel(e + 12n, 0);
    const ctrl = await this.cfgRead(b, t.cap + 2, 2);
    await this.cfgWrite(b, t.cap + 2, 2, (ctrl | 0x8000) & ~0x4000);
  }

  /**
   * Firmware-style resource assignment: enumerate, size every BAR, give each bus's
   * devices addresses (largest first, naturally aligned), open each bridge's I/O (4 KiB),
   * memory (1 MiB) and 64-bit prefetchable (1 MiB) windows around what is behind it,
   * then enable memory/I/O decode and bus mastering. 64-bit prefetchable BARs go in the
   * 64-bit pool, every other memory BAR in the 32-bit pool.
   */
  async assignBars(): Promise<PciAssignment> {
    const fns = await this.enumerate();
    const pools = {
      mem: new Pool(this.layout.mem32[0], this.layout.mem32[1], '32-bit memory'),
      pref: new Pool(this.layout.mem64[0], this.layout.mem64[1], '64-bit prefetchable memory'),
      io: new Pool(this.layout.io[0], this.layout.io[1], 'I/O'),
    };
    const result: PciAssignment['functions'] = [];
    const MiB = 1n << 20n;
    const assignBus = async (bus: number): Promise<void> => {
      const onBus = fns.filter((f) => f.bdf.bus === bus);
      const reqs: { f: ScannedFunction; bar: BarInfo }[] = [];
      const entries = new Map<ScannedFunction, PciAssignment['functions'][number]>();
      for (const f of onBus) {
        const bars = await this.bars(f.bdf);
        const entry = { ...f, bars };
        entries.set(f, entry);
        result.push(entry);
        for (const bar of bars) reqs.push({ f, bar });
      }
      reqs.sort((a, b) => (a.bar.size === b.bar.size ? 0 : a.bar.size > b.bar.size ? -1 : 1));
      for (const { f, bar } of reqs) {
        const pool = bar.kind === 'io' ? pools.io : bar.is64 && bar.prefetchable ? pools.pref : pools.mem;
        await this.setBar(f.bdf, bar, pool.alloc(bar.size, bar.size));
      }
      for (const f of onBus) {
        let cmd = (await this.cfgRead(f.bdf, PciReg.COMMAND, 2)) | PciCommand.MASTER;
        const bars = entries.get(f)!.bars;
        if (bars.some((b) => b.kind === 'mem')) cmd |= PciCommand.MEMORY;
        if (bars.some((b) => b.kind === 'io')) cmd |= PciCommand.IO;
        if (f.headerType === 1 && f.secondaryBus !== undefined) {
          const w: BridgeWindows = {};
          const start = { io: pools.io.align(0x1000n), mem: pools.mem.align(MiB), pref: pools.pref.align(MiB) };
          // The recursion allocates everything behind the bridge (all its buses), so the
          // windows cover exactly that.
          await assignBus(f.secondaryBus);
          const end = { io: pools.io.align(0x1000n), mem: pools.mem.align(MiB), pref: pools.pref.align(MiB) };
          if (end.io > start.io) w.io = [start.io, end.io - 1n];
          if (end.mem > start.mem) w.mem = [start.mem, end.mem - 1n];
          if (end.pref > start.pref) w.pref = [start.pref, end.pref - 1n];
          await this.programWindows(f.bdf, w);
          entries.get(f)!.windows = w;
          cmd |= PciCommand.MEMORY | PciCommand.IO;
        }
        await this.cfgWrite(f.bdf, PciReg.COMMAND, 2, cmd);
      }
    };
    await assignBus(0);
    return { functions: result };
  }

  /** Program a bridge's windows; a missing window is closed (base above limit). */
  async programWindows(b: Bdf, w: BridgeWindows): Promise<void> {
    if (w.io) {
      await this.cfgWrite(b, BridgeReg.IO_BASE, 1, Number((w.io[0] >> 8n) & 0xf0n));
      await this.cfgWrite(b, BridgeReg.IO_LIMIT, 1, Number((w.io[1] >> 8n) & 0xf0n));
      await this.cfgWrite(b, BridgeReg.IO_BASE_UPPER16, 2, Number(w.io[0] >> 16n));
      await this.cfgWrite(b, BridgeReg.IO_LIMIT_UPPER16, 2, Number(w.io[1] >> 16n));
    } else {
      await this.cfgWrite(b, BridgeReg.IO_BASE, 1, 0xf0);
      await this.cfgWrite(b, BridgeReg.IO_LIMIT, 1, 0x00);
    }
    if (w.mem) {
      await this.cfgWrite(b, BridgeReg.MEMORY_BASE, 2, Number((w.mem[0] >> 16n) & 0xfff0n));
      await this.cfgWrite(b, BridgeReg.MEMORY_LIMIT, 2, Number((w.mem[1] >> 16n) & 0xfff0n));
    } else {
      await this.cfgWrite(b, BridgeReg.MEMORY_BASE, 2, 0xfff0);
      await this.cfgWrite(b, BridgeReg.MEMORY_LIMIT, 2, 0x0000);
    }
    if (w.pref) {
      await this.cfgWrite(b, BridgeReg.PREF_MEMORY_BASE, 2, Number((w.pref[0] >> 16n) & 0xfff0n));
      await this.cfgWrite(b, BridgeReg.PREF_MEMORY_LIMIT, 2, Number((w.pref[1] >> 16n) & 0xfff0n));
      await this.cfgWrite(b, BridgeReg.PREF_BASE_UPPER32, 4, Number(w.pref[0] >> 32n));
      await this.cfgWrite(b, BridgeReg.PREF_LIMIT_UPPER32, 4, Number(w.pref[1] >> 32n));
    } else {
      await this.cfgWrite(b, BridgeReg.PREF_MEMORY_BASE, 2, 0xfff0);
      await this.cfgWrite(b, BridgeReg.PREF_MEMORY_LIMIT, 2, 0x0000);
      await this.cfgWrite(b, BridgeReg.PREF_BASE_UPPER32, 4, 0);
      await this.cfgWrite(b, BridgeReg.PREF_LIMIT_UPPER32, 4, 0);
    }
  }
}
