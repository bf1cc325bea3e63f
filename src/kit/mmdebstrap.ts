/**
 * Debian trees built with mmdebstrap from a recipe: the kit (src/kit/kit.ts), the Debian guest
 * root (src/guest/rootfs.ts) and the setup test's root (test/helpers/setup-root.ts). The archive
 * is the host's mirror (src/kit/apt-sources.ts), passed in, never part of the recipe.
 */
import { spawn } from 'node:child_process';
import * as fsp from 'node:fs/promises';
import * as path from 'node:path';

/** The inputs that define a Debian tree; their JSON hash names its cache entry. */
export interface TreeRecipe {
  format: number;
  arch: 'amd64';
  variant: 'apt';
  suite: string;
  /** Suites (components) listed in the tree's sources. */
  sources: string[];
  /** Packages installed from `suite` by mmdebstrap. */
  include: string[];
  /** Packages installed afterwards with `apt-get -t <backportsSuite>`, with whatever newer dependencies they need. */
  backports: string[];
  backportsSuite: string;
  /** dpkg path filters (docs, man pages, locales): never unpacked. */
  dpkgFilters: string[];
  /** Paths (globs relative to the tree's root) removed after the build. */
  trim: string[];
}

/** The mmdebstrap argv for building `recipe` into `target`. */
export function mmdebstrapArgs(recipe: TreeRecipe, mirror: string, target: string, keyring?: string): string[] {
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

/** Remove the recipe's `trim` globs (`boot/initrd.img-*`: `*` within the last path component) from `root`. */
export async function trimTree(root: string, patterns: string[]): Promise<void> {
  for (const pattern of patterns) {
    const dir = path.join(root, path.dirname(pattern));
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
}

/** Package versions from a tree's dpkg status file (installed packages among `names`). */
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
