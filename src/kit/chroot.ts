/**
 * Running commands in a chroot of a Debian tree (the kit, a guest root), with the mounts they
 * need and nothing left mounted afterwards: the kit's guest-driver packages and the guest root's
 * DKMS build run this way (src/guest/packages.ts, src/guest/rootfs.ts). Needs root.
 */
import { execFile, spawn } from 'node:child_process';
import * as fsp from 'node:fs/promises';
import { promisify } from 'node:util';

const execFileP = promisify(execFile);

/** The environment of a chroot command: the tree's, not the host's (npm sets MAKEFLAGS and friends). */
export const CHROOT_ENV: Readonly<Record<string, string>> = {
  PATH: '/usr/sbin:/usr/bin:/sbin:/bin',
  HOME: '/root',
  LC_ALL: 'C.UTF-8',
  DEBIAN_FRONTEND: 'noninteractive',
};

export interface ChrootRunOptions {
  /** Progress lines (the command is logged; its output only when it fails). */
  log?: (line: string) => void;
  /** Added to {@link CHROOT_ENV}. */
  env?: Record<string, string>;
  /** Log prefix (default `[chroot]`). */
  tag?: string;
}

/** Run `command` with /bin/sh in a chroot of `root`, in `cwd`; resolve with its output, reject with it when it fails. */
export function runInChroot(root: string, cwd: string, command: string, opts: ChrootRunOptions = {}): Promise<string> {
  const tag = opts.tag ?? '[chroot]';
  opts.log?.(`${tag ? `${tag} ` : ''}chroot ${root} (cd ${cwd} && ${command})`);
  return new Promise((resolve, reject) => {
    const child = spawn('chroot', [root, '/bin/sh', '-c', `cd '${cwd}' && ${command}`], {
      env: { ...CHROOT_ENV, ...opts.env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let output = '';
    const collect = (chunk: Buffer) => {
      output += chunk.toString();
      if (output.length > 1 << 20) output = output.slice(-(1 << 19));
    };
    child.stdout.on('data', collect);
    child.stderr.on('data', collect);
    child.on('error', (e) => reject(new Error(`chroot failed to start: ${e.message}`)));
    child.on('close', (code, signal) => {
      if (code === 0) resolve(output);
      else reject(new Error(`In the chroot ${root}, \`${command}\` failed (${signal ?? `exit ${code}`}):\n${output.trim()}`));
    });
  });
}

/** Whether `dir` is a mount point (from /proc/self/mountinfo). */
export async function isMountPoint(dir: string): Promise<boolean> {
  const text = await fsp.readFile('/proc/self/mountinfo', 'utf8').catch(() => '');
  return text.split('\n').some((l) => l.split(' ')[4]?.replace(/\\040/g, ' ') === dir);
}

/** `mount args…`, logged. */
export async function mount(args: string[], log?: (l: string) => void): Promise<void> {
  log?.(`mount ${args.join(' ')}`);
  await execFileP('mount', args);
}

/** Unmount `dir`; detach it (`-l`) when it is busy (a compiler still exiting) rather than leave it behind. */
export async function unmount(dir: string, log?: (l: string) => void): Promise<void> {
  log?.(`umount ${dir}`);
  try {
    await execFileP('umount', [dir]);
  } catch (e) {
    log?.(`umount ${dir} failed (${(e as Error).message.trim()}); detaching it`);
    await execFileP('umount', ['-l', dir]);
  }
}

/**
 * Run `fn` with `mounts` in place (each `[target, ...mount args]`, mounted in order), then
 * unmount them in reverse order whatever happens.
 */
export async function withMounts<T>(mounts: { target: string; args: string[] }[], fn: () => Promise<T>, log?: (l: string) => void): Promise<T> {
  const done: string[] = [];
  try {
    for (const m of mounts) {
      await mount([...m.args, m.target], log);
      done.push(m.target);
    }
    return await fn();
  } finally {
    for (const target of done.reverse()) await unmount(target, log);
  }
}
