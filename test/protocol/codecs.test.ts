/**
 * Table-driven checks over every request and reply of every command
 * (fixtures.ts): round trips, decoding from a view into a larger buffer, and
 * rejection of every truncation with EINVAL.
 */
import t from 'tap';
import { Command, ProtocolError, errno, isCommand } from '../../src/protocol/index.js';
import { CASES } from './fixtures.js';

const EINVAL = errno('EINVAL');

t.test('the table covers a request and a reply of every command but the obsolete DIRTY_PAGES', (t) => {
  for (let n = 1; n <= 18; n++) {
    if (!isCommand(n) || n === Command.DirtyPages) continue;
    t.ok(
      CASES.some((c) => c.command === n && c.direction === 'request'),
      `${Command[n]} request`,
    );
    t.ok(
      CASES.some((c) => c.command === n && c.direction === 'reply'),
      `${Command[n]} reply`,
    );
  }
  t.end();
});

t.test('every message round-trips through encode and decode', async (t) => {
  for (const c of CASES) {
    t.test(c.name, (t) => {
      t.strictSame(c.decode(c.bytes), c.expected);
      t.end();
    });
  }
});

t.test('every message decodes from a view into a larger buffer', async (t) => {
  for (const c of CASES) {
    t.test(c.name, (t) => {
      const big = new Uint8Array(c.bytes.length + 11).fill(0xa5);
      big.set(c.bytes, 5);
      t.strictSame(c.decode(big.subarray(5, 5 + c.bytes.length)), c.expected);
      t.end();
    });
  }
});

t.test('every truncation of every message is rejected with EINVAL', async (t) => {
  for (const c of CASES) {
    t.test(c.name, (t) => {
      for (let length = 0; length < c.bytes.length; length++) {
        const truncated = c.bytes.slice(0, length);
        if (c.validPrefixes?.includes(length)) {
          t.doesNotThrow(() => c.decode(truncated), `${length} bytes is another valid message`);
          continue;
        }
        let error: unknown;
        try {
          c.decode(truncated);
        } catch (e) {
          error = e;
        }
        if (!(error instanceof ProtocolError) || error.errno !== EINVAL) {
          t.fail(`${length} of ${c.bytes.length} bytes: expected EINVAL, got ${String(error)}`);
          return t.end();
        }
      }
      t.pass(`all ${c.bytes.length} truncations rejected`);
      t.end();
    });
  }
});
