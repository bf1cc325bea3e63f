/**
 * Property-based check of the connection over a real socketpair (fast-check): a stream of valid
 * messages, sent in any pieces the way QEMU could (a message's fds with the sendmsg that starts
 * it, which may end anywhere inside it), read under any read budget, arrives whole, once each, in
 * order, with exactly its own fds, whether the fast path or the framer took it; and no fd is left
 * open that no message owns.
 */
import { readdirSync } from 'node:fs';
import t from 'tap';
import fc from 'fast-check';
import { Connection } from '../../src/transport/connection.js';
import { Command, HeaderFlag, HeaderLayout, MessageType, encodeMessage } from '../../src/protocol/index.js';
import { native } from '../helpers/served-device.js';

const RUNS = 60;

const message = fc.record({
  msgId: fc.integer({ min: 0, max: 0xffff }),
  // REGION_READ/WRITE (the fast path takes those without fds) and a few others.
  command: fc.constantFrom(Command.RegionRead, Command.RegionWrite, Command.DmaMap, Command.DeviceReset, Command.Version),
  noReply: fc.boolean(),
  payload: fc.uint8Array({ maxLength: 120 }),
  fdCount: fc.oneof(fc.constant(0), fc.integer({ min: 0, max: 3 })),
});

const turn = () => new Promise((resolve) => setImmediate(resolve));
const openFds = () => new Set(readdirSync('/proc/self/fd').map(Number));

t.test('any QEMU-like chunking, any budget: every message once, in order, with its own fds', async (t) => {
  await fc.assert(
    fc.asyncProperty(
      fc.array(message, { minLength: 1, maxLength: 10 }),
      fc.array(fc.nat(), { maxLength: 30 }),
      fc.array(fc.boolean(), { maxLength: 30 }),
      fc.record({ messages: fc.integer({ min: 1, max: 16 }), bytes: fc.integer({ min: 1, max: 2048 }) }),
      async (messages, cuts, pauses, readBudget) => {
        const before = openFds();
        const encoded = messages.map((m) =>
          encodeMessage({ msgId: m.msgId, command: m.command, flags: MessageType.Command | (m.noReply ? HeaderFlag.NoReply : 0) }, m.payload),
        );
        const starts: number[] = [];
        let total = 0;
        for (const bytes of encoded) {
          starts.push(total);
          total += bytes.length;
        }
        const stream = new Uint8Array(total);
        encoded.forEach((bytes, i) => stream.set(bytes, starts[i]!));

        // Cut points: random ones, plus for each message with fds a cut at its start and one
        // inside it (the fd-carrying sendmsg ends within its message, as QEMU's does).
        const points = new Set(cuts.map((c) => c % (total + 1)));
        messages.forEach((m, i) => {
          if (m.fdCount === 0) return;
          points.add(starts[i]!);
          points.add(starts[i]! + 1 + ((cuts[i] ?? 0) % encoded[i]!.length));
        });
        points.add(total);
        points.delete(0);
        const ends = [...points].sort((a, b) => a - b);

        const [serverFd, peer] = native.socketpair();
        const got: { bytes: Uint8Array; fds: number[] }[] = [];
        const conn = new Connection(native, serverFd, {
          maxMessageSize: 4096,
          maxFds: 4,
          readBudget,
          fastPath(bytes, view, at, size) {
            const command = view.getUint16(at + HeaderLayout.fields.command.offset, true);
            if (command !== Command.RegionRead && command !== Command.RegionWrite) return false;
            got.push({ bytes: bytes.slice(at, at + size), fds: [] });
            return true;
          },
          onFrame(frame) {
            const { header, payload, fds } = frame;
            got.push({ bytes: encodeMessage({ msgId: header.msgId, command: header.command, flags: header.flags }, payload), fds });
          },
          onClose(reason) {
            if (reason !== null) throw reason;
          },
        });
        const sentFds: number[][] = messages.map((m) => Array.from({ length: m.fdCount }, () => native.eventfd(0, 0)));
        try {
          let at = 0;
          for (const [k, end] of ends.entries()) {
            const i = starts.indexOf(at);
            const fds = i >= 0 ? sentFds[i]! : [];
            if (native.sendmsgFrom(peer, stream, at, end - at, fds) !== end - at) throw new Error('short send');
            at = end;
            if (pauses[k] === true) await turn();
          }
          for (let i = 0; i < 200 && got.length < messages.length; i++) await turn();
          if (got.length !== messages.length) throw new Error(`${got.length} of ${messages.length} messages`);
          got.forEach((g, i) => {
            if (Buffer.compare(g.bytes, encoded[i]!) !== 0) throw new Error(`message ${i} differs`);
            if (g.fds.length !== messages[i]!.fdCount) throw new Error(`message ${i}: ${g.fds.length} fds, sent ${messages[i]!.fdCount}`);
          });
          // Each received fd is the one sent with its message: write through the sent one, read through the received one.
          got.forEach((g, i) =>
            g.fds.forEach((fd, k) => {
              native.eventfdWrite(sentFds[i]![k]!, i + 1);
              if (native.eventfdRead(fd) !== BigInt(i + 1)) throw new Error(`message ${i}: fd ${k} is not the one sent`);
            }),
          );
        } finally {
          conn.close();
          native.close(peer);
          for (const g of got) for (const fd of g.fds) native.close(fd);
          for (const fds of sentFds) for (const fd of fds) native.close(fd);
        }
        const leaked = [...openFds()].filter((fd) => !before.has(fd));
        if (leaked.length > 0) throw new Error(`fds left open: ${leaked.join(', ')}`);
      },
    ),
    { numRuns: RUNS },
  );
  t.pass(`${RUNS} streams`);
});
