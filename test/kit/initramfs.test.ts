import t from 'tap';
import * as fsp from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import { gunzipSync } from 'node:zlib';
import {
  buildCpio,
  buildInitramfs,
  guestInitramfs,
  initScript,
  NEWC_HEADER_SIZE,
  NEWC_MAGIC,
  NEWC_TRAILER,
  S_IFBLK,
  S_IFCHR,
  S_IFDIR,
  S_IFLNK,
  S_IFMT,
  S_IFREG,
} from '../../src/kit/initramfs.js';

/** One member as read back by the test's own newc reader. */
interface Read {
  name: string;
  ino: number;
  mode: number;
  nlink: number;
  size: number;
  rdevMajor: number;
  rdevMinor: number;
  data: Buffer;
  headerOffset: number;
  dataOffset: number;
}

/** A strict newc reader written independently of the writer (kernel buffer-format.rst). */
function readNewc(buf: Buffer): Read[] {
  const out: Read[] = [];
  let off = 0;
  for (;;) {
    if (off + NEWC_HEADER_SIZE > buf.length) throw new Error(`Truncated header at ${off}`);
    if (off % 4 !== 0) throw new Error(`Header not 4-aligned at ${off}`);
    const h = buf.subarray(off, off + NEWC_HEADER_SIZE).toString('ascii');
    if (h.slice(0, 6) !== '070701') throw new Error(`Bad magic at ${off}: ${h.slice(0, 6)}`);
    const f = (i: number) => {
      const s = h.slice(6 + 8 * i, 14 + 8 * i);
      if (!/^[0-9a-f]{8}$/.test(s)) throw new Error(`Bad field ${i} at ${off}: ${s}`);
      return Number.parseInt(s, 16);
    };
    const namesize = f(11);
    const size = f(6);
    const nameStart = off + NEWC_HEADER_SIZE;
    const name = buf.subarray(nameStart, nameStart + namesize - 1).toString();
    if (buf[nameStart + namesize - 1] !== 0) throw new Error(`Name of ${name} not NUL-terminated`);
    const dataOffset = Math.ceil((nameStart + namesize) / 4) * 4;
    for (let i = nameStart + namesize; i < dataOffset; i++) if (buf[i] !== 0) throw new Error(`Non-zero name padding for ${name}`);
    const end = dataOffset + size;
    const next = Math.ceil(end / 4) * 4;
    for (let i = end; i < next; i++) if (buf[i] !== 0) throw new Error(`Non-zero data padding for ${name}`);
    out.push({
      name,
      ino: f(0),
      mode: f(1),
      nlink: f(4),
      size,
      rdevMajor: f(9),
      rdevMinor: f(10),
      data: buf.subarray(dataOffset, end),
      headerOffset: off,
      dataOffset,
    });
    if (f(12) !== 0) throw new Error('Check field must be 0 for newc');
    off = next;
    if (name === 'TRAILER!!!') break;
  }
  if (off !== buf.length) throw new Error(`Trailing bytes after the trailer: ${buf.length - off}`);
  return out;
}

t.test('newc round trip: names, modes, sizes, contents, trailer, alignment', async (t) => {
  const binary = Buffer.from(Array.from({ length: 1027 }, (_, i) => (i * 7) & 0xff));
  const entries = [
    { type: 'dir' as const, path: '/bin' },
    { type: 'file' as const, path: '/bin/tool', data: binary, mode: 0o755 },
    { type: 'symlink' as const, path: 'bin/sh', target: 'busybox' },
    { type: 'chardev' as const, path: '/dev/console', major: 5, minor: 1 },
    { type: 'blockdev' as const, path: 'dev/vda', major: 254, minor: 0, mode: 0o660 },
    { type: 'file' as const, path: 'etc/deep/nested/x', data: 'a', mode: 0o600 },
    { type: 'file' as const, path: 'empty', data: '' },
    { type: 'file' as const, path: 'u8', data: new Uint8Array([1, 2, 3]) },
  ];
  const cpio = buildCpio(entries);
  const got = readNewc(cpio);
  t.same(
    got.map((m) => m.name),
    ['bin', 'bin/tool', 'bin/sh', 'dev', 'dev/console', 'dev/vda', 'etc', 'etc/deep', 'etc/deep/nested', 'etc/deep/nested/x', 'empty', 'u8', NEWC_TRAILER],
    'members in order, missing parents inserted before their children',
  );
  const by = new Map(got.map((m) => [m.name, m]));
  t.equal(by.get('bin')!.mode, S_IFDIR | 0o755);
  t.equal(by.get('bin/tool')!.mode, S_IFREG | 0o755);
  t.equal(by.get('bin/tool')!.size, 1027);
  t.ok(by.get('bin/tool')!.data.equals(binary), 'binary content intact');
  t.equal(by.get('bin/sh')!.mode, S_IFLNK | 0o777);
  t.equal(by.get('bin/sh')!.data.toString(), 'busybox', 'symlink target is the data');
  t.equal(by.get('dev/console')!.mode & S_IFMT, S_IFCHR);
  t.equal(by.get('dev/console')!.mode & 0o7777, 0o600);
  t.same([by.get('dev/console')!.rdevMajor, by.get('dev/console')!.rdevMinor], [5, 1]);
  t.equal(by.get('dev/vda')!.mode, S_IFBLK | 0o660);
  t.equal(by.get('etc/deep')!.mode, S_IFDIR | 0o755, 'implicit parent is a 0755 directory');
  t.equal(by.get('etc/deep/nested/x')!.mode, S_IFREG | 0o600);
  t.equal(by.get('etc/deep/nested/x')!.data.toString(), 'a');
  t.equal(by.get('empty')!.size, 0);
  t.same([...by.get('u8')!.data], [1, 2, 3]);
  const trailer = by.get(NEWC_TRAILER)!;
  t.equal(trailer.size, 0);
  t.equal(trailer.ino, 0);
  t.equal(cpio.length % 4, 0, 'archive length is a multiple of 4');
  for (const m of got) {
    t.equal(m.headerOffset % 4, 0, `${m.name} header aligned`);
    t.equal(m.dataOffset % 4, 0, `${m.name} data aligned`);
  }
  const inos = got.filter((m) => m.name !== NEWC_TRAILER).map((m) => m.ino);
  t.equal(new Set(inos).size, inos.length, 'inode numbers are unique');
  t.equal(cpio.subarray(0, 6).toString(), NEWC_MAGIC);
  t.ok(buildCpio(entries).equals(cpio), 'reproducible (fixed mtime)');

  const gz = buildInitramfs(entries);
  t.same([gz[0], gz[1]], [0x1f, 0x8b], 'gzip magic');
  t.ok(gunzipSync(gz).equals(cpio), 'buildInitramfs is the gzip of buildCpio');
});

t.test('alignment holds for every name length', async (t) => {
  for (let n = 1; n <= 9; n++) {
    for (let size = 0; size <= 5; size++) {
      const cpio = buildCpio([{ type: 'file', path: 'x'.repeat(n), data: Buffer.alloc(size, 0x41) }]);
      const got = readNewc(cpio);
      t.equal(got[0]!.data.toString(), 'A'.repeat(size));
    }
  }
});

t.test('invalid input is rejected', async (t) => {
  t.throws(
    () =>
      buildCpio([
        { type: 'file', path: 'a', data: '' },
        { type: 'file', path: '/a', data: '' },
      ]),
    /Duplicate initramfs path: a/,
  );
  t.throws(() => buildCpio([{ type: 'file', path: '../etc/passwd', data: '' }]), /Invalid initramfs path/);
  t.throws(() => buildCpio([{ type: 'dir', path: '/' }]), /root needs no entry/);
  t.throws(
    () =>
      buildCpio([
        { type: 'file', path: 'f', data: '' },
        { type: 'file', path: 'f/g', data: '' },
      ]),
    /not a directory/,
  );
  t.throws(() => buildCpio([{ type: 'chardev', path: 'c', major: -1, minor: 0 }]), RangeError);
});

t.test('initScript wraps the body with mounts, markers and poweroff', async (t) => {
  const s = initScript('echo hi', { marker: 'M' });
  t.match(s, /^#!\/bin\/sh\n/);
  t.match(s, /mount -t proc proc \/proc/);
  t.match(s, /mount -t sysfs sysfs \/sys/);
  t.match(s, /mount -t devtmpfs devtmpfs \/dev/);
  t.match(s, /echo M-BEGIN\n\(\necho hi\n\)\necho "M-END rc=\$\?"/);
  t.match(s, /poweroff -f\n$/);
  t.match(initScript('true'), /MDGPU-INIT-BEGIN/);
});

t.test('guestInitramfs packs busybox, applet links, /init and extra files', async (t) => {
  const dir = await fsp.mkdtemp(path.join(os.tmpdir(), 'mdgpu-initramfs-test-'));
  t.teardown(() => fsp.rm(dir, { recursive: true, force: true }));
  const busybox = path.join(dir, 'busybox');
  await fsp.writeFile(busybox, 'not really busybox');
  const hostFile = path.join(dir, 'mod.ko');
  await fsp.writeFile(hostFile, Buffer.from([0x7f, 0x45, 0x4c, 0x46]));
  await fsp.chmod(hostFile, 0o640);
  const img = await guestInitramfs(
    { busybox },
    {
      init: initScript('echo hello'),
      applets: ['sh', 'mount', 'poweroff', 'cat'],
      files: [
        { path: '/lib/modules/mod.ko', hostPath: hostFile },
        { path: '/etc/motd', data: 'hi\n' },
        { path: '/bin/cat', data: '#!/bin/sh\n', mode: 0o755 },
        { path: '/init', data: '#!/bin/sh\necho replaced\n', mode: 0o755 },
      ],
    },
  );
  const got = readNewc(gunzipSync(img));
  const by = new Map(got.map((m) => [m.name, m]));
  t.equal(by.get('bin/busybox')!.data.toString(), 'not really busybox');
  t.equal(by.get('bin/busybox')!.mode, S_IFREG | 0o755);
  t.equal(by.get('bin/sh')!.data.toString(), 'busybox');
  t.equal(by.get('bin/cat')!.mode, S_IFREG | 0o755, 'a given file wins over the applet link');
  t.equal(by.get('init')!.data.toString(), '#!/bin/sh\necho replaced\n', 'a given /init replaces the generated one');
  t.equal(got.filter((m) => m.name === 'init').length, 1);
  t.equal(by.get('init')!.mode, S_IFREG | 0o755);
  t.same([...by.get('lib/modules/mod.ko')!.data], [0x7f, 0x45, 0x4c, 0x46]);
  t.equal(by.get('lib/modules/mod.ko')!.mode, S_IFREG | 0o640, 'host file mode kept');
  t.equal(by.get('etc/motd')!.mode, S_IFREG | 0o644);
  t.equal(by.get('dev/console')!.mode, S_IFCHR | 0o600);
  t.same([by.get('dev/console')!.rdevMajor, by.get('dev/console')!.rdevMinor], [5, 1]);
  for (const d of ['proc', 'sys', 'dev', 'tmp']) t.equal(by.get(d)!.mode, S_IFDIR | 0o755, `/${d} mount point`);
  await t.rejects(guestInitramfs({ busybox }, { init: '', applets: [], files: [{ path: 'x' }] }), /neither data nor hostPath/);
});
