/** DMA_MAP, DMA_UNMAP (incl. the dirty-bitmap variant), DMA_READ, DMA_WRITE: one bad field at a time. */
import t from 'tap';
import {
  DmaAccessLayout,
  DmaBitmapLayout,
  DmaMapFlag,
  DmaMapLayout,
  DmaUnmapFlag,
  DmaUnmapLayout,
  U64_MAX,
  decodeDmaMapReply,
  decodeDmaMapRequest,
  decodeDmaReadReply,
  decodeDmaReadRequest,
  decodeDmaUnmapReply,
  decodeDmaUnmapRequest,
  decodeDmaWriteReply,
  decodeDmaWriteRequest,
  dirtyBitmapBytes,
  encodeDmaMapRequest,
  encodeDmaUnmapReply,
  encodeDmaWriteRequest,
  type DmaMapDecodeOptions,
} from '../../src/protocol/index.js';
import { throwsErrno, withField } from './helpers.js';
import { MAX_XFER, pattern, payloadOf } from './fixtures.js';

const MAP = payloadOf('DMA_MAP request');

t.test('DMA_MAP without fd (ROM, or RAM that is not shareable) is valid', (t) => {
  const rom = encodeDmaMapRequest({ argsz: 32, flags: DmaMapFlag.Read, offset: 0n, address: 0xfffc_0000n, size: 0x4_0000n });
  t.equal(decodeDmaMapRequest(rom, { fdCount: 0 }).flags, DmaMapFlag.Read);
  t.end();
});

t.test('DMA_MAP may end exactly at 2^64', (t) => {
  const top = withField(withField(MAP, DmaMapLayout, 'address', U64_MAX - 0xfffn), DmaMapLayout, 'size', 0x1000n);
  t.equal(decodeDmaMapRequest(top).size, 0x1000n);
  t.end();
});

t.test('DMA_MAP access mode with an fd is valid', (t) => {
  const payload = withField(MAP, DmaMapLayout, 'flags', DmaMapFlag.Read | DmaMapFlag.ModeFileIo);
  t.equal(decodeDmaMapRequest(payload, { fdCount: 1 }).flags & DmaMapFlag.ModeFileIo, DmaMapFlag.ModeFileIo);
  t.end();
});

const mapCases: Array<[string, Uint8Array, DmaMapDecodeOptions?]> = [
  ['argsz below 32', withField(MAP, DmaMapLayout, 'argsz', 31)],
  ['unknown flag', withField(MAP, DmaMapLayout, 'flags', DmaMapFlag.Read | 0x10)],
  ['both access modes', withField(MAP, DmaMapLayout, 'flags', DmaMapFlag.ModeMmap | DmaMapFlag.ModeFileIo)],
  ['MMAP mode without fd', withField(MAP, DmaMapLayout, 'flags', DmaMapFlag.Read | DmaMapFlag.ModeMmap), { fdCount: 0 }],
  ['two fds', MAP, { fdCount: 2 }],
  ['size 0', withField(MAP, DmaMapLayout, 'size', 0n)],
  ['address + size wrapping 2^64', withField(MAP, DmaMapLayout, 'address', U64_MAX - 0xfffn)],
  ['trailing bytes', Uint8Array.from([...MAP, 0])],
];
for (const [name, payload, options] of mapCases) {
  t.test(`DMA_MAP request is EINVAL: ${name}`, (t) => {
    throwsErrno(t, () => decodeDmaMapRequest(payload, options ?? {}), 'EINVAL');
    t.end();
  });
}

t.test('DMA_MAP reply must be empty', (t) => {
  throwsErrno(t, () => decodeDmaMapReply(new Uint8Array(1)), 'EINVAL');
  t.end();
});

// ---------------------------------------------------------------------------

const UNMAP = payloadOf('DMA_UNMAP request');
const DIRTY = payloadOf('DMA_UNMAP request (dirty bitmap)');
const ALL = payloadOf('DMA_UNMAP request (ALL)');
const UNMAP_LIMITS = { maxDataXferSize: MAX_XFER };

t.test('dirty bitmaps are sized in u64 words, one bit per page', (t) => {
  t.equal(dirtyBitmapBytes(0x1000n, 0x1000n), 8n);
  t.equal(dirtyBitmapBytes(64n * 0x1000n, 0x1000n), 8n);
  t.equal(dirtyBitmapBytes(65n * 0x1000n, 0x1000n), 16n);
  t.equal(dirtyBitmapBytes(0x1001n, 0x1000n), 8n);
  t.end();
});

const unmapCases: Array<[string, Uint8Array]> = [
  ['argsz below 24', withField(UNMAP, DmaUnmapLayout, 'argsz', 23)],
  ['argsz above max_data_xfer_size', withField(UNMAP, DmaUnmapLayout, 'argsz', MAX_XFER + 1)],
  ['unknown flag', withField(UNMAP, DmaUnmapLayout, 'flags', 4)],
  ['ALL and GET_DIRTY_BITMAP together', withField(DIRTY, DmaUnmapLayout, 'flags', DmaUnmapFlag.All | DmaUnmapFlag.GetDirtyBitmap)],
  ['ALL with an address', withField(ALL, DmaUnmapLayout, 'address', 0x1000n)],
  ['ALL with a size', withField(ALL, DmaUnmapLayout, 'size', 0x1000n)],
  ['size 0', withField(UNMAP, DmaUnmapLayout, 'size', 0n)],
  ['address + size wrapping 2^64', withField(UNMAP, DmaUnmapLayout, 'address', U64_MAX)],
  ['trailing bytes without the dirty flag', Uint8Array.from([...UNMAP, 0])],
  ['dirty flag without the bitmap header', withField(UNMAP, DmaUnmapLayout, 'flags', DmaUnmapFlag.GetDirtyBitmap)],
  ['dirty bitmap pgsize 0', withField(DIRTY, DmaBitmapLayout, 'pgsize', 0n, 24)],
  ['dirty bitmap pgsize not a power of two', withField(DIRTY, DmaBitmapLayout, 'pgsize', 3000n, 24)],
  ['dirty bitmap too small for the range', withField(withField(DIRTY, DmaBitmapLayout, 'pgsize', 512n, 24), DmaUnmapLayout, 'argsz', 1024)],
  ['dirty bitmap above max_data_xfer_size', withField(DIRTY, DmaBitmapLayout, 'size', BigInt(MAX_XFER) + 8n, 24)],
  ['dirty bitmap size 2^64-1', withField(DIRTY, DmaBitmapLayout, 'size', U64_MAX, 24)],
  ['argsz too small for the bitmap', withField(DIRTY, DmaUnmapLayout, 'argsz', 24 + 16 + 7)],
];
for (const [name, payload] of unmapCases) {
  t.test(`DMA_UNMAP request is EINVAL: ${name}`, (t) => {
    throwsErrno(t, () => decodeDmaUnmapRequest(payload, UNMAP_LIMITS), 'EINVAL');
    t.end();
  });
}

t.test('DMA_UNMAP reply: bitmap data must match the bitmap size', (t) => {
  const reply = payloadOf('DMA_UNMAP reply (dirty bitmap)');
  throwsErrno(t, () => decodeDmaUnmapReply(Uint8Array.from([...reply, 0])), 'EINVAL');
  throwsErrno(t, () => decodeDmaUnmapReply(withField(reply, DmaUnmapLayout, 'flags', 8)), 'EINVAL');
  throwsErrno(t, () => decodeDmaUnmapReply(Uint8Array.from([...payloadOf('DMA_UNMAP reply (echo)'), 0])), 'EINVAL');
  const request = decodeDmaUnmapRequest(DIRTY, UNMAP_LIMITS);
  t.throws(() => encodeDmaUnmapReply(request, new Uint8Array(7)), RangeError);
  t.throws(() => encodeDmaUnmapReply(request), RangeError);
  t.end();
});

// ---------------------------------------------------------------------------

const LIMITS = { maxDataXferSize: MAX_XFER };

t.test('DMA_READ/DMA_WRITE count above max_data_xfer_size is E2BIG (as QEMU answers)', (t) => {
  const read = withField(payloadOf('DMA_READ request'), DmaAccessLayout, 'count', BigInt(MAX_XFER) + 1n);
  throwsErrno(t, () => decodeDmaReadRequest(read, LIMITS), 'E2BIG');
  const write = withField(payloadOf('DMA_WRITE request'), DmaAccessLayout, 'count', U64_MAX);
  throwsErrno(t, () => decodeDmaWriteRequest(write, LIMITS), 'E2BIG', { message: `DMA_WRITE count too large: ${U64_MAX} > ${MAX_XFER}` });
  throwsErrno(t, () => decodeDmaReadReply(withField(payloadOf('DMA_READ reply'), DmaAccessLayout, 'count', BigInt(MAX_XFER) + 1n), LIMITS), 'E2BIG');
  t.end();
});

t.test('DMA_READ/DMA_WRITE address + count wrapping 2^64 is EINVAL', (t) => {
  const read = withField(payloadOf('DMA_READ request'), DmaAccessLayout, 'address', U64_MAX - 7n);
  throwsErrno(t, () => decodeDmaReadRequest(read, LIMITS), 'EINVAL');
  const write = encodeDmaWriteRequest({ address: U64_MAX, data: pattern(2) });
  throwsErrno(t, () => decodeDmaWriteRequest(write, LIMITS), 'EINVAL');
  t.end();
});

t.test('DMA_WRITE request data must be exactly count bytes', (t) => {
  const write = payloadOf('DMA_WRITE request');
  throwsErrno(t, () => decodeDmaWriteRequest(withField(write, DmaAccessLayout, 'count', 17n), LIMITS), 'EINVAL');
  throwsErrno(t, () => decodeDmaWriteRequest(withField(write, DmaAccessLayout, 'count', 15n), LIMITS), 'EINVAL');
  t.end();
});

t.test('a short DMA transfer in a reply is an error, not a partial count', (t) => {
  throwsErrno(t, () => decodeDmaReadReply(payloadOf('DMA_READ reply'), { ...LIMITS, requestCount: 32 }), 'EINVAL');
  throwsErrno(t, () => decodeDmaWriteReply(payloadOf('DMA_WRITE reply'), { ...LIMITS, requestCount: 32 }), 'EINVAL');
  throwsErrno(t, () => decodeDmaReadRequest(Uint8Array.from([...payloadOf('DMA_READ request'), 0]), LIMITS), 'EINVAL');
  t.end();
});
