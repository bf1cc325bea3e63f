/**
 * `mdgpu run`, the main job: build or reuse the guest kit, serve a vGPU, boot a Linux guest
 * against it under QEMU, and report what the guest sees of the device, checked against what
 * mdgpu itself observed.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { buildGuestDriver, type GuestDriverBuild } from '../guest/build.js';
import { debianGuest } from '../guest/debian-boot.js';
import { guestImage } from '../guest/image.js';
import { ensureDebianImage } from '../guest/rootfs.js';
import { ensureKit } from '../kit/kit.js';
import type { Kit } from '../kit/kit-tree.js';
import { runGuest, type AccelChoice, type GuestResult, type RunGuestOptions } from '../kit/qemu.js';
import { setLogSink } from '../log.js';
import { DEFAULT_IDENTITY } from '../vgpu/device.js';
import { MDGPU_REGS } from '../vgpu/regs.js';
import { startDaemon, type RunningVgpu } from './daemon.js';
import {
  type ComputeRow,
  type DebianReport,
  type GuestView,
  matchesPattern,
  parseDebianReport,
  parseGuestView,
  parseStepLine,
  parseToolResults,
} from './guest-output.js';
import {
  deviceProbeScript,
  driverScript,
  GUEST_MARKER,
  GUEST_PATTERN,
  GUEST_SCRATCH_VALUE,
  type GuestRootKind,
  guestPatternOffset,
  jobSteps,
} from './guest-script.js';
import { formatSize } from './sizes.js';

export interface RunJobOptions {
  accel: AccelChoice;
  /** What the guest boots (default `initramfs`). */
  root?: GuestRootKind;
  apertureSize: number;
  /** Bytes the guest may allocate (default: half the aperture). */
  quota?: number;
  memoryMiB: number;
  timeoutMs: number;
  /** Run the compute workload (mdgpu-run) on the host's Vulkan device (default true). */
  compute?: boolean;
  /** Vulkan device selector for compute. */
  device?: string;
  /** Print the guest console as it arrives. */
  echoConsole?: boolean;
  print?: (line: string) => void;
}

/** One step of the guest job, as the guest reported it and as mdgpu saw it at that moment. */
export interface StepReport {
  status: string;
  contexts: number;
  buffers: number;
}

export interface RunJobResult {
  ok: boolean;
  /** Set when the guest booted the Debian image. */
  debian?: DebianReport;
  view: GuestView;
  guest: GuestResult;
  steps: Record<string, StepReport>;
  info: Record<string, string>;
  smoke: { pass: number; fail: number; failed: string[] };
  compute: { rows: ComputeRow[]; checks: Record<string, boolean>; pass: number; fail: number } | null;
  /** Guest patterns found in mdgpu's memfd at the allocator's offsets when the buffers were freed. */
  patterns: { reported: number; verified: number };
  /** mdgpu's own observations during the boot. */
  host: {
    trappedAccesses: number;
    trappedApertureAccesses: number;
    patternInMemfd: number;
    scratchRegister: number;
    msixSignals: number;
    intxSignals: number;
    submissions: number;
    submissionErrors: number;
    contextsLeft: number;
    buffersLeft: number;
    messages: Record<string, number>;
  };
  problems: string[];
}

/**
 * Boot a guest against a fresh vGPU: probe the device, load the guest driver, run mdgpu-info,
 * mdgpu-smoke and (with compute) mdgpu-run, unload the driver, and compare what the guest saw
 * with what mdgpu saw.
 */
export async function bootAndProbe(options: RunJobOptions): Promise<RunJobResult> {
  const results = await bootVms(options, 1);
  return results.vms[0]!;
}

export interface MultiRunResult {
  vms: (RunJobResult & { name: string })[];
  /** Device time share per VM from the scheduler. */
  shares: Record<string, number>;
  wallMs: number;
}

/**
 * Boot `count` guests at once against one daemon (one vGPU each, one shared compute device) and
 * run the guest job in every one of them.
 */
export async function bootVms(options: RunJobOptions, count: number, weights: number[] = []): Promise<MultiRunResult> {
  const print = options.print ?? ((line: string) => console.log(line));
  const compute = options.compute ?? true;
  const kit = await ensureKit({ log: (line) => print(`kit: ${line}`) });
  const boot = await guestBoot(kit, options.root ?? 'initramfs', print);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'mdgpu-run-'));
  const daemon = startDaemon({
    vgpus: Array.from({ length: count }, (_, i) => ({
      name: count === 1 ? 'vgpu0' : `vm${i + 1}`,
      socket: path.join(dir, `vgpu${i}.sock`),
      apertureSize: options.apertureSize,
      quota: options.quota ?? options.apertureSize / 2,
      weight: weights[i] ?? 1,
    })),
    ...(compute ? { compute: options.device !== undefined ? { device: options.device } : {} } : {}),
  });
  const started = Date.now();
  try {
    const vms = await Promise.all(
      daemon.vgpus.map(async (vgpu) => ({
        name: vgpu.config.name,
        ...(await guestJob(kit, boot, vgpu, options, compute, count > 1 ? `${vgpu.config.name}: ` : '')),
      })),
    );
    const shares = Object.fromEntries(daemon.scheduler.stats().map((s) => [s.name, s.share]));
    return { vms, shares, wallMs: Date.now() - started };
  } finally {
    await daemon.close();
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

/** How the job's init becomes what runGuest boots, for each kind of root. */
type GuestBoot = (init: string) => Promise<Pick<RunGuestOptions, 'initrd'> & Partial<Pick<RunGuestOptions, 'kernel' | 'drives'>>>;

/** Build (or reuse) what the guest boots: the driver for the initramfs, or the Debian image. */
async function guestBoot(kit: Kit, root: GuestRootKind, print: (line: string) => void): Promise<GuestBoot> {
  if (root === 'debian') {
    const image = await ensureDebianImage(kit, { log: (line) => print(`debian image: ${line}`) });
    return (init) => debianGuest(kit, image, init, { marker: GUEST_MARKER });
  }
  const build: GuestDriverBuild = await buildGuestDriver(kit, { log: (line) => print(`guest driver: ${line}`) });
  return async (init) => ({ initrd: await guestImage(kit, build, init, { marker: GUEST_MARKER }) });
}

async function guestJob(kit: Kit, boot: GuestBoot, vgpu: RunningVgpu, options: RunJobOptions, compute: boolean, prefix: string): Promise<RunJobResult> {
  const root = options.root ?? 'initramfs';
  const print = options.print ?? ((line: string) => console.log(line));
  const { device, server } = vgpu;
  const socket = vgpu.config.socket;
  const captures: { offset: number; size: number; bytes: Uint8Array }[] = [];
  device.memory.onRelease = (b) => captures.push({ offset: b.offset, size: b.size, bytes: device.aperture.slice(b.offset, b.offset + b.size) });
  let submissions = 0;
  let submissionErrors = 0;
  device.queues.onSubmissionDone = (_q, error) => {
    submissions++;
    if (error !== null) submissionErrors++;
  };
  const steps: Record<string, StepReport> = {};
  const onLine = (line: string) => {
    if (options.echoConsole) print(`${prefix}guest: ${line}`);
    const step = parseStepLine(line);
    // Mailbox operations are synchronous: when a step's line arrives, mdgpu has seen it all.
    if (step) steps[step.step] = { status: step.status, contexts: device.memory.contextCount, buffers: device.memory.bufferCount };
  };
  // Debian has no devmem of its own: busybox's.
  const devmem = root === 'debian' ? 'busybox devmem' : 'devmem';
  const init = deviceProbeScript(options.apertureSize, DEFAULT_IDENTITY.vendorId, DEFAULT_IDENTITY.deviceId, devmem) + driverScript(compute, root);
  const guest = await runGuest(kit, {
    ...(await boot(init)),
    accel: options.accel,
    memoryMiB: options.memoryMiB,
    timeoutMs: options.timeoutMs,
    vfioUser: [{ socket, id: 'mdgpu0' }],
    onLine,
  });
  const lines = guest.output.split('\n').map((l) => l.trim());
  const view = parseGuestView(guest.output);
  const tools = parseToolResults(lines);
  const verified = tools.patterns.filter((p) => captures.some((c) => c.offset === p.offset && c.size === p.size && matchesPattern(c.bytes, p.seed))).length;
  const pci = device.pci;
  const result: RunJobResult = {
    ok: false,
    view,
    guest,
    steps,
    info: tools.info,
    smoke: tools.smoke,
    compute: compute ? tools.compute : null,
    ...(root === 'debian' ? { debian: parseDebianReport(lines) } : {}),
    patterns: { reported: tools.patterns.length, verified },
    host: {
      trappedAccesses: pci.trappedAccesses,
      trappedApertureAccesses: pci.trappedReads[0]! + pci.trappedWrites[0]!,
      patternInMemfd: new DataView(device.aperture.buffer).getUint32(guestPatternOffset(options.apertureSize), true),
      scratchRegister: device.regs.get('SCRATCH'),
      msixSignals: pci.irqs.signalled[2]!,
      intxSignals: pci.irqs.signalled[0]!,
      submissions,
      submissionErrors,
      contextsLeft: device.memory.contextCount,
      buffersLeft: device.memory.bufferCount,
      messages: Object.fromEntries(server.commandCounts()),
    },
    problems: [],
  };
  result.problems = checkRun(result, options.apertureSize, compute, root);
  result.ok = result.problems.length === 0;
  return result;
}

function checkRun(r: RunJobResult, apertureSize: number, compute: boolean, root: GuestRootKind): string[] {
  const problems: string[] = [];
  const v = r.view;
  const expect = (ok: boolean, what: string) => {
    if (!ok) problems.push(what);
  };
  expect(!r.guest.timedOut, 'the guest did not finish within the timeout');
  expect(v.initStatus === 0, `the guest's init did not finish cleanly (rc=${v.initStatus ?? 'none'})`);
  expect(v.vendor === `0x${DEFAULT_IDENTITY.vendorId.toString(16)}`, `vendor seen by the guest: ${v.vendor ?? 'no device'}`);
  expect(v.device === `0x${DEFAULT_IDENTITY.deviceId.toString(16)}`, `device seen by the guest: ${v.device ?? 'no device'}`);
  expect(v.class === '0x030200', `class seen by the guest: ${v.class ?? 'none'}`);
  const bar0 = v.bars.find((b) => b.index === 0);
  expect(bar0?.size === BigInt(apertureSize), `BAR0 size seen by the guest: ${bar0?.size ?? 'none'}`);
  const bar2 = v.bars.find((b) => b.index === 2);
  expect(bar2 !== undefined && bar2.size === 0x4000n, `BAR2 size seen by the guest: ${bar2?.size ?? 'none'}`);
  expect(v.regs.ID === MDGPU_REGS.ID.reset, `ID register read by the guest: ${v.regs.ID}`);
  expect(v.scratch === GUEST_SCRATCH_VALUE, 'SCRATCH written by the guest did not read back');
  expect(v.apertureReadback === GUEST_PATTERN, 'the guest did not read back its aperture pattern');
  expect(r.host.patternInMemfd === GUEST_PATTERN, "the guest's aperture store is not in mdgpu's memfd");
  for (const step of jobSteps(compute, root)) {
    expect(r.steps[step]?.status === 'ok', `guest step ${step}: ${r.steps[step]?.status ?? 'did not run'}`);
  }
  expect(r.smoke.fail === 0 && r.smoke.pass > 0, `mdgpu-smoke: ${r.smoke.pass} passed, ${r.smoke.fail} failed ${r.smoke.failed.join('; ')}`);
  expect(
    r.patterns.reported > 0 && r.patterns.verified === r.patterns.reported,
    `guest patterns found in mdgpu's memfd: ${r.patterns.verified} of ${r.patterns.reported}`,
  );
  if (compute) {
    const c = r.compute;
    expect(
      c !== null && c.fail === 0 && c.rows.length > 0 && c.rows.every((row) => row.ok),
      `mdgpu-run: ${c ? `${c.pass} passed, ${c.fail} failed` : 'no result'}`,
    );
  }
  if (root === 'debian') problems.push(...checkDebian(r.debian));
  expect(r.host.intxSignals === 0 && r.host.msixSignals > 0, `interrupts: ${r.host.msixSignals} MSI-X, ${r.host.intxSignals} INTx`);
  expect(
    r.host.contextsLeft === 0 && r.host.buffersLeft === 0,
    `left on the device after rmmod: ${r.host.contextsLeft} contexts, ${r.host.buffersLeft} buffers`,
  );
  return problems;
}

/**
 * What the Debian guest must show: mdgpu's packages installed, the module DKMS built for the
 * running kernel and loaded from there, the Khronos validation layer found by the loader,
 * `vulkaninfo --summary` listing the mdgpu device through mdgpu's ICD, and an unmodified Vulkan
 * program (the suite's saxpy) verifying its own result on that device.
 */
export function checkDebian(d: DebianReport | undefined): string[] {
  if (!d) return ['the Debian guest reported nothing'];
  const problems: string[] = [];
  for (const p of ['mdgpu-dkms', 'libmdgpu1', 'mdgpu-tools', 'mdgpu-vulkan-icd']) {
    if (d.packages[p]?.status !== 'install ok installed') problems.push(`dpkg -s ${p}: ${d.packages[p]?.status || 'not installed'}`);
  }
  const version = d.packages['mdgpu-dkms']?.version ?? '';
  if (!d.dkms.some((l) => l.startsWith(`mdgpu/${version}, ${d.kernel}, `) && l.endsWith(': installed'))) {
    problems.push(`dkms status does not show mdgpu/${version} installed for ${d.kernel}: ${d.dkms.join('; ') || 'nothing'}`);
  }
  if (!d.module.startsWith(`/lib/modules/${d.kernel}/updates/dkms/mdgpu.ko`) && !d.module.startsWith(`/usr/lib/modules/${d.kernel}/updates/dkms/mdgpu.ko`)) {
    problems.push(`modprobe's mdgpu is not DKMS's: ${d.module || 'none'}`);
  }
  if (d.vulkaninfo.rc !== 0) problems.push(`vulkaninfo --summary failed (rc ${d.vulkaninfo.rc})`);
  if (!d.vulkaninfo.output.some((l) => /deviceName\s*= mdgpu \(/.test(l))) problems.push('vulkaninfo --summary does not list the mdgpu device');
  const program = d.vulkanProgram;
  const checks = program.output.filter((l) => l.startsWith('VKSUITE name='));
  if (program.rc !== 0 || checks.length === 0 || !checks.every((l) => / ok=1 /.test(l))) {
    problems.push(
      `the Vulkan program ${program.name || '-'} did not verify its result (rc ${program.rc}): ${checks.join('; ') || program.output.slice(-3).join('; ')}`,
    );
  }
  if (!program.output.some((l) => l.startsWith('VKSUITE-DEVICE ') && l.includes('name="mdgpu (')))
    problems.push(`the Vulkan program did not run on the mdgpu device`);
  if (!d.loaderFound.some((f) => f.endsWith('/VkLayer_khronos_validation.json'))) problems.push('the Vulkan loader found no Khronos validation layer');
  return problems;
}

/** The CLI job: print the tables, return the exit code. */
export async function runJob(options: RunJobOptions): Promise<number> {
  const print = options.print ?? ((line: string) => console.log(line));
  const logs: string[] = [];
  const restore = setLogSink((line) => logs.push(line));
  let r: RunJobResult;
  try {
    r = await bootAndProbe({ ...options, print });
  } finally {
    setLogSink(restore);
  }
  const v = r.view;
  const offset = guestPatternOffset(options.apertureSize);
  print(`mdgpu run: guest booted under ${r.guest.accel.toUpperCase()}, job done in ${(r.guest.durationMs / 1000).toFixed(1)} s`);
  print('');
  print('what the guest sees');
  print(`  PCI device   ${v.bdf ?? '-'}  vendor ${v.vendor ?? '-'}  device ${v.device ?? '-'}  class ${v.class ?? '-'}`);
  for (const bar of v.bars) {
    const kind = (bar.flags & 0x4) !== 0 ? '64-bit' : '32-bit';
    const pf = (bar.flags & 0x8) !== 0 ? ', prefetchable' : '';
    print(`  BAR${bar.index}         ${formatSize(Number(bar.size)).padEnd(8)} at 0x${bar.start.toString(16)} (${kind}${pf})`);
  }
  print(`  ID register  0x${(v.regs.ID ?? 0).toString(16)} (trapped read)`);
  print(
    `  aperture     wrote 0x${GUEST_PATTERN.toString(16)} at +0x${offset.toString(16)}, read back 0x${(v.apertureReadback ?? 0).toString(16)} (direct mapping)`,
  );
  print(
    `  driver       contract ${r.info.version ?? '-'}, aperture ${formatSize(Number(r.info.aperture ?? 0))}, quota ${formatSize(Number(r.info.quota ?? 0))}`,
  );
  print(`  mdgpu-smoke  ${r.smoke.pass} checks passed, ${r.smoke.fail} failed`);
  if (r.debian) {
    const d = r.debian;
    print('');
    print(`Debian userland (kernel ${d.kernel})`);
    for (const [p, { status, version }] of Object.entries(d.packages)) print(`  ${p.padEnd(24)} ${version.padEnd(20)} ${status}`);
    for (const l of d.dkms) print(`  dkms status  ${l}`);
    print(`  modprobe     ${d.module}`);
    print(`  vulkaninfo --summary (exit ${d.vulkaninfo.rc}):`);
    const devices = d.vulkaninfo.output.findIndex((l) => l.startsWith('Devices:'));
    for (const l of (devices >= 0 ? d.vulkaninfo.output.slice(devices) : d.vulkaninfo.output.slice(0, 12)).filter((l) => l.trim())) print(`    ${l}`);
    print(`  Vulkan program ${d.vulkanProgram.name} (unmodified, through mdgpu's ICD; exit ${d.vulkanProgram.rc}):`);
    for (const l of d.vulkanProgram.output.filter((l) => l.startsWith('VKSUITE'))) print(`    ${l}`);
    print(`  Vulkan loader found: ${d.loaderFound.filter((f) => f.endsWith('.json')).join(', ') || 'no manifests'}`);
  }
  if (r.compute !== null) {
    print('');
    print("compute in the guest (mediated queues, SPIR-V on the host's Vulkan device)");
    print(`  ${'kernel'.padEnd(10)} ${'size'.padEnd(12)} ${'result'.padEnd(7)} time`);
    for (const row of r.compute.rows) {
      print(`  ${row.kernel.padEnd(10)} ${row.size.padEnd(12)} ${(row.ok ? 'OK' : 'WRONG').padEnd(7)} ${(row.ns / 1e6).toFixed(1)} ms`);
    }
    for (const [check, ok] of Object.entries(r.compute.checks)) print(`  check ${check}: ${ok ? 'OK' : 'FAILED'}`);
  }
  print('');
  print('what mdgpu saw');
  print(`  the probe's pattern in its memfd at +0x${offset.toString(16)}: 0x${r.host.patternInMemfd.toString(16)}`);
  print(`  guest patterns found in its memfd at the allocator's offsets: ${r.patterns.verified} of ${r.patterns.reported}`);
  print(`  trapped accesses (VM exits to mdgpu): ${r.host.trappedAccesses}, of them to the aperture BAR: ${r.host.trappedApertureAccesses}`);
  print(`  submissions executed: ${r.host.submissions} (${r.host.submissionErrors} refused); MSI-X interrupts: ${r.host.msixSignals}`);
  print(`  left after rmmod: ${r.host.contextsLeft} contexts, ${r.host.buffersLeft} buffers`);
  print('');
  if (r.ok) {
    print('result: OK');
    return 0;
  }
  print('result: FAILED');
  for (const p of r.problems) print(`  - ${p}`);
  print('');
  print('guest console (last 40 lines):');
  for (const line of r.guest.output.split('\n').slice(-40)) print(`  | ${line}`);
  if (r.guest.stderr.trim()) print(`qemu stderr:\n${r.guest.stderr}`);
  if (logs.length) print(`mdgpu log:\n${logs.slice(-40).join('\n')}`);
  return 1;
}

/** `mdgpu run --vms N`: N guests on one daemon, per-VM results and device shares. */
export async function runVmsJob(options: RunJobOptions, count: number, weights: number[] = []): Promise<number> {
  const print = options.print ?? ((line: string) => console.log(line));
  const logs: string[] = [];
  const restore = setLogSink((line) => logs.push(line));
  let r: MultiRunResult;
  try {
    r = await bootVms({ ...options, print }, count, weights);
  } finally {
    setLogSink(restore);
  }
  print(`mdgpu run: ${count} guests on one mdgpu daemon, one shared compute device; all done in ${(r.wallMs / 1000).toFixed(1)} s`);
  print('');
  const header = ['VM', 'weight', 'result', 'smoke', 'compute', 'submissions', 'device share', 'VM exits'];
  const rows = r.vms.map((vm, i) => [
    vm.name,
    String(weights[i] ?? 1),
    vm.ok ? 'OK' : 'FAILED',
    `${vm.smoke.pass}/${vm.smoke.pass + Math.max(0, vm.smoke.fail)}`,
    vm.compute === null ? '-' : `${vm.compute.rows.filter((x) => x.ok).length}/${vm.compute.rows.length} kernels OK`,
    String(vm.host.submissions),
    `${(100 * (r.shares[vm.name] ?? 0)).toFixed(1)}%`,
    String(vm.host.trappedAccesses),
  ]);
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((row) => row[i]!.length)));
  const fmt = (row: string[]) => `  ${row.map((c, i) => c.padEnd(widths[i]!)).join('  ')}`;
  print(fmt(header));
  for (const row of rows) print(fmt(row));
  print('');
  const failed = r.vms.filter((vm) => !vm.ok);
  if (failed.length === 0) {
    print('result: OK');
    return 0;
  }
  print('result: FAILED');
  for (const vm of failed) for (const p of vm.problems) print(`  - ${vm.name}: ${p}`);
  if (logs.length) print(`mdgpu log:\n${logs.slice(-40).join('\n')}`);
  return 1;
}
