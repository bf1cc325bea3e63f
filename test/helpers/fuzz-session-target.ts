/**
 * Jazzer.js fuzz target for the vfio-user session dispatcher: the input is the byte stream a
 * client sends, framed by the real Framer and dispatched by the real Session against a real
 * MdgpuDevice (PCI function, registers, mailbox, DMA space) on in-memory host ops (FakeHost).
 *
 * A finding is anything the daemon must never do with client input: an exception out of the
 * framer other than FatalProtocolError or out of the session at all (its REGION_READ/WRITE fast
 * path included, tried first for every whole message as the connection does), an "internal error" (the
 * session's EIO path for bugs in mdgpu), a reply to a NO_REPLY command, a reply that is not
 * the answer to the request just handled, a reply larger than QEMU could read, or an fd leaked
 * or closed twice.
 *
 * Fds cannot travel in the input, so the harness attaches fake ones the way QEMU would: one
 * guest-RAM file to a DMA_MAP with an odd message id, and `msgId % 17` eventfds to a SET_IRQS.
 *
 * Run by test/fuzz/session-fuzz.test.ts (fixed budget, in `npm test`) and by hand with
 * `npm run fuzz [-- seconds]` (test/helpers/fuzz-runner.ts).
 */
import { FakeHost } from './fake-host.js';
import { MdgpuDevice } from '../../src/vgpu/device.js';
import { Session, DEFAULT_LIMITS, maxMessageSize } from '../../src/server/session.js';
import { Framer } from '../../src/transport/framer.js';
import { Command, HeaderFlag, HeaderLayout, MessageType } from '../../src/protocol/commands.js';
import { FatalProtocolError } from '../../src/protocol/errors.js';
import { setLogSink } from '../../src/log.js';

/** Lines logged while handling the current input. */
const logged: string[] = [];
setLogSink((line) => logged.push(line));

/** How many fake fds a message gets: one guest-RAM file with an odd DMA_MAP, `msgId % 17` eventfds with a SET_IRQS. */
function fdCount(command: number, msgId: number): number {
  if (command === Command.DmaMap && msgId % 2 === 1) return 1;
  if (command === Command.DeviceSetIrqs) return msgId % 17;
  return 0;
}

/** Fake fds: files (guest RAM) and eventfds, from one FakeHost per input. */
function attachFds(host: FakeHost, command: number, msgId: number): number[] {
  if (command === Command.DmaMap) return Array.from({ length: fdCount(command, msgId) }, () => host.clientFile(0x10000));
  return Array.from({ length: fdCount(command, msgId) }, () => host.eventfd());
}

export function fuzz(data: Buffer): void {
  logged.length = 0;
  const host = new FakeHost();
  const device = new MdgpuDevice({ name: 'fuzz', apertureSize: 1 << 16, host });
  const sent: { message: Uint8Array; fds: number[] }[] = [];
  let closed = false;
  const conn = {
    send(message: Uint8Array, fds: number[] = []) {
      if (!closed) sent.push({ message, fds });
    },
    sendCopy(bytes: Uint8Array, length: number) {
      if (!closed) sent.push({ message: bytes.slice(0, length), fds: [] });
    },
    close() {
      closed = true;
    },
    get isClosed() {
      return closed;
    },
  };
  const session = new Session(conn, device.pci, (fd) => host.close(fd));
  const framer = new Framer({ maxMessageSize: maxMessageSize(DEFAULT_LIMITS) });
  const heldBefore = new Set(host.open);
  const given: number[] = [];
  const view = new DataView(data.buffer, data.byteOffset, data.byteLength);
  let at = 0;
  try {
    while (at < data.length && !closed) {
      // As the connection does: a whole message without fds is offered to the fast path first.
      if (framer.atMessageStart && data.length - at >= HeaderLayout.size) {
        const header = HeaderLayout.decode(data.subarray(at, at + HeaderLayout.size));
        if (header.size >= HeaderLayout.size && header.size <= data.length - at && fdCount(header.command, header.msgId) === 0) {
          const before = sent.length;
          if (session.handleFast(data, view, at, header.size)) {
            checkReplies(header, sent.slice(before), closed);
            at += header.size;
            continue;
          }
          if (sent.length !== before) throw new Error('the fast path declined a message it had answered');
        }
      }
      // Otherwise through the framer, never past the current message.
      const n = Math.min(framer.wanted(), data.length - at);
      const chunk = data.subarray(at, at + n);
      // Fds arrive with a message's first byte: attach them when its header is complete.
      let frames: ReturnType<Framer['push']>;
      try {
        frames = framer.push(chunk);
      } catch (err) {
        if (!(err instanceof FatalProtocolError)) throw err;
        for (const fd of framer.reset()) host.close(fd);
        break;
      }
      at += n;
      for (const frame of frames) {
        const fds = attachFds(host, frame.header.command, frame.header.msgId);
        given.push(...fds);
        frame.fds.push(...fds);
        const before = sent.length;
        session.handleFrame(frame);
        checkReplies(frame.header, sent.slice(before), closed);
      }
    }
    const internal = logged.find((line) => line.includes('internal error'));
    if (internal !== undefined) throw new Error(`mdgpu bug reached the dispatcher: ${internal}`);
  } finally {
    session.closed();
    device.close();
  }
  // Every fd the client gave is the device's to keep until detach, then closed exactly once
  // (FakeHost.close throws on a double close); after detach none may be left open.
  const leaked = given.filter((fd) => host.open.has(fd) && !heldBefore.has(fd));
  if (leaked.length > 0) throw new Error(`fds leaked after disconnect: ${leaked.join(', ')}`);
}

/** The replies one request produced: none for NO_REPLY, else exactly one, echoing it, readable by QEMU. */
function checkReplies(request: { msgId: number; command: number; flags: number }, replies: { message: Uint8Array; fds: number[] }[], closed: boolean): void {
  if ((request.flags & HeaderFlag.TypeMask) === MessageType.Reply) {
    if (replies.length > 0) throw new Error('a reply was answered');
    return;
  }
  const noReply = (request.flags & HeaderFlag.NoReply) !== 0;
  if (noReply || (closed && replies.length === 0)) {
    if (replies.length > 0) throw new Error(`replied to a NO_REPLY ${request.command}`);
    return;
  }
  if (replies.length !== 1) throw new Error(`${replies.length} replies to command ${request.command}`);
  const { message, fds } = replies[0]!;
  const header = HeaderLayout.decode(message);
  if (header.msgId !== request.msgId || header.command !== request.command) throw new Error('reply does not echo its request');
  if (header.size !== message.length) throw new Error('reply size field is wrong');
  if ((header.flags & HeaderFlag.TypeMask) !== MessageType.Reply) throw new Error('reply not marked as one');
  if ((header.flags & HeaderFlag.Error) !== 0 && (message.length !== 16 || header.error === 0)) throw new Error('bad error reply');
  // QEMU reads a reply into a buffer of max_data_xfer_size plus headers; more corrupts its stream.
  if (message.length > DEFAULT_LIMITS.maxDataXferSize + 64) throw new Error(`reply of ${message.length} bytes`);
  if (fds.length > 1) throw new Error(`${fds.length} fds with one reply (QEMU accepts 1)`);
}
