/**
 * The Vulkan suite's heavy kernels timed: saxpy, gemm, reduction and scan at sizes that take
 * 20 ms or more on lavapipe, each run --iters times inside one process (the program reports the
 * median device time, from timestamp queries, and the median wall time, submit to fence).
 *
 * Columns come from targets: today the native one — the kit-built binaries of the
 * mdgpu-vulkan-suite package on the host's Vulkan (test/helpers/vksuite.ts) — and the table is
 * laid out for more: a guest target (the same binaries in a guest, through mdgpu's ICD) is a
 * {@link Target} whose run() returns the same per-kernel timings; with two targets the table
 * adds native/guest ratios and says whether the digests match.
 *
 *   npm run bench:vulkan [-- --iters 10]
 */
import * as fs from 'node:fs';
import { fileURLToPath } from 'node:url';
import { ensureKit } from '../../src/kit/kit.js';
import { runVksuiteProgram, vksuiteBinaries, type VksuiteBinaries } from '../../test/helpers/vksuite.js';
import type { Kit } from '../../src/kit/kit.js';
import { table } from '../guest-bench.js';

/** One timed kernel: a program of the suite and its size. */
export interface BenchKernel {
  /** The check name the program prints. */
  name: string;
  program: string;
  size: string;
}

/** Sizes at which each kernel takes 20 ms or more on lavapipe here (2 cores). */
export const KERNELS: readonly BenchKernel[] = [
  { name: 'saxpy', program: 'vks-saxpy', size: '16M' },
  { name: 'gemm', program: 'vks-gemm', size: '256' },
  { name: 'reduce', program: 'vks-reduce', size: '4M' },
  { name: 'scan', program: 'vks-scan', size: '2M' },
];

/** One kernel's result on one target. */
export interface Timing {
  ms: number;
  wallMs: number;
  ok: boolean;
  digest: string;
}

/** Where the kernels run: one column pair of the table. */
export interface Target {
  label: string;
  run(kernels: readonly BenchKernel[], iterations: number): Promise<Map<string, Timing>>;
}

/** The kit-built binaries on the host's Vulkan, one process per kernel. */
export function nativeTarget(kit: Kit, bins: VksuiteBinaries): Target {
  return {
    label: 'native',
    async run(kernels, iterations) {
      const out = new Map<string, Timing>();
      for (const k of kernels) {
        const r = await runVksuiteProgram(kit, bins, k.program, ['--quiet', '--size', k.size, '--iterations', String(iterations)]);
        const c = r.checks.find((x) => x.name === k.name);
        if (!c) throw new Error(`${k.program} printed no ${k.name} line:\n${r.stdout}\n${r.stderr}`);
        out.set(k.name, { ms: c.ms, wallMs: Number(c.fields.wall_ms), ok: c.ok, digest: c.digest });
      }
      return out;
    },
  };
}

/** The table: per target device and wall medians; with a second target, ratios to the first. */
export function benchTable(kernels: readonly BenchKernel[], results: { label: string; timings: Map<string, Timing> }[]): string {
  const header = ['kernel', 'size'];
  for (const r of results) header.push(`${r.label} device ms`, `${r.label} wall ms`);
  const [base, ...others] = results;
  for (const o of others) header.push(`${base!.label}/${o.label} device`, `${base!.label}/${o.label} wall`, 'same digest');
  const rows = kernels.map((k) => {
    const row = [k.name, k.size];
    for (const r of results) {
      const t = r.timings.get(k.name);
      row.push(t ? `${t.ms.toFixed(2)}${t.ok ? '' : ' (FAILED)'}` : '-', t ? t.wallMs.toFixed(2) : '-');
    }
    const b = base?.timings.get(k.name);
    for (const o of others) {
      const t = o.timings.get(k.name);
      row.push(b && t ? (b.ms / t.ms).toFixed(3) : '-', b && t ? (b.wallMs / t.wallMs).toFixed(3) : '-', b && t ? (b.digest === t.digest ? 'yes' : 'NO') : '-');
    }
    return row;
  });
  return table(header, rows);
}

async function main(): Promise<void> {
  const i = process.argv.indexOf('--iters');
  const iterations = i >= 0 ? Number(process.argv[i + 1]) : 10;
  if (!(iterations >= 1)) throw new Error('--iters must be at least 1');
  const kit = await ensureKit();
  const bins = await vksuiteBinaries(kit);
  const targets: Target[] = [nativeTarget(kit, bins)];
  const results: { label: string; timings: Map<string, Timing> }[] = [];
  for (const target of targets) results.push({ label: target.label, timings: await target.run(KERNELS, iterations) });
  console.log(`Vulkan suite kernels, median of ${iterations} iterations each (device: timestamp queries; wall: submit to fence)\n`);
  console.log(benchTable(KERNELS, results));
  if (results.some((r) => [...r.timings.values()].some((t) => !t.ok))) process.exitCode = 1;
}

if (process.argv[1] && fs.realpathSync(process.argv[1]) === fileURLToPath(import.meta.url)) {
  await main();
}
