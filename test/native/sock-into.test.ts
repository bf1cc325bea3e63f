/**
 * recvmsgInto and sendmsgFrom, the allocation-free socket calls of the per-message path: EAGAIN
 * is a return value (WOULD_BLOCK), never an exception; fds and MSG_CTRUNC land in the caller's
 * Int32Array; and Linux ends a read right after the part of the stream that carried fds.
 */
import t from 'tap';
import { closeAtEnd, isOpen, native, pair, pattern } from './fixtures/native.js';

/** recvmsgInto's fd results for up to `maxFds` fds, off V8's heap as the connection keeps them. */
function fdSlots(maxFds: number): Int32Array {
  return new Int32Array(new ArrayBuffer(4 * (2 + maxFds)));
}

/** The fds recvmsgInto reported in `slots`. */
function fdsOf(slots: Int32Array): number[] {
  return Array.from(slots.subarray(2, 2 + slots[0]!));
}

t.test('WOULD_BLOCK is -1', (t) => {
  t.equal(native.WOULD_BLOCK, -1);
  t.end();
});

t.test('recvmsgInto on an empty socket returns WOULD_BLOCK instead of throwing, again and again', (t) => {
  const [a] = pair(t);
  const slots = fdSlots(4).fill(99);
  for (let i = 0; i < 1000; i++) t.equal(native.recvmsgInto(a, new Uint8Array(8), 0, 8, slots), native.WOULD_BLOCK);
  t.same(Array.from(slots.subarray(0, 2)), [0, 0], 'no fds, not truncated');
  t.end();
});

t.test('recvmsgInto returns 0 at EOF', (t) => {
  const [a, b] = pair(t);
  native.close(b);
  t.equal(native.recvmsgInto(a, new Uint8Array(8), 0, 8, fdSlots(0)), 0);
  t.end();
});

t.test('recvmsgInto reads into [offset, offset + length) only', (t) => {
  const [a, b] = pair(t);
  t.equal(native.sendmsgFrom(a, pattern(32), 0, 32, []), 32);
  const buf = new Uint8Array(32).fill(0xaa);
  t.equal(native.recvmsgInto(b, buf, 8, 4, fdSlots(0)), 4);
  t.same(buf.subarray(8, 12), pattern(4));
  t.ok(buf.subarray(0, 8).every((x) => x === 0xaa) && buf.subarray(12).every((x) => x === 0xaa));
  t.end();
});

t.test('sendmsgFrom sends buf[offset, offset + length) of a larger buffer', (t) => {
  const [a, b] = pair(t);
  const buf = pattern(64);
  t.equal(native.sendmsgFrom(a, buf, 10, 5, []), 5);
  const got = new Uint8Array(16);
  t.equal(native.recvmsgInto(b, got, 0, 16, fdSlots(0)), 5);
  t.same(got.subarray(0, 5), buf.subarray(10, 15));
  t.end();
});

t.test('fds travel with sendmsgFrom and arrive in the Int32Array', (t) => {
  const [a, b] = pair(t);
  const e1 = native.eventfd(0, 0);
  const e2 = native.eventfd(0, 0);
  closeAtEnd(t, e1, e2);
  t.equal(native.sendmsgFrom(a, pattern(40), 0, 40, [e1, e2]), 40);
  const slots = fdSlots(4);
  const buf = new Uint8Array(64);
  t.equal(native.recvmsgInto(b, buf, 0, 16, slots), 16);
  const fds = fdsOf(slots);
  closeAtEnd(t, ...fds);
  t.equal(fds.length, 2, 'both fds, with the first read');
  t.equal(slots[1], 0, 'not truncated');
  native.eventfdWrite(e1, 5);
  t.equal(native.eventfdRead(fds[0]!), 5n, 'the first received fd is the first sent');
  t.equal(native.recvmsgInto(b, buf, 16, 48, slots), 24);
  t.equal(slots[0], 0, 'no fds with the rest');
  t.same(buf.subarray(0, 40), pattern(40));
  t.end();
});

t.test('more fds than the Int32Array has room for: truncated, and the ones that fit are still reported', (t) => {
  const [a, b] = pair(t);
  const sent = [native.eventfd(0, 0), native.eventfd(0, 0), native.eventfd(0, 0)];
  closeAtEnd(t, ...sent);
  native.sendmsgFrom(a, Uint8Array.of(1), 0, 1, sent);
  const slots = fdSlots(1);
  t.equal(native.recvmsgInto(b, new Uint8Array(4), 0, 4, slots), 1);
  const fds = fdsOf(slots);
  closeAtEnd(t, ...fds);
  t.equal(slots[1], 1, 'MSG_CTRUNC');
  t.equal(fds.length, 1, 'the one that fit arrived; the kernel closed the others');
  t.ok(isOpen(fds[0]!));
  t.end();
});

t.test('no room for fds at all: fds that come anyway are truncated, none installed', (t) => {
  const [a, b] = pair(t);
  const efd = native.eventfd(0, 0);
  closeAtEnd(t, efd);
  native.sendmsgFrom(a, Uint8Array.of(1), 0, 1, [efd]);
  const slots = fdSlots(0);
  t.equal(native.recvmsgInto(b, new Uint8Array(4), 0, 4, slots), 1);
  t.same(Array.from(slots), [0, 1]);
  t.end();
});

t.test('Linux ends a read right after the segment that carried fds: the fds belong to the read’s last bytes', (t) => {
  const [a, b] = pair(t);
  const efd = native.eventfd(0, 0);
  closeAtEnd(t, efd);
  // Three sendmsgs, as QEMU sends three messages: 32 bytes, 48 bytes with an fd, 32 bytes.
  native.sendmsgFrom(a, pattern(32, 1), 0, 32, []);
  native.sendmsgFrom(a, pattern(48, 2), 0, 48, [efd]);
  native.sendmsgFrom(a, pattern(32, 3), 0, 32, []);
  const slots = fdSlots(4);
  const buf = new Uint8Array(256);
  t.equal(native.recvmsgInto(b, buf, 0, 256, slots), 80, 'the read stops at the end of the fd-carrying segment');
  closeAtEnd(t, ...fdsOf(slots));
  t.equal(slots[0], 1);
  t.equal(native.recvmsgInto(b, buf, 80, 176, slots), 32, 'the rest comes with the next read');
  t.equal(slots[0], 0);

  // A read too short for the whole fd-carrying segment takes the fds with its first part.
  native.sendmsgFrom(a, pattern(32, 1), 0, 32, []);
  native.sendmsgFrom(a, pattern(48, 2), 0, 48, [efd]);
  t.equal(native.recvmsgInto(b, buf, 0, 64, slots), 64);
  closeAtEnd(t, ...fdsOf(slots));
  t.equal(slots[0], 1, 'fds with the read that reached into their segment');
  t.equal(native.recvmsgInto(b, buf, 0, 64, slots), 16);
  t.equal(slots[0], 0);
  t.end();
});

t.test('sendmsgFrom returns WOULD_BLOCK, not an exception, when the socket buffer is full', (t) => {
  const [a, b] = pair(t);
  const chunk = new Uint8Array(1 << 20);
  let total = 0;
  let partial = false;
  let blocked = false;
  for (let i = 0; i < 64 && !blocked; i++) {
    const n = native.sendmsgFrom(a, chunk, 0, chunk.length, []);
    if (n === native.WOULD_BLOCK) blocked = true;
    else {
      if (n < chunk.length) partial = true;
      total += n;
    }
  }
  t.ok(blocked, 'the buffer filled');
  t.ok(partial, 'a short write before it');
  const buf = new Uint8Array(1 << 16);
  const slots = fdSlots(0);
  let got = 0;
  for (let n = native.recvmsgInto(b, buf, 0, buf.length, slots); n > 0; n = native.recvmsgInto(b, buf, 0, buf.length, slots)) got += n;
  t.equal(got, total, 'every byte sent arrived');
  t.end();
});

t.test('other errors still throw, shaped like Node errors', (t) => {
  const [a, b] = pair(t);
  native.close(b);
  t.throws(() => native.sendmsgFrom(a, Uint8Array.of(1), 0, 1, []), { code: 'EPIPE', syscall: 'sendmsg', errno: -32 });
  const file = native.memfdCreate('not-a-socket', 0);
  closeAtEnd(t, file);
  t.throws(() => native.recvmsgInto(file, new Uint8Array(4), 0, 4, fdSlots(0)), { code: 'ENOTSOCK', syscall: 'recvmsg' });
  t.end();
});
