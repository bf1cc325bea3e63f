/**
 * One valid message per row, for every request and reply of every command:
 * the table that drives the round-trip and truncation tests
 * (codecs.test.ts), and the source of well-formed payloads that the
 * bad-field tests corrupt one field at a time.
 */
import { pathToFileURL } from 'node:url';
import t from 'tap';
import {
  Command,
  DeviceFeatureId,
  DeviceInfoFlag,
  DmaMapFlag,
  DmaUnmapFlag,
  IoeventfdFlag,
  IrqInfoFlag,
  MigState,
  MigrationFlag,
  PciIrq,
  PciRegion,
  RegionInfoFlag,
  type RegionBounds,
  decodeDeviceFeatureReply,
  decodeDeviceFeatureRequest,
  decodeDeviceGetInfoReply,
  decodeDeviceGetInfoRequest,
  decodeDeviceResetReply,
  decodeDeviceResetRequest,
  decodeDmaLoggingControl,
  decodeDmaLoggingReport,
  decodeDmaLoggingReportReply,
  decodeDmaMapReply,
  decodeDmaMapRequest,
  decodeDmaReadReply,
  decodeDmaReadRequest,
  decodeDmaUnmapReply,
  decodeDmaUnmapRequest,
  decodeDmaWriteReply,
  decodeDmaWriteRequest,
  decodeIrqInfoReply,
  decodeIrqInfoRequest,
  decodeMigDataReadReply,
  decodeMigDataReadRequest,
  decodeMigDataWriteReply,
  decodeMigDataWriteRequest,
  decodeMigDeviceState,
  decodeMigrationFeature,
  decodeRegionInfoReply,
  decodeRegionInfoRequest,
  decodeRegionIoFdsReply,
  decodeRegionIoFdsRequest,
  decodeRegionReadReply,
  decodeRegionReadRequest,
  decodeRegionWriteMultiReply,
  decodeRegionWriteMultiRequest,
  decodeRegionWriteReply,
  decodeRegionWriteRequest,
  decodeSetIrqsReply,
  decodeSetIrqsRequest,
  decodeVersion,
  encodeDeviceFeatureReply,
  encodeDeviceFeatureRequest,
  encodeDeviceGetInfoReply,
  encodeDeviceGetInfoRequest,
  encodeDeviceResetReply,
  encodeDeviceResetRequest,
  encodeDmaLoggingControl,
  encodeDmaLoggingReport,
  encodeDmaLoggingReportReply,
  encodeDmaMapReply,
  encodeDmaMapRequest,
  encodeDmaReadReply,
  encodeDmaReadRequest,
  encodeDmaUnmapReply,
  encodeDmaUnmapRequest,
  encodeDmaWriteReply,
  encodeDmaWriteRequest,
  encodeIrqInfoReply,
  encodeIrqInfoRequest,
  encodeMigDataReadReply,
  encodeMigDataReadRequest,
  encodeMigDataWriteReply,
  encodeMigDataWriteRequest,
  encodeMigDeviceState,
  encodeMigrationFeature,
  encodeRegionInfoReply,
  encodeRegionInfoRequest,
  encodeRegionIoFdsReply,
  encodeRegionIoFdsRequest,
  encodeRegionReadReply,
  encodeRegionReadRequest,
  encodeRegionWriteMultiReply,
  encodeRegionWriteMultiRequest,
  encodeRegionWriteReply,
  encodeRegionWriteRequest,
  encodeSetIrqsReply,
  encodeSetIrqsRequest,
  encodeVersion,
  regionInfoReplySize,
  type DeviceFeatureMessage,
  type RegionInfo,
  type RegionIoFds,
} from '../../src/protocol/index.js';

// tap runs every .js file under a directory argument (`npx tap build/test/protocol`); run
// directly, this table reports one passing check instead of failing with "no tests found".
if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) t.pass('fixture module loads');

/** Our advertised max_data_xfer_size in these tests (bytes). */
export const MAX_XFER = 1024 * 1024;

/** Region sizes of the device the server-side decoders check against (bytes). */
export const REGION_SIZES: readonly bigint[] = [0x1000_0000n, 0n, 0x1_0000n, 0n, 0n, 0n, 0n, 0x1000n, 0n];

/** Sub-index counts per IRQ index (INTx, MSI, MSI-X, ERR, REQ). */
export const IRQ_COUNTS: readonly number[] = [1, 0, 32, 1, 0];

export const REGIONS: RegionBounds = {
  numRegions: PciRegion.Count,
  regionSize: (index) => REGION_SIZES[index] ?? 0n,
};

/** Server-side limits for the SET_IRQS decoder. */
export const IRQ_LIMITS = {
  maxDataXferSize: MAX_XFER,
  numIrqs: PciIrq.Count,
  irqCount: (index: number) => IRQ_COUNTS[index] ?? 0,
};

/** A counting byte pattern of `length` bytes, distinct per `seed`. */
export function pattern(length: number, seed = 1): Uint8Array {
  return Uint8Array.from({ length }, (_, i) => (i * 7 + seed) & 0xff);
}

/** One valid message payload and how to encode and decode it. */
export interface CodecCase {
  /** e.g. `REGION_READ request`. */
  name: string;
  command: Command;
  direction: 'request' | 'reply';
  /** The encoded payload (bytes after the header). */
  bytes: Uint8Array;
  /** Decoder with the limits a real peer would pass. */
  decode: (payload: Uint8Array) => unknown;
  /** What `decode(bytes)` must return. */
  expected: unknown;
  /**
   * Truncated lengths that are a different valid message by the protocol's
   * own rules (e.g. VERSION without its JSON); every other truncation must
   * throw EINVAL.
   */
  validPrefixes?: readonly number[];
}

function row<T>(
  name: string,
  command: Command,
  direction: 'request' | 'reply',
  value: T,
  encode: (value: T) => Uint8Array,
  decode: (payload: Uint8Array) => unknown,
  extra: { expected?: unknown; validPrefixes?: readonly number[] } = {},
): CodecCase {
  const bytes = encode(value);
  const out: CodecCase = { name, command, direction, bytes, decode, expected: 'expected' in extra ? extra.expected : value };
  if (extra.validPrefixes !== undefined) out.validPrefixes = extra.validPrefixes;
  return out;
}

// ---------------------------------------------------------------------------

const qemuCaps = {
  major: 0,
  minor: 0,
  capabilities: {
    maxMsgFds: 16,
    maxDataXferSize: MAX_XFER,
    pgsizes: 4096,
    maxDmaMaps: 65535,
    migration: { pgsize: 4096, maxBitmapSize: 268435456 },
    writeMultiple: true,
  },
};
const serverCaps = {
  major: 0,
  minor: 0,
  capabilities: { maxMsgFds: 16, maxDataXferSize: MAX_XFER, pgsizes: 4096, maxDmaMaps: 65535 },
};

export const bar0Info: RegionInfo = {
  index: PciRegion.Bar0,
  flags: RegionInfoFlag.Read | RegionInfoFlag.Write | RegionInfoFlag.Mmap,
  size: 0x1000_0000n,
  offset: 0n,
  caps: [
    {
      kind: 'sparse-mmap',
      areas: [
        { offset: 0x1000n, size: 0x7000n },
        { offset: 0x10000n, size: 0xfff_0000n },
      ],
    },
    { kind: 'msix-mappable' },
    { kind: 'type', type: 0x8086, subtype: 1 },
  ],
};
const configInfo: RegionInfo = {
  index: PciRegion.Config,
  flags: RegionInfoFlag.Read | RegionInfoFlag.Write,
  size: 0x1000n,
  offset: 0n,
  caps: [],
};
const bar0Needed = regionInfoReplySize(bar0Info);

export const ioFds: RegionIoFds = {
  index: PciRegion.Bar2,
  subRegions: [
    { type: 'ioeventfd', offset: 0x100n, size: 4n, fdIndex: 0, flags: IoeventfdFlag.Datamatch, datamatch: 0xdeadn },
    { type: 'ioregionfd', offset: 0x200n, size: 8n, fdIndex: 1, flags: 0, userData: 0x1234_5678_9abc_def0n },
  ],
};
const ioFdsNeeded = 16 + 40 * ioFds.subRegions.length;

const FEATURE = { maxDataXferSize: MAX_XFER };
const BITMAP = { maxBitmapSize: MAX_XFER };

function feature(featureId: number, op: 'get' | 'set' | 'probe', data: Uint8Array, argsz?: number): DeviceFeatureMessage {
  return {
    argsz: argsz ?? 8 + data.length,
    feature: featureId,
    get: op === 'get',
    set: op === 'set',
    probe: op === 'probe',
    data,
  };
}

const reportRequest = { iova: 0x10_0000n, length: 0x40_0000n, pageSize: 0x1000n };
const reportBitmap = pattern(128, 9); // 0x400 pages → 16 u64 words

/** Every request and reply of every command (DIRTY_PAGES is obsolete and has none). */
export const CASES: readonly CodecCase[] = [
  // VERSION: truncating to 4 bytes drops the optional JSON, which is a valid VERSION.
  row('VERSION request (QEMU capabilities)', Command.Version, 'request', qemuCaps, encodeVersion, (p) => decodeVersion(p), { validPrefixes: [4] }),
  row('VERSION request (no JSON)', Command.Version, 'request', { major: 0, minor: 0 }, encodeVersion, (p) => decodeVersion(p)),
  row('VERSION reply', Command.Version, 'reply', serverCaps, encodeVersion, (p) => decodeVersion(p), { validPrefixes: [4] }),

  row(
    'DMA_MAP request',
    Command.DmaMap,
    'request',
    { argsz: 32, flags: DmaMapFlag.Read | DmaMapFlag.Write, offset: 0x10_0000n, address: 0x10_0000n, size: 0x1ff0_0000n },
    encodeDmaMapRequest,
    (p) => decodeDmaMapRequest(p, { fdCount: 1 }),
  ),
  row('DMA_MAP reply', Command.DmaMap, 'reply', undefined, encodeDmaMapReply, decodeDmaMapReply),

  row('DMA_UNMAP request', Command.DmaUnmap, 'request', { argsz: 24, flags: 0, address: 0x10_0000n, size: 0x1ff0_0000n }, encodeDmaUnmapRequest, (p) =>
    decodeDmaUnmapRequest(p, { maxDataXferSize: MAX_XFER }),
  ),
  row(
    'DMA_UNMAP request (dirty bitmap)',
    Command.DmaUnmap,
    'request',
    { argsz: 24 + 16 + 8, flags: DmaUnmapFlag.GetDirtyBitmap, address: 0n, size: 0x4_0000n, bitmap: { pgsize: 4096n, size: 8 } },
    encodeDmaUnmapRequest,
    (p) => decodeDmaUnmapRequest(p, { maxDataXferSize: MAX_XFER }),
  ),
  row('DMA_UNMAP request (ALL)', Command.DmaUnmap, 'request', { argsz: 24, flags: DmaUnmapFlag.All, address: 0n, size: 0n }, encodeDmaUnmapRequest, (p) =>
    decodeDmaUnmapRequest(p, { maxDataXferSize: MAX_XFER }),
  ),
  // Header-only is the form QEMU expects; truncating an echo to 0 bytes gives it.
  row(
    'DMA_UNMAP reply (echo)',
    Command.DmaUnmap,
    'reply',
    { argsz: 24, flags: 0, address: 0x10_0000n, size: 0x1000n },
    (v) => encodeDmaUnmapReply(v),
    decodeDmaUnmapReply,
    { validPrefixes: [0] },
  ),
  row(
    'DMA_UNMAP reply (dirty bitmap)',
    Command.DmaUnmap,
    'reply',
    { argsz: 48, flags: DmaUnmapFlag.GetDirtyBitmap, address: 0n, size: 0x4_0000n, bitmap: { pgsize: 4096n, size: 8 }, bitmapData: pattern(8) },
    (v) => encodeDmaUnmapReply(v, v.bitmapData),
    decodeDmaUnmapReply,
    { validPrefixes: [0] },
  ),
  row('DMA_UNMAP reply (header only)', Command.DmaUnmap, 'reply', undefined, () => encodeDmaUnmapReply(), decodeDmaUnmapReply, { expected: null }),

  row('DEVICE_GET_INFO request', Command.DeviceGetInfo, 'request', { argsz: 16 }, encodeDeviceGetInfoRequest, decodeDeviceGetInfoRequest),
  row(
    'DEVICE_GET_INFO reply',
    Command.DeviceGetInfo,
    'reply',
    { argsz: 16, flags: DeviceInfoFlag.Reset | DeviceInfoFlag.Pci, numRegions: 9, numIrqs: 5 },
    encodeDeviceGetInfoReply,
    decodeDeviceGetInfoReply,
  ),

  row('DEVICE_GET_REGION_INFO request', Command.DeviceGetRegionInfo, 'request', { argsz: 32, index: PciRegion.Bar0 }, encodeRegionInfoRequest, (p) =>
    decodeRegionInfoRequest(p, { numRegions: PciRegion.Count }),
  ),
  row(
    'DEVICE_GET_REGION_INFO reply (with caps)',
    Command.DeviceGetRegionInfo,
    'reply',
    bar0Info,
    (v) => encodeRegionInfoReply(v, bar0Needed),
    (p) => decodeRegionInfoReply(p, { requestArgsz: bar0Needed, maxDataXferSize: MAX_XFER }),
    { expected: { ...bar0Info, argsz: bar0Needed, complete: true } },
  ),
  row(
    'DEVICE_GET_REGION_INFO reply (first round)',
    Command.DeviceGetRegionInfo,
    'reply',
    bar0Info,
    (v) => encodeRegionInfoReply(v, 32),
    (p) => decodeRegionInfoReply(p, { requestArgsz: 32, maxDataXferSize: MAX_XFER }),
    { expected: { ...bar0Info, caps: [], argsz: bar0Needed, complete: false } },
  ),
  row(
    'DEVICE_GET_REGION_INFO reply (no caps)',
    Command.DeviceGetRegionInfo,
    'reply',
    configInfo,
    (v) => encodeRegionInfoReply(v, 32),
    (p) => decodeRegionInfoReply(p, { requestArgsz: 32, maxDataXferSize: MAX_XFER }),
    { expected: { ...configInfo, argsz: 32, complete: true } },
  ),

  row(
    'DEVICE_GET_REGION_IO_FDS request',
    Command.DeviceGetRegionIoFds,
    'request',
    { argsz: ioFdsNeeded, index: PciRegion.Bar2 },
    encodeRegionIoFdsRequest,
    (p) => decodeRegionIoFdsRequest(p, { maxDataXferSize: MAX_XFER, numRegions: PciRegion.Count }),
  ),
  row(
    'DEVICE_GET_REGION_IO_FDS reply',
    Command.DeviceGetRegionIoFds,
    'reply',
    ioFds,
    (v) => encodeRegionIoFdsReply(v, ioFdsNeeded),
    (p) => decodeRegionIoFdsReply(p, { requestArgsz: ioFdsNeeded, fdCount: 2 }),
    { expected: { ...ioFds, argsz: ioFdsNeeded, count: 2, complete: true } },
  ),
  row(
    'DEVICE_GET_REGION_IO_FDS reply (first round)',
    Command.DeviceGetRegionIoFds,
    'reply',
    ioFds,
    (v) => encodeRegionIoFdsReply(v, 16),
    (p) => decodeRegionIoFdsReply(p, { requestArgsz: 16 }),
    { expected: { ...ioFds, subRegions: [], argsz: ioFdsNeeded, count: 2, complete: false } },
  ),

  row('DEVICE_GET_IRQ_INFO request', Command.DeviceGetIrqInfo, 'request', { argsz: 16, index: PciIrq.Msix }, encodeIrqInfoRequest, (p) =>
    decodeIrqInfoRequest(p, { numIrqs: PciIrq.Count }),
  ),
  row(
    'DEVICE_GET_IRQ_INFO reply',
    Command.DeviceGetIrqInfo,
    'reply',
    { argsz: 16, flags: IrqInfoFlag.Eventfd, index: PciIrq.Msix, count: 32 },
    encodeIrqInfoReply,
    (p) => decodeIrqInfoReply(p, { numIrqs: PciIrq.Count }),
  ),

  row(
    'DEVICE_SET_IRQS request (eventfd)',
    Command.DeviceSetIrqs,
    'request',
    { index: PciIrq.Msix, start: 3, count: 1, action: 'trigger' as const, data: { kind: 'eventfd' as const } },
    encodeSetIrqsRequest,
    (p) => decodeSetIrqsRequest(p, { ...IRQ_LIMITS, fdCount: 1 }),
  ),
  row(
    'DEVICE_SET_IRQS request (bool)',
    Command.DeviceSetIrqs,
    'request',
    { index: PciIrq.Msix, start: 4, count: 4, action: 'mask' as const, data: { kind: 'bool' as const, values: [true, false, true, true] } },
    encodeSetIrqsRequest,
    (p) => decodeSetIrqsRequest(p, IRQ_LIMITS),
  ),
  row(
    'DEVICE_SET_IRQS request (disable index)',
    Command.DeviceSetIrqs,
    'request',
    { index: PciIrq.Intx, start: 0, count: 0, action: 'trigger' as const, data: { kind: 'none' as const } },
    encodeSetIrqsRequest,
    (p) => decodeSetIrqsRequest(p, IRQ_LIMITS),
  ),
  row('DEVICE_SET_IRQS reply', Command.DeviceSetIrqs, 'reply', undefined, encodeSetIrqsReply, decodeSetIrqsReply),

  row('REGION_READ request', Command.RegionRead, 'request', { offset: 0n, region: PciRegion.Config, count: 4096 }, encodeRegionReadRequest, (p) =>
    decodeRegionReadRequest(p, { maxDataXferSize: MAX_XFER, regions: REGIONS }),
  ),
  row('REGION_READ reply', Command.RegionRead, 'reply', { offset: 0x8000n, region: PciRegion.Bar2, data: pattern(4) }, encodeRegionReadReply, (p) =>
    decodeRegionReadReply(p, { maxDataXferSize: MAX_XFER, requestCount: 4 }),
  ),

  row('REGION_WRITE request', Command.RegionWrite, 'request', { offset: 0x10n, region: PciRegion.Bar0, data: pattern(8) }, encodeRegionWriteRequest, (p) =>
    decodeRegionWriteRequest(p, { maxDataXferSize: MAX_XFER, regions: REGIONS }),
  ),
  row('REGION_WRITE reply', Command.RegionWrite, 'reply', { offset: 0x10n, region: PciRegion.Bar0, count: 8 }, encodeRegionWriteReply, (p) =>
    decodeRegionWriteReply(p, { maxDataXferSize: MAX_XFER, requestCount: 8 }),
  ),

  row('DMA_READ request', Command.DmaRead, 'request', { address: 0x1234_0000n, count: 16 }, encodeDmaReadRequest, (p) =>
    decodeDmaReadRequest(p, { maxDataXferSize: MAX_XFER }),
  ),
  row('DMA_READ reply', Command.DmaRead, 'reply', { address: 0x1234_0000n, data: pattern(16) }, encodeDmaReadReply, (p) =>
    decodeDmaReadReply(p, { maxDataXferSize: MAX_XFER, requestCount: 16 }),
  ),

  row('DMA_WRITE request', Command.DmaWrite, 'request', { address: 0x1234_0000n, data: pattern(16) }, encodeDmaWriteRequest, (p) =>
    decodeDmaWriteRequest(p, { maxDataXferSize: MAX_XFER }),
  ),
  row('DMA_WRITE reply', Command.DmaWrite, 'reply', { address: 0x1234_0000n, count: 16 }, encodeDmaWriteReply, (p) =>
    decodeDmaWriteReply(p, { maxDataXferSize: MAX_XFER, requestCount: 16 }),
  ),

  row('DEVICE_RESET request', Command.DeviceReset, 'request', undefined, encodeDeviceResetRequest, decodeDeviceResetRequest),
  row('DEVICE_RESET reply', Command.DeviceReset, 'reply', undefined, encodeDeviceResetReply, decodeDeviceResetReply),

  row(
    'REGION_WRITE_MULTI request',
    Command.RegionWriteMulti,
    'request',
    [
      { offset: 0x0n, region: PciRegion.Bar0, data: pattern(1) },
      { offset: 0x104n, region: PciRegion.Bar2, data: pattern(4, 2) },
      { offset: 0xff8n, region: PciRegion.Config, data: pattern(8, 3) },
    ],
    encodeRegionWriteMultiRequest,
    (p) => decodeRegionWriteMultiRequest(p, { regions: REGIONS }),
  ),
  row('REGION_WRITE_MULTI reply', Command.RegionWriteMulti, 'reply', 3, encodeRegionWriteMultiReply, (p) => decodeRegionWriteMultiReply(p)),

  row(
    'DEVICE_FEATURE request (GET MIGRATION)',
    Command.DeviceFeature,
    'request',
    feature(DeviceFeatureId.Migration, 'get', new Uint8Array(0), 16),
    encodeDeviceFeatureRequest,
    (p) => decodeDeviceFeatureRequest(p, FEATURE),
  ),
  row(
    'DEVICE_FEATURE reply (GET MIGRATION)',
    Command.DeviceFeature,
    'reply',
    feature(DeviceFeatureId.Migration, 'get', encodeMigrationFeature({ flags: MigrationFlag.StopCopy | MigrationFlag.PreCopy })),
    encodeDeviceFeatureReply,
    (p) => {
      const reply = decodeDeviceFeatureReply(p, { ...FEATURE, requestArgsz: 16 });
      return { ...reply, migration: decodeMigrationFeature(reply.data) };
    },
    {
      expected: {
        ...feature(DeviceFeatureId.Migration, 'get', encodeMigrationFeature({ flags: MigrationFlag.StopCopy | MigrationFlag.PreCopy })),
        migration: { flags: MigrationFlag.StopCopy | MigrationFlag.PreCopy },
      },
    },
  ),
  row(
    'DEVICE_FEATURE request (SET MIG_DEVICE_STATE)',
    Command.DeviceFeature,
    'request',
    feature(DeviceFeatureId.MigDeviceState, 'set', encodeMigDeviceState({ deviceState: MigState.Stop, dataFd: 0 })),
    encodeDeviceFeatureRequest,
    (p) => {
      const request = decodeDeviceFeatureRequest(p, FEATURE);
      return { ...request, state: decodeMigDeviceState(request.data) };
    },
    {
      expected: {
        ...feature(DeviceFeatureId.MigDeviceState, 'set', encodeMigDeviceState({ deviceState: MigState.Stop, dataFd: 0 })),
        state: { deviceState: MigState.Stop, dataFd: 0 },
      },
    },
  ),
  row(
    'DEVICE_FEATURE request (SET DMA_LOGGING_START)',
    Command.DeviceFeature,
    'request',
    feature(
      DeviceFeatureId.DmaLoggingStart,
      'set',
      encodeDmaLoggingControl({
        pageSize: 4096n,
        ranges: [
          { iova: 0x10_0000n, length: 0x10_0000n },
          { iova: 0n, length: 0x1000n },
        ],
      }),
    ),
    encodeDeviceFeatureRequest,
    (p) => {
      const request = decodeDeviceFeatureRequest(p, FEATURE);
      return { ...request, control: decodeDmaLoggingControl(request.data, { maxRanges: 16 }) };
    },
    {
      expected: {
        ...feature(
          DeviceFeatureId.DmaLoggingStart,
          'set',
          encodeDmaLoggingControl({
            pageSize: 4096n,
            ranges: [
              { iova: 0x10_0000n, length: 0x10_0000n },
              { iova: 0n, length: 0x1000n },
            ],
          }),
        ),
        control: {
          pageSize: 4096n,
          ranges: [
            { iova: 0x10_0000n, length: 0x10_0000n },
            { iova: 0n, length: 0x1000n },
          ],
        },
      },
    },
  ),
  row(
    'DEVICE_FEATURE request (GET DMA_LOGGING_REPORT)',
    Command.DeviceFeature,
    'request',
    feature(DeviceFeatureId.DmaLoggingReport, 'get', encodeDmaLoggingReport(reportRequest), 8 + 24 + reportBitmap.length),
    encodeDeviceFeatureRequest,
    (p) => {
      const request = decodeDeviceFeatureRequest(p, FEATURE);
      return { ...request, report: decodeDmaLoggingReport(request.data, BITMAP) };
    },
    {
      expected: {
        ...feature(DeviceFeatureId.DmaLoggingReport, 'get', encodeDmaLoggingReport(reportRequest), 8 + 24 + reportBitmap.length),
        report: reportRequest,
      },
    },
  ),
  row(
    'DEVICE_FEATURE reply (GET DMA_LOGGING_REPORT)',
    Command.DeviceFeature,
    'reply',
    feature(DeviceFeatureId.DmaLoggingReport, 'get', encodeDmaLoggingReportReply({ ...reportRequest, bitmap: reportBitmap })),
    encodeDeviceFeatureReply,
    (p) => {
      const reply = decodeDeviceFeatureReply(p, FEATURE);
      return { ...reply, report: decodeDmaLoggingReportReply(reply.data, BITMAP) };
    },
    {
      expected: {
        ...feature(DeviceFeatureId.DmaLoggingReport, 'get', encodeDmaLoggingReportReply({ ...reportRequest, bitmap: reportBitmap })),
        report: { ...reportRequest, bitmap: reportBitmap },
      },
    },
  ),
  row(
    'DEVICE_FEATURE request (PROBE)',
    Command.DeviceFeature,
    'request',
    feature(DeviceFeatureId.MigDeviceState, 'probe', new Uint8Array(0)),
    encodeDeviceFeatureRequest,
    (p) => decodeDeviceFeatureRequest(p, FEATURE),
  ),

  row('MIG_DATA_READ request', Command.MigDataRead, 'request', { argsz: 8 + 4096, size: 4096 }, encodeMigDataReadRequest, (p) =>
    decodeMigDataReadRequest(p, { maxDataXferSize: MAX_XFER }),
  ),
  row('MIG_DATA_READ reply', Command.MigDataRead, 'reply', { data: pattern(100) }, encodeMigDataReadReply, (p) =>
    decodeMigDataReadReply(p, { maxDataXferSize: MAX_XFER, requestSize: 4096 }),
  ),
  row('MIG_DATA_WRITE request', Command.MigDataWrite, 'request', { argsz: 8 + 10, data: pattern(10) }, encodeMigDataWriteRequest, (p) =>
    decodeMigDataWriteRequest(p, { maxDataXferSize: MAX_XFER }),
  ),
  row('MIG_DATA_WRITE reply', Command.MigDataWrite, 'reply', undefined, encodeMigDataWriteReply, decodeMigDataWriteReply),
];

/** The row called `name` (throws if missing, so a typo fails loudly). */
export function fixture(name: string): CodecCase {
  const found = CASES.find((c) => c.name === name);
  if (found === undefined) throw new Error(`No fixture called ${name}`);
  return found;
}

/** A copy of the payload of row `name`, to corrupt. */
export function payloadOf(name: string): Uint8Array {
  return fixture(name).bytes.slice();
}
