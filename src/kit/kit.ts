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
 * The cache key is a hash of the recipe (what goes in), not of the mirror (where it comes
 * from). A kit is built in a temporary directory next to its final place and renamed into
 * place only once it is complete and verified, so a half-built kit is never used.
 */
import { spawn, execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as fsp from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import { promisify } from 'node:util';
import { fileURLToPath } from 'node:url';

const execFileP = promisify(execFile);

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

/** The inputs that define a kit; its JSON hash names the cache directory. */
export interface KitRecipe {
  format: number;
  arch: 'amd64';
  variant: 'apt';
  suite: string;
  /** Suites (components) listed in the kit's sources. */
  sources: string[];
  /** Packages installed from `suite` by mmdebstrap. */
  include: string[];
  /** Packages installed afterwards with `apt-get -t <backportsSuite>`, with whatever newer dependencies they need. */
  backports: string[];
  backportsSuite: string;
  /** dpkg path filters (docs, man pages, locales): never unpacked. */
  dpkgFilters: string[];
  /** Paths (globs relative to the kit root) removed after the build. */
  trim: string[];
}

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
  return createHash('sha256').update(JSON.stringify(recipe)).digest('hex').slice(0, 12);
}

/** The cache directory for kits. */
export function cacheDir(env: NodeJS.ProcessEnv = process.env): string {
  if (env.MDGPU_CACHE_DIR) return path.resolve(env.MDGPU_CACHE_DIR);
  if (env.XDG_CACHE_HOME) return path.resolve(env.XDG_CACHE_HOME, 'mdgpu');
  return path.join(env.HOME || os.homedir(), '.cache', 'mdgpu');
}

/** Where the kit for `recipe` lives (whether or not it exists). */
export function kitDir(recipe: KitRecipe = KIT_RECIPE, dir: string = cacheDir()): string {
  return path.join(dir, `kit-${recipeHash(recipe)}`);
}

/** One deb source entry of the host's apt configuration. */
export interface AptSource {
  uri: string;
  suites: string[];
  components: string[];
  file: string;
}

/** Parse deb822 `.sources` text into `deb` entries (disabled and `deb-src` entries are dropped). */
export function parseDeb822Sources(text: string, file = ''): AptSource[] {
  const out: AptSource[] = [];
  const stanzas = text.split(/\n\s*\n/);
  for (const stanza of stanzas) {
    const fields = new Map<string, string>();
    let last: string | undefined;
    for (const raw of stanza.split('\n')) {
      if (raw.startsWith('#')) continue;
      if (/^\s/.test(raw) && last !== undefined) {
        fields.set(last, `${fields.get(last) ?? ''} ${raw.trim()}`);
        continue;
      }
      const m = /^([A-Za-z0-9-]+):\s*(.*)$/.exec(raw);
      if (!m) continue;
      last = m[1]!.toLowerCase();
      fields.set(last, m[2]!.trim());
    }
    const types = (fields.get('types') ?? '').split(/\s+/);
    if (!types.includes('deb')) continue;
    if ((fields.get('enabled') ?? 'yes').toLowerCase() === 'no') continue;
    const suites = (fields.get('suites') ?? '').split(/\s+/).filter(Boolean);
    const components = (fields.get('components') ?? '').split(/\s+/).filter(Boolean);
    for (const uri of (fields.get('uris') ?? '').split(/\s+/).filter(Boolean)) {
      out.push({ uri, suites, components, file });
    }
  }
  return out;
}

/** Parse one-line-style `sources.list` text into `deb` entries. */
export function parseOneLineSources(text: string, file = ''): AptSource[] {
  const out: AptSource[] = [];
  for (const raw of text.split('\n')) {
    const line = raw.replace(/#.*$/, '').trim();
    const m = /^deb\s+(?:\[[^\]]*\]\s+)?(\S+)\s+(\S+)\s*(.*)$/.exec(line);
    if (!m) continue;
    out.push({ uri: m[1]!, suites: [m[2]!], components: m[3]!.split(/\s+/).filter(Boolean), file });
  }
  return out;
}

/**
 * Pick the Debian archive mirror among the host's sources: an entry that carries a plain
 * release suite (`bookworm`, `trixie`, …; not `-security`/`-updates`) with `main`, preferring
 * URIs whose path ends in `/debian`. Returns the URI without a trailing slash.
 */
export function pickDebianMirror(sources: AptSource[]): string | undefined {
  const plain = sources.filter((s) => s.suites.some((x) => /^[a-z]+$/.test(x)) && s.components.includes('main') && !/security/.test(s.uri));
  const ranked = [...plain.filter((s) => /\/debian\/?$/.test(s.uri)), ...plain];
  return ranked[0]?.uri.replace(/\/+$/, '');
}

/** The mirror the host's apt is configured with (`MDGPU_APT_MIRROR` overrides). */
export async function hostMirror(env: NodeJS.ProcessEnv = process.env, etcApt = '/etc/apt'): Promise<string> {
  if (env.MDGPU_APT_MIRROR) return env.MDGPU_APT_MIRROR.replace(/\/+$/, '');
  const sources: AptSource[] = [];
  const tryRead = async (f: string) => {
    try {
      return await fsp.readFile(f, 'utf8');
    } catch {
      return undefined;
    }
  };
  let names: string[] = [];
  try {
    names = (await fsp.readdir(path.join(etcApt, 'sources.list.d'))).sort();
  } catch {
    /* no directory */
  }
  for (const n of names) {
    const f = path.join(etcApt, 'sources.list.d', n);
    const text = n.endsWith('.sources') || n.endsWith('.list') ? await tryRead(f) : undefined;
    if (text === undefined) continue;
    sources.push(...(n.endsWith('.sources') ? parseDeb822Sources(text, f) : parseOneLineSources(text, f)));
  }
  const list = await tryRead(path.join(etcApt, 'sources.list'));
  if (list !== undefined) sources.push(...parseOneLineSources(list, path.join(etcApt, 'sources.list')));
  const mirror = pickDebianMirror(sources);
  if (!mirror) {
    throw new Error(
      `No Debian mirror found in ${etcApt}/sources.list.d/*.sources or ${etcApt}/sources.list: set MDGPU_APT_MIRROR (e.g. http://deb.debian.org/debian)`,
    );
  }
  return mirror;
}

/**
 * Keyrings that can verify the recipe's suite: files named after it in the host's apt
 * trust stores (bookworm's debian-archive-keyring ≥ 2023.3+deb12u1 ships the trixie keys).
 * `MDGPU_APT_KEYRING` names one explicitly (it is then passed to mmdebstrap).
 */
export async function suiteKeyrings(suite: string, dirs = ['/usr/share/keyrings', '/etc/apt/trusted.gpg.d']): Promise<string[]> {
  const found: string[] = [];
  for (const d of dirs) {
    let names: string[] = [];
    try {
      names = await fsp.readdir(d);
    } catch {
      continue;
    }
    for (const n of names) if (n.includes(suite) && /\.(gpg|asc)$/.test(n)) found.push(path.join(d, n));
  }
  return found;
}

/** The mmdebstrap argv for building `recipe` into `target`. */
export function mmdebstrapArgs(recipe: KitRecipe, mirror: string, target: string, keyring?: string): string[] {
  const args = [`--variant=${recipe.variant}`, `--architectures=${recipe.arch}`, '--mode=root', '--format=directory'];
  args.push(`--include=${recipe.include.join(',')}`);
  for (const f of recipe.dpkgFilters) args.push(`--dpkgopt=${f}`);
  // No fsync per unpacked file: a tree is used only once it is complete and renamed into place,
  // and on a busy disk dpkg's syncs take most of the build (measured: 19 s → 4 s for the
  // essential set). How files are written, not what is in the tree: not part of the recipe.
  if (!recipe.dpkgFilters.includes('force-unsafe-io')) args.push('--dpkgopt=force-unsafe-io');
  if (keyring) args.push(`--keyring=${keyring}`);
  if (recipe.backports.length > 0) {
    args.push(
      `--customize-hook=chroot "$1" env DEBIAN_FRONTEND=noninteractive apt-get install -y -o APT::Install-Recommends=false -t ${recipe.backportsSuite} ${recipe.backports.join(' ')}`,
    );
  }
  args.push(recipe.suite, target);
  for (const s of recipe.sources) args.push(`deb ${mirror} ${s}`);
  return args;
}

function defaultLog(line: string): void {
  process.stderr.write(`${line}\n`);
}

function isRoot(): boolean {
  return typeof process.getuid === 'function' && process.getuid() === 0;
}

/** Mount points at or below `dir` (from /proc/self/mountinfo), deepest first. */
async function mountsUnder(dir: string): Promise<string[]> {
  let text = '';
  try {
    text = await fsp.readFile('/proc/self/mountinfo', 'utf8');
  } catch {
    return [];
  }
  const prefix = dir.endsWith('/') ? dir : `${dir}/`;
  return text
    .split('\n')
    .map((l) => l.split(' ')[4])
    .filter((m): m is string => m !== undefined && (m === dir || m.startsWith(prefix)))
    .map((m) => m.replace(/\\040/g, ' '))
    .sort((a, b) => b.length - a.length);
}

/**
 * Remove a (possibly half-built) tree. A killed mmdebstrap can leave /proc, /sys or /dev
 * mounted inside it; deleting through those would touch the host, so unmount first and
 * refuse if anything stays mounted.
 */
export async function removeTree(dir: string): Promise<void> {
  for (const m of await mountsUnder(dir)) {
    await execFileP('umount', ['-l', m]).catch(() => undefined);
  }
  const left = await mountsUnder(dir);
  if (left.length > 0) throw new Error(`Refusing to delete ${dir}: still mounted: ${left.join(', ')}`);
  await fsp.rm(dir, { recursive: true, force: true });
}

/** Whether process `pid` exists (EPERM: it does, owned by someone else). */
export function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * Take `lockPath` (an O_EXCL file holding our pid), waiting while a live process holds it; a
 * lock whose holder is dead is taken over. `what` names the work in the waiting message.
 * Shared by the kit build and the guest-driver build (src/guest/build.ts).
 */
export async function acquireLock(lockPath: string, what: string, log: (l: string) => void): Promise<() => Promise<void>> {
  let announced = false;
  for (;;) {
    try {
      const fh = await fsp.open(lockPath, 'wx');
      await fh.writeFile(`${process.pid}\n`);
      await fh.close();
      return async () => {
        await fsp.rm(lockPath, { force: true });
      };
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
    }
    const pid = Number.parseInt(await fsp.readFile(lockPath, 'utf8').catch(() => ''), 10);
    if (!Number.isFinite(pid) || !pidAlive(pid)) {
      // Empty: the holder may be between open and write; give it a moment before taking over.
      if (!Number.isFinite(pid)) await new Promise((r) => setTimeout(r, 200));
      const again = Number.parseInt(await fsp.readFile(lockPath, 'utf8').catch(() => ''), 10);
      if (!Number.isFinite(again) || !pidAlive(again)) await fsp.rm(lockPath, { force: true });
      continue;
    }
    if (!announced) {
      log(`another process (pid ${pid}) is ${what}; waiting for it`);
      announced = true;
    }
    await new Promise((r) => setTimeout(r, 500));
  }
}

async function findOne(dir: string, re: RegExp, what: string): Promise<string> {
  const names = (await fsp.readdir(dir).catch(() => [] as string[])).filter((n) => re.test(n)).sort();
  if (names.length === 0) throw new Error(`Kit is incomplete: no ${what} in ${dir}`);
  return names[names.length - 1]!;
}

/** The command line that runs the kit's QEMU with the kit's own loader and libraries. */
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

/** Run the kit's QEMU with `args` and return stdout (throws on failure). */
export async function runKitQemu(q: KitQemu, args: string[], timeoutMs = 30_000): Promise<string> {
  const { stdout } = await execFileP(q.command, [...q.args, ...args], {
    env: { ...process.env, ...q.env },
    timeout: timeoutMs,
    killSignal: 'SIGKILL',
    maxBuffer: 16 << 20,
  });
  return stdout;
}

/** Package versions from a kit's dpkg status file. */
export async function dpkgVersions(root: string, names: string[]): Promise<Record<string, string>> {
  const text = await fsp.readFile(path.join(root, 'var/lib/dpkg/status'), 'utf8');
  const out: Record<string, string> = {};
  for (const stanza of text.split(/\n\n+/)) {
    const pkg = /^Package: (\S+)$/m.exec(stanza)?.[1];
    const ver = /^Version: (\S+)$/m.exec(stanza)?.[1];
    const installed = /^Status: .* installed$/m.test(stanza);
    if (pkg && ver && installed && names.includes(pkg)) out[pkg] = ver;
  }
  return out;
}

/** Describe a kit tree (paths, versions); throws if something is missing. */
async function describe(root: string, info: KitInfo): Promise<Kit> {
  const modules = path.join(root, 'usr/lib/modules');
  const kernelVersion = await findOne(modules, /^\d/, 'kernel modules directory');
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
    modulesDir: path.join(modules, kernelVersion),
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
  return describe(dir, info);
}

/** Parse `qemu-system-x86_64 --version` output into `11.1.3 (Debian …)`. */
export function parseQemuVersion(text: string): string {
  const m = /QEMU emulator version (\S+(?: \([^)]*\))?)/.exec(text);
  if (!m) throw new Error(`Unrecognised QEMU version output: ${text.trim().split('\n')[0] ?? ''}`);
  return m[1]!;
}

/** Whether `version` (e.g. `11.1.3 (Debian …)`) is at least `major.minor`. */
export function qemuAtLeast(version: string, major: number, minor: number): boolean {
  const m = /^(\d+)\.(\d+)/.exec(version);
  if (!m) return false;
  const [a, b] = [Number(m[1]), Number(m[2])];
  return a > major || (a === major && b >= minor);
}

/**
 * Run mmdebstrap, forwarding its output lines to `log` with elapsed time (`[<tag> +Ns]`, tag
 * default `kit`); `env` is added to its environment (the guest root's build sets INITRD=No).
 */
export async function runMmdebstrap(
  cmd: string,
  args: string[],
  log: (l: string) => void,
  t0: number,
  opts: { tag?: string; env?: Record<string, string> } = {},
): Promise<string[]> {
  const tail: string[] = [];
  const stamp = () => `[${opts.tag ?? 'kit'} +${((Date.now() - t0) / 1000).toFixed(1)}s]`;
  const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive', ...opts.env } });
  let quietSince = Date.now();
  const heartbeat = setInterval(() => {
    if (Date.now() - quietSince >= 15_000) {
      log(`${stamp()} still building…`);
      quietSince = Date.now();
    }
  }, 5000);
  const onData = (stream: NodeJS.ReadableStream) => {
    let buf = '';
    stream.setEncoding('utf8');
    stream.on('data', (chunk: string) => {
      buf += chunk;
      const lines = buf.split(/\r?\n|\r/);
      buf = lines.pop() ?? '';
      for (const l of lines) {
        if (!l.trim()) continue;
        quietSince = Date.now();
        tail.push(l);
        if (tail.length > 60) tail.shift();
        log(`${stamp()} mmdebstrap: ${l}`);
      }
    });
    stream.on('end', () => {
      if (buf.trim()) {
        tail.push(buf);
        log(`${stamp()} mmdebstrap: ${buf}`);
      }
    });
  };
  onData(child.stdout);
  onData(child.stderr);
  const code = await new Promise<number | null>((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (c) => resolve(c));
  }).finally(() => clearInterval(heartbeat));
  if (code !== 0) {
    const hint = tail.some((l) => /NO_PUBKEY|not signed|signature|keyring/i.test(l))
      ? ' (the host cannot verify the Debian archive: update debian-archive-keyring or set MDGPU_APT_KEYRING)'
      : '';
    throw new Error(`mmdebstrap failed with exit code ${code}${hint}; last output:\n${tail.slice(-15).join('\n')}`);
  }
  return tail;
}

async function treeSize(dir: string): Promise<number> {
  const { stdout } = await execFileP('du', ['-sxb', dir]);
  return Number.parseInt(stdout, 10);
}

/** Build the kit into `final` (through a temp dir and an atomic rename). */
async function buildKit(final: string, recipe: KitRecipe, o: Required<Pick<EnsureKitOptions, 'log' | 'mmdebstrap'>> & { mirror?: string }): Promise<Kit> {
  const { log } = o;
  const t0 = Date.now();
  const parent = path.dirname(final);
  const base = path.basename(final);
  // Leftovers of builds that died (their pid is gone).
  for (const n of await fsp.readdir(parent)) {
    const m = new RegExp(`^${base}\\.tmp-(\\d+)$`).exec(n);
    if (m && !pidAlive(Number(m[1]))) {
      log(`[kit] removing the half-built ${n} left by a dead build`);
      await removeTree(path.join(parent, n));
    }
  }
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
  const tmp = path.join(parent, `${base}.tmp-${process.pid}`);
  await removeTree(tmp);
  const args = mmdebstrapArgs(recipe, mirror, tmp, keyring);
  log(`[kit] building ${final}`);
  log(`[kit] mirror ${mirror}; ${recipe.suite} + ${recipe.backportsSuite}: ${[...recipe.include, ...recipe.backports].join(' ')}`);
  log(`[kit] ${o.mmdebstrap} ${args.map((a) => (/\s/.test(a) ? JSON.stringify(a) : a)).join(' ')}`);
  try {
    // INITRD=No: the kernel's postinst hook makes no initramfs-tools image (trimmed anyway, see `trim`).
    await runMmdebstrap(o.mmdebstrap, args, log, t0, { env: { INITRD: 'No' } });
    for (const pattern of recipe.trim) {
      const dir = path.join(tmp, path.dirname(pattern));
      const re = new RegExp(
        `^${path
          .basename(pattern)
          .replace(/[.+^${}()|[\]\\]/g, '\\$&')
          .replace(/\*/g, '.*')}$`,
      );
      for (const n of await fsp.readdir(dir).catch(() => [] as string[])) {
        if (re.test(n)) await fsp.rm(path.join(dir, n), { recursive: true, force: true });
      }
    }
    log(`[kit +${((Date.now() - t0) / 1000).toFixed(1)}s] verifying the kit's QEMU`);
    const q = kitQemu(tmp);
    const qemuVersion = parseQemuVersion(await runKitQemu(q, ['--version']));
    if (!qemuAtLeast(qemuVersion, 10, 1)) throw new Error(`The kit's QEMU is ${qemuVersion}; vfio-user-pci needs QEMU ≥ 10.1`);
    const help = await runKitQemu(q, ['-device', 'vfio-user-pci,help']);
    if (!/\bsocket\b/.test(help)) throw new Error(`The kit's QEMU ${qemuVersion} has no usable vfio-user-pci device:\n${help}`);
    const sizeBytes = await treeSize(tmp);
    const buildSeconds = Math.round((Date.now() - t0) / 100) / 10;
    const kernelVersion = await findOne(path.join(tmp, 'usr/lib/modules'), /^\d/, 'kernel modules directory');
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
    await describe(tmp, info);
    await fsp.writeFile(path.join(tmp, 'kit.json'), `${JSON.stringify(info, null, 2)}\n`);
    await fsp.rename(tmp, final);
    log(`[kit] done in ${buildSeconds} s: ${final} (${(sizeBytes / 1e6).toFixed(0)} MB, QEMU ${qemuVersion}, kernel ${kernelVersion})`);
  } catch (e) {
    await removeTree(tmp).catch(() => undefined);
    throw e;
  }
  const kit = await loadKit(final);
  if (!kit) throw new Error(`Kit at ${final} vanished after the build`);
  return kit;
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
  const hint = `build it with: sudo node build/src/kit/kit.js (as root; MDGPU_CACHE_DIR=${dir} keeps the same cache)`;
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
  await fsp.mkdir(dir, { recursive: true });
  const release = await acquireLock(`${final}.lock`, 'building the kit', (l) => log(`[kit] ${l}`));
  try {
    const again = await loadKit(final);
    if (again) return again;
    return await buildKit(final, recipe, { log, mmdebstrap, mirror: opts.mirror });
  } finally {
    await release();
  }
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

/**
 * `node build/src/kit/kit.js [--root|--json]`: build the kit if needed, then describe it
 * (`--root` prints only its directory, for shell scripts; `--json` prints kit.json).
 */
export async function main(argv: string[] = process.argv.slice(2)): Promise<number> {
  try {
    const kit = await ensureKit();
    const out = argv.includes('--root') ? kit.root : argv.includes('--json') ? JSON.stringify(kit.info, null, 2) : describeKit(kit);
    process.stdout.write(`${out}\n`);
    return 0;
  } catch (e) {
    process.stderr.write(`${(e as Error).message}\n`);
    return 1;
  }
}

if (process.argv[1] && fs.realpathSync(process.argv[1]) === fileURLToPath(import.meta.url)) {
  process.exitCode = await main();
}
