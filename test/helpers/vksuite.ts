/**
 * The Vulkan compute suite (guest-driver/vulkan/suite, package mdgpu-vulkan-suite) run natively
 * on the host: the very binaries the guest image installs — taken out of the .deb built in the
 * kit — started with the kit's dynamic loader and libraries (trixie's glibc and Khronos loader),
 * with the host's libraries found after the kit's, against the host's Vulkan driver (lavapipe).
 *
 *   KIT/lib64/ld-linux-x86-64.so.2 --library-path KIT/usr/lib/x86_64-linux-gnu:KIT/lib/x86_64-linux-gnu:/usr/lib/x86_64-linux-gnu:/lib/x86_64-linux-gnu BINARY
 *   VK_DRIVER_FILES=/usr/share/vulkan/icd.d/lvp_icd.x86_64.json  (only the host's lavapipe)
 *   VK_LOADER_LAYERS_DISABLE=~implicit~                         (no host implicit layers)
 *   VK_LAYER_PATH=KIT/usr/share/vulkan/explicit_layer.d          (the kit's validation layer)
 *
 * The loader is the kit's (it dlopens the driver and the layer through the same search path),
 * lavapipe and its own dependencies (libLLVM-15, ...) come from the host: a library the kit
 * also has is taken from the kit, which is newer and backward compatible (glibc, libstdc++,
 * zlib, ...). The runner script (vksuite) runs each program with this prefix (VKSUITE_EXEC).
 *
 * Results are parsed from the suite's output contract (guest-driver/vulkan/suite/vks.h):
 * `VKSUITE name=... ok=... digest=... ms=...` per check. {@link nativeDigests} gives the
 * `{name, ok, digest}` of every check, for comparing a guest run with a native one.
 */
import { execFile } from 'node:child_process';
import * as fs from 'node:fs';
import * as fsp from 'node:fs/promises';
import * as path from 'node:path';
import { promisify } from 'node:util';
import { buildGuestPackages, type GuestPackages } from '../../src/guest/packages.js';
import type { Kit } from '../../src/kit/kit.js';

const execFileP = promisify(execFile);

/** The host's lavapipe manifest (Debian's mesa-vulkan-drivers). */
export const HOST_LAVAPIPE_ICD = '/usr/share/vulkan/icd.d/lvp_icd.x86_64.json';
/** Where the package installs the programs, and the runner. */
export const SUITE_LIBEXEC = '/usr/libexec/mdgpu-vulkan-suite';
export const SUITE_RUNNER = '/usr/bin/vksuite';
export const SUITE_PACKAGE = 'mdgpu-vulkan-suite';

/** Every check of the suite but the hostile ones, in the order the runner prints them. */
export const SUITE_CHECKS = [
  'saxpy',
  'gemm',
  'reduce',
  'scan',
  'histogram.shared',
  'histogram.global',
  'push.offsets',
  'push.persist',
  'spec.values',
  'spec.local_size_id',
  'desc.sets',
  'desc.dynamic_index',
  'desc.dynamic_offsets',
  'xfer.copy_unaligned',
  'xfer.update',
  'xfer.fill',
  'dispatch.base',
  'dispatch.indirect',
  'dispatch.indirect_zero',
  'dispatch.indirect_gpu',
  'event.device',
  'event.host_set',
  'event.host',
  'sync.timeline_threads',
  'sync.timeline_queue',
  'sync.binary',
  'sync.fence',
  'sync.wait_idle',
  'query.timestamps',
  'query.copy_results',
  'query.host_reset',
  'types.storage16',
  'types.storage8',
  'types.int8',
  'types.int16',
  'types.float16',
  'types.int64',
  'types.float64',
  'subgroup.arithmetic',
  'subgroup.ballot',
  'cache.create',
  'cache.reuse',
  'threads.pipelines',
  'threads.record',
  'cmd.secondary',
  'cmd.secondary_reuse',
  'sync2.barrier2',
  'sync2.event2',
  'sync2.submit2',
  'memory.coherent',
  'memory.cached',
  'memory.budget',
] as const;

/** vks-hostile's checks, in order. */
export const HOSTILE_CHECKS = [
  'hostile.oob_index',
  'hostile.desc_range',
  'hostile.desc_offset',
  'hostile.indirect_limit',
  'hostile.indirect_huge',
  'hostile.spin',
  'hostile.wait_semaphore',
  'hostile.wait_queue',
  'hostile.wait_event',
  'hostile.wait_abandoned',
  'hostile.alloc_huge',
] as const;

/** One check's line. */
export interface VksuiteCheck {
  name: string;
  ok: boolean;
  /** 16 hex digits, or '-' (skipped, crashed). */
  digest: string;
  /** The feature whose absence skipped the check. */
  skipped?: string;
  /** Device time in ms (0 when the check measures none). */
  ms: number;
  /** Every key=value of the line. */
  fields: Record<string, string>;
}

/** What a run printed, parsed. */
export interface VksuiteResult {
  checks: VksuiteCheck[];
  /** `VKSUITE-SUMMARY` fields (runner runs only). */
  summary?: Record<string, string>;
  /** `VKSUITE-DEVICE` lines' fields. */
  devices: Record<string, string>[];
  /** `VKSUITE-VALIDATION` lines: per program run, the validation layer's messages, and whether it announced itself. */
  validation: { prog: string; errors: number; warnings: number; layer: boolean }[];
}

export interface VksuiteRun extends VksuiteResult {
  stdout: string;
  stderr: string;
  /** Exit status (null if killed). */
  code: number | null;
  seconds: number;
}

/** key=value pairs of a line; values may be double-quoted (device names). */
export function lineFields(line: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const m of line.matchAll(/(\w[\w.]*)=("[^"]*"|\S*)/g)) {
    const v = m[2]!;
    out[m[1]!] = v.startsWith('"') ? v.slice(1, -1) : v;
  }
  return out;
}

/** Parse the suite's output (any mix of its line kinds; other lines are ignored). */
export function parseVksuite(text: string): VksuiteResult {
  const result: VksuiteResult = { checks: [], devices: [], validation: [] };
  for (const line of text.split('\n')) {
    if (line.startsWith('VKSUITE name=')) {
      const f = lineFields(line);
      result.checks.push({
        name: f.name!,
        ok: f.ok === '1',
        digest: f.digest ?? '-',
        ms: Number(f.ms ?? 0),
        ...(f.skipped !== undefined ? { skipped: f.feature ?? f.skipped } : {}),
        fields: f,
      });
    } else if (line.startsWith('VKSUITE-SUMMARY ')) {
      result.summary = lineFields(line);
    } else if (line.startsWith('VKSUITE-DEVICE ')) {
      result.devices.push(lineFields(line));
    } else if (line.startsWith('VKSUITE-VALIDATION ')) {
      const f = lineFields(line);
      result.validation.push({ prog: f.prog!, errors: Number(f.errors), warnings: Number(f.warnings), layer: f.layer === '1' });
    }
  }
  return result;
}

/** `{name, ok, digest}` of each check, in output order. */
export function digests(result: VksuiteResult): { name: string; ok: boolean; digest: string }[] {
  return result.checks.map((c) => ({ name: c.name, ok: c.ok, digest: c.digest }));
}

/**
 * Checks whose results differ between two runs (a guest's and a native one): a name present in
 * one only, or a different digest. Skipped checks and hostile ones (their outcomes differ by
 * design) are left out.
 */
export function compareDigests(
  a: readonly { name: string; digest: string }[],
  b: readonly { name: string; digest: string }[],
): { name: string; a?: string; b?: string }[] {
  const comparable = (x: { name: string; digest: string }) => x.digest !== '-' && !x.name.startsWith('hostile.');
  const ma = new Map(a.filter(comparable).map((x) => [x.name, x.digest]));
  const mb = new Map(b.filter(comparable).map((x) => [x.name, x.digest]));
  const out: { name: string; a?: string; b?: string }[] = [];
  for (const name of new Set([...ma.keys(), ...mb.keys()])) {
    const da = ma.get(name);
    const db = mb.get(name);
    if (da !== db) out.push({ name, ...(da !== undefined ? { a: da } : {}), ...(db !== undefined ? { b: db } : {}) });
  }
  return out;
}

/** The suite's files out of the kit-built .deb. */
export interface VksuiteBinaries {
  /** The .deb's contents (`dpkg-deb -x`). */
  root: string;
  /** `root/usr/libexec/mdgpu-vulkan-suite`. */
  libexec: string;
  /** `root/usr/bin/vksuite`. */
  runner: string;
  deb: string;
  packages: GuestPackages;
}

/**
 * The suite as the guest installs it: the mdgpu-vulkan-suite .deb built in the kit (cached with
 * the other guest packages), extracted once next to them (`<cache>/vksuite-<packages hash>/`).
 */
export async function vksuiteBinaries(kit: Kit, opts: { cacheDir?: string; log?: (l: string) => void } = {}): Promise<VksuiteBinaries> {
  const packages = await buildGuestPackages(kit, { ...(opts.log ? { log: opts.log } : {}), ...(opts.cacheDir ? { cacheDir: opts.cacheDir } : {}) });
  const deb = (packages.debs as Record<string, string>)[SUITE_PACKAGE];
  if (!deb) throw new Error(`The guest packages have no ${SUITE_PACKAGE}`);
  const root = path.join(opts.cacheDir ?? path.dirname(kit.root), `vksuite-${packages.hash}`);
  const complete = () => fs.existsSync(path.join(root, 'usr/bin/vksuite'));
  if (!complete()) {
    // Test files run two at a time: extract aside, rename into place, and if another process
    // got there first, use its copy (never remove a complete one: it may be running).
    const tmp = `${root}.tmp-${process.pid}`;
    await fsp.rm(tmp, { recursive: true, force: true });
    await execFileP('dpkg-deb', ['-x', deb, tmp]);
    if (fs.existsSync(root) && !complete()) await fsp.rm(root, { recursive: true, force: true });
    try {
      await fsp.rename(tmp, root);
    } catch (e) {
      if (!complete()) throw e;
    } finally {
      await fsp.rm(tmp, { recursive: true, force: true });
    }
  }
  return { root, libexec: path.join(root, SUITE_LIBEXEC), runner: path.join(root, SUITE_RUNNER), deb, packages };
}

/** How to start a kit-built program on the host's Vulkan: a command prefix and environment. */
export interface NativeVulkan {
  prefix: string[];
  env: Record<string, string>;
}

/** The command prefix and environment described at the top of this file. */
export function nativeVulkan(kit: Pick<Kit, 'root'>, icd: string = HOST_LAVAPIPE_ICD): NativeVulkan {
  if (!fs.existsSync(icd)) throw new Error(`No Vulkan driver manifest at ${icd}: install mesa-vulkan-drivers (scripts/setup.sh)`);
  const loader = path.join(kit.root, 'lib64/ld-linux-x86-64.so.2');
  const kitLibs = [path.join(kit.root, 'usr/lib/x86_64-linux-gnu'), path.join(kit.root, 'lib/x86_64-linux-gnu')];
  if (!fs.existsSync(path.join(kitLibs[0]!, 'libvulkan.so.1'))) throw new Error(`The kit at ${kit.root} has no libvulkan.so.1 (libvulkan-dev in its recipe)`);
  const paths = [loader, ...kitLibs];
  if (paths.some((p) => /\s/.test(p))) throw new Error(`The kit's path has blanks, which VKSUITE_EXEC cannot carry: ${kit.root}`);
  return {
    prefix: [loader, '--library-path', [...kitLibs, '/usr/lib/x86_64-linux-gnu', '/lib/x86_64-linux-gnu'].join(':')],
    env: {
      VK_DRIVER_FILES: icd,
      VK_LOADER_LAYERS_DISABLE: '~implicit~',
      VK_LAYER_PATH: path.join(kit.root, 'usr/share/vulkan/explicit_layer.d'),
    },
  };
}

export interface NativeRunOptions {
  /** Under the Khronos validation layer (the runner then leaves vks-hostile out). */
  validation?: boolean;
  /** Include vks-hostile (default false: it is run on its own by the tests). */
  hostile?: boolean;
  /** One program only (e.g. 'saxpy'). */
  only?: string;
  /** Options for every program (e.g. ['--iterations', '3']). */
  args?: string[];
  timeoutMs?: number;
  /** Extra environment. */
  env?: Record<string, string>;
}

/** Run the suite's runner natively on the host's Vulkan with the kit-built binaries. */
export async function runVksuiteNative(kit: Kit, bins: VksuiteBinaries, opts: NativeRunOptions = {}): Promise<VksuiteRun> {
  const native = nativeVulkan(kit);
  const argv = [bins.runner];
  if (opts.validation) argv.push('--validation');
  if (!opts.hostile) argv.push('--no-hostile');
  if (opts.only) argv.push('--only', opts.only);
  if (opts.args?.length) argv.push('--', ...opts.args);
  return runNative(
    'sh',
    argv,
    {
      ...native.env,
      VKSUITE_LIBEXEC: bins.libexec,
      VKSUITE_EXEC: native.prefix.join(' '),
      ...(opts.validation ? {} : { VK_INSTANCE_LAYERS: '' }),
      ...opts.env,
    },
    opts.timeoutMs ?? 600_000,
  );
}

/** Run one program of the suite natively (e.g. 'vks-saxpy', ['--size', '16M']). */
export async function runVksuiteProgram(
  kit: Kit,
  bins: VksuiteBinaries,
  program: string,
  args: string[] = [],
  opts: { env?: Record<string, string>; timeoutMs?: number } = {},
): Promise<VksuiteRun> {
  const native = nativeVulkan(kit);
  const bin = path.join(bins.libexec, program.startsWith('vks-') ? program : `vks-${program}`);
  return runNative(native.prefix[0]!, [...native.prefix.slice(1), bin, ...args], { ...native.env, ...opts.env }, opts.timeoutMs ?? 300_000);
}

async function runNative(command: string, argv: string[], env: Record<string, string>, timeoutMs: number): Promise<VksuiteRun> {
  const t0 = Date.now();
  return new Promise((resolve) => {
    execFile(command, argv, { env: { ...process.env, ...env }, timeout: timeoutMs, killSignal: 'SIGKILL', maxBuffer: 64 << 20 }, (err, stdout, stderr) => {
      const code = err ? (typeof err.code === 'number' ? err.code : null) : 0;
      resolve({ ...parseVksuite(stdout), stdout, stderr, code, seconds: (Date.now() - t0) / 1000 });
    });
  });
}

/**
 * `{name, ok, digest}` of every check of a native run of the suite (no hostile programs), for a
 * test that compares a guest's run with it ({@link compareDigests}).
 */
export async function nativeDigests(kit: Kit, bins?: VksuiteBinaries): Promise<{ name: string; ok: boolean; digest: string }[]> {
  const run = await runVksuiteNative(kit, bins ?? (await vksuiteBinaries(kit)));
  return digests(run);
}
