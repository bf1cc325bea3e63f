/**
 * Vulkan natively on the host vs in a guest through mdgpu's ICD, side by side in one run, with
 * the very same binaries (the kit-built mdgpu-vulkan-suite package):
 *
 * 1. **Kernels.** The suite's heavy kernels — saxpy, gemm, reduction and scan at sizes that take
 *    20 ms or more on lavapipe — each run --iters times inside one process; the program reports
 *    the median device time (timestamp queries: on mdgpu the host writes them, so device time is
 *    host time) and the median wall time (vkQueueSubmit to the fence seen by the program: under
 *    TCG the guest's side of it is emulated). Ratios native/guest of both, and whether the
 *    results' digests are the same.
 * 2. **Exits.** vks-cost in the guest marks each measured phase with `VKSUITE-PHASE` lines on
 *    the console and waits, after each, for the host's answer on a second serial port
 *    (VKSUITE_PHASE_SYNC): the host samples the vGPU's counters (trapped accesses — every one a
 *    VM exit to mdgpu — doorbells, interrupts, submissions run) while the program is stopped, so
 *    the difference between a phase's two samples is exactly that phase's. Exits per
 *    vkQueueSubmit for --submits small batches back to back (target ≤ 0.01), per 8-byte access to
 *    mapped VkDeviceMemory (target 0), and per vkAllocateMemory, vkMapMemory, vkFreeMemory and
 *    vkCreateComputePipelines (these trap by design).
 * 3. **Costs.** vks-cost's medians natively and in the guest: vkAllocateMemory, the first
 *    vkMapMemory and vkFreeMemory at 4 KiB to 16 MiB, vkCreateComputePipelines of a new kernel
 *    (cold), of the same through the VkPipelineCache that holds it (cached) and again without a
 *    cache (uncached), each pipeline's first run, a vkQueueSubmit call, CPU bandwidth through
 *    mappings.
 *
 * The guest drives the order: before each of its runs of a kernel (--rounds per kernel) and
 * after the last, and before vks-cost, it asks the host (a console line, answered on the second
 * serial port once done) to run the same program natively while it waits idle. So native and
 * guest runs alternate seconds apart and never overlap — on a shared machine the load changes by
 * the minute — and each side's time of a kernel is its fastest run (load only ever slows a run
 * down); every run's time is printed too.
 *
 * Mesa's on-disk shader cache is disabled for the whole run (natively and in the daemon), so a
 * cold pipeline is compiled, as a new program's would be; --mesa-cache leaves it on.
 *
 *   npm run bench:vulkan [-- --iters 10 --rounds 5 --submits 2000 --n 16 --mesa-cache --raw]
 *
 * --raw also prints every check line of both sides.
 */
import * as fs from 'node:fs';
import * as fsp from 'node:fs/promises';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { RunningVgpu } from '../../src/cli/daemon.js';
import { ensureKit, type Kit } from '../../src/kit/kit.js';
import { setLogSink } from '../../src/log.js';
import { IrqIndex } from '../../src/pci/irqs.js';
import { RegionIndex } from '../../src/pci/pci-function.js';
import { APERTURE_BAR } from '../../src/vgpu/device.js';
import { runVulkanGuests } from '../../test/helpers/vulkan-guest.js';
import { parseVksuite, runVksuiteProgram, SUITE_LIBEXEC, vksuiteBinaries, type VksuiteBinaries, type VksuiteCheck } from '../../test/helpers/vksuite.js';
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

/** What a run measures. */
export interface Plan {
  kernels: readonly BenchKernel[];
  /** Timed repetitions of each kernel. */
  iterations: number;
  /** vks-cost: small batches submitted back to back. */
  submits: number;
  /** vks-cost: allocations per size and pipelines per kind. */
  n: number;
  /** Guest runs of each kernel, each after a native one (and one more native run at the end). */
  rounds: number;
}

/** The vGPU's counters when a phase line arrived. */
export interface Counters {
  trapped: number;
  apertureTrapped: number;
  /** Of `trapped`, config-space accesses: the guest kernel's, not the program's (PCI housekeeping). */
  configTrapped: number;
  doorbells: number;
  submissions: number;
  msix: number;
}

/** One phase of vks-cost as the host saw it: the counters at its begin and end lines. */
export interface PhaseCount {
  name: string;
  begin: Counters;
  end: Counters;
}

/** What one target measured. */
export interface TargetResult {
  /** Per kernel, the run with the lowest device time. */
  timings: Map<string, Timing>;
  /** Per kernel, every run in order. */
  runs: Map<string, Timing[]>;
  /** vks-cost's checks. */
  cost: VksuiteCheck[];
  /** Per phase of vks-cost, what the host counted (a guest only). */
  phases: PhaseCount[];
  /** Programs that did not exit 0. */
  failures: string[];
  /** Every check line, as printed. */
  raw: string[];
}

const costArgs = (plan: Plan) => ['--quiet', '--size', String(plan.submits), '--iterations', String(plan.n)];
const kernelArgs = (plan: Plan, k: BenchKernel) => ['--quiet', '--size', k.size, '--iterations', String(plan.iterations)];

const checkLine = (c: VksuiteCheck) =>
  `VKSUITE ${Object.entries(c.fields)
    .map(([k, v]) => `${k}=${v}`)
    .join(' ')}`;

/** The kernels' lines of runs' checks, per kernel in order. */
function kernelRuns(kernels: readonly BenchKernel[], checks: VksuiteCheck[]): Map<string, Timing[]> {
  const out = new Map<string, Timing[]>();
  for (const k of kernels) {
    out.set(
      k.name,
      checks.filter((x) => x.name === k.name).map((c) => ({ ms: c.ms, wallMs: Number(c.fields.wall_ms), ok: c.ok, digest: c.digest })),
    );
  }
  return out;
}

/**
 * The run with the lowest device time: on a shared machine a run is only ever slowed down by the
 * others' load, so the fastest is the best estimate of what the kernel costs on each side.
 */
function best(runs: Timing[]): Timing | undefined {
  return runs.reduce<Timing | undefined>((a, b) => (a === undefined || b.ms < a.ms ? b : a), undefined);
}

/** Results of several runs of programs, as one side of the tables. */
function result(checks: VksuiteCheck[], kernels: readonly BenchKernel[], failures: string[], phases: PhaseCount[] = []): TargetResult {
  return {
    timings: new Map([...kernelRuns(kernels, checks)].flatMap(([k, r]) => (best(r) ? [[k, best(r)!] as const] : []))),
    runs: kernelRuns(kernels, checks),
    cost: checks.filter((c) => c.name.startsWith('cost.')),
    phases,
    failures,
    raw: checks.map(checkLine),
  };
}

/** The vGPU's counters now. */
function counters(v: RunningVgpu): Counters {
  const pci = v.device.pci;
  return {
    trapped: pci.trappedAccesses,
    apertureTrapped: pci.trappedReads[APERTURE_BAR]! + pci.trappedWrites[APERTURE_BAR]!,
    configTrapped: pci.trappedReads[RegionIndex.CONFIG]! + pci.trappedWrites[RegionIndex.CONFIG]!,
    doorbells: v.device.queues.totals.doorbells,
    submissions: v.device.queues.totals.submissions,
    msix: pci.irqs.signalled[IrqIndex.MSIX]!,
  };
}

const PHASE_LINE = /VKSUITE-PHASE prog=\S+ name=(\S+) state=(begin|end)/;
const HOST_LINE = /^VKBENCH-HOST (native|native-cost)(?: (\S+))?$/;
const RC_LINE = /^VKBENCH-RC (\S+) (\d+)$/;
/** The guest's second serial port, through which the host answers. */
const GUEST_CONTROL_TTY = '/dev/ttyS1';

/** The guest's job: each kernel between two native runs, then vks-cost after its native run. */
export function guestJob(plan: Plan): string {
  const cmd = (program: string, args: string[], env = '') => `${env}${SUITE_LIBEXEC}/${program} ${args.join(' ')}; echo "VKBENCH-RC ${program} $?"`;
  return [
    // Raw, no echo, no modem control: the host's "go" lines arrive as sent. Kept open for the
    // whole job so that nothing the host sends is dropped between two readers.
    `stty -F ${GUEST_CONTROL_TTY} raw -echo clocal -hupcl || { echo "VKBENCH-FAIL stty"; exit 1; }`,
    `exec 3<${GUEST_CONTROL_TTY}`,
    'host() { echo "VKBENCH-HOST $*"; read -r reply <&3 || exit 1; }',
    ...plan.kernels.flatMap((k) => [
      ...Array.from({ length: plan.rounds }, () => [`host native ${k.name}`, cmd(k.program, kernelArgs(plan, k))]).flat(),
      `host native ${k.name}`,
    ]),
    'host native-cost',
    cmd('vks-cost', costArgs(plan), `VKSUITE_PHASE_SYNC=${GUEST_CONTROL_TTY} `),
  ].join('\n');
}

/** What one side-by-side run measured. */
export interface SideBySide {
  /** The kernels natively (before each guest run and after the last), and vks-cost natively. */
  native: TargetResult;
  guest: TargetResult;
}

/**
 * One Debian guest under TCG, through mdgpu's ICD (the installed package), against a daemon on
 * the host's Vulkan device, running {@link guestJob}; the host runs the native programs when
 * the guest asks and counts vks-cost's phases.
 */
export async function runSideBySide(kit: Kit, bins: VksuiteBinaries, plan: Plan): Promise<SideBySide> {
  const dir = await fsp.mkdtemp(path.join(os.tmpdir(), 'mdgpu-vkbench-'));
  const controlPath = path.join(dir, 'control.sock');
  let control: net.Socket | undefined;
  const server = net.createServer((s) => {
    control = s;
  });
  await new Promise<void>((resolve, reject) => server.once('error', reject).listen(controlPath, resolve));
  const nativeChecks: VksuiteCheck[] = [];
  const nativeFailures: string[] = [];
  const native = async (into: VksuiteCheck[], program: string, args: string[]) => {
    const r = await runVksuiteProgram(kit, bins, program, args);
    if (r.code !== 0) nativeFailures.push(`${program} (exit ${r.code}): ${r.stderr.slice(-2000)}`);
    into.push(...r.checks);
  };
  let vgpu: RunningVgpu | undefined;
  const open = new Map<string, Counters>();
  const phases: PhaseCount[] = [];
  // The guest waits for each answer, so requests come one at a time; a chain keeps them in order.
  let chain = Promise.resolve();
  const answer = () => {
    control?.write('go\n');
  };
  try {
    const [run] = await runVulkanGuests(kit, {
      jobs: [{ body: guestJob(plan) }],
      // saxpy at 16M holds 128 MiB; vks-cost's allocations 16 × (16 MiB + 1 MiB + 68 KiB).
      apertureSize: 512 << 20,
      quota: 384 << 20,
      memoryMiB: 1024,
      timeoutMs: 3_600_000,
      // ttyS1: QEMU connects to the bench's socket.
      extraArgs: ['-chardev', `socket,id=vkbench,path=${controlPath}`, '-serial', 'chardev:vkbench'],
      onStart: (vgpus) => {
        vgpu = vgpus[0];
      },
      onLine: (_name, raw) => {
        const line = raw.trim();
        const phase = PHASE_LINE.exec(line);
        if (phase && vgpu) {
          // Sampled now: the program is stopped until it reads the answer.
          const now = counters(vgpu);
          if (phase[2] === 'begin') open.set(phase[1]!, now);
          else {
            const begin = open.get(phase[1]!);
            if (begin) phases.push({ name: phase[1]!, begin, end: now });
            open.delete(phase[1]!);
          }
          chain = chain.then(answer);
          return;
        }
        const req = HOST_LINE.exec(line);
        if (!req) return;
        const kernel = plan.kernels.find((k) => k.name === req[2]);
        chain = chain.then(async () => {
          if (req[1] === 'native-cost') await native(nativeChecks, 'vks-cost', costArgs(plan));
          else if (kernel) await native(nativeChecks, kernel.program, kernelArgs(plan, kernel));
          answer();
        });
      },
    });
    await chain;
    const lines = run!.lines.map((l) => l.trim());
    const failures: string[] = [];
    for (const l of lines) {
      const m = RC_LINE.exec(l);
      if (m && m[2] !== '0') failures.push(`${m[1]} (exit ${m[2]}) in the guest`);
    }
    if (run!.rc !== 0) failures.push(`the guest's job did not end (rc ${run!.rc}, timed out: ${run!.guest.timedOut}):\n${lines.slice(-40).join('\n')}`);
    return {
      native: result(nativeChecks, plan.kernels, nativeFailures),
      guest: result(parseVksuite(lines.join('\n')).checks, plan.kernels, failures, phases),
    };
  } finally {
    control?.destroy();
    server.close();
    await fsp.rm(dir, { recursive: true, force: true });
  }
}

/** Table 1: per target device and wall medians; with a second target, ratios to the first. */
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

const check = (r: TargetResult | undefined, name: string) => r?.cost.find((c) => c.name === name);
const num = (c: VksuiteCheck | undefined, field: string) => (c?.fields[field] !== undefined ? Number(c.fields[field]) : undefined);
const ALLOC_SIZES = ['4k', '64k', '1m', '16m'] as const;
const PIPELINE_KINDS = ['cold', 'cached', 'uncached'] as const;

/** How many Vulkan calls (or accesses) each phase of vks-cost makes, and its target. */
export function phaseCalls(guest: TargetResult, plan: Plan): { phase: string; what: string; calls: number; target?: number }[] {
  const accesses = (name: string) => num(check(guest, name), 'accesses') ?? 0;
  return [
    { phase: 'submit', what: 'vkQueueSubmit (1 small batch each, back to back)', calls: plan.submits, target: 0.01 },
    { phase: 'access.coherent', what: '8-byte CPU access to mapped memory (coherent type)', calls: accesses('cost.access.coherent'), target: 0 },
    { phase: 'access.cached', what: '8-byte CPU access to mapped memory (cached type)', calls: accesses('cost.access.cached'), target: 0 },
    { phase: 'alloc', what: 'vkAllocateMemory', calls: 4 * plan.n },
    { phase: 'map', what: 'vkMapMemory (first of each allocation)', calls: 4 * plan.n },
    { phase: 'free', what: 'vkUnmapMemory + vkFreeMemory', calls: 4 * plan.n },
    ...PIPELINE_KINDS.map((k) => ({ phase: `pipeline.${k}`, what: `vkCreateComputePipelines (${k})`, calls: plan.n })),
  ];
}

/** Table 2: exits (trapped accesses) per call in each phase the guest ran. */
export function exitsTable(guest: TargetResult, plan: Plan): string {
  const rows = phaseCalls(guest, plan).map(({ phase, what, calls, target }) => {
    const p = guest.phases.find((x) => x.name === phase);
    const d = (k: keyof Counters) => (p ? p.end[k] - p.begin[k] : undefined);
    const trapped = d('trapped');
    const per = trapped !== undefined && calls > 0 ? trapped / calls : undefined;
    const met = per === undefined || target === undefined ? '' : per <= target ? 'met' : 'NOT MET';
    const fmt = (x: number | undefined) => (x === undefined ? '?' : String(x));
    return [
      what,
      String(calls),
      fmt(trapped),
      fmt(d('apertureTrapped')),
      fmt(d('configTrapped')),
      fmt(d('doorbells')),
      fmt(d('msix')),
      fmt(d('submissions')),
      per === undefined ? '?' : per < 0.001 && per > 0 ? per.toExponential(1) : per.toFixed(3),
      target === undefined ? '(traps by design)' : `≤ ${target} ${met}`,
    ];
  });
  return table(['guest phase', 'calls', 'exits', 'to aperture', 'to config space', 'doorbells', 'MSI-X', 'submissions run', 'exits per call', 'target'], rows);
}

/** Table 3: medians of vks-cost natively and in the guest. */
export function costTable(native: TargetResult, guest: TargetResult): string {
  const rows: string[][] = [];
  const add = (what: string, unit: string, name: string, field: string, digits = 1) => {
    const n = num(check(native, name), field);
    const g = num(check(guest, name), field);
    const same = check(native, name)?.digest === check(guest, name)?.digest ? 'yes' : 'NO';
    rows.push([
      what,
      unit,
      n === undefined ? '-' : n.toFixed(digits),
      g === undefined ? '-' : g.toFixed(digits),
      n !== undefined && g !== undefined && n > 0 ? (g / n).toFixed(1) : '-',
      same,
    ]);
  };
  for (const s of ALLOC_SIZES) add(`vkAllocateMemory ${s.toUpperCase().replace('K', ' KiB').replace('M', ' MiB')}`, 'µs', `cost.alloc.${s}`, 'alloc_us');
  for (const s of ALLOC_SIZES) add(`first vkMapMemory ${s.toUpperCase().replace('K', ' KiB').replace('M', ' MiB')}`, 'µs', `cost.alloc.${s}`, 'map_us');
  for (const s of ALLOC_SIZES)
    add(`vkUnmapMemory + vkFreeMemory ${s.toUpperCase().replace('K', ' KiB').replace('M', ' MiB')}`, 'µs', `cost.alloc.${s}`, 'free_us');
  for (const k of PIPELINE_KINDS) add(`vkCreateComputePipelines, ${k}`, 'ms', `cost.pipeline.${k}`, 'create_ms', 2);
  for (const k of PIPELINE_KINDS) add(`  its first run (submit → fence), ${k}`, 'ms', `cost.pipeline.${k}`, 'first_run_ms', 2);
  add('vkQueueSubmit call (CPU), batches back to back', 'µs', 'cost.submit', 'submit_us', 2);
  add('  one batch, submit of the first → fence of the last / n', 'µs', 'cost.submit', 'per_submit_us', 2);
  add('  device time, first batch start → last batch end', 'ms', 'cost.submit', 'ms', 1);
  for (const t of ['coherent', 'cached'] as const) {
    add(`CPU write through a mapping (${t})`, 'MB/s', `cost.access.${t}`, 'write_mbs', 0);
    add(`CPU read through a mapping (${t})`, 'MB/s', `cost.access.${t}`, 'read_mbs', 0);
    add(`memcpy between mappings (${t})`, 'MB/s', `cost.access.${t}`, 'copy_mbs', 0);
  }
  return table(['operation', 'unit', 'native', 'guest', 'guest/native', 'same result'], rows);
}

function option(name: string, fallback: number): number {
  const i = process.argv.indexOf(`--${name}`);
  const v = i >= 0 ? Number(process.argv[i + 1]) : fallback;
  if (!Number.isInteger(v) || v < 0) throw new Error(`--${name} must be a whole number`);
  return v;
}

async function main(): Promise<void> {
  const plan: Plan = {
    kernels: KERNELS,
    iterations: option('iters', 10),
    submits: option('submits', 2000),
    n: option('n', 16),
    rounds: option('rounds', 5),
  };
  if (plan.iterations < 1 || plan.submits < 1 || plan.n < 1 || plan.rounds < 1) throw new Error('--iters, --submits, --n and --rounds must be at least 1');
  const mesaCache = process.argv.includes('--mesa-cache');
  if (!mesaCache) process.env.MESA_SHADER_CACHE_DISABLE = 'true';
  setLogSink(() => {});
  const load0 = os.loadavg();
  const t0 = Date.now();
  const kit = await ensureKit();
  const bins = await vksuiteBinaries(kit);
  const { native, guest } = await runSideBySide(kit, bins, plan);
  const load1 = os.loadavg();
  const results = [
    { label: 'native', ...native },
    { label: 'guest', ...guest },
  ];

  console.log(
    `\nVulkan natively vs in a guest through mdgpu's ICD — guest under TCG (QEMU ${kit.qemuVersion}), both on the host's lavapipe; ` +
      `Mesa shader cache ${mesaCache ? 'on' : 'off'}; load average ${load0[0]!.toFixed(2)} at the start, ${load1[0]!.toFixed(2)} at the end ` +
      `(${os.cpus().length} CPUs); ${((Date.now() - t0) / 1000).toFixed(0)} s\n`,
  );
  console.log(
    `1. The suite's heavy kernels: a run is one process timing ${plan.iterations} iterations (medians; device: timestamp queries; wall: vkQueueSubmit → fence seen); ` +
      `${plan.rounds} guest runs per kernel, each right after a native one, and one more native run: the fastest run of each side\n`,
  );
  console.log(benchTable(plan.kernels, results));
  for (const k of plan.kernels) {
    const list = (r: TargetResult) => (r.runs.get(k.name) ?? []).map((t) => t.ms.toFixed(1)).join(' ');
    console.log(`device ms of every run, ${k.name}: native ${list(native)}; guest ${list(guest)}`);
  }
  console.log(`\n2. VM exits (mdgpu's trapped accesses) per call, vks-cost in the guest, counted by the host between phase lines\n`);
  console.log(exitsTable(guest, plan));
  console.log(`\n3. What the calls cost (vks-cost, medians of ${plan.n} per size or kind; ${plan.submits} batches)\n`);
  console.log(costTable(native, guest));
  if (process.argv.includes('--raw')) {
    console.log('\nnative:');
    console.log(native.raw.join('\n'));
    console.log('guest:');
    console.log(guest.raw.join('\n'));
  }
  const failed = results.flatMap((r) => [
    ...r.failures.map((f) => `${r.label}: ${f}`),
    ...[...[...r.runs.values()].flat(), ...r.cost].filter((c) => !c.ok).map(() => `${r.label}: a check failed`),
  ]);
  for (const r of results) for (const k of plan.kernels) if (!r.timings.has(k.name)) failed.push(`${r.label}: no ${k.name} result`);
  for (const p of phaseCalls(guest, plan)) if (!guest.phases.some((x) => x.name === p.phase)) failed.push(`guest: phase ${p.phase} not counted`);
  if (failed.length) {
    console.error(`\n${failed.join('\n')}`);
    process.exitCode = 1;
  }
}

if (process.argv[1] && fs.realpathSync(process.argv[1]) === fileURLToPath(import.meta.url)) {
  await main();
}
