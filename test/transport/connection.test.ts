/**
 * The connection's defences against a peer that does not play along, over a real socketpair:
 * replies that are never read stop the reading (and resume when read), and a peer that keeps the
 * socket full is served a bounded amount per event-loop turn.
 */
import t from 'tap';
import { Connection, MAX_QUEUED_SEND_BYTES, READ_BUDGET } from '../../src/transport/connection.js';
import { Command, encodeMessage, MessageType, replyMessage } from '../../src/protocol/index.js';
import { isErrno } from '../../src/native/binding.js';
import { native } from '../helpers/served-device.js';

const REQUEST = encodeMessage({ msgId: 1, command: Command.DeviceReset, flags: MessageType.Command });

/** Write as much of `bytes` as the socket takes now. */
function writeSome(fd: number, bytes: Uint8Array): number {
  try {
    return native.sendmsg(fd, bytes, []);
  } catch (err) {
    if (isErrno(err, 'EAGAIN')) return 0;
    throw err;
  }
}

/** Read and discard everything available; the number of bytes. */
function drain(fd: number): number {
  const buf = new Uint8Array(1 << 20);
  let total = 0;
  for (;;) {
    try {
      const got = native.recvmsg(fd, buf, 0, buf.length, 0);
      if (got.bytes === 0) return total;
      total += got.bytes;
    } catch (err) {
      if (isErrno(err, 'EAGAIN')) return total;
      throw err;
    }
  }
}

const turn = () => new Promise((resolve) => setImmediate(resolve));

t.test('defaults', (t) => {
  t.equal(MAX_QUEUED_SEND_BYTES, 4 << 20);
  t.same(READ_BUDGET, { messages: 16, bytes: 1 << 20 });
  const [a, b] = native.socketpair();
  t.throws(() => new Connection(native, a, { maxMessageSize: 64, maxFds: 0, readBudget: { messages: 0, bytes: 1 }, onFrame() {}, onClose() {} }), RangeError);
  native.close(a);
  native.close(b);
  t.end();
});

t.test('a peer that never reads its replies: reading stops at the cap and resumes when it reads', async (t) => {
  const [serverFd, peerFd] = native.socketpair();
  const cap = 256 * 1024;
  const replySize = 64 * 1024;
  let handled = 0;
  const conn: Connection = new Connection(native, serverFd, {
    maxMessageSize: 4096,
    maxFds: 0,
    maxQueuedSendBytes: cap,
    onFrame(frame) {
      handled++;
      conn.send(replyMessage(frame.header, new Uint8Array(replySize - 16)));
    },
    onClose() {},
  });
  t.teardown(() => {
    conn.close();
    native.close(peerFd);
  });
  // 2,000 requests (64 KiB of them), each asking for a 64 KiB reply: 125 MiB if all were answered.
  const burst = new Uint8Array(REQUEST.length * 2000);
  for (let i = 0; i < 2000; i++) burst.set(REQUEST, i * REQUEST.length);
  let sent = 0;
  for (let i = 0; i < 200 && sent < burst.length; i++) {
    sent += writeSome(peerFd, burst.subarray(sent));
    await turn();
  }
  for (let i = 0; i < 20; i++) await turn();
  t.ok(conn.readPaused, 'reading paused');
  t.ok(conn.stats.backpressurePauses > 0);
  t.ok(conn.pendingSendBytes <= cap + replySize, `queued ${conn.pendingSendBytes} bytes ≤ cap + one reply`);
  const handledWhilePaused = handled;
  t.ok(handledWhilePaused < 2000, `${handledWhilePaused} of 2000 requests handled before the pause`);
  for (let i = 0; i < 10; i++) await turn();
  t.equal(handled, handledWhilePaused, 'nothing more is read while paused');

  // The peer reads: replies flow, reading resumes, every request is answered in the end.
  let received = 0;
  for (let i = 0; i < 5000 && received < 2000 * replySize; i++) {
    received += drain(peerFd);
    if (sent < burst.length) sent += writeSome(peerFd, burst.subarray(sent));
    await turn();
  }
  t.equal(handled, 2000, 'every request handled once the peer reads');
  t.equal(received, 2000 * replySize, 'every reply delivered');
  t.notOk(conn.readPaused);
  t.equal(conn.pendingSendBytes, 0);
});

t.test('a peer that keeps the socket full gets at most one budget per loop turn', async (t) => {
  const [serverFd, peerFd] = native.socketpair();
  let handled = 0;
  const perTurn: number[] = [];
  const conn = new Connection(native, serverFd, {
    maxMessageSize: 4096,
    maxFds: 0,
    readBudget: { messages: 10, bytes: 1 << 20 },
    onFrame() {
      handled++;
    },
    onClose() {},
  });
  t.teardown(() => {
    conn.close();
    native.close(peerFd);
  });
  const burst = new Uint8Array(REQUEST.length * 1000);
  for (let i = 0; i < 1000; i++) burst.set(REQUEST, i * REQUEST.length);
  t.equal(writeSome(peerFd, burst), burst.length, 'a thousand requests in the socket at once');
  // setImmediate runs once per loop turn, after the poll phase: it sees each turn's work.
  for (let i = 0; i < 200 && handled < 1000; i++) {
    const before = handled;
    await turn();
    perTurn.push(handled - before);
  }
  t.equal(handled, 1000, 'all served in the end');
  t.ok(Math.max(...perTurn) <= 10, `at most 10 per turn (max ${Math.max(...perTurn)})`);
  t.ok(conn.stats.budgetYields >= 99, `${conn.stats.budgetYields} wakeups ended with work left`);
});

t.test('the byte budget counts replies: one large reply per wakeup', async (t) => {
  const [serverFd, peerFd] = native.socketpair();
  let handled = 0;
  const perTurn: number[] = [];
  const conn: Connection = new Connection(native, serverFd, {
    maxMessageSize: 4096,
    maxFds: 0,
    readBudget: { messages: 64, bytes: 64 * 1024 },
    onFrame(frame) {
      handled++;
      conn.send(replyMessage(frame.header, new Uint8Array(64 * 1024)));
    },
    onClose() {},
  });
  t.teardown(() => {
    conn.close();
    native.close(peerFd);
  });
  const burst = new Uint8Array(REQUEST.length * 20);
  for (let i = 0; i < 20; i++) burst.set(REQUEST, i * REQUEST.length);
  writeSome(peerFd, burst);
  for (let i = 0; i < 200 && handled < 20; i++) {
    const before = handled;
    drain(peerFd);
    await turn();
    perTurn.push(handled - before);
  }
  t.equal(handled, 20);
  t.ok(Math.max(...perTurn) <= 1, `one 64 KiB reply per turn (max ${Math.max(...perTurn)})`);
});
