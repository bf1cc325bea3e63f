/**
 * The guest driver as Debian packages, built with Debian's own tooling (dpkg-buildpackage,
 * debhelper, dh-dkms) in a chroot of the kit, from guest-driver/ and its debian/ directory:
 *
 * - `mdgpu-dkms`: the kernel module's sources in /usr/src/mdgpu-<version> with dkms.conf; its
 *   postinst (written by dh_dkms) adds, builds and installs the module through DKMS;
 * - `libmdgpu1` (libmdgpu.so.1) and `libmdgpu-dev` (headers, static library, pkg-config);
 * - `mdgpu-tools`: mdgpu-info, mdgpu-smoke, mdgpu-run, mdgpu-compute-bench, mdgpu-bench,
 *   mdgpu-submit-bench, mdgpu-membench linked against libmdgpu1, and the SPIR-V kernels in
 *   /usr/share/mdgpu;
 * - `mdgpu-vulkan-icd`: libvulkan_mdgpu.so, the Vulkan driver (libmdgpu linked in), and its
 *   manifest in /usr/share/vulkan/icd.d, where the Khronos loader looks;
 * - `mdgpu-vulkan-suite`: the Vulkan compute suite (vksuite and /usr/libexec/mdgpu-vulkan-suite),
 *   programs against the Vulkan API only, linked to libvulkan1.
 *
 * The version is package.json's (a native package: no Debian revision); debian/changelog is
 * written at build time from it. The .debs are cached in `<cache>/guestdebs-<hash>/`, the hash
 * covering the packaging recipe, the kit, the version and every source file, and built under the
 * kit's guest-build lock (both builders mount the kit's /proc).
 *
 * Adding a package: a stanza in debian/control, a `<name>.install` file, install
 * rules in guest-driver/Makefile, and its name in {@link GUEST_PACKAGES}; its sources, in any
 * directory of guest-driver/, are picked up by {@link listPackageSources}.
 */
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as fsp from 'node:fs/promises';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { runInChroot, withMounts } from '../kit/chroot.js';
import type { Kit } from '../kit/kit-tree.js';
import { acquireLock } from '../kit/locks.js';
import { defaultSourceDir } from './build.js';

const execFileP = promisify(execFile);

/** The binary packages debian/control declares, in the order they are installed. */
export const GUEST_PACKAGES = ['mdgpu-dkms', 'libmdgpu1', 'libmdgpu-dev', 'mdgpu-tools', 'mdgpu-vulkan-icd', 'mdgpu-vulkan-suite'] as const;
export type GuestPackage = (typeof GUEST_PACKAGES)[number];

/** Part of the cache key: bump when the way the packages are built changes. */
const RECIPE = 'guest-debs-1 dpkg-buildpackage -b -us -uc; changelog from package.json; native';

/** What a build produced. */
export interface GuestPackages {
  /** The cache directory (`guestdebs-<hash>`). */
  dir: string;
  /** The packages' version (package.json's). */
  version: string;
  /** Package name → absolute path of its .deb. */
  debs: Record<GuestPackage, string>;
  hash: string;
  manifest: GuestDebsManifest;
}

/** What manifest.json of a `guestdebs-<hash>` directory records. */
export interface GuestDebsManifest {
  hash: string;
  version: string;
  kitHash: string;
  builtAt: string;
  buildSeconds: number;
  /** Package name → .deb file name in the directory. */
  debs: Record<string, string>;
}

export interface BuildGuestPackagesOptions {
  log?: (line: string) => void;
  /** The guest-driver source tree (default: the repository's guest-driver/). */
  sourceDir?: string;
  /** Where `guestdebs-<hash>/` goes (default: the kit's cache directory). */
  cacheDir?: string;
  /** The version (default: package.json's). */
  version?: string;
}

/** The repository's package.json version: the guest packages carry it. */
export function packageVersion(): string {
  const here = path.dirname(fileURLToPath(import.meta.url));
  for (const up of ['../..', '../../..']) {
    const file = path.resolve(here, up, 'package.json');
    if (fs.existsSync(file)) {
      const pkg = JSON.parse(fs.readFileSync(file, 'utf8')) as { name?: string; version?: string };
      if (pkg.name === 'mdgpu' && pkg.version) return pkg.version;
    }
  }
  throw new Error(`mdgpu's package.json not found above ${here}`);
}

/** A Debian version made from an npm one: `0.1.0` stays, `0.2.0-rc.1` becomes `0.2.0~rc.1` (sorts before 0.2.0, as in npm). */
export function debianVersion(npmVersion: string): string {
  if (!/^\d+\.\d+\.\d+(-[0-9A-Za-z.-]+)?(\+[0-9A-Za-z.-]+)?$/.test(npmVersion)) throw new Error(`Not a semantic version: ${npmVersion}`);
  return npmVersion.replace('-', '~');
}

/** debian/changelog for `version` (one entry; its date makes SOURCE_DATE_EPOCH, so it is fixed). */
export function debianChangelog(version: string, note: string): string {
  return `mdgpu (${version}) trixie; urgency=medium

  * ${note}

 -- mdgpu developers <mdgpu@example.org>  Thu, 01 Jan 2026 00:00:00 +0000
`;
}

/** Files of debian/ that are sources (what a hand build leaves there is not). */
function isPackagingSource(rel: string): boolean {
  return /^debian\/(control|rules|copyright|source\/format|[a-z0-9.+-]+\.(install|dkms|links|dirs|docs|triggers|lintian-overrides|maintscript))$/.test(rel);
}

/** Build outputs a hand build may leave in guest-driver/ (make, Kbuild, dpkg-buildpackage): never sources. */
const BUILD_OUTPUT = /(^|\/)(out|build)\/|\.(o|ko|a|so|spv|mod|cmd|mod\.c|order|symvers|deb)$|(^|\/)\.|\.md$/;

/**
 * Every file of guest-driver/ the packages are built from: the driver's sources, the kernels',
 * the Makefile and debian/'s sources, and any new directory (a Vulkan ICD's) without a list to
 * update; build outputs, dot files and documentation left out.
 */
export async function listPackageSources(sourceDir: string): Promise<string[]> {
  const out: string[] = [];
  const walk = async (rel: string): Promise<void> => {
    for (const e of await fsp.readdir(path.join(sourceDir, rel), { withFileTypes: true })) {
      const p = rel ? `${rel}/${e.name}` : e.name;
      if (e.name.startsWith('.')) continue;
      if (e.isDirectory()) {
        if (!BUILD_OUTPUT.test(`${p}/`)) await walk(p);
      } else if (e.isFile() && !BUILD_OUTPUT.test(p) && (!p.startsWith('debian/') || isPackagingSource(p))) {
        out.push(p);
      }
    }
  };
  await walk('');
  return out.sort();
}

/** The cache key of the packages: sha256 over the recipe, the kit, the version and every source file. */
export async function guestPackagesHash(sourceDir: string, kit: Pick<Kit, 'hash'>, version: string): Promise<string> {
  const h = createHash('sha256');
  h.update(`${RECIPE}\0kit=${kit.hash}\0version=${version}\0`);
  for (const rel of await listPackageSources(sourceDir)) {
    const data = await fsp.readFile(path.join(sourceDir, rel));
    h.update(`${rel}\0${data.length}\0`);
    h.update(data);
  }
  return h.digest('hex').slice(0, 16);
}

/** The `.deb` file name dpkg-buildpackage gives a package. */
export function debFileName(pkg: GuestPackage, version: string, arch = 'amd64'): string {
  return `${pkg}_${version}_${pkg === 'mdgpu-dkms' ? 'all' : arch}.deb`;
}

/** The packages in `dir`, if the build there is complete. */
export async function loadGuestPackages(dir: string): Promise<GuestPackages | undefined> {
  let manifest: GuestDebsManifest;
  try {
    manifest = JSON.parse(await fsp.readFile(path.join(dir, 'manifest.json'), 'utf8')) as GuestDebsManifest;
  } catch {
    return undefined;
  }
  const debs = Object.fromEntries(GUEST_PACKAGES.map((p) => [p, path.join(dir, manifest.debs[p] ?? `missing-${p}`)])) as Record<GuestPackage, string>;
  if (Object.values(debs).some((f) => !fs.existsSync(f))) return undefined;
  return { dir, version: manifest.version, debs, hash: manifest.hash, manifest };
}

function defaultLog(line: string): void {
  process.stderr.write(`${line}\n`);
}

/**
 * Build (or reuse) the guest driver's Debian packages in a chroot of `kit`. Needs root (chroot,
 * mount) unless they are cached.
 */
export async function buildGuestPackages(kit: Kit, opts: BuildGuestPackagesOptions = {}): Promise<GuestPackages> {
  const log = opts.log ?? defaultLog;
  const sourceDir = opts.sourceDir ?? defaultSourceDir();
  const version = opts.version ?? debianVersion(packageVersion());
  const cacheDir = opts.cacheDir ?? path.dirname(kit.root);
  const hash = await guestPackagesHash(sourceDir, kit, version);
  const final = path.join(cacheDir, `guestdebs-${hash}`);
  const cached = await loadGuestPackages(final);
  if (cached) {
    log(`[debs] using the cached guest packages ${final}`);
    return cached;
  }
  if (typeof process.getuid === 'function' && process.getuid() !== 0) {
    throw new Error(`Building the guest packages needs root (chroot into the kit, mount /proc); no cached build at ${final}`);
  }
  await fsp.mkdir(cacheDir, { recursive: true });
  // The kit's /proc is shared with the guest-driver build (src/guest/build.ts): the same lock.
  const release = await acquireLock(`${kit.root}.guest-build.lock`, 'building in the kit', (l) => log(`[debs] ${l}`));
  try {
    const again = await loadGuestPackages(final);
    if (again) return again;
    const t0 = Date.now();
    log(`[debs] building mdgpu ${version} packages in the kit from ${sourceDir} (cache: ${final})`);
    const work = await fsp.mkdtemp(path.join(kit.root, 'tmp', 'mdgpu-debs-'));
    const stage = await fsp.mkdtemp(`${final}.tmp-`);
    try {
      const tree = path.join(work, `mdgpu-${version}`);
      for (const rel of await listPackageSources(sourceDir)) {
        await fsp.mkdir(path.dirname(path.join(tree, rel)), { recursive: true });
        await fsp.copyFile(path.join(sourceDir, rel), path.join(tree, rel));
      }
      await fsp.chmod(path.join(tree, 'debian', 'rules'), 0o755);
      await fsp.writeFile(path.join(tree, 'debian', 'changelog'), debianChangelog(version, `Built from mdgpu's guest-driver/ (sources ${hash}).`));
      const inKit = `/${path.relative(kit.root, tree)}`;
      const output = await withMounts(
        [{ target: path.join(kit.root, 'proc'), args: ['-t', 'proc', 'proc'] }],
        () => runInChroot(kit.root, inKit, 'dpkg-buildpackage -b -us -uc -j2', { log, tag: '[debs]' }),
        (l) => log(`[debs] ${l}`),
      );
      const debs: Record<string, string> = {};
      for (const pkg of GUEST_PACKAGES) {
        const name = debFileName(pkg, version);
        if (!fs.existsSync(path.join(work, name))) throw new Error(`dpkg-buildpackage made no ${name}; its output:\n${output.slice(-4000)}`);
        await fsp.copyFile(path.join(work, name), path.join(stage, name));
        debs[pkg] = name;
      }
      const manifest: GuestDebsManifest = {
        hash,
        version,
        kitHash: kit.hash,
        builtAt: new Date().toISOString(),
        buildSeconds: Math.round((Date.now() - t0) / 100) / 10,
        debs,
      };
      await fsp.writeFile(path.join(stage, 'manifest.json'), `${JSON.stringify(manifest, null, 2)}\n`);
      await fsp.writeFile(path.join(stage, 'build.log'), output);
      await fsp.chmod(stage, 0o755);
      await fsp.rename(stage, final);
      log(`[debs] built ${Object.values(debs).join(' ')} in ${manifest.buildSeconds} s`);
    } finally {
      await fsp.rm(work, { recursive: true, force: true });
      await fsp.rm(stage, { recursive: true, force: true });
    }
    const built = await loadGuestPackages(final);
    if (!built) throw new Error(`Guest packages at ${final} are incomplete`);
    return built;
  } finally {
    await release();
  }
}

/** One entry of `dpkg-deb --contents`: the path without its leading `.`, and the link target if any. */
export interface DebEntry {
  path: string;
  mode: string;
  linkTarget?: string;
}

/** `dpkg-deb --contents` of a .deb (the host's dpkg-deb). */
export async function debContents(deb: string): Promise<DebEntry[]> {
  const { stdout } = await execFileP('dpkg-deb', ['--contents', deb], { maxBuffer: 16 << 20 });
  return stdout
    .split('\n')
    .filter(Boolean)
    .map((line) => {
      const m = /^(\S+)\s+\S+\s+\d+\s+\S+\s+\S+\s+\.(\/\S*?)\/?(?: -> (\S+))?$/.exec(line);
      if (!m) throw new Error(`Unrecognised dpkg-deb --contents line: ${line}`);
      return { mode: m[1]!, path: m[2]!, ...(m[3] !== undefined ? { linkTarget: m[3] } : {}) };
    });
}

/** The control fields of a .deb (`dpkg-deb --field`). */
export async function debFields(deb: string): Promise<Record<string, string>> {
  const { stdout } = await execFileP('dpkg-deb', ['--field', deb]);
  const out: Record<string, string> = {};
  let last = '';
  for (const line of stdout.split('\n')) {
    const m = /^([A-Za-z0-9-]+):\s?(.*)$/.exec(line);
    if (m) {
      last = m[1]!;
      out[last] = m[2]!;
    } else if (line.startsWith(' ') && last) {
      out[last] += `\n${line.slice(1)}`;
    }
  }
  return out;
}

/** A file of a .deb's control archive (postinst, …), or undefined (`dpkg-deb --info deb name`). */
export async function debControlFile(deb: string, name: string): Promise<string | undefined> {
  try {
    return (await execFileP('dpkg-deb', ['--info', deb, name], { maxBuffer: 16 << 20 })).stdout;
  } catch {
    return undefined;
  }
}

/** The bytes of file `file` (an absolute path in the package) of a .deb (`dpkg-deb --fsys-tarfile | tar -xO`). */
export async function debFile(deb: string, file: string): Promise<Buffer> {
  const { stdout } = await execFileP('sh', ['-c', 'dpkg-deb --fsys-tarfile "$1" | tar -xOf - "$2"', 'sh', deb, `.${file}`], {
    encoding: 'buffer',
    maxBuffer: 64 << 20,
  });
  return stdout;
}

/** `node build/src/guest/packages.js [dir]`: build (or reuse) the packages and copy the .debs to `dir`. */
export async function main(argv: string[] = process.argv.slice(2)): Promise<number> {
  try {
    const { ensureKit } = await import('../kit/kit.js');
    const kit = await ensureKit();
    const built = await buildGuestPackages(kit);
    const dest = argv[0];
    for (const deb of Object.values(built.debs)) {
      if (dest) await fsp.copyFile(deb, path.join(dest, path.basename(deb)));
      process.stdout.write(`${dest ? path.join(dest, path.basename(deb)) : deb}\n`);
    }
    return 0;
  } catch (e) {
    process.stderr.write(`${(e as Error).message}\n`);
    return 1;
  }
}

if (process.argv[1] && fs.realpathSync(process.argv[1]) === fileURLToPath(import.meta.url)) {
  process.exitCode = await main();
}
