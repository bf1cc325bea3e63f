/**
 * Sharing the cache between processes: a lock file per entry being built (tap runs test files in
 * parallel, and several checkouts share one cache), and removing trees that a killed build may
 * have left with /proc, /sys or /dev still mounted inside.
 */
import { execFile } from 'node:child_process';
import * as fsp from 'node:fs/promises';
import { promisify } from 'node:util';

const execFileP = promisify(execFile);

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
 * Shared by every cached build: the kit, the guest driver and its packages, the Debian guest image.
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
