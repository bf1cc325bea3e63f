/**
 * Unix socket files for the daemon's listeners (the vfio-user sockets and the control socket):
 * who may connect, and what to do with a file already at the path.
 *
 * A socket file's permissions decide who can connect: anyone who can write to it may speak
 * vfio-user to a vGPU (and attack it) or read the daemon's status. So the file is created 0600
 * whatever the umask (bound under a temporary umask of 0177, so no other user can connect between
 * bind and a chmod), then given the configured group and mode (e.g. QEMU's group, 0660).
 *
 * A socket at the path is probed first: if a server accepts connections there, starting another
 * one would silently take its clients, so it is refused; a stale socket (connection refused) is
 * removed; any other kind of file is left alone and refused.
 */
import * as fs from 'node:fs';

/** Only the daemon's user may connect. */
export const DEFAULT_SOCKET_MODE = 0o600;

export interface SocketFileOptions {
  /** Permission bits of the socket file (default {@link DEFAULT_SOCKET_MODE}). */
  mode?: number;
  /** Group id to own the socket file (default: the daemon's), e.g. the group QEMU runs in. */
  group?: number;
}

/** Whether a server accepts connections at a path (the native addon's `unixSocketListening`). */
export type ListenerProbe = (path: string) => boolean;

/**
 * Make `path` free for a new listener: throw if a server is listening there or a non-socket file
 * is in the way; remove a stale socket file.
 */
export function claimSocketPath(path: string, isListening: ListenerProbe): void {
  let stat: fs.Stats;
  try {
    stat = fs.lstatSync(path);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return;
    throw err;
  }
  if (!stat.isSocket()) throw new Error(`${path} exists and is not a socket; not removing it`);
  if (isListening(path)) throw new Error(`${path}: another server is already listening there`);
  fs.unlinkSync(path);
}

/**
 * Create a socket file with `bind` (which must create it synchronously: `listenUnix`, or a
 * `net.Server`'s `listen(path)`), readable and writable by the owner only while it appears, then
 * give it the requested group and mode.
 */
export function createSocketFile<T>(path: string, options: SocketFileOptions, bind: () => T): T {
  const mode = options.mode ?? DEFAULT_SOCKET_MODE;
  if (!Number.isInteger(mode) || mode < 0 || mode > 0o777) throw new RangeError(`Invalid socket mode: ${mode}`);
  const previous = process.umask(0o177);
  let result: T;
  try {
    result = bind();
  } finally {
    process.umask(previous);
  }
  // Widen only after the group is set, so no one outside it can connect in between.
  if (options.group !== undefined) fs.lchownSync(path, -1, options.group);
  if (mode !== DEFAULT_SOCKET_MODE) fs.chmodSync(path, mode);
  return result;
}
