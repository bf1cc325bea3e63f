/**
 * The ring service's own C test (host-driver/test/test_ring.c) as part of `npm test`: a ring
 * written by hand — batches past the area's end and the service's in-flight limit, ids bound and
 * released in order, refusals, records that lie, random bytes — and every answer checked.
 * Needs `make -C host-driver`; FAILS (never skips) without it.
 */
import t from 'tap';
import { runCTest } from '../helpers/c-test.js';

t.test('host-driver/build/test-ring passes on the default device', (t) => {
  runCTest(t, 'test-ring');
  t.end();
});
