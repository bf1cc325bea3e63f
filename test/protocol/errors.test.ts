/** Errors: positive errnos from node:os, symbolic codes, the fatal distinction, message helpers. */
import { constants } from 'node:os';
import t from 'tap';
import { FatalProtocolError, ProtocolError, errno, errnoName, hex, invalid, isProtocolError } from '../../src/protocol/index.js';

t.test('errno values come from node:os and are positive', (t) => {
  t.equal(errno('EINVAL'), constants.errno.EINVAL);
  t.ok(errno('E2BIG') > 0);
  t.equal(errnoName(constants.errno.EMSGSIZE), 'EMSGSIZE');
  t.equal(errnoName(100000), 'E100000');
  t.equal(errnoName(constants.errno.EAGAIN), 'EAGAIN', 'aliases get the name libuv uses');
  t.equal(errnoName(constants.errno.ENOTSUP), 'ENOTSUP');
  t.end();
});

t.test('a ProtocolError carries errno and code and is not fatal', (t) => {
  const error = new ProtocolError('EINVAL', 'Invalid DMA_MAP argsz: 12 < 32');
  t.equal(error.errno, constants.errno.EINVAL);
  t.equal(error.code, 'EINVAL');
  t.equal(error.name, 'ProtocolError');
  t.equal(error.fatal, false);
  t.ok(error instanceof Error);
  t.ok(isProtocolError(error));
  t.notOk(isProtocolError(new Error('x')));
  t.end();
});

t.test('a numeric errno is accepted and named', (t) => {
  t.equal(new ProtocolError(constants.errno.ENOTTY, 'x').code, 'ENOTTY');
  t.end();
});

t.test('an invalid errno is a programming error', (t) => {
  t.throws(() => new ProtocolError(0, 'x'), RangeError);
  t.throws(() => new ProtocolError(-22, 'x'), RangeError);
  t.throws(() => new ProtocolError('ENOPE' as 'EINVAL', 'x'), RangeError);
  t.end();
});

t.test('a FatalProtocolError is a fatal ProtocolError', (t) => {
  const error = new FatalProtocolError('EPROTO', 'Invalid message type: 2 in message 7');
  t.equal(error.fatal, true);
  t.equal(error.name, 'FatalProtocolError');
  t.ok(error instanceof ProtocolError);
  t.equal(error.code, 'EPROTO');
  t.end();
});

t.test('invalid() builds an EINVAL ProtocolError; hex() formats numbers and bigints', (t) => {
  const error = invalid('Region access out of bounds: region 2, 0x1000+8 > 0x1000');
  t.equal(error.errno, constants.errno.EINVAL);
  t.equal(error.message, 'Region access out of bounds: region 2, 0x1000+8 > 0x1000');
  t.equal(hex(4096), '0x1000');
  t.equal(hex(0xffff_ffff_ffff_ffffn), '0xffffffffffffffff');
  t.end();
});
