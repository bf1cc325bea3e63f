/**
 * The framer at every split offset, with two messages per chunk, with fds,
 * and with hostile headers (which must fail before any body is allocated).
 */
import t from 'tap';
import { Framer, type Frame } from '../../src/transport/framer.js';
import {
  Command,
  FatalProtocolError,
  HeaderFlag,
  HeaderLayout,
  MessageType,
  encodeMessage,
  encodeRegionWriteRequest,
  encodeVersion,
  errno,
  errorReply,
} from '../../src/protocol/index.js';

const MAX = 4096;

function pattern(length: number, seed: number): Uint8Array {
  return Uint8Array.from({ length }, (_, i) => (i * 13 + seed) & 0xff);
}

/** Sample messages of different shapes: header only, small body, JSON body, larger body, error reply. */
const MESSAGES: ReadonlyArray<[string, Uint8Array]> = [
  ['DEVICE_RESET (header only)', encodeMessage({ msgId: 1, command: Command.DeviceReset, flags: MessageType.Command })],
  [
    'posted REGION_WRITE',
    encodeMessage(
      { msgId: 2, command: Command.RegionWrite, flags: MessageType.Command | HeaderFlag.NoReply },
      encodeRegionWriteRequest({ offset: 0x40n, region: 0, data: pattern(8, 1) }),
    ),
  ],
  [
    'VERSION',
    encodeMessage(
      { msgId: 3, command: Command.Version, flags: MessageType.Command },
      encodeVersion({
        major: 0,
        minor: 0,
        capabilities: { maxMsgFds: 16, maxDataXferSize: 1048576, pgsizes: 4096, maxDmaMaps: 65535 },
      }),
    ),
  ],
  ['REGION_READ reply', encodeMessage({ msgId: 4, command: Command.RegionRead, flags: MessageType.Reply }, pattern(300, 2))],
  ['error reply', errorReply({ msgId: 5, command: Command.DmaMap }, errno('EEXIST'))],
];

/** What a frame for `message` must look like. */
function expectedFrame(message: Uint8Array, fds: number[] = []): Frame {
  return { header: HeaderLayout.decode(message), payload: message.slice(16), fds };
}

function concat(...parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const part of parts) {
    out.set(part, at);
    at += part.length;
  }
  return out;
}

/** A header with arbitrary fields (for hostile inputs). */
function header(fields: { size: number; flags: number; msgId?: number; command?: number }): Uint8Array {
  return HeaderLayout.encode({ msgId: fields.msgId ?? 9, command: fields.command ?? Command.RegionWrite, size: fields.size, flags: fields.flags, error: 0 });
}

/** A framer whose body allocations are counted. */
function countingFramer(maxMessageSize = MAX): { framer: Framer; allocations: number[] } {
  const allocations: number[] = [];
  const framer = new Framer({
    maxMessageSize,
    allocate: (size) => {
      allocations.push(size);
      return new Uint8Array(size);
    },
  });
  return { framer, allocations };
}

t.test('wanted() never reaches past the current message', (t) => {
  const framer = new Framer({ maxMessageSize: MAX });
  const message = MESSAGES[1]![1]; // 40 bytes
  t.equal(framer.wanted(), 16, 'a whole header first');
  framer.push(message.subarray(0, 5));
  t.equal(framer.wanted(), 11, 'the rest of the header');
  framer.push(message.subarray(5, 16));
  t.equal(framer.wanted(), 24, 'then exactly the body');
  framer.push(message.subarray(16, 26));
  t.equal(framer.wanted(), 14);
  t.equal(framer.push(message.subarray(26)).length, 1);
  t.equal(framer.wanted(), 16, 'then the next header');
  t.end();
});

t.test('reading with wanted()-sized chunks yields every message', (t) => {
  const stream = concat(...MESSAGES.map(([, m]) => m));
  const framer = new Framer({ maxMessageSize: MAX });
  const frames: Frame[] = [];
  for (let at = 0; at < stream.length; ) {
    const n = Math.min(framer.wanted(), stream.length - at);
    frames.push(...framer.push(stream.subarray(at, at + n)));
    at += n;
  }
  t.strictSame(
    frames,
    MESSAGES.map(([, m]) => expectedFrame(m)),
  );
  t.end();
});

for (const [name, message] of MESSAGES) {
  t.test(`${name}: split at every byte offset gives exactly one frame`, (t) => {
    for (let split = 0; split <= message.length; split++) {
      const framer = new Framer({ maxMessageSize: MAX });
      const first = framer.push(message.subarray(0, split));
      const second = framer.push(message.subarray(split));
      const frames = [...first, ...second];
      if (frames.length !== 1 || (split < message.length && first.length !== 0)) {
        t.fail(`split at ${split}: ${first.length} + ${second.length} frames`);
        return t.end();
      }
    }
    t.pass(`${message.length + 1} splits`);
    const framer = new Framer({ maxMessageSize: MAX });
    t.strictSame(framer.push(message.subarray(0, 7)).concat(framer.push(message.subarray(7))), [expectedFrame(message)]);
    t.end();
  });

  t.test(`${name}: fed one byte at a time`, (t) => {
    const framer = new Framer({ maxMessageSize: MAX });
    const frames: Frame[] = [];
    for (let i = 0; i < message.length; i++) frames.push(...framer.push(message.subarray(i, i + 1)));
    t.strictSame(frames, [expectedFrame(message)]);
    t.end();
  });
}

t.test('two messages in one chunk are split (a reader not using wanted())', (t) => {
  for (const [a, first] of MESSAGES) {
    for (const [b, second] of MESSAGES) {
      const framer = new Framer({ maxMessageSize: MAX });
      t.strictSame(framer.push(concat(first, second)), [expectedFrame(first), expectedFrame(second)], `${a} + ${b}`);
      t.equal(framer.wanted(), 16);
    }
  }
  t.end();
});

t.test('a stream of every message split at every offset gives every frame in order', (t) => {
  const stream = concat(...MESSAGES.map(([, m]) => m));
  const expected = MESSAGES.map(([, m]) => expectedFrame(m));
  for (let split = 0; split <= stream.length; split++) {
    const framer = new Framer({ maxMessageSize: MAX });
    const frames = [...framer.push(stream.subarray(0, split)), ...framer.push(stream.subarray(split))];
    if (frames.length !== expected.length) {
      t.fail(`split at ${split}: ${frames.length} frames`);
      return t.end();
    }
    t.strictSame(frames, expected, `split at ${split}`);
  }
  t.end();
});

t.test('payloads are copies: the reader may reuse its buffer', (t) => {
  const message = MESSAGES[3]![1];
  const scratch = new Uint8Array(1024);
  const framer = new Framer({ maxMessageSize: MAX });
  scratch.set(message.subarray(0, 100));
  framer.push(scratch.subarray(0, 100));
  scratch.fill(0);
  scratch.set(message.subarray(100));
  const [frame] = framer.push(scratch.subarray(0, message.length - 100));
  scratch.fill(0xff);
  t.strictSame(frame?.payload, message.slice(16));
  t.end();
});

t.test('fds attach to the message whose bytes arrive with them', async (t) => {
  const [small, big] = [MESSAGES[1]![1], MESSAGES[3]![1]];

  t.test('fds with the first bytes of a message', (t) => {
    const framer = new Framer({ maxMessageSize: MAX });
    t.strictSame(framer.push(small.subarray(0, 16), [10, 11]), []);
    t.strictSame(framer.push(small.subarray(16)), [expectedFrame(small, [10, 11])]);
    t.end();
  });

  t.test('fds arriving mid-body stay with the message being read', (t) => {
    const framer = new Framer({ maxMessageSize: MAX });
    framer.push(big.subarray(0, 50), [3]);
    framer.push(big.subarray(50, 60), [4]);
    t.strictSame(framer.push(big.subarray(60)), [expectedFrame(big, [3, 4])]);
    t.end();
  });

  t.test('two messages in one chunk: the fds go to the one holding its last byte (Linux ends a read after the fds)', (t) => {
    const framer = new Framer({ maxMessageSize: MAX });
    t.strictSame(framer.push(concat(small, big), [7]), [expectedFrame(small), expectedFrame(big, [7])]);
    t.end();
  });

  t.test('a chunk ending inside the second message: the fds wait with it', (t) => {
    const framer = new Framer({ maxMessageSize: MAX });
    const both = concat(small, big);
    t.strictSame(framer.push(both.subarray(0, small.length + 20), [7, 8]), [expectedFrame(small)]);
    t.strictSame(framer.pendingFds(), [7, 8]);
    t.strictSame(framer.push(both.subarray(small.length + 20)), [expectedFrame(big, [7, 8])]);
    t.end();
  });

  t.test('a chunk ending exactly at the end of the first message gives it the fds', (t) => {
    const framer = new Framer({ maxMessageSize: MAX });
    t.strictSame(framer.push(small, [7]), [expectedFrame(small, [7])]);
    t.strictSame(framer.push(big), [expectedFrame(big)]);
    t.end();
  });

  t.test('fds of a chunk that fails on the next header are handed back by reset()', (t) => {
    const framer = new Framer({ maxMessageSize: MAX });
    const bad = new Uint8Array(16).fill(0xff);
    t.throws(() => framer.push(concat(small, bad), [7]), FatalProtocolError);
    t.strictSame(framer.reset(), [7]);
    t.end();
  });

  t.test('a chunk starting at a message boundary gives its fds to the next message', (t) => {
    const framer = new Framer({ maxMessageSize: MAX });
    t.strictSame(framer.push(small), [expectedFrame(small)]);
    t.strictSame(framer.push(big, [8, 9]), [expectedFrame(big, [8, 9])]);
    t.end();
  });

  t.test('fds with a header-only message', (t) => {
    const reset = MESSAGES[0]![1];
    const framer = new Framer({ maxMessageSize: MAX });
    t.strictSame(framer.push(reset, [5]), [expectedFrame(reset, [5])]);
    t.end();
  });

  t.test('fds with an empty chunk attach to the message being read', (t) => {
    const framer = new Framer({ maxMessageSize: MAX });
    framer.push(small.subarray(0, 3));
    t.strictSame(framer.push(new Uint8Array(0), [12]), []);
    t.strictSame(framer.push(small.subarray(3)), [expectedFrame(small, [12])]);
    t.end();
  });
});

t.test('pendingFds() and reset() hand back the fds of a partial message', (t) => {
  const message = MESSAGES[3]![1];
  const framer = new Framer({ maxMessageSize: MAX });
  framer.push(message.subarray(0, 20), [21, 22]);
  t.strictSame(framer.pendingFds(), [21, 22]);
  t.strictSame(framer.reset(), [21, 22]);
  t.strictSame(framer.pendingFds(), []);
  t.equal(framer.wanted(), 16, 'back at a message boundary');
  t.strictSame(framer.push(message), [expectedFrame(message)], 'and usable again');
  t.strictSame(framer.reset(), []);
  t.end();
});

t.test('a header-only message allocates no body', (t) => {
  const { framer, allocations } = countingFramer();
  const [frame] = framer.push(MESSAGES[0]![1]);
  t.equal(frame?.payload.length, 0);
  t.strictSame(allocations, []);
  t.end();
});

t.test('a message of exactly maxMessageSize is accepted and allocated once', (t) => {
  const { framer, allocations } = countingFramer(64);
  const message = encodeMessage({ msgId: 1, command: Command.RegionRead, flags: MessageType.Reply }, new Uint8Array(48));
  t.equal(framer.push(message).length, 1);
  t.strictSame(allocations, [48]);
  t.end();
});

const HOSTILE: ReadonlyArray<[string, Uint8Array, 'EPROTO' | 'EINVAL' | 'EMSGSIZE']> = [
  ...Array.from({ length: 14 }, (_, i): [string, Uint8Array, 'EPROTO'] => [`type bits ${i + 2}`, header({ size: 40, flags: i + 2 }), 'EPROTO']),
  ['unknown flag bit 6', header({ size: 40, flags: 0x40 }), 'EPROTO'],
  ['unknown flag bit 31', header({ size: 40, flags: 0x8000_0000 }), 'EPROTO'],
  ['size 0', header({ size: 0, flags: 0 }), 'EINVAL'],
  ['size 15', header({ size: 15, flags: 0 }), 'EINVAL'],
  ['size maxMessageSize + 1', header({ size: MAX + 1, flags: 0 }), 'EMSGSIZE'],
  ['size 2^32-1', header({ size: 0xffff_ffff, flags: MessageType.Reply }), 'EMSGSIZE'],
];

for (const [name, bad, code] of HOSTILE) {
  t.test(`fatal before any allocation: ${name}`, (t) => {
    const { framer, allocations } = countingFramer();
    t.strictSame(framer.push(bad.subarray(0, 15)), [], 'nothing is decided before the 16th byte');
    let error: unknown;
    try {
      framer.push(concat(bad.subarray(15), new Uint8Array(64)));
    } catch (e) {
      error = e;
    }
    t.ok(error instanceof FatalProtocolError, 'FatalProtocolError');
    t.equal((error as FatalProtocolError | undefined)?.code, code);
    t.strictSame(allocations, [], 'no body was allocated');
    t.end();
  });
}

t.test('after a fatal error the framer stays failed until reset', (t) => {
  const framer = new Framer({ maxMessageSize: MAX });
  const bad = header({ size: 40, flags: 7 });
  t.throws(() => framer.push(bad, [30]), FatalProtocolError);
  t.throws(() => framer.push(MESSAGES[0]![1], [31]), FatalProtocolError, 'later pushes fail too');
  t.strictSame(framer.reset(), [30, 31], 'every fd pushed is handed back');
  t.strictSame(framer.push(MESSAGES[0]![1]), [expectedFrame(MESSAGES[0]![1])], 'reset makes it usable for a new stream');
  t.end();
});

t.test('frames completed in a chunk that then fails are not lost to fd leaks', (t) => {
  const framer = new Framer({ maxMessageSize: MAX });
  const good = MESSAGES[1]![1];
  framer.push(good.subarray(0, 4), [40]);
  t.throws(() => framer.push(concat(good.subarray(4), header({ size: 8, flags: 0 })), [41]), FatalProtocolError);
  t.strictSame(framer.reset().sort(), [40, 41], 'fds of the undelivered good frame are returned');
  t.end();
});

t.test('maxMessageSize must be an integer of at least 16 bytes', (t) => {
  t.throws(() => new Framer({ maxMessageSize: 15 }), RangeError);
  t.throws(() => new Framer({ maxMessageSize: 100.5 }), RangeError);
  t.doesNotThrow(() => new Framer({ maxMessageSize: 16 }));
  t.end();
});
