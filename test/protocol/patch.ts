/** Build bad messages from good ones, one field at a time, using the layouts' own offsets. */
import type { FieldInfo, Fields, Layout } from '../../src/protocol/index.js';

/**
 * A copy of `payload` with field `name` of `layout` (which starts at byte
 * `base` of the payload) set to `value`, written with the field's own type.
 */
export function withField<F extends Fields>(
  payload: Uint8Array, layout: Layout<F>, name: keyof F & string, value: number | bigint, base = 0,
): Uint8Array {
  const copy = payload.slice();
  const field: FieldInfo = layout.fields[name];
  const view = new DataView(copy.buffer, copy.byteOffset, copy.byteLength);
  field.type.write(view, base + field.offset, value, `test ${layout.name}.${name}`);
  return copy;
}

/** A copy of `payload` with a little-endian u32 written at byte `at`. */
export function withU32(payload: Uint8Array, at: number, value: number): Uint8Array {
  const copy = payload.slice();
  new DataView(copy.buffer, copy.byteOffset, copy.byteLength).setUint32(at, value, true);
  return copy;
}
