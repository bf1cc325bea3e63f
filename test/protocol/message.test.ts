/** Whole messages: header on and off, replies, error replies, header checks, reply size limits. */
import t from 'tap';
import { throwsErrno } from './helpers.js';
import {
  Command,
  FatalProtocolError,
  HeaderFlag,
  HeaderLayout,
  MessageType,
  checkHeader,
  checkReplyFits,
  decodeMessage,
  encodeMessage,
  errno,
  errorReply,
  isErrorReply,
  messageType,
  replyMessage,
} from '../../src/protocol/index.js';

const LIMITS = { maxMessageSize: 1024 };

t.test('encodeMessage fills in the size and appends the payload', (t) => {
  const message = encodeMessage({ msgId: 7, command: Command.RegionRead, flags: MessageType.Command }, Uint8Array.of(1, 2, 3));
  t.equal(message.length, 19);
  t.strictSame(HeaderLayout.decode(message), { msgId: 7, command: 9, size: 19, flags: 0, error: 0 });
  t.strictSame([...message.subarray(16)], [1, 2, 3]);
  t.end();
});

t.test('encodeMessage without a payload is header only', (t) => {
  const message = encodeMessage({ msgId: 1, command: Command.DeviceReset, flags: 0 });
  t.equal(message.length, 16);
  t.end();
});

t.test('replyMessage echoes id and command with type REPLY', (t) => {
  const reply = replyMessage({ msgId: 0xfffe, command: Command.DeviceGetInfo }, new Uint8Array(16));
  t.strictSame(HeaderLayout.decode(reply), { msgId: 0xfffe, command: 4, size: 32, flags: MessageType.Reply, error: 0 });
  t.end();
});

t.test('errorReply is header only with REPLY|ERROR and the positive errno', (t) => {
  const reply = errorReply({ msgId: 42, command: Command.DmaMap }, errno('EEXIST'));
  t.equal(reply.length, 16);
  const header = HeaderLayout.decode(reply);
  t.strictSame(header, { msgId: 42, command: 2, size: 16, flags: 0x21, error: errno('EEXIST') });
  t.ok(isErrorReply(header));
  t.notOk(isErrorReply({ flags: MessageType.Reply }));
  t.notOk(isErrorReply({ flags: HeaderFlag.Error }));
  t.throws(() => errorReply({ msgId: 1, command: 1 }, 0), RangeError);
  t.throws(() => errorReply({ msgId: 1, command: 1 }, -5), RangeError);
  t.end();
});

t.test('decodeMessage splits header and payload', (t) => {
  const message = encodeMessage({ msgId: 3, command: Command.RegionWrite, flags: HeaderFlag.NoReply }, Uint8Array.of(9, 9));
  const { header, payload } = decodeMessage(message, LIMITS);
  t.equal(header.flags, HeaderFlag.NoReply);
  t.equal(messageType(header.flags), MessageType.Command);
  t.strictSame([...payload], [9, 9]);
  t.end();
});

t.test('decodeMessage rejects short buffers and size mismatches as fatal', (t) => {
  t.throws(() => decodeMessage(new Uint8Array(15), LIMITS), FatalProtocolError);
  const message = encodeMessage({ msgId: 3, command: 1, flags: 0 }, new Uint8Array(4));
  throwsErrno(t, () => decodeMessage(message.subarray(0, 18), LIMITS), 'EINVAL', { fatal: true });
  t.end();
});

t.test('checkHeader rejects bad type bits, unknown flags and bad sizes as fatal', (t) => {
  const ok = { msgId: 1, command: 1, size: 16, flags: 0, error: 0 };
  t.doesNotThrow(() => checkHeader(ok, LIMITS));
  t.doesNotThrow(() => checkHeader({ ...ok, flags: MessageType.Reply | HeaderFlag.Error }, LIMITS));
  for (let type = 2; type < 16; type++) {
    throwsErrno(t, () => checkHeader({ ...ok, flags: type }, LIMITS), 'EPROTO', { fatal: true, message: `Invalid message type: ${type} in message 1` });
  }
  throwsErrno(t, () => checkHeader({ ...ok, flags: 0x40 }, LIMITS), 'EPROTO', { fatal: true });
  throwsErrno(t, () => checkHeader({ ...ok, flags: 0x8000_0000 }, LIMITS), 'EPROTO', { fatal: true, message: 'Unknown header flags: 0x80000000 in message 1' });
  throwsErrno(t, () => checkHeader({ ...ok, size: 15 }, LIMITS), 'EINVAL', { fatal: true });
  throwsErrno(t, () => checkHeader({ ...ok, size: 1025 }, LIMITS), 'EMSGSIZE', { fatal: true });
  t.doesNotThrow(() => checkHeader({ ...ok, size: 1024 }, LIMITS));
  t.end();
});

t.test('checkReplyFits throws EMSGSIZE for a reply larger than the client buffer', (t) => {
  t.doesNotThrow(() => checkReplyFits(Command.DeviceGetInfo, 16, 16));
  throwsErrno(t, () => checkReplyFits(Command.DeviceGetInfo, 17, 16), 'EMSGSIZE', {
    message: 'Reply too large for the client: VFIO_USER_DEVICE_GET_INFO payload of 17 bytes > 16',
  });
  t.end();
});
