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
 * The guest runs with long batches in parts of a time slice (preemption, the default) and with
 * every batch whole (`mdgpu serve --no-preempt`), in --rounds rounds of both, ABBA order (whole,
 * parts, parts, whole, …) so a drift of the machine's load over the run weighs on both alike;
 * the guest columns are the mean of each mode's medians.
 *
 *   npm run bench:compute [-- --iters 20 --rounds 1]
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

type Fields = Record<string, string>;

/** One guest run: its loop results (medians) and one-shot results per kernel, and parts per batch. */
async function guestRun(iters: number, preempt: boolean) {
  const command = [`mdgpu-run ${SIZES} -t 120`, ...KERNELS.map((k) => `mdgpu-compute-bench ${SIZES} -n ${iters + 1} -t 120 ${k}`)].join('; ');
  const r = await runGuestBench({ command, apertureSize: 1 << 30, memoryMiB: 512, timeoutMs: 1_500_000, preempt });
  const cold = r.lines.filter((l) => l.startsWith('MDGPU-RUN kernel=')).map(fields);
  const warm = r.lines.filter((l) => l.startsWith('MDGPU-RUN-LOOP kernel=')).map(fields);
  if (warm.length === 0) {
    console.error(r.lines.slice(-30).join('\n'));
    throw new Error('mdgpu-run printed no results');
  }
  return { cold, warm, partsPerBatch: r.sched.batches > 0 ? r.sched.parts / r.sched.batches : 0, r };
}

async function main(): Promise<void> {
  const iters = Number(arg('iters', '20'));
  const rounds = Number(arg('rounds', '1'));
  if (!(iters >= 1)) throw new Error('--iters must be at least 1');
  if (!(rounds >= 1)) throw new Error('--rounds must be at least 1');
  const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');
  execFileSync('make', ['-s', '-C', path.join(root, 'bench/native')], { stdio: 'inherit' });
  const nativeOut = execFileSync(path.join(root, 'bench/native/build/mdgpu-native-bench'), ['-n', String(iters), '-k', KERNELS.join(',')], {
    encoding: 'utf8',
  });
  const native = nativeOut
    .split('\n')
    .filter((l) => l.startsWith('MDGPU-NATIVE '))
    .map(fields);

  const runs: { preempt: boolean; run: Awaited<ReturnType<typeof guestRun>> }[] = [];
  for (let i = 0; i < rounds; i++) {
    for (const preempt of i % 2 === 0 ? [false, true] : [true, false]) runs.push({ preempt, run: await guestRun(iters, preempt) });
  }
  const sameSize = (g: Fields, n: Fields) => g.kernel === n.kernel && (g.size === n.size || g.size === `${n.size}x${n.size}`);
  const ms = (ns: string | number | undefined) => (Number(ns) / 1e6).toFixed(1);
  const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
  /** The mean over a mode's runs of `key` of the kernel's result (warm loop or cold). */
  const of = (preempt: boolean, n: Fields, kind: 'warm' | 'cold', key: string) => {
    const xs = runs
      .filter((x) => x.preempt === preempt)
      .map((x) => x.run[kind].find((g) => sameSize(g, n)))
      .filter((g): g is Fields => g !== undefined)
      .map((g) => Number(g[key]));
    return xs.length > 0 ? mean(xs) : Number.NaN;
  };
  const ok = (n: Fields) => runs.every((x) => x.run.warm.find((g) => sameSize(g, n))?.ok === '1' && x.run.cold.find((g) => sameSize(g, n))?.ok !== '0');
  const rows: string[][] = [];
  for (const n of native) {
    if (!runs[0]!.run.warm.some((g) => sameSize(g, n))) continue;
    const size = runs[0]!.run.warm.find((g) => sameSize(g, n))!.size!;
    const whole = of(false, n, 'warm', 'median_ns');
    const parts = of(true, n, 'warm', 'median_ns');
    const partsDev = of(true, n, 'warm', 'dev_median_ns');
    rows.push([
      n.kernel!,
      size,
      ms(n.ns),
      ms(whole),
      ms(parts),
      (Number(n.ns) / whole).toFixed(3),
      (Number(n.ns) / parts).toFixed(3),
      (parts / whole).toFixed(3),
      ms(n.device_ns),
      ms(of(false, n, 'warm', 'dev_median_ns')),
      ms(partsDev),
      ms(Number(n.ns) - Number(n.device_ns)),
      ms(parts - partsDev),
      ms(of(true, n, 'cold', 'ns')),
      ok(n) && n.ok === '1' ? 'yes' : 'NO',
    ]);
  }
  const r0 = runs[0]!.run.r;
  console.log(
    `\nguest vs native — guest under ${r0.guest.accel.toUpperCase()} (QEMU ${r0.qemuVersion}), both on Mesa lavapipe, medians of ${iters + 1} (guest) and ${iters} after one untimed run (native); ${rounds} round${rounds === 1 ? '' : 's'} of each guest mode\n`,
  );
  console.log(
    table(
      [
        'kernel',
        'size',
        'native ms',
        'guest ms (whole)',
        'guest ms (parts)',
        'native/guest (whole)',
        'native/guest (parts)',
        'parts/whole',
        'native device ms',
        'guest device ms (whole)',
        'guest device ms (parts)',
        'native outside ms',
        'guest outside ms (parts)',
        'guest cold ms (parts)',
        'results ok',
      ],
      rows,
    ),
  );
  const pp = (preempt: boolean) => mean(runs.filter((x) => x.preempt === preempt).map((x) => x.run.partsPerBatch)).toFixed(1);
  console.log(`\ndevice submissions per guest batch: ${pp(false)} whole, ${pp(true)} in parts (of the default time slice).`);
  console.log('wall: submit → completion seen by the submitter (native: mdgpu_host_wait; guest: the fence in its mapping).');
  console.log(
    "device: the batch's own begin/end timestamps (in parts: summed over its parts); outside: wall − device, what one submission costs around its work.",
  );
  console.log('cold: one full mdgpu-run, fresh buffers, each kernel once.');
  console.log('The guest and lavapipe share the same 2 host cores.');
}

main().catch((err: unknown) => {
  console.error(`bench: ${(err as Error).message}`);
  process.exitCode = 1;
});
