import t from 'tap';
import { isErrno } from '../../src/native/binding.js';
import { fdFlags, memfd, native, O_CLOEXEC, PAGE, pattern } from './fixtures/native.js';

const RW = native.PROT_READ | native.PROT_WRITE;

t.test('memfdCreate makes a close-on-exec fd that ftruncate sizes', (t) => {
  const fd = memfd(t, 3 * PAGE);
  t.ok(fdFlags(fd) & O_CLOEXEC);
  t.equal(native.fstatSize(fd), 3 * PAGE);
  native.ftruncate(fd, 5);
  t.equal(native.fstatSize(fd), 5);
  const sealable = native.memfdCreate('sealable', native.MFD_ALLOW_SEALING);
  t.ok(fdFlags(sealable) & O_CLOEXEC, 'MFD_CLOEXEC added to caller flags');
  native.close(sealable);
  t.throws(() => native.memfdCreate('x', 0x8000_0000), { code: 'EINVAL', syscall: 'memfd_create' });
  t.end();
});

t.test('two mappings of one memfd alias: a write through one is read through the other', (t) => {
  const fd = memfd(t, 4 * PAGE);
  const a = new Uint8Array(native.mmap(fd, 0, 4 * PAGE, RW));
  const b = new Uint8Array(native.mmap(fd, 0, 4 * PAGE, RW));
  t.equal(a.length, 4 * PAGE);
  t.ok(
    a.every((x) => x === 0),
    'a fresh memfd reads as zeros',
  );
  a.set(pattern(256), 3 * PAGE + 10);
  t.same(b.subarray(3 * PAGE + 10, 3 * PAGE + 266), pattern(256));
  new DataView(b.buffer).setBigUint64(8, 0x1122334455667788n, true);
  t.equal(new DataView(a.buffer).getBigUint64(8, true), 0x1122334455667788n);
  native.munmap(a.buffer as ArrayBuffer);
  native.munmap(b.buffer as ArrayBuffer);
  t.end();
});

t.test('a mapping at a page offset sees that part of the file', (t) => {
  const fd = memfd(t, 3 * PAGE);
  const whole = new Uint8Array(native.mmap(fd, 0, 3 * PAGE, RW));
  const page2 = new Uint8Array(native.mmap(fd, 2 * PAGE, PAGE, native.PROT_READ));
  whole.set(pattern(PAGE, 7), 2 * PAGE);
  t.equal(page2.length, PAGE);
  t.same(page2, pattern(PAGE, 7));
  native.munmap(page2.buffer as ArrayBuffer);
  native.munmap(whole.buffer as ArrayBuffer);
  t.end();
});

t.test('munmap detaches the buffer and liveMappings goes back down', (t) => {
  const fd = memfd(t, PAGE);
  const base = native.liveMappings();
  const ab = native.mmap(fd, 0, PAGE, RW);
  const view = new Uint8Array(ab);
  view[0] = 1;
  t.equal(native.liveMappings(), base + 1);
  native.munmap(ab);
  t.equal(ab.byteLength, 0, 'the ArrayBuffer is detached');
  t.equal(view.length, 0, 'views on it see length 0');
  t.equal(view[0], undefined, 'and read nothing instead of freed memory');
  t.equal(native.liveMappings(), base);
  t.end();
});

t.test('munmap twice is EINVAL with code and syscall', (t) => {
  const fd = memfd(t, PAGE);
  const ab = native.mmap(fd, 0, PAGE, RW);
  native.munmap(ab);
  let err: unknown;
  try {
    native.munmap(ab);
  } catch (e) {
    err = e;
  }
  t.ok(isErrno(err, 'EINVAL'));
  t.match(err, { code: 'EINVAL', errno: -22, syscall: 'munmap', message: 'EINVAL: invalid argument, munmap' });
  t.end();
});

t.test('munmap of a buffer that mmap did not return is EINVAL, and it stays usable', (t) => {
  const plain = new ArrayBuffer(PAGE);
  t.throws(() => native.munmap(plain), { code: 'EINVAL', syscall: 'munmap' });
  t.equal(plain.byteLength, PAGE, 'not detached');
  const empty = new ArrayBuffer(0);
  t.throws(() => native.munmap(empty), { code: 'EINVAL' });
  t.end();
});

t.test('many map/unmap cycles leave no mappings behind', (t) => {
  const fd = memfd(t, 64 * PAGE);
  const base = native.liveMappings();
  for (let i = 0; i < 200; i++) {
    const ab = native.mmap(fd, 0, 64 * PAGE, RW);
    new Uint8Array(ab)[i] = i & 0xff;
    native.munmap(ab);
  }
  t.equal(native.liveMappings(), base);
  t.end();
});

t.test('mmap argument and kernel errors', (t) => {
  const fd = memfd(t, PAGE);
  t.throws(() => native.mmap(fd, 100, PAGE, RW), RangeError, 'offset not page aligned');
  t.throws(() => native.mmap(fd, 0, PAGE, 0), RangeError, 'PROT_NONE would crash on any access');
  t.throws(() => native.mmap(fd, 0, PAGE, 4), RangeError, 'PROT_EXEC not offered');
  t.throws(() => native.mmap(fd, 0, 0, RW), { code: 'EINVAL', syscall: 'mmap' }, 'zero length');
  const efd = native.eventfd(0, 0);
  t.throws(() => native.mmap(efd, 0, PAGE, RW), { code: 'ENODEV', syscall: 'mmap' }, 'not mappable');
  native.close(efd);
  t.end();
});

t.test('punchHole zeroes exactly the range and keeps the size', (t) => {
  const fd = memfd(t, 4 * PAGE);
  const m = new Uint8Array(native.mmap(fd, 0, 4 * PAGE, RW));
  m.fill(0xff);
  native.punchHole(fd, PAGE + 100, 2 * PAGE);
  t.ok(
    m.subarray(PAGE + 100, 3 * PAGE + 100).every((x) => x === 0),
    'the range reads as zeros through a live mapping',
  );
  t.ok(
    m.subarray(0, PAGE + 100).every((x) => x === 0xff),
    'bytes before it untouched',
  );
  t.ok(
    m.subarray(3 * PAGE + 100).every((x) => x === 0xff),
    'bytes after it untouched',
  );
  t.equal(native.fstatSize(fd), 4 * PAGE);
  native.munmap(m.buffer as ArrayBuffer);
  const efd = native.eventfd(0, 0);
  t.throws(() => native.punchHole(efd, 0, PAGE), { code: 'ENODEV', syscall: 'fallocate' });
  native.close(efd);
  t.end();
});
