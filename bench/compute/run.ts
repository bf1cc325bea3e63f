/**
 * Guest vs native compute: the same SPIR-V kernels at the same sizes, run natively on the host
 * driver (bench/native, no VM, no mdgpu) and from a guest through mdgpu's mediated queues. The
 * ratio native/guest of wall time (submit → completion seen) is what virtualization costs.
 *
 * Like for like: native runs each kernel once, then `--iters` timed times on the same buffers
 * and reports medians; the guest does the same with `mdgpu-compute-bench -n <iters + 1> <kernel>` (the
 * first submission checked against the CPU, medians over all). A cold column shows one
 * `mdgpu-run` in full: fresh buffers, each kernel once.
 *
 *   npm run bench:compute [-- --iters 20]
 */
import { execFileSync } from 'node:child_process';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { fields, runGuestBench, table } from '../guest-bench.js';

const arg = (name: string, fallback: string) => {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1]! : fallback;
};

const KERNELS = ['saxpy', 'gemm', 'reduce', 'memcpy'];
/** The native benchmark's sizes: saxpy/reduce 16M elements, gemm 512, memcpy 64 MiB. */
const SIZES = '-s 16M -g 512 -r 16M -m 64M';

async function main(): Promise<void> {
  const iters = Number(arg('iters', '20'));
  if (!(iters >= 1)) throw new Error('--iters must be at least 1');
  const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');
  execFileSync('make', ['-s', '-C', path.join(root, 'bench/native')], { stdio: 'inherit' });
  const nativeOut = execFileSync(path.join(root, 'bench/native/build/mdgpu-native-bench'), ['-n', String(iters), '-k', KERNELS.join(',')], {
    encoding: 'utf8',
  });
  const native = nativeOut
    .split('\n')
    .filter((l) => l.startsWith('MDGPU-NATIVE '))
    .map(fields);

  const command = [`mdgpu-run ${SIZES} -t 120`, ...KERNELS.map((k) => `mdgpu-compute-bench ${SIZES} -n ${iters + 1} -t 120 ${k}`)].join('; ');
  const r = await runGuestBench({ command, apertureSize: 1 << 30, memoryMiB: 512, timeoutMs: 1_500_000 });
  const cold = r.lines.filter((l) => l.startsWith('MDGPU-RUN kernel=')).map(fields);
  const warm = r.lines.filter((l) => l.startsWith('MDGPU-RUN-LOOP kernel=')).map(fields);
  if (warm.length === 0) {
    console.error(r.lines.slice(-30).join('\n'));
    throw new Error('mdgpu-run printed no results');
  }
  const sameSize = (g: Record<string, string>, n: Record<string, string>) => g.kernel === n.kernel && (g.size === n.size || g.size === `${n.size}x${n.size}`);
  const ms = (ns: string | number | undefined) => (Number(ns) / 1e6).toFixed(1);
  const rows: string[][] = [];
  for (const n of native) {
    const g = warm.find((x) => sameSize(x, n));
    if (g === undefined) continue;
    const c = cold.find((x) => sameSize(x, n));
    rows.push([
      n.kernel!,
      g.size!,
      ms(n.ns),
      ms(g.median_ns),
      (Number(n.ns) / Number(g.median_ns)).toFixed(3),
      ms(n.device_ns),
      ms(g.dev_median_ns),
      ms(Number(n.ns) - Number(n.device_ns)),
      ms(Number(g.median_ns) - Number(g.dev_median_ns)),
      c === undefined ? '-' : ms(c.ns),
      g.ok === '1' && n.ok === '1' && (c === undefined || c.ok === '1') ? 'yes' : 'NO',
    ]);
  }
  console.log(
    `\nguest vs native — guest under ${r.guest.accel.toUpperCase()} (QEMU ${r.qemuVersion}), both on Mesa lavapipe, medians of ${iters + 1} (guest) and ${iters} after one untimed run (native)\n`,
  );
  console.log(
    table(
      [
        'kernel',
        'size',
        'native ms',
        'guest ms',
        'native/guest',
        'native device ms',
        'guest device ms',
        'native outside ms',
        'guest outside ms',
        'guest cold ms',
        'results ok',
      ],
      rows,
    ),
  );
  console.log('\nwall: submit → completion seen by the submitter (native: mdgpu_host_wait; guest: the fence in its mapping).');
  console.log("device: the batch's own begin/end timestamps; outside: wall − device, what one submission costs around its work.");
  console.log('cold: one full mdgpu-run, fresh buffers, each kernel once.');
  console.log('The guest and lavapipe share the same 2 host cores.');
}

main().catch((err: unknown) => {
  console.error(`bench: ${(err as Error).message}`);
  process.exitCode = 1;
});
