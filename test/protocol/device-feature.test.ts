/** DEVICE_FEATURE with its feature payloads, and MIG_DATA_READ/WRITE: one bad field at a time. */
import t from 'tap';
import {
  DeviceFeatureFlag,
  DeviceFeatureId,
  DeviceFeatureLayout,
  DmaLoggingControlLayout,
  DmaLoggingRangeLayout,
  DmaLoggingReportLayout,
  MigDataLayout,
  MigDeviceStateLayout,
  MigrationFeatureLayout,
  U64_MAX,
  decodeDeviceFeatureReply,
  decodeDeviceFeatureRequest,
  decodeDmaLoggingControl,
  decodeDmaLoggingReport,
  decodeDmaLoggingReportReply,
  decodeMigDataReadReply,
  decodeMigDataReadRequest,
  decodeMigDataWriteReply,
  decodeMigDataWriteRequest,
  decodeMigDeviceState,
  decodeMigrationFeature,
  dmaLoggingBitmapSize,
  encodeDeviceFeatureRequest,
  encodeDmaLoggingControl,
  encodeDmaLoggingReport,
  encodeDmaLoggingReportReply,
  encodeMigrationFeature,
} from '../../src/protocol/index.js';
import { throwsErrno, withField } from './helpers.js';
import { MAX_XFER, payloadOf } from './fixtures.js';

const LIMITS = { maxDataXferSize: MAX_XFER };
const PROBE = payloadOf('DEVICE_FEATURE request (PROBE)');
const flagsOf = (feature: number, ...ops: number[]) => ops.reduce((a, b) => a | b, feature);

t.test("an unknown feature number decodes; refusing it is the server's job", (t) => {
  const payload = withField(PROBE, DeviceFeatureLayout, 'flags', flagsOf(99, DeviceFeatureFlag.Probe));
  t.equal(decodeDeviceFeatureRequest(payload, LIMITS).feature, 99);
  t.end();
});

t.test('PROBE may name GET and SET together', (t) => {
  const payload = withField(
    PROBE,
    DeviceFeatureLayout,
    'flags',
    flagsOf(DeviceFeatureId.MigDeviceState, DeviceFeatureFlag.Get, DeviceFeatureFlag.Set, DeviceFeatureFlag.Probe),
  );
  const request = decodeDeviceFeatureRequest(payload, LIMITS);
  t.ok(request.get && request.set && request.probe);
  t.end();
});

t.test('the encoder refuses feature numbers beyond 16 bits', (t) => {
  t.throws(() => encodeDeviceFeatureRequest({ argsz: 8, feature: 0x10000, get: true, set: false, probe: false, data: new Uint8Array(0) }), RangeError);
  t.end();
});

const requestCases: Array<[string, Uint8Array]> = [
  ['unknown flag bit 19', withField(PROBE, DeviceFeatureLayout, 'flags', flagsOf(2, DeviceFeatureFlag.Probe, 1 << 19))],
  ['no operation', withField(PROBE, DeviceFeatureLayout, 'flags', 2)],
  ['GET and SET without PROBE', withField(PROBE, DeviceFeatureLayout, 'flags', flagsOf(2, DeviceFeatureFlag.Get, DeviceFeatureFlag.Set))],
  ['argsz smaller than the payload', withField(payloadOf('DEVICE_FEATURE request (SET MIG_DEVICE_STATE)'), DeviceFeatureLayout, 'argsz', 15)],
  ['argsz above max_data_xfer_size', withField(PROBE, DeviceFeatureLayout, 'argsz', MAX_XFER + 1)],
];
for (const [name, payload] of requestCases) {
  t.test(`DEVICE_FEATURE request is EINVAL: ${name}`, (t) => {
    throwsErrno(t, () => decodeDeviceFeatureRequest(payload, LIMITS), 'EINVAL');
    t.end();
  });
}

t.test('DEVICE_FEATURE reply larger than the request argsz is EINVAL', (t) => {
  const reply = payloadOf('DEVICE_FEATURE reply (GET MIGRATION)');
  throwsErrno(t, () => decodeDeviceFeatureReply(reply, { ...LIMITS, requestArgsz: reply.length - 1 }), 'EINVAL');
  t.end();
});

t.test('MIGRATION data: wrong size or unknown flags are EINVAL', (t) => {
  throwsErrno(t, () => decodeMigrationFeature(new Uint8Array(4)), 'EINVAL');
  throwsErrno(t, () => decodeMigrationFeature(withField(encodeMigrationFeature({ flags: 1 }), MigrationFeatureLayout, 'flags', 8n)), 'EINVAL');
  throwsErrno(t, () => decodeMigrationFeature(withField(encodeMigrationFeature({ flags: 1 }), MigrationFeatureLayout, 'flags', 1n << 40n)), 'EINVAL');
  t.end();
});

t.test('MIG_DEVICE_STATE data: states beyond PRE_COPY_P2P are EINVAL', (t) => {
  const data = decodeDeviceFeatureRequest(payloadOf('DEVICE_FEATURE request (SET MIG_DEVICE_STATE)'), LIMITS).data;
  throwsErrno(t, () => decodeMigDeviceState(withField(data, MigDeviceStateLayout, 'deviceState', 8)), 'EINVAL');
  throwsErrno(t, () => decodeMigDeviceState(data.subarray(0, 4)), 'EINVAL');
  t.end();
});

const CONTROL = encodeDmaLoggingControl({
  pageSize: 4096n,
  ranges: [
    { iova: 0n, length: 0x1000n },
    { iova: 0x2000n, length: 0x1000n },
  ],
});
const RANGE_AT = (i: number) => DmaLoggingControlLayout.size + i * DmaLoggingRangeLayout.size;
const controlCases: Array<[string, Uint8Array]> = [
  ['reserved set', withField(CONTROL, DmaLoggingControlLayout, 'reserved', 1)],
  ['page size 0', withField(CONTROL, DmaLoggingControlLayout, 'pageSize', 0n)],
  ['page size not a power of two', withField(CONTROL, DmaLoggingControlLayout, 'pageSize', 3000n)],
  ['more ranges than allowed', withField(CONTROL, DmaLoggingControlLayout, 'numRanges', 3)],
  ['num_ranges larger than the data', withField(CONTROL, DmaLoggingControlLayout, 'numRanges', 2).subarray(0, RANGE_AT(1))],
  ['empty range', withField(CONTROL, DmaLoggingRangeLayout, 'length', 0n, RANGE_AT(1))],
  ['range wrapping 2^64', withField(CONTROL, DmaLoggingRangeLayout, 'iova', U64_MAX, RANGE_AT(1))],
  ['overlapping ranges', withField(CONTROL, DmaLoggingRangeLayout, 'iova', 0x800n, RANGE_AT(1))],
  [
    'overlapping ranges out of order',
    encodeDmaLoggingControl({
      pageSize: 4096n,
      ranges: [
        { iova: 0x2000n, length: 0x1000n },
        { iova: 0n, length: 0x2800n },
      ],
    }),
  ],
];
for (const [name, data] of controlCases) {
  t.test(`DMA logging control is EINVAL: ${name}`, (t) => {
    throwsErrno(t, () => decodeDmaLoggingControl(data, { maxRanges: 2 }), 'EINVAL');
    t.end();
  });
}

t.test('DMA logging report bitmap size is one bit per page in u64 words', (t) => {
  t.equal(dmaLoggingBitmapSize({ length: 0x40_0000n, pageSize: 0x1000n }), 128n);
  t.equal(dmaLoggingBitmapSize({ length: 1n, pageSize: 0x1000n }), 8n);
  t.end();
});

const REPORT = encodeDmaLoggingReport({ iova: 0x10_0000n, length: 0x40_0000n, pageSize: 0x1000n });
const reportCases: Array<[string, Uint8Array]> = [
  ['page size not a power of two', withField(REPORT, DmaLoggingReportLayout, 'pageSize', 0x1800n)],
  ['length 0', withField(REPORT, DmaLoggingReportLayout, 'length', 0n)],
  ['range wrapping 2^64', withField(REPORT, DmaLoggingReportLayout, 'iova', U64_MAX - 0xfffn)],
  ['bitmap larger than allowed', withField(REPORT, DmaLoggingReportLayout, 'length', 1n << 40n)],
];
for (const [name, data] of reportCases) {
  t.test(`DMA logging report is EINVAL: ${name}`, (t) => {
    throwsErrno(t, () => decodeDmaLoggingReport(data, { maxBitmapSize: 4096 }), 'EINVAL');
    t.end();
  });
}

t.test('DMA logging report reply bitmap must match the range', (t) => {
  const reply = encodeDmaLoggingReportReply({ iova: 0n, length: 0x40_0000n, pageSize: 0x1000n, bitmap: new Uint8Array(128) });
  t.equal(decodeDmaLoggingReportReply(reply, { maxBitmapSize: 4096 }).bitmap.length, 128);
  throwsErrno(t, () => decodeDmaLoggingReportReply(Uint8Array.from([...reply, 0]), { maxBitmapSize: 4096 }), 'EINVAL');
  throwsErrno(t, () => decodeDmaLoggingReportReply(reply, { maxBitmapSize: 64 }), 'EINVAL');
  t.end();
});

// ---------------------------------------------------------------------------

t.test('MIG_DATA_READ request: size above max or argsz too small is EINVAL', (t) => {
  const request = payloadOf('MIG_DATA_READ request');
  throwsErrno(t, () => decodeMigDataReadRequest(withField(request, MigDataLayout, 'size', MAX_XFER + 1), LIMITS), 'EINVAL');
  throwsErrno(t, () => decodeMigDataReadRequest(withField(request, MigDataLayout, 'argsz', 8 + 4095), LIMITS), 'EINVAL');
  t.end();
});

t.test('MIG_DATA_READ reply: a short read is valid, a long one or a bad argsz is EINVAL', (t) => {
  const reply = payloadOf('MIG_DATA_READ reply');
  t.equal(decodeMigDataReadReply(reply, { ...LIMITS, requestSize: 4096 }).data.length, 100, 'short read: no more data for now');
  throwsErrno(t, () => decodeMigDataReadReply(reply, { ...LIMITS, requestSize: 99 }), 'EINVAL');
  throwsErrno(t, () => decodeMigDataReadReply(withField(reply, MigDataLayout, 'argsz', 8), LIMITS), 'EINVAL');
  throwsErrno(t, () => decodeMigDataReadReply(reply, { maxDataXferSize: 64 }), 'EINVAL');
  t.end();
});

t.test('MIG_DATA_WRITE request: bad size, argsz or data length is EINVAL', (t) => {
  const request = payloadOf('MIG_DATA_WRITE request');
  throwsErrno(t, () => decodeMigDataWriteRequest(withField(request, MigDataLayout, 'size', MAX_XFER + 1), LIMITS), 'EINVAL');
  throwsErrno(t, () => decodeMigDataWriteRequest(withField(request, MigDataLayout, 'argsz', 8 + 9), LIMITS), 'EINVAL');
  throwsErrno(t, () => decodeMigDataWriteRequest(Uint8Array.from([...request, 0]), LIMITS), 'EINVAL');
  throwsErrno(t, () => decodeMigDataWriteReply(new Uint8Array(1)), 'EINVAL');
  t.end();
});
