/**
 * The ring service's own C test (host-driver/test/test_ring.c) as part of `npm test`: a ring
 * written by hand — batches past the area's end and the service's in-flight limit, ids bound and
 * released in order, refusals, records that lie, random bytes — and every answer checked.
 * Needs `make -C host-driver`; FAILS (never skips) without it.
 */
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import t from 'tap';

const root = fileURLToPath(new URL('../../../', import.meta.url));
const binary = `${root}host-driver/build/test-ring`;
const kernels = `${root}guest-driver/kernels/build`;

t.test('host-driver/build/test-ring passes on the default device', (t) => {
  if (!existsSync(binary)) throw new Error(`${binary} is missing: run \`make -C host-driver\``);
  const run = spawnSync(binary, [kernels], {
    encoding: 'utf8',
    timeout: 300_000,
    env: { ...process.env, MDGPU_HOST_LOG: 'quiet' },
  });
  const summary = /^(\d+) passed, (\d+) failed$/m.exec(run.stdout);
  t.equal(run.status, 0, `exit status (stdout:\n${run.stdout}\nstderr:\n${run.stderr})`);
  t.ok(summary, 'ends with "N passed, N failed"');
  t.equal(summary?.[2], '0', 'no C check failed');
  t.ok(Number(summary?.[1]) > 500, `${summary?.[1]} C checks passed`);
  t.end();
});
