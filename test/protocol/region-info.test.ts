/** DEVICE_GET_REGION_INFO and DEVICE_GET_REGION_IO_FDS: the two-round argsz protocol and cap chain validation. */
import t from 'tap';
import {
  CapHeaderLayout,
  PciRegion,
  RegionInfoFlag,
  RegionInfoLayout,
  RegionIoFdsLayout,
  SparseMmapAreaLayout,
  SparseMmapLayout,
  SubRegionIoFdLayout,
  decodeRegionInfoReply,
  decodeRegionInfoRequest,
  decodeRegionIoFdsReply,
  decodeRegionIoFdsRequest,
  encodeRegionInfoReply,
  encodeRegionInfoRequest,
  regionInfoReplySize,
  type RegionInfo,
  type RegionInfoReplyLimits,
} from '../../src/protocol/index.js';
import { throwsErrno, withField } from './helpers.js';
import { MAX_XFER, bar0Info, payloadOf } from './fixtures.js';

const NEEDED = regionInfoReplySize(bar0Info);
const FULL = encodeRegionInfoReply(bar0Info, NEEDED);
const REPLY_LIMITS: RegionInfoReplyLimits = { requestArgsz: NEEDED, maxDataXferSize: MAX_XFER };
/** Byte offsets of the caps in FULL: sparse (2 areas) at 32, msix-mappable at 80, type at 88. */
const SPARSE_AT = 32;
const MSIX_AT = 80;
const TYPE_AT = 88;
const AREA_AT = (i: number) => SPARSE_AT + CapHeaderLayout.size + SparseMmapLayout.size + i * SparseMmapAreaLayout.size;

t.test('request: bad fields are EINVAL', async (t) => {
  const good = payloadOf('DEVICE_GET_REGION_INFO request');
  const limits = { numRegions: PciRegion.Count };
  const cases: Array<[string, Uint8Array]> = [
    ['argsz below 32', withField(good, RegionInfoLayout, 'argsz', 31)],
    ['flags set', withField(good, RegionInfoLayout, 'flags', 1)],
    ['index out of range', withField(good, RegionInfoLayout, 'index', PciRegion.Count)],
    ['cap_offset set', withField(good, RegionInfoLayout, 'capOffset', 32)],
    ['size set', withField(good, RegionInfoLayout, 'size', 1n)],
    ['offset set', withField(good, RegionInfoLayout, 'offset', 1n)],
    ['trailing byte', Uint8Array.from([...good, 0])],
  ];
  for (const [name, payload] of cases) {
    t.test(name, (t) => {
      throwsErrno(t, () => decodeRegionInfoRequest(payload, limits), 'EINVAL');
      t.end();
    });
  }
});

t.test('request: the index check is skipped without numRegions (client side)', (t) => {
  const payload = encodeRegionInfoRequest({ argsz: 32, index: 20 });
  t.strictSame(decodeRegionInfoRequest(payload), { argsz: 32, index: 20 });
  throwsErrno(t, () => decodeRegionInfoRequest(payload, { numRegions: 9 }), 'EINVAL', { message: 'Invalid region index: 20 >= 9' });
  t.end();
});

t.test('reply size counts the struct and every cap', (t) => {
  t.equal(NEEDED, 32 + (8 + 8 + 2 * 16) + 8 + (8 + 8));
  t.equal(regionInfoReplySize({ caps: [] }), 32);
  t.end();
});

t.test('first round: caps that do not fit give only the struct, argsz = size needed, no CAPS', (t) => {
  const reply = encodeRegionInfoReply(bar0Info, 32);
  t.equal(reply.length, 32);
  const head = RegionInfoLayout.decode(reply);
  t.equal(head.argsz, NEEDED);
  t.equal(head.flags & RegionInfoFlag.Caps, 0);
  t.equal(head.capOffset, 0);
  t.equal(head.size, bar0Info.size, 'size and offset are still reported');
  t.equal(encodeRegionInfoReply(bar0Info, NEEDED - 1).length, 32, 'one byte short is still the first round');
  t.end();
});

t.test('second round: the full reply carries CAPS, cap_offset 32 and a linked chain', (t) => {
  t.equal(FULL.length, NEEDED);
  const head = RegionInfoLayout.decode(FULL);
  t.equal(head.flags, bar0Info.flags | RegionInfoFlag.Caps);
  t.equal(head.capOffset, 32);
  t.strictSame(
    [SPARSE_AT, MSIX_AT, TYPE_AT].map((at) => CapHeaderLayout.decode(FULL, at)),
    [
      { id: 1, version: 1, next: MSIX_AT },
      { id: 3, version: 1, next: TYPE_AT },
      { id: 2, version: 1, next: 0 },
    ],
  );
  t.strictSame(encodeRegionInfoReply(bar0Info, 4096), FULL, 'a larger argsz does not grow the reply');
  t.end();
});

t.test('a region without caps is 32 bytes whatever the argsz', (t) => {
  const info: RegionInfo = { index: 7, flags: RegionInfoFlag.Read | RegionInfoFlag.Write, size: 4096n, offset: 0n, caps: [] };
  const reply = encodeRegionInfoReply(info, 4096);
  t.equal(reply.length, 32);
  t.equal(RegionInfoLayout.decode(reply).flags & RegionInfoFlag.Caps, 0);
  t.end();
});

t.test('the encoder owns the CAPS flag', (t) => {
  const withCapsFlag = { ...bar0Info, flags: bar0Info.flags | RegionInfoFlag.Caps };
  t.equal(RegionInfoLayout.decode(encodeRegionInfoReply(withCapsFlag, 32)).flags & RegionInfoFlag.Caps, 0);
  t.end();
});

t.test('an unknown cap id is skipped and reported, as QEMU ignores it', (t) => {
  const payload = withField(FULL, CapHeaderLayout, 'id', 99, MSIX_AT);
  const reply = decodeRegionInfoReply(payload, REPLY_LIMITS);
  t.strictSame(reply.caps[1], { kind: 'unknown', id: 99, version: 1 });
  t.end();
});

t.test('zero-size sparse areas are allowed (QEMU skips them)', (t) => {
  const info: RegionInfo = {
    ...bar0Info,
    caps: [
      {
        kind: 'sparse-mmap',
        areas: [
          { offset: 0n, size: 0n },
          { offset: 0n, size: 0x1000n },
        ],
      },
    ],
  };
  const size = regionInfoReplySize(info);
  t.equal(decodeRegionInfoReply(encodeRegionInfoReply(info, size), { requestArgsz: size }).caps.length, 1);
  t.end();
});

t.test('libvfio-user style first round of min(needed, argsz) bytes is accepted', (t) => {
  const reply = new Uint8Array(40);
  reply.set(encodeRegionInfoReply(bar0Info, 32));
  const decoded = decodeRegionInfoReply(reply, { requestArgsz: 40 });
  t.equal(decoded.complete, false);
  t.end();
});

t.test('reply: bad fields are EINVAL', async (t) => {
  const firstRound = encodeRegionInfoReply(bar0Info, 32);
  const cases: Array<[string, Uint8Array, RegionInfoReplyLimits]> = [
    ['argsz below 32', withField(FULL, RegionInfoLayout, 'argsz', 31), REPLY_LIMITS],
    ['argsz above max_data_xfer_size', withField(firstRound, RegionInfoLayout, 'argsz', MAX_XFER + 1), { maxDataXferSize: MAX_XFER }],
    ['larger than the request argsz', FULL, { requestArgsz: NEEDED - 8 }],
    ['unknown flag', withField(FULL, RegionInfoLayout, 'flags', bar0Info.flags | RegionInfoFlag.Caps | 0x10), REPLY_LIMITS],
    ['CAPS with argsz beyond the payload', withField(FULL, RegionInfoLayout, 'argsz', NEEDED + 8), {}],
    ['CAPS with argsz short of the payload', withField(FULL, RegionInfoLayout, 'argsz', NEEDED - 8), {}],
    ['cap_offset inside the struct', withField(FULL, RegionInfoLayout, 'capOffset', 16), REPLY_LIMITS],
    ['cap_offset 0 with CAPS', withField(FULL, RegionInfoLayout, 'capOffset', 0), REPLY_LIMITS],
    ['cap_offset beyond argsz', withField(FULL, RegionInfoLayout, 'capOffset', NEEDED), REPLY_LIMITS],
    ['cap header straddling argsz', withField(FULL, RegionInfoLayout, 'capOffset', NEEDED - 4), REPLY_LIMITS],
    ['next inside the struct', withField(FULL, CapHeaderLayout, 'next', 8, SPARSE_AT), REPLY_LIMITS],
    ['next beyond argsz', withField(FULL, CapHeaderLayout, 'next', NEEDED + 64, SPARSE_AT), REPLY_LIMITS],
    ['next pointing at itself', withField(FULL, CapHeaderLayout, 'next', MSIX_AT, MSIX_AT), REPLY_LIMITS],
    ['next looping back to the first cap', withField(FULL, CapHeaderLayout, 'next', SPARSE_AT, TYPE_AT), REPLY_LIMITS],
    ['duplicate known cap', withField(FULL, CapHeaderLayout, 'id', 1, MSIX_AT), REPLY_LIMITS],
    ['unsupported cap version', withField(FULL, CapHeaderLayout, 'version', 2, TYPE_AT), REPLY_LIMITS],
    ['sparse reserved set', withField(FULL, SparseMmapLayout, 'reserved', 1, SPARSE_AT + 8), REPLY_LIMITS],
    ['sparse nr_areas beyond argsz', withField(FULL, SparseMmapLayout, 'nrAreas', 5, SPARSE_AT + 8), REPLY_LIMITS],
    ['sparse nr_areas huge', withField(FULL, SparseMmapLayout, 'nrAreas', 0xffff_ffff, SPARSE_AT + 8), REPLY_LIMITS],
    ['sparse areas unsorted', withField(FULL, SparseMmapAreaLayout, 'offset', 0x20000n, AREA_AT(0)), REPLY_LIMITS],
    ['sparse areas overlapping', withField(FULL, SparseMmapAreaLayout, 'size', 0x10000n, AREA_AT(0)), REPLY_LIMITS],
    ['sparse area beyond the region', withField(FULL, SparseMmapAreaLayout, 'size', 0xfff_0001n, AREA_AT(1)), REPLY_LIMITS],
    ['sparse area wrapping 2^64', withField(FULL, SparseMmapAreaLayout, 'size', 0xffff_ffff_ffff_ff00n, AREA_AT(1)), REPLY_LIMITS],
    ['no CAPS but cap_offset set', withField(firstRound, RegionInfoLayout, 'capOffset', 32), { requestArgsz: 32 }],
    ['first round although the caps fit', firstRound, { requestArgsz: NEEDED }],
    ['no CAPS and more bytes than argsz', Uint8Array.from([...withField(firstRound, RegionInfoLayout, 'argsz', 32), 0, 0]), {}],
    ['type cap body beyond argsz', withField(FULL.subarray(0, TYPE_AT + 12), RegionInfoLayout, 'argsz', TYPE_AT + 12), {}],
  ];
  for (const [name, payload, limits] of cases) {
    t.test(name, (t) => {
      throwsErrno(t, () => decodeRegionInfoReply(payload, limits), 'EINVAL');
      t.end();
    });
  }
});

t.test('loop and range errors say what is wrong', (t) => {
  throwsErrno(t, () => decodeRegionInfoReply(withField(FULL, CapHeaderLayout, 'next', SPARSE_AT, TYPE_AT), REPLY_LIMITS), 'EINVAL', {
    message: 'Region info capability chain loops: offset 32 seen twice',
  });
  throwsErrno(t, () => decodeRegionInfoReply(withField(FULL, RegionInfoLayout, 'capOffset', 16), REPLY_LIMITS), 'EINVAL', {
    message: 'Region info capability out of range: cap_offset 16 < 32',
  });
  t.end();
});

// ---------------------------------------------------------------------------

t.test('REGION_IO_FDS request: bad fields are EINVAL', async (t) => {
  const good = payloadOf('DEVICE_GET_REGION_IO_FDS request');
  const limits = { maxDataXferSize: MAX_XFER, numRegions: PciRegion.Count };
  const cases: Array<[string, Uint8Array]> = [
    ['argsz below 16', withField(good, RegionIoFdsLayout, 'argsz', 15)],
    ['argsz above max_data_xfer_size', withField(good, RegionIoFdsLayout, 'argsz', MAX_XFER + 1)],
    ['flags set', withField(good, RegionIoFdsLayout, 'flags', 1)],
    ['count set', withField(good, RegionIoFdsLayout, 'count', 1)],
    ['index out of range', withField(good, RegionIoFdsLayout, 'index', 9)],
  ];
  for (const [name, payload] of cases) {
    t.test(name, (t) => {
      throwsErrno(t, () => decodeRegionIoFdsRequest(payload, limits), 'EINVAL');
      t.end();
    });
  }
});

t.test('REGION_IO_FDS reply: bad fields are EINVAL', async (t) => {
  const good = payloadOf('DEVICE_GET_REGION_IO_FDS reply');
  const limits = { requestArgsz: good.length, fdCount: 2 };
  const entry = (i: number) => 16 + i * SubRegionIoFdLayout.size;
  const cases: Array<[string, Uint8Array]> = [
    ['flags set', withField(good, RegionIoFdsLayout, 'flags', 1)],
    ['argsz inconsistent with count', withField(good, RegionIoFdsLayout, 'argsz', good.length + 40)],
    ['count inconsistent with argsz', withField(good, RegionIoFdsLayout, 'count', 1)],
    ['unknown sub-region type', withField(good, SubRegionIoFdLayout, 'type', 2, entry(0))],
    ['padding set', withField(good, SubRegionIoFdLayout, 'padding', 1, entry(0))],
    ['fd_index beyond the fds sent', withField(good, SubRegionIoFdLayout, 'fdIndex', 2, entry(1))],
    ['unknown ioeventfd flag', withField(good, SubRegionIoFdLayout, 'flags', 0x10, entry(0))],
    ['unknown ioregionfd flag', withField(good, SubRegionIoFdLayout, 'flags', 0x4, entry(1))],
    ['sub-region wrapping 2^64', withField(good, SubRegionIoFdLayout, 'offset', 0xffff_ffff_ffff_fffen, entry(0))],
  ];
  for (const [name, payload] of cases) {
    t.test(name, (t) => {
      throwsErrno(t, () => decodeRegionIoFdsReply(payload, limits), 'EINVAL');
      t.end();
    });
  }
  t.test('larger than the request argsz', (t) => {
    throwsErrno(t, () => decodeRegionIoFdsReply(good, { requestArgsz: good.length - 1 }), 'EINVAL');
    t.end();
  });
});
