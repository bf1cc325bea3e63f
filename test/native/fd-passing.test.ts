import { readdirSync } from 'node:fs';
import t from 'tap';
import { closeAtEnd, fdFlags, isOpen, memfd, native, O_CLOEXEC, PAGE, pair, pattern } from './fixtures/native.js';

const RW = native.PROT_READ | native.PROT_WRITE;

t.test('a memfd sent over a socketpair is the same memory on both sides', (t) => {
  const [a, b] = pair(t);
  const sent = memfd(t, 2 * PAGE, 'passed');
  t.equal(native.sendmsg(a, Uint8Array.of(0x42), [sent]), 1);
  t.ok(isOpen(sent), 'the sender keeps its fd');

  const buf = new Uint8Array(1);
  const r = native.recvmsg(b, buf, 0, 1, 1);
  closeAtEnd(t, ...r.fds);
  t.equal(r.bytes, 1);
  t.equal(buf[0], 0x42);
  t.equal(r.fds.length, 1);
  t.equal(r.truncated, false);
  const got = r.fds[0]!;
  t.not(got, sent, 'a new fd number for the same file');
  t.ok(fdFlags(got) & O_CLOEXEC, 'received fds are close-on-exec (MSG_CMSG_CLOEXEC)');
  t.equal(native.fstatSize(got), 2 * PAGE, 'the receiver sees the size set by the sender');

  const mine = new Uint8Array(native.mmap(sent, 0, 2 * PAGE, RW));
  const theirs = new Uint8Array(native.mmap(got, 0, 2 * PAGE, RW));
  mine.set(pattern(100, 3), PAGE - 50);
  t.same(theirs.subarray(PAGE - 50, PAGE + 50), pattern(100, 3), 'sender writes, receiver reads');
  theirs[2 * PAGE - 1] = 0x99;
  t.equal(mine[2 * PAGE - 1], 0x99, 'receiver writes, sender reads');
  native.munmap(mine.buffer as ArrayBuffer);
  native.munmap(theirs.buffer as ArrayBuffer);
  t.end();
});

t.test('several fds arrive in the order sent', (t) => {
  const [a, b] = pair(t);
  const fds = [1, 2, 3].map((n) => {
    const fd = native.eventfd(n, 0);
    closeAtEnd(t, fd);
    return fd;
  });
  native.sendmsg(a, Uint8Array.of(1), fds);
  const r = native.recvmsg(b, new Uint8Array(1), 0, 1, 253);
  closeAtEnd(t, ...r.fds);
  t.equal(r.fds.length, 3);
  t.same(
    r.fds.map((fd) => native.eventfdRead(fd)),
    [1n, 2n, 3n],
    'each received fd is the eventfd sent in that position',
  );
  t.end();
});

t.test('more fds than maxFds: truncated, the ones that fit are returned, the rest never land', (t) => {
  const [a, b] = pair(t);
  const fds = [0, 1, 2].map(() => {
    const fd = native.eventfd(0, 0);
    closeAtEnd(t, fd);
    return fd;
  });
  const before = readdirSync('/proc/self/fd').length;
  native.sendmsg(a, Uint8Array.of(1), fds);
  const r = native.recvmsg(b, new Uint8Array(1), 0, 1, 1);
  closeAtEnd(t, ...r.fds);
  t.equal(r.truncated, true);
  t.equal(r.fds.length, 1, 'the fd that fit is handed over so the caller can close it');
  t.equal(r.bytes, 1);
  t.equal(readdirSync('/proc/self/fd').length, before + 1, 'only that one fd was installed');
  t.end();
});

t.test('maxFds 0 refuses all fds: truncated with none installed', (t) => {
  const [a, b] = pair(t);
  const efd = native.eventfd(0, 0);
  closeAtEnd(t, efd);
  const before = readdirSync('/proc/self/fd').length;
  native.sendmsg(a, Uint8Array.of(1), [efd]);
  const r = native.recvmsg(b, new Uint8Array(1), 0, 1, 0);
  t.same(r, { bytes: 1, fds: [], truncated: true });
  t.equal(readdirSync('/proc/self/fd').length, before);
  t.end();
});

t.test('sending fds needs at least one byte; sending a closed fd is EBADF', (t) => {
  const [a] = pair(t);
  const efd = native.eventfd(0, 0);
  t.throws(() => native.sendmsg(a, new Uint8Array(0), [efd]), RangeError);
  native.close(efd);
  t.throws(() => native.sendmsg(a, Uint8Array.of(1), [efd]), { code: 'EBADF', syscall: 'sendmsg' });
  t.end();
});
