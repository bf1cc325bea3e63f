/**
 * A small layout DSL for packed little-endian structs: the vfio-user wire messages
 * (src/protocol/wire.ts) and the mdgpu command formats in guest memory (src/vgpu/) are both
 * declared with it.
 *
 * Every struct on the wire is declared once, as data, with `struct()`:
 *
 * ```ts
 * const RegionAccessLayout = struct('vfio_user_region_access', {
 *   offset: u64, region: u32, count: u32,
 * });
 * RegionAccessLayout.size;                 // 16 (bytes)
 * RegionAccessLayout.fields.count.offset;  // 12 (bytes)
 * RegionAccessLayout.decode(bytes);        // { offset: bigint; region: number; count: number }
 * ```
 *
 * Layouts are little-endian and packed (no padding is ever inserted): vfio-user
 * uses host byte order and QEMU only runs it on little-endian hosts we care
 * about, and every struct in the spec is naturally aligned already.
 *
 * `decode` never reads past the buffer: a short buffer throws the error the
 * user of the DSL chose with {@link structWith} (a ProtocolError for vfio-user), because short
 * input always comes from the peer. `encode` throws a `RangeError` for values that do not fit their field,
 * because those always come from our own code.
 *
 * @module
 */

/** A fixed-size field type: how many bytes it takes and how to move it through a DataView. */
export interface FieldType<T> {
  /** Type name for messages, e.g. `u32`. */
  readonly kind: string;
  /** Size in bytes. */
  readonly size: number;
  /** Read the value at byte `offset` of `view`. */
  read(view: DataView, offset: number): T;
  /** Write `value` at byte `offset` of `view`; throws RangeError if it does not fit. */
  write(view: DataView, offset: number, value: T, where: string): void;
}

function unsigned(kind: string, size: 1 | 2 | 4): FieldType<number> {
  const max = 2 ** (size * 8) - 1;
  const check = (value: number, where: string): void => {
    if (!Number.isInteger(value) || value < 0 || value > max) {
      throw new RangeError(`Value does not fit ${kind}: ${where} = ${String(value)}`);
    }
  };
  switch (size) {
    case 1:
      return Object.freeze({
        kind,
        size,
        read: (view: DataView, offset: number) => view.getUint8(offset),
        write(view: DataView, offset: number, value: number, where: string) {
          check(value, where);
          view.setUint8(offset, value);
        },
      });
    case 2:
      return Object.freeze({
        kind,
        size,
        read: (view: DataView, offset: number) => view.getUint16(offset, true),
        write(view: DataView, offset: number, value: number, where: string) {
          check(value, where);
          view.setUint16(offset, value, true);
        },
      });
    case 4:
      return Object.freeze({
        kind,
        size,
        read: (view: DataView, offset: number) => view.getUint32(offset, true),
        write(view: DataView, offset: number, value: number, where: string) {
          check(value, where);
          view.setUint32(offset, value, true);
        },
      });
  }
}

/** Largest u64 value, 2^64 - 1. */
export const U64_MAX = (1n << 64n) - 1n;
/** Largest u32 value, 2^32 - 1. */
export const U32_MAX = 0xffff_ffff;

/** Unsigned 8-bit integer (1 byte), decoded as number. */
export const u8: FieldType<number> = unsigned('u8', 1);
/** Unsigned 16-bit little-endian integer (2 bytes), decoded as number. */
export const u16: FieldType<number> = unsigned('u16', 2);
/** Unsigned 32-bit little-endian integer (4 bytes), decoded as number. */
export const u32: FieldType<number> = unsigned('u32', 4);
/**
 * Unsigned 64-bit little-endian integer (8 bytes), decoded as bigint: offsets
 * and addresses use the full range, so a number would silently lose bits.
 */
export const u64: FieldType<bigint> = Object.freeze({
  kind: 'u64',
  size: 8,
  read: (view: DataView, offset: number) => view.getBigUint64(offset, true),
  write(view: DataView, offset: number, value: bigint, where: string) {
    if (typeof value !== 'bigint' || value < 0n || value > U64_MAX) {
      throw new RangeError(`Value does not fit u64: ${where} = ${String(value)}`);
    }
    view.setBigUint64(offset, value, true);
  },
});

/**
 * A fixed-length byte array of `length` bytes (C `uint8_t x[length]`).
 * Decoding copies, so the result does not alias the input buffer.
 */
export function bytes(length: number): FieldType<Uint8Array> {
  if (!Number.isInteger(length) || length < 0) {
    throw new RangeError(`Invalid byte array length: ${String(length)}`);
  }
  return Object.freeze({
    kind: `u8[${length}]`,
    size: length,
    read: (view: DataView, offset: number) => new Uint8Array(view.buffer.slice(view.byteOffset + offset, view.byteOffset + offset + length)),
    write(view: DataView, offset: number, value: Uint8Array, where: string) {
      if (!(value instanceof Uint8Array) || value.length !== length) {
        throw new RangeError(`Value does not fit u8[${length}]: ${where} has ${String(value?.length)} bytes`);
      }
      new Uint8Array(view.buffer, view.byteOffset + offset, length).set(value);
    },
  });
}

/** Field declarations of a struct, in wire order. */
export type Fields = Record<string, FieldType<unknown>>;

/** The decoded value of a struct: each field's TS type (u64 → bigint, others → number). */
export type ValueOf<F extends Fields> = {
  -readonly [K in keyof F]: F[K] extends FieldType<infer T> ? T : never;
};

/** Where a field sits in its struct. */
export interface FieldInfo {
  /** Byte offset from the start of the struct. */
  readonly offset: number;
  /** Size in bytes. */
  readonly size: number;
  /** The field's type. */
  readonly type: FieldType<unknown>;
}

/** A packed little-endian struct layout produced by {@link struct}. Frozen. */
export interface Layout<F extends Fields> {
  /** C name of the struct, used in error messages. */
  readonly name: string;
  /** Total size in bytes. */
  readonly size: number;
  /** Offset and size (bytes) of every field. */
  readonly fields: { readonly [K in keyof F]: FieldInfo };
  /**
   * Read the struct at byte `at` of `bytes`.
   * @throws the short-input error of {@link structWith} if fewer than `size` bytes are available.
   */
  decode(bytes: Uint8Array, at?: number): ValueOf<F>;
  /**
   * Write `value` at byte `at` of `into` (default: a new buffer of exactly `size` bytes).
   * @returns `into`
   * @throws {RangeError} if a value does not fit its field or `into` is too short.
   */
  encode(value: ValueOf<F>, into?: Uint8Array, at?: number): Uint8Array;
}

function viewOf(bytes: Uint8Array): DataView {
  return new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

/** Declares structs whose `decode` throws `shortInput(message)` on a short buffer. */
export type StructFactory = <const F extends Fields>(name: string, fields: F) => Layout<F>;

/**
 * A `struct()` for one kind of input: `shortInput` makes the error a short buffer raises.
 */
export function structWith(shortInput: (message: string) => Error): StructFactory {
  return (name, fields) => defineStruct(name, fields, shortInput);
}

/**
 * Declare a packed little-endian struct. Field order is declaration order.
 * @param name C name of the struct, for error messages (e.g. `vfio_user_region_access`).
 */
function defineStruct<const F extends Fields>(name: string, fields: F, shortInput: (message: string) => Error): Layout<F> {
  const entries: Array<[string, FieldInfo]> = [];
  let size = 0;
  for (const [field, type] of Object.entries(fields)) {
    entries.push([field, Object.freeze({ offset: size, size: type.size, type })]);
    size += type.size;
  }
  const info = Object.freeze(Object.fromEntries(entries)) as { readonly [K in keyof F]: FieldInfo };

  const layout: Layout<F> = {
    name,
    size,
    fields: info,
    decode(bytes: Uint8Array, at = 0): ValueOf<F> {
      const have = bytes.length - at;
      if (!Number.isInteger(at) || at < 0 || have < size) {
        throw shortInput(`${name}: need ${size} bytes, have ${Math.max(0, have)}`);
      }
      const view = viewOf(bytes);
      const value: Record<string, unknown> = {};
      for (const [field, f] of entries) {
        value[field] = f.type.read(view, at + f.offset);
      }
      return value as ValueOf<F>;
    },
    encode(value: ValueOf<F>, into?: Uint8Array, at = 0): Uint8Array {
      const target = into ?? new Uint8Array(size);
      if (!Number.isInteger(at) || at < 0 || target.length - at < size) {
        throw new RangeError(`${name}: cannot encode ${size} bytes at ${at} into ${target.length} bytes`);
      }
      const view = viewOf(target);
      const record = value as Record<string, unknown>;
      for (const [field, f] of entries) {
        f.type.write(view, at + f.offset, record[field], `${name}.${field}`);
      }
      return target;
    },
  };
  return Object.freeze(layout);
}

/** Concatenate byte arrays into one new buffer. */
export function concatBytes(parts: readonly Uint8Array[]): Uint8Array {
  let length = 0;
  for (const part of parts) length += part.length;
  const out = new Uint8Array(length);
  let at = 0;
  for (const part of parts) {
    out.set(part, at);
    at += part.length;
  }
  return out;
}
