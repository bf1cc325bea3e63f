import t from 'tap';
import { IrqController, IrqIndex, type SetIrqsRequest } from '../../src/pci/irqs.js';
import { FakeHost } from '../helpers/fake-host.js';

function setup() {
  const host = new FakeHost();
  const irqs = new IrqController({ msixVectors: 4, intx: true }, host);
  return { host, irqs };
}
const trigger = (index: number, start: number, count: number, fds: number[]): SetIrqsRequest => ({
  index,
  action: 'trigger',
  start,
  count,
  data: { kind: 'eventfd', fds },
});

t.test('MSI-X: latest eventfd wins, old one is closed, pending delivered on assign', (t) => {
  const { host, irqs } = setup();
  irqs.set(trigger(IrqIndex.MSIX, 0, 1, [])); // "enabled, no vectors"
  irqs.raiseMsix(2);
  t.same(irqs.msixPendingBits(), [false, false, true, false]);
  const a = host.eventfd();
  irqs.set(trigger(IrqIndex.MSIX, 2, 1, [a]));
  t.same(host.signals, [a], 'pending vector fired when its eventfd arrived');
  t.same(irqs.msixPendingBits(), [false, false, false, false]);
  const b = host.eventfd();
  irqs.set(trigger(IrqIndex.MSIX, 2, 1, [b]));
  t.notOk(host.open.has(a), 'replaced eventfd closed');
  irqs.raiseMsix(2);
  t.same(host.signals, [a, b]);
  irqs.set({ index: IrqIndex.MSIX, action: 'trigger', start: 0, count: 0, data: { kind: 'none' } });
  t.notOk(host.open.has(b), 'disable closes all');
  t.same(irqs.heldFds(), []);
  t.end();
});

t.test('bad requests are rejected and their fds closed', (t) => {
  const { host, irqs } = setup();
  const fd = host.eventfd();
  t.throws(() => irqs.set(trigger(IrqIndex.MSIX, 3, 2, [fd, host.eventfd()])), /out of bounds/);
  t.notOk(host.open.has(fd));
  t.throws(() => irqs.set(trigger(9, 0, 1, [])), /Bad IRQ index/);
  t.throws(() => irqs.set(trigger(IrqIndex.MSIX, 0, 2, [host.eventfd()])), /1 fds, count is 2/);
  t.throws(() => irqs.set({ index: IrqIndex.MSIX, action: 'mask', start: 0, count: 1, data: { kind: 'none' } }), /not maskable/);
  t.throws(() => irqs.set({ index: IrqIndex.MSI, action: 'trigger', start: 0, count: 1, data: { kind: 'none' } }), /out of bounds/);
  t.throws(() => irqs.set({ index: IrqIndex.MSIX, action: 'trigger', start: 1, count: 0, data: { kind: 'none' } }), /start 0/);
  t.throws(() => irqs.set({ index: IrqIndex.MSIX, action: 'trigger', start: 0, count: 2, data: { kind: 'bool', values: [true] } }), /bool data/);
  t.equal(host.open.size, 0, 'no fd leaked');
  t.end();
});

t.test('loopback trigger with DATA_NONE and DATA_BOOL', (t) => {
  const { host, irqs } = setup();
  const fds = [host.eventfd(), host.eventfd()];
  irqs.set(trigger(IrqIndex.MSIX, 0, 2, fds));
  irqs.set({ index: IrqIndex.MSIX, action: 'trigger', start: 0, count: 2, data: { kind: 'bool', values: [false, true] } });
  irqs.set({ index: IrqIndex.MSIX, action: 'trigger', start: 0, count: 1, data: { kind: 'none' } });
  t.same(host.signals, [fds[1], fds[0]]);
  irqs.raiseMsix(7);
  t.equal(host.signals.length, 2, 'out-of-range vector ignored');
  t.end();
});

t.test('INTx is level-triggered with resample', (t) => {
  const { host, irqs } = setup();
  const trig = host.eventfd();
  const resample = host.eventfd();
  irqs.set(trigger(IrqIndex.INTX, 0, 1, [trig]));
  irqs.set({ index: IrqIndex.INTX, action: 'unmask', start: 0, count: 1, data: { kind: 'eventfd', fds: [resample] } });
  irqs.setIntxLevel(true);
  t.same(host.signals, [trig], 'asserted once');
  irqs.setIntxLevel(true);
  t.same(host.signals, [trig], 'auto-masked until EOI');
  host.watchers.get(resample)!();
  t.same(host.signals, [trig, trig], 'still asserted after EOI: re-signalled');
  irqs.setIntxLevel(false);
  host.watchers.get(resample)!();
  t.equal(host.signals.length, 2, 'deasserted: nothing after EOI');
  // QEMU's userspace path: UNMASK with DATA_NONE.
  irqs.setIntxLevel(true);
  t.equal(host.signals.length, 3);
  irqs.set({ index: IrqIndex.INTX, action: 'unmask', start: 0, count: 1, data: { kind: 'none' } });
  t.equal(host.signals.length, 4);
  irqs.set({ index: IrqIndex.INTX, action: 'mask', start: 0, count: 1, data: { kind: 'none' } });
  irqs.setIntxDisabled(true);
  irqs.releaseAll();
  t.equal(host.open.size, 0, 'release closes trigger and resample fds');
  t.notOk(host.watchers.has(resample));
  t.end();
});

t.test('INTx disabled by COMMAND does not signal', (t) => {
  const { host, irqs } = setup();
  irqs.set(trigger(IrqIndex.INTX, 0, 1, [host.eventfd()]));
  irqs.setIntxDisabled(true);
  irqs.setIntxLevel(true);
  t.equal(host.signals.length, 0);
  irqs.setIntxDisabled(false);
  t.equal(host.signals.length, 1);
  irqs.reset();
  t.notOk(irqs.intxAsserted);
  t.end();
});
