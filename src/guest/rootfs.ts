/**
 * The Debian guest root: a real Debian trixie userland for guests, booted from two read-only
 * ext4 disk images stacked with overlayfs in the guest (src/guest/debian-boot.ts):
 *
 * - the **base** (`guestroot-<hash>/`): mmdebstrap of trixie with the Khronos loader
 *   (`libvulkan1`), `vulkan-tools`, `vulkan-validationlayers`, `dkms` and what it needs to build
 *   against the guest kernel (`linux-headers-<kit kernel>`, which brings that kernel's image and
 *   modules, gcc, make), `kmod` and `busybox`; no init system. Slow (apt), keyed by its package
 *   list and the kit's kernel version. Kept as a directory (the layer builds on it, the guest
 *   boots its /boot/vmlinuz) and as `root.img`, plus `stage1/`: the modules the initramfs loads
 *   to mount the disks, uncompressed.
 * - the **layer** (`guestlayer-<hash>/`): what installing mdgpu's Debian packages
 *   (src/guest/packages.ts) with apt changes in the base, DKMS building mdgpu.ko against the
 *   guest kernel's headers included: the base is mounted as the lower directory of an overlayfs
 *   on the host, apt runs in a chroot of it, and the upper directory becomes `layer.img`. Cheap
 *   (seconds), keyed by the base and the packages, so a guest-driver change rebuilds only this.
 *
 * Both are built as root in a temporary directory next to their final place and renamed into it
 * when complete, under a lock per entry, like the kit; `mdgpu kit --prune` removes old ones.
 * The apt mirror is the host's (as for the kit), never written into the recipe.
 */
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as fsp from 'node:fs/promises';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { runInChroot, withMounts } from '../kit/chroot.js';
import { hostMirror, suiteKeyrings } from '../kit/apt-sources.js';
import { removeDeadBuilds } from '../kit/cache.js';
import type { Kit } from '../kit/kit-tree.js';
import { acquireLock, removeTree } from '../kit/locks.js';
import { dpkgVersions, mmdebstrapArgs, runMmdebstrap, type TreeRecipe } from '../kit/mmdebstrap.js';
import { defaultSourceDir } from './build.js';
import { buildGuestPackages, debianVersion, GUEST_PACKAGES, guestPackagesHash, type GuestPackages, packageVersion } from './packages.js';

const execFileP = promisify(execFile);

/** The inputs that define the base root; their JSON hash names its cache directory. */
export interface GuestRootRecipe {
  format: number;
  arch: 'amd64';
  variant: 'apt';
  suite: string;
  sources: string[];
  /** Packages installed by mmdebstrap (the kernel's come from {@link kernelVersion}). */
  include: string[];
  /** The kit's kernel: its `linux-headers-<version>` (and so `linux-image-<version>`) are installed. */
  kernelVersion: string;
  /**
   * dpkg options (path filters, `force-unsafe-io`), kept in the root (`/etc/dpkg/dpkg.cfg.d`), so
   * they apply to the layer's install too.
   */
  dpkgOptions: string[];
  /** Modules the initramfs loads before it can mount the disks (dependencies are added from modules.dep). */
  stage1Modules: string[];
  /** How the image is made: `mke2fs -t ext4 -O <features> -d`. */
  ext4Features: string;
}

/** Packages of every Debian guest root, besides the kernel's. */
export const GUEST_ROOT_PACKAGES = [
  // The Vulkan loader, vulkaninfo and the Khronos validation layer: what the Vulkan ICD (issue 11) runs under.
  'libvulkan1',
  'vulkan-tools',
  'vulkan-validationlayers',
  // DKMS and what it builds modules with.
  'dkms',
  'gcc',
  'make',
  'kmod',
  // devmem for the device probe, poweroff -f for an init that is not an init system.
  'busybox',
];

/** ext4 without a journal and without metadata checksums: the disks are read-only. */
const EXT4_FEATURES = '^has_journal,^metadata_csum';

/** The base root's recipe for the kit's kernel. */
export function guestRootRecipe(kernelVersion: string): GuestRootRecipe {
  return {
    format: 1,
    arch: 'amd64',
    variant: 'apt',
    suite: 'trixie',
    sources: ['trixie main'],
    include: [...GUEST_ROOT_PACKAGES],
    kernelVersion,
    dpkgOptions: [
      // No fsync per file (the kit's mmdebstrap arguments add it too): also for the layer's apt.
      'force-unsafe-io',
      'path-exclude=/usr/share/man/*',
      'path-exclude=/usr/share/info/*',
      'path-exclude=/usr/share/doc/*',
      'path-include=/usr/share/doc/*/copyright',
      'path-exclude=/usr/share/locale/*',
      'path-exclude=/usr/share/lintian/*',
    ],
    // ext4 asks the crypto API for crc32c at every mount (no modprobe yet to load it on demand).
    stage1Modules: ['virtio_blk', 'crc32c_generic', 'ext4', 'overlay'],
    ext4Features: EXT4_FEATURES,
  };
}

/** The first 12 hex digits of sha256 over the recipe's JSON. */
export function guestRootHash(recipe: GuestRootRecipe): string {
  return createHash('sha256').update(JSON.stringify(recipe)).digest('hex').slice(0, 12);
}

/** What `guestroot.json` records. */
export interface GuestRootInfo {
  recipe: GuestRootRecipe;
  hash: string;
  mirror: string;
  builtAt: string;
  buildSeconds: number;
  /** Seconds of it spent in mmdebstrap. */
  mmdebstrapSeconds: number;
  treeBytes: number;
  imageBytes: number;
  /** Stage-1 modules, in load order: file names in `stage1/`. */
  stage1: string[];
  packages: Record<string, string>;
}

/** A built base root. Paths are absolute host paths. */
export interface GuestRoot {
  /** The cache directory (`guestroot-<hash>`). */
  dir: string;
  /** The Debian tree. */
  tree: string;
  /** Its ext4 image. */
  image: string;
  /** The guest kernel: the tree's `/boot/vmlinuz-<version>`. */
  kernel: string;
  kernelVersion: string;
  /** Stage-1 modules in load order (absolute paths, uncompressed). */
  stage1Modules: string[];
  hash: string;
  info: GuestRootInfo;
}

/** What `layer.json` records. */
export interface GuestLayerInfo {
  hash: string;
  rootHash: string;
  debsHash: string;
  version: string;
  builtAt: string;
  buildSeconds: number;
  imageBytes: number;
  /** `dkms status` in the layer after the install. */
  dkmsStatus: string;
  /** Where DKMS installed the module, in the guest. */
  module: string;
  /** Versions of mdgpu's packages as dpkg records them in the layer. */
  packages: Record<string, string>;
}

/** A built layer: mdgpu's packages installed on a base root. */
export interface GuestLayer {
  /** The cache directory (`guestlayer-<hash>`). */
  dir: string;
  /** The ext4 image of the overlay's upper directory. */
  image: string;
  hash: string;
  info: GuestLayerInfo;
}

/** Everything a Debian guest boots from. */
export interface DebianImage {
  root: GuestRoot;
  debs: GuestPackages;
  layer: GuestLayer;
}

export interface EnsureDebianImageOptions {
  log?: (line: string) => void;
  /** Cache directory (default: the kit's). */
  cacheDir?: string;
  /** The mmdebstrap command (default `$MDGPU_MMDEBSTRAP` or `mmdebstrap`). */
  mmdebstrap?: string;
  /** Apt mirror (default `$MDGPU_APT_MIRROR`, else the host's configured Debian mirror). */
  mirror?: string;
  /** The guest-driver source tree (default: the repository's). */
  sourceDir?: string;
  /** Build what is missing (default true); with false a missing piece is an error. */
  build?: boolean;
}

function defaultLog(line: string): void {
  process.stderr.write(`${line}\n`);
}

const elapsed = (t0: number) => Math.round((Date.now() - t0) / 100) / 10;

/** Where the base root for `recipe` lives. */
export function guestRootDir(recipe: GuestRootRecipe, dir: string): string {
  return path.join(dir, `guestroot-${guestRootHash(recipe)}`);
}

/** The base root in `dir`, if it is complete. */
export async function loadGuestRoot(dir: string): Promise<GuestRoot | undefined> {
  let info: GuestRootInfo;
  try {
    info = JSON.parse(await fsp.readFile(path.join(dir, 'guestroot.json'), 'utf8')) as GuestRootInfo;
  } catch {
    return undefined;
  }
  const tree = path.join(dir, 'root');
  const root: GuestRoot = {
    dir,
    tree,
    image: path.join(dir, 'root.img'),
    kernel: path.join(tree, 'boot', `vmlinuz-${info.recipe.kernelVersion}`),
    kernelVersion: info.recipe.kernelVersion,
    stage1Modules: info.stage1.map((m) => path.join(dir, 'stage1', m)),
    hash: info.hash,
    info,
  };
  for (const p of [root.image, root.kernel, ...root.stage1Modules]) if (!fs.existsSync(p)) return undefined;
  return root;
}

async function duBytes(dir: string): Promise<number> {
  const { stdout } = await execFileP('du', ['-sxB1', dir]);
  return Number.parseInt(stdout, 10);
}

async function duInodes(dir: string): Promise<number> {
  const { stdout } = await execFileP('du', ['-sx', '--inodes', dir]);
  return Number.parseInt(stdout, 10);
}

/**
 * Make an ext4 image of `dir` with `mke2fs -d` (no root needed, no mount): sized to the tree's
 * disk usage plus a margin, as many inodes as files plus a margin, no reserved blocks.
 */
export async function makeExt4Image(dir: string, file: string, opts: { label: string; features: string; log?: (l: string) => void }): Promise<number> {
  const bytes = await duBytes(dir);
  const inodes = (await duInodes(dir)) + 1024;
  // Blocks for the data, the inode tables (256 bytes each) and 10% + 16 MiB for the metadata.
  const blocks = Math.ceil((bytes * 1.1 + inodes * 256) / 4096) + 4096;
  const args = [
    '-q',
    '-t',
    'ext4',
    '-b',
    '4096',
    '-m',
    '0',
    '-N',
    String(inodes),
    '-O',
    opts.features,
    '-L',
    opts.label,
    '-E',
    'root_owner=0:0',
    '-d',
    dir,
    file,
    String(blocks),
  ];
  opts.log?.(`mke2fs ${args.join(' ')}`);
  await fsp.rm(file, { force: true });
  await execFileP('mke2fs', args, { maxBuffer: 1 << 22 }).catch((e: Error & { stderr?: string }) => {
    throw new Error(`mke2fs failed: ${e.message}${e.stderr ? `\n${e.stderr}` : ''}`);
  });
  return (await fsp.stat(file)).size;
}

/** Parse modules.dep text: module path → its dependencies' paths (relative to the modules directory). */
export function parseModulesDep(text: string): Map<string, string[]> {
  const out = new Map<string, string[]>();
  for (const line of text.split('\n')) {
    const m = /^([^:\s]+):\s*(.*)$/.exec(line);
    if (m) out.set(m[1]!, m[2]!.split(/\s+/).filter(Boolean));
  }
  return out;
}

/** The module's name from its path: `kernel/fs/ext4/ext4.ko.xz` → `ext4` (`-` and `_` are the same to the kernel). */
export function moduleName(p: string): string {
  return path
    .basename(p)
    .replace(/\.ko(\.\w+)?$/, '')
    .replace(/-/g, '_');
}

/** `names` and everything they need, dependencies before their users, each once. */
export function moduleLoadOrder(dep: Map<string, string[]>, names: string[]): string[] {
  const byName = new Map([...dep.keys()].map((p) => [moduleName(p), p]));
  const order: string[] = [];
  const visit = (p: string, chain: string[]) => {
    if (order.includes(p)) return;
    if (chain.includes(p)) throw new Error(`Module dependency cycle: ${[...chain, p].join(' → ')}`);
    for (const d of dep.get(p) ?? []) visit(d, [...chain, p]);
    order.push(p);
  };
  for (const n of names) {
    const p = byName.get(n.replace(/-/g, '_'));
    if (!p) throw new Error(`Module ${n} is not in modules.dep (built into the kernel, or missing)`);
    visit(p, []);
  }
  return order;
}

/** Uncompress the stage-1 modules of the tree's kernel into `out` (the kit's static busybox has xz). */
async function extractStage1(kit: Pick<Kit, 'busybox'>, tree: string, recipe: GuestRootRecipe, out: string): Promise<string[]> {
  const modDir = path.join(tree, 'usr/lib/modules', recipe.kernelVersion);
  const order = moduleLoadOrder(parseModulesDep(await fsp.readFile(path.join(modDir, 'modules.dep'), 'utf8')), recipe.stage1Modules);
  await fsp.mkdir(out, { recursive: true });
  const names: string[] = [];
  for (const rel of order) {
    const name = `${moduleName(rel)}.ko`;
    const src = path.join(modDir, rel);
    if (rel.endsWith('.ko')) {
      await fsp.copyFile(src, path.join(out, name));
    } else if (rel.endsWith('.ko.xz')) {
      const { stdout } = await execFileP(kit.busybox, ['xz', '-dc', src], { encoding: 'buffer', maxBuffer: 64 << 20 });
      await fsp.writeFile(path.join(out, name), stdout);
    } else {
      throw new Error(`Cannot uncompress ${rel} (the kernel compresses its modules with xz)`);
    }
    names.push(name);
  }
  return names;
}

/** The base root recipe as mmdebstrap's argument builder takes it. */
function asTreeRecipe(r: GuestRootRecipe): TreeRecipe {
  return {
    format: r.format,
    arch: r.arch,
    variant: r.variant,
    suite: r.suite,
    sources: r.sources,
    include: [...r.include, `linux-headers-${r.kernelVersion}`],
    backports: [],
    backportsSuite: '',
    dpkgFilters: r.dpkgOptions,
    trim: [],
  };
}

async function checkMmdebstrap(cmd: string): Promise<void> {
  if (cmd !== 'mmdebstrap') return;
  try {
    await execFileP('mmdebstrap', ['--version']);
  } catch {
    throw new Error('Building the Debian guest root needs mmdebstrap: apt-get install -y mmdebstrap');
  }
}

async function buildGuestRoot(
  kit: Kit,
  recipe: GuestRootRecipe,
  final: string,
  o: { log: (l: string) => void; mmdebstrap: string; mirror?: string },
): Promise<GuestRoot> {
  const log = (l: string) => o.log(`[guestroot] ${l}`);
  const t0 = Date.now();
  await removeDeadBuilds(final, log);
  const mirror = o.mirror ?? (await hostMirror());
  const keyring = process.env.MDGPU_APT_KEYRING;
  if (!keyring && (await suiteKeyrings(recipe.suite)).length === 0) {
    throw new Error(`The host apt keyring has no Debian ${recipe.suite} keys (see the kit's message); set MDGPU_APT_KEYRING or update debian-archive-keyring`);
  }
  const tmp = `${final}.tmp-${process.pid}`;
  await removeTree(tmp);
  await fsp.mkdir(tmp, { recursive: true });
  const tree = path.join(tmp, 'root');
  const args = mmdebstrapArgs(asTreeRecipe(recipe), mirror, tree, keyring);
  log(`building ${final}: ${recipe.suite} from ${mirror}: ${asTreeRecipe(recipe).include.join(' ')}`);
  log(`${o.mmdebstrap} ${args.map((a) => (/\s/.test(a) ? JSON.stringify(a) : a)).join(' ')}`);
  try {
    // INITRD=No: the kernel's postinst hooks make no initramfs-tools image (~20 s, never booted).
    await runMmdebstrap(o.mmdebstrap, args, o.log, t0, { tag: 'guestroot', env: { INITRD: 'No' } });
    const mmdebstrapSeconds = elapsed(t0);
    for (const n of await fsp.readdir(path.join(tree, 'boot'))) {
      if (n.startsWith('initrd.img')) await fsp.rm(path.join(tree, 'boot', n), { force: true });
    }
    await fsp.writeFile(path.join(tree, 'etc/hostname'), 'mdgpu-guest\n');
    for (const p of [`boot/vmlinuz-${recipe.kernelVersion}`, `usr/lib/modules/${recipe.kernelVersion}/build/Makefile`, 'usr/bin/vulkaninfo', 'usr/sbin/dkms']) {
      if (!fs.existsSync(path.join(tree, p))) throw new Error(`The guest root is incomplete: /${p} is missing`);
    }
    const stage1 = await extractStage1(kit, tree, recipe, path.join(tmp, 'stage1'));
    log(`+${elapsed(t0)}s making root.img`);
    const imageBytes = await makeExt4Image(tree, path.join(tmp, 'root.img'), { label: 'mdgpu-base', features: recipe.ext4Features, log });
    const info: GuestRootInfo = {
      recipe,
      hash: guestRootHash(recipe),
      mirror,
      builtAt: new Date().toISOString(),
      buildSeconds: elapsed(t0),
      mmdebstrapSeconds,
      treeBytes: await duBytes(tree),
      imageBytes,
      stage1,
      packages: await dpkgVersions(tree, [...recipe.include, `linux-image-${recipe.kernelVersion}`, `linux-headers-${recipe.kernelVersion}`, 'libc6']),
    };
    await fsp.writeFile(path.join(tmp, 'guestroot.json'), `${JSON.stringify(info, null, 2)}\n`);
    await fsp.rename(tmp, final);
    log(`done in ${info.buildSeconds} s (mmdebstrap ${mmdebstrapSeconds} s): ${final}, tree ${(info.treeBytes / 1e6).toFixed(0)} MB`);
  } catch (e) {
    await removeTree(tmp).catch(() => undefined);
    throw e;
  }
  const root = await loadGuestRoot(final);
  if (!root) throw new Error(`Guest root at ${final} is incomplete after its build`);
  return root;
}

function isRoot(): boolean {
  return typeof process.getuid === 'function' && process.getuid() === 0;
}

/** Return the base root for `kit`'s kernel, building it if it is missing (root, mmdebstrap, ~2 minutes). */
export async function ensureGuestRoot(kit: Kit, opts: EnsureDebianImageOptions = {}): Promise<GuestRoot> {
  const log = opts.log ?? defaultLog;
  const dir = opts.cacheDir ?? path.dirname(kit.root);
  const recipe = guestRootRecipe(kit.kernelVersion);
  const final = guestRootDir(recipe, dir);
  const existing = await loadGuestRoot(final);
  if (existing) return existing;
  if (opts.build === false) throw new Error(`No Debian guest root at ${final}`);
  if (!isRoot()) throw new Error(`No Debian guest root at ${final}, and building one needs root (mmdebstrap --mode=root)`);
  const mmdebstrap = opts.mmdebstrap ?? process.env.MDGPU_MMDEBSTRAP ?? 'mmdebstrap';
  await checkMmdebstrap(mmdebstrap);
  await fsp.mkdir(dir, { recursive: true });
  const release = await acquireLock(`${final}.lock`, 'building the Debian guest root', (l) => log(`[guestroot] ${l}`));
  try {
    return (await loadGuestRoot(final)) ?? (await buildGuestRoot(kit, recipe, final, { log, mmdebstrap, mirror: opts.mirror }));
  } finally {
    await release();
  }
}

/** Part of the layer's cache key: bump when the way the layer is made changes. */
const LAYER_RECIPE = 'guest-layer-1 overlay(lower=base) apt-get install debs; dkms; mke2fs -d upper';

/** The layer's cache key: the recipe, the base root and the packages. */
export function guestLayerHash(root: Pick<GuestRoot, 'hash' | 'info'>, debs: Pick<GuestPackages, 'hash'>): string {
  return createHash('sha256')
    .update(`${LAYER_RECIPE}\0root=${root.hash}\0debs=${debs.hash}\0features=${root.info.recipe.ext4Features}`)
    .digest('hex')
    .slice(0, 16);
}

/** The layer in `dir`, if it is complete. */
export async function loadGuestLayer(dir: string): Promise<GuestLayer | undefined> {
  let info: GuestLayerInfo;
  try {
    info = JSON.parse(await fsp.readFile(path.join(dir, 'layer.json'), 'utf8')) as GuestLayerInfo;
  } catch {
    return undefined;
  }
  const image = path.join(dir, 'layer.img');
  if (!fs.existsSync(image)) return undefined;
  return { dir, image, hash: info.hash, info };
}

async function buildGuestLayer(root: GuestRoot, debs: GuestPackages, final: string, log: (l: string) => void): Promise<GuestLayer> {
  const t0 = Date.now();
  await removeDeadBuilds(final, log);
  const tmp = `${final}.tmp-${process.pid}`;
  await removeTree(tmp);
  const upper = path.join(tmp, 'upper');
  const work = path.join(tmp, 'work');
  const merged = path.join(tmp, 'merged');
  for (const d of [upper, work, merged]) await fsp.mkdir(d, { recursive: true });
  log(`building ${final}: mdgpu ${debs.version} (${Object.keys(debs.debs).join(', ')}) on ${root.dir}`);
  try {
    const kver = root.kernelVersion;
    const chrootLog = (l: string) => log(l);
    const result = await withMounts(
      [
        // No index/redirects/metacopy: the upper directory must be plain files and whiteouts, to
        // become a lower layer of the guest's overlay.
        {
          target: merged,
          args: ['-t', 'overlay', 'overlay', '-o', `lowerdir=${root.tree},upperdir=${upper},workdir=${work},index=off,redirect_dir=off,metacopy=off,xino=off`],
        },
        { target: path.join(merged, 'proc'), args: ['-t', 'proc', 'proc'] },
      ],
      async () => {
        const incoming = path.join(merged, 'tmp', 'mdgpu-debs');
        await fsp.mkdir(incoming, { recursive: true });
        const files = GUEST_PACKAGES.map((p) => path.basename(debs.debs[p]));
        for (const p of GUEST_PACKAGES) await fsp.copyFile(debs.debs[p], path.join(incoming, path.basename(debs.debs[p])));
        // apt resolves the packages' dependencies (dkms, libc6, …) from the base, which has them all: no download.
        const install = await runInChroot(
          merged,
          '/tmp/mdgpu-debs',
          `apt-get install -y --no-install-recommends -o Dpkg::Use-Pty=0 ${files.map((f) => `./${f}`).join(' ')}`,
          { log: chrootLog, tag: '', env: { INITRD: 'No' } },
        );
        const dkmsStatus = (await runInChroot(merged, '/', 'dkms status', { log: chrootLog, tag: '' })).trim();
        const moduleDir = path.join(merged, 'usr/lib/modules', kver, 'updates/dkms');
        const module = (await fsp.readdir(moduleDir).catch(() => [] as string[])).find((n) => /^mdgpu\.ko(\.\w+)?$/.test(n));
        if (!module || !new RegExp(`^mdgpu/\\S+, ${kver.replace(/[.+]/g, '\\$&')}, \\S+: installed`, 'm').test(dkmsStatus)) {
          throw new Error(`DKMS did not install mdgpu for ${kver}: dkms status:\n${dkmsStatus}\napt output:\n${install.slice(-4000)}`);
        }
        await fsp.rm(incoming, { recursive: true, force: true });
        // apt's package caches (rebuilt on demand): not worth carrying in every layer.
        await runInChroot(merged, '/', 'apt-get clean', { log: chrootLog, tag: '' });
        const packages = await dpkgVersions(merged, [...GUEST_PACKAGES]);
        return { dkmsStatus, module: `/usr/lib/modules/${kver}/updates/dkms/${module}`, packages, install };
      },
      (l) => log(l),
    );
    await fsp.rm(work, { recursive: true, force: true });
    await fsp.rm(merged, { recursive: true, force: true });
    const imageBytes = await makeExt4Image(upper, path.join(tmp, 'layer.img'), { label: 'mdgpu-layer', features: root.info.recipe.ext4Features, log });
    const info: GuestLayerInfo = {
      hash: path.basename(final).replace(/^guestlayer-/, ''),
      rootHash: root.hash,
      debsHash: debs.hash,
      version: debs.version,
      builtAt: new Date().toISOString(),
      buildSeconds: elapsed(t0),
      imageBytes,
      dkmsStatus: result.dkmsStatus,
      module: result.module,
      packages: result.packages,
    };
    await fsp.writeFile(path.join(tmp, 'install.log'), result.install);
    await fsp.writeFile(path.join(tmp, 'layer.json'), `${JSON.stringify(info, null, 2)}\n`);
    await fsp.rename(tmp, final);
    log(`done in ${info.buildSeconds} s: ${final} (${(imageBytes / 1e6).toFixed(1)} MB image); ${info.dkmsStatus}`);
  } catch (e) {
    await removeTree(tmp).catch(() => undefined);
    throw e;
  }
  const layer = await loadGuestLayer(final);
  if (!layer) throw new Error(`Guest layer at ${final} is incomplete after its build`);
  return layer;
}

/** Return the layer of `debs` on `root`, building it if it is missing (root, seconds). */
export async function ensureGuestLayer(
  root: GuestRoot,
  debs: GuestPackages,
  opts: Pick<EnsureDebianImageOptions, 'log' | 'cacheDir' | 'build'> = {},
): Promise<GuestLayer> {
  const log = opts.log ?? defaultLog;
  const dir = opts.cacheDir ?? path.dirname(root.dir);
  const final = path.join(dir, `guestlayer-${guestLayerHash(root, debs)}`);
  const existing = await loadGuestLayer(final);
  if (existing) return existing;
  if (opts.build === false) throw new Error(`No guest layer at ${final}`);
  if (!isRoot()) throw new Error(`No guest layer at ${final}, and building one needs root (overlay mount, chroot)`);
  const release = await acquireLock(`${final}.lock`, 'building the guest layer', (l) => log(`[guestlayer] ${l}`));
  try {
    return (await loadGuestLayer(final)) ?? (await buildGuestLayer(root, debs, final, (l) => log(`[guestlayer] ${l}`)));
  } finally {
    await release();
  }
}

/**
 * The Debian guest image for `kit`: the base root, mdgpu's packages and the layer that installs
 * them, each built if missing and reused from the cache otherwise.
 */
export async function ensureDebianImage(kit: Kit, opts: EnsureDebianImageOptions = {}): Promise<DebianImage> {
  const log = opts.log ?? defaultLog;
  const cacheDir = opts.cacheDir ?? path.dirname(kit.root);
  const root = await ensureGuestRoot(kit, { ...opts, log, cacheDir });
  const debs = await buildGuestPackages(kit, { log, cacheDir, ...(opts.sourceDir ? { sourceDir: opts.sourceDir } : {}) });
  const layer = await ensureGuestLayer(root, debs, { log, cacheDir, ...(opts.build !== undefined ? { build: opts.build } : {}) });
  return { root, debs, layer };
}

/**
 * The cache entries the current Debian image uses (for `mdgpu kit --prune`), computed without
 * building anything: the base root's, the packages' and the layer's directory names.
 */
export async function debianImageEntries(kit: Kit, opts: { sourceDir?: string; cacheDir?: string } = {}): Promise<string[]> {
  const dir = opts.cacheDir ?? path.dirname(kit.root);
  const rootDir = guestRootDir(guestRootRecipe(kit.kernelVersion), dir);
  const debsHash = await guestPackagesHash(opts.sourceDir ?? defaultSourceDir(), kit, debianVersion(packageVersion()));
  const names = [path.basename(rootDir), `guestdebs-${debsHash}`];
  const root = await loadGuestRoot(rootDir);
  if (root) names.push(`guestlayer-${guestLayerHash(root, { hash: debsHash })}`);
  return names;
}

/** `node build/src/guest/rootfs.js`: build (or reuse) the Debian guest image and describe it. */
export async function main(): Promise<number> {
  try {
    const { ensureKit } = await import('../kit/kit.js');
    const kit = await ensureKit();
    const image = await ensureDebianImage(kit);
    const r = image.root.info;
    const l = image.layer.info;
    process.stdout.write(
      [
        `base   ${image.root.dir} (${(r.treeBytes / 1e6).toFixed(0)} MB tree, ${(r.imageBytes / 1e6).toFixed(0)} MB image, built in ${r.buildSeconds} s)`,
        `kernel ${image.root.kernel}`,
        `debs   ${Object.values(image.debs.debs).join(' ')}`,
        `layer  ${image.layer.image} (${(l.imageBytes / 1e6).toFixed(1)} MB, built in ${l.buildSeconds} s)`,
        `dkms   ${l.dkmsStatus}`,
        '',
      ].join('\n'),
    );
    return 0;
  } catch (e) {
    process.stderr.write(`${(e as Error).message}\n`);
    return 1;
  }
}

if (process.argv[1] && fs.realpathSync(process.argv[1]) === fileURLToPath(import.meta.url)) {
  process.exitCode = await main();
}
