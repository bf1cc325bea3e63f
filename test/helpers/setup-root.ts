/**
 * A fresh Debian 13 (trixie) root for the setup test (test/setup/setup.test.ts): mmdebstrap's
 * `apt` variant plus Debian's `nodejs` and `npm` (and `ca-certificates`, which any installed
 * Debian has), nothing else — what a new user starts from. Built once with the host's mirror and
 * keyrings and cached like the kit, by a hash of its recipe (`setuproot-<hash>`, src/kit/cache.ts);
 * each run of the test stacks a throw-away overlay on it, so the cached root stays fresh.
 *
 * Next to it, `setuproot-<hash>.cache/` keeps what the runs download (apt's .debs, npm's cache),
 * bind-mounted into each run: the first run fetches everything from the archive and the registry,
 * later runs install the same files without fetching them again. `mdgpu kit --prune` leaves these
 * alone (they belong to the tests); remove them by hand if the recipe changes.
 */
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as fsp from 'node:fs/promises';
import * as path from 'node:path';
import { hostMirror, suiteKeyrings } from '../../src/kit/apt-sources.js';
import { cacheDir, ensureCached, recipeHashOf, treeSize } from '../../src/kit/cache.js';
import { CHROOT_ENV, mount, unmount } from '../../src/kit/chroot.js';
import { acquireLock, removeTree } from '../../src/kit/locks.js';
import { dpkgVersions, mmdebstrapArgs, runMmdebstrap, type TreeRecipe } from '../../src/kit/mmdebstrap.js';

/** The fresh machine: trixie's essential packages, apt, Node and npm from Debian. */
export const SETUP_ROOT_RECIPE: TreeRecipe = {
  format: 1,
  arch: 'amd64',
  variant: 'apt',
  suite: 'trixie',
  sources: ['trixie main'],
  include: ['nodejs', 'npm', 'ca-certificates'],
  backports: [],
  backportsSuite: '',
  dpkgFilters: [
    'path-exclude=/usr/share/man/*',
    'path-exclude=/usr/share/doc/*',
    'path-include=/usr/share/doc/*/copyright',
    'path-exclude=/usr/share/locale/*',
  ],
  trim: [],
};

export interface SetupRootInfo {
  recipe: TreeRecipe;
  hash: string;
  mirror: string;
  builtAt: string;
  buildSeconds: number;
  sizeBytes: number;
  packages: Record<string, string>;
}

export interface SetupRoot {
  /** The cache entry, `setuproot-<hash>`. */
  dir: string;
  /** The Debian tree (never written: runs stack an overlay on it). */
  tree: string;
  /** Downloads kept between runs: apt's archives and npm's cache. */
  downloads: { apt: string; npm: string };
  info: SetupRootInfo;
}

async function loadSetupRoot(dir: string): Promise<SetupRoot | undefined> {
  let info: SetupRootInfo;
  try {
    info = JSON.parse(await fsp.readFile(path.join(dir, 'setuproot.json'), 'utf8')) as SetupRootInfo;
  } catch {
    return undefined;
  }
  const tree = path.join(dir, 'root');
  if (!fs.existsSync(path.join(tree, 'usr/bin/node')) || !fs.existsSync(path.join(tree, 'usr/bin/npm'))) return undefined;
  return { dir, tree, downloads: { apt: `${dir}.cache/apt`, npm: `${dir}.cache/npm` }, info };
}

/** The cached root, built first if it is missing (root, mmdebstrap, the host's mirror). */
export async function ensureSetupRoot(opts: { log?: (line: string) => void; cacheDir?: string } = {}): Promise<SetupRoot> {
  const log = opts.log ?? ((l: string) => process.stderr.write(`${l}\n`));
  const final = path.join(opts.cacheDir ?? cacheDir(), `setuproot-${recipeHashOf(SETUP_ROOT_RECIPE)}`);
  return ensureCached({
    final,
    what: 'building the setup test root',
    log: (l) => log(`[setuproot] ${l}`),
    load: loadSetupRoot,
    async build(tmp) {
      const t0 = Date.now();
      const recipe = SETUP_ROOT_RECIPE;
      const mirror = await hostMirror();
      const keyring = process.env.MDGPU_APT_KEYRING;
      if (!keyring && (await suiteKeyrings(recipe.suite)).length === 0) throw new Error(`The host apt keyring has no Debian ${recipe.suite} keys`);
      await fsp.mkdir(tmp, { recursive: true });
      const tree = path.join(tmp, 'root');
      const args = mmdebstrapArgs(recipe, mirror, tree, keyring);
      log(`[setuproot] building ${final}: ${recipe.suite} from ${mirror}: ${recipe.include.join(' ')}`);
      await runMmdebstrap(process.env.MDGPU_MMDEBSTRAP ?? 'mmdebstrap', args, log, t0, { tag: 'setuproot' });
      const info: SetupRootInfo = {
        recipe,
        hash: recipeHashOf(recipe),
        mirror,
        builtAt: new Date().toISOString(),
        buildSeconds: Math.round((Date.now() - t0) / 100) / 10,
        sizeBytes: await treeSize(tree),
        packages: await dpkgVersions(tree, ['nodejs', 'npm', 'libnode115', 'node-gyp', 'libc6']),
      };
      await fsp.writeFile(path.join(tmp, 'setuproot.json'), `${JSON.stringify(info, null, 2)}\n`);
      log(`[setuproot] done in ${info.buildSeconds} s (${(info.sizeBytes / 1e6).toFixed(0)} MB)`);
    },
  });
}

/** A line of output and when it came, in seconds since the command started. */
export interface TimedLine {
  at: number;
  line: string;
}

export interface ChrootRun {
  code: number | null;
  signal: NodeJS.Signals | null;
  lines: TimedLine[];
  seconds: number;
}

/** Run `command` with bash in a chroot of `root`, in `cwd`, with `env` over {@link CHROOT_ENV}; every output line, timed. */
export function runTimed(root: string, cwd: string, command: string, env: Record<string, string>, onLine?: (l: TimedLine) => void): Promise<ChrootRun> {
  const t0 = performance.now();
  const lines: TimedLine[] = [];
  return new Promise((resolve, reject) => {
    // env -i: only these variables reach the command (tap's coverage hooks add NODE_OPTIONS to every child, naming host paths).
    const vars = Object.entries({ ...CHROOT_ENV, ...env }).map(([k, v]) => `${k}=${v}`);
    const child = spawn('chroot', [root, '/usr/bin/env', '-i', ...vars, '/bin/bash', '-c', `cd '${cwd}' && ${command}`], { stdio: ['ignore', 'pipe', 'pipe'] });
    const collect = (stream: NodeJS.ReadableStream) => {
      let buf = '';
      stream.setEncoding('utf8');
      stream.on('data', (chunk: string) => {
        buf += chunk;
        const parts = buf.split('\n');
        buf = parts.pop() ?? '';
        for (const line of parts) {
          const l = { at: (performance.now() - t0) / 1000, line };
          lines.push(l);
          onLine?.(l);
        }
      });
    };
    collect(child.stdout);
    collect(child.stderr);
    child.on('error', reject);
    child.on('close', (code, signal) => resolve({ code, signal, lines, seconds: (performance.now() - t0) / 1000 }));
  });
}

/** A throw-away overlay on the cached root, with /proc, /sys, /dev and the download caches mounted. */
export interface Overlay {
  /** The merged tree to chroot into. */
  root: string;
  /** Bind-mount `source` at `target` (a path inside the root), read-only if asked. */
  bind(source: string, target: string, opts?: { readOnly?: boolean }): Promise<void>;
  close(): Promise<void>;
}

/**
 * Stack an overlay on `setupRoot` in a new directory under `parent`; one run at a time shares the
 * download caches (a lock in the cache). The host's resolver configuration and its local CA
 * certificates are copied in: the machine's network, as the host sees it.
 */
export async function openOverlay(setupRoot: SetupRoot, parent: string, log: (l: string) => void): Promise<Overlay> {
  const release = await acquireLock(`${setupRoot.dir}.run.lock`, 'running the setup test', log);
  const dir = await fsp.mkdtemp(path.join(parent, 'mdgpu-setup-'));
  const merged = path.join(dir, 'merged');
  const mounted: string[] = [];
  const close = async () => {
    for (const m of mounted.reverse()) await unmount(m, log).catch((e: Error) => log(`umount ${m}: ${e.message}`));
    await removeTree(dir);
    await release();
  };
  try {
    for (const d of ['upper', 'work', 'merged']) await fsp.mkdir(path.join(dir, d));
    await mount(['-t', 'overlay', 'overlay', '-o', `lowerdir=${setupRoot.tree},upperdir=${dir}/upper,workdir=${dir}/work`, merged], log);
    mounted.push(merged);
    const bind = async (source: string, target: string, opts: { readOnly?: boolean } = {}) => {
      const at = path.join(merged, target);
      await fsp.mkdir(at, { recursive: true });
      await mount(['--bind', source, at], log);
      mounted.push(at);
      if (opts.readOnly) await mount(['-o', 'remount,bind,ro', at], log);
    };
    await mount(['-t', 'proc', 'proc', path.join(merged, 'proc')], log);
    mounted.push(path.join(merged, 'proc'));
    await mount(['-t', 'sysfs', 'sysfs', path.join(merged, 'sys')], log);
    mounted.push(path.join(merged, 'sys'));
    await bind('/dev', 'dev');
    await mount(['-t', 'tmpfs', 'tmpfs', path.join(merged, 'dev/shm')], log);
    mounted.push(path.join(merged, 'dev/shm'));
    for (const d of [setupRoot.downloads.apt, path.join(setupRoot.downloads.apt, 'partial'), setupRoot.downloads.npm]) await fsp.mkdir(d, { recursive: true });
    await bind(setupRoot.downloads.apt, 'var/cache/apt/archives');
    await bind(setupRoot.downloads.npm, 'root/.npm');
    await fsp.rm(path.join(merged, 'etc/resolv.conf'), { force: true });
    await fsp.copyFile('/etc/resolv.conf', path.join(merged, 'etc/resolv.conf'));
    const localCa = '/usr/local/share/ca-certificates';
    if (fs.existsSync(localCa)) await fsp.cp(localCa, path.join(merged, localCa), { recursive: true });
    return { root: merged, bind, close };
  } catch (e) {
    await close();
    throw e;
  }
}
