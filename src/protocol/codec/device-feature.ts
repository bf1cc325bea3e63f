/**
 * VFIO_USER_DEVICE_FEATURE (16), client → server (analogous to the
 * `VFIO_DEVICE_FEATURE` ioctl). QEMU 11.1.3 has a forwarder but nothing
 * calls it for vfio-user-pci; a server should answer EINVAL/ENOTTY to
 * features it lacks.
 *
 * Request and reply payload (bytes after the 16-byte header):
 * `argsz u32 @0, flags u32 @4` (bits 0-15 feature number, bit 16 GET, 17 SET,
 * 18 PROBE), then feature data @8. The reply to SET/PROBE echoes the request;
 * the reply to GET carries the feature's data.
 *
 * The feature data helpers below cover the features the spec lists:
 * MIGRATION (1), MIG_DEVICE_STATE (2), DMA_LOGGING_START/STOP (6/7) and
 * DMA_LOGGING_REPORT (8).
 *
 * @module
 */

import { DeviceFeatureFlag, MigState, MigrationFlag } from '../commands.js';
import { hex, invalid } from '../errors.js';
import { concatBytes, struct, u32, u64 } from '../wire.js';
import { checkArgsz, checkFlags, checkNoWrap, checkXferSize, checkZero, expectLength, expectMinLength, isPowerOfTwo, toNumber } from './checks.js';
import { dirtyBitmapBytes } from './dma-unmap.js';

/** `struct vfio_user_device_feature` without its data: 8 bytes. */
export const DeviceFeatureLayout = struct('vfio_user_device_feature', {
  argsz: u32,
  flags: u32,
});

/** A DEVICE_FEATURE request or reply. */
export interface DeviceFeatureMessage {
  /** Request: most reply payload bytes the client accepts. Reply: payload bytes of the full reply. */
  argsz: number;
  /** Feature number (flags & 0xffff); not necessarily one of {@link DeviceFeatureId}. */
  feature: number;
  get: boolean;
  set: boolean;
  probe: boolean;
  /** Feature data; decoding returns a view into the payload. */
  data: Uint8Array;
}

/** Limits for the DEVICE_FEATURE decoders. */
export interface DeviceFeatureLimits {
  /** Largest acceptable argsz in bytes (QEMU: its max_data_xfer_size). */
  maxDataXferSize: number;
  /** For replies: argsz of the request; the reply must fit in it. */
  requestArgsz?: number;
}

const OPERATION_FLAGS = DeviceFeatureFlag.Get | DeviceFeatureFlag.Set | DeviceFeatureFlag.Probe;

function encodeFeature(message: DeviceFeatureMessage): Uint8Array {
  if (!Number.isInteger(message.feature) || message.feature < 0 || message.feature > DeviceFeatureFlag.Mask) {
    throw new RangeError(`Invalid feature number: ${message.feature}`);
  }
  const flags =
    message.feature | (message.get ? DeviceFeatureFlag.Get : 0) | (message.set ? DeviceFeatureFlag.Set : 0) | (message.probe ? DeviceFeatureFlag.Probe : 0);
  return concatBytes([DeviceFeatureLayout.encode({ argsz: message.argsz, flags }), message.data]);
}

function decodeFeature(what: string, payload: Uint8Array, limits: DeviceFeatureLimits): DeviceFeatureMessage {
  expectMinLength(what, payload, DeviceFeatureLayout.size);
  const { argsz, flags } = DeviceFeatureLayout.decode(payload);
  checkArgsz(what, argsz, payload.length, limits.maxDataXferSize);
  checkFlags(what, flags, DeviceFeatureFlag.Mask | OPERATION_FLAGS);
  const get = (flags & DeviceFeatureFlag.Get) !== 0;
  const set = (flags & DeviceFeatureFlag.Set) !== 0;
  const probe = (flags & DeviceFeatureFlag.Probe) !== 0;
  if (!get && !set && !probe) {
    throw invalid(`Invalid ${what} flags: no GET, SET or PROBE in ${hex(flags)}`);
  }
  if (get && set && !probe) {
    throw invalid(`Invalid ${what} flags: GET and SET together need PROBE in ${hex(flags)}`);
  }
  return { argsz, feature: flags & DeviceFeatureFlag.Mask, get, set, probe, data: payload.subarray(DeviceFeatureLayout.size) };
}

/** Encode a request payload: 8 bytes + data. */
export function encodeDeviceFeatureRequest(request: DeviceFeatureMessage): Uint8Array {
  return encodeFeature(request);
}

/**
 * Decode a request payload.
 * Checks, in order: at least 8 bytes; payload size ≤ argsz ≤
 * maxDataXferSize; no flags beyond bit 18; at least one of GET/SET/PROBE,
 * and GET with SET only when probing. The feature number is not checked:
 * answering unknown features is the server's job.
 * @throws {ProtocolError} EINVAL
 */
export function decodeDeviceFeatureRequest(payload: Uint8Array, limits: DeviceFeatureLimits): DeviceFeatureMessage {
  return decodeFeature('DEVICE_FEATURE', payload, limits);
}

/** Encode a reply payload: 8 bytes + data. For GET, argsz should be 8 + data.length. */
export function encodeDeviceFeatureReply(reply: DeviceFeatureMessage): Uint8Array {
  return encodeFeature(reply);
}

/**
 * Decode a reply payload: as the request, and the reply must fit the request's argsz.
 * @throws {ProtocolError} EINVAL
 */
export function decodeDeviceFeatureReply(payload: Uint8Array, limits: DeviceFeatureLimits): DeviceFeatureMessage {
  const reply = decodeFeature('DEVICE_FEATURE reply', payload, limits);
  if (limits.requestArgsz !== undefined && payload.length > limits.requestArgsz) {
    throw invalid(`DEVICE_FEATURE reply larger than requested: ${payload.length} > ${limits.requestArgsz} bytes`);
  }
  return reply;
}

// ---------------------------------------------------------------------------
// MIGRATION (1): GET reply data

/** `struct vfio_device_feature_migration`: 8 bytes. */
export const MigrationFeatureLayout = struct('vfio_device_feature_migration', {
  /** {@link MigrationFlag} bits. */
  flags: u64,
});

/** MIGRATION feature data. */
export interface MigrationFeature {
  /** {@link MigrationFlag} bits (STOP_COPY, P2P, PRE_COPY). */
  flags: number;
}

const MIGRATION_FLAGS = MigrationFlag.StopCopy | MigrationFlag.P2p | MigrationFlag.PreCopy;

/** Encode MIGRATION feature data (8 bytes). */
export function encodeMigrationFeature(feature: MigrationFeature): Uint8Array {
  return MigrationFeatureLayout.encode({ flags: BigInt(feature.flags) });
}

/**
 * Decode MIGRATION feature data: exactly 8 bytes, known flags only.
 * @throws {ProtocolError} EINVAL
 */
export function decodeMigrationFeature(data: Uint8Array): MigrationFeature {
  expectLength('MIGRATION feature', data, MigrationFeatureLayout.size);
  const { flags } = MigrationFeatureLayout.decode(data);
  if ((flags & ~BigInt(MIGRATION_FLAGS)) !== 0n) {
    throw invalid(`Unknown MIGRATION feature flags: ${hex(flags & ~BigInt(MIGRATION_FLAGS))} in ${hex(flags)}`);
  }
  return { flags: Number(flags) };
}

// ---------------------------------------------------------------------------
// MIG_DEVICE_STATE (2): SET request data, GET reply data

/** `struct vfio_device_feature_mig_state`: 8 bytes. */
export const MigDeviceStateLayout = struct('vfio_device_feature_mig_state', {
  /** A {@link MigState} value. */
  deviceState: u32,
  /** Unused by vfio-user (MIG_DATA_READ/WRITE carry the data). */
  dataFd: u32,
});

/** MIG_DEVICE_STATE feature data. */
export type MigDeviceState = ReturnType<typeof MigDeviceStateLayout.decode>;

const MAX_MIG_STATE = Math.max(...Object.values(MigState));

/** Encode MIG_DEVICE_STATE feature data (8 bytes). */
export function encodeMigDeviceState(state: MigDeviceState): Uint8Array {
  return MigDeviceStateLayout.encode(state);
}

/**
 * Decode MIG_DEVICE_STATE feature data: exactly 8 bytes, device_state a known
 * `vfio_device_mig_state` (0..7). Whether an arc is allowed is the server's call.
 * @throws {ProtocolError} EINVAL
 */
export function decodeMigDeviceState(data: Uint8Array): MigDeviceState {
  expectLength('MIG_DEVICE_STATE feature', data, MigDeviceStateLayout.size);
  const state = MigDeviceStateLayout.decode(data);
  if (state.deviceState > MAX_MIG_STATE) {
    throw invalid(`Invalid migration device state: ${state.deviceState} > ${MAX_MIG_STATE}`);
  }
  return state;
}

// ---------------------------------------------------------------------------
// DMA_LOGGING_START / DMA_LOGGING_STOP (6/7): SET request data

/** `struct vfio_device_feature_dma_logging_control` without its ranges: 16 bytes. */
export const DmaLoggingControlLayout = struct('vfio_device_feature_dma_logging_control', {
  /** Tracking granularity hint, bytes; a power of two. */
  pageSize: u64,
  /** Number of ranges; 0 = log all writes. */
  numRanges: u32,
  reserved: u32,
});

/** `struct vfio_device_feature_dma_logging_range`: 16 bytes. */
export const DmaLoggingRangeLayout = struct('vfio_device_feature_dma_logging_range', {
  iova: u64,
  /** Bytes. */
  length: u64,
});

/** An IOVA range to log. */
export type DmaLoggingRange = ReturnType<typeof DmaLoggingRangeLayout.decode>;

/** DMA_LOGGING_START/STOP feature data. */
export interface DmaLoggingControl {
  pageSize: bigint;
  ranges: DmaLoggingRange[];
}

/** Limits for {@link decodeDmaLoggingControl}. */
export interface DmaLoggingControlLimits {
  /** Most ranges accepted. */
  maxRanges: number;
}

/** Encode DMA_LOGGING_START/STOP feature data: 16 bytes + 16 per range. */
export function encodeDmaLoggingControl(control: DmaLoggingControl): Uint8Array {
  return concatBytes([
    DmaLoggingControlLayout.encode({ pageSize: control.pageSize, numRanges: control.ranges.length, reserved: 0 }),
    ...control.ranges.map((range) => DmaLoggingRangeLayout.encode(range)),
  ]);
}

/**
 * Decode DMA_LOGGING_START/STOP feature data.
 * Checks, in order: at least 16 bytes; reserved 0; page_size a power of two;
 * num_ranges ≤ maxRanges; exactly 16 + 16 × num_ranges bytes; every range
 * non-empty without 2^64 wrap-around, and no two ranges overlapping.
 * @throws {ProtocolError} EINVAL
 */
export function decodeDmaLoggingControl(data: Uint8Array, limits: DmaLoggingControlLimits): DmaLoggingControl {
  expectMinLength('DMA logging control', data, DmaLoggingControlLayout.size);
  const control = DmaLoggingControlLayout.decode(data);
  checkZero('DMA logging control reserved', control.reserved);
  if (!isPowerOfTwo(control.pageSize)) {
    throw invalid(`Invalid DMA logging page size: ${control.pageSize}`);
  }
  if (control.numRanges > limits.maxRanges) {
    throw invalid(`Too many DMA logging ranges: ${control.numRanges} > ${limits.maxRanges}`);
  }
  expectLength('DMA logging control', data, DmaLoggingControlLayout.size + control.numRanges * DmaLoggingRangeLayout.size);
  const ranges: DmaLoggingRange[] = [];
  for (let i = 0; i < control.numRanges; i++) {
    const range = DmaLoggingRangeLayout.decode(data, DmaLoggingControlLayout.size + i * DmaLoggingRangeLayout.size);
    if (range.length === 0n) {
      throw invalid(`Invalid DMA logging range: range ${i} is empty`);
    }
    checkNoWrap('DMA logging range', range.iova, range.length);
    ranges.push(range);
  }
  const sorted = [...ranges].sort((a, b) => (a.iova < b.iova ? -1 : a.iova > b.iova ? 1 : 0));
  for (let i = 1; i < sorted.length; i++) {
    const previous = sorted[i - 1]!;
    const current = sorted[i]!;
    if (previous.iova + previous.length > current.iova) {
      throw invalid(`DMA logging ranges overlap: ${hex(previous.iova)}+${hex(previous.length)} > ${hex(current.iova)}`);
    }
  }
  return { pageSize: control.pageSize, ranges };
}

// ---------------------------------------------------------------------------
// DMA_LOGGING_REPORT (8): GET request data, GET reply data (+ bitmap)

/** `struct vfio_device_feature_dma_logging_report` without its bitmap: 24 bytes. */
export const DmaLoggingReportLayout = struct('vfio_device_feature_dma_logging_report', {
  iova: u64,
  /** Bytes. */
  length: u64,
  /** Bytes of IOVA per bitmap bit; a power of two. */
  pageSize: u64,
});

/** DMA_LOGGING_REPORT request data. */
export type DmaLoggingReport = ReturnType<typeof DmaLoggingReportLayout.decode>;

/** DMA_LOGGING_REPORT reply data: the request plus a bitmap of u64 words, one bit per page. */
export interface DmaLoggingReportReply extends DmaLoggingReport {
  /** Decoding returns a view into the data. */
  bitmap: Uint8Array;
}

/** Limits for the DMA_LOGGING_REPORT decoders. */
export interface DmaLoggingReportLimits {
  /** Largest bitmap in bytes the receiver will allocate or accept. */
  maxBitmapSize: number;
}

/** Bitmap bytes for a report: one bit per `pageSize` bytes of `length`, in whole u64 words. */
export function dmaLoggingBitmapSize(report: Pick<DmaLoggingReport, 'length' | 'pageSize'>): bigint {
  return dirtyBitmapBytes(report.length, report.pageSize);
}

function checkReport(report: DmaLoggingReport, limits: DmaLoggingReportLimits): number {
  if (!isPowerOfTwo(report.pageSize)) {
    throw invalid(`Invalid DMA logging page size: ${report.pageSize}`);
  }
  if (report.length === 0n) {
    throw invalid('Invalid DMA logging report: length 0');
  }
  checkNoWrap('DMA logging report', report.iova, report.length);
  const bitmapSize = dmaLoggingBitmapSize(report);
  checkXferSize('DMA logging bitmap size', bitmapSize, limits.maxBitmapSize);
  return toNumber(bitmapSize);
}

/** Encode DMA_LOGGING_REPORT request data (24 bytes). */
export function encodeDmaLoggingReport(report: DmaLoggingReport): Uint8Array {
  return DmaLoggingReportLayout.encode(report);
}

/**
 * Decode DMA_LOGGING_REPORT request data: exactly 24 bytes; page_size a power
 * of two; length > 0 without 2^64 wrap-around; bitmap ≤ maxBitmapSize.
 * @throws {ProtocolError} EINVAL
 */
export function decodeDmaLoggingReport(data: Uint8Array, limits: DmaLoggingReportLimits): DmaLoggingReport {
  expectLength('DMA logging report', data, DmaLoggingReportLayout.size);
  const report = DmaLoggingReportLayout.decode(data);
  checkReport(report, limits);
  return report;
}

/** Encode DMA_LOGGING_REPORT reply data: 24 bytes + bitmap. */
export function encodeDmaLoggingReportReply(reply: DmaLoggingReportReply): Uint8Array {
  return concatBytes([DmaLoggingReportLayout.encode(reply), reply.bitmap]);
}

/**
 * Decode DMA_LOGGING_REPORT reply data: as the request, followed by exactly
 * the bitmap size the range needs.
 * @throws {ProtocolError} EINVAL
 */
export function decodeDmaLoggingReportReply(data: Uint8Array, limits: DmaLoggingReportLimits): DmaLoggingReportReply {
  expectMinLength('DMA logging report reply', data, DmaLoggingReportLayout.size);
  const report = DmaLoggingReportLayout.decode(data);
  const bitmapSize = checkReport(report, limits);
  expectLength('DMA logging report reply', data, DmaLoggingReportLayout.size + bitmapSize);
  return { ...report, bitmap: data.subarray(DmaLoggingReportLayout.size) };
}
