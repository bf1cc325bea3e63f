/**
 * Reading what the guest of `mdgpu run` printed (src/cli/guest-script.ts writes the script, the
 * guest driver's tools print the rest): the device probe's lines, the job's steps, mdgpu-info,
 * mdgpu-smoke and mdgpu-run results, and the Debian userland report. Pure functions of the
 * console text; run.ts checks the result against what mdgpu itself saw.
 */
import { DEBIAN_MARKER, GUEST_MARKER, STEP_MARKER, VKLOADER_MARKER, VKPROGRAM_MARKER, VULKANINFO_MARKER } from './guest-script.js';

/** What the device probe reported. */
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

/** One kernel row of mdgpu-run. */
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
  /** The unmodified Vulkan program run through mdgpu's ICD: its name, exit status and output. */
  vulkanProgram: { name: string; rc: number | null; output: string[] };
  /**
   * Paths the Vulkan loader reported with `VK_LOADER_DEBUG=driver,layer`: the icd.d and layer.d
   * directories it searched and the manifests it found there.
   */
  loaderFound: string[];
}

/** A pattern mdgpu-smoke wrote into a buffer before freeing it (`MDGPU-SMOKE-PATTERN`). */
export interface ReportedPattern {
  offset: number;
  size: number;
  seed: number;
}

/** The tools' results in the guest's output. */
export interface ToolResults {
  /** mdgpu-info's `key=value` fields. */
  info: Record<string, string>;
  smoke: { pass: number; fail: number; failed: string[] };
  patterns: ReportedPattern[];
  /** mdgpu-run's kernels, checks and totals (empty when it did not run). */
  compute: { rows: ComputeRow[]; checks: Record<string, boolean>; pass: number; fail: number };
}

/** The value of `key=` in a line of `key=value` fields. */
export function field(line: string, key: string): string | undefined {
  return new RegExp(`(?:^|\\s)${key}=(\\S+)`).exec(line)?.[1];
}

/** The `key=value` fields after a line's marker. */
function fields(line: string): Record<string, string> {
  return Object.fromEntries(
    line
      .split(/\s+/)
      .slice(1)
      .map((kv) => kv.split('=') as [string, string]),
  );
}

/** Parse the machine-readable lines of the device probe (`deviceProbeScript`). */
export function parseGuestView(output: string): GuestView {
  const view: GuestView = { bars: [], regs: {} };
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

/** A step line of the driver job (`MDGPU-STEP insmod ok`): the step and its status. */
export function parseStepLine(line: string): { step: string; status: string } | undefined {
  const m = new RegExp(`^${STEP_MARKER} (\\S+) (\\S+)`).exec(line);
  return m ? { step: m[1]!, status: m[2]! } : undefined;
}

/** The results of mdgpu-info, mdgpu-smoke and mdgpu-run among the guest's (trimmed) lines. */
export function parseToolResults(lines: string[]): ToolResults {
  const infoLine = lines.find((l) => l.startsWith('MDGPU-INFO ')) ?? '';
  const smokeLines = lines.filter((l) => /^MDGPU-SMOKE \S+ (ok|FAIL)\b/.test(l));
  const smokeResult = lines.find((l) => l.startsWith('MDGPU-SMOKE-RESULT ')) ?? '';
  const patterns = lines
    .filter((l) => l.startsWith('MDGPU-SMOKE-PATTERN '))
    .map((l) => ({ offset: Number(field(l, 'offset')), size: Number(field(l, 'size')), seed: Number(field(l, 'seed')) }));
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
  const runResult = lines.find((l) => l.startsWith('MDGPU-RUN-RESULT ')) ?? '';
  return {
    info: fields(infoLine),
    smoke: {
      pass: Number(field(smokeResult, 'pass') ?? 0),
      fail: Number(field(smokeResult, 'fail') ?? -1),
      failed: smokeLines.filter((l) => / FAIL\b/.test(l)),
    },
    patterns,
    compute: { rows, checks, pass: Number(field(runResult, 'pass') ?? 0), fail: Number(field(runResult, 'fail') ?? -1) },
  };
}

const PATTERN_MUL = 0x9e3779b1;

/** Whether `bytes` hold mdgpu-smoke's pattern for `seed` (word i = seed × golden ratio + i). */
export function matchesPattern(bytes: Uint8Array, seed: number): boolean {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const base = Math.imul(seed, PATTERN_MUL) >>> 0;
  for (let i = 0; i < bytes.byteLength / 4; i++) if (view.getUint32(4 * i, true) !== (base + i) >>> 0) return false;
  return true;
}

/** Parse the Debian lines of the driver job (`driverScript(…, 'debian')`). */
export function parseDebianReport(lines: string[]): DebianReport {
  const DEBIAN = DEBIAN_MARKER;
  const report: DebianReport = {
    kernel: '',
    packages: {},
    dkms: [],
    module: '',
    vulkaninfo: { rc: null, output: [] },
    vulkanProgram: { name: '', rc: null, output: [] },
    loaderFound: [],
  };
  for (const line of lines) {
    if (line.startsWith(`${VULKANINFO_MARKER} `) || line === VULKANINFO_MARKER) report.vulkaninfo.output.push(line.slice(VULKANINFO_MARKER.length + 1));
    else if (line.startsWith(`${VKPROGRAM_MARKER} `)) report.vulkanProgram.output.push(line.slice(VKPROGRAM_MARKER.length + 1));
    else if (line.startsWith(`${DEBIAN} vulkan-program `)) {
      report.vulkanProgram.name = field(line, 'name') ?? '';
      report.vulkanProgram.rc = Number(field(line, 'rc') ?? Number.NaN);
    } else if (line.startsWith(`${VKLOADER_MARKER} `)) report.loaderFound.push(line.slice(VKLOADER_MARKER.length + 1));
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
