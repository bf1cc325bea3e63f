/**
 * Runs one of the host driver's C test programs (host-driver/build/test-*) the way `npm test`
 * does: on the default device, with the kernels, its own log quiet, and its summary line
 * ("N passed, N failed", host-driver/test/check.h) checked. Needs `make -C host-driver`; FAILS
 * (never skips) without it.
 */
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { Test } from 'tap';

const root = fileURLToPath(new URL('../../../', import.meta.url));

/** Run `host-driver/build/<program>` and check that it ran more than `atLeast` checks, all passing. */
export function runCTest(t: Test, program: string, atLeast = 500): void {
  const binary = `${root}host-driver/build/${program}`;
  if (!existsSync(binary)) throw new Error(`${binary} is missing: run \`make -C host-driver\``);
  const run = spawnSync(binary, [`${root}guest-driver/kernels/build`], {
    encoding: 'utf8',
    timeout: 300_000,
    env: { ...process.env, MDGPU_HOST_LOG: 'quiet' },
  });
  const summary = /^(\d+) passed, (\d+) failed$/m.exec(run.stdout);
  t.equal(run.status, 0, `exit status (stdout:\n${run.stdout}\nstderr:\n${run.stderr})`);
  t.ok(summary, 'ends with "N passed, N failed"');
  t.equal(summary?.[2], '0', 'no C check failed');
  t.ok(Number(summary?.[1]) > atLeast, `${summary?.[1]} C checks passed`);
}
