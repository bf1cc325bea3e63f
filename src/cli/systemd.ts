/**
 * systemd's side of `mdgpu serve`: socket activation (sd_listen_fds(3): the vfio-user sockets
 * and the control socket arrive as fds 3, 4, … named by `FileDescriptorName=` of their socket
 * units) and readiness (sd_notify(3): `READY=1` once every vGPU accepts connections,
 * `STOPPING=1` on SIGTERM). Both work the same under `systemd-socket-activate`, which is how
 * they are tested (test/deploy/systemd.test.ts). Outside systemd, none of the variables is set
 * and nothing here does anything.
 */
import * as fs from 'node:fs';
import type { NativeBinding } from '../native/binding.js';

/** The first fd systemd passes (SD_LISTEN_FDS_START). */
export const LISTEN_FDS_START = 3;

/** Where contrib/systemd/mdgpu-control.socket puts the control socket (`mdgpu status` looks there too). */
export const SYSTEMD_CONTROL_SOCKET = '/run/mdgpu/control.sock';

/** The name of the control socket's fd (`FileDescriptorName=control`); no vGPU may have it. */
export const CONTROL_FD_NAME = 'control';

/** One socket handed over by systemd. */
export interface ListenFd {
  fd: number;
  /** `FileDescriptorName=` of its socket unit (systemd's default is the unit's name, e.g. `mdgpu-vgpu@vm1.socket`). */
  name: string;
  /** The path it is bound to. */
  path: string;
}

/**
 * The sockets systemd passed to this process, taken: checked to be listening Unix stream sockets,
 * made close-on-exec, and the variables removed from the environment (as sd_listen_fds(1) does)
 * so that no child takes them for its own. Empty when the process was not socket-activated
 * (no `LISTEN_FDS`, or `LISTEN_PID` names another process: the variables were inherited).
 */
export function takeListenFds(native: Pick<NativeBinding, 'adoptSocket'>, env: NodeJS.ProcessEnv = process.env, pid: number = process.pid): ListenFd[] {
  const count = env.LISTEN_FDS;
  const forPid = env.LISTEN_PID;
  const names = env.LISTEN_FDNAMES;
  delete env.LISTEN_FDS;
  delete env.LISTEN_PID;
  delete env.LISTEN_FDNAMES;
  if (count === undefined || forPid === undefined || Number(forPid) !== pid) return [];
  const n = Number(count);
  if (!Number.isInteger(n) || n < 0 || n > 1024) throw new Error(`LISTEN_FDS=${count}: not a count of sockets`);
  const fdNames = names === undefined ? [] : names.split(':');
  const out: ListenFd[] = [];
  for (let i = 0; i < n; i++) {
    const fd = LISTEN_FDS_START + i;
    // systemd names an fd after its socket unit unless FileDescriptorName= says otherwise.
    const name = fdNames[i] ?? 'unknown';
    const info = native.adoptSocket(fd);
    if (info.domain !== 'unix' || info.type !== 'stream' || !info.listening) {
      throw new Error(
        `socket-activated fd ${fd} (${name}) is a ${info.listening ? 'listening' : 'non-listening'} ${info.domain} ${info.type} socket; ` +
          'mdgpu takes listening Unix stream sockets (ListenStream=/path in the socket unit, Accept=no)',
      );
    }
    out.push({ fd, name, path: info.path });
  }
  return out;
}

/** The path of `NOTIFY_SOCKET`, or null when the service manager does not want notifications. */
export function notifySocket(env: NodeJS.ProcessEnv = process.env): string | null {
  const path = env.NOTIFY_SOCKET;
  return path !== undefined && (path.startsWith('/') || path.startsWith('@')) ? path : null;
}

/**
 * Tells the service manager about this process's state (`READY=1`, `STOPPING=1`, `STATUS=…`),
 * when it asked (`NOTIFY_SOCKET`); a no-op otherwise. Errors are returned, not thrown: a
 * service manager that went away must not take the daemon with it.
 */
export function sdNotify(native: Pick<NativeBinding, 'sdNotify'>, state: Record<string, string | number>, env: NodeJS.ProcessEnv = process.env): Error | null {
  const path = notifySocket(env);
  if (path === null) return null;
  const text = Object.entries(state)
    .map(([k, v]) => `${k}=${String(v).replace(/\n/g, ' ')}`)
    .join('\n');
  try {
    native.sdNotify(path, text);
    return null;
  } catch (err) {
    return err as Error;
  }
}

/**
 * Whether stderr is connected to systemd-journald (`JOURNAL_STREAM` names its device and
 * inode): then a line may start with a syslog priority, `<4>` for a warning, which journald
 * turns into the entry's PRIORITY (sd-daemon(3)).
 */
export function stderrIsJournal(env: NodeJS.ProcessEnv = process.env): boolean {
  const stream = env.JOURNAL_STREAM;
  if (stream === undefined) return false;
  const [dev, ino] = stream.split(':');
  try {
    const st = fs.fstatSync(2);
    return String(st.dev) === dev && String(st.ino) === ino;
  } catch {
    return false;
  }
}
