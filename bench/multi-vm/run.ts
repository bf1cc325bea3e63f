/**
 * Multi-VM benchmark: several guests on one mdgpu daemon, all sharing one host compute device
 * through the fair scheduler.
 *
 *   npm run bench:multi-vm -- [--vms 1,2,4,8] [--dim 256] [--procs 2] [--window 20]
 *                             [--weights 1,2] [--flood-dim 512] [--lat-n 200] [--kernel-n 100]
 *                             [--flood-window 20] [--memory 256] [--accel tcg]
 *                             [--preempt off,on] [--time-slice 8] [--turn 5]
 *                             [--only scaling,weights,noisy]
 *
 * Every measurement is made in each --preempt mode, side by side in the same run: `off` runs
 * every batch whole (as mdgpu did before preemption, `mdgpu serve --no-preempt`), `on` runs long
 * batches in parts of about --time-slice ms of device time, splitting long dispatches
 * (src/exec/batch-parts.ts), so other VMs' work runs between them. Throughput windows switch
 * the running daemon's scheduler between the modes every --turn seconds (the same guests, the
 * same machine load: on these shared hosts load drifts over minutes; after each switch the
 * batches submitted before it end first); the latency guest runs once per mode next to the same
 * flooding guest.
 *
 * 1. scaling   N guests each run the same gemm loop (`mdgpu-compute-bench gemm`, --procs processes per
 *              guest, one queue each, so every vGPU keeps a batch waiting); over a window in
 *              which all N loop: aggregate kernels/s and device-seconds/s relative to one VM,
 *              each VM's share of device time (the scheduler's), Jain's fairness index.
 * 2. weights   two guests with weights 1:2, both saturating the device: their shares.
 * 3. noisy     a latency-sensitive guest runs `mdgpu-submit-bench` (fence-only submissions)
 *              and a loop of tiny saxpy kernels, alone and while another guest floods the
 *              device with large gemms: median and p99 latency in both cases; and the
 *              flooder's throughput alone (a --flood-window before the latency guest boots)
 *              and while the latency guest runs.
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
  floodWindowS: number;
  /** Seconds of each turn when modes take turns in one window. */
  turnS: number;
  /** Preemption modes to run, in order. */
  preempt: boolean[];
  sliceMs: number;
  only: Set<string>;
}

/** How the daemon's scheduler runs batches in one pass of the scenarios. */
interface Mode {
  preempt: boolean;
  sliceNs: number;
  /** Short, for tables. */
  label: string;
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
    floodWindowS: Number(get('flood-window') ?? 20),
    turnS: Number(get('turn') ?? 5),
    preempt: (get('preempt') ?? 'off,on').split(',').map((m) => {
      if (m !== 'on' && m !== 'off') throw new Error(`--preempt: on, off or both ("off,on"), not ${m}`);
      return m === 'on';
    }),
    sliceMs: Number(get('time-slice') ?? 8),
    only: new Set((get('only') ?? 'scaling,weights,noisy').split(',')),
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

function newDaemon(env: Env, vgpus: { name: string; weight?: number }[], mode: Mode | null = null): RunningDaemon {
  return startDaemon({
    vgpus: vgpus.map((v) => ({ name: v.name, socket: path.join(env.work, `${v.name}.sock`), apertureSize: APERTURE, quota: QUOTA, weight: v.weight ?? 1 })),
    compute: {},
    ...(mode !== null ? { scheduler: { preempt: mode.preempt, timeSliceNs: mode.sliceNs } } : {}),
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
  perVm: { name: string; weight: number; batches: number; parts: number; deviceNs: number; waitNs: number; share: number }[];
  batches: number;
  deviceNs: number;
  /** CPU used during the window, in CPUs (seconds of CPU per second). */
  cpu: CpuSnapshot;
}

function windowOf(before: VgpuShareStats[], after: VgpuShareStats[], seconds: number, cpu: CpuSnapshot = { device: 0, daemon: 0, qemu: 0 }): Window {
  const perVm = after.map((a) => {
    const b = before.find((x) => x.name === a.name)!;
    return {
      name: a.name,
      weight: a.weight,
      batches: a.batches - b.batches,
      parts: a.parts - b.parts,
      deviceNs: a.deviceNs - b.deviceNs,
      waitNs: a.waitNs - b.waitNs,
      share: 0,
    };
  });
  const deviceNs = perVm.reduce((s, v) => s + v.deviceNs, 0);
  for (const v of perVm) v.share = deviceNs > 0 ? v.deviceNs / deviceNs : 0;
  return { seconds, perVm, batches: perVm.reduce((s, v) => s + v.batches, 0), deviceNs, cpu };
}

/** Add window `b` into `a` (same VMs): seconds, batches, device time and CPU add up. */
function addWindow(a: Window | null, b: Window): Window {
  if (a === null) return b;
  const seconds = a.seconds + b.seconds;
  const perVm = a.perVm.map((v) => {
    const w = b.perVm.find((x) => x.name === v.name)!;
    return { ...v, batches: v.batches + w.batches, parts: v.parts + w.parts, deviceNs: v.deviceNs + w.deviceNs, waitNs: v.waitNs + w.waitNs, share: 0 };
  });
  const deviceNs = perVm.reduce((n, v) => n + v.deviceNs, 0);
  for (const v of perVm) v.share = deviceNs > 0 ? v.deviceNs / deviceNs : 0;
  const cpu = (k: keyof CpuSnapshot) => (a.cpu[k] * a.seconds + b.cpu[k] * b.seconds) / seconds;
  return { seconds, perVm, batches: a.batches + b.batches, deviceNs, cpu: { device: cpu('device'), daemon: cpu('daemon'), qemu: cpu('qemu') } };
}

/** Seconds after switching modes before a sub-window counts, at least. */
const SETTLE_S = 1;

/**
 * Switch the daemon's scheduler to `mode` and wait until every batch submitted before (queued
 * or running, so run in the old mode) has ended, at least SETTLE_S, at most 30 s.
 */
async function switchMode(daemon: RunningDaemon, mode: Mode): Promise<void> {
  daemon.scheduler.preemptive = mode.preempt;
  const stats = daemon.scheduler.stats();
  const owed = stats.reduce((n, v) => n + v.pending + v.inFlight, 0);
  const done = stats.reduce((n, v) => n + v.batches, 0) + owed;
  const deadline = Date.now() + 30_000;
  await sleep(SETTLE_S * 1000);
  while (daemon.scheduler.stats().reduce((n, v) => n + v.batches, 0) < done && Date.now() < deadline) await sleep(50);
}

/**
 * Measure `daemon` for `seconds` per mode, the modes taking turns in sub-windows of about
 * `turnS` (the scheduler switched between them at run time, so both see the same machine: load
 * drifts on these shared hosts over minutes). The first second after each switch is not counted.
 */
async function interleaved(daemon: RunningDaemon, modes: Mode[], seconds: number, turnS: number, pids: number[]): Promise<Map<Mode, Window>> {
  const out = new Map<Mode, Window>();
  const turns = Math.max(1, Math.round(seconds / turnS));
  for (let turn = 0; turn < turns; turn++) {
    for (const mode of turn % 2 === 0 ? modes : [...modes].reverse()) {
      await switchMode(daemon, mode);
      const before = daemon.scheduler.stats();
      const cpu0 = cpuSnapshot(pids, daemon.compute?.workerPid ?? null);
      const w0 = process.hrtime.bigint();
      await sleep((seconds / turns) * 1000);
      const after = daemon.scheduler.stats();
      const cpu1 = cpuSnapshot(pids, daemon.compute?.workerPid ?? null);
      const s = Number(process.hrtime.bigint() - w0) / 1e9;
      const cpu = { device: (cpu1.device - cpu0.device) / s, daemon: (cpu1.daemon - cpu0.daemon) / s, qemu: (cpu1.qemu - cpu0.qemu) / s };
      out.set(mode, addWindow(out.get(mode) ?? null, windowOf(before, after, s, cpu)));
    }
  }
  return out;
}

/** A daemon whose kernels are built for preemption when any mode uses it (then switchable). */
function daemonFor(env: Env, o: Options, modes: Mode[], vgpus: { name: string; weight?: number }[]): RunningDaemon {
  const preempt = modes.some((m) => m.preempt);
  return newDaemon(env, vgpus, { preempt, sliceNs: o.sliceMs * 1e6, label: '' });
}

/**
 * Boot one looping guest per vGPU, wait until every loop of every guest runs (plus a short
 * warm-up), measure the scheduler over the window in each mode (interleaved), stop the guests.
 */
async function saturate(
  env: Env,
  o: Options,
  modes: Mode[],
  vgpus: { name: string; weight?: number }[],
): Promise<{ windows: Map<Mode, Window>; bootS: number }> {
  const daemon = daemonFor(env, o, modes, vgpus);
  const guests: Guest[] = [];
  try {
    const t0 = Date.now();
    for (const v of daemon.vgpus) guests.push(await bootGuest(env, v.config.name, v.config.socket, loopInit(o.dim, o.procs)));
    await Promise.all(guests.map((g) => g.waitFor(/^MDGPU-RUN-LOOP-START /, o.procs, 300_000)));
    const bootS = (Date.now() - t0) / 1000;
    await sleep(2000);
    const pids = guests.map((g) => g.q.child.pid ?? 0).filter((pid) => pid > 0);
    const windows = await interleaved(daemon, modes, o.windowS, o.turnS, pids);
    const failed = guests.filter((g) => g.lines.some((l) => l.startsWith('MDGPU-RUN-LOOP ') && field(l, 'ok') !== '1'));
    if (failed.length > 0) throw new Error(`loop failed in ${failed.map((g) => g.name).join(', ')}`);
    return { windows, bootS };
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
  /** Device submissions per kernel of the latency VM. */
  latParts: number;
  /** The flooder while the latency guest ran (boot to poweroff): its share, kernels/s, device ms and parts per kernel. */
  floodShare: number | null;
  floodDuringKps: number | null;
  floodKernelNs: number | null;
  floodParts: number | null;
}

/** Boot the latency guest on `daemon`'s `latency` vGPU, run its tools, read its results. */
async function latencyGuest(env: Env, o: Options, daemon: RunningDaemon, flood: boolean): Promise<LatencyRun> {
  const lat = daemon.vgpus.find((v) => v.config.name === 'latency')!;
  const init = `insmod ${GUEST_MODULE_PATH}\nmdgpu-submit-bench -n ${o.latN} -m 200\nmdgpu-compute-bench -s 4096 -n ${o.kernN} saxpy\nrmmod mdgpu`;
  const before = daemon.scheduler.stats();
  const t1 = process.hrtime.bigint();
  const g = await bootGuest(env, 'latency', lat.config.socket, init);
  await g.waitFor(/^MDGPU-MV-END /, 1, 900_000);
  await g.q.exited;
  const after = daemon.scheduler.stats();
  const w = windowOf(before, after, Number(process.hrtime.bigint() - t1) / 1e9);
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
    latParts: latVm.batches > 0 ? latVm.parts / latVm.batches : 0,
    floodShare: flood ? floodVm.share : null,
    floodDuringKps: flood ? floodVm.batches / w.seconds : null,
    floodKernelNs: flood && floodVm.batches > 0 ? floodVm.deviceNs / floodVm.batches : null,
    floodParts: flood && floodVm.batches > 0 ? floodVm.parts / floodVm.batches : null,
  };
}

interface NoisyResult {
  alone: Map<Mode, LatencyRun>;
  noisy: Map<Mode, LatencyRun>;
  /** The flooder alone, each mode (interleaved). */
  floodAlone: Map<Mode, Window>;
}

/**
 * The latency-sensitive guest alone (once per mode), then a flooding guest: its throughput
 * alone in each mode (interleaved), then the latency guest next to it once per mode. One daemon.
 */
async function noisyNeighbour(env: Env, o: Options, modes: Mode[]): Promise<NoisyResult> {
  const daemon = daemonFor(env, o, modes, [{ name: 'latency' }, { name: 'flood' }]);
  let flooder: Guest | null = null;
  try {
    const alone = new Map<Mode, LatencyRun>();
    for (const mode of modes) {
      daemon.scheduler.preemptive = mode.preempt;
      alone.set(mode, await latencyGuest(env, o, daemon, false));
    }
    const fl = daemon.vgpus.find((v) => v.config.name === 'flood')!;
    flooder = await bootGuest(env, 'flood', fl.config.socket, loopInit(o.floodDim, o.procs));
    await flooder.waitFor(/^MDGPU-RUN-LOOP-START /, o.procs, 300_000);
    await sleep(2000);
    const floodAlone = await interleaved(daemon, modes, o.floodWindowS, o.turnS, [flooder.q.child.pid ?? 0]);
    const noisy = new Map<Mode, LatencyRun>();
    for (const mode of modes) {
      await switchMode(daemon, mode);
      noisy.set(mode, await latencyGuest(env, o, daemon, true));
    }
    return { alone, noisy, floodAlone };
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

  const modes: Mode[] = o.preempt.map((preempt) => ({
    preempt,
    sliceNs: o.sliceMs * 1e6,
    label: preempt ? `parts of ${o.sliceMs} ms` : 'whole batches',
  }));
  console.log(`batches: ${modes.map((m) => m.label).join(', then ')} (each scenario once per mode, in this run)`);
  const kps = (w: Window) => w.batches / w.seconds;
  const dps = (w: Window) => w.deviceNs / 1e9 / w.seconds;
  const partsPer = (w: Window) => (w.batches > 0 ? w.perVm.reduce((n, v) => n + v.parts, 0) / w.batches : 0);

  try {
    if (o.only.has('scaling')) {
      // 1. Scaling.
      const runs: { n: number; windows: Map<Mode, Window>; bootS: number }[] = [];
      for (const n of o.vms) {
        const r = await saturate(
          env,
          o,
          modes,
          Array.from({ length: n }, (_, i) => ({ name: `vm${i + 1}` })),
        );
        runs.push({ n, ...r });
      }
      console.log(
        `\n1. scaling — each guest loops gemm ${o.dim}x${o.dim} in ${o.procs} processes (one queue each); ${o.windowS} s per mode once all loops run, the modes taking turns every ${o.turnS} s; guests under ${label}\n`,
      );
      table(
        [
          'batches',
          'VMs',
          'kernels/s',
          'vs 1 VM',
          'device-s/s',
          'ms/kernel (device)',
          'parts/kernel',
          'shares (device time)',
          'Jain',
          'CPUs: device/QEMUs/event loop',
          'boot to all looping',
        ],
        modes.flatMap((mode) =>
          runs.map((r) => {
            const w = r.windows.get(mode)!;
            const base = (runs.find((x) => x.n === 1) ?? runs[0]!).windows.get(mode)!;
            return [
              mode.label,
              String(r.n),
              kps(w).toFixed(1),
              `${(kps(w) / kps(base)).toFixed(2)}x`,
              dps(w).toFixed(3),
              ms(w.deviceNs / Math.max(1, w.batches)),
              partsPer(w).toFixed(1),
              w.perVm.map((v) => pct(v.share)).join(' '),
              jainIndex(w.perVm.map((v) => v.share)).toFixed(4),
              [w.cpu.device, w.cpu.qemu, w.cpu.daemon].map((c) => c.toFixed(2)).join(' / '),
              `${r.bootS.toFixed(1)} s`,
            ];
          }),
        ),
        [false, true, true, true, true, true, true, false, true, true, true],
      );
      if (modes.length > 1) {
        const [m0, m1] = modes;
        const ratios = runs.map((r) => `${r.n} VM${r.n === 1 ? '' : 's'} ${(kps(r.windows.get(m1!)!) / kps(r.windows.get(m0!)!)).toFixed(3)}x`);
        console.log(`\nkernels/s, ${m1!.label} / ${m0!.label}, same guests, interleaved: ${ratios.join(', ')}`);
      }
      console.log(`\ndevice-s/s: the scheduler's device time (per-batch TIMESTAMPs) per second of wall time, 1 = never idle. parts/kernel: device`);
      console.log(`submissions per guest batch. CPUs: CPU seconds per second during the window (out of ${os.cpus().length}): the compute worker process`);
      console.log(`and the daemon's threads but its main one (lavapipe's compute threads, nearly all of it), the guests' QEMU processes,`);
      console.log(`and the daemon's main thread (event loop: vfio-user, queues, scheduler).`);
    }

    if (o.only.has('weights')) {
      // 2. Weights.
      const wsum = o.weights.reduce((a, b) => a + b, 0);
      const ww = await saturate(
        env,
        o,
        modes,
        o.weights.map((weight, i) => ({ name: `w${i + 1}`, weight })),
      );
      console.log(
        `\n2. weights ${o.weights.join(':')} — both guests saturate the device (gemm ${o.dim}x${o.dim}, ${o.procs} processes each); ${o.windowS} s per mode, taking turns; guests under ${label}`,
      );
      for (const mode of modes) {
        const w = ww.windows.get(mode)!;
        console.log(`\n${mode.label}, ${w.seconds.toFixed(1)} s\n`);
        table(
          ['VM', 'weight', 'kernels', 'device s', 'share', 'target', 'share / target', 'mean wait per kernel'],
          w.perVm.map((v) => [
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
        const wA = w.perVm[0]!;
        const wB = w.perVm[w.perVm.length - 1]!;
        const ratio = wB.share / wA.share / (wB.weight / wA.weight);
        const within = w.perVm.every((v) => Math.abs(v.share / (v.weight / wsum) - 1) <= 0.05);
        console.log(
          `\nmeasured ${wA.name}:${wB.name} = 1:${(wB.share / wA.share).toFixed(3)} (target 1:${(wB.weight / wA.weight).toFixed(0)}, ${((ratio - 1) * 100).toFixed(1)}% off); every share within 5% of its target: ${within ? 'yes' : 'NO'}`,
        );
        console.log(`weight-normalised Jain index: ${jainIndex(w.perVm.map((v) => v.share / v.weight)).toFixed(4)}`);
      }
    }

    if (o.only.has('noisy')) {
      // 3. Noisy neighbour.
      const r = await noisyNeighbour(env, o, modes);
      console.log(
        `\n3. noisy neighbour — latency VM alone, then next to a VM flooding gemm ${o.floodDim}x${o.floodDim} in ${o.procs} processes; guests under ${label}\n`,
      );
      table(
        ['batches', 'latency VM measures', 'alone median', 'alone p99', 'flooded median', 'flooded p99', 'flooded max', 'p99 ratio'],
        modes.flatMap((mode) => {
          const alone = r.alone.get(mode)!;
          const noisy = r.noisy.get(mode)!;
          return [
            [
              mode.label,
              'fence-only submit, notify (µs)',
              us(alone.notify.median),
              us(alone.notify.p99),
              us(noisy.notify.median),
              us(noisy.notify.p99),
              '',
              `${(noisy.notify.p99 / alone.notify.p99).toFixed(1)}x`,
            ],
            [
              mode.label,
              'fence-only submit, doorbell (µs)',
              us(alone.doorbell.median),
              us(alone.doorbell.p99),
              us(noisy.doorbell.median),
              us(noisy.doorbell.p99),
              '',
              `${(noisy.doorbell.p99 / alone.doorbell.p99).toFixed(1)}x`,
            ],
            [
              mode.label,
              `saxpy 4096 kernel, submit to fence (ms)`,
              ms(alone.kernel.median),
              ms(alone.kernel.p99),
              ms(noisy.kernel.median),
              ms(noisy.kernel.p99),
              ms(noisy.kernel.max),
              `${(noisy.kernel.p99 / alone.kernel.p99).toFixed(1)}x`,
            ],
          ];
        }),
        [false, false, true, true, true, true, true, true],
      );
      console.log('');
      table(
        [
          'batches',
          'flooder alone kernels/s',
          'device-s/s',
          'parts/kernel',
          'next to the latency VM kernels/s',
          'flood kernel device ms',
          'flooder share',
          'latency VM wait/kernel',
        ],
        modes.map((mode) => {
          const fa = r.floodAlone.get(mode)!;
          const noisy = r.noisy.get(mode)!;
          return [
            mode.label,
            kps(fa).toFixed(3),
            dps(fa).toFixed(3),
            partsPer(fa).toFixed(1),
            (noisy.floodDuringKps ?? 0).toFixed(3),
            ms(noisy.floodKernelNs ?? 0),
            pct(noisy.floodShare ?? 0),
            `${ms(noisy.schedWaitNs)} ms`,
          ];
        }),
        [false, true, true, true, true, true, true, true],
      );
      console.log('');
      for (const mode of modes) {
        const alone = r.alone.get(mode)!;
        const noisy = r.noisy.get(mode)!;
        console.log(
          `${mode.label}: ${alone.kernel.n} saxpy submissions, device time ${ms(alone.kernel.devNs)} ms alone, ${ms(noisy.kernel.devNs)} ms flooded, ${noisy.latParts.toFixed(1)} parts each; max ${ms(alone.kernel.max)} / ${ms(noisy.kernel.max)} ms`,
        );
      }
      if (modes.length > 1) {
        const [m0, m1] = modes;
        const k0 = kps(r.floodAlone.get(m0!)!);
        const k1 = kps(r.floodAlone.get(m1!)!);
        console.log(
          `\n${m0!.label} → ${m1!.label}: flooded saxpy p99 ${ms(r.noisy.get(m0!)!.kernel.p99)} → ${ms(r.noisy.get(m1!)!.kernel.p99)} ms; flooder alone ${k0.toFixed(3)} → ${k1.toFixed(3)} kernels/s (${((k1 / k0 - 1) * 100).toFixed(1)}%)`,
        );
      }
      console.log(
        `\nfence-only: ${o.latN} submissions each mode (mdgpu-submit-bench). Flooder alone: ${o.floodWindowS} s per mode before the latency guest boots, the modes taking turns every ${o.turnS} s;`,
      );
      console.log(
        `next to the latency VM: from the latency guest's boot to its poweroff. With ${o.kernN} samples the kernel p99 is its ${o.kernN <= 100 ? 'maximum' : '99th percentile'}.`,
      );
    }
    console.log(
      `\nnotes (${label}): the guests' vCPUs (QEMU TCG threads) and lavapipe's worker threads share the host's ${os.cpus().length} CPUs, so device time is CPU time`,
    );
    console.log('and guest work slows the device. Whole batches: a small kernel waits for the flood batch on the device; in parts, for the part.');
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
