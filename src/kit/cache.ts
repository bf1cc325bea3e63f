/**
 * The cache outside the repository (`~/.cache/mdgpu`) where built trees live: the kit, guest-driver
 * builds, the Debian guest image's parts, the setup test's root. Each entry is named by a hash of
 * its recipe (what goes in, not where it comes from) and is built once, under a lock, in a
 * temporary directory next to its final place that is renamed into place only once complete, so
 * a half-built entry is never used and a killed build leaves only a `.tmp-<pid>` that the next
 * build removes.
 */
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import * as fsp from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import { promisify } from 'node:util';
import { acquireLock, pidAlive, removeTree } from './locks.js';

const execFileP = promisify(execFile);

/** The cache directory (`$MDGPU_CACHE_DIR`, else `$XDG_CACHE_HOME/mdgpu`, else `~/.cache/mdgpu`). */
export function cacheDir(env: NodeJS.ProcessEnv = process.env): string {
  if (env.MDGPU_CACHE_DIR) return path.resolve(env.MDGPU_CACHE_DIR);
  if (env.XDG_CACHE_HOME) return path.resolve(env.XDG_CACHE_HOME, 'mdgpu');
  return path.join(env.HOME || os.homedir(), '.cache', 'mdgpu');
}

/** The first 12 hex digits of sha256 over a recipe's JSON: the name of its cache entry. */
export function recipeHashOf(recipe: unknown): string {
  return createHash('sha256').update(JSON.stringify(recipe)).digest('hex').slice(0, 12);
}

/** Remove `<final>.tmp-<pid>` leftovers of builds whose process is gone. */
export async function removeDeadBuilds(final: string, log: (line: string) => void): Promise<void> {
  const parent = path.dirname(final);
  const base = path.basename(final);
  for (const n of await fsp.readdir(parent).catch(() => [] as string[])) {
    const m = new RegExp(`^${base.replace(/[.+^${}()|[\]\\]/g, '\\$&')}\\.tmp-(\\d+)$`).exec(n);
    if (m && !pidAlive(Number(m[1]))) {
      log(`removing the half-built ${n} left by a dead build`);
      await removeTree(path.join(parent, n));
    }
  }
}

/** Bytes a tree uses on its file system (`du -sxb`). */
export async function treeSize(dir: string): Promise<number> {
  const { stdout } = await execFileP('du', ['-sxb', dir]);
  return Number.parseInt(stdout, 10);
}

export interface CachedEntry<T> {
  /** The entry's final directory. */
  final: string;
  /** What is being built, for the waiting message when another process holds the lock. */
  what: string;
  log: (line: string) => void;
  /** The complete entry at `dir`, or undefined. */
  load(dir: string): Promise<T | undefined>;
  /** Build the entry into `tmp` (which does not exist yet); throw to leave nothing behind. */
  build(tmp: string): Promise<void>;
}

/**
 * Return the entry, building it first if it is missing: under `<final>.lock`, after removing the
 * leftovers of dead builds, into `<final>.tmp-<pid>`, renamed into place when `build` returns.
 * Concurrent callers share one build.
 */
export async function ensureCached<T>(entry: CachedEntry<T>): Promise<T> {
  const existing = await entry.load(entry.final);
  if (existing !== undefined) return existing;
  await fsp.mkdir(path.dirname(entry.final), { recursive: true });
  const release = await acquireLock(`${entry.final}.lock`, entry.what, entry.log);
  try {
    const again = await entry.load(entry.final);
    if (again !== undefined) return again;
    await removeDeadBuilds(entry.final, entry.log);
    const tmp = `${entry.final}.tmp-${process.pid}`;
    await removeTree(tmp);
    try {
      await entry.build(tmp);
      await fsp.rename(tmp, entry.final);
    } catch (e) {
      await removeTree(tmp).catch(() => undefined);
      throw e;
    }
    const built = await entry.load(entry.final);
    if (built === undefined) throw new Error(`${entry.final} is incomplete after its build`);
    return built;
  } finally {
    await release();
  }
}
