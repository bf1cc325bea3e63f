/**
 * What running a batch in parts costs on the device alone, without guests (issue 12): the same
 * gemm batch run whole and in parts of a time slice (src/exec/batch-parts.ts through the fair
 * scheduler, dispatches split into workgroup ranges), with the next part queued on the device
 * behind the running one (what a lone VM gets) and without (what a VM gets while others have
 * work), on the host driver in this process and through the worker process the daemon uses.
 * The modes take turns, batch by batch, so a drift of the machine's load weighs on all alike.
 * Wall: submit → the executor's answer; device: the batch's device time (summed over parts).
 *
 *   npm run bench:preempt [-- --n 10 --dim 512 --slice 8]
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import { fileURLToPath } from 'node:url';
import type { BackendKernel, ComputeDevice } from '../../src/backend/backend.js';
import { HostDevice, spirvWords } from '../../src/backend/host-driver.js';
import { IsolatedDevice } from '../../src/backend/isolated.js';
import type { Descriptor } from '../../src/device-commands.js';
import { ApertureExecutor } from '../../src/exec/aperture-executor.js';
import { setLogSink } from '../../src/log.js';
import { loadNative } from '../../src/native/binding.js';
import { FairScheduler } from '../../src/sched/scheduler.js';
import type { ExecutorCommand } from '../../src/vgpu/queue-execution.js';
import { table } from '../guest-bench.js';

const arg = (name: string, fallback: string) => {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1]! : fallback;
};

const MB = 1 << 20;
const APERTURE = Number(arg('aperture-mib', '64')) * MB;

const GEMM = spirvWords(fs.readFileSync(fileURLToPath(new URL('../../../guest-driver/kernels/build/gemm.spv', import.meta.url))));

interface Mode {
  label: string;
  run: () => Promise<number>;
  wall: number[];
  device: number[];
  parts: number[];
}

async function modesOn(device: ComputeDevice, fd: number, dim: number, sliceNs: number, tag: string): Promise<{ modes: Mode[]; close: () => Promise<void> }> {
  const scheduler = new FairScheduler({ timeSliceNs: sliceNs, batchTimeLimitNs: 0, preempt: true });
  scheduler.register('vm', 1);
  const whole = new ApertureExecutor(device, { fd, size: APERTURE }, null, false);
  const split = new ApertureExecutor(device, { fd, size: APERTURE }, { scheduler, vgpu: 'vm' }, false);
  const kw = (await whole.buildKernel({ spirv: GEMM, pushConstantBytes: 12, dispatchBase: false })).handle as BackendKernel;
  const ks = (await split.buildKernel({ spirv: GEMM, pushConstantBytes: 12, dispatchBase: false })).handle as BackendKernel;
  const storage = (binding: number, offset: number): Descriptor => ({ set: 0, binding, index: 0, type: 'storage', range: { offset, size: 4 * dim * dim } });
  const batch = (k: BackendKernel) =>
    [
      {
        kind: 'dispatch',
        kernel: k,
        base: [0, 0, 0],
        groups: [dim / 16, dim / 16, 1],
        descriptors: [storage(0, 0), storage(1, 16 * MB), storage(2, 32 * MB)],
        pushConstants: new Uint8Array(new Uint32Array([dim, dim, dim]).buffer),
      },
    ] as unknown as ExecutorCommand[];
  const meta = { priority: 0 } as Parameters<ApertureExecutor['run']>[1];
  // What the scheduler decides; "another VM is busy" is simulated by refusing to queue ahead.
  const quiet = (scheduler as unknown as { quiet: (a: unknown) => boolean }).quiet.bind(scheduler);
  const mode = (label: string, ex: ApertureExecutor, k: BackendKernel, queue: boolean | null): Mode => {
    const m: Mode = {
      label: `${tag}: ${label}`,
      wall: [],
      device: [],
      parts: [],
      run: async () => {
        if (queue !== null) (scheduler as unknown as { quiet: (a: unknown) => boolean }).quiet = queue ? quiet : () => false;
        const before = scheduler.stats()[0]!.parts;
        const t0 = process.hrtime.bigint();
        const r = await ex.run(batch(k), meta, new AbortController().signal);
        m.wall.push(Number(process.hrtime.bigint() - t0));
        m.device.push(r.deviceNs ?? 0);
        m.parts.push(queue === null ? 1 : scheduler.stats()[0]!.parts - before);
        return r.deviceNs ?? 0;
      },
    };
    return m;
  };
  return {
    modes: [mode('whole', whole, kw, null), mode('parts, next queued', split, ks, true), mode('parts, not queued', split, ks, false)],
    close: async () => {
      await whole.close();
      await split.close();
    },
  };
}

async function main(): Promise<void> {
  setLogSink(() => {});
  const n = Number(arg('n', '10'));
  const dim = Number(arg('dim', '512'));
  const sliceNs = Number(arg('slice', '8')) * 1e6;
  const native = loadNative();
  const fd = native.memfdCreate('mdgpu-bench-preempt', 0);
  native.ftruncate(fd, APERTURE);
  const load0 = os.loadavg();
  const inProcess = HostDevice.open();
  const worker = IsolatedDevice.open();
  const a = await modesOn(inProcess, fd, dim, sliceNs, 'in process');
  const b = await modesOn(worker, fd, dim, sliceNs, 'worker');
  const modes = [...a.modes, ...b.modes];
  for (const m of modes) await m.run(); // warm: kernels built, the model measured
  for (const m of modes) m.wall.length = m.device.length = m.parts.length = 0;
  for (let i = 0; i < n; i++) for (const m of i % 2 === 0 ? modes : [...modes].reverse()) await m.run();
  await a.close();
  await b.close();
  await inProcess.destroy();
  await worker.destroy();
  native.close(fd);
  const median = (xs: number[]) => [...xs].sort((x, y) => x - y)[Math.floor(xs.length / 2)]!;
  const ms = (ns: number) => (ns / 1e6).toFixed(1);
  const baseOf = (m: Mode) => modes[modes.indexOf(m) - (modes.indexOf(m) % 3)]!;
  console.log(`\ngemm ${dim}x${dim} whole vs in parts of ${sliceNs / 1e6} ms (lavapipe), ${n} batches per mode, taking turns\n`);
  console.log(
    table(
      ['mode', 'wall ms (median)', 'device ms (median)', 'parts per batch', 'wall / whole', 'device / whole'],
      modes.map((m) => [
        m.label,
        ms(median(m.wall)),
        ms(median(m.device)),
        (m.parts.reduce((x, y) => x + y, 0) / m.parts.length).toFixed(1),
        (median(m.wall) / median(baseOf(m).wall)).toFixed(3),
        (median(m.device) / median(baseOf(m).device)).toFixed(3),
      ]),
    ),
  );
  console.log(
    `\nload average ${load0.map((x) => x.toFixed(2)).join(' ')} at start, ${os
      .loadavg()
      .map((x) => x.toFixed(2))
      .join(' ')} at the end; ${os.cpus().length} CPUs`,
  );
}

await main();
process.exit(0);
