/**
 * The connection's write path over a real socketpair: replies that pile up while the peer does not
 * read are sent one budget per readiness wakeup (the F4(c) config-read flood once held the loop
 * for 100s of ms in one flush, one sendmsg per 36-byte reply, while the attacker read as fast as
 * the daemon wrote), they leave coalesced (far fewer sendmsg calls than replies), and a reply with
 * fds is never glued to its neighbours, so its fds still arrive with its own bytes.
 *
 * Wakeups are counted by wrapping the poller's callback: everything the connection does in one
 * callback is one wakeup's work, whatever the peer does meanwhile.
 */
import t, { type Test } from 'tap';
import fc from 'fast-check';
import { Connection, type ConnectionOptions, type SocketOps } from '../../src/transport/connection.js';
import type { PollCallback } from '../../src/native/binding.js';
import { Command, encodeMessage, encodeRegionReadRequest, HeaderLayout, MessageType } from '../../src/protocol/index.js';
import { native } from '../helpers/served-device.js';
import { isOpen } from '../native/fixtures/native.js';

const turn = () => new Promise((resolve) => setImmediate(resolve));

/** What one readiness callback did on the send side. */
interface Wakeup {
  sends: number;
  bytes: number;
}

/** The real socket calls, with every sendmsg counted against the poller callback it ran in. */
function wakeupOps() {
  const wakeups: Wakeup[] = [];
  let current: Wakeup | null = null;
  let sends = 0;
  const ops: SocketOps = {
    recvmsgInto: native.recvmsgInto,
    sendmsgFrom(fd, buf, offset, length, fds) {
      const n = native.sendmsgFrom(fd, buf, offset, length, fds);
      sends++;
      if (current !== null) {
        current.sends++;
        if (n > 0) current.bytes += n;
      }
      return n;
    },
    WOULD_BLOCK: native.WOULD_BLOCK,
    close: native.close,
    // A constructor that returns the real poller, its callback wrapped.
    Poller: function CountingPoller(fd: number, callback: PollCallback) {
      return new native.Poller(fd, (err, events) => {
        current = { sends: 0, bytes: 0 };
        wakeups.push(current);
        try {
          callback(err, events);
        } finally {
          current = null;
        }
      });
    } as unknown as SocketOps['Poller'],
    POLL_READABLE: native.POLL_READABLE,
    POLL_WRITABLE: native.POLL_WRITABLE,
  };
  return { ops, wakeups, sendCount: () => sends };
}

/** A 4-byte config-space read, the F4(c) attacker's request (32 bytes). */
const configRead = (msgId: number) =>
  encodeMessage({ msgId, command: Command.RegionRead, flags: MessageType.Command }, encodeRegionReadRequest({ offset: 0n, region: 7, count: 4 }));
const REQUEST_SIZE = 32;
/** Its reply as the session's fast path builds it: header, access struct, 4 bytes of data. */
const REPLY_SIZE = 36;

/** A server connection that answers every request at once from one reused buffer, as the session does. */
function server(t: Test, ops: SocketOps, options: Partial<ConnectionOptions> = {}) {
  const [serverFd, peer] = native.socketpair();
  const reply = new Uint8Array(REPLY_SIZE);
  const replyView = new DataView(reply.buffer);
  let handled = 0;
  const answer = (msgId: number) => {
    handled++;
    replyView.setUint16(HeaderLayout.fields.msgId.offset, msgId, true);
    replyView.setUint16(HeaderLayout.fields.command.offset, Command.RegionRead, true);
    replyView.setUint32(HeaderLayout.fields.size.offset, REPLY_SIZE, true);
    replyView.setUint32(HeaderLayout.fields.flags.offset, MessageType.Reply, true);
    // The "register" read back: the message id, so every reply is checkable.
    replyView.setUint32(32, msgId, true);
    conn.sendCopy(reply, REPLY_SIZE);
  };
  const conn: Connection = new Connection(ops, serverFd, {
    maxMessageSize: 4096,
    maxFds: 4,
    fastPath(_bytes, view, at) {
      answer(view.getUint16(at + HeaderLayout.fields.msgId.offset, true));
      return true;
    },
    // A request split by the message budget's shorter read takes the framer.
    onFrame(frame) {
      answer(frame.header.msgId);
    },
    onClose() {},
    ...options,
  });
  t.teardown(() => {
    conn.close();
    native.close(peer);
  });
  return { conn, peer, handled: () => handled };
}

/** Everything readable on `fd` now, appended to `into` at `at`; the new end. */
function drainInto(fd: number, into: Uint8Array, at: number): number {
  const slots = new Int32Array(2 + 4);
  while (at < into.length) {
    const n = native.recvmsgInto(fd, into, at, into.length - at, slots);
    if (n === native.WOULD_BLOCK || n === 0) return at;
    at += n;
  }
  return at;
}

t.test('replies that piled up go out one budget per wakeup, even to a peer that keeps reading them', async (t) => {
  const budget = { messages: 8, bytes: 4096 };
  const counted = wakeupOps();
  const { conn, peer, handled } = server(t, counted.ops, { readBudget: budget });
  // 4,000 config reads in the socket, replies unread: after a few hundred replies the socket is
  // full (each 36-byte sendmsg is a buffer of its own in the kernel) and the rest queue up.
  const N = 4000;
  const requests = new Uint8Array(N * REQUEST_SIZE);
  for (let i = 0; i < N; i++) requests.set(configRead(i & 0xffff), i * REQUEST_SIZE);
  let written = 0;
  for (let i = 0; i < 5000 && handled() < N; i++) {
    if (written < requests.length) {
      const n = native.sendmsgFrom(peer, requests, written, requests.length - written, []);
      if (n > 0) written += n;
    }
    await turn();
  }
  t.equal(handled(), N, 'every request handled');
  t.ok(conn.pendingSendBytes > 100 * REPLY_SIZE, `replies queued while the peer did not read (${conn.pendingSendBytes} bytes)`);

  // The peer now reads everything there is before every loop turn: each wakeup finds an empty
  // socket and could send until the queue is empty. It may send one budget.
  const got = new Uint8Array(N * REPLY_SIZE);
  const queuedReplies = conn.pendingSendBytes / REPLY_SIZE;
  const sendsBefore = counted.sendCount();
  const firstWakeup = counted.wakeups.length;
  let at = 0;
  for (let i = 0; i < 5000 && at < got.length; i++) {
    at = drainInto(peer, got, at);
    await turn();
  }
  t.equal(at, got.length, 'every reply arrived');
  const wakeups = counted.wakeups.slice(firstWakeup);
  const maxSends = Math.max(...wakeups.map((w) => w.sends));
  const maxBytes = Math.max(...wakeups.map((w) => w.bytes));
  t.ok(maxSends <= budget.messages, `at most ${budget.messages} sendmsg calls per wakeup (max ${maxSends})`);
  t.ok(maxBytes <= budget.bytes, `at most ${budget.bytes} bytes sent per wakeup (max ${maxBytes})`);
  t.ok(conn.stats.sendYields > 0, `${conn.stats.sendYields} wakeups left replies for a later turn`);
  const sends = counted.sendCount() - sendsBefore;
  t.ok(sends * 10 < queuedReplies, `${queuedReplies} queued replies coalesced: ${sends} sendmsg calls sent them`);

  const view = new DataView(got.buffer);
  let inOrder = true;
  for (let i = 0; i < N; i++) {
    const base = i * REPLY_SIZE;
    if (
      view.getUint16(base + HeaderLayout.fields.msgId.offset, true) !== (i & 0xffff) ||
      view.getUint32(base + HeaderLayout.fields.size.offset, true) !== REPLY_SIZE ||
      view.getUint32(base + 32, true) !== (i & 0xffff)
    ) {
      inOrder = false;
      break;
    }
  }
  t.ok(inOrder, 'every reply whole, in order');
  t.equal(conn.pendingSendBytes, 0);
});

t.test('a queued reply with fds is never glued to its neighbours: its fds arrive with its own bytes', async (t) => {
  const counted = wakeupOps();
  const { conn, peer } = server(t, counted.ops);
  // Fill the socket, so what follows waits in the queue.
  const filler = new Uint8Array(64 * 1024);
  let fillerBytes = 0;
  for (let i = 0; conn.pendingSendBytes === 0 && i < 100; i++) {
    conn.sendCopy(filler, filler.length);
    fillerBytes += filler.length;
  }
  t.ok(conn.pendingSendBytes > 0, 'the socket is full');
  const efd = native.eventfd(0, 0);
  t.teardown(() => native.close(efd));
  const small = (tag: number) => {
    const m = new Uint8Array(40).fill(tag);
    conn.sendCopy(m, m.length);
  };
  small(0xa1);
  small(0xa2);
  conn.send(new Uint8Array(16).fill(0xb0), [efd]);
  small(0xc1);
  small(0xc2);

  // Read as QEMU does, one message at a time: the fd must come with the 16-byte message and no other.
  const buf = new Uint8Array(filler.length);
  const slots = new Int32Array(2 + 4);
  const readExactly = async (length: number): Promise<{ bytes: Uint8Array; fds: number[] }> => {
    let at = 0;
    const fds: number[] = [];
    for (let i = 0; i < 1000 && at < length; i++) {
      const n = native.recvmsgInto(peer, buf, at, length - at, slots);
      if (n > 0) {
        at += n;
        for (let k = 0; k < slots[0]!; k++) fds.push(slots[2 + k]!);
      } else {
        await turn();
      }
    }
    return { bytes: buf.slice(0, at), fds };
  };
  for (let left = fillerBytes; left > 0; ) {
    const part = await readExactly(Math.min(left, buf.length));
    t.same(part.fds, [], 'no fd with the filler');
    left -= part.bytes.length;
  }
  const expected: [number, number, boolean][] = [
    [40, 0xa1, false],
    [40, 0xa2, false],
    [16, 0xb0, true],
    [40, 0xc1, false],
    [40, 0xc2, false],
  ];
  for (const [length, tag, withFd] of expected) {
    const { bytes, fds } = await readExactly(length);
    t.ok(bytes.length === length && bytes.every((b) => b === tag), `message ${tag.toString(16)} whole`);
    t.equal(fds.length, withFd ? 1 : 0, `message ${tag.toString(16)} ${withFd ? 'brings its fd' : 'brings no fd'}`);
    for (const fd of fds) {
      t.ok(isOpen(fd));
      native.close(fd);
    }
  }
  t.equal(conn.pendingSendBytes, 0);
});

t.test('any replies, any budget, any way the peer reads: every byte in order, fds with their own message', async (t) => {
  const reply = fc.record({
    // Small ones are coalesced, mid-sized ones grow a chunk, large ones wait in their own buffer.
    size: fc.oneof(fc.integer({ min: 16, max: 64 }), fc.integer({ min: 16, max: 5000 }), fc.integer({ min: 60_000, max: 70_000 })),
    fdCount: fc.oneof(fc.constant(0), fc.constant(0), fc.integer({ min: 1, max: 2 })),
    copied: fc.boolean(),
  });
  await fc.assert(
    fc.asyncProperty(
      fc.array(reply, { minLength: 1, maxLength: 40 }),
      // Per step: what the peer does before the next reply is sent (read up to n bytes, or a loop turn).
      fc.array(fc.oneof(fc.integer({ min: 1, max: 100_000 }), fc.constant(0)), { maxLength: 40 }),
      // From 512 bytes: a wakeup may send no more than the byte budget, so 1 byte would take 280,000 turns.
      fc.record({ messages: fc.integer({ min: 1, max: 16 }), bytes: fc.integer({ min: 512, max: 8192 }) }),
      async (replies, steps, budget) => {
        const [serverFd, peer] = native.socketpair();
        const conn = new Connection(native, serverFd, { maxMessageSize: 4096, maxFds: 0, readBudget: budget, onFrame() {}, onClose() {} });
        const efd = native.eventfd(0, 0);
        const pattern = (i: number, size: number) => {
          const bytes = new Uint8Array(size);
          for (let j = 0; j < size; j++) bytes[j] = (i * 31 + j) & 0xff;
          return bytes;
        };
        // The peer reads message by message, as QEMU does: never past the end of the current one.
        let current = 0;
        let have = 0;
        let fdsSeen = 0;
        const wrong: string[] = [];
        const buf = new Uint8Array(replies.reduce((n, r) => Math.max(n, r.size), 0));
        const slots = new Int32Array(2 + 4);
        const read = (limit: number) => {
          while (limit > 0 && current < replies.length) {
            const { size, fdCount } = replies[current]!;
            const n = native.recvmsgInto(peer, buf, have, Math.min(size - have, limit), slots);
            if (n === native.WOULD_BLOCK || n === 0) return;
            for (let k = 0; k < slots[0]!; k++) native.close(slots[2 + k]!);
            fdsSeen += slots[0]!;
            have += n;
            limit -= n;
            if (have === size) {
              const expected = pattern(current, size);
              if (!buf.subarray(0, size).every((b, j) => b === expected[j])) wrong.push(`reply ${current}: bytes differ`);
              if (fdsSeen !== fdCount) wrong.push(`reply ${current}: ${fdsSeen} fds, expected ${fdCount}`);
              current++;
              have = 0;
              fdsSeen = 0;
            }
          }
        };
        try {
          for (let i = 0; i < replies.length; i++) {
            const { size, fdCount, copied } = replies[i]!;
            const bytes = pattern(i, size);
            if (copied && fdCount === 0) {
              conn.sendCopy(bytes, size);
              // The caller reuses its buffer at once.
              bytes.fill(0xee);
            } else {
              conn.send(bytes, new Array<number>(fdCount).fill(efd));
            }
            const step = steps[i] ?? 0;
            if (step > 0) read(step);
            else await turn();
          }
          for (let i = 0; i < 10_000 && current < replies.length; i++) {
            read(Number.MAX_SAFE_INTEGER);
            await turn();
          }
          return wrong.length === 0 && current === replies.length && conn.pendingSendBytes === 0 && !conn.isClosed;
        } finally {
          conn.close();
          native.close(peer);
          native.close(efd);
        }
      },
    ),
    { numRuns: 40 },
  );
  t.pass('every reply arrived whole, in order, with exactly its own fds');
});
