/**
 * The host driver's own C test (host-driver/test/test_host.c) as part of `npm test`: it runs
 * every kernel against a CPU reference and every bad handle and argument through the C ABI,
 * including paths the TypeScript binding never takes (bad pointers, NULLs, several threads).
 * Needs `make -C host-driver`; FAILS (never skips) without it.
 */
import t from 'tap';
import { runCTest } from '../helpers/c-test.js';

t.test('host-driver/build/test-host passes on the default device', (t) => {
  runCTest(t, 'test-host');
  t.end();
});
