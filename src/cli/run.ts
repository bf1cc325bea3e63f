/**
 * `mdgpu run`, the main job: build or reuse the guest kit, serve a vGPU, boot a Linux guest
 * against it under QEMU, and report what the guest sees of the device, checked against what
 * mdgpu itself observed.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { ensureKit } from '../kit/kit.js';
import { runGuest, type AccelChoice, type GuestResult, type RunGuestOptions } from '../kit/qemu.js';
import { buildGuestDriver } from '../guest/build.js';
import { guestImage, GUEST_MODULE_PATH } from '../guest/image.js';
import { debianGuest } from '../guest/debian-boot.js';
import { ensureDebianImage } from '../guest/rootfs.js';
import { startDaemon, type RunningVgpu } from './daemon.js';
import type { Kit } from '../kit/kit-tree.js';
import type { GuestDriverBuild } from '../guest/build.js';
import { formatSize } from './sizes.js';
import { DEFAULT_IDENTITY, TRAPPED_WINDOW_SIZE } from '../vgpu/device.js';
import { MDGPU_REGS } from '../vgpu/regs.js';
import { setLogSink } from '../log.js';

export const GUEST_MARKER = 'MDGPU-RUN';
/** A pattern the guest writes into the directly mapped part of the aperture. */
export const GUEST_PATTERN = 0x6d646770; // "pgdm" little-endian
/** Where the probe stores its pattern: the aperture's last page, which buffers reach last. */
export function guestPatternOffset(apertureSize: number): number {
  return apertureSize - TRAPPED_WINDOW_SIZE + 0x10;
}
export const GUEST_SCRATCH_VALUE = 0x5eed_1234;

/**
 * The guest side of the job, a busybox shell script. It finds the device in sysfs, prints its
 * identity and BARs in machine-readable lines, enables it, reads the ID register through the
 * trapped register BAR, and writes/reads the directly mapped aperture with devmem.
 */
export function deviceProbeScript(apertureSize: number, vendorId = DEFAULT_IDENTITY.vendorId, deviceId = DEFAULT_IDENTITY.deviceId, devmem = 'devmem'): string {
  const patternOffset = guestPatternOffset(apertureSize);
  const hex4 = (n: number) => `0x${n.toString(16).padStart(4, '0')}`;
  return `
found=0
for d in /sys/bus/pci/devices/*; do
  [ "$(cat $d/vendor)" = "${hex4(vendorId)}" ] && [ "$(cat $d/device)" = "${hex4(deviceId)}" ] || continue
  found=1
  echo "MDGPU-DEVICE bdf=$(basename $d) vendor=$(cat $d/vendor) device=$(cat $d/device) class=$(cat $d/class) subsystem=$(cat $d/subsystem_vendor):$(cat $d/subsystem_device) revision=$(cat $d/revision)"
  i=0
  while read start end flags; do
    if [ $((start)) -ne 0 ]; then echo "MDGPU-BAR index=$i start=$start size=$((end - start + 1)) flags=$flags"; fi
    i=$((i + 1))
  done < $d/resource
  caps=""
  echo 1 > $d/enable
  aperture=$(sed -n 1p $d/resource | cut -d' ' -f1)
  regs=$(sed -n 3p $d/resource | cut -d' ' -f1)
  echo "MDGPU-REG ID=$(${devmem} $((regs + ${MDGPU_REGS.ID.offset})) 32) VERSION=$(${devmem} $((regs + ${MDGPU_REGS.VERSION.offset})) 32) APERTURE_SIZE_LO=$(${devmem} $((regs + ${MDGPU_REGS.APERTURE_SIZE_LO.offset})) 32)"
  ${devmem} $((regs + ${MDGPU_REGS.SCRATCH.offset})) 32 ${GUEST_SCRATCH_VALUE}
  echo "MDGPU-SCRATCH $(${devmem} $((regs + ${MDGPU_REGS.SCRATCH.offset})) 32)"
  ${devmem} $((aperture + ${patternOffset})) 32 ${GUEST_PATTERN}
  echo "MDGPU-APERTURE readback=$(${devmem} $((aperture + ${patternOffset})) 32)"
done
[ $found = 1 ] || echo "MDGPU-DEVICE none"
`;
}

export interface GuestView {
  bdf?: string;
  vendor?: string;
  device?: string;
  class?: string;
  bars: { index: number; start: bigint; size: bigint; flags: number }[];
  regs: Record<string, number>;
  scratch?: number;
  apertureReadback?: number;
  /** `rc=` of the init body, when it finished. */
  initStatus?: number;
}

/** Parse the machine-readable lines of {@link deviceProbeScript}. */
export function parseGuestView(output: string): GuestView {
  const view: GuestView = { bars: [], regs: {} };
  const fields = (line: string) =>
    Object.fromEntries(
      line
        .split(/\s+/)
        .slice(1)
        .map((kv) => kv.split('=') as [string, string]),
    );
  for (const raw of output.split('\n')) {
    const line = raw.trim();
    if (line.startsWith('MDGPU-DEVICE ')) {
      const f = fields(line);
      Object.assign(view, { bdf: f.bdf, vendor: f.vendor, device: f.device, class: f.class });
    } else if (line.startsWith('MDGPU-BAR ')) {
      const f = fields(line);
      view.bars.push({ index: Number(f.index), start: BigInt(f.start ?? 0), size: BigInt(f.size ?? 0), flags: Number(f.flags) });
    } else if (line.startsWith('MDGPU-REG ')) {
      for (const [k, v] of Object.entries(fields(line))) view.regs[k] = Number(v);
    } else if (line.startsWith('MDGPU-SCRATCH ')) {
      view.scratch = Number(line.split(/\s+/)[1]);
    } else if (line.startsWith('MDGPU-APERTURE ')) {
      view.apertureReadback = Number(fields(line).readback);
    } else {
      const m = new RegExp(`${GUEST_MARKER}-END rc=(\\d+)`).exec(line);
      if (m) view.initStatus = Number(m[1]);
    }
  }
  return view;
}

/**
 * What the guest boots: the kit's busybox initramfs with the driver built in the kit
 * (`initramfs`, the default), or the Debian image with the driver installed from its Debian
 * packages and built by DKMS (`debian`, src/guest/rootfs.ts).
 */
export type GuestRootKind = 'initramfs' | 'debian';
export const GUEST_ROOT_KINDS: readonly GuestRootKind[] = ['initramfs', 'debian'];

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

export interface ComputeRow {
  kernel: string;
  size: string;
  ok: boolean;
  ns: number;
}

/** What the Debian guest reported about its userland (`root: 'debian'`). */
export interface DebianReport {
  /** `uname -r` in the guest. */
  kernel: string;
  /** `dpkg -s` of mdgpu's packages: package → its Status and Version fields. */
  packages: Record<string, { status: string; version: string }>;
  /** `dkms status` lines. */
  dkms: string[];
  /** `modinfo -n mdgpu`: the module modprobe loaded. */
  module: string;
  /** `vulkaninfo --summary`: exit status and output. */
  vulkaninfo: { rc: number | null; output: string[] };
  /**
   * Paths the Vulkan loader reported with `VK_LOADER_DEBUG=driver,layer`: the icd.d and layer.d
   * directories it searched and the manifests it found there.
   */
  loaderFound: string[];
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

const STEP = 'MDGPU-STEP';
const PATTERN_MUL = 0x9e3779b1;

/** The packages `mdgpu run --root debian` reports on (`dpkg -s`). */
export const DEBIAN_REPORTED_PACKAGES = ['mdgpu-dkms', 'libmdgpu1', 'mdgpu-tools', 'libvulkan1', 'vulkan-tools', 'vulkan-validationlayers'];
const DEBIAN = 'MDGPU-DEBIAN';
const VULKANINFO = 'MDGPU-VULKANINFO';
const VKLOADER = 'MDGPU-VKLOADER';

/** The steps of the guest job, in order. */
export function jobSteps(compute: boolean, root: GuestRootKind = 'initramfs'): string[] {
  return [root === 'debian' ? 'modprobe' : 'insmod', 'info', 'smoke', ...(compute ? ['compute'] : []), 'rmmod'];
}

/**
 * The guest's job after the device probe: load the driver, run the tools, unload it. In Debian
 * the module is the one DKMS built (modprobe), the tools are the packages', and the job also
 * reports the packages, DKMS and what the Vulkan loader finds.
 */
export function driverScript(compute: boolean, root: GuestRootKind = 'initramfs'): string {
  const run = compute ? 'if [ -x /usr/bin/mdgpu-run ]; then mdgpu-run && step compute ok || step compute FAIL; else step compute FAIL missing-tool; fi' : '';
  if (root === 'initramfs') {
    return `
step() { echo "${STEP} $*"; }
insmod ${GUEST_MODULE_PATH} && step insmod ok || step insmod FAIL
mdgpu-info && step info ok || step info FAIL
mdgpu-smoke && step smoke ok || step smoke FAIL
${run}
rmmod mdgpu && step rmmod ok || step rmmod FAIL
`;
  }
  return `
step() { echo "${STEP} $*"; }
echo "${DEBIAN} kernel=$(uname -r)"
# One dpkg -s for all (each dpkg run reads its whole database: ~70 ms under TCG).
dpkg -s ${DEBIAN_REPORTED_PACKAGES.join(' ')} 2>/dev/null | awk '
  /^Package: / { if (p) print o; p = $2; s = ""; v = "" }
  /^Status: / { s = $2 "-" $3 "-" $4 }
  /^Version: / { v = $2 }
  { o = "${DEBIAN} package=" p " status=" s " version=" v }
  END { if (p) print o }'
dkms status 2>&1 | sed 's/^/${DEBIAN} dkms /'
modprobe mdgpu && step modprobe ok || step modprobe FAIL
echo "${DEBIAN} module=$(modinfo -n mdgpu)"
mdgpu-info && step info ok || step info FAIL
mdgpu-smoke && step smoke ok || step smoke FAIL
${run}
modprobe -r mdgpu && step rmmod ok || step rmmod FAIL
vulkaninfo --summary > /tmp/vulkaninfo.txt 2>&1
echo "${DEBIAN} vulkaninfo rc=$?"
sed 's/^/${VULKANINFO} /' /tmp/vulkaninfo.txt
VK_LOADER_DEBUG=driver,layer vulkaninfo --summary 2>&1 | grep -oE '/[^ ]*(icd|layer)[.]d[^ ]*' | sort -u | sed 's/^/${VKLOADER} /'
`;
}

/** Parse the Debian lines of {@link driverScript}. */
export function parseDebianReport(lines: string[]): DebianReport {
  const report: DebianReport = { kernel: '', packages: {}, dkms: [], module: '', vulkaninfo: { rc: null, output: [] }, loaderFound: [] };
  for (const line of lines) {
    if (line.startsWith(`${VULKANINFO} `) || line === VULKANINFO) report.vulkaninfo.output.push(line.slice(VULKANINFO.length + 1));
    else if (line.startsWith(`${VKLOADER} `)) report.loaderFound.push(line.slice(VKLOADER.length + 1));
    else if (line.startsWith(`${DEBIAN} dkms `)) report.dkms.push(line.slice(`${DEBIAN} dkms `.length));
    else if (line.startsWith(`${DEBIAN} kernel=`)) report.kernel = line.slice(`${DEBIAN} kernel=`.length);
    else if (line.startsWith(`${DEBIAN} module=`)) report.module = line.slice(`${DEBIAN} module=`.length);
    else if (line.startsWith(`${DEBIAN} vulkaninfo `)) report.vulkaninfo.rc = Number(field(line, 'rc') ?? Number.NaN);
    else if (line.startsWith(`${DEBIAN} package=`)) {
      const pkg = field(line, 'package')!;
      report.packages[pkg] = { status: (field(line, 'status') ?? '').replace(/-/g, ' '), version: field(line, 'version') ?? '' };
    }
  }
  return report;
}

function field(line: string, key: string): string | undefined {
  return new RegExp(`(?:^|\\s)${key}=(\\S+)`).exec(line)?.[1];
}

function matchesPattern(bytes: Uint8Array, seed: number): boolean {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const base = Math.imul(seed, PATTERN_MUL) >>> 0;
  for (let i = 0; i < bytes.byteLength / 4; i++) if (view.getUint32(4 * i, true) !== (base + i) >>> 0) return false;
  return true;
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
  {
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
      const m = new RegExp(`^${STEP} (\\S+) (\\S+)`).exec(line);
      // Mailbox operations are synchronous: when a step's line arrives, mdgpu has seen it all.
      if (m) steps[m[1]!] = { status: m[2]!, contexts: device.memory.contextCount, buffers: device.memory.bufferCount };
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
    const infoLine = lines.find((l) => l.startsWith('MDGPU-INFO ')) ?? '';
    const info = Object.fromEntries(
      infoLine
        .split(/\s+/)
        .slice(1)
        .map((kv) => kv.split('=') as [string, string]),
    );
    const smokeLines = lines.filter((l) => /^MDGPU-SMOKE \S+ (ok|FAIL)\b/.test(l));
    const smokeResult = lines.find((l) => l.startsWith('MDGPU-SMOKE-RESULT ')) ?? '';
    const patternsReported = lines.filter((l) => l.startsWith('MDGPU-SMOKE-PATTERN '));
    let verified = 0;
    for (const line of patternsReported) {
      const offset = Number(field(line, 'offset'));
      const size = Number(field(line, 'size'));
      const seed = Number(field(line, 'seed'));
      if (captures.some((c) => c.offset === offset && c.size === size && matchesPattern(c.bytes, seed))) verified++;
    }
    let computeResult: RunJobResult['compute'] = null;
    if (compute) {
      const runLines = lines.filter((l) => l.startsWith('MDGPU-RUN '));
      const rows = runLines
        .filter((l) => field(l, 'kernel') !== undefined)
        .map((l) => ({
          kernel: field(l, 'kernel')!,
          size: field(l, 'size') ?? '',
          ok: field(l, 'ok') === '1',
          ns: Number(field(l, 'ns') ?? 0),
        }));
      const checks = Object.fromEntries(runLines.filter((l) => field(l, 'check') !== undefined).map((l) => [field(l, 'check')!, field(l, 'ok') === '1']));
      const result = lines.find((l) => l.startsWith('MDGPU-RUN-RESULT ')) ?? '';
      computeResult = { rows, checks, pass: Number(field(result, 'pass') ?? 0), fail: Number(field(result, 'fail') ?? -1) };
    }
    const pci = device.pci;
    const result: RunJobResult = {
      ok: false,
      view,
      guest,
      steps,
      info,
      smoke: {
        pass: Number(field(smokeResult, 'pass') ?? 0),
        fail: Number(field(smokeResult, 'fail') ?? -1),
        failed: smokeLines.filter((l) => / FAIL\b/.test(l)),
      },
      compute: computeResult,
      ...(root === 'debian' ? { debian: parseDebianReport(lines) } : {}),
      patterns: { reported: patternsReported.length, verified },
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
 * running kernel and loaded from there, vulkaninfo run with the Khronos validation layer found.
 * (Without an mdgpu ICD the loader finds no driver and vulkaninfo exits 1: that is not a problem.)
 */
export function checkDebian(d: DebianReport | undefined): string[] {
  if (!d) return ['the Debian guest reported nothing'];
  const problems: string[] = [];
  for (const p of ['mdgpu-dkms', 'libmdgpu1', 'mdgpu-tools']) {
    if (d.packages[p]?.status !== 'install ok installed') problems.push(`dpkg -s ${p}: ${d.packages[p]?.status || 'not installed'}`);
  }
  const version = d.packages['mdgpu-dkms']?.version ?? '';
  if (!d.dkms.some((l) => l.startsWith(`mdgpu/${version}, ${d.kernel}, `) && l.endsWith(': installed'))) {
    problems.push(`dkms status does not show mdgpu/${version} installed for ${d.kernel}: ${d.dkms.join('; ') || 'nothing'}`);
  }
  if (!d.module.startsWith(`/lib/modules/${d.kernel}/updates/dkms/mdgpu.ko`) && !d.module.startsWith(`/usr/lib/modules/${d.kernel}/updates/dkms/mdgpu.ko`)) {
    problems.push(`modprobe's mdgpu is not DKMS's: ${d.module || 'none'}`);
  }
  if (d.vulkaninfo.rc === null || d.vulkaninfo.rc === 127 || d.vulkaninfo.output.length === 0) problems.push(`vulkaninfo did not run (rc ${d.vulkaninfo.rc})`);
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
    for (const l of d.vulkaninfo.output.slice(0, 12)) print(`    ${l}`);
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
