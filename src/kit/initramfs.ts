/**
 * A newc ("070701") cpio writer for Linux initramfs images, in TypeScript, so no `cpio`
 * binary is needed at run time, plus a helper that packs a busybox guest from the kit.
 *
 * newc layout (linux `Documentation/driver-api/early-userspace/buffer-format.rst`): every
 * member is a 110-byte ASCII header (magic `070701` then 13 eight-digit hex fields), the
 * NUL-terminated name padded to a multiple of 4 (counting the header), then the data padded
 * to a multiple of 4. The archive ends with a member named `TRAILER!!!`. Names carry no
 * leading `/`. The kernel unpacks members in order, so parent directories come first.
 */
import { execFile } from 'node:child_process';
import * as fsp from 'node:fs/promises';
import { promisify } from 'node:util';
import { gzipSync } from 'node:zlib';
import type { Kit } from './kit-tree.js';

const execFileP = promisify(execFile);

/** File type bits of `st_mode`. */
export const S_IFMT = 0o170000;
export const S_IFDIR = 0o040000;
export const S_IFREG = 0o100000;
export const S_IFLNK = 0o120000;
export const S_IFCHR = 0o020000;
export const S_IFBLK = 0o060000;

/** One member of the archive. Paths may be given with or without a leading `/`. */
export type InitramfsEntry =
  | { type: 'dir'; path: string; mode?: number }
  | { type: 'file'; path: string; data: Buffer | Uint8Array | string; mode?: number }
  | { type: 'symlink'; path: string; target: string }
  | { type: 'chardev' | 'blockdev'; path: string; major: number; minor: number; mode?: number };

export const NEWC_MAGIC = '070701';
export const NEWC_HEADER_SIZE = 110;
export const NEWC_TRAILER = 'TRAILER!!!';

function normalise(p: string): string {
  const parts = p.split('/').filter((x) => x !== '' && x !== '.');
  if (parts.some((x) => x === '..')) throw new Error(`Invalid initramfs path: ${p}`);
  return parts.join('/');
}

function hex8(n: number): string {
  if (!Number.isInteger(n) || n < 0 || n > 0xffffffff) throw new RangeError(`Value out of range for a newc field: ${n}`);
  return n.toString(16).padStart(8, '0');
}

const pad4 = (n: number) => (4 - (n % 4)) % 4;

interface Member {
  name: string;
  mode: number;
  data: Buffer;
  rdevMajor: number;
  rdevMinor: number;
  nlink: number;
}

function header(m: Member, ino: number): Buffer {
  const fields = [
    ino,
    m.mode,
    0, // uid
    0, // gid
    m.nlink,
    0, // mtime: fixed, so images are reproducible
    m.data.length,
    0, // devmajor
    0, // devminor
    m.rdevMajor,
    m.rdevMinor,
    Buffer.byteLength(m.name) + 1,
    0, // check
  ];
  return Buffer.from(NEWC_MAGIC + fields.map(hex8).join(''), 'ascii');
}

function toMember(e: InitramfsEntry, name: string): Member {
  switch (e.type) {
    case 'dir':
      return { name, mode: S_IFDIR | (e.mode ?? 0o755), data: Buffer.alloc(0), rdevMajor: 0, rdevMinor: 0, nlink: 2 };
    case 'file': {
      const data = typeof e.data === 'string' ? Buffer.from(e.data) : Buffer.from(e.data.buffer, e.data.byteOffset, e.data.byteLength);
      return { name, mode: S_IFREG | (e.mode ?? 0o644), data, rdevMajor: 0, rdevMinor: 0, nlink: 1 };
    }
    case 'symlink':
      return { name, mode: S_IFLNK | 0o777, data: Buffer.from(e.target), rdevMajor: 0, rdevMinor: 0, nlink: 1 };
    case 'chardev':
    case 'blockdev':
      return {
        name,
        mode: (e.type === 'chardev' ? S_IFCHR : S_IFBLK) | (e.mode ?? 0o600),
        data: Buffer.alloc(0),
        rdevMajor: e.major,
        rdevMinor: e.minor,
        nlink: 1,
      };
  }
}

/**
 * The uncompressed newc archive of `entries`, in order. Missing parent directories are
 * added (mode 0755) just before their first child; a path given twice is an error.
 */
export function buildCpio(entries: InitramfsEntry[]): Buffer {
  const seen = new Map<string, InitramfsEntry['type']>();
  const members: Member[] = [];
  for (const e of entries) {
    const name = normalise(e.path);
    if (name === '') throw new Error('Invalid initramfs path: the root needs no entry');
    const parts = name.split('/');
    for (let i = 1; i < parts.length; i++) {
      const dir = parts.slice(0, i).join('/');
      const t = seen.get(dir);
      if (t === undefined) {
        seen.set(dir, 'dir');
        members.push(toMember({ type: 'dir', path: dir }, dir));
      } else if (t !== 'dir') {
        throw new Error(`Initramfs path ${name} is below ${dir}, which is not a directory`);
      }
    }
    if (seen.has(name)) throw new Error(`Duplicate initramfs path: ${name}`);
    seen.set(name, e.type);
    members.push(toMember(e, name));
  }
  members.push({ name: NEWC_TRAILER, mode: 0, data: Buffer.alloc(0), rdevMajor: 0, rdevMinor: 0, nlink: 1 });
  const chunks: Buffer[] = [];
  let offset = 0;
  const push = (b: Buffer) => {
    chunks.push(b);
    offset += b.length;
  };
  members.forEach((m, i) => {
    const isTrailer = i === members.length - 1;
    push(header(m, isTrailer ? 0 : i + 1));
    push(Buffer.from(`${m.name}\0`));
    push(Buffer.alloc(pad4(offset)));
    push(m.data);
    push(Buffer.alloc(pad4(offset)));
  });
  return Buffer.concat(chunks);
}

/** The gzip-compressed newc archive of `entries` (what `-initrd` takes). */
export function buildInitramfs(entries: InitramfsEntry[], opts: { level?: number } = {}): Buffer {
  return gzipSync(buildCpio(entries), { level: opts.level ?? 6 });
}

/**
 * Start of an init script: PATH, /proc, /sys, devtmpfs on /dev. `set -u` is not used so
 * the body can probe optional things freely.
 */
export const INIT_PRELUDE = `#!/bin/sh
export PATH=/bin:/sbin:/usr/bin:/usr/sbin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev 2>/dev/null
mkdir -p /dev/pts /tmp
mount -t tmpfs tmpfs /tmp
`;

/** End of an init script: flush and power off at once (`-f`: no init system to ask). */
export const INIT_POWEROFF = `sync
poweroff -f
`;

/**
 * A complete /init: the prelude, `MARKER-BEGIN`, `body`, `MARKER-END rc=<status of body>`,
 * then power off. The body runs in a subshell, so `exit` in it still powers off.
 */
export function initScript(body: string, opts: { marker?: string } = {}): string {
  const marker = opts.marker ?? 'MDGPU-INIT';
  return `${INIT_PRELUDE}echo ${marker}-BEGIN
(
${body}
)
echo "${marker}-END rc=$?"
${INIT_POWEROFF}`;
}

/** A file to add to a guest initramfs, from memory or from the host. */
export interface GuestFile {
  path: string;
  data?: Buffer | Uint8Array | string;
  hostPath?: string;
  mode?: number;
}

export interface GuestInitramfsOptions {
  /** The /init shell script text (see {@link initScript}). */
  init: string;
  files?: GuestFile[];
  /** Applets to link in /bin (default: all that the kit's busybox has). */
  applets?: string[];
}

const appletCache = new Map<string, string[]>();

/** The applets a (static, host-runnable) busybox binary provides. */
export async function busyboxApplets(busybox: string): Promise<string[]> {
  let list = appletCache.get(busybox);
  if (!list) {
    const { stdout } = await execFileP(busybox, ['--list']);
    list = stdout
      .split('\n')
      .map((s) => s.trim())
      .filter((s) => /^[\w.[-]+$/.test(s) && s !== 'busybox');
    appletCache.set(busybox, list);
  }
  return list;
}

/** Base entries every guest needs: the root hierarchy and device nodes for an early console. */
export function baseEntries(): InitramfsEntry[] {
  return [
    ...['bin', 'sbin', 'usr', 'usr/bin', 'usr/sbin', 'etc', 'proc', 'sys', 'tmp', 'root', 'lib', 'lib/modules', 'mnt'].map(
      (p): InitramfsEntry => ({ type: 'dir', path: p }),
    ),
    { type: 'dir', path: 'dev' },
    { type: 'chardev', path: 'dev/console', major: 5, minor: 1, mode: 0o600 },
    { type: 'chardev', path: 'dev/null', major: 1, minor: 3, mode: 0o666 },
    { type: 'chardev', path: 'dev/ttyS0', major: 4, minor: 64, mode: 0o600 },
  ];
}

/**
 * A gzip newc initramfs for a kit guest: busybox-static as /bin/busybox with a symlink per
 * applet in /bin, the given /init, mount points, /dev/console, and `files`.
 */
export async function guestInitramfs(kit: Pick<Kit, 'busybox'>, opts: GuestInitramfsOptions): Promise<Buffer> {
  const entries = baseEntries();
  const extra = new Set((opts.files ?? []).map((f) => normalise(f.path)));
  entries.push({ type: 'file', path: 'bin/busybox', data: await fsp.readFile(kit.busybox), mode: 0o755 });
  for (const a of opts.applets ?? (await busyboxApplets(kit.busybox))) {
    if (!extra.has(`bin/${a}`)) entries.push({ type: 'symlink', path: `bin/${a}`, target: 'busybox' });
  }
  entries.push({ type: 'file', path: 'init', data: opts.init, mode: 0o755 });
  const have = new Set(entries.map((e) => normalise(e.path)));
  for (const f of opts.files ?? []) {
    let data: Buffer | Uint8Array | string;
    if (f.data !== undefined) data = f.data;
    else if (f.hostPath !== undefined) data = await fsp.readFile(f.hostPath);
    else throw new Error(`Guest file ${f.path} has neither data nor hostPath`);
    const mode = f.mode ?? (f.hostPath !== undefined ? (await fsp.stat(f.hostPath)).mode & 0o7777 : 0o644);
    const name = normalise(f.path);
    if (have.has(name)) {
      const i = entries.findIndex((e) => normalise(e.path) === name);
      entries.splice(i, 1);
    }
    entries.push({ type: 'file', path: name, data, mode });
    have.add(name);
  }
  return buildInitramfs(entries);
}
