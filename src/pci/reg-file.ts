/**
 * A 32-bit register file declared as data (QEMU's Register API: reset, ro, w1c, rsvd masks plus
 * hooks). Devices declare a table once; the model, the generated guest header and the tests all
 * read that table.
 */
import { guestError, traceEnabled, tracer } from '../log.js';

const traceRegs = tracer('regs');

/** A bit field inside a register: [shift, width] as in QEMU's FIELD(). */
export type FieldDef = readonly [shift: number, width: number];

export interface RegDef<Ctx = unknown> {
  /** Byte offset in the register page; 4-byte aligned. */
  readonly offset: number;
  readonly reset?: number;
  /** Bits a write cannot change. */
  readonly ro?: number;
  /** Bits cleared by writing 1 (write-1-to-clear). */
  readonly w1c?: number;
  /** Reserved bits: read as 0, writes ignored and logged. */
  readonly rsvd?: number;
  readonly fields?: Readonly<Record<string, FieldDef>>;
  /** One line for the contract and the generated header. */
  readonly doc?: string;
  /** Computes the value on every read instead of returning the stored one. */
  readonly read?: (ctx: Ctx, stored: number) => number;
  /** Runs after the masked value has been stored. */
  readonly postWrite?: (ctx: Ctx, value: number, old: number) => void;
}

export type RegTable<Ctx = unknown> = Readonly<Record<string, RegDef<Ctx>>>;

/**
 * Declare a register table whose hooks receive a `Ctx`: `defineRegs<Ctx>()({ ... })`. Validates
 * at definition time: aligned, unique offsets, fields inside 32 bits.
 */
export function defineRegs<Ctx>(): <const T extends RegTable<Ctx>>(table: T) => T {
  return (table) => checkTable(table);
}

function checkTable<T extends RegTable<never>>(table: T): T {
  const seen = new Map<number, string>();
  for (const [name, reg] of Object.entries(table)) {
    if (reg.offset % 4 !== 0) throw new Error(`Register ${name} is not 4-byte aligned: 0x${reg.offset.toString(16)}`);
    const other = seen.get(reg.offset);
    if (other !== undefined) throw new Error(`Registers ${other} and ${name} share offset 0x${reg.offset.toString(16)}`);
    seen.set(reg.offset, name);
    for (const [field, [shift, width]] of Object.entries(reg.fields ?? {})) {
      if (shift < 0 || width < 1 || shift + width > 32) throw new Error(`Field ${name}.${field} is outside 32 bits`);
    }
  }
  return table;
}

export function fieldMask([shift, width]: FieldDef): number {
  return (width === 32 ? 0xffff_ffff : ((1 << width) - 1) << shift) >>> 0;
}

/**
 * One write rule for every register (same semantics as QEMU hw/core/register.c): bits that are
 * ro, w1c, reserved or outside the written byte lanes keep their old value; a 1 written to a w1c
 * bit clears it.
 */
export function applyWrite(reg: RegDef<never>, old: number, value: number, byteEnable = 0xffff_ffff): number {
  const keep = (reg.ro ?? 0) | (reg.w1c ?? 0) | (reg.rsvd ?? 0) | ~byteEnable;
  const next = (value & ~keep) | (old & keep);
  return (next & ~(value & byteEnable & (reg.w1c ?? 0))) >>> 0;
}

/** One register as the file looks it up by offset. */
interface Slot<Ctx> {
  readonly name: string;
  readonly reg: RegDef<Ctx>;
  /** `reg.rsvd` (0 if none), read once instead of on every access. */
  readonly rsvd: number;
}

/**
 * The register state of one device instance, driven by a table. Values live in a Uint32Array
 * and registers in an array, both indexed by `offset / 4`: a trapped access costs no Map lookup
 * and no allocation.
 */
export class RegisterFile<Ctx> {
  private readonly values: Uint32Array;
  private readonly slots: (Slot<Ctx> | undefined)[];

  constructor(
    readonly name: string,
    private readonly table: RegTable<Ctx>,
    private readonly ctx: Ctx,
  ) {
    const count = Object.values(table).reduce((n, reg) => Math.max(n, reg.offset / 4 + 1), 0);
    this.values = new Uint32Array(count);
    this.slots = new Array<Slot<Ctx> | undefined>(count).fill(undefined);
    for (const [regName, reg] of Object.entries(table)) this.slots[reg.offset / 4] = { name: regName, reg, rsvd: reg.rsvd ?? 0 };
    this.reset();
  }

  reset(): void {
    for (const reg of Object.values(this.table)) this.values[reg.offset / 4] = reg.reset ?? 0;
  }

  /** The stored value of a register by name (for the device model itself, not the guest). */
  get(name: keyof typeof this.table & string): number {
    const reg = this.table[name];
    if (reg === undefined) throw new Error(`No register ${name}`);
    return this.values[reg.offset / 4]!;
  }

  /** Set a register from the device side (status bits, results), bypassing the guest masks. */
  set(name: string, value: number): void {
    const reg = this.table[name];
    if (reg === undefined) throw new Error(`No register ${name}`);
    this.values[reg.offset / 4] = value;
  }

  /** The register at a 4-byte-aligned offset, if any. */
  private slot(base: number): Slot<Ctx> | undefined {
    return base >= 0 && base < this.values.length * 4 ? this.slots[base >>> 2] : undefined;
  }

  /**
   * Guest read of `size` bytes (1, 2, 4) at `offset`. Unknown offsets read as 0 and are logged
   * as guest errors, as QEMU does for unimplemented registers.
   */
  read(offset: number, size: number): number {
    const base = offset & ~3;
    const slot = this.slot(base);
    if (slot === undefined) {
      guestError(`${this.name}-read`, `${this.name}: read of unimplemented register 0x${offset.toString(16)}`);
      return 0;
    }
    const reg = slot.reg;
    let value = this.values[base >>> 2]!;
    if (reg.read !== undefined) value = reg.read(this.ctx, value) >>> 0;
    value = (value & ~slot.rsvd) >>> 0;
    if (traceEnabled('regs')) traceRegs(() => `${this.name} RD ${slot.name} (0x${base.toString(16)}) => 0x${value.toString(16)}`);
    const shift = (offset & 3) * 8;
    return size === 4 ? value : (value >>> shift) & ((1 << (size * 8)) - 1);
  }

  /** Guest write of `size` bytes (1, 2, 4) at `offset`, with byte lanes honoured. */
  write(offset: number, size: number, data: number): void {
    const base = offset & ~3;
    const slot = this.slot(base);
    if (slot === undefined) {
      guestError(`${this.name}-write`, `${this.name}: write to unimplemented register 0x${offset.toString(16)}`);
      return;
    }
    const reg = slot.reg;
    const shift = (offset & 3) * 8;
    const byteEnable = size === 4 ? 0xffff_ffff : (((1 << (size * 8)) - 1) << shift) >>> 0;
    const value = (data << shift) >>> 0;
    const old = this.values[base >>> 2]!;
    if ((value & byteEnable & slot.rsvd) >>> 0 !== 0) {
      guestError(`${this.name}-rsvd`, `${this.name}: write of reserved bits of ${slot.name}: 0x${value.toString(16)}`);
    }
    if (reg.ro === 0xffff_ffff && (value & byteEnable) >>> 0 !== (old & byteEnable) >>> 0) {
      guestError(`${this.name}-ro`, `${this.name}: write to read-only register ${slot.name}`);
    }
    const next = applyWrite(reg as RegDef<never>, old, value, byteEnable);
    this.values[base >>> 2] = next;
    if (traceEnabled('regs')) traceRegs(() => `${this.name} WR ${slot.name} (0x${base.toString(16)}) <= 0x${value.toString(16)}`);
    reg.postWrite?.(this.ctx, next, old);
  }
}
