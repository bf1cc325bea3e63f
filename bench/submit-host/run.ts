/**
 * What one small submission costs on the host, without a VM: a guest's submission written into
 * a queue ring in the aperture exactly as a guest writes it (the command format's encoder,
 * src/vgpu/command-builder.ts), the doorbell rung only when the queue asks for one and then as
 * QEMU forwards it (the REGION_WRITE the server decodes, here handed to the PCI model directly:
 * the socket and the trap are `bench:trap`'s), and timed until the fence is written in the
 * aperture — what a guest spinning on it sees. Through the daemon's whole path: the queue
 * engine, the validator, the fair scheduler, the executor and the compute device, once with the
 * host driver in this process and once in the compute worker (the daemon's way), next to the
 * same batches on the host driver directly (`bench/native`'s mdgpu-submit-native: submit2 and a
 * fence wait, no mdgpu at all), in the same run, rounds interleaved.
 *
 * Batches: a 4 KiB FILL; one DISPATCH2 of one workgroup (guest-driver/kernels memcpy, 64
 * invocations); a fence-only submission (SUBMIT with a fence and no commands: it never reaches
 * the device, so its native counterpart is the least a device batch costs, one BARRIER).
 *
 * A second table splits each path's median into where the time goes, from timestamps on one
 * clock (CLOCK_MONOTONIC: process.hrtime here, the host driver's status in either process).
 *
 *   npm run bench:submit-host [-- --n 500 --rounds 3 --take caller|service]
 *
 * `--take service`: the in-process device rings its ring service's doorbell, as the daemon does
 * for its worker, instead of taking each batch on the event loop's thread (the default).
 * `--native PATH`: another mdgpu-submit-native (to run this bench from an older checkout).
 */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { BackendMemory, Command, ComputeDevice, SubmissionStatus, SubmitHooks } from '../../src/backend/backend.js';
import { HostDevice } from '../../src/backend/host-driver.js';
import { IsolatedDevice } from '../../src/backend/isolated.js';
import { nativeHostOps } from '../../src/cli/host-ops.js';
import { ApertureExecutor } from '../../src/exec/aperture-executor.js';
import { setLogSink } from '../../src/log.js';
import { loadNative } from '../../src/native/binding.js';
import { DEFAULT_SCHEDULER_OPTIONS, FairScheduler } from '../../src/sched/scheduler.js';
import { type CommandSpec, encodeSubmission } from '../../src/vgpu/command-builder.js';
import { CMD_LAYOUTS } from '../../src/vgpu/commands.js';
import { MdgpuDevice, REGISTER_BAR } from '../../src/vgpu/device.js';
import { MAILBOX_OPS } from '../../src/vgpu/mailbox-ops.js';
import { QUEUE_CONTROL_SIZE, QueueControl } from '../../src/vgpu/queue-ring.js';
import { MDGPU_REGS } from '../../src/vgpu/regs.js';
import { HostGuest } from '../../test/helpers/host-guest.js';
import { table } from '../guest-bench.js';

const arg = (name: string, fallback: string) => {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1]! : fallback;
};

const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
const NATIVE_BIN = arg('native', `${ROOT}bench/native/build/mdgpu-submit-native`);
const MEMCPY = fs.readFileSync(`${ROOT}guest-driver/kernels/build/memcpy.spv`);
const KINDS = ['fill', 'dispatch', 'fence'] as const;
type Kind = (typeof KINDS)[number];
const WARMUP = 20;
const RING_BYTES = 0x10000;

const native = loadNative();

/** Timestamps of one submission (ns, CLOCK_MONOTONIC). */
interface Sample {
  /** The guest starts writing the submission. */
  t0: bigint;
  /** The queue engine hands the validated batch to the executor (its scheduler). */
  run: bigint;
  /** The executor hands the batch to the compute device. */
  submit: bigint;
  /** The host driver's status: submit2 called, the fence seen by its waiter. */
  status: SubmissionStatus | null;
  /** The device's Promise settled. */
  resolved: bigint;
  /** The fence value is in the aperture. */
  t1: bigint;
}

/** The compute device, with the executor's submits timed. */
function timedDevice(device: ComputeDevice, current: () => Sample): ComputeDevice {
  return new Proxy(device, {
    get(target, prop) {
      if (prop === 'submit') {
        return (memory: BackendMemory, commands: readonly Command[], hooks?: SubmitHooks) => {
          const s = current();
          s.submit = process.hrtime.bigint();
          const p = target.submit(memory, commands, hooks);
          p.then(
            (status) => {
              s.resolved = process.hrtime.bigint();
              s.status = status;
            },
            () => {},
          );
          return p;
        };
      }
      const v = Reflect.get(target, prop, target) as unknown;
      return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(target) : v;
    },
  });
}

/** A vGPU as the daemon makes one, on `device`, and a guest playing on it from the host side. */
async function measure(device: ComputeDevice, n: number): Promise<Map<Kind, Sample[]>> {
  await device.whenReady?.();
  let sample: Sample = { t0: 0n, run: 0n, submit: 0n, status: null, resolved: 0n, t1: 0n };
  const scheduler = new FairScheduler(DEFAULT_SCHEDULER_OPTIONS);
  scheduler.register('bench', 1, 64);
  const dev = new MdgpuDevice({ name: 'bench', apertureSize: 16 << 20, host: nativeHostOps(native) });
  const executor = new ApertureExecutor(
    timedDevice(device, () => sample),
    { fd: dev.apertureFd, size: dev.aperture.byteLength },
    { scheduler, vgpu: 'bench' },
    false,
  );
  const run = executor.run.bind(executor);
  executor.run = (commands, meta, signal) => {
    sample.run = process.hrtime.bigint();
    return run(commands, meta, signal);
  };
  dev.attachExecutor(executor);
  dev.queues.limits = executor.limits(dev.queues.limits);
  try {
    const guest = new HostGuest(dev);
    const kernel = await guest.kernel(MEMCPY, 2, 4);
    const data = guest.alloc(0x10000);
    const fence = guest.alloc(0x1000);
    const ring = guest.alloc(QUEUE_CONTROL_SIZE + RING_BYTES);
    const q = guest.op(MAILBOX_OPS.QUEUE_CREATE.code, guest.ctx, ring.handle, 0);
    if (q.result !== 0) throw new Error(`QUEUE_CREATE failed: ${q.result}`);
    const view = new DataView(dev.aperture.buffer);
    const doorbell = new Uint8Array(4);
    new DataView(doorbell.buffer).setUint32(0, q.ret, true);
    let tail = 0;
    let done: (() => void) | null = null;
    dev.queues.onSubmissionDone = () => {
      sample.t1 = process.hrtime.bigint();
      done?.();
    };
    const push = new Uint8Array(4);
    new DataView(push.buffer).setUint32(0, 64, true);
    const specs: Record<Kind, CommandSpec[]> = {
      fill: [{ op: 'fill', dst: { buffer: data.handle, offset: 0 }, size: 4096, value: 0x01020304 }],
      dispatch: [
        {
          op: 'dispatch2',
          kernel,
          groups: [1, 1, 1],
          descriptors: [
            { set: 0, binding: 0, type: 'storage', buffer: data.handle, offset: 0, range: 256 },
            { set: 0, binding: 1, type: 'storage', buffer: data.handle, offset: 0x8000, range: 256 },
          ],
          push,
        },
      ],
      fence: [],
    };
    const fenceValueAt = CMD_LAYOUTS.SUBMIT.fields.fenceValue.offset;
    let fenceValue = 0n;
    /** One submission: written as a guest writes it, timed until its fence is in the aperture. */
    const once = async (bytes: Uint8Array): Promise<Sample> => {
      fenceValue++;
      new DataView(bytes.buffer).setBigUint64(fenceValueAt, fenceValue, true);
      sample = { t0: process.hrtime.bigint(), run: 0n, submit: 0n, status: null, resolved: 0n, t1: 0n };
      const finished = new Promise<void>((r) => (done = r));
      const at = tail % RING_BYTES;
      const first = Math.min(bytes.length, RING_BYTES - at);
      dev.aperture.set(bytes.subarray(0, first), ring.offset + QUEUE_CONTROL_SIZE + at);
      dev.aperture.set(bytes.subarray(first), ring.offset + QUEUE_CONTROL_SIZE);
      tail += bytes.length;
      view.setBigUint64(ring.offset + QueueControl.fields.tail.offset, BigInt(tail), true);
      // The notification protocol: ring only when the queue sleeps (as QEMU forwards the write).
      if (view.getUint32(ring.offset + QueueControl.fields.doorbellNeeded.offset, true) === 1) {
        dev.pci.regionWrite(REGISTER_BAR, MDGPU_REGS.QUEUE_DOORBELL.offset, doorbell);
      }
      await finished;
      if (view.getBigUint64(fence.offset, true) !== fenceValue) throw new Error(`fence ${view.getBigUint64(fence.offset, true)}, want ${fenceValue}`);
      return sample;
    };
    const out = new Map<Kind, Sample[]>();
    for (const kind of KINDS) {
      const bytes = encodeSubmission(specs[kind], { dst: { buffer: fence.handle, offset: 0 }, value: 0n });
      for (let i = 0; i < WARMUP; i++) await once(bytes);
      const samples: Sample[] = [];
      for (let i = 0; i < n; i++) samples.push(await once(bytes));
      out.set(kind, samples);
    }
    if (guest.done.some((e) => e !== null)) throw new Error(`a submission failed: ${guest.done.find((e) => e !== null)}`);
    return out;
  } finally {
    await executor.close();
    dev.close();
  }
}

/** mdgpu-submit-native's medians and p99s (ns), by path and batch, and its raw samples' summary. */
function runNative(n: number): Map<string, { median: number; p99: number }> {
  if (!fs.existsSync(NATIVE_BIN)) throw new Error(`${NATIVE_BIN} is missing: run \`make -C bench/native submit\``);
  const r = spawnSync(NATIVE_BIN, ['-n', String(n)], { encoding: 'utf8', env: { ...process.env, MDGPU_HOST_LOG: 'quiet' }, timeout: 600_000 });
  if (r.status !== 0) throw new Error(`mdgpu-submit-native failed: ${r.stderr}`);
  const out = new Map<string, { median: number; p99: number }>();
  for (const line of r.stdout.split('\n')) {
    const m = /^MDGPU-SUBMIT-NATIVE path=(\S+) kind=(\S+) n=\d+ median_ns=(\d+) p99_ns=(\d+)/.exec(line);
    if (m) out.set(`${m[1]} ${m[2]}`, { median: Number(m[3]), p99: Number(m[4]) });
  }
  return out;
}

const pct = (xs: number[], p: number) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor(s.length * p))]!;
};
const us = (ns: number) => (ns / 1000).toFixed(1);

async function main(): Promise<void> {
  setLogSink(() => {});
  const n = Number(arg('n', '500'));
  const rounds = Number(arg('rounds', '3'));
  const inProcess = HostDevice.open({ takeOn: arg('take', 'caller') === 'service' ? 'service' : 'caller' });
  const worker = IsolatedDevice.open({ info: inProcess.info });
  // Native rounds give medians per round; the mdgpu paths keep every sample.
  const nativeRounds: Map<string, { median: number; p99: number }>[] = [];
  const samples = { inProcess: new Map<Kind, Sample[]>(), worker: new Map<Kind, Sample[]>() };
  const add = (to: Map<Kind, Sample[]>, from: Map<Kind, Sample[]>) => {
    for (const [k, v] of from) to.set(k, [...(to.get(k) ?? []), ...v]);
  };
  for (let r = 0; r < rounds; r++) {
    nativeRounds.push(runNative(n));
    add(samples.inProcess, await measure(inProcess, n));
    add(samples.worker, await measure(worker, n));
  }
  await inProcess.destroy();
  await worker.destroy();

  const nativeOf = (path: string, kind: string) => {
    const key = `${path} ${kind === 'fence' ? 'barrier' : kind}`;
    const rs = nativeRounds.map((m) => m.get(key)!);
    return {
      median: pct(
        rs.map((x) => x.median),
        0.5,
      ),
      p99: pct(
        rs.map((x) => x.p99),
        0.5,
      ),
    };
  };
  const total = (s: Sample) => Number(s.t1 - s.t0);
  const rows = KINDS.map((kind) => {
    const nat = nativeOf('direct', kind);
    const a = samples.inProcess.get(kind)!.map(total);
    const b = samples.worker.get(kind)!.map(total);
    return [
      kind === 'fill' ? 'FILL 4 KiB' : kind === 'dispatch' ? 'DISPATCH2, 1 workgroup' : 'fence only',
      us(nat.median),
      us(nat.p99),
      us(pct(a, 0.5)),
      us(pct(a, 0.99)),
      (pct(a, 0.5) / nat.median).toFixed(2),
      us(pct(b, 0.5)),
      us(pct(b, 0.99)),
      (pct(b, 0.5) / nat.median).toFixed(2),
    ];
  });
  console.log(`\nsubmit → fence seen, µs: ${rounds} rounds × ${n} per batch and path (native: the medians of its rounds)`);
  console.log('native: mdgpu-submit-native, submit2 + fence wait on the host driver (fence only: one BARRIER)\n');
  console.log(
    table(
      ['batch', 'native median', 'native p99', 'in process median', 'in process p99', 'in process / native', 'worker median', 'worker p99', 'worker / native'],
      rows,
    ),
  );

  // Where the time goes: medians of each segment, on one clock.
  const seg = (ss: Sample[], f: (s: Sample) => number) => us(pct(ss.map(f), 0.5));
  const split = (name: string, ss: Sample[], kind: Kind) => {
    if (kind === 'fence') return [name, kind, seg(ss, total), '', '', '', '', '', ''];
    return [
      name,
      kind,
      seg(ss, total),
      seg(ss, (s) => Number(s.run - s.t0)),
      seg(ss, (s) => Number(s.submit - s.run)),
      seg(ss, (s) => Number(s.status!.submitNs - s.submit)),
      seg(ss, (s) => Number(s.status!.completeNs - s.status!.submitNs)),
      seg(ss, (s) => Number(s.resolved - s.status!.completeNs)),
      seg(ss, (s) => Number(s.t1 - s.resolved)),
    ];
  };
  const profile: string[][] = [];
  for (const kind of KINDS) {
    const c = (p: string) => nativeOf(p, kind).median;
    profile.push(['native direct', kind, us(c('direct')), '', '', '', us(c('direct')), '', '']);
    profile.push(['native via ring', kind, us(c('ring')), '', '', '', '', '', '']);
    profile.push(['native, ring taken here', kind, us(c('take')), '', '', '', '', '', '']);
    profile.push(split('in process', samples.inProcess.get(kind)!, kind));
    profile.push(split('worker', samples.worker.get(kind)!, kind));
  }
  console.log('\nwhere the time goes, µs (medians of each segment; they need not add up to the total median)\n');
  console.log(
    table(
      [
        'path',
        'batch',
        'total',
        'guest write → validated',
        'validated → device.submit',
        'submit → submit2',
        'submit2 → fence seen by waiter',
        'waiter → Promise settled',
        'settled → fence in aperture',
      ],
      profile,
    ),
  );
  console.log('\nguest write → validated: ring write, doorbell or grace-period poll, the queue engine taking and validating it');
  console.log('validated → device.submit: the fair scheduler and the executor');
  console.log('submit → submit2: encoding into the submission ring, then mdgpu_host_ring_take (in process) or the worker service thread waking');
  console.log('submit2 → fence seen: the host driver and the device (native direct: the whole of it)');
  console.log("waiter → Promise settled: the ring service's completion record and doorbell, the daemon's event loop waking and reading it");
}

main().catch((err: unknown) => {
  console.error(`bench: ${(err as Error).stack ?? err}`);
  process.exitCode = 1;
});
