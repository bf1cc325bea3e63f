import t from 'tap';
import { native } from './fixtures/native.js';

// Calls with bad arguments must throw a catchable TypeError/RangeError naming the function, the
// argument and what was expected, never reach a syscall or a fatal As<>() check.
// `any` on purpose: these calls are what TypeScript would refuse.
// biome-ignore lint/suspicious/noExplicitAny: the calls below are what TypeScript would refuse
const n = native as any;

type Case = [name: string, call: () => unknown, error: typeof TypeError | typeof RangeError, message: RegExp];

const cases: Case[] = [
  ['too few arguments', () => n.recvmsg(0, new Uint8Array(1)), TypeError, /^recvmsg: expected 5 arguments \(fd, buf, offset, length, maxFds\), got 2$/],
  ['no arguments', () => n.close(), TypeError, /^close: expected 1 argument \(fd\), got 0$/],
  ['fd as a string', () => n.close('3'), TypeError, /^close: expected fd to be an integer file descriptor, got string$/],
  ['fd negative', () => n.close(-1), RangeError, /^close: expected fd .* got -1$/],
  ['fd fractional', () => n.accept(1.5), RangeError, /^accept: expected fd .* got 1\.5$/],
  ['fd NaN', () => n.accept(NaN), RangeError, /got NaN$/],
  ['fd too big', () => n.close(2 ** 31), RangeError, /in \[0, 2147483647\]/],
  ['fd as bigint', () => n.close(3n), TypeError, /got bigint$/],
  ['path not a string', () => n.listenUnix(1, 1), TypeError, /^listenUnix: expected path to be a string, got number$/],
  ['path with NUL', () => n.connectUnix('/tmp/a\0b'), TypeError, /without NUL/],
  ['backlog negative', () => n.listenUnix('/tmp/x', -1), RangeError, /backlog/],
  ['buf not a Uint8Array', () => n.recvmsg(0, new Uint16Array(4), 0, 1, 0), TypeError, /expected buf to be a Uint8Array, got object$/],
  ['buf an ArrayBuffer', () => n.recvmsg(0, new ArrayBuffer(4), 0, 1, 0), TypeError, /buf/],
  ['offset + length past the end', () => n.recvmsg(0, new Uint8Array(4), 2, 3, 0), RangeError, /offset \+ length <= buf\.byteLength, got 2 \+ 3 > 4/],
  ['offset past the end', () => n.recvmsg(0, new Uint8Array(4), 5, 1, 0), RangeError, /offset \+ length/],
  ['length 0 would look like EOF', () => n.recvmsg(0, new Uint8Array(4), 0, 0, 0), RangeError, /length to be at least 1/],
  ['maxFds over 253', () => n.recvmsg(0, new Uint8Array(4), 0, 1, 254), RangeError, /maxFds .* \[0, 253\]/],
  ['fds not an array', () => n.sendmsg(0, new Uint8Array(1), 3), TypeError, /fds to be an array/],
  ['fds with a string', () => n.sendmsg(0, new Uint8Array(1), ['3']), TypeError, /fds/],
  ['fds with a negative', () => n.sendmsg(0, new Uint8Array(1), [-1]), TypeError, /fds/],
  ['too many fds', () => n.sendmsg(0, new Uint8Array(1), new Array(254).fill(0)), RangeError, /at most 253/],
  ['data not bytes', () => n.sendmsg(0, 'hi', []), TypeError, /data to be a Uint8Array, got string/],
  [
    'recvmsgInto: too few arguments',
    () => n.recvmsgInto(0, new Uint8Array(1), 0, 1),
    TypeError,
    /^recvmsgInto: expected 5 arguments \(fd, buf, offset, length, fds\), got 4$/,
  ],
  [
    'recvmsgInto: fds not an Int32Array',
    () => n.recvmsgInto(0, new Uint8Array(4), 0, 1, new Uint32Array(4)),
    TypeError,
    /expected fds to be an Int32Array, got object$/,
  ],
  ['recvmsgInto: fds an array', () => n.recvmsgInto(0, new Uint8Array(4), 0, 1, [0, 0]), TypeError, /fds to be an Int32Array/],
  [
    'recvmsgInto: fds too short for its count and flag',
    () => n.recvmsgInto(0, new Uint8Array(4), 0, 1, new Int32Array(1)),
    RangeError,
    /fds to hold 2 to 255 elements, got 1/,
  ],
  [
    'recvmsgInto: room for over 253 fds',
    () => n.recvmsgInto(0, new Uint8Array(4), 0, 1, new Int32Array(256)),
    RangeError,
    /fds to hold 2 to 255 elements, got 256/,
  ],
  [
    'recvmsgInto: offset + length past the end',
    () => n.recvmsgInto(0, new Uint8Array(4), 2, 3, new Int32Array(2)),
    RangeError,
    /offset \+ length <= buf\.byteLength, got 2 \+ 3 > 4/,
  ],
  ['recvmsgInto: length 0 would look like EOF', () => n.recvmsgInto(0, new Uint8Array(4), 0, 0, new Int32Array(2)), RangeError, /length to be at least 1/],
  ['recvmsgInto: buf not bytes', () => n.recvmsgInto(0, new Int32Array(4), 0, 1, new Int32Array(2)), TypeError, /buf to be a Uint8Array/],
  [
    'sendmsgFrom: too few arguments',
    () => n.sendmsgFrom(0, new Uint8Array(1), 0, 1),
    TypeError,
    /^sendmsgFrom: expected 5 arguments \(fd, buf, offset, length, fds\), got 4$/,
  ],
  [
    'sendmsgFrom: offset + length past the end',
    () => n.sendmsgFrom(0, new Uint8Array(4), 4, 1, []),
    RangeError,
    /offset \+ length <= buf\.byteLength, got 4 \+ 1 > 4/,
  ],
  ['sendmsgFrom: fds not an array', () => n.sendmsgFrom(0, new Uint8Array(1), 0, 1, new Int32Array(1)), TypeError, /fds to be an array/],
  ['sendmsgFrom: fds with a fraction', () => n.sendmsgFrom(0, new Uint8Array(1), 0, 1, [1.5]), TypeError, /fds/],
  ['sendmsgFrom: fds with no byte to carry them', () => n.sendmsgFrom(0, new Uint8Array(1), 0, 0, [0]), RangeError, /at least 1 when sending fds/],
  ['sendmsgFrom: too many fds', () => n.sendmsgFrom(0, new Uint8Array(1), 0, 1, new Array(254).fill(0)), RangeError, /at most 253/],
  ['mmap length unsafe', () => n.mmap(0, 0, 2 ** 53, 1), RangeError, /length .* safe integer/],
  ['mmap offset negative', () => n.mmap(0, -4096, 4096, 1), RangeError, /offset/],
  ['munmap of a typed array', () => n.munmap(new Uint8Array(4)), TypeError, /^munmap: expected buffer to be an ArrayBuffer, got object$/],
  ['munmap of null', () => n.munmap(null), TypeError, /got null$/],
  ['ftruncate size negative', () => n.ftruncate(0, -1), RangeError, /size/],
  ['memfd name not a string', () => n.memfdCreate(undefined, 0), TypeError, /got undefined$/],
  ['eventfd initval too big', () => n.eventfd(2 ** 32, 0), RangeError, /initval/],
  ['Poller without a callback', () => new n.Poller(0, 1), TypeError, /^Poller: expected callback to be a function, got number$/],
  ['Poller without new', () => n.Poller(0, () => {}), TypeError, /without 'new'/],
];

for (const [name, call, type, message] of cases) {
  t.test(name, (t) => {
    let err: unknown;
    try {
      call();
    } catch (e) {
      err = e;
    }
    t.ok(err instanceof type, `throws ${type.name}, got ${String(err)}`);
    t.match((err as Error).message, message);
    if (!/without new/.test(name)) {
      t.match((err as { code?: string }).code, /^ERR_(INVALID_ARG_TYPE|INVALID_ARG_VALUE|MISSING_ARGS|OUT_OF_RANGE)$/, 'has a Node-style code');
    }
    t.end();
  });
}

t.test('a failed argument check has no side effect', (t) => {
  const efd = native.eventfd(0, 0);
  t.throws(() => n.eventfdWrite(efd, 'x'));
  t.throws(() => native.eventfdRead(efd), { code: 'EAGAIN' });
  native.close(efd);
  t.end();
});
