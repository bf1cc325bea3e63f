/** DEVICE_SET_IRQS: flags, argsz consistency, ranges and fds, one bad field at a time. */
import t from 'tap';
import { IrqSetFlag, IrqSetLayout, PciIrq, decodeSetIrqsRequest, encodeSetIrqsRequest, type SetIrqsLimits } from '../../src/protocol/index.js';
import { throwsErrno, withField } from './helpers.js';
import { IRQ_LIMITS, MAX_XFER, payloadOf } from './fixtures.js';

const EVENTFD = payloadOf('DEVICE_SET_IRQS request (eventfd)');
const BOOL = payloadOf('DEVICE_SET_IRQS request (bool)');
const DISABLE = payloadOf('DEVICE_SET_IRQS request (disable index)');

t.test("QEMU's MSI-X enable without vectors (EVENTFD, count 1, no fd) is valid", (t) => {
  const payload = encodeSetIrqsRequest({ index: PciIrq.Msix, start: 0, count: 1, action: 'trigger', data: { kind: 'eventfd' } });
  t.equal(payload.length, 20, "QEMU's 36-byte message: argsz 20, no in-band data");
  t.strictSame(decodeSetIrqsRequest(payload, { ...IRQ_LIMITS, fdCount: 0 }).data, { kind: 'eventfd' });
  t.end();
});

t.test('MASK/UNMASK with DATA_NONE are valid (the INTx KVM sequence)', (t) => {
  for (const action of ['mask', 'unmask'] as const) {
    const payload = encodeSetIrqsRequest({ index: PciIrq.Intx, start: 0, count: 1, action, data: { kind: 'none' } });
    t.equal(decodeSetIrqsRequest(payload, IRQ_LIMITS).action, action);
  }
  t.end();
});

t.test('bool data decodes any non-zero byte as true', (t) => {
  const payload = BOOL.slice();
  payload[21] = 7;
  t.strictSame(decodeSetIrqsRequest(payload, IRQ_LIMITS).data, { kind: 'bool', values: [true, true, true, true] });
  t.end();
});

t.test('range checks against the IRQ count are optional (client side)', (t) => {
  const payload = encodeSetIrqsRequest({ index: 40, start: 100, count: 2, action: 'trigger', data: { kind: 'none' } });
  t.equal(decodeSetIrqsRequest(payload, { maxDataXferSize: MAX_XFER }).index, 40);
  t.end();
});

t.test('the encoder refuses bool data that does not match count', (t) => {
  t.throws(() => encodeSetIrqsRequest({ index: 0, start: 0, count: 2, action: 'mask', data: { kind: 'bool', values: [true] } }), RangeError);
  t.end();
});

const cases: Array<[string, Uint8Array, Partial<SetIrqsLimits>?]> = [
  ['argsz below 20', withField(EVENTFD, IrqSetLayout, 'argsz', 19)],
  ['argsz larger than the payload', withField(EVENTFD, IrqSetLayout, 'argsz', 24)],
  ['argsz smaller than the payload', withField(BOOL, IrqSetLayout, 'argsz', 20)],
  ['argsz above max_data_xfer_size', withField(EVENTFD, IrqSetLayout, 'argsz', MAX_XFER + 1)],
  ['unknown flag bit', withField(EVENTFD, IrqSetLayout, 'flags', IrqSetFlag.DataEventfd | IrqSetFlag.ActionTrigger | 0x40)],
  ['two DATA bits', withField(EVENTFD, IrqSetLayout, 'flags', IrqSetFlag.DataEventfd | IrqSetFlag.DataNone | IrqSetFlag.ActionTrigger)],
  ['no DATA bit', withField(EVENTFD, IrqSetLayout, 'flags', IrqSetFlag.ActionTrigger)],
  ['two ACTION bits', withField(EVENTFD, IrqSetLayout, 'flags', IrqSetFlag.DataEventfd | IrqSetFlag.ActionMask | IrqSetFlag.ActionTrigger)],
  ['no ACTION bit', withField(EVENTFD, IrqSetLayout, 'flags', IrqSetFlag.DataEventfd)],
  ['index out of range', withField(EVENTFD, IrqSetLayout, 'index', PciIrq.Count)],
  ['start + count past 2^32', withField(withField(EVENTFD, IrqSetLayout, 'start', 0xffff_ffff), IrqSetLayout, 'count', 1), { irqCount: undefined }],
  ['start + count past the IRQ count', withField(EVENTFD, IrqSetLayout, 'start', 32)],
  ['count past the single INTx', withField(DISABLE, IrqSetLayout, 'count', 2)],
  ['count 0 with start set', withField(DISABLE, IrqSetLayout, 'start', 1)],
  ['count 0 with MASK', withField(DISABLE, IrqSetLayout, 'flags', IrqSetFlag.DataNone | IrqSetFlag.ActionMask)],
  ['count 0 with DATA_EVENTFD', withField(DISABLE, IrqSetLayout, 'flags', IrqSetFlag.DataEventfd | IrqSetFlag.ActionTrigger)],
  ['DATA_BOOL with fewer bytes than count', withField(BOOL, IrqSetLayout, 'argsz', 23).subarray(0, 23)],
  ['DATA_BOOL with more bytes than count', withField(BOOL, IrqSetLayout, 'count', 3)],
  [
    'DATA_NONE with data bytes',
    withField(withField(BOOL, IrqSetLayout, 'flags', IrqSetFlag.DataNone | IrqSetFlag.ActionMask), IrqSetLayout, 'argsz', BOOL.length),
  ],
  ['fds with DATA_NONE', DISABLE, { fdCount: 1 }],
  ['fds with DATA_BOOL', BOOL, { fdCount: 4 }],
  ['fewer fds than count', withField(EVENTFD, IrqSetLayout, 'count', 2), { fdCount: 1 }],
  ['more fds than count', EVENTFD, { fdCount: 2 }],
];

for (const [name, payload, extra] of cases) {
  t.test(`bad request is EINVAL: ${name}`, (t) => {
    throwsErrno(t, () => decodeSetIrqsRequest(payload, { ...IRQ_LIMITS, ...extra }), 'EINVAL');
    t.end();
  });
}
