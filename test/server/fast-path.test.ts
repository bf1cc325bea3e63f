/**
 * The session's REGION_READ/WRITE fast path (Session.handleFast) against the general path
 * (Session.handleFrame with the declared codecs): for any access a client can send, both give the
 * same reply bytes, leave the device in the same state and count and log it the same way; and
 * the fast path declines, before acting, everything that is not a plain register access.
 */
import t from 'tap';
import fc from 'fast-check';
import { Session, FAST_ACCESS_MAX } from '../../src/server/session.js';
import { Framer } from '../../src/transport/framer.js';
import { MdgpuDevice, REGISTER_BAR } from '../../src/vgpu/device.js';
import { MDGPU_REGS } from '../../src/vgpu/regs.js';
import {
  Command,
  encodeMessage,
  encodeRegionReadRequest,
  encodeRegionWriteRequest,
  encodeVersion,
  HeaderFlag,
  HeaderLayout,
  MessageType,
} from '../../src/protocol/index.js';
import { RegionIndex } from '../../src/pci/pci-function.js';
import { setLogSink, setTrace } from '../../src/log.js';
import { FakeHost } from '../helpers/fake-host.js';
import { readU32, serveDevice, u32le } from '../helpers/served-device.js';

const logged: string[] = [];
setLogSink((line) => logged.push(line));

let devices = 0;

/**
 * A ready session on a fresh device, with every reply it sends. Each device has its own name, so
 * its guest-error lines have their own rate-limit keys (at most 8 per key here: none dropped).
 */
function session() {
  const host = new FakeHost();
  const device = new MdgpuDevice({ name: `dev${devices++}`, apertureSize: 1 << 16, host });
  const sent: Uint8Array[] = [];
  const conn = {
    send(message: Uint8Array) {
      sent.push(message);
    },
    sendCopy(bytes: Uint8Array, length: number) {
      sent.push(bytes.slice(0, length));
    },
    close() {},
    isClosed: false,
  };
  const s = new Session(conn, device.pci, (fd) => host.close(fd));
  const framer = new Framer({ maxMessageSize: 1 << 21 });
  const frame = (message: Uint8Array) => {
    const frames = framer.push(message);
    if (frames.length !== 1) throw new Error(`${frames.length} frames`);
    s.handleFrame(frames[0]!);
  };
  frame(encodeMessage({ msgId: 0, command: Command.Version, flags: MessageType.Command }, encodeVersion({ major: 0, minor: 0 })));
  sent.length = 0;
  return { s, device, sent, frame };
}

/** `message` inside a larger buffer at `at`, as the connection's input buffer holds it. */
function inBuffer(message: Uint8Array, at: number) {
  const bytes = new Uint8Array(at + message.length + 16).fill(0xa5);
  bytes.set(message, at);
  return { bytes, view: new DataView(bytes.buffer), at };
}

const registerOffsets = Object.values(MDGPU_REGS).map((r) => r.offset);
const access = fc.record({
  write: fc.boolean(),
  region: fc.oneof(fc.constantFrom(REGISTER_BAR, RegionIndex.CONFIG, 0), fc.integer({ min: 0, max: 12 }), fc.constant(0xffff_ffff)),
  offset: fc.oneof(
    fc.constantFrom(...registerOffsets),
    fc.integer({ min: 0, max: 0x4100 }),
    fc.constantFrom(0x3ffc, 0x3fff, 0xffc, 0x2000, 0x3000, 0xffff_fffc),
  ),
  count: fc.integer({ min: 1, max: FAST_ACCESS_MAX }),
  msgId: fc.integer({ min: 0, max: 0xffff }),
  value: fc.integer({ min: 0, max: 0xffff_ffff }),
  at: fc.integer({ min: 0, max: 40 }),
});

function request(a: { write: boolean; region: number; offset: number; count: number; msgId: number; value: number }): Uint8Array {
  const data = new Uint8Array(a.count).map((_, i) => (a.value >>> (8 * (i % 4))) & 0xff);
  return a.write
    ? encodeMessage(
        { msgId: a.msgId, command: Command.RegionWrite, flags: MessageType.Command },
        encodeRegionWriteRequest({ offset: BigInt(a.offset), region: a.region, data }),
      )
    : encodeMessage(
        { msgId: a.msgId, command: Command.RegionRead, flags: MessageType.Command },
        encodeRegionReadRequest({ offset: BigInt(a.offset), region: a.region, count: a.count }),
      );
}

t.test('any register-sized access: the fast path answers exactly as the codecs do, with the same effects', (t) => {
  fc.assert(
    fc.property(fc.array(access, { minLength: 1, maxLength: 8 }), (accesses) => {
      const fast = session();
      const slow = session();
      for (const a of accesses) {
        const message = request(a);
        const { bytes, view, at } = inBuffer(message, a.at);
        logged.length = 0;
        if (!fast.s.handleFast(bytes, view, at, message.length)) throw new Error('declined a plain register access');
        const fastLog = logged.map((line) => line.replaceAll(fast.device.name, 'DEV'));
        logged.length = 0;
        slow.frame(message);
        const slowLog = logged.map((line) => line.replaceAll(slow.device.name, 'DEV'));
        if (JSON.stringify(fastLog) !== JSON.stringify(slowLog)) throw new Error(`logged ${fastLog} vs ${slowLog}`);
      }
      if (fast.sent.length !== accesses.length || slow.sent.length !== accesses.length) throw new Error('not one reply each');
      fast.sent.forEach((reply, i) => {
        if (Buffer.compare(reply, slow.sent[i]!) !== 0) {
          throw new Error(`reply ${i} differs: ${Buffer.from(reply).toString('hex')} vs ${Buffer.from(slow.sent[i]!).toString('hex')}`);
        }
      });
      const state = (x: ReturnType<typeof session>) =>
        JSON.stringify({
          regs: registerOffsets.map((o) => x.device.pci.regionRead(REGISTER_BAR, o, 4)),
          reads: x.device.pci.trappedReads,
          writes: x.device.pci.trappedWrites,
          counts: [...x.s.commandCounts],
          errors: x.s.errorReplies,
        });
      if (state(fast) !== state(slow)) throw new Error(`state differs: ${state(fast)} vs ${state(slow)}`);
      fast.device.close();
      slow.device.close();
    }),
    { numRuns: 300 },
  );
  t.pass('300 sequences');
  t.end();
});

t.test('SCRATCH written and read back through the fast path', (t) => {
  const { s, sent, device } = session();
  t.teardown(() => device.close());
  const write = request({ write: true, region: REGISTER_BAR, offset: MDGPU_REGS.SCRATCH.offset, count: 4, msgId: 7, value: 0xdeadbeef });
  const read = request({ write: false, region: REGISTER_BAR, offset: MDGPU_REGS.SCRATCH.offset, count: 4, msgId: 8, value: 0 });
  for (const m of [write, read]) t.ok(s.handleFast(m, new DataView(m.buffer), 0, m.length));
  t.same(HeaderLayout.decode(sent[0]!), { msgId: 7, command: Command.RegionWrite, size: 32, flags: MessageType.Reply, error: 0 });
  t.same(HeaderLayout.decode(sent[1]!), { msgId: 8, command: Command.RegionRead, size: 36, flags: MessageType.Reply, error: 0 });
  t.same([...sent[1]!.subarray(32)], [0xef, 0xbe, 0xad, 0xde]);
  t.equal(s.commandCounts.get('RegionRead'), 1);
  t.equal(s.commandCounts.get('RegionWrite'), 1);
  t.end();
});

t.test('the fast path declines, without acting, anything but a plain register access', (t) => {
  const base = { write: false, region: REGISTER_BAR, offset: MDGPU_REGS.SCRATCH.offset, count: 4, msgId: 1, value: 0 };
  const patch = (m: Uint8Array, fn: (v: DataView) => void) => {
    const copy = m.slice();
    fn(new DataView(copy.buffer));
    return copy;
  };
  const cases: [string, Uint8Array, number?][] = [
    ['NO_REPLY', patch(request(base), (v) => v.setUint32(8, MessageType.Command | HeaderFlag.NoReply, true))],
    ['a reply', patch(request(base), (v) => v.setUint32(8, MessageType.Reply, true))],
    ['another command', encodeMessage({ msgId: 1, command: Command.DeviceReset, flags: MessageType.Command })],
    ['an unknown command', patch(request(base), (v) => v.setUint16(2, 99, true))],
    ['count 0', patch(request(base), (v) => v.setUint32(28, 0, true))],
    ['count above 8', request({ ...base, write: false, count: 4 }).map((x, i) => (i === 28 ? 9 : x))],
    ['a 16-byte write', request({ ...base, write: true, count: 8 }).map((x, i) => (i === 28 ? 16 : x))],
    ['an offset past 4 GiB', patch(request(base), (v) => v.setUint32(20, 1, true))],
    ['REGION_READ with data after it', new Uint8Array([...request(base), 0, 0, 0, 0])],
    ['REGION_WRITE shorter than its count', request({ ...base, write: true }).subarray(0, 35)],
    ['a size below the access struct', request(base).subarray(0, 24)],
  ];
  for (const [name, message] of cases) {
    const { s, sent, device } = session();
    const before = JSON.stringify([...s.commandCounts]);
    t.notOk(s.handleFast(message, new DataView(message.buffer, message.byteOffset), 0, message.length), name);
    t.equal(sent.length, 0, `${name}: no reply`);
    t.equal(JSON.stringify([...s.commandCounts]), before, `${name}: not counted`);
    t.equal(device.pci.trappedAccesses, 0, `${name}: no access`);
    device.close();
  }

  // Before VERSION: the general path refuses it.
  const host = new FakeHost();
  const device = new MdgpuDevice({ name: 'early', apertureSize: 1 << 16, host });
  const early = new Session({ send() {}, sendCopy() {}, close() {}, isClosed: false }, device.pci, () => {});
  const m = request(base);
  t.notOk(early.handleFast(m, new DataView(m.buffer), 0, m.length), 'before VERSION');
  device.close();

  // With protocol tracing on, every message takes the general path, which traces it.
  setTrace('protocol');
  t.teardown(() => setTrace(''));
  const traced = session();
  t.notOk(traced.s.handleFast(m, new DataView(m.buffer), 0, m.length), 'with protocol tracing on');
  traced.device.close();
  t.end();
});

t.test('the server wires the fast path: register accesses over a real socket take it, everything else does not', async (t) => {
  const s = serveDevice();
  t.teardown(() => s.close());
  await s.client.version();
  const stats = () => s.server.connection!.stats;
  const before = stats().fastPathMessages;
  await s.client.regionWrite(REGISTER_BAR, MDGPU_REGS.SCRATCH.offset, u32le(0x1234_5678));
  t.equal(readU32(await s.client.regionRead(REGISTER_BAR, MDGPU_REGS.SCRATCH.offset, 4)), 0x1234_5678);
  t.equal(
    await s.client.regionRead(REGISTER_BAR, 0x3ffe, 4).then(
      () => 'none',
      (err: unknown) => (err as { code?: string }).code,
    ),
    'EINVAL',
    'a refused access still gets its error reply',
  );
  t.equal(stats().fastPathMessages - before, 3, 'all three took the fast path');
  await s.client.regionRead(RegionIndex.CONFIG, 0, 256);
  await s.client.deviceInfo();
  t.equal(stats().fastPathMessages - before, 3, 'a 256-byte config read and DEVICE_GET_INFO did not');
  t.equal(s.server.commandCounts().get('RegionRead'), 3);
  t.equal(s.server.commandCounts().get('RegionWrite'), 1);
});
