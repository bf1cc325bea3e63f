/** DEVICE_GET_INFO, DEVICE_GET_IRQ_INFO and DEVICE_RESET: one bad field at a time. */
import t from 'tap';
import {
  DeviceInfoLayout,
  IrqInfoLayout,
  PciIrq,
  decodeDeviceGetInfoReply,
  decodeDeviceGetInfoRequest,
  decodeDeviceResetReply,
  decodeDeviceResetRequest,
  decodeIrqInfoReply,
  decodeIrqInfoRequest,
} from '../../src/protocol/index.js';
import { throwsErrno, withField } from './helpers.js';
import { payloadOf } from './fixtures.js';

const INFO_REQUEST = payloadOf('DEVICE_GET_INFO request');
const INFO_REPLY = payloadOf('DEVICE_GET_INFO reply');
const IRQ_REQUEST = payloadOf('DEVICE_GET_IRQ_INFO request');
const IRQ_REPLY = payloadOf('DEVICE_GET_IRQ_INFO reply');
const IRQS = { numIrqs: PciIrq.Count };

const cases: Array<[string, () => unknown]> = [
  ['GET_INFO request argsz below 16', () => decodeDeviceGetInfoRequest(withField(INFO_REQUEST, DeviceInfoLayout, 'argsz', 15))],
  ['GET_INFO request flags set', () => decodeDeviceGetInfoRequest(withField(INFO_REQUEST, DeviceInfoLayout, 'flags', 2))],
  ['GET_INFO request num_regions set', () => decodeDeviceGetInfoRequest(withField(INFO_REQUEST, DeviceInfoLayout, 'numRegions', 9))],
  ['GET_INFO request num_irqs set', () => decodeDeviceGetInfoRequest(withField(INFO_REQUEST, DeviceInfoLayout, 'numIrqs', 5))],
  ['GET_INFO request trailing bytes (kernel cap_offset/pad)', () => decodeDeviceGetInfoRequest(new Uint8Array(24))],
  ['GET_INFO reply argsz below 16', () => decodeDeviceGetInfoReply(withField(INFO_REPLY, DeviceInfoLayout, 'argsz', 8))],
  ['GET_INFO reply unknown flag (VFIO_DEVICE_FLAGS_PLATFORM)', () => decodeDeviceGetInfoReply(withField(INFO_REPLY, DeviceInfoLayout, 'flags', 4))],
  ['GET_INFO reply larger than 16 bytes (QEMU accepts 32 in all)', () => decodeDeviceGetInfoReply(Uint8Array.from([...INFO_REPLY, 0]))],
  ['IRQ_INFO request argsz below 16', () => decodeIrqInfoRequest(withField(IRQ_REQUEST, IrqInfoLayout, 'argsz', 12), IRQS)],
  ['IRQ_INFO request flags set', () => decodeIrqInfoRequest(withField(IRQ_REQUEST, IrqInfoLayout, 'flags', 1), IRQS)],
  ['IRQ_INFO request index out of range', () => decodeIrqInfoRequest(withField(IRQ_REQUEST, IrqInfoLayout, 'index', 5), IRQS)],
  ['IRQ_INFO request count set', () => decodeIrqInfoRequest(withField(IRQ_REQUEST, IrqInfoLayout, 'count', 1), IRQS)],
  ['IRQ_INFO reply unknown flag', () => decodeIrqInfoReply(withField(IRQ_REPLY, IrqInfoLayout, 'flags', 0x10), IRQS)],
  ['IRQ_INFO reply argsz below 16', () => decodeIrqInfoReply(withField(IRQ_REPLY, IrqInfoLayout, 'argsz', 0), IRQS)],
  ['IRQ_INFO reply index out of range', () => decodeIrqInfoReply(withField(IRQ_REPLY, IrqInfoLayout, 'index', 7), IRQS)],
  ['DEVICE_RESET request with a payload', () => decodeDeviceResetRequest(new Uint8Array(1))],
  ['DEVICE_RESET reply with a payload', () => decodeDeviceResetReply(new Uint8Array(4))],
];

for (const [name, decode] of cases) {
  t.test(`EINVAL: ${name}`, (t) => {
    throwsErrno(t, decode, 'EINVAL');
    t.end();
  });
}

t.test('IRQ_INFO index is only checked when numIrqs is given', (t) => {
  t.equal(decodeIrqInfoRequest(withField(IRQ_REQUEST, IrqInfoLayout, 'index', 40)).index, 40);
  t.end();
});

t.test('a larger client argsz is accepted (the reply stays 16 bytes)', (t) => {
  t.strictSame(decodeDeviceGetInfoRequest(withField(INFO_REQUEST, DeviceInfoLayout, 'argsz', 64)), { argsz: 64 });
  t.end();
});
