/**
 * The connection's read path over a real socketpair (issue 12): one recvmsg per small message,
 * no read that only finds the socket empty, EAGAIN as a value and never an exception, the fast
 * path for whole fd-less messages, every message split at every byte offset, several messages
 * in one read, fds that belong to the read's last message, messages kept across wakeups when a
 * limit stops one, and fds closed on every error path.
 */
import { readdirSync } from 'node:fs';
import t, { type Test } from 'tap';
import { BOUNDARY_READ, Connection, type ConnectionOptions, type SocketOps } from '../../src/transport/connection.js';
import type { Frame } from '../../src/transport/framer.js';
import {
  Command,
  DmaMapFlag,
  encodeDmaMapRequest,
  encodeMessage,
  encodeRegionReadRequest,
  encodeRegionWriteRequest,
  encodeVersion,
  HeaderLayout,
  MessageType,
  replyMessage,
} from '../../src/protocol/index.js';
import { native } from '../helpers/served-device.js';
import { isOpen } from '../native/fixtures/native.js';

const turn = () => new Promise((resolve) => setImmediate(resolve));
async function turns(n: number): Promise<void> {
  for (let i = 0; i < n; i++) await turn();
}

const regionRead = (msgId: number) =>
  encodeMessage({ msgId, command: Command.RegionRead, flags: MessageType.Command }, encodeRegionReadRequest({ offset: 0xcn, region: 2, count: 4 }));
const regionWrite = (msgId: number) =>
  encodeMessage(
    { msgId, command: Command.RegionWrite, flags: MessageType.Command },
    encodeRegionWriteRequest({ offset: 0xcn, region: 2, data: Uint8Array.of(1, 2, 3, msgId & 0xff) }),
  );
const reset = (msgId: number) => encodeMessage({ msgId, command: Command.DeviceReset, flags: MessageType.Command });
const dmaMap = (msgId: number) =>
  encodeMessage(
    { msgId, command: Command.DmaMap, flags: MessageType.Command },
    encodeDmaMapRequest({ argsz: 32, flags: DmaMapFlag.Read | DmaMapFlag.Write, offset: 0n, address: 0x10000n, size: 0x1000n }),
  );
const version = (msgId: number) =>
  encodeMessage(
    { msgId, command: Command.Version, flags: MessageType.Command },
    encodeVersion({ major: 0, minor: 0, capabilities: { maxMsgFds: 16, maxDataXferSize: 1 << 20, pgsizes: 4096, maxDmaMaps: 65535 } }),
  );

function concat(...parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

/** A message as the connection handed it on: its bytes, its fds, and which path took it. */
interface Delivered {
  bytes: Uint8Array;
  fds: number[];
  path: 'fast' | 'frame';
}

function frameBytes(frame: Frame): Uint8Array {
  return encodeMessage({ msgId: frame.header.msgId, command: frame.header.command, flags: frame.header.flags, error: frame.header.error }, frame.payload);
}

/** The socket calls, counted: what recvmsgInto returned each time, and whether any call threw. */
function countingOps() {
  const reads: number[] = [];
  const sends: number[] = [];
  const thrown: unknown[] = [];
  const ops: SocketOps = {
    recvmsgInto(fd, buf, offset, length, fds) {
      try {
        const n = native.recvmsgInto(fd, buf, offset, length, fds);
        reads.push(n);
        return n;
      } catch (err) {
        thrown.push(err);
        throw err;
      }
    },
    sendmsgFrom(fd, buf, offset, length, fds) {
      try {
        const n = native.sendmsgFrom(fd, buf, offset, length, fds);
        sends.push(n);
        return n;
      } catch (err) {
        thrown.push(err);
        throw err;
      }
    },
    WOULD_BLOCK: native.WOULD_BLOCK,
    close: native.close,
    Poller: native.Poller,
    POLL_READABLE: native.POLL_READABLE,
    POLL_WRITABLE: native.POLL_WRITABLE,
  };
  return { ops, reads, sends, thrown };
}

/**
 * A connection on one end of a socketpair; the test writes to `peer`. The fast path takes
 * REGION_READ/WRITE (as the session does), everything else goes through the framer.
 */
function connect(t: Test, options: Partial<ConnectionOptions> = {}, ops: SocketOps = native) {
  const [serverFd, peer] = native.socketpair();
  const delivered: Delivered[] = [];
  const conn: Connection = new Connection(ops, serverFd, {
    maxMessageSize: 4096,
    maxFds: 4,
    fastPath(bytes, view, at, size) {
      const command = view.getUint16(at + HeaderLayout.fields.command.offset, true);
      if (command !== Command.RegionRead && command !== Command.RegionWrite) return false;
      delivered.push({ bytes: bytes.slice(at, at + size), fds: [], path: 'fast' });
      return true;
    },
    onFrame(frame) {
      delivered.push({ bytes: frameBytes(frame), fds: frame.fds, path: 'frame' });
    },
    onClose() {},
    ...options,
  });
  let peerOpen = true;
  t.teardown(() => {
    conn.close();
    if (peerOpen) native.close(peer);
    for (const d of delivered) for (const fd of d.fds) if (isOpen(fd)) native.close(fd);
  });
  const hangUp = () => {
    native.close(peer);
    peerOpen = false;
  };
  return { conn, peer, delivered, hangUp };
}

t.test('a whole small request takes one recvmsg: no second read that finds the socket empty', async (t) => {
  const counted = countingOps();
  const { peer, delivered } = connect(t, {}, counted.ops);
  for (let i = 0; i < 20; i++) {
    const message = i % 2 === 0 ? regionRead(i) : regionWrite(i);
    native.sendmsgFrom(peer, message, 0, message.length, []);
    await turns(3);
    t.equal(delivered.length, i + 1);
    t.same(delivered[i]!.bytes, message);
    t.equal(delivered[i]!.path, 'fast');
  }
  t.equal(counted.reads.length, 20, 'one recvmsgInto per message');
  t.notOk(counted.reads.includes(native.WOULD_BLOCK), 'never one that found nothing');
  t.same(counted.thrown, []);
});

t.test('two messages in one read: both handled, in order, from one recvmsg', async (t) => {
  const counted = countingOps();
  const { peer, delivered } = connect(t, {}, counted.ops);
  const both = concat(regionRead(1), regionRead(2));
  t.equal(both.length, BOUNDARY_READ);
  native.sendmsgFrom(peer, both, 0, both.length, []);
  await turns(3);
  t.same(
    delivered.map((d) => d.bytes),
    [regionRead(1), regionRead(2)],
  );
  t.equal(counted.reads[0], 64, 'one read took both');
  // The read filled the buffer, so the socket may hold more: the next read asks, and gets EAGAIN as a value.
  t.same(counted.reads.slice(1), [native.WOULD_BLOCK]);
  t.same(counted.thrown, [], 'EAGAIN never thrown');

  const mixed = concat(reset(3), regionWrite(4), reset(5));
  native.sendmsgFrom(peer, mixed, 0, mixed.length, []);
  await turns(3);
  t.same(
    delivered.slice(2).map((d) => [d.bytes, d.path]),
    [
      [reset(3), 'frame'],
      [regionWrite(4), 'fast'],
      [reset(5), 'frame'],
    ],
    'fast path and framer interleave in stream order',
  );
});

t.test('every message split at every byte offset arrives once, whole, by one path', async (t) => {
  const messages: [string, Uint8Array, boolean][] = [
    ['REGION_READ', regionRead(7), false],
    ['REGION_WRITE', regionWrite(8), false],
    ['DEVICE_RESET', reset(9), false],
    ['VERSION (longer than one boundary read)', version(10), false],
    ['DMA_MAP with an fd', dmaMap(11), true],
  ];
  for (const [name, message, withFd] of messages) {
    t.test(name, async (t) => {
      for (let split = 1; split < message.length; split++) {
        const { peer, delivered } = connect(t);
        const efd = withFd ? native.eventfd(0, 0) : -1;
        native.sendmsgFrom(peer, message, 0, split, withFd ? [efd] : []);
        await turns(2);
        t.equal(delivered.length, 0, `${split}: nothing before the message is whole`);
        native.sendmsgFrom(peer, message, split, message.length - split, []);
        await turns(3);
        if (withFd) native.close(efd);
        t.equal(delivered.length, 1, `${split}: exactly once`);
        t.same(delivered[0]?.bytes, message, `${split}: the same bytes`);
        t.equal(delivered[0]?.fds.length, withFd ? 1 : 0, `${split}: its fds`);
      }
    });
  }
});

t.test('fds belong to the message that holds the read’s last byte', async (t) => {
  t.test('[no-fd message][fd message] in one read: the fd goes to the second', async (t) => {
    const { peer, delivered } = connect(t);
    const efd = native.eventfd(0, 0);
    t.teardown(() => native.close(efd));
    const first = regionRead(1);
    const second = dmaMap(2);
    native.sendmsgFrom(peer, first, 0, first.length, []);
    native.sendmsgFrom(peer, second, 0, second.length, [efd]);
    await turns(4);
    t.same(
      delivered.map((d) => [d.bytes, d.fds.length, d.path]),
      [
        [first, 0, 'fast'],
        [second, 1, 'frame'],
      ],
    );
    native.eventfdWrite(efd, 3);
    t.equal(native.eventfdRead(delivered[1]!.fds[0]!), 3n, 'and it is the fd that was sent');
  });

  t.test('a message the fast path would take goes through the framer when it owns the fds', async (t) => {
    const { peer, delivered } = connect(t);
    const efd = native.eventfd(0, 0);
    t.teardown(() => native.close(efd));
    native.sendmsgFrom(peer, regionRead(1), 0, 32, []);
    native.sendmsgFrom(peer, regionRead(2), 0, 32, [efd]);
    await turns(4);
    t.same(
      delivered.map((d) => [d.fds.length, d.path]),
      [
        [0, 'fast'],
        [1, 'frame'],
      ],
      'so its receiver sees (and refuses) the fds',
    );
  });

  t.test('[fd message][no-fd message]: Linux ends the read after the fds', async (t) => {
    const counted = countingOps();
    const { peer, delivered } = connect(t, {}, counted.ops);
    const efd = native.eventfd(0, 0);
    t.teardown(() => native.close(efd));
    native.sendmsgFrom(peer, reset(1), 0, 16, [efd]);
    native.sendmsgFrom(peer, regionRead(2), 0, 32, []);
    await turns(4);
    t.same(
      delivered.map((d) => [d.fds.length, d.path]),
      [
        [1, 'frame'],
        [0, 'fast'],
      ],
    );
    t.equal(counted.reads[0], 16, 'the first read ended with the fd-carrying message');
  });

  t.test('fds that come with a later piece of a message stay with it', async (t) => {
    const { peer, delivered } = connect(t);
    const efd = native.eventfd(0, 0);
    t.teardown(() => native.close(efd));
    const message = dmaMap(3);
    native.sendmsgFrom(peer, message, 0, 20, []);
    await turns(2);
    native.sendmsgFrom(peer, message, 20, message.length - 20, [efd]);
    await turns(3);
    t.same(
      delivered.map((d) => [d.bytes, d.fds.length]),
      [[message, 1]],
    );
  });
});

t.test('messages read together wait when a limit stops the wakeup, and are served on later turns with the socket empty', async (t) => {
  t.test('the byte budget', async (t) => {
    const { conn, peer, delivered } = connect(t, { readBudget: { messages: 16, bytes: 16 } });
    const four = concat(reset(1), reset(2), reset(3), reset(4));
    native.sendmsgFrom(peer, four, 0, four.length, []);
    const perTurn: number[] = [];
    for (let i = 0; i < 20 && delivered.length < 4; i++) {
      const before = delivered.length;
      await turn();
      perTurn.push(delivered.length - before);
    }
    t.equal(delivered.length, 4, 'all four served');
    t.ok(Math.max(...perTurn) <= 1, `one per turn (${perTurn.join(' ')})`);
    t.ok(conn.stats.budgetYields >= 3);
    t.same(
      delivered.map((d) => HeaderLayout.decode(d.bytes).msgId),
      [1, 2, 3, 4],
    );
  });

  t.test('the message budget never reads more messages than it may serve', async (t) => {
    const counted = countingOps();
    const { peer, delivered } = connect(t, { readBudget: { messages: 2, bytes: 1 << 20 } }, counted.ops);
    const four = concat(reset(1), reset(2), reset(3), reset(4));
    native.sendmsgFrom(peer, four, 0, four.length, []);
    await turns(6);
    t.equal(delivered.length, 4);
    t.ok(
      counted.reads.every((n) => n <= 32),
      `reads of at most two header-only messages: ${counted.reads.join(' ')}`,
    );
  });

  t.test('backpressure: held messages wait for the peer to read, then go on', async (t) => {
    const cap = 1024;
    const { conn, peer, delivered } = connect(t, {
      maxQueuedSendBytes: cap,
      onFrame(frame) {
        delivered.push({ bytes: frameBytes(frame), fds: frame.fds, path: 'frame' });
        // 1 MiB: more than the socket buffer, so most of it waits in the connection.
        conn.send(replyMessage(frame.header, new Uint8Array(1 << 20)));
      },
    });
    const four = concat(reset(1), reset(2), reset(3), reset(4));
    native.sendmsgFrom(peer, four, 0, four.length, []);
    await turns(10);
    t.equal(delivered.length, 1, 'one request served, then reading paused with three read but waiting');
    t.ok(conn.readPaused);
    const buf = new Uint8Array(1 << 20);
    const slots = new Int32Array(2);
    let received = 0;
    for (let i = 0; i < 2000 && received < 4 * ((1 << 20) + 16); i++) {
      for (let n = native.recvmsgInto(peer, buf, 0, buf.length, slots); n > 0; n = native.recvmsgInto(peer, buf, 0, buf.length, slots)) received += n;
      await turn();
    }
    t.equal(delivered.length, 4, 'the held three were served once the peer read');
    t.equal(received, 4 * ((1 << 20) + 16), 'and every reply arrived');
  });
});

t.test('EAGAIN on the send side is a value too: replies queue, keep their order and survive the caller reusing its buffer', async (t) => {
  const counted = countingOps();
  const { conn, peer } = connect(t, {}, counted.ops);
  const buf = new Uint8Array(64 * 1024);
  let sent = 0;
  for (let i = 0; conn.pendingSendBytes === 0 && i < 100; i++) {
    buf.fill(i & 0xff);
    conn.sendCopy(buf, buf.length);
    sent++;
  }
  t.ok(conn.pendingSendBytes > 0, 'the socket buffer filled and the rest was queued');
  t.ok(counted.sends.includes(native.WOULD_BLOCK) || counted.sends.some((n) => n < buf.length), 'a short or blocked send');
  // The caller reuses its buffer at once; what was queued is a copy.
  buf.fill(0xff);
  const got = new Uint8Array(sent * buf.length);
  let at = 0;
  const slots = new Int32Array(2);
  for (let i = 0; i < 1000 && at < got.length; i++) {
    for (let n = native.recvmsgInto(peer, got, at, got.length - at, slots); n > 0 && at < got.length; ) {
      at += n;
      if (at < got.length) n = native.recvmsgInto(peer, got, at, got.length - at, slots);
    }
    await turn();
  }
  t.equal(at, got.length, 'every byte arrived');
  let ok = true;
  for (let i = 0; i < sent; i++) if (!got.subarray(i * buf.length, (i + 1) * buf.length).every((x) => x === (i & 0xff))) ok = false;
  t.ok(ok, 'in order, each message as it was when sent');
  t.equal(conn.pendingSendBytes, 0);
  t.same(counted.thrown, [], 'no exception on the way');
});

t.test('fds still waiting in the input are closed when the connection closes', async (t) => {
  let closeOnFirst = true;
  const { conn, peer, delivered } = connect(t, {
    fastPath() {
      // A fatal error on the first message, with the fd-carrying second one already read.
      if (closeOnFirst) conn.close(new Error('fatal'));
      closeOnFirst = false;
      return true;
    },
  });
  const efd = native.eventfd(0, 0);
  t.teardown(() => native.close(efd));
  const before = new Set(fdsOpen());
  native.sendmsgFrom(peer, regionRead(1), 0, 32, []);
  native.sendmsgFrom(peer, reset(2), 0, 16, [efd]);
  await turns(4);
  t.ok(conn.isClosed);
  t.same(delivered, []);
  const leaked = fdsOpen().filter((fd) => !before.has(fd));
  t.same(leaked, [], 'the received fd was closed with the connection');
});

t.test('a partial message’s fds are closed when the peer hangs up', async (t) => {
  const { conn, peer, delivered, hangUp } = connect(t);
  const efd = native.eventfd(0, 0);
  t.teardown(() => native.close(efd));
  const before = new Set(fdsOpen());
  native.sendmsgFrom(peer, regionRead(1), 0, 32, []);
  native.sendmsgFrom(peer, dmaMap(2), 0, 40, [efd]);
  await turns(3);
  t.equal(delivered.length, 1);
  hangUp();
  await turns(3);
  t.ok(conn.isClosed);
  t.same(
    fdsOpen().filter((fd) => !before.has(fd)),
    [],
    'the fd of the unfinished DMA_MAP was closed',
  );
});

function fdsOpen(): number[] {
  return readdirSync('/proc/self/fd').map(Number);
}
