/**
 * The TypeScript face of the native addon (`native/`, built to
 * `native/build/Release/mdgpu_native.node`): Linux syscalls Node lacks, one
 * primitive each, no policy.
 *
 * Conventions for every member:
 * - Sizes, offsets and lengths are in bytes and are JS numbers (safe integers).
 * - Bad arguments throw synchronously: `TypeError` (code `ERR_INVALID_ARG_TYPE`,
 *   or `ERR_MISSING_ARGS` for too few) or `RangeError` (code `ERR_OUT_OF_RANGE`),
 *   naming the function and the argument.
 * - A failed syscall throws a {@link NativeError} shaped like Node's own:
 *   `code: 'EAGAIN'`, `errno: -11`, `syscall: 'recvmsg'`,
 *   message `EAGAIN: resource temporarily unavailable, recvmsg`.
 * - Every fd the addon creates or receives is close-on-exec; sockets are
 *   non-blocking. Calls never block the event loop (except `connectUnix`, see there).
 * - An fd that a call returns is owned by the caller, who must `close` it.
 *
 * Code outside `src/native/` should take these functions through an injected
 * interface (the device model already does), so it runs without the addon.
 */
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** Result of {@link NativeBinding.recvmsg}. */
export interface RecvResult {
  /** Bytes read into the buffer; 0 means the peer closed the connection (EOF). */
  bytes: number;
  /** Fds received with these bytes (SCM_RIGHTS), owned by the caller from now on. */
  fds: number[];
  /**
   * The peer sent more fds than `maxFds` allowed (MSG_CTRUNC). The kernel closed the ones that
   * did not fit; those in `fds` still arrived and must still be closed by the caller.
   */
  truncated: boolean;
}

/** Readiness callback: `err` is a {@link NativeError} (syscall `uv_poll`), `events` a mask of POLL_* bits. */
export type PollCallback = (err: Error | null, events: number) => void;

/** A started {@link PollerClass} instance: libuv `uv_poll_t` on Node's event loop. */
export interface PollerInstance {
  /**
   * Watch for `events` (`POLL_READABLE | POLL_WRITABLE`, at least one); calling it again replaces
   * the mask. While started the poller keeps the event loop alive and cannot be collected.
   * Level-triggered: the callback fires on every loop turn while the fd stays ready.
   * Throws EBADF if the fd is already closed at the first start (later starts, which only change
   * the mask, skip that check), `ERR_INVALID_STATE` after `close()`.
   */
  start(events: number): void;
  /** Stop watching; no callbacks until `start` again. A no-op after `close()`. */
  stop(): void;
  /**
   * Release the handle (uv_close). Idempotent; no callback fires afterwards and the poller no
   * longer keeps the event loop alive. Does not close the fd: close the poller first, then the fd.
   * After an `err` callback, close the poller.
   */
  close(): void;
  /** Keep the event loop alive while started (the default; uv_ref). */
  ref(): void;
  /** Do not keep the event loop alive, though started (uv_unref: callbacks still fire while something else keeps it). */
  unref(): void;
}

/** The `Poller` constructor. Does not take ownership of `fd`; one poller per fd (a libuv rule). */
export interface PollerClass {
  /** Also sets O_NONBLOCK on `fd`. Throws EPERM (syscall `uv_poll_init`) for fds epoll cannot watch, such as regular files. */
  new (fd: number, callback: PollCallback): PollerInstance;
}

/** Exactly the exports of `mdgpu_native.node`. */
export interface NativeBinding {
  /**
   * socket + bind + listen: a non-blocking AF_UNIX stream listener on `path` (at most 107 bytes
   * in UTF-8, else ENAMETOOLONG). Does not unlink an existing file (EADDRINUSE). Returns the
   * listening fd, owned by the caller (who also unlinks `path` when done).
   */
  listenUnix(path: string, backlog: number): number;
  /** accept4: the next pending connection as a non-blocking fd owned by the caller; EAGAIN when none is pending. */
  accept(fd: number): number;
  /**
   * socket + connect to a Unix socket at `path`, then O_NONBLOCK. The connect is blocking (it
   * only waits while the listener's backlog is full): for test clients and tools, not servers.
   * Returns an fd owned by the caller.
   */
  connectUnix(path: string): number;
  /**
   * Whether a server accepts connections on the Unix socket at `path`, without ever waiting (a
   * non-blocking connect): true when the connect succeeds or the backlog is full (EAGAIN), false
   * for ECONNREFUSED (a stale socket file). Other errors throw (ENOENT, EACCES, ENOTSOCK...).
   */
  unixSocketListening(path: string): boolean;
  /** socketpair: two connected non-blocking AF_UNIX stream sockets, both owned by the caller. */
  socketpair(): [number, number];
  /**
   * One non-blocking recvmsg: at most `length` (≥ 1) bytes into `buf` at `offset`, plus up to
   * `maxFds` (0..253) fds passed with SCM_RIGHTS. Fds arrive with the read that includes the
   * first byte of the sendmsg that carried them.
   * EAGAIN (thrown) when nothing is ready; `bytes === 0` is EOF.
   */
  recvmsg(fd: number, buf: Uint8Array, offset: number, length: number, maxFds: number): RecvResult;
  /**
   * One non-blocking sendmsg of `data` with `fds` (0..253) as SCM_RIGHTS, MSG_NOSIGNAL (a closed
   * peer is EPIPE). Returns bytes sent, possibly fewer than `data.length`; the fds went with the
   * first byte, so do not resend them with the rest. The fds stay owned by the caller (the peer
   * gets duplicates). EAGAIN (thrown) when the socket buffer is full. Sending fds needs ≥ 1 byte.
   */
  sendmsg(fd: number, data: Uint8Array, fds: number[]): number;
  /**
   * {@link recvmsg} for per-message loops: no allocation and no exception when the socket is
   * empty. At most `length` (≥ 1) bytes into `buf` at `offset`; returns the byte count, 0 at EOF,
   * or {@link WOULD_BLOCK} (EAGAIN: nothing to read now). Fds and MSG_CTRUNC go into `fds`, an
   * Int32Array of 2 + maxFds elements (maxFds 0..253) that the caller allocates once:
   * `fds[0]` = number of fds received, `fds[1]` = 1 if more fds came than fit (MSG_CTRUNC; the
   * kernel closed those), `fds[2 .. 2 + fds[0])` = the fds, owned by the caller from now on.
   * Linux ends a read right after the part of a stream that carried fds: the fds belong to the
   * read's last bytes. Other failures throw like {@link recvmsg}. Pass buffers the caller keeps
   * (an Int32Array of ≤ 64 bytes lives on V8's heap until the addon first touches it).
   */
  recvmsgInto(fd: number, buf: Uint8Array, offset: number, length: number, fds: Int32Array): number;
  /**
   * {@link sendmsg} for per-message loops: sends `buf[offset, offset + length)` with `fds`
   * (usually `[]`), without an exception when the socket buffer is full: returns bytes sent
   * (possibly short; the fds went with the first byte) or {@link WOULD_BLOCK}. Other failures
   * throw like {@link sendmsg} (EPIPE for a closed peer).
   */
  sendmsgFrom(fd: number, buf: Uint8Array, offset: number, length: number, fds: readonly number[]): number;
  /** What {@link recvmsgInto} and {@link sendmsgFrom} return for EAGAIN: -1. */
  readonly WOULD_BLOCK: number;

  /** See {@link PollerClass}. */
  readonly Poller: PollerClass;
  /** Poller event bit: fd is readable (or at EOF / in error). */
  readonly POLL_READABLE: number;
  /** Poller event bit: fd is writable. */
  readonly POLL_WRITABLE: number;

  /** memfd_create with MFD_CLOEXEC always added (`flags` may add MFD_ALLOW_SEALING). Size 0; returns an fd owned by the caller. */
  memfdCreate(name: string, flags: number): number;
  /** Flag for {@link memfdCreate}: allow fcntl(F_ADD_SEALS). */
  readonly MFD_ALLOW_SEALING: number;
  /** ftruncate: set the file's size to `size` bytes. */
  ftruncate(fd: number, size: number): void;
  /**
   * fallocate(PUNCH_HOLE | KEEP_SIZE): `length` bytes at `offset` read as zeros from now on and
   * their pages are given back; the size is unchanged. Ranges need not be page aligned (partial
   * pages are zeroed). EOPNOTSUPP on files that cannot punch holes.
   */
  punchHole(fd: number, offset: number, length: number): void;
  /** fstat st_size, in bytes. */
  fstatSize(fd: number): number;

  /**
   * mmap MAP_SHARED of `length` bytes at `offset` (a multiple of the page size) of `fd`, as an
   * external ArrayBuffer over the mapping itself (no copy). `prot` is PROT_READ, PROT_WRITE or both.
   * The mapping does not own `fd` (it may be closed right after). Release it with {@link munmap};
   * the GC does not see mappings and only unmaps as a late fallback. JS cannot catch two faults,
   * which kill the process: writing to a mapping without PROT_WRITE (SIGSEGV) and touching pages
   * past the end of the file (SIGBUS); check {@link fstatSize} first.
   */
  mmap(fd: number, offset: number, length: number, prot: number): ArrayBuffer;
  /** Protection bit for {@link mmap}. */
  readonly PROT_READ: number;
  /** Protection bit for {@link mmap}. */
  readonly PROT_WRITE: number;
  /**
   * munmap a buffer returned by {@link mmap} and detach it, so it and every view on it read as
   * byteLength 0 afterwards. EINVAL (thrown, syscall `munmap`) for any other buffer, including
   * one already unmapped.
   */
  munmap(buffer: ArrayBuffer): void;
  /** Mappings made by {@link mmap} in this process and not yet unmapped (explicitly or by GC). */
  liveMappings(): number;

  /** eventfd with EFD_CLOEXEC | EFD_NONBLOCK always added (`flags` may add EFD_SEMAPHORE). Returns an fd owned by the caller. */
  eventfd(initval: number, flags: number): number;
  /** Flag for {@link eventfd}: each read returns 1 and decrements the counter by 1. */
  readonly EFD_SEMAPHORE: number;
  /** Add `value` (a safe integer or a bigint below 2^64 - 1) to the counter; EAGAIN if it would overflow. */
  eventfdWrite(fd: number, value: bigint | number): void;
  /** Read and reset the counter (or take 1, with EFD_SEMAPHORE); EAGAIN (thrown) when it is 0. */
  eventfdRead(fd: number): bigint;

  /** close. EINTR counts as success (Linux releases the fd anyway); EBADF throws. */
  close(fd: number): void;

  /**
   * prctl(PR_SET_PDEATHSIG, signal): the kernel sends `signal` to this process when its parent
   * dies (however it dies, SIGKILL included). Returns getppid() read afterwards: a parent that
   * died before the call has already handed the process to another (init), and no signal comes.
   */
  parentDeathSignal(signal: number): number;

  /**
   * Test-only: sizeof of the <linux/vfio.h> structs vfio-user reuses, keyed by struct name
   * (`vfio_region_info`), in bytes. Empty if the header was missing at build time.
   */
  sizeofs(): Record<string, number>;
  /** Test-only: offsetof of every field, keyed `struct.field` (`vfio_region_info.cap_offset`), in bytes. */
  offsetofs(): Record<string, number>;

  /**
   * sd_notify(3): send `state` (e.g. `READY=1`) in one datagram to the AF_UNIX socket at
   * `socketPath` (`NOTIFY_SOCKET`: a path, or `@name` in the abstract namespace).
   */
  sdNotify(socketPath: string, state: string): void;
  /**
   * Take an inherited socket (sd_listen_fds(3)): mark it close-on-exec, then say what it is.
   * ENOTSOCK for an fd that is not a socket, EBADF for one that is not open.
   */
  adoptSocket(fd: number): SocketInfo;
}

/** What {@link NativeBinding.adoptSocket} found. */
export interface SocketInfo {
  domain: 'unix' | 'inet' | 'inet6' | 'other';
  type: 'stream' | 'dgram' | 'seqpacket' | 'other';
  /** listen(2) was called on it (SO_ACCEPTCONN). */
  listening: boolean;
  /** The bound path of a Unix socket (`@name`: abstract; empty: unnamed or not Unix). */
  path: string;
}

/** An Error thrown by a failed syscall in the addon, shaped like Node's fs and net errors. */
export interface NativeError extends Error {
  /** errno name, e.g. `EAGAIN`. */
  code: string;
  /** Negative errno, e.g. -11 (as in Node). */
  errno: number;
  /** The syscall that failed, e.g. `recvmsg`. */
  syscall: string;
  /** The path, for bind and connect. */
  path?: string;
}

/** Whether `err` is a syscall error from the addon (or Node), optionally with errno name `code`. */
export function isErrno(err: unknown, code?: string): err is NativeError {
  if (!(err instanceof Error)) return false;
  const e = err as Partial<NativeError>;
  return typeof e.code === 'string' && typeof e.errno === 'number' && typeof e.syscall === 'string' && (code === undefined || e.code === code);
}

/** Every export of the addon; a build missing one is stale. */
const EXPORTS: readonly (keyof NativeBinding)[] = [
  'listenUnix',
  'accept',
  'connectUnix',
  'unixSocketListening',
  'socketpair',
  'recvmsg',
  'sendmsg',
  'recvmsgInto',
  'sendmsgFrom',
  'WOULD_BLOCK',
  'Poller',
  'POLL_READABLE',
  'POLL_WRITABLE',
  'memfdCreate',
  'MFD_ALLOW_SEALING',
  'ftruncate',
  'punchHole',
  'fstatSize',
  'mmap',
  'PROT_READ',
  'PROT_WRITE',
  'munmap',
  'liveMappings',
  'eventfd',
  'EFD_SEMAPHORE',
  'eventfdWrite',
  'eventfdRead',
  'close',
  'parentDeathSignal',
  'sizeofs',
  'offsetofs',
  'sdNotify',
  'adoptSocket',
];

/** The addon's path relative to the package root. */
export const ADDON_PATH = 'native/build/Release/mdgpu_native.node';

/** The nearest directory at or above `from` that holds a package.json. */
export function findPackageRoot(from: string): string {
  for (let dir = from; ; dir = dirname(dir)) {
    if (existsSync(join(dir, 'package.json'))) return dir;
    if (dirname(dir) === dir) throw new Error(`No package.json at or above ${from}`);
  }
}

function buildHint(root: string): string {
  return `run \`npm install\` (or \`npx node-gyp rebuild --directory native\`) in ${root}`;
}

/**
 * Load the addon at `file` (uncached). Throws an Error saying how to build it if the file is
 * missing, fails to load, or lacks an export (a stale build).
 */
export function loadNativeFrom(file: string): NativeBinding {
  const root = findPackageRoot(dirname(file));
  if (!existsSync(file)) {
    throw new Error(`mdgpu native addon not built: ${file} is missing; ${buildHint(root)}`);
  }
  let binding: Partial<NativeBinding>;
  try {
    binding = createRequire(import.meta.url)(file) as Partial<NativeBinding>;
  } catch (cause) {
    throw new Error(`mdgpu native addon failed to load from ${file}; ${buildHint(root)}`, { cause });
  }
  const missing = EXPORTS.filter((name) => binding[name] === undefined);
  if (missing.length > 0) {
    throw new Error(`mdgpu native addon at ${file} is stale (missing ${missing.join(', ')}); ${buildHint(root)}`);
  }
  return binding as NativeBinding;
}

let cached: NativeBinding | undefined;

/** The addon from this package's `native/build/Release/`, loaded once. */
export function loadNative(): NativeBinding {
  if (cached === undefined) {
    const root = findPackageRoot(dirname(fileURLToPath(import.meta.url)));
    cached = loadNativeFrom(join(root, ADDON_PATH));
  }
  return cached;
}
