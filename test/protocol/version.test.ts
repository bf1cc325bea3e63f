/** VERSION: QEMU's real request, capability validation (one bad value at a time), reply size limit. */
import t from 'tap';
import {
  QEMU_LIMITS,
  checkVersionReplyFits,
  decodeVersion,
  decodeVersionReply,
  decodeVersionRequest,
  encodeVersion,
  encodeVersionReply,
} from '../../src/protocol/index.js';
import { throwsErrno } from './helpers.js';

/** A VERSION payload with raw JSON text (NUL appended unless told otherwise). */
function raw(json: string | Uint8Array, { nul = true, major = 0, minor = 0 } = {}): Uint8Array {
  const text = typeof json === 'string' ? new TextEncoder().encode(json) : json;
  const out = new Uint8Array(4 + text.length + (nul ? 1 : 0));
  new DataView(out.buffer).setUint16(0, major, true);
  new DataView(out.buffer).setUint16(2, minor, true);
  out.set(text, 4);
  return out;
}

/** What QEMU 11.1.3 sends (VFIO-USER.md §2, observed): 198 bytes of payload. */
const QEMU_REQUEST = raw(
  '{"capabilities": {"pgsizes": 4096, "max_msg_fds": 16, "max_dma_maps": 65535, ' +
    '"max_data_xfer_size": 1048576, "migration": {"max_bitmap_size": 268435456, "pgsize": 4096}, "write_multiple": true}}',
);

t.test("QEMU 11.1.3's observed request decodes", (t) => {
  t.equal(QEMU_REQUEST.length, QEMU_LIMITS.versionRequestPayload);
  t.strictSame(decodeVersionRequest(QEMU_REQUEST), {
    major: 0,
    minor: 0,
    capabilities: {
      maxMsgFds: 16,
      maxDataXferSize: 1048576,
      pgsizes: 4096,
      maxDmaMaps: 65535,
      migration: { pgsize: 4096, maxBitmapSize: 268435456 },
      writeMultiple: true,
    },
  });
  t.end();
});

t.test('the recommended server reply is compact JSON that fits QEMU', (t) => {
  const reply = encodeVersionReply({
    major: 0,
    minor: 0,
    capabilities: { maxMsgFds: 16, maxDataXferSize: 1048576, pgsizes: 4096, maxDmaMaps: 65535 },
  });
  const text = new TextDecoder().decode(reply.subarray(4, -1));
  t.equal(text, '{"capabilities":{"max_msg_fds":16,"max_data_xfer_size":1048576,"pgsizes":4096,"max_dma_maps":65535}}');
  t.equal(reply[reply.length - 1], 0, 'NUL-terminated');
  t.doesNotThrow(() => checkVersionReplyFits(reply));
  t.end();
});

t.test('a reply larger than the request payload (198 bytes for QEMU) is EMSGSIZE', (t) => {
  const long = encodeVersion({ major: 0, minor: 0, capabilities: { maxMsgFds: 16, unknown: { padding: 'x'.repeat(200) } } });
  throwsErrno(t, () => checkVersionReplyFits(long), 'EMSGSIZE');
  throwsErrno(t, () => checkVersionReplyFits(199), 'EMSGSIZE');
  t.doesNotThrow(() => checkVersionReplyFits(198));
  t.doesNotThrow(() => checkVersionReplyFits(long, long.length), 'a larger client request allows more');
  t.end();
});

t.test('major and minor are decoded; JSON is optional', (t) => {
  t.strictSame(decodeVersion(raw('', { nul: false, major: 1, minor: 2 })), { major: 1, minor: 2 });
  t.strictSame(decodeVersion(raw('{}', { major: 0, minor: 3 })), { major: 0, minor: 3 });
  t.strictSame(decodeVersionReply(raw('{"capabilities":{}}')), { major: 0, minor: 0, capabilities: {} });
  t.end();
});

t.test('unknown capability keys are kept and otherwise ignored', (t) => {
  const decoded = decodeVersion(raw('{"capabilities":{"max_msg_fds":4,"frobnicate":{"x":1},"__proto__":{"polluted":true}},"other":2}'));
  t.equal(decoded.capabilities?.maxMsgFds, 4);
  t.strictSame(Object.keys(decoded.capabilities?.unknown ?? {}), ['frobnicate', '__proto__']);
  t.equal(Object.getPrototypeOf(decoded.capabilities?.unknown), Object.prototype, 'a "__proto__" key stays data');
  t.equal(({} as Record<string, unknown>)['polluted'], undefined);
  t.end();
});

t.test('unknown keys survive an encode/decode round trip', (t) => {
  const version = { major: 0, minor: 0, capabilities: { maxMsgFds: 2, unknown: { vendor_thing: [1, 2] } } };
  t.strictSame(decodeVersion(encodeVersion(version)), version);
  t.end();
});

t.test('twin_socket is parsed (QEMU 11.1.3 does not support it)', (t) => {
  t.strictSame(decodeVersion(raw('{"capabilities":{"twin_socket":{"supported":true,"fd_index":0}}}')).capabilities, {
    twinSocket: { supported: true, fdIndex: 0 },
  });
  t.end();
});

t.test('limits are parameters', (t) => {
  const json = raw('{"capabilities":{"max_msg_fds":64,"max_data_xfer_size":134217728,"max_dma_maps":100000}}');
  throwsErrno(t, () => decodeVersion(json), 'EINVAL');
  t.doesNotThrow(() => decodeVersion(json, { maxMsgFds: 64, maxDataXferSize: 134217728, maxDmaMaps: 100000 }));
  throwsErrno(t, () => decodeVersion(raw('{"capabilities":{"pgsizes":4096}}'), { pageSize: 65536 }), 'EINVAL');
  t.end();
});

const BAD: Array<[string, Uint8Array]> = [
  ['JSON without NUL terminator', raw('{}', { nul: false })],
  ['NUL inside the JSON', raw('{}\0 ')],
  ['empty JSON', raw('')],
  ['invalid UTF-8', raw(Uint8Array.of(0x7b, 0xff, 0x7d))],
  ['not JSON', raw('{capabilities}')],
  ['JSON array', raw('[]')],
  ['JSON string', raw('"x"')],
  ['JSON null', raw('null')],
  ['capabilities not an object', raw('{"capabilities":[1]}')],
  ['capabilities null', raw('{"capabilities":null}')],
  ['max_msg_fds negative', raw('{"capabilities":{"max_msg_fds":-1}}')],
  ['max_msg_fds fractional', raw('{"capabilities":{"max_msg_fds":1.5}}')],
  ['max_msg_fds a string', raw('{"capabilities":{"max_msg_fds":"16"}}')],
  ['max_msg_fds above 16', raw('{"capabilities":{"max_msg_fds":17}}')],
  ['max_data_xfer_size above 64 MiB', raw('{"capabilities":{"max_data_xfer_size":67108865}}')],
  ['max_data_xfer_size beyond 2^53', raw('{"capabilities":{"max_data_xfer_size":18446744073709551615}}')],
  ['pgsizes 0', raw('{"capabilities":{"pgsizes":0}}')],
  ['pgsizes not a multiple of 4096', raw('{"capabilities":{"pgsizes":6144}}')],
  ['max_dma_maps above 65535', raw('{"capabilities":{"max_dma_maps":65536}}')],
  ['migration not an object', raw('{"capabilities":{"migration":4096}}')],
  ['migration.pgsize not a multiple of 4096', raw('{"capabilities":{"migration":{"pgsize":512}}}')],
  ['migration.max_bitmap_size above 256 MiB', raw('{"capabilities":{"migration":{"max_bitmap_size":268435457}}}')],
  ['write_multiple not a boolean', raw('{"capabilities":{"write_multiple":1}}')],
  ['twin_socket not an object', raw('{"capabilities":{"twin_socket":true}}')],
  ['twin_socket.supported not a boolean', raw('{"capabilities":{"twin_socket":{"supported":"yes"}}}')],
  ['twin_socket.fd_index negative', raw('{"capabilities":{"twin_socket":{"fd_index":-1}}}')],
];

for (const [name, payload] of BAD) {
  t.test(`malformed version data is EINVAL: ${name}`, (t) => {
    throwsErrno(t, () => decodeVersion(payload), 'EINVAL');
    t.end();
  });
}

t.test('error messages name the capability', (t) => {
  throwsErrno(t, () => decodeVersion(raw('{"capabilities":{"max_msg_fds":17}}')), 'EINVAL', {
    message: 'Malformed version capability: max_msg_fds is too large: 17 > 16',
  });
  throwsErrno(t, () => decodeVersion(raw('{"capabilities":{"migration":{"pgsize":512}}}')), 'EINVAL', {
    message: 'Malformed version capability: migration.pgsize is not a non-zero multiple of 4096: 512',
  });
  t.end();
});
