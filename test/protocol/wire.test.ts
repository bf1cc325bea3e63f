/** The layout DSL: offsets, sizes, inferred types, little-endian packing, and its two error kinds. */
import t from 'tap';
import { ProtocolError, U64_MAX, bytes, errno, struct, u16, u32, u64, u8 } from '../../src/protocol/index.js';

const Access = struct('vfio_user_region_access', { offset: u64, region: u32, count: u32 });
const Mixed = struct('mixed', { a: u8, b: u16, c: u32, d: u64, e: bytes(3) });

t.test('fields are packed in declaration order', (t) => {
  t.equal(Access.size, 16);
  t.strictSame(
    Object.entries(Access.fields).map(([name, f]) => [name, f.offset, f.size]),
    [
      ['offset', 0, 8],
      ['region', 8, 4],
      ['count', 12, 4],
    ],
  );
  t.equal(Mixed.size, 1 + 2 + 4 + 8 + 3);
  t.equal(Mixed.fields.e.offset, 15);
  t.end();
});

t.test('decode infers field types: u64 as bigint, smaller as number', (t) => {
  const value: { offset: bigint; region: number; count: number } = Access.decode(new Uint8Array(16));
  const back: Parameters<typeof Access.encode>[0] = value;
  t.strictSame(back, { offset: 0n, region: 0, count: 0 });
  t.end();
});

t.test('values are little-endian', (t) => {
  const encoded = Mixed.encode({ a: 0x12, b: 0x3456, c: 0x789abcde, d: 0x0102030405060708n, e: Uint8Array.of(7, 8, 9) });
  t.strictSame([...encoded], [0x12, 0x56, 0x34, 0xde, 0xbc, 0x9a, 0x78, 8, 7, 6, 5, 4, 3, 2, 1, 7, 8, 9]);
  t.end();
});

t.test('u64 keeps all 64 bits', (t) => {
  const encoded = Access.encode({ offset: U64_MAX, region: 0xffff_ffff, count: 1 });
  t.strictSame(Access.decode(encoded), { offset: U64_MAX, region: 0xffff_ffff, count: 1 });
  t.end();
});

t.test('decode reads at an offset and from a view', (t) => {
  const buffer = new Uint8Array(40).fill(0xee);
  Access.encode({ offset: 5n, region: 6, count: 7 }, buffer, 20);
  t.strictSame(Access.decode(buffer, 20), { offset: 5n, region: 6, count: 7 });
  t.strictSame(Access.decode(buffer.subarray(20)), { offset: 5n, region: 6, count: 7 });
  t.end();
});

t.test('decoded byte arrays are copies, not views of the input', (t) => {
  const input = Mixed.encode({ a: 0, b: 0, c: 0, d: 0n, e: Uint8Array.of(1, 2, 3) });
  const value = Mixed.decode(input);
  input[15] = 99;
  t.strictSame([...value.e], [1, 2, 3]);
  t.end();
});

t.test('a short buffer is a ProtocolError EINVAL naming the struct', (t) => {
  t.throws(() => Access.decode(new Uint8Array(9)), {
    name: 'ProtocolError',
    errno: errno('EINVAL'),
    message: 'vfio_user_region_access: need 16 bytes, have 9',
  });
  t.throws(() => Access.decode(new Uint8Array(16), 10), { message: 'vfio_user_region_access: need 16 bytes, have 6' });
  t.throws(() => Access.decode(new Uint8Array(4), 10), { message: 'vfio_user_region_access: need 16 bytes, have 0' });
  t.throws(() => Access.decode(new Uint8Array(16), -1), ProtocolError);
  t.end();
});

t.test('encoding a value that does not fit is a RangeError (a bug on our side)', (t) => {
  const ok = { offset: 0n, region: 0, count: 0 };
  t.throws(() => Access.encode({ ...ok, region: -1 }), RangeError);
  t.throws(() => Access.encode({ ...ok, region: 2 ** 32 }), RangeError);
  t.throws(() => Access.encode({ ...ok, count: 1.5 }), RangeError);
  t.throws(() => Access.encode({ ...ok, offset: -1n }), RangeError);
  t.throws(() => Access.encode({ ...ok, offset: U64_MAX + 1n }), RangeError);
  t.throws(() => Mixed.encode({ a: 256, b: 0, c: 0, d: 0n, e: new Uint8Array(3) }), RangeError);
  t.throws(() => Mixed.encode({ a: 0, b: 65536, c: 0, d: 0n, e: new Uint8Array(3) }), RangeError);
  t.throws(() => Mixed.encode({ a: 0, b: 0, c: 0, d: 0n, e: new Uint8Array(2) }), RangeError);
  t.throws(() => Access.encode(ok, new Uint8Array(15)), RangeError);
  t.throws(() => Access.encode(ok, new Uint8Array(16), 1), RangeError);
  t.throws(() => bytes(-1), RangeError);
  t.end();
});

t.test('layouts are frozen', (t) => {
  t.ok(Object.isFrozen(Access));
  t.ok(Object.isFrozen(Access.fields));
  t.ok(Object.isFrozen(Access.fields.offset));
  t.end();
});
