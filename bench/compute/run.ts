/**
 * Guest vs native compute: the same SPIR-V kernels at the same sizes, run natively on the host
 * driver (bench/native, no VM, no mdgpu) and from a guest through mdgpu's mediated queues. The
 * ratio native/guest of wall time (submit → completion seen) is what virtualization costs.
 *
 *   npm run bench:compute [-- --rounds 3]
 */
import { execFileSync } from 'node:child_process';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { fields, runGuestBench, table } from '../guest-bench.js';

const arg = (name: string, fallback: string) => {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1]! : fallback;
};

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length === 0 ? NaN : s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
};

async function main(): Promise<void> {
  const rounds = Number(arg('rounds', '3'));
  const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');
  execFileSync('make', ['-s', '-C', path.join(root, 'bench/native')], { stdio: 'inherit' });
  const nativeOut = execFileSync(path.join(root, 'bench/native/build/mdgpu-native-bench'), ['-n', String(Math.max(3, rounds)), '-k', 'saxpy,gemm,reduce,memcpy'], { encoding: 'utf8' });
  const native = nativeOut.split('\n').filter((l) => l.startsWith('MDGPU-NATIVE ')).map(fields);

  // The guest runs the native sizes (saxpy/reduce 16M elements, gemm 512, memcpy 64 MiB).
  const command = Array.from({ length: rounds }, () => 'mdgpu-run -s 16M -g 512 -r 16M -m 64M -t 120').join('; ');
  const r = await runGuestBench({ command, apertureSize: 1 << 30, memoryMiB: 512, timeoutMs: 1_500_000 });
  const guest = r.lines.filter((l) => l.startsWith('MDGPU-RUN kernel=')).map(fields);
  if (guest.length === 0) {
    console.error(r.lines.slice(-30).join('\n'));
    throw new Error('mdgpu-run printed no results');
  }
  const rows: string[][] = [];
  for (const n of native) {
    const samples = guest.filter((g) => g.kernel === n.kernel && (g.size === n.size || g.size === `${n.size}x${n.size}`));
    if (samples.length === 0) continue;
    const gWall = median(samples.map((g) => Number(g.ns)));
    const gDev = median(samples.map((g) => Number(g.dev_ns)));
    const nWall = Number(n.ns);
    const nDev = Number(n.device_ns);
    rows.push([
      n.kernel!,
      samples[0]!.size!,
      (nWall / 1e6).toFixed(1),
      (gWall / 1e6).toFixed(1),
      (nWall / gWall).toFixed(3),
      (nDev / 1e6).toFixed(1),
      (gDev / 1e6).toFixed(1),
      samples.every((g) => g.ok === '1') && n.ok === '1' ? 'yes' : 'NO',
    ]);
  }
  console.log(`\nguest vs native — guest under ${r.guest.accel.toUpperCase()} (QEMU ${r.qemuVersion}), both on Mesa lavapipe, ${rounds} rounds in the guest (medians)\n`);
  console.log(table(['kernel', 'size', 'native ms', 'guest ms', 'native/guest', 'native device ms', 'guest device ms', 'results ok'], rows));
  console.log('\nwall: submit → completion seen by the submitter (native: mdgpu_host_wait; guest: the fence in its mapping).');
  console.log('device: the batch\'s own begin/end timestamps. The guest and lavapipe share the same 2 host cores.');
}

main().catch((err: unknown) => {
  console.error(`bench: ${(err as Error).message}`);
  process.exitCode = 1;
});
