/**
 * Property-based checks of the framer (fast-check): any chunking of a valid stream gives back the
 * same messages with their fds; any bytes at all either frame or fail with FatalProtocolError
 * (nothing else); no fd is ever handed out twice or lost; no body larger than the cap is ever
 * allocated.
 */
import t from 'tap';
import fc from 'fast-check';
import { Framer, type Frame } from '../../src/transport/framer.js';
import { FatalProtocolError, HeaderFlag, MessageType, encodeMessage } from '../../src/protocol/index.js';

const MAX = 4096;
const RUNS = 300;

/** A valid message: random id, command, type (command or reply), payload and fds. */
const message = fc.record({
  msgId: fc.integer({ min: 0, max: 0xffff }),
  command: fc.integer({ min: 1, max: 18 }),
  reply: fc.boolean(),
  noReply: fc.boolean(),
  payload: fc.uint8Array({ maxLength: 200 }),
  fdCount: fc.integer({ min: 0, max: 3 }),
});

/** Split `bytes` at random points into chunks. */
function chunked(bytes: Uint8Array, cuts: number[]): Uint8Array[] {
  const points = [...new Set(cuts.map((c) => c % (bytes.length + 1)))].sort((a, b) => a - b);
  const chunks: Uint8Array[] = [];
  let at = 0;
  for (const p of [...points, bytes.length]) {
    chunks.push(bytes.subarray(at, p));
    at = p;
  }
  return chunks;
}

t.test('any chunking of a valid stream: the same messages, each with its own fds', (t) => {
  fc.assert(
    fc.property(fc.array(message, { minLength: 1, maxLength: 12 }), fc.array(fc.nat(), { maxLength: 40 }), (messages, cuts) => {
      let nextFd = 100;
      const encoded = messages.map((m) => {
        const flags = (m.reply ? MessageType.Reply : MessageType.Command) | (m.noReply ? HeaderFlag.NoReply : 0);
        const bytes = encodeMessage({ msgId: m.msgId, command: m.command, flags }, m.payload);
        const fds = Array.from({ length: m.fdCount }, () => nextFd++);
        return { bytes, fds };
      });
      const framer = new Framer({ maxMessageSize: MAX });
      const frames: Frame[] = [];
      // Fds travel with the first byte of their message, as SCM_RIGHTS does; a reader that uses
      // wanted() never mixes two messages in one read, so cut there too.
      for (const { bytes, fds } of encoded) {
        const chunks = chunked(bytes, cuts);
        chunks.forEach((chunk, i) => frames.push(...framer.push(chunk, i === 0 ? fds : [])));
      }
      if (frames.length !== messages.length) throw new Error(`${frames.length} frames for ${messages.length} messages`);
      frames.forEach((f, i) => {
        const m = messages[i]!;
        if (f.header.msgId !== m.msgId || f.header.command !== m.command) throw new Error('header mismatch');
        if (Buffer.compare(Buffer.from(f.payload), Buffer.from(m.payload)) !== 0) throw new Error('payload mismatch');
        if (JSON.stringify(f.fds) !== JSON.stringify(encoded[i]!.fds)) throw new Error(`fds ${f.fds} != ${encoded[i]!.fds}`);
      });
      if (framer.reset().length !== 0) throw new Error('fds left behind');
    }),
    { numRuns: RUNS },
  );
  t.pass(`${RUNS} streams`);
  t.end();
});

t.test('any bytes, any fds, any chunking: frames or FatalProtocolError; every fd out exactly once; no allocation past the cap', (t) => {
  // Headers that look plausible half of the time, so bodies get allocated and framed too.
  const header = fc
    .record({
      msgId: fc.nat({ max: 0xffff }),
      command: fc.nat({ max: 0xffff }),
      size: fc.oneof(fc.nat({ max: MAX + 64 }), fc.nat()),
      flags: fc.oneof(fc.constantFrom(0, 1, 0x10, 0x11, 0x21), fc.nat()),
    })
    .map((h) => {
      const b = new Uint8Array(16);
      const v = new DataView(b.buffer);
      v.setUint16(0, h.msgId, true);
      v.setUint16(2, h.command, true);
      v.setUint32(4, h.size >>> 0, true);
      v.setUint32(8, h.flags >>> 0, true);
      return b;
    });
  const piece = fc.oneof(header, fc.uint8Array({ maxLength: 300 }));
  const chunk = fc.record({ bytes: fc.array(piece, { maxLength: 4 }).map((ps) => Buffer.concat(ps)), fds: fc.integer({ min: 0, max: 2 }) });
  fc.assert(
    fc.property(fc.array(chunk, { maxLength: 20 }), (chunks) => {
      const allocated: number[] = [];
      const framer = new Framer({
        maxMessageSize: MAX,
        allocate: (size) => {
          allocated.push(size);
          return new Uint8Array(size);
        },
      });
      let nextFd = 1000;
      const given: number[] = [];
      const out: number[] = [];
      let failed = false;
      for (const c of chunks) {
        const fds = Array.from({ length: c.fds }, () => nextFd++);
        given.push(...fds);
        try {
          for (const frame of framer.push(new Uint8Array(c.bytes), fds)) {
            if (frame.header.size > MAX || frame.payload.length !== frame.header.size - 16) throw new Error('bad frame size');
            out.push(...frame.fds);
          }
          if (failed) throw new Error('a failed framer accepted more input');
        } catch (err) {
          if (!(err instanceof FatalProtocolError)) throw err;
          failed = true;
        }
      }
      out.push(...framer.reset());
      if (allocated.some((n) => n > MAX - 16)) throw new Error(`allocated ${Math.max(...allocated)} bytes`);
      const sorted = [...out].sort((a, b) => a - b);
      if (JSON.stringify(sorted) !== JSON.stringify(given)) throw new Error(`fds given ${given}, handed out ${sorted}`);
    }),
    { numRuns: RUNS },
  );
  t.pass(`${RUNS} hostile streams`);
  t.end();
});
