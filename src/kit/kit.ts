/**
 * The guest kit: a Debian trixie tree, built once with mmdebstrap and cached outside
 * the repository, that supplies everything a test or a user needs to run a guest:
 *
 * - QEMU ≥ 10.1 with the upstream `vfio-user-pci` client (from trixie-backports; Debian 12
 *   ships 7.2 and Debian 13 ships 10.0, neither has it), run from the host with the kit's
 *   own dynamic loader and libraries, no chroot;
 * - the guest kernel (`linux-image-amd64`), its modules and matching headers plus gcc/make,
 *   so the guest driver can be built in a chroot of the kit (mount /proc first: objtool);
 * - `busybox-static` for a tiny initramfs (see initramfs.ts);
 * - Debian's packaging tools (dpkg-dev, debhelper, dh-dkms) and glslang/spirv-tools, so the guest
 *   driver's Debian packages are built in a chroot of the kit (src/guest/packages.ts).
 *
 * This module is the kit's recipe and its build; what a built kit is lives in kit-tree.ts, the
 * cache protocol in cache.ts, the mirror in apt-sources.ts. `mdgpu kit` (src/cli) is its command.
 */
import { execFile } from 'node:child_process';
import * as fsp from 'node:fs/promises';
import * as path from 'node:path';
import { promisify } from 'node:util';
import { hostMirror, suiteKeyrings } from './apt-sources.js';
import { cacheDir, ensureCached, recipeHashOf, treeSize } from './cache.js';
import { type Kit, type KitInfo, type KitRecipe, kitAt, kitQemu, loadKit, treeKernelVersion } from './kit-tree.js';
import { dpkgVersions, mmdebstrapArgs, runMmdebstrap, trimTree } from './mmdebstrap.js';
import { parseQemuVersion, qemuAtLeast, qemuOutput } from './qemu.js';

/** What a built kit is (kit-tree.ts), for callers of {@link ensureKit}. */
export type { Kit } from './kit-tree.js';

const execFileP = promisify(execFile);

export interface EnsureKitOptions {
  /** Progress lines while building (default: stderr). */
  log?: (line: string) => void;
  /** Build the kit if it is missing (default true). With false, a missing kit is an error. */
  build?: boolean;
  /** Cache directory (default: `$MDGPU_CACHE_DIR`, else `$XDG_CACHE_HOME/mdgpu`, else `~/.cache/mdgpu`). */
  cacheDir?: string;
  /** The mmdebstrap command (default `$MDGPU_MMDEBSTRAP` or `mmdebstrap`); tests substitute a fake. */
  mmdebstrap?: string;
  /** Apt mirror (default `$MDGPU_APT_MIRROR`, else the host's configured Debian mirror). */
  mirror?: string;
  /** The recipe (default {@link KIT_RECIPE}). */
  recipe?: KitRecipe;
}

/** The recipe of the kit every test and tool uses. */
export const KIT_RECIPE: KitRecipe = {
  format: 1,
  arch: 'amd64',
  variant: 'apt',
  suite: 'trixie',
  sources: ['trixie main', 'trixie-backports main'],
  // build-essential, dpkg-dev, debhelper and dh-dkms build the guest driver's Debian packages
  // (src/guest/packages.ts; dpkg-buildpackage checks for build-essential);
  // glslang-tools and spirv-tools compile and check their SPIR-V kernels (their Build-Depends);
  // libvulkan-dev builds the Vulkan suite (guest-driver/vulkan/suite) against trixie's loader,
  // and vulkan-validationlayers lets the suite's kit-built binaries run under the Khronos
  // validation layer on the host too (test/helpers/vksuite.ts).
  include: [
    'linux-image-amd64',
    'linux-headers-amd64',
    'gcc',
    'make',
    'libc6-dev',
    'busybox-static',
    'kmod',
    'build-essential',
    'dpkg-dev',
    'debhelper',
    'dh-dkms',
    'glslang-tools',
    'spirv-tools',
    'libvulkan-dev',
    'vulkan-validationlayers',
  ],
  // qemu-system-x86 11.x needs newer seabios/qemu-system-data/-common than trixie has: asking
  // for qemu-system-x86/trixie-backports alone does not pull those, `apt-get -t` does, while
  // the kernel and toolchain stay trixie's.
  backports: ['qemu-system-x86'],
  backportsSuite: 'trixie-backports',
  dpkgFilters: [
    'path-exclude=/usr/share/man/*',
    'path-exclude=/usr/share/info/*',
    'path-exclude=/usr/share/doc/*',
    'path-include=/usr/share/doc/*/copyright',
    'path-exclude=/usr/share/locale/*',
    'path-exclude=/usr/share/lintian/*',
  ],
  // The initramfs-tools image of the kit's kernel (~37 MB) is never booted: guests get ours.
  trim: ['boot/initrd.img-*'],
};

/** The first 12 hex digits of sha256 over the recipe's JSON. */
export function recipeHash(recipe: KitRecipe = KIT_RECIPE): string {
  return recipeHashOf(recipe);
}

/** Where the kit for `recipe` lives (whether or not it exists). */
export function kitDir(recipe: KitRecipe = KIT_RECIPE, dir: string = cacheDir()): string {
  return path.join(dir, `kit-${recipeHash(recipe)}`);
}

function defaultLog(line: string): void {
  process.stderr.write(`${line}\n`);
}

function isRoot(): boolean {
  return typeof process.getuid === 'function' && process.getuid() === 0;
}

/** Build the kit into `tmp`, verify its QEMU and record `kit.json` (the cache renames it into place). */
async function buildKit(tmp: string, recipe: KitRecipe, o: { final: string; log: (l: string) => void; mmdebstrap: string; mirror?: string }): Promise<void> {
  const { log } = o;
  const t0 = Date.now();
  const mirror = o.mirror ?? (await hostMirror());
  const keyring = process.env.MDGPU_APT_KEYRING;
  if (!keyring) {
    const found = await suiteKeyrings(recipe.suite);
    if (found.length === 0) {
      throw new Error(
        `The host apt keyring has no Debian ${recipe.suite} keys, so mmdebstrap cannot verify the archive. ` +
          `Install a debian-archive-keyring that has them (bookworm's 2023.3+deb12u1 or later: apt-get update && apt-get install debian-archive-keyring), ` +
          `or set MDGPU_APT_KEYRING to a keyring file that does`,
      );
    }
  }
  const args = mmdebstrapArgs(recipe, mirror, tmp, keyring);
  log(`[kit] building ${o.final}`);
  log(`[kit] mirror ${mirror}; ${recipe.suite} + ${recipe.backportsSuite}: ${[...recipe.include, ...recipe.backports].join(' ')}`);
  log(`[kit] ${o.mmdebstrap} ${args.map((a) => (/\s/.test(a) ? JSON.stringify(a) : a)).join(' ')}`);
  // INITRD=No: the kernel's postinst hook makes no initramfs-tools image (trimmed anyway, see `trim`).
  await runMmdebstrap(o.mmdebstrap, args, log, t0, { env: { INITRD: 'No' } });
  await trimTree(tmp, recipe.trim);
  log(`[kit +${((Date.now() - t0) / 1000).toFixed(1)}s] verifying the kit's QEMU`);
  const q = { qemu: kitQemu(tmp) };
  const qemuVersion = parseQemuVersion(await qemuOutput(q, ['--version']));
  if (!qemuAtLeast(qemuVersion, 10, 1)) throw new Error(`The kit's QEMU is ${qemuVersion}; vfio-user-pci needs QEMU ≥ 10.1`);
  const help = await qemuOutput(q, ['-device', 'vfio-user-pci,help']);
  if (!/\bsocket\b/.test(help)) throw new Error(`The kit's QEMU ${qemuVersion} has no usable vfio-user-pci device:\n${help}`);
  const sizeBytes = await treeSize(tmp);
  const buildSeconds = Math.round((Date.now() - t0) / 100) / 10;
  const kernelVersion = await treeKernelVersion(tmp);
  const info: KitInfo = {
    recipe,
    hash: recipeHash(recipe),
    mirror,
    builtAt: new Date().toISOString(),
    buildSeconds,
    sizeBytes,
    kernelVersion,
    qemuVersion,
    packages: await dpkgVersions(tmp, [
      'qemu-system-x86',
      'seabios',
      'linux-image-amd64',
      `linux-image-${kernelVersion}`,
      `linux-headers-${kernelVersion}`,
      'busybox-static',
      'gcc',
    ]),
  };
  await kitAt(tmp, info);
  await fsp.writeFile(path.join(tmp, 'kit.json'), `${JSON.stringify(info, null, 2)}\n`);
  log(`[kit] done in ${buildSeconds} s: ${o.final} (${(sizeBytes / 1e6).toFixed(0)} MB, QEMU ${qemuVersion}, kernel ${kernelVersion})`);
}

/**
 * Return the kit, building it first if it is missing (needs root: mmdebstrap in root mode).
 * Concurrent callers (tap runs test files in parallel) share one build through a lock file.
 */
export async function ensureKit(opts: EnsureKitOptions = {}): Promise<Kit> {
  const log = opts.log ?? defaultLog;
  const recipe = opts.recipe ?? KIT_RECIPE;
  const dir = opts.cacheDir ?? cacheDir();
  const final = kitDir(recipe, dir);
  const existing = await loadKit(final);
  if (existing) return existing;
  const hint = `build it with: sudo node bin/mdgpu.js kit (as root; MDGPU_CACHE_DIR=${dir} keeps the same cache)`;
  if (opts.build === false) throw new Error(`No guest kit at ${final}: ${hint}`);
  if (!isRoot()) throw new Error(`No guest kit at ${final}, and building one needs root (mmdebstrap --mode=root): ${hint}`);
  const mmdebstrap = opts.mmdebstrap ?? process.env.MDGPU_MMDEBSTRAP ?? 'mmdebstrap';
  if (mmdebstrap === 'mmdebstrap') {
    try {
      await execFileP('mmdebstrap', ['--version']);
    } catch {
      throw new Error(`No guest kit at ${final}, and mmdebstrap is not installed: apt-get install -y mmdebstrap`);
    }
  }
  return ensureCached({
    final,
    what: 'building the kit',
    log: (l) => log(`[kit] ${l}`),
    load: loadKit,
    build: (tmp) => buildKit(tmp, recipe, { final, log, mmdebstrap, mirror: opts.mirror }),
  });
}
