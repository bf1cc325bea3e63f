import t from 'tap';
import { closeAtEnd, fdFlags, native, O_CLOEXEC, O_NONBLOCK } from './fixtures/native.js';

t.test('eventfd counts writes and a read resets the counter', (t) => {
  const fd = native.eventfd(0, 0);
  closeAtEnd(t, fd);
  t.ok(fdFlags(fd) & O_NONBLOCK, 'always non-blocking');
  t.ok(fdFlags(fd) & O_CLOEXEC, 'always close-on-exec');
  t.throws(() => native.eventfdRead(fd), { code: 'EAGAIN', syscall: 'read', errno: -11 }, 'empty counter');
  native.eventfdWrite(fd, 1);
  native.eventfdWrite(fd, 2n);
  native.eventfdWrite(fd, 2 ** 40);
  t.equal(native.eventfdRead(fd), 3n + 2n ** 40n);
  t.throws(() => native.eventfdRead(fd), { code: 'EAGAIN' });
  t.end();
});

t.test('initval is the starting count', (t) => {
  const fd = native.eventfd(5, 0);
  closeAtEnd(t, fd);
  t.equal(native.eventfdRead(fd), 5n);
  t.end();
});

t.test('EFD_SEMAPHORE reads 1 at a time', (t) => {
  const fd = native.eventfd(2, native.EFD_SEMAPHORE);
  closeAtEnd(t, fd);
  t.equal(native.eventfdRead(fd), 1n);
  t.equal(native.eventfdRead(fd), 1n);
  t.throws(() => native.eventfdRead(fd), { code: 'EAGAIN' });
  t.end();
});

t.test('the counter tops out at 2^64 - 2: overflow is EAGAIN, 2^64 - 1 is EINVAL', (t) => {
  const fd = native.eventfd(0, 0);
  closeAtEnd(t, fd);
  native.eventfdWrite(fd, 2n ** 64n - 2n);
  t.throws(() => native.eventfdWrite(fd, 1), { code: 'EAGAIN', syscall: 'write' });
  t.throws(() => native.eventfdWrite(fd, 2n ** 64n - 1n), { code: 'EINVAL', syscall: 'write' });
  t.equal(native.eventfdRead(fd), 2n ** 64n - 2n);
  t.end();
});

t.test('eventfdWrite rejects values that are not u64', (t) => {
  const fd = native.eventfd(0, 0);
  closeAtEnd(t, fd);
  t.throws(() => native.eventfdWrite(fd, -1n), RangeError);
  t.throws(() => native.eventfdWrite(fd, 2n ** 64n), RangeError);
  t.throws(() => native.eventfdWrite(fd, -1), RangeError);
  t.throws(() => native.eventfdWrite(fd, 1.5), RangeError);
  t.throws(() => native.eventfdWrite(fd, '1' as unknown as number), TypeError);
  t.throws(() => native.eventfdRead(fd), { code: 'EAGAIN' }, 'nothing was written');
  t.end();
});
