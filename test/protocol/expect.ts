/** Assertion helpers for protocol errors. Set SHOW_ERRORS=1 to print every caught message (to check each bad case fails for its own reason). */
import type { Test } from 'tap';
import { ProtocolError, type ErrnoName } from '../../src/protocol/index.js';

/**
 * Assert that `fn` throws a ProtocolError with errno `code` (and the given
 * fatality, non-fatal by default). Returns the error for further checks.
 */
export function throwsErrno(
  t: Test, fn: () => unknown, code: ErrnoName, options: { fatal?: boolean; message?: string | RegExp } = {},
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
  const messageOk = options.message === undefined
    || (typeof options.message === 'string' ? error.message === options.message : options.message.test(error.message));
  t.ok(error.code === code && error.fatal === (options.fatal ?? false) && messageOk, label, {
    found: { code: error.code, fatal: error.fatal, message: error.message },
  });
  return error;
}
