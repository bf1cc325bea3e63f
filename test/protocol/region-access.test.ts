/** REGION_READ, REGION_WRITE, REGION_WRITE_MULTI: counts, indices and bounds in bigint. */
import t from 'tap';
import {
  PciRegion,
  QEMU_LIMITS,
  RegionAccessLayout,
  U64_MAX,
  WriteMultiCountLayout,
  WriteMultiEntryLayout,
  decodeRegionReadReply,
  decodeRegionReadRequest,
  decodeRegionWriteMultiReply,
  decodeRegionWriteMultiRequest,
  decodeRegionWriteReply,
  decodeRegionWriteRequest,
  encodeRegionReadRequest,
  encodeRegionWriteMultiReply,
  encodeRegionWriteMultiRequest,
  encodeRegionWriteRequest,
} from '../../src/protocol/index.js';
import { throwsErrno, withField } from './helpers.js';
import { MAX_XFER, REGIONS, pattern, payloadOf } from './fixtures.js';

const SERVER = { maxDataXferSize: MAX_XFER, regions: REGIONS };
const READ = payloadOf('REGION_READ request');
const WRITE = payloadOf('REGION_WRITE request');

t.test('out-of-bounds access names region, offset, count and size', (t) => {
  const payload = encodeRegionReadRequest({ offset: 0x1000n, region: PciRegion.Config, count: 8 });
  throwsErrno(t, () => decodeRegionReadRequest(payload, SERVER), 'EINVAL', {
    message: 'Region access out of bounds: region 7, 0x1000+8 > 0x1000',
  });
  t.end();
});

t.test('an access ending exactly at the region end is valid', (t) => {
  const payload = encodeRegionReadRequest({ offset: 0xffcn, region: PciRegion.Config, count: 4 });
  t.equal(decodeRegionReadRequest(payload, SERVER).offset, 0xffcn);
  t.end();
});

t.test('a zero-count access is structurally valid', (t) => {
  const payload = encodeRegionReadRequest({ offset: 0n, region: PciRegion.Config, count: 0 });
  t.equal(decodeRegionReadRequest(payload, SERVER).count, 0);
  t.end();
});

t.test('without region bounds only the 2^64 wrap is checked (client side)', (t) => {
  const payload = encodeRegionReadRequest({ offset: 0x1_0000_0000n, region: 50, count: 4 });
  t.equal(decodeRegionReadRequest(payload, { maxDataXferSize: MAX_XFER }).region, 50);
  t.end();
});

const readCases: Array<[string, Uint8Array]> = [
  ['count above max_data_xfer_size', withField(READ, RegionAccessLayout, 'count', MAX_XFER + 1)],
  ['region index out of range', withField(READ, RegionAccessLayout, 'region', PciRegion.Count)],
  ['region index 2^32-1', withField(READ, RegionAccessLayout, 'region', 0xffff_ffff)],
  ['offset + count past the region', withField(READ, RegionAccessLayout, 'offset', 1n)],
  ['offset + count wrapping 2^64', withField(READ, RegionAccessLayout, 'offset', U64_MAX - 7n)],
  ['offset 2^64-1', withField(READ, RegionAccessLayout, 'offset', U64_MAX)],
  ['unimplemented region (size 0)', withField(withField(READ, RegionAccessLayout, 'region', PciRegion.Bar1), RegionAccessLayout, 'count', 1)],
  ['trailing bytes', Uint8Array.from([...READ, 0])],
];
for (const [name, payload] of readCases) {
  t.test(`REGION_READ request is EINVAL: ${name}`, (t) => {
    throwsErrno(t, () => decodeRegionReadRequest(payload, SERVER), 'EINVAL');
    t.end();
  });
}

t.test('REGION_READ reply with more data than requested is E2BIG (as QEMU)', (t) => {
  const reply = payloadOf('REGION_READ reply');
  throwsErrno(t, () => decodeRegionReadReply(reply, { maxDataXferSize: MAX_XFER, requestCount: 2 }), 'E2BIG');
  t.end();
});

t.test('REGION_READ reply: bad count or data length is EINVAL', (t) => {
  const reply = payloadOf('REGION_READ reply');
  throwsErrno(t, () => decodeRegionReadReply(withField(reply, RegionAccessLayout, 'count', 5), { maxDataXferSize: MAX_XFER }), 'EINVAL');
  throwsErrno(t, () => decodeRegionReadReply(reply, { maxDataXferSize: 3 }), 'EINVAL');
  throwsErrno(t, () => decodeRegionReadReply(Uint8Array.from([...reply, 0]), { maxDataXferSize: MAX_XFER }), 'EINVAL');
  t.end();
});

const writeCases: Array<[string, Uint8Array]> = [
  ['count above max_data_xfer_size (checked before the data)', withField(WRITE, RegionAccessLayout, 'count', MAX_XFER + 1)],
  ['count larger than the data', withField(WRITE, RegionAccessLayout, 'count', 9)],
  ['count smaller than the data', withField(WRITE, RegionAccessLayout, 'count', 7)],
  ['region index out of range', withField(WRITE, RegionAccessLayout, 'region', 9)],
  ['offset + count past the region', withField(WRITE, RegionAccessLayout, 'offset', 0x1000_0000n - 4n)],
  ['offset + count wrapping 2^64', withField(WRITE, RegionAccessLayout, 'offset', U64_MAX - 3n)],
];
for (const [name, payload] of writeCases) {
  t.test(`REGION_WRITE request is EINVAL: ${name}`, (t) => {
    throwsErrno(t, () => decodeRegionWriteRequest(payload, SERVER), 'EINVAL');
    t.end();
  });
}

t.test('REGION_WRITE data is a view of the payload (no copy)', (t) => {
  const payload = encodeRegionWriteRequest({ offset: 0n, region: PciRegion.Bar0, data: pattern(4) });
  const request = decodeRegionWriteRequest(payload, SERVER);
  t.equal(request.data.buffer, payload.buffer);
  t.end();
});

t.test('REGION_WRITE reply: wrong count or trailing data is EINVAL', (t) => {
  const reply = payloadOf('REGION_WRITE reply');
  throwsErrno(t, () => decodeRegionWriteReply(reply, { maxDataXferSize: MAX_XFER, requestCount: 4 }), 'EINVAL');
  throwsErrno(t, () => decodeRegionWriteReply(Uint8Array.from([...reply, 0]), { maxDataXferSize: MAX_XFER }), 'EINVAL');
  throwsErrno(t, () => decodeRegionWriteReply(withField(reply, RegionAccessLayout, 'count', MAX_XFER + 1), { maxDataXferSize: MAX_XFER }), 'EINVAL');
  t.end();
});

// ---------------------------------------------------------------------------

const MULTI = payloadOf('REGION_WRITE_MULTI request');
const entryAt = (i: number) => WriteMultiCountLayout.size + i * WriteMultiEntryLayout.size;

t.test('REGION_WRITE_MULTI keeps only count bytes of each entry', (t) => {
  const entries = decodeRegionWriteMultiRequest(MULTI, { regions: REGIONS });
  t.strictSame(
    entries.map((e) => e.data.length),
    [1, 4, 8],
  );
  t.end();
});

t.test('REGION_WRITE_MULTI accepts 200 entries and rejects 201 (QEMU_LIMITS.writeMultiMax)', (t) => {
  const entry = { offset: 0n, region: PciRegion.Bar0, data: pattern(4) };
  const max = encodeRegionWriteMultiRequest(Array.from({ length: QEMU_LIMITS.writeMultiMax }, () => entry));
  t.equal(decodeRegionWriteMultiRequest(max, { regions: REGIONS }).length, 200);
  const over = encodeRegionWriteMultiRequest(Array.from({ length: 201 }, () => entry));
  throwsErrno(t, () => decodeRegionWriteMultiRequest(over), 'EINVAL');
  t.equal(decodeRegionWriteMultiRequest(over, { maxEntries: 256 }).length, 201, 'the limit is a parameter');
  t.end();
});

t.test('REGION_WRITE_MULTI encoder refuses more than 8 bytes per entry', (t) => {
  t.throws(() => encodeRegionWriteMultiRequest([{ offset: 0n, region: 0, data: pattern(9) }]), RangeError);
  t.end();
});

const multiCases: Array<[string, Uint8Array]> = [
  ['wr_cnt 0', withField(MULTI.subarray(0, 8), WriteMultiCountLayout, 'wrCnt', 0n)],
  ['wr_cnt 2^64-1 (no allocation from it)', withField(MULTI, WriteMultiCountLayout, 'wrCnt', U64_MAX)],
  ['wr_cnt larger than the entries sent', withField(MULTI, WriteMultiCountLayout, 'wrCnt', 4n)],
  ['wr_cnt smaller than the entries sent', withField(MULTI, WriteMultiCountLayout, 'wrCnt', 2n)],
  ['entry count 0', withField(MULTI, WriteMultiEntryLayout, 'count', 0, entryAt(1))],
  ['entry count 9', withField(MULTI, WriteMultiEntryLayout, 'count', 9, entryAt(1))],
  ['entry region out of range', withField(MULTI, WriteMultiEntryLayout, 'region', 9, entryAt(2))],
  ['entry past its region', withField(MULTI, WriteMultiEntryLayout, 'offset', 0xffcn, entryAt(2))],
  ['entry wrapping 2^64', withField(MULTI, WriteMultiEntryLayout, 'offset', U64_MAX - 1n, entryAt(1))],
];
for (const [name, payload] of multiCases) {
  t.test(`REGION_WRITE_MULTI request is EINVAL: ${name}`, (t) => {
    throwsErrno(t, () => decodeRegionWriteMultiRequest(payload, { regions: REGIONS }), 'EINVAL');
    t.end();
  });
}

t.test('REGION_WRITE_MULTI reply: wr_cnt above the maximum is EINVAL', (t) => {
  throwsErrno(t, () => decodeRegionWriteMultiReply(encodeRegionWriteMultiReply(201)), 'EINVAL');
  t.equal(decodeRegionWriteMultiReply(encodeRegionWriteMultiReply(201), { maxEntries: 300 }), 201);
  t.end();
});
