/**
 * What running the compute device in a worker process costs (src/backend/isolated.ts): the
 * same batches on the host driver in this process and through the worker, side by side, on
 * memory imported from one memfd. Submit → completion seen, per batch, median and p90.
 *
 *   npm run bench:isolation [-- --n 500]
 */
import * as fs from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { BackendKernel, Command, ComputeDevice } from '../../src/backend/backend.js';
import { HostDevice, spirvWords } from '../../src/backend/host-driver.js';
import { IsolatedDevice } from '../../src/backend/isolated.js';
import { loadNative } from '../../src/native/binding.js';
import { setLogSink } from '../../src/log.js';
import { table } from '../guest-bench.js';

const arg = (name: string, fallback: string) => {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1]! : fallback;
};

const SIZE = 64 << 20;
const SAXPY = spirvWords(fs.readFileSync(fileURLToPath(new URL('../../../guest-driver/kernels/build/saxpy.spv', import.meta.url))));

/** The batches measured: name → commands on `mem` with `saxpy`. */
function batches(saxpy: BackendKernel): [string, Command[]][] {
  const saxpyOf = (n: number): Command => {
    const push = new Uint8Array(8);
    new DataView(push.buffer).setUint32(0, n, true);
    new DataView(push.buffer).setFloat32(4, 2, true);
    const storage = (binding: number, offset: number) => ({ set: 0, binding, index: 0, type: 'storage' as const, range: { offset, size: n * 4 } });
    return {
      kind: 'dispatch',
      kernel: saxpy,
      base: [0, 0, 0],
      groups: [Math.min(65535, n / 64), Math.max(1, Math.ceil(n / 64 / 65535)), 1],
      descriptors: [storage(0, 0), storage(1, 32 << 20)],
      pushConstants: push,
    };
  };
  return [
    ['fill 4 KiB', [{ kind: 'fill', dst: { offset: 0, size: 4096 }, value: 1 }]],
    ['saxpy 64K', [saxpyOf(1 << 16)]],
    ['saxpy 4M', [saxpyOf(1 << 22)]],
  ];
}

async function measure(dev: ComputeDevice, fd: number, n: number): Promise<Map<string, number[]>> {
  await dev.whenReady?.();
  const mem = dev.importFd(fd, 0, SIZE);
  const saxpy = await dev.buildKernel(SAXPY, { bindings: 2, pushConstantSize: 8 });
  const out = new Map<string, number[]>();
  for (const [name, commands] of batches(saxpy)) {
    const runs = name === 'saxpy 4M' ? Math.max(5, n / 20) : n;
    await dev.submit(mem, commands); // warm-up
    const lat: number[] = [];
    for (let i = 0; i < runs; i++) {
      const t0 = process.hrtime.bigint();
      await dev.submit(mem, commands);
      lat.push(Number(process.hrtime.bigint() - t0) / 1000);
    }
    out.set(
      name,
      lat.sort((a, b) => a - b),
    );
  }
  saxpy.destroy();
  mem.destroy();
  await dev.destroy();
  return out;
}

async function main(): Promise<void> {
  setLogSink(() => {});
  const n = Number(arg('n', '500'));
  const native = loadNative();
  const fd = native.memfdCreate('mdgpu-bench-isolation', 0);
  native.ftruncate(fd, SIZE);
  const inProcess = await measure(HostDevice.open(), fd, n);
  const worker = await measure(IsolatedDevice.open(), fd, n);
  native.close(fd);
  const pct = (xs: number[], p: number) => xs[Math.min(xs.length - 1, Math.floor(xs.length * p))]!;
  const rows = [...inProcess.keys()].map((name) => {
    const a = inProcess.get(name)!;
    const b = worker.get(name)!;
    return [
      name,
      String(b.length),
      pct(a, 0.5).toFixed(1),
      pct(b, 0.5).toFixed(1),
      (pct(b, 0.5) - pct(a, 0.5)).toFixed(1),
      pct(a, 0.9).toFixed(1),
      pct(b, 0.9).toFixed(1),
    ];
  });
  console.log(`\nsubmit → completion seen, µs (${HostDevice.name} in this process vs IsolatedDevice's worker process)\n`);
  console.log(table(['batch', 'runs', 'in process median', 'worker median', 'worker − in process', 'in process p90', 'worker p90'], rows));
}

main().catch((err: unknown) => {
  console.error(`bench: ${(err as Error).message}`);
  process.exitCode = 1;
});
