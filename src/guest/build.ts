/**
 * Building the guest driver (guest-driver/: kernel module, libmdgpu, tools) for the kit's
 * kernel, in a chroot of the kit: its kbuild tree has absolute symlinks and its compiler is the
 * one the kernel was built with. The compute kernels (guest-driver/kernels/*.comp) are compiled
 * to SPIR-V on the host instead, with its glslangValidator (Debian's glslang-tools, which
 * scripts/setup.sh installs; the kit has none): SPIR-V does not depend on the guest.
 *
 * The sources are copied into a temporary directory inside the kit root, /proc is mounted in
 * the kit (objtool reads it) and unmounted afterwards whatever happens, and the outputs are
 * cached in `<kit cache dir>/guest-<hash>/`, where the hash covers the driver sources, the build
 * recipe below and the kit. A build is staged next to its final place and renamed into it, and
 * builders for the same kit take a lock, so concurrent callers (tap runs two test files at once)
 * neither clash nor build twice.
 */
import { execFile, spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as fsp from 'node:fs/promises';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import type { Kit } from '../kit/kit-tree.js';
import { acquireLock } from '../kit/locks.js';
import { isStaticExecutable, readModinfo } from './elf.js';

const execFileP = promisify(execFile);

/** The userspace tools, each built from guest-driver/tools/<name>.c and linked statically. */
export const GUEST_TOOLS = ['mdgpu-info', 'mdgpu-smoke', 'mdgpu-bench', 'mdgpu-run', 'mdgpu-compute-bench', 'mdgpu-submit-bench', 'mdgpu-membench'] as const;
export type GuestTool = (typeof GUEST_TOOLS)[number];

/**
 * The compute kernels, each built from guest-driver/kernels/<name>.comp to SPIR-V (spin: the
 * kernel of `mdgpu-run -H`, which would run for hours).
 */
export const GUEST_KERNELS = ['saxpy', 'gemm', 'reduce', 'memcpy', 'spin'] as const;
export type GuestKernel = (typeof GUEST_KERNELS)[number];

/** Compiler flags for libmdgpu and the tools (they run in a busybox initramfs: static). */
export const USER_CFLAGS = ['-O2', '-Wall', '-Werror', '-Iinclude', '-Ilib'];

/**
 * Part of the cache key: bump when the way things are built changes (commands, flags,
 * outputs), so old caches are not reused.
 */
const RECIPE = `guest-build-3 kmod:make KCFLAGS=-Werror,strip-debug user:${USER_CFLAGS.join(' ')} lib:*.c -static -s tools:${GUEST_TOOLS.join(',')} kernels:host make BUILD= ${GUEST_KERNELS.join(',')}`;

/** What a build produced; all paths are absolute host paths in the cache directory. */
export interface GuestDriverBuild {
  /** mdgpu.ko, debug info stripped (as `make modules_install INSTALL_MOD_STRIP=1` does). */
  module: string;
  /** Tool name → static binary. */
  tools: Record<GuestTool, string>;
  /** Kernel name → SPIR-V module. */
  kernels: Record<GuestKernel, string>;
  /** The cache directory holding them (and manifest.json). */
  dir: string;
}

/** What manifest.json in a cache directory records. */
export interface GuestBuildManifest {
  hash: string;
  kernelVersion: string;
  kitHash: string;
  builtAt: string;
  buildSeconds: number;
  module: string;
  tools: Record<string, string>;
  kernels: Record<string, string>;
}

export interface BuildGuestDriverOptions {
  /** Progress lines (default: stderr). */
  log?: (line: string) => void;
  /** The guest-driver source tree (default: the repository's guest-driver/). */
  sourceDir?: string;
  /** Where guest-<hash>/ directories go (default: next to the kit, its cache directory). */
  cacheDir?: string;
  /** Parallel make jobs for the module (default 2). */
  jobs?: number;
}

/** The repository's guest-driver/ (this file is src/guest/build.ts, compiled to build/src/guest/). */
export function defaultSourceDir(): string {
  const here = path.dirname(fileURLToPath(import.meta.url));
  for (const up of ['../..', '../../..']) {
    const dir = path.resolve(here, up, 'guest-driver');
    if (fs.existsSync(path.join(dir, 'kmod', 'Kbuild'))) return dir;
  }
  throw new Error(`guest-driver/ not found above ${here}`);
}

/** The parts of guest-driver/ this build uses (kernels/ is the compute kernels' own build). */
export const SOURCE_DIRS = ['include', 'kmod', 'lib', 'tools'] as const;

/**
 * Source files of the driver under {@link SOURCE_DIRS}: C sources and headers, Kbuild and
 * Makefiles. Build outputs a developer may have left in the tree (objects, modules, modpost's
 * *.mod.c) are neither hashed nor copied, so a stale object can never stand in for a source.
 */
export async function listSources(sourceDir: string): Promise<string[]> {
  const out: string[] = [];
  const walk = async (rel: string): Promise<void> => {
    const entries = await fsp.readdir(path.join(sourceDir, rel), { withFileTypes: true });
    for (const e of entries) {
      const p = rel ? `${rel}/${e.name}` : e.name;
      if (e.isDirectory()) {
        if (!e.name.startsWith('.')) await walk(p);
      } else if (e.isFile() && isSource(e.name)) {
        out.push(p);
      }
    }
  };
  for (const dir of SOURCE_DIRS) await walk(dir);
  return out.sort();
}

function isSource(name: string): boolean {
  if (name === 'Kbuild' || name === 'Makefile') return true;
  return /\.[ch]$/.test(name) && !name.endsWith('.mod.c') && !name.startsWith('.');
}

/** The compute kernels' sources: kernels/*.comp and kernels/Makefile (not its build/ outputs). */
export async function listKernelSources(sourceDir: string): Promise<string[]> {
  const entries = await fsp.readdir(path.join(sourceDir, 'kernels'), { withFileTypes: true });
  return entries
    .filter((e) => e.isFile() && (e.name === 'Makefile' || (e.name.endsWith('.comp') && !e.name.startsWith('.'))))
    .map((e) => `kernels/${e.name}`)
    .sort();
}

/** The cache key: sha256 over the recipe, the kit, and every source file's path and bytes. */
export async function guestDriverHash(sourceDir: string, kit: Pick<Kit, 'hash' | 'kernelVersion'>): Promise<string> {
  const h = createHash('sha256');
  h.update(`${RECIPE}\0kit=${kit.hash}\0kernel=${kit.kernelVersion}\0`);
  for (const rel of [...(await listSources(sourceDir)), ...(await listKernelSources(sourceDir))]) {
    const data = await fsp.readFile(path.join(sourceDir, rel));
    h.update(`${rel}\0${data.length}\0`);
    h.update(data);
  }
  return h.digest('hex').slice(0, 16);
}

/** The build in `dir`, if it is complete. */
export async function loadGuestBuild(dir: string): Promise<GuestDriverBuild | undefined> {
  let manifest: GuestBuildManifest;
  try {
    manifest = JSON.parse(await fsp.readFile(path.join(dir, 'manifest.json'), 'utf8')) as GuestBuildManifest;
  } catch {
    return undefined;
  }
  const module = path.join(dir, manifest.module);
  const tools = Object.fromEntries(GUEST_TOOLS.map((t) => [t, path.join(dir, manifest.tools[t] ?? `missing-${t}`)])) as Record<GuestTool, string>;
  const kernels = Object.fromEntries(GUEST_KERNELS.map((k) => [k, path.join(dir, manifest.kernels?.[k] ?? `missing-${k}`)])) as Record<GuestKernel, string>;
  for (const p of [module, ...Object.values(tools), ...Object.values(kernels)]) {
    if (!fs.existsSync(p)) return undefined;
  }
  return { module, tools, kernels, dir };
}

function defaultLog(line: string): void {
  process.stderr.write(`${line}\n`);
}

/** Run a shell command in a chroot of the kit; reject with its output when it fails. */
function inChroot(root: string, cwd: string, command: string, log: (l: string) => void): Promise<void> {
  log(`[guest] chroot ${root} (cd ${cwd} && ${command})`);
  return new Promise((resolve, reject) => {
    const child = spawn('chroot', [root, '/bin/sh', '-c', `cd '${cwd}' && ${command}`], {
      // The kit's environment, not the host's (npm sets MAKEFLAGS and friends).
      env: { PATH: '/usr/sbin:/usr/bin:/sbin:/bin', HOME: '/root', LC_ALL: 'C.UTF-8' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let output = '';
    const collect = (chunk: Buffer) => {
      output += chunk.toString();
      if (output.length > 1 << 20) output = output.slice(-(1 << 19));
    };
    child.stdout.on('data', collect);
    child.stderr.on('data', collect);
    child.on('error', (e) => reject(new Error(`chroot failed to start: ${e.message}`)));
    child.on('close', (code, signal) => {
      if (code === 0) resolve();
      else reject(new Error(`In the kit chroot, \`${command}\` failed (${signal ?? `exit ${code}`}):\n${output.trim()}`));
    });
  });
}

/**
 * Compile the kernels to SPIR-V on the host: `make -C kernels BUILD=<out>` (glslangValidator,
 * then spirv-val), so nothing is written into the source tree.
 */
async function compileKernels(sourceDir: string, out: string, log: (l: string) => void): Promise<Record<string, string>> {
  const kernelsDir = path.join(sourceDir, 'kernels');
  log(`[guest] make -C ${kernelsDir} BUILD=${out}`);
  try {
    // A clean environment: npm exports MAKEFLAGS and friends.
    await execFileP('make', ['-C', kernelsDir, `BUILD=${out}`], {
      env: { PATH: process.env.PATH ?? '/usr/sbin:/usr/bin:/sbin:/bin', HOME: process.env.HOME ?? '/root', LC_ALL: 'C.UTF-8' },
      maxBuffer: 1 << 22,
    });
  } catch (e) {
    const err = e as Error & { stdout?: string; stderr?: string };
    const output = `${err.stdout ?? ''}${err.stderr ?? ''}`.trim();
    const hint =
      /glslangValidator|spirv-val/.test(output) && /not found|No such file/.test(output)
        ? '\nThe kernels are compiled on the host: install glslang-tools and spirv-tools (scripts/setup.sh does).'
        : '';
    throw new Error(`Compiling the compute kernels failed: ${err.message.split('\n')[0]}\n${output}${hint}`);
  }
  const kernels: Record<string, string> = {};
  for (const k of GUEST_KERNELS) kernels[k] = `share/${k}.spv`;
  return kernels;
}

/** SPIR-V starts with its magic number, 0x07230203, in the module's byte order (ours: little). */
async function isSpirv(file: string): Promise<boolean> {
  const fh = await fsp.open(file, 'r');
  try {
    const head = Buffer.alloc(4);
    const { bytesRead } = await fh.read(head, 0, 4, 0);
    return bytesRead === 4 && head.readUInt32LE(0) === 0x07230203;
  } finally {
    await fh.close();
  }
}

async function isMounted(dir: string): Promise<boolean> {
  const text = await fsp.readFile('/proc/self/mountinfo', 'utf8').catch(() => '');
  return text.split('\n').some((l) => l.split(' ')[4]?.replace(/\\040/g, ' ') === dir);
}

async function compile(kit: Kit, sourceDir: string, stage: string, work: string, jobs: number, log: (l: string) => void): Promise<GuestBuildManifest> {
  const inKit = (p: string) => `/${path.relative(kit.root, p)}`;
  const kdir = inKit(kit.headersDir);
  const src = inKit(work);
  const kernels = await compileKernels(sourceDir, path.join(stage, 'share'), log);
  await inChroot(kit.root, `${src}/kmod`, `make -j${jobs} KDIR=${kdir} KCFLAGS=-Werror modules`, log);
  await inChroot(kit.root, `${src}/kmod`, 'strip --strip-debug -o mdgpu.stripped.ko mdgpu.ko', log);
  const cflags = USER_CFLAGS.join(' ');
  const libSources = (await listSources(sourceDir)).filter((f) => /^lib\/[^/]+\.c$/.test(f));
  const objects = libSources.map((f) => `out/${path.basename(f, '.c')}.o`);
  const compileLib = libSources.map((f, i) => `gcc ${cflags} -c ${f} -o ${objects[i]}`).join(' && ');
  await inChroot(kit.root, src, `mkdir -p out && ${compileLib} && ar rcs out/libmdgpu.a ${objects.join(' ')}`, log);
  for (const tool of GUEST_TOOLS) {
    await inChroot(kit.root, src, `gcc ${cflags} -static -s -o out/${tool} tools/${tool}.c out/libmdgpu.a`, log);
  }
  await fsp.copyFile(path.join(work, 'kmod', 'mdgpu.stripped.ko'), path.join(stage, 'mdgpu.ko'));
  await fsp.mkdir(path.join(stage, 'bin'));
  const tools: Record<string, string> = {};
  for (const tool of GUEST_TOOLS) {
    await fsp.copyFile(path.join(work, 'out', tool), path.join(stage, 'bin', tool));
    await fsp.chmod(path.join(stage, 'bin', tool), 0o755);
    tools[tool] = `bin/${tool}`;
  }
  await fsp.copyFile(path.join(work, 'out', 'libmdgpu.a'), path.join(stage, 'libmdgpu.a'));
  await verifyOutputs(kit, stage, tools, kernels);
  return { hash: '', kernelVersion: kit.kernelVersion, kitHash: kit.hash, builtAt: '', buildSeconds: 0, module: 'mdgpu.ko', tools, kernels };
}

/** The module must load into the kit's kernel, the tools must run without a loader, the kernels be SPIR-V. */
async function verifyOutputs(kit: Kit, stage: string, tools: Record<string, string>, kernels: Record<string, string>): Promise<void> {
  for (const [kernel, rel] of Object.entries(kernels)) {
    if (!fs.existsSync(path.join(stage, rel)) || !(await isSpirv(path.join(stage, rel)))) throw new Error(`${kernel}: ${rel} is not a SPIR-V module`);
  }
  const modinfo = await readModinfo(path.join(stage, 'mdgpu.ko'));
  const vermagic = modinfo.vermagic?.[0] ?? '';
  if (vermagic.split(' ')[0] !== kit.kernelVersion) {
    throw new Error(`mdgpu.ko has vermagic "${vermagic}", not the kit kernel ${kit.kernelVersion}`);
  }
  for (const [tool, rel] of Object.entries(tools)) {
    if (!(await isStaticExecutable(path.join(stage, rel)))) throw new Error(`${tool} is not a static executable`);
  }
}

/**
 * Build (or reuse) the guest driver for `kit`: mdgpu.ko for the kit's kernel and the static
 * tools, and the compute kernels as SPIR-V. Needs root (chroot, mount) and the host's
 * glslangValidator unless the build is already cached.
 */
export async function buildGuestDriver(kit: Kit, opts: BuildGuestDriverOptions = {}): Promise<GuestDriverBuild> {
  const log = opts.log ?? defaultLog;
  const sourceDir = opts.sourceDir ?? defaultSourceDir();
  const cacheDir = opts.cacheDir ?? path.dirname(kit.root);
  const hash = await guestDriverHash(sourceDir, kit);
  const final = path.join(cacheDir, `guest-${hash}`);
  const cached = await loadGuestBuild(final);
  if (cached) {
    log(`[guest] using the cached guest driver build ${final}`);
    return cached;
  }
  if (typeof process.getuid === 'function' && process.getuid() !== 0) {
    throw new Error(`Building the guest driver needs root (chroot into the kit, mount /proc); no cached build at ${final}`);
  }
  await fsp.mkdir(cacheDir, { recursive: true });
  // One builder per kit at a time: they share the kit's /proc mount point.
  const release = await acquireLock(`${kit.root}.guest-build.lock`, 'building the guest driver', (l) => log(`[guest] ${l}`));
  try {
    const again = await loadGuestBuild(final);
    if (again) {
      log(`[guest] another process built ${final}; using it`);
      return again;
    }
    const t0 = Date.now();
    log(`[guest] building the guest driver for ${kit.kernelVersion} from ${sourceDir} (cache: ${final})`);
    const work = await fsp.mkdtemp(path.join(kit.root, 'tmp', 'mdgpu-guest-'));
    const stage = await fsp.mkdtemp(`${final}.tmp-`);
    const proc = path.join(kit.root, 'proc');
    let mounted = false;
    try {
      for (const rel of await listSources(sourceDir)) {
        await fsp.mkdir(path.dirname(path.join(work, rel)), { recursive: true });
        await fsp.copyFile(path.join(sourceDir, rel), path.join(work, rel));
      }
      log(`[guest] mount -t proc proc ${proc}`);
      await execFileP('mount', ['-t', 'proc', 'proc', proc]);
      mounted = true;
      const manifest = await compile(kit, sourceDir, stage, work, opts.jobs ?? 2, log);
      manifest.hash = hash;
      manifest.builtAt = new Date().toISOString();
      manifest.buildSeconds = Math.round((Date.now() - t0) / 100) / 10;
      await fsp.writeFile(path.join(stage, 'manifest.json'), `${JSON.stringify(manifest, null, 2)}\n`);
      // mkdtemp made it 0700; the cached build is for anyone who may run guests.
      await fsp.chmod(stage, 0o755);
      try {
        await fsp.rename(stage, final);
      } catch (e) {
        // Someone without our lock (another cache user) got there first: theirs is as good.
        const code = (e as NodeJS.ErrnoException).code;
        if ((code !== 'EEXIST' && code !== 'ENOTEMPTY') || !(await loadGuestBuild(final))) throw e;
      }
      log(`[guest] built ${final} in ${manifest.buildSeconds} s`);
    } finally {
      if (mounted) {
        log(`[guest] umount ${proc}`);
        await execFileP('umount', [proc]).catch(async (e: Error) => {
          // Busy (a compiler still exiting): detach it rather than leave it behind.
          log(`[guest] umount ${proc} failed (${e.message.trim()}); detaching it`);
          await execFileP('umount', ['-l', proc]);
        });
        if (await isMounted(proc)) log(`[guest] warning: ${proc} is still mounted`);
      }
      await fsp.rm(work, { recursive: true, force: true });
      await fsp.rm(stage, { recursive: true, force: true });
    }
    const built = await loadGuestBuild(final);
    if (!built) throw new Error(`Guest driver build at ${final} is incomplete`);
    return built;
  } finally {
    await release();
  }
}
