import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t, { type Test } from 'tap';
import { isErrno } from '../../src/native/binding.js';
import { closeAtEnd, fdFlags, native, O_CLOEXEC, O_NONBLOCK, pair, pattern } from './fixtures/native.js';

function tempDir(t: Test): string {
  const dir = mkdtempSync(join(tmpdir(), 'mdgpu-native-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

t.test('recvmsg on an empty socket throws EAGAIN shaped like a Node error', (t) => {
  const [a] = pair(t);
  const err = (() => {
    try {
      native.recvmsg(a, new Uint8Array(8), 0, 8, 4);
    } catch (e) {
      return e;
    }
    return undefined;
  })();
  t.ok(err instanceof Error, 'throws an Error');
  t.match(err, {
    code: 'EAGAIN',
    errno: -11,
    syscall: 'recvmsg',
    message: 'EAGAIN: resource temporarily unavailable, recvmsg',
  });
  t.ok(isErrno(err, 'EAGAIN'));
  t.end();
});

t.test('recvmsg returns 0 bytes at EOF', (t) => {
  const [a, b] = pair(t);
  native.close(b);
  t.same(native.recvmsg(a, new Uint8Array(8), 0, 8, 4), { bytes: 0, fds: [], truncated: false });
  t.end();
});

t.test('a 40-byte message read as 16 then 24 bytes, fds with the first read', (t) => {
  const [a, b] = pair(t);
  const efd = native.eventfd(0, 0);
  closeAtEnd(t, efd);
  const msg = pattern(40, 1);
  t.equal(native.sendmsg(a, msg, [efd]), 40);

  const buf = new Uint8Array(64).fill(0xee);
  const first = native.recvmsg(b, buf, 0, 16, 4);
  closeAtEnd(t, ...first.fds);
  t.equal(first.bytes, 16, 'reads exactly the length asked for');
  t.equal(first.fds.length, 1, 'the fd arrives with the first read');
  t.equal(first.truncated, false);

  const second = native.recvmsg(b, buf, 16, 24, 4);
  t.equal(second.bytes, 24);
  t.same(second.fds, [], 'no fd with the rest of the message');
  t.same(buf.subarray(0, 40), msg, 'both reads landed at their offsets');
  t.equal(buf[40], 0xee, 'nothing written past offset + length');
  t.throws(() => native.recvmsg(b, buf, 0, 64, 4), { code: 'EAGAIN' }, 'message fully consumed');
  t.end();
});

t.test('recvmsg never writes outside [offset, offset + length)', (t) => {
  const [a, b] = pair(t);
  native.sendmsg(a, pattern(32), []);
  const buf = new Uint8Array(32).fill(0xaa);
  const r = native.recvmsg(b, buf, 8, 4, 0);
  t.equal(r.bytes, 4);
  t.same(buf.subarray(8, 12), pattern(4));
  t.ok(buf.subarray(0, 8).every((x) => x === 0xaa) && buf.subarray(12).every((x) => x === 0xaa));
  t.end();
});

t.test('recvmsg reads into a subarray view at its own byte offset', (t) => {
  const [a, b] = pair(t);
  native.sendmsg(a, Uint8Array.of(1, 2, 3), []);
  const whole = new Uint8Array(16);
  const view = whole.subarray(10, 14);
  t.equal(native.recvmsg(b, view, 1, 3, 0).bytes, 3);
  t.same(whole.subarray(10, 14), Uint8Array.of(0, 1, 2, 3));
  t.end();
});

t.test('recvmsg also takes a Buffer', (t) => {
  const [a, b] = pair(t);
  native.sendmsg(a, Buffer.from('hi'), []);
  const buf = Buffer.alloc(2);
  native.recvmsg(b, buf, 0, 2, 0);
  t.equal(buf.toString(), 'hi');
  t.end();
});

t.test('sendmsg to a closed peer is EPIPE, not SIGPIPE', (t) => {
  const [a, b] = pair(t);
  native.close(b);
  t.throws(() => native.sendmsg(a, Uint8Array.of(1), []), { code: 'EPIPE', syscall: 'sendmsg', errno: -32 });
  t.end();
});

t.test('sendmsg returns a partial count, then EAGAIN, when the socket buffer fills', (t) => {
  const [a, b] = pair(t);
  const chunk = new Uint8Array(1 << 20);
  let total = 0;
  let partial = false;
  let err: unknown;
  for (let i = 0; i < 64 && err === undefined; i++) {
    try {
      const n = native.sendmsg(a, chunk, []);
      if (n < chunk.length) partial = true;
      total += n;
    } catch (e) {
      err = e;
    }
  }
  t.ok(total > 0, `sent ${total} bytes before the buffer filled`);
  t.ok(partial, 'at least one short write');
  t.match(err, { code: 'EAGAIN', syscall: 'sendmsg' });
  // Drain to show the bytes were really queued.
  const buf = new Uint8Array(1 << 16);
  let got = 0;
  for (;;) {
    try {
      got += native.recvmsg(b, buf, 0, buf.length, 0).bytes;
    } catch (e) {
      if (isErrno(e, 'EAGAIN')) break;
      throw e;
    }
  }
  t.equal(got, total);
  t.end();
});

t.test('listenUnix, connectUnix and accept make non-blocking close-on-exec sockets', (t) => {
  const path = join(tempDir(t), 's');
  const l = native.listenUnix(path, 4);
  closeAtEnd(t, l);
  t.throws(() => native.accept(l), { code: 'EAGAIN', syscall: 'accept4' }, 'nothing pending yet');

  const c = native.connectUnix(path);
  closeAtEnd(t, c);
  const s = native.accept(l);
  closeAtEnd(t, s);
  for (const [name, fd] of [
    ['listener', l],
    ['client', c],
    ['accepted', s],
  ] as const) {
    const flags = fdFlags(fd);
    t.ok(flags & O_NONBLOCK, `${name} is non-blocking`);
    t.ok(flags & O_CLOEXEC, `${name} is close-on-exec`);
  }

  native.sendmsg(c, Uint8Array.of(7, 8, 9), []);
  const buf = new Uint8Array(3);
  t.equal(native.recvmsg(s, buf, 0, 3, 0).bytes, 3);
  t.same(buf, Uint8Array.of(7, 8, 9), 'bytes flow client to server');
  t.end();
});

t.test('listenUnix does not unlink: a second listener on the path is EADDRINUSE', (t) => {
  const path = join(tempDir(t), 's');
  closeAtEnd(t, native.listenUnix(path, 1));
  t.throws(() => native.listenUnix(path, 1), { code: 'EADDRINUSE', syscall: 'bind', path });
  t.end();
});

t.test('socket paths longer than sun_path are ENAMETOOLONG', (t) => {
  const long = `/tmp/${'x'.repeat(103)}`; // 108 bytes: no room for the NUL
  t.throws(() => native.listenUnix(long, 1), { code: 'ENAMETOOLONG', syscall: 'bind' });
  t.throws(() => native.connectUnix(long), { code: 'ENAMETOOLONG', syscall: 'connect' });
  t.throws(() => native.listenUnix('', 1), { code: 'ENOENT' }, 'empty path rejected, never autobound');
  t.end();
});

t.test('connectUnix to a missing socket is ENOENT with the path', (t) => {
  const path = join(tempDir(t), 'none');
  t.throws(() => native.connectUnix(path), {
    code: 'ENOENT',
    syscall: 'connect',
    path,
    message: `ENOENT: no such file or directory, connect '${path}'`,
  });
  t.end();
});

t.test('socketpair ends are non-blocking and close-on-exec', (t) => {
  const [a, b] = pair(t);
  for (const fd of [a, b]) {
    t.ok(fdFlags(fd) & O_NONBLOCK);
    t.ok(fdFlags(fd) & O_CLOEXEC);
  }
  t.end();
});

t.test('close of a closed fd is EBADF', (t) => {
  const [a, b] = native.socketpair();
  native.close(b);
  native.close(a);
  t.throws(() => native.close(a), { code: 'EBADF', syscall: 'close', errno: -9 });
  t.end();
});
