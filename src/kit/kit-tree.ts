/**
 * What a built guest kit is (src/kit/kit.ts builds it): a Debian trixie tree holding QEMU with
 * `vfio-user-pci`, the guest kernel with its modules and headers, and a static busybox, plus
 * `kit.json` saying how it was built. This module reads one; it builds nothing.
 */
import * as fs from 'node:fs';
import * as fsp from 'node:fs/promises';
import * as path from 'node:path';
import type { TreeRecipe } from './mmdebstrap.js';

/** The inputs that define a kit; their JSON hash names the cache directory. */
export type KitRecipe = TreeRecipe;

/** How to run the kit's `qemu-system-x86_64` from the host. */
export interface KitQemu {
  /** The kit's dynamic loader (`KIT/lib64/ld-linux-x86-64.so.2`). */
  command: string;
  /** Loader arguments, the QEMU binary and its firmware search paths (`-L`); append QEMU options. */
  args: string[];
  /** Extra environment (`QEMU_MODULE_DIR`); merge it into `process.env`. */
  env: Record<string, string>;
}

/** A built, verified kit. All paths are absolute host paths. */
export interface Kit {
  /** Root directory of the kit (a Debian tree). */
  root: string;
  qemu: KitQemu;
  /** The guest kernel (bzImage), `KIT/boot/vmlinuz-<ver>`. */
  kernel: string;
  kernelVersion: string;
  /** `KIT/usr/lib/modules/<ver>`. */
  modulesDir: string;
  /** The kbuild directory for out-of-tree modules, `KIT/usr/src/linux-headers-<ver>` (use from a chroot of the kit: its symlinks are absolute). */
  headersDir: string;
  /** The static busybox binary. */
  busybox: string;
  /** QEMU's version string, e.g. `11.1.3 (Debian 1:11.1.3+ds-1~bpo13+1)`. */
  qemuVersion: string;
  /** The recipe hash this kit was built from (the directory suffix). */
  hash: string;
  /** Contents of `kit.json`. */
  info: KitInfo;
}

/** What `kit.json` records about a build. */
export interface KitInfo {
  recipe: KitRecipe;
  hash: string;
  mirror: string;
  builtAt: string;
  buildSeconds: number;
  sizeBytes: number;
  kernelVersion: string;
  qemuVersion: string;
  /** Versions of the main packages, from the kit's dpkg status. */
  packages: Record<string, string>;
}

/**
 * The command line that runs the kit's QEMU with the kit's own loader and libraries: QEMU ≥ 10.1
 * comes from trixie-backports, which the host (Debian 12 or 13) cannot install, so it runs from
 * the tree, no chroot.
 */
export function kitQemu(root: string): KitQemu {
  const lib = [path.join(root, 'usr/lib/x86_64-linux-gnu'), path.join(root, 'lib/x86_64-linux-gnu')].join(':');
  return {
    command: path.join(root, 'lib64/ld-linux-x86-64.so.2'),
    args: [
      '--library-path',
      lib,
      path.join(root, 'usr/bin/qemu-system-x86_64'),
      '-L',
      path.join(root, 'usr/share/qemu'),
      '-L',
      path.join(root, 'usr/share/seabios'),
      '-L',
      path.join(root, 'usr/lib/ipxe/qemu'),
    ],
    env: { QEMU_MODULE_DIR: path.join(root, 'usr/lib/x86_64-linux-gnu/qemu') },
  };
}

/** The version of the (newest) kernel whose modules the tree at `root` holds. */
export async function treeKernelVersion(root: string): Promise<string> {
  const dir = path.join(root, 'usr/lib/modules');
  const names = (await fsp.readdir(dir).catch(() => [] as string[])).filter((n) => /^\d/.test(n)).sort();
  if (names.length === 0) throw new Error(`Kit is incomplete: no kernel modules directory in ${dir}`);
  return names[names.length - 1]!;
}

/** The kit at `root` described by `info` (paths, versions); throws if something is missing. */
export async function kitAt(root: string, info: KitInfo): Promise<Kit> {
  const kernelVersion = await treeKernelVersion(root);
  const kernel = path.join(root, 'boot', `vmlinuz-${kernelVersion}`);
  const headersDir = path.join(root, 'usr/src', `linux-headers-${kernelVersion}`);
  let busybox = path.join(root, 'usr/bin/busybox');
  if (!fs.existsSync(busybox)) busybox = path.join(root, 'bin/busybox');
  for (const p of [kernel, headersDir, busybox]) {
    if (!fs.existsSync(p)) throw new Error(`Kit is incomplete: ${p} is missing`);
  }
  return {
    root,
    qemu: kitQemu(root),
    kernel,
    kernelVersion,
    modulesDir: path.join(root, 'usr/lib/modules', kernelVersion),
    headersDir,
    busybox,
    qemuVersion: info.qemuVersion,
    hash: info.hash,
    info,
  };
}

/** Load an existing kit (no build); undefined if there is none at `dir`. */
export async function loadKit(dir: string): Promise<Kit | undefined> {
  let info: KitInfo;
  try {
    info = JSON.parse(await fsp.readFile(path.join(dir, 'kit.json'), 'utf8')) as KitInfo;
  } catch {
    return undefined;
  }
  return kitAt(dir, info);
}

/** A human-readable summary of a kit. */
export function describeKit(kit: Kit): string {
  const i = kit.info;
  return [
    `kit      ${kit.root}`,
    `size     ${(i.sizeBytes / 1e6).toFixed(0)} MB, built ${i.builtAt} in ${i.buildSeconds} s from ${i.mirror}`,
    `qemu     ${kit.qemuVersion}`,
    `kernel   ${kit.kernelVersion} (${kit.kernel})`,
    `headers  ${kit.headersDir}`,
    `busybox  ${kit.busybox}`,
    `run qemu ${Object.entries(kit.qemu.env)
      .map(([k, v]) => `${k}=${v}`)
      .join(' ')} ${kit.qemu.command} ${kit.qemu.args.join(' ')}`,
  ].join('\n');
}
