/**
 * Test helpers for protocol errors and for corrupting payloads one field at a time.
 * Set SHOW_ERRORS=1 to print every caught message (to check that each bad case fails for its own reason).
 */
import { pathToFileURL } from 'node:url';
import t, { type Test } from 'tap';
import { ProtocolError, type ErrnoName, type FieldInfo, type Fields, type Layout } from '../../src/protocol/index.js';

// tap runs every .js file under a directory argument (`npx tap build/test/protocol`); run
// directly, this helper module reports one passing check instead of failing with "no tests found".
if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) t.pass('helper module loads');

/**
 * Assert that `fn` throws a ProtocolError with errno `code` (and the given
 * fatality, non-fatal by default). Returns the error for further checks.
 */
export function throwsErrno(
  t: Test,
  fn: () => unknown,
  code: ErrnoName,
  options: { fatal?: boolean; message?: string | RegExp } = {},
): ProtocolError | undefined {
  let error: unknown;
  try {
    fn();
  } catch (e) {
    error = e;
  }
  const label = options.message === undefined ? `throws ${code}` : `throws ${code}: ${String(options.message)}`;
  if (!(error instanceof ProtocolError)) {
    t.fail(label, { found: error === undefined ? 'no error' : String(error) });
    return undefined;
  }
  if (process.env['SHOW_ERRORS']) console.error(`[${code}] ${error.message}`);
  const messageOk =
    options.message === undefined || (typeof options.message === 'string' ? error.message === options.message : options.message.test(error.message));
  t.ok(error.code === code && error.fatal === (options.fatal ?? false) && messageOk, label, {
    found: { code: error.code, fatal: error.fatal, message: error.message },
  });
  return error;
}

/**
 * A copy of `payload` with field `name` of `layout` (which starts at byte
 * `base` of the payload) set to `value`, written with the field's own type.
 */
export function withField<F extends Fields>(payload: Uint8Array, layout: Layout<F>, name: keyof F & string, value: number | bigint, base = 0): Uint8Array {
  const copy = payload.slice();
  const field: FieldInfo = layout.fields[name];
  const view = new DataView(copy.buffer, copy.byteOffset, copy.byteLength);
  field.type.write(view, base + field.offset, value, `test ${layout.name}.${name}`);
  return copy;
}
