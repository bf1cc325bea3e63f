/**
 * Property-based checks of every codec (fast-check): whatever bytes a peer sends, a decoder either
 * returns a value or throws ProtocolError (never a TypeError, RangeError or anything else), and
 * random valid values survive encode → decode unchanged.
 *
 * The decoders and the limits a real peer passes come from the fixture table (fixtures.ts), so a
 * codec added there is fuzzed here too.
 */
import { deepStrictEqual } from 'node:assert/strict';
import t, { type Test } from 'tap';
import fc from 'fast-check';
import {
  DmaMapFlag,
  IrqInfoFlag,
  PciIrq,
  PciRegion,
  ProtocolError,
  decodeDeviceGetInfoReply,
  decodeDmaMapRequest,
  decodeDmaReadReply,
  decodeDmaReadRequest,
  decodeDmaUnmapRequest,
  decodeDmaWriteReply,
  decodeDmaWriteRequest,
  decodeIrqInfoReply,
  decodeRegionInfoReply,
  decodeRegionReadReply,
  decodeRegionReadRequest,
  decodeRegionWriteMultiRequest,
  decodeRegionWriteRequest,
  decodeSetIrqsRequest,
  decodeVersion,
  encodeDeviceGetInfoReply,
  encodeDmaMapRequest,
  encodeDmaReadReply,
  encodeDmaReadRequest,
  encodeDmaUnmapRequest,
  encodeDmaWriteReply,
  encodeDmaWriteRequest,
  encodeIrqInfoReply,
  encodeRegionInfoReply,
  encodeRegionReadReply,
  encodeRegionReadRequest,
  encodeRegionWriteMultiRequest,
  encodeRegionWriteRequest,
  encodeSetIrqsRequest,
  encodeVersion,
  regionInfoReplySize,
  type RegionInfo,
  type SetIrqsRequest,
  type Version,
} from '../../src/protocol/index.js';
import { CASES, IRQ_COUNTS, IRQ_LIMITS, MAX_XFER, REGION_SIZES, REGIONS } from './fixtures.js';

const RUNS = 200;
const U64 = (1n << 64n) - 1n;

/** Decode, and fail the property unless it returned or threw ProtocolError. */
function decodesOrRefuses(decode: (payload: Uint8Array) => unknown, payload: Uint8Array): void {
  try {
    decode(payload);
  } catch (err) {
    if (!(err instanceof ProtocolError)) throw new Error(`threw ${(err as Error)?.constructor?.name}: ${(err as Error)?.message}`);
  }
}

t.test('random bytes: every decoder returns or throws ProtocolError', (t) => {
  for (const c of CASES) {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: c.bytes.length * 2 + 64 }), (payload) => decodesOrRefuses(c.decode, payload)),
      { numRuns: RUNS },
    );
  }
  t.pass(`${CASES.length} decoders × ${RUNS} random payloads`);
  t.end();
});

/** A valid payload with some bytes replaced (boundary values favoured), or cut, or extended. */
function mutated(bytes: Uint8Array): fc.Arbitrary<Uint8Array> {
  const edit = fc.record({
    at: fc.nat({ max: Math.max(0, bytes.length - 1) }),
    value: fc.oneof(fc.constantFrom(0, 0xff, 0x7f, 0x80, 1), fc.integer({ min: 0, max: 255 })),
    span: fc.integer({ min: 1, max: 8 }),
  });
  return fc
    .record({ edits: fc.array(edit, { minLength: 1, maxLength: 6 }), length: fc.option(fc.nat({ max: bytes.length + 16 })) })
    .map(({ edits, length }) => {
      const out = new Uint8Array(length ?? bytes.length);
      out.set(bytes.subarray(0, out.length));
      for (const e of edits) out.fill(e.value, e.at, Math.min(out.length, e.at + e.span));
      return out;
    });
}

t.test('mutated valid messages: every decoder returns or throws ProtocolError', (t) => {
  for (const c of CASES) {
    if (c.bytes.length === 0) continue;
    fc.assert(
      fc.property(mutated(c.bytes), (payload) => decodesOrRefuses(c.decode, payload)),
      { numRuns: RUNS },
    );
  }
  t.pass(`${CASES.length} decoders × ${RUNS} mutations`);
  t.end();
});

// ---- round trips of random valid values ----

/** The same value with plain prototypes (layouts decode into null-prototype objects). */
function plain(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(plain);
  if (value === null || typeof value !== 'object' || ArrayBuffer.isView(value)) return value;
  return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, plain(v)]));
}

function roundTrip<T>(
  t: Test,
  name: string,
  arb: fc.Arbitrary<T>,
  encode: (v: T) => Uint8Array,
  decode: (p: Uint8Array, v: T) => unknown,
  expected = (v: T): unknown => v,
): void {
  fc.assert(
    fc.property(arb, (value) => deepStrictEqual(plain(decode(encode(value), value)), plain(expected(value)))),
    { numRuns: RUNS },
  );
  t.pass(`${name}: ${RUNS} random values`);
}

const u32 = fc.integer({ min: 0, max: 0xffff_ffff });
const u64 = fc.bigInt({ min: 0n, max: U64 });
/** A non-empty range [start, start + size) inside the u64 space. */
const range = fc.bigInt({ min: 1n, max: U64 }).chain((size) => fc.bigInt({ min: 0n, max: U64 + 1n - size }).map((start) => ({ start, size })));
/** A region that exists, and an access inside it. */
const regionAccess = (maxCount: number) =>
  fc
    .constantFrom(...REGION_SIZES.map((size, region) => ({ size, region })).filter((r) => r.size > 0n))
    .chain(({ size, region }) =>
      fc
        .integer({ min: 1, max: Math.min(maxCount, Number(size)) })
        .chain((count) => fc.bigInt({ min: 0n, max: size - BigInt(count) }).map((offset) => ({ region, offset, count }))),
    );
const bytes = (max: number) => fc.uint8Array({ minLength: 1, maxLength: max });
/** A guest address and a count that do not wrap past 2^64. */
const dmaAccess = (maxCount: number) =>
  fc.integer({ min: 1, max: maxCount }).chain((count) => fc.bigInt({ min: 0n, max: U64 + 1n - BigInt(count) }).map((address) => ({ address, count })));
const dmaData = (maxCount: number) =>
  dmaAccess(maxCount).chain((a) => fc.uint8Array({ minLength: a.count, maxLength: a.count }).map((data) => ({ address: a.address, data })));

t.test('random valid values round-trip', (t) => {
  roundTrip(
    t,
    'DMA_MAP request',
    fc.record({ flags: fc.constantFrom(DmaMapFlag.Read, DmaMapFlag.Write, DmaMapFlag.Read | DmaMapFlag.Write), offset: u64, r: range }),
    (v) => encodeDmaMapRequest({ argsz: 32, flags: v.flags, offset: v.offset, address: v.r.start, size: v.r.size }),
    (p) => decodeDmaMapRequest(p, { fdCount: 1 }),
    (v) => ({ argsz: 32, flags: v.flags, offset: v.offset, address: v.r.start, size: v.r.size }),
  );
  roundTrip(
    t,
    'DMA_UNMAP request',
    range,
    (r) => encodeDmaUnmapRequest({ argsz: 24, flags: 0, address: r.start, size: r.size }),
    (p) => decodeDmaUnmapRequest(p, { maxDataXferSize: MAX_XFER }),
    (r) => ({ argsz: 24, flags: 0, address: r.start, size: r.size }),
  );
  roundTrip(
    t,
    'DEVICE_GET_INFO reply',
    fc.record({ argsz: fc.constant(16), flags: fc.integer({ min: 0, max: 3 }), numRegions: u32, numIrqs: u32 }),
    encodeDeviceGetInfoReply,
    (p) => decodeDeviceGetInfoReply(p),
  );
  roundTrip(
    t,
    'DEVICE_GET_IRQ_INFO reply',
    fc.record({
      argsz: fc.constant(16),
      flags: fc.integer({ min: 0, max: IrqInfoFlag.Eventfd | IrqInfoFlag.Maskable | IrqInfoFlag.Automasked | IrqInfoFlag.NoResize }),
      index: fc.integer({ min: 0, max: PciIrq.Count - 1 }),
      count: u32,
    }),
    encodeIrqInfoReply,
    (p) => decodeIrqInfoReply(p, { numIrqs: PciIrq.Count }),
  );
  roundTrip(t, 'REGION_READ request', regionAccess(MAX_XFER), encodeRegionReadRequest, (p) =>
    decodeRegionReadRequest(p, { maxDataXferSize: MAX_XFER, regions: REGIONS }),
  );
  roundTrip(t, 'REGION_READ reply', fc.record({ offset: u64, region: fc.integer({ min: 0, max: 8 }), data: bytes(4096) }), encodeRegionReadReply, (p, v) =>
    decodeRegionReadReply(p, { maxDataXferSize: MAX_XFER, requestCount: v.data.length }),
  );
  roundTrip(
    t,
    'REGION_WRITE request',
    regionAccess(4096).chain((a) => fc.uint8Array({ minLength: a.count, maxLength: a.count }).map((data) => ({ region: a.region, offset: a.offset, data }))),
    encodeRegionWriteRequest,
    (p) => decodeRegionWriteRequest(p, { maxDataXferSize: MAX_XFER, regions: REGIONS }),
  );
  roundTrip(
    t,
    'REGION_WRITE_MULTI request',
    fc.array(
      regionAccess(8).chain((a) => fc.uint8Array({ minLength: a.count, maxLength: a.count }).map((data) => ({ region: a.region, offset: a.offset, data }))),
      { minLength: 1, maxLength: 200 },
    ),
    encodeRegionWriteMultiRequest,
    (p) => decodeRegionWriteMultiRequest(p, { regions: REGIONS }),
  );
  roundTrip(t, 'DMA_READ request', dmaAccess(MAX_XFER), encodeDmaReadRequest, (p) => decodeDmaReadRequest(p, { maxDataXferSize: MAX_XFER }));
  roundTrip(t, 'DMA_READ reply', dmaData(4096), encodeDmaReadReply, (p, v) =>
    decodeDmaReadReply(p, { maxDataXferSize: MAX_XFER, requestCount: v.data.length }),
  );
  roundTrip(t, 'DMA_WRITE request', dmaData(4096), encodeDmaWriteRequest, (p) => decodeDmaWriteRequest(p, { maxDataXferSize: MAX_XFER }));
  roundTrip(t, 'DMA_WRITE reply', dmaAccess(4096), encodeDmaWriteReply, (p, v) => decodeDmaWriteReply(p, { maxDataXferSize: MAX_XFER, requestCount: v.count }));
  const setIrqs: fc.Arbitrary<SetIrqsRequest> = fc
    .constantFrom(...IRQ_COUNTS.map((count, index) => ({ index, count })).filter((i) => i.count > 0))
    .chain(({ index, count: max }) =>
      fc.integer({ min: 0, max: max - 1 }).chain((start) =>
        fc.integer({ min: 1, max: Math.min(16, max - start) }).chain((count) =>
          fc
            .oneof(
              fc.record({ action: fc.constantFrom('mask' as const, 'unmask' as const, 'trigger' as const), data: fc.constant({ kind: 'none' as const }) }),
              fc.record({
                action: fc.constantFrom('mask' as const, 'unmask' as const, 'trigger' as const),
                data: fc.array(fc.boolean(), { minLength: count, maxLength: count }).map((values) => ({ kind: 'bool' as const, values })),
              }),
              fc.record({ action: fc.constantFrom('unmask' as const, 'trigger' as const), data: fc.constant({ kind: 'eventfd' as const }) }),
            )
            .map((rest) => ({ index, start, count, ...rest })),
        ),
      ),
    );
  roundTrip(t, 'DEVICE_SET_IRQS request', setIrqs, encodeSetIrqsRequest, (p, v) =>
    decodeSetIrqsRequest(p, { ...IRQ_LIMITS, fdCount: v.data.kind === 'eventfd' ? v.count : 0 }),
  );
  // Sparse areas inside the region, sorted and disjoint (as the decoder demands): cut points.
  const regionInfo: fc.Arbitrary<RegionInfo> = fc
    .record({
      index: fc.integer({ min: 0, max: PciRegion.Count - 1 }),
      flags: fc.integer({ min: 0, max: 7 }),
      size: fc.bigInt({ min: 1n, max: U64 }),
      offset: u64,
      cuts: fc.uniqueArray(fc.bigInt({ min: 0n, max: U64 }), { maxLength: 16 }),
      kinds: fc.subarray(['sparse-mmap', 'type', 'msix-mappable'] as const),
      type: u32,
      subtype: u32,
    })
    .map(({ index, flags, size, offset, cuts, kinds, type, subtype }) => {
      const points = cuts.map((c) => c % (size + 1n)).sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
      const areas: { offset: bigint; size: bigint }[] = [];
      for (let i = 0; i + 1 < points.length; i += 2) areas.push({ offset: points[i]!, size: points[i + 1]! - points[i]! });
      const caps = kinds.map((kind) => (kind === 'sparse-mmap' ? { kind, areas } : kind === 'type' ? { kind, type, subtype } : { kind })) as RegionInfo['caps'];
      return { index, flags, size, offset, caps };
    });
  roundTrip(
    t,
    'DEVICE_GET_REGION_INFO reply (argsz big enough)',
    regionInfo,
    (v) => encodeRegionInfoReply(v, regionInfoReplySize(v)),
    (p, v) => decodeRegionInfoReply(p, { requestArgsz: regionInfoReplySize(v), maxDataXferSize: MAX_XFER }),
    (v) => ({ ...v, argsz: regionInfoReplySize(v), complete: true }),
  );
  const version: fc.Arbitrary<Version> = fc.record(
    {
      major: fc.integer({ min: 0, max: 0xffff }),
      minor: fc.integer({ min: 0, max: 0xffff }),
      capabilities: fc.record(
        {
          maxMsgFds: fc.integer({ min: 0, max: 16 }),
          maxDataXferSize: fc.integer({ min: 4096, max: 64 << 20 }),
          pgsizes: fc.integer({ min: 1, max: 1 << 10 }).map((n) => n * 4096),
          maxDmaMaps: fc.integer({ min: 1, max: 65535 }),
          writeMultiple: fc.boolean(),
        },
        { requiredKeys: [] },
      ),
    },
    { requiredKeys: ['major', 'minor'] },
  );
  roundTrip(t, 'VERSION', version, encodeVersion, (p) => decodeVersion(p));
  t.end();
});
