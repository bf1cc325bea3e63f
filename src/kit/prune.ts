/**
 * `mdgpu kit --prune`: the cache keeps every kit (~630 MB), guest-driver build (~4 MB) and Debian
 * guest image part (base root ~1.3 GB, packages and layer a few MB) ever made, one per recipe or
 * source hash; this removes all but the ones in use now. Nothing is
 * removed while a build holds a lock in the cache (another mdgpu may be using an older kit).
 */
import * as fs from 'node:fs';
import * as fsp from 'node:fs/promises';
import * as path from 'node:path';
import { pidAlive, removeTree } from './locks.js';

/**
 * What the cache holds: kits, guest-driver builds, the Debian guest image's parts (base roots,
 * guest packages, layers: src/guest/rootfs.ts), their side files and leftovers of killed builds.
 */
export const CACHE_ENTRY = /^(kit|guest|guestroot|guestdebs|guestlayer)-[0-9a-f]+($|\.|-)/;

export interface PruneResult {
  removed: string[];
  kept: string[];
  freedBytes: number;
}

async function sizeOf(p: string): Promise<number> {
  const st = await fsp.lstat(p);
  if (!st.isDirectory()) return st.size;
  let total = 0;
  for (const e of await fsp.readdir(p)) total += await sizeOf(path.join(p, e)).catch(() => 0);
  return total;
}

/** Lock files in `dir` whose holder (the pid they contain) still runs. */
export function liveLocks(dir: string): string[] {
  const live: string[] = [];
  for (const name of fs.readdirSync(dir)) {
    if (!name.endsWith('.lock')) continue;
    const pid = Number(fs.readFileSync(path.join(dir, name), 'utf8').trim());
    if (Number.isInteger(pid) && pid > 0 && pidAlive(pid)) live.push(name);
  }
  return live;
}

/**
 * Remove every cache entry of `dir` not named in `keep` (or derived from one: `<keep>.…`).
 * Throws, removing nothing, while a live build holds a lock there.
 */
export async function pruneCache(dir: string, keep: readonly string[]): Promise<PruneResult> {
  if (!fs.existsSync(dir)) return { removed: [], kept: [], freedBytes: 0 };
  const locks = liveLocks(dir);
  if (locks.length > 0) throw new Error(`A build is running in ${dir} (${locks.join(', ')}); prune when it is done`);
  const removed: string[] = [];
  const kept: string[] = [];
  let freedBytes = 0;
  for (const name of fs.readdirSync(dir).sort()) {
    if (!CACHE_ENTRY.test(name)) continue;
    if (keep.some((k) => name === k || name.startsWith(`${k}.`))) {
      kept.push(name);
      continue;
    }
    const p = path.join(dir, name);
    freedBytes += await sizeOf(p).catch(() => 0);
    await removeTree(p);
    removed.push(name);
  }
  return { removed, kept, freedBytes };
}
