/**
 * Multi-VM benchmark: several guests on one mdgpu daemon, all sharing one host compute device
 * through the fair scheduler.
 *
 *   npm run bench:multi-vm -- [--vms 1,2,4,8] [--dim 256] [--procs 2] [--window 20]
 *                             [--weights 1,2] [--flood-dim 512] [--lat-n 200] [--kernel-n 100]
 *                             [--memory 256] [--accel tcg]
 *
 * 1. scaling   N guests each run the same gemm loop (`mdgpu-compute-bench gemm`, --procs processes per
 *              guest, one queue each, so every vGPU keeps a batch waiting); over a window in
 *              which all N loop: aggregate kernels/s and device-seconds/s relative to one VM,
 *              each VM's share of device time (the scheduler's), Jain's fairness index.
 * 2. weights   two guests with weights 1:2, both saturating the device: their shares.
 * 3. noisy     a latency-sensitive guest runs `mdgpu-submit-bench` (fence-only submissions)
 *              and a loop of tiny saxpy kernels, alone and while another guest floods the
 *              device with large gemms: median and p99 latency in both cases.
 *
 * Throughput and shares are measured on the host (the scheduler's per-vGPU batch count and
 * device time) over a window that starts once every guest's loop runs; the looping guests are
 * then stopped (SIGTERM to their QEMU). Prints tables; docs/benchmarks.md keeps the numbers of a
 * run. Not a test: no assertions on time (these machines are shared and noisy).
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { startDaemon, type RunningDaemon } from '../../src/cli/daemon.js';
import { ensureKit } from '../../src/kit/kit.js';
import type { Kit } from '../../src/kit/kit-tree.js';
import { qemuArgs, resolveAccel, spawnQemu, type AccelChoice, type QemuProcess } from '../../src/kit/qemu.js';
import { buildGuestDriver, type GuestDriverBuild } from '../../src/guest/build.js';
import { guestImage, GUEST_MODULE_PATH } from '../../src/guest/image.js';
import { jainIndex, type VgpuShareStats } from '../../src/sched/scheduler.js';
import { setLogSink } from '../../src/log.js';

interface Options {
  vms: number[];
  dim: number;
  procs: number;
  windowS: number;
  weights: number[];
  floodDim: number;
  latN: number;
  kernN: number;
  accel: AccelChoice;
  memoryMiB: number;
}

function parseArgs(argv: string[]): Options {
  const get = (name: string) => {
    const i = argv.indexOf(`--${name}`);
    return i >= 0 ? argv[i + 1] : undefined;
  };
  const list = (s: string) => s.split(',').map(Number);
  return {
    vms: list(get('vms') ?? '1,2,4,8'),
    dim: Number(get('dim') ?? 256),
    procs: Number(get('procs') ?? 2),
    windowS: Number(get('window') ?? 20),
    weights: list(get('weights') ?? '1,2'),
    floodDim: Number(get('flood-dim') ?? 512),
    latN: Number(get('lat-n') ?? 200),
    kernN: Number(get('kernel-n') ?? 100),
    accel: (get('accel') ?? 'tcg') as AccelChoice,
    memoryMiB: Number(get('memory') ?? 256),
  };
}

const APERTURE = 64 << 20;
const QUOTA = 32 << 20;
/** Safety cap on a guest loop; the harness stops looping guests long before. */
const LOOP_CAP_S = 900;
const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** A booted guest: its QEMU, its console lines, and a way to wait for one. */
interface Guest {
  name: string;
  q: QemuProcess;
  lines: string[];
  /** Resolves when `count` console lines match `re` (rejects when QEMU exits first or on timeout). */
  waitFor(re: RegExp, count: number, timeoutMs: number): Promise<void>;
}

interface Env {
  kit: Kit;
  build: GuestDriverBuild;
  accel: 'tcg' | 'kvm';
  work: string;
  memoryMiB: number;
}

async function bootGuest(env: Env, name: string, socket: string, init: string): Promise<Guest> {
  const initrd = path.join(env.work, `${name}-${Date.now()}.img`);
  fs.writeFileSync(initrd, await guestImage(env.kit, env.build, init, { marker: 'MDGPU-MV' }));
  const lines: string[] = [];
  const waiters: { re: RegExp; count: number; resolve: () => void }[] = [];
  let partial = '';
  const check = () => {
    for (const w of waiters.splice(0)) {
      if (lines.filter((l) => w.re.test(l)).length >= w.count) w.resolve();
      else waiters.push(w);
    }
  };
  const q = spawnQemu(env.kit, qemuArgs({ accel: env.accel, memoryMiB: env.memoryMiB, kernel: env.kit.kernel, initrd, vfioUser: [{ socket }] }), {
    timeoutMs: (LOOP_CAP_S + 120) * 1000,
    onStdout: (c) => {
      partial += c.replace(/\r/g, '');
      let nl: number;
      while ((nl = partial.indexOf('\n')) >= 0) {
        lines.push(partial.slice(0, nl));
        partial = partial.slice(nl + 1);
      }
      check();
    },
  });
  const waitFor = (re: RegExp, count: number, timeoutMs: number) =>
    new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`${name}: no ${count}× ${re} within ${timeoutMs / 1000} s\n${lines.slice(-20).join('\n')}`)), timeoutMs);
      const done = () => {
        clearTimeout(timer);
        resolve();
      };
      waiters.push({ re, count, resolve: done });
      check();
      void q.exited.then((r) => {
        clearTimeout(timer);
        if (lines.filter((l) => re.test(l)).length < count)
          reject(new Error(`${name}: QEMU exited (${r.code ?? r.signal}) before ${count}× ${re}\n${lines.slice(-20).join('\n')}\n${r.stderr}`));
      });
    });
  return { name, q, lines, waitFor };
}

function field(line: string, key: string): string | undefined {
  return new RegExp(`(?:^|\\s)${key}=(\\S+)`).exec(line)?.[1];
}

/** The guest init for a looping guest: `procs` gemm loops at once, each on its own queue. */
function loopInit(dim: number, procs: number): string {
  const loops = Array.from({ length: procs }, () => `mdgpu-compute-bench -g ${dim} -T ${LOOP_CAP_S} gemm &`).join('\n');
  return `insmod ${GUEST_MODULE_PATH}\n${loops}\nwait\nrmmod mdgpu`;
}

/**
 * Close a daemon once the scheduler has nothing queued or running. Closing with batches of a
 * departed VM still queued lets their completion write a fence into an unmapped aperture
 * (a TypeError that ends the process), so wait for them to drain first.
 */
async function closeDaemon(daemon: RunningDaemon): Promise<void> {
  const deadline = Date.now() + 60_000;
  while (daemon.scheduler.stats().some((s) => s.pending > 0 || s.inFlight > 0) && Date.now() < deadline) await sleep(20);
  await sleep(100);
  await daemon.close();
}

function newDaemon(env: Env, vgpus: { name: string; weight?: number }[]): RunningDaemon {
  return startDaemon({
    vgpus: vgpus.map((v) => ({ name: v.name, socket: path.join(env.work, `${v.name}.sock`), apertureSize: APERTURE, quota: QUOTA, weight: v.weight ?? 1 })),
    compute: {},
  });
}

/** USER_HZ: the unit of utime and stime in /proc/.../stat (100 on Linux/x86). */
const CLK_TCK = 100;

/** utime + stime of a /proc stat file, in seconds (0 if it is gone). */
function cpuSeconds(statPath: string): number {
  try {
    const stat = fs.readFileSync(statPath, 'utf8');
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(f[11]) + Number(f[12])) / CLK_TCK;
  } catch {
    return 0;
  }
}

interface CpuSnapshot {
  /**
   * The compute worker process (src/backend/isolated.ts: lavapipe's compute threads, its
   * llvmpipe-N threads, the host driver's waits, the worker's own event loop) and the daemon's
   * threads other than its main one (libuv and V8 helpers). On this machine all but a few
   * percent of it is lavapipe running kernels: the "device".
   */
  device: number;
  /** The daemon's main thread: the event loop (vfio-user, queues, validator, scheduler). */
  daemon: number;
  /** The guests' QEMU processes (TCG vCPU threads, device emulation). */
  qemu: number;
}

function cpuSnapshot(qemuPids: number[], workerPid: number | null): CpuSnapshot {
  let device = workerPid !== null ? cpuSeconds(`/proc/${workerPid}/stat`) : 0;
  let daemon = 0;
  for (const task of fs.readdirSync('/proc/self/task')) {
    const secs = cpuSeconds(`/proc/self/task/${task}/stat`);
    if (Number(task) === process.pid) daemon += secs;
    else device += secs;
  }
  return { device, daemon, qemu: qemuPids.reduce((sum, pid) => sum + cpuSeconds(`/proc/${pid}/stat`), 0) };
}

interface Window {
  seconds: number;
  perVm: { name: string; weight: number; batches: number; deviceNs: number; waitNs: number; share: number }[];
  batches: number;
  deviceNs: number;
  /** CPU used during the window, in CPUs (seconds of CPU per second). */
  cpu: CpuSnapshot;
}

function windowOf(before: VgpuShareStats[], after: VgpuShareStats[], seconds: number, cpu: CpuSnapshot = { device: 0, daemon: 0, qemu: 0 }): Window {
  const perVm = after.map((a) => {
    const b = before.find((x) => x.name === a.name)!;
    return { name: a.name, weight: a.weight, batches: a.batches - b.batches, deviceNs: a.deviceNs - b.deviceNs, waitNs: a.waitNs - b.waitNs, share: 0 };
  });
  const deviceNs = perVm.reduce((s, v) => s + v.deviceNs, 0);
  for (const v of perVm) v.share = deviceNs > 0 ? v.deviceNs / deviceNs : 0;
  return { seconds, perVm, batches: perVm.reduce((s, v) => s + v.batches, 0), deviceNs, cpu };
}

/**
 * Boot one looping guest per vGPU, wait until every loop of every guest runs (plus a short
 * warm-up), measure the scheduler over the window, stop the guests.
 */
async function saturate(env: Env, o: Options, vgpus: { name: string; weight?: number }[]): Promise<{ window: Window; bootS: number }> {
  const daemon = newDaemon(env, vgpus);
  const guests: Guest[] = [];
  try {
    const t0 = Date.now();
    for (const v of daemon.vgpus) guests.push(await bootGuest(env, v.config.name, v.config.socket, loopInit(o.dim, o.procs)));
    await Promise.all(guests.map((g) => g.waitFor(/^MDGPU-RUN-LOOP-START /, o.procs, 300_000)));
    const bootS = (Date.now() - t0) / 1000;
    await sleep(2000);
    const pids = guests.map((g) => g.q.child.pid ?? 0).filter((pid) => pid > 0);
    const before = daemon.scheduler.stats();
    const cpu0 = cpuSnapshot(pids, daemon.compute?.workerPid ?? null);
    const w0 = process.hrtime.bigint();
    await sleep(o.windowS * 1000);
    const after = daemon.scheduler.stats();
    const cpu1 = cpuSnapshot(pids, daemon.compute?.workerPid ?? null);
    const seconds = Number(process.hrtime.bigint() - w0) / 1e9;
    const cpu = { device: (cpu1.device - cpu0.device) / seconds, daemon: (cpu1.daemon - cpu0.daemon) / seconds, qemu: (cpu1.qemu - cpu0.qemu) / seconds };
    const failed = guests.filter((g) => g.lines.some((l) => l.startsWith('MDGPU-RUN-LOOP ') && field(l, 'ok') !== '1'));
    if (failed.length > 0) throw new Error(`loop failed in ${failed.map((g) => g.name).join(', ')}`);
    return { window: windowOf(before, after, seconds, cpu), bootS };
  } finally {
    await Promise.all(guests.map((g) => g.q.kill()));
    await closeDaemon(daemon);
  }
}

interface LatencyRun {
  notify: { median: number; p99: number; min: number };
  doorbell: { median: number; p99: number };
  kernel: { median: number; p99: number; max: number; n: number; devNs: number };
  /** The scheduler's view of the latency VM's kernels: mean wait for the device per batch. */
  schedWaitNs: number;
  floodShare: number | null;
  floodKernelNs: number | null;
}

/** The latency-sensitive guest, alone or next to a flooding one. */
async function latency(env: Env, o: Options, flood: boolean): Promise<LatencyRun> {
  const daemon = newDaemon(env, [{ name: 'latency' }, { name: 'flood' }]);
  const [lat, fl] = daemon.vgpus;
  let flooder: Guest | null = null;
  try {
    if (flood) {
      flooder = await bootGuest(env, 'flood', fl!.config.socket, loopInit(o.floodDim, o.procs));
      await flooder.waitFor(/^MDGPU-RUN-LOOP-START /, o.procs, 300_000);
      await sleep(2000);
    }
    const init = `insmod ${GUEST_MODULE_PATH}\nmdgpu-submit-bench -n ${o.latN} -m 200\nmdgpu-compute-bench -s 4096 -n ${o.kernN} saxpy\nrmmod mdgpu`;
    const before = daemon.scheduler.stats();
    const g = await bootGuest(env, 'latency', lat!.config.socket, init);
    await g.waitFor(/^MDGPU-MV-END /, 1, 600_000);
    await g.q.exited;
    const after = daemon.scheduler.stats();
    const w = windowOf(before, after, 0);
    const find = (mode: string) => g.lines.find((l) => l.startsWith(`MDGPU-SUBMIT mode=${mode} test=latency `));
    const notify = find('notify');
    const doorbell = find('doorbell');
    const loop = g.lines.find((l) => l.startsWith('MDGPU-RUN-LOOP '));
    if (notify === undefined || doorbell === undefined || loop === undefined || field(loop, 'ok') !== '1') {
      throw new Error(`latency guest: no results\n${g.lines.slice(-30).join('\n')}`);
    }
    const latVm = w.perVm.find((v) => v.name === 'latency')!;
    const floodVm = w.perVm.find((v) => v.name === 'flood')!;
    const n = Number(field(loop, 'n'));
    return {
      notify: { median: Number(field(notify, 'ns')), p99: Number(field(notify, 'p99_ns')), min: Number(field(notify, 'min_ns')) },
      doorbell: { median: Number(field(doorbell, 'ns')), p99: Number(field(doorbell, 'p99_ns')) },
      kernel: {
        median: Number(field(loop, 'median_ns')),
        p99: Number(field(loop, 'p99_ns')),
        max: Number(field(loop, 'max_ns')),
        n,
        devNs: Number(field(loop, 'dev_ns')) / n,
      },
      schedWaitNs: latVm.batches > 0 ? latVm.waitNs / latVm.batches : 0,
      floodShare: flood ? floodVm.share : null,
      floodKernelNs: flood && floodVm.batches > 0 ? floodVm.deviceNs / floodVm.batches : null,
    };
  } finally {
    await flooder?.q.kill();
    await closeDaemon(daemon);
  }
}

function table(header: string[], rows: string[][], right: boolean[] = []): void {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const fmt = (row: string[]) => row.map((c, i) => (right[i] ? c.padStart(widths[i]!) : c.padEnd(widths[i]!))).join('  ');
  console.log(fmt(header));
  for (const r of rows) console.log(fmt(r));
}

const pct = (x: number) => `${(100 * x).toFixed(1)}%`;
const ms = (ns: number) => (ns / 1e6).toFixed(2);
const us = (ns: number) => (ns / 1e3).toFixed(1);

async function main(): Promise<void> {
  const o = parseArgs(process.argv.slice(2));
  setLogSink(() => {});
  const started = Date.now();
  const kit = await ensureKit();
  const build = await buildGuestDriver(kit);
  const accel = await resolveAccel(kit, o.accel);
  const work = fs.mkdtempSync(path.join(os.tmpdir(), 'mdgpu-bench-mv-'));
  const env: Env = { kit, build, accel, work, memoryMiB: o.memoryMiB };
  const label = accel.toUpperCase();
  const probe = newDaemon(env, [{ name: 'probe' }]);
  const deviceName = `${probe.compute?.info.name ?? '?'} (${probe.compute?.info.driverInfo ?? ''})`;
  await probe.close();
  console.log(`\nmulti-VM benchmark — guests under ${label} (${o.memoryMiB} MiB, 1 vCPU each), one mdgpu daemon, QEMU ${kit.qemuVersion}`);
  console.log(
    `shared compute device: ${deviceName}; host: ${os.cpus().length} CPUs, load average at start ${os
      .loadavg()
      .map((x) => x.toFixed(2))
      .join(' ')}`,
  );

  try {
    // 1. Scaling.
    const runs: { n: number; window: Window; bootS: number }[] = [];
    for (const n of o.vms) {
      const r = await saturate(
        env,
        o,
        Array.from({ length: n }, (_, i) => ({ name: `vm${i + 1}` })),
      );
      runs.push({ n, ...r });
    }
    console.log(
      `\n1. scaling — each guest loops gemm ${o.dim}x${o.dim} in ${o.procs} processes (one queue each); window ${o.windowS} s once all loops run; guests under ${label}\n`,
    );
    const base = runs.find((r) => r.n === 1) ?? runs[0]!;
    const kps = (w: Window) => w.batches / w.seconds;
    const dps = (w: Window) => w.deviceNs / 1e9 / w.seconds;
    table(
      [
        'VMs',
        'kernels/s',
        'vs 1 VM',
        'device-s/s',
        'ms/kernel (device)',
        'shares (device time)',
        'Jain',
        'CPUs: device/QEMUs/event loop',
        'boot to all looping',
      ],
      runs.map((r) => [
        String(r.n),
        kps(r.window).toFixed(1),
        `${(kps(r.window) / kps(base.window)).toFixed(2)}x`,
        dps(r.window).toFixed(3),
        ms(r.window.deviceNs / Math.max(1, r.window.batches)),
        r.window.perVm.map((v) => pct(v.share)).join(' '),
        jainIndex(r.window.perVm.map((v) => v.share)).toFixed(4),
        [r.window.cpu.device, r.window.cpu.qemu, r.window.cpu.daemon].map((c) => c.toFixed(2)).join(' / '),
        `${r.bootS.toFixed(1)} s`,
      ]),
      [true, true, true, true, true, false, true, true, true],
    );
    console.log(`\ndevice-s/s: the scheduler's device time (per-batch TIMESTAMPs) per second of wall time, 1 = never idle. CPUs: CPU seconds per second`);
    console.log(
      `during the window (out of ${os.cpus().length}): the compute worker process and the daemon's threads but its main one (lavapipe's compute threads, nearly all of it),`,
    );
    console.log(`the guests' QEMU processes, and the daemon's main thread (event loop: vfio-user, queues, scheduler).`);

    // 2. Weights.
    const ww = await saturate(
      env,
      o,
      o.weights.map((weight, i) => ({ name: `w${i + 1}`, weight })),
    );
    const wsum = o.weights.reduce((a, b) => a + b, 0);
    console.log(
      `\n2. weights ${o.weights.join(':')} — both guests saturate the device (gemm ${o.dim}x${o.dim}, ${o.procs} processes each); window ${ww.window.seconds.toFixed(1)} s; guests under ${label}\n`,
    );
    table(
      ['VM', 'weight', 'kernels', 'device s', 'share', 'target', 'share / target', 'mean wait per kernel'],
      ww.window.perVm.map((v) => [
        v.name,
        String(v.weight),
        String(v.batches),
        (v.deviceNs / 1e9).toFixed(2),
        pct(v.share),
        pct(v.weight / wsum),
        (v.share / (v.weight / wsum)).toFixed(3),
        `${ms(v.waitNs / Math.max(1, v.batches))} ms`,
      ]),
      [false, true, true, true, true, true, true, true],
    );
    const wA = ww.window.perVm[0]!;
    const wB = ww.window.perVm[ww.window.perVm.length - 1]!;
    const ratio = wB.share / wA.share / (wB.weight / wA.weight);
    const within = ww.window.perVm.every((v) => Math.abs(v.share / (v.weight / wsum) - 1) <= 0.05);
    console.log(
      `\nmeasured ${wA.name}:${wB.name} = 1:${(wB.share / wA.share).toFixed(3)} (target 1:${(wB.weight / wA.weight).toFixed(0)}, ${((ratio - 1) * 100).toFixed(1)}% off); every share within 5% of its target: ${within ? 'yes' : 'NO'}`,
    );
    console.log(`weight-normalised Jain index: ${jainIndex(ww.window.perVm.map((v) => v.share / v.weight)).toFixed(4)}`);

    // 3. Noisy neighbour.
    const alone = await latency(env, o, false);
    const noisy = await latency(env, o, true);
    console.log(
      `\n3. noisy neighbour — latency VM alone, then next to a VM flooding gemm ${o.floodDim}x${o.floodDim} in ${o.procs} processes; guests under ${label}\n`,
    );
    table(
      ['latency VM measures', 'alone median', 'alone p99', 'flooded median', 'flooded p99', 'p99 ratio'],
      [
        [
          'fence-only submit, notify (µs)',
          us(alone.notify.median),
          us(alone.notify.p99),
          us(noisy.notify.median),
          us(noisy.notify.p99),
          `${(noisy.notify.p99 / alone.notify.p99).toFixed(1)}x`,
        ],
        [
          'fence-only submit, doorbell (µs)',
          us(alone.doorbell.median),
          us(alone.doorbell.p99),
          us(noisy.doorbell.median),
          us(noisy.doorbell.p99),
          `${(noisy.doorbell.p99 / alone.doorbell.p99).toFixed(1)}x`,
        ],
        [
          `saxpy 4096 kernel, submit to fence (ms)`,
          ms(alone.kernel.median),
          ms(alone.kernel.p99),
          ms(noisy.kernel.median),
          ms(noisy.kernel.p99),
          `${(noisy.kernel.p99 / alone.kernel.p99).toFixed(1)}x`,
        ],
      ],
      [false, true, true, true, true, true],
    );
    console.log('');
    console.log(
      `fence-only: ${o.latN} submissions each mode (mdgpu-submit-bench); kernel: ${alone.kernel.n} saxpy submissions, device time ${ms(alone.kernel.devNs)} ms alone, ${ms(noisy.kernel.devNs)} ms flooded; max ${ms(alone.kernel.max)} / ${ms(noisy.kernel.max)} ms`,
    );
    console.log(
      `scheduler: the latency VM's kernels waited ${ms(alone.schedWaitNs)} ms (alone) and ${ms(noisy.schedWaitNs)} ms (flooded) per batch for the device; flood batches ran ${ms(noisy.floodKernelNs ?? 0)} ms each on the device, the flooder had ${pct(noisy.floodShare ?? 0)} of device time`,
    );
    console.log(
      `\nnotes (${label}): the guests' vCPUs (QEMU TCG threads) and lavapipe's worker threads share the host's ${os.cpus().length} CPUs, so device time is CPU time`,
    );
    console.log('and guest work slows the device; a running batch is not preempted, so a small kernel can wait for a whole flood batch.');
    console.log(
      `total ${((Date.now() - started) / 1000).toFixed(0)} s; load average at the end ${os
        .loadavg()
        .map((x) => x.toFixed(2))
        .join(' ')}`,
    );
  } finally {
    fs.rmSync(work, { recursive: true, force: true });
  }
}

main().catch((err: unknown) => {
  console.error(`bench: ${(err as Error).stack ?? (err as Error).message}`);
  process.exitCode = 1;
});
