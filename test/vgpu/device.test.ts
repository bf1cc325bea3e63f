import t from 'tap';
import { PciCapId, PciReg } from '../../src/pci/config-space.js';
import { IrqIndex } from '../../src/pci/irqs.js';
import { RegionIndex } from '../../src/pci/pci-function.js';
import { MDGPU_CONTRACT_MAJOR, MDGPU_CONTRACT_MINOR, MDGPU_ID, MDGPU_REGS } from '../../src/vgpu/regs.js';
import { APERTURE_BAR, MdgpuDevice, MSIX_PBA_OFFSET, MSIX_TABLE_OFFSET, REGISTER_BAR, REGISTER_BAR_SIZE } from '../../src/vgpu/device.js';
import { setLogSink } from '../../src/log.js';
import { FakeHost } from '../helpers/fake-host.js';

setLogSink(() => {});
const APERTURE = 0x100000;

function setup() {
  const host = new FakeHost();
  const dev = new MdgpuDevice({ name: 't', apertureSize: APERTURE, host });
  const cfg32 = (off: number) => new DataView(dev.pci.regionRead(RegionIndex.CONFIG, off, 4).buffer).getUint32(0, true);
  const cfgW32 = (off: number, v: number) => {
    const b = new Uint8Array(4);
    new DataView(b.buffer).setUint32(0, v >>> 0, true);
    dev.pci.regionWrite(RegionIndex.CONFIG, off, b);
  };
  const reg = (off: number) => new DataView(dev.pci.regionRead(REGISTER_BAR, off, 4).buffer).getUint32(0, true);
  const regW = (off: number, v: number) => {
    const b = new Uint8Array(4);
    new DataView(b.buffer).setUint32(0, v >>> 0, true);
    dev.pci.regionWrite(REGISTER_BAR, off, b);
  };
  return { host, dev, cfg32, cfgW32, reg, regW };
}

t.test('identity and header as documented', (t) => {
  const { dev, cfg32 } = setup();
  t.equal(cfg32(PciReg.VENDOR_ID), 0x47504d44, 'vendor 0x4d44 device 0x4750');
  t.equal(cfg32(PciReg.REVISION_ID) >>> 8, 0x030200, 'class 3D controller');
  t.equal(dev.pci.config.u8(PciReg.INTERRUPT_PIN), 1);
  t.equal(dev.pci.config.u8(PciReg.HEADER_TYPE), 0);
  t.same(
    dev.pci.config.capabilities().map((c) => c.id),
    [PciCapId.PM, PciCapId.MSIX, PciCapId.EXP],
  );
  const msix = dev.pci.config.capabilities().find((c) => c.id === PciCapId.MSIX)!.offset;
  t.equal(cfg32(msix + 4), MSIX_TABLE_OFFSET | REGISTER_BAR, 'MSI-X table in BAR2');
  t.equal(cfg32(msix + 8), MSIX_PBA_OFFSET | REGISTER_BAR, 'PBA in BAR2');
  const exp = dev.pci.config.capabilities().find((c) => c.id === PciCapId.EXP)!.offset;
  t.equal(dev.pci.config.u16(exp + 2) & 0xf0, 0, 'PCIe Endpoint');
  const custom = new MdgpuDevice({ name: 'c', apertureSize: APERTURE, host: new FakeHost(), identity: { vendorId: 0x1234, deviceId: 0x5678 } });
  t.equal(custom.pci.config.u32(0), 0x56781234, 'identity is configurable');
  t.end();
});

t.test('BAR sizing through config writes', (t) => {
  const { cfg32, cfgW32 } = setup();
  t.equal(cfg32(0x10), 0x0c, 'BAR0: 64-bit prefetchable memory');
  cfgW32(0x10, 0xffffffff);
  cfgW32(0x14, 0xffffffff);
  t.equal(cfg32(0x10), ((~(APERTURE - 1) & ~0xf) | 0xc) >>> 0);
  t.equal(cfg32(0x14), 0xffffffff);
  cfgW32(0x18, 0xffffffff);
  t.equal(cfg32(0x18), (~(REGISTER_BAR_SIZE - 1) & ~0xf) >>> 0, 'BAR2: 32-bit, 16 KiB');
  for (const off of [0x1c, 0x20, 0x24]) {
    cfgW32(off, 0xffffffff);
    t.equal(cfg32(off), 0, `unimplemented BAR at 0x${off.toString(16)}`);
  }
  cfgW32(PciReg.ROM_ADDRESS, 0xfffff800);
  t.equal(cfg32(PciReg.ROM_ADDRESS), 0, 'no expansion ROM');
  t.end();
});

t.test('region info: sparse mmap leaves the trapped page out', (t) => {
  const { dev } = setup();
  const bar0 = dev.pci.regionInfo(APERTURE_BAR);
  t.equal(bar0.size, APERTURE);
  t.same(bar0.mmap?.areas, [{ offset: 0x1000, size: APERTURE - 0x1000 }]);
  t.equal(bar0.mmap?.fd, dev.apertureFd);
  t.equal(dev.pci.regionInfo(REGISTER_BAR).mmap, undefined, 'register BAR is trapped');
  t.equal(dev.pci.regionInfo(1).size, 0, 'upper half of the 64-bit BAR');
  t.equal(dev.pci.regionInfo(RegionIndex.ROM).size, 0);
  t.equal(dev.pci.regionInfo(RegionIndex.CONFIG).size, 4096);
  t.throws(() => dev.pci.regionInfo(9), /Bad region index/);
  t.end();
});

t.test('region access bounds, including overflow', (t) => {
  const { dev } = setup();
  t.throws(() => dev.pci.regionRead(REGISTER_BAR, REGISTER_BAR_SIZE - 2, 4), /out of bounds/);
  t.throws(() => dev.pci.regionRead(RegionIndex.CONFIG, 0xffff_ffff_ffff_fffcn, 8), /out of bounds/);
  t.throws(() => dev.pci.regionRead(1, 0, 4), /out of bounds/);
  t.throws(() => dev.pci.regionWrite(REGISTER_BAR, 0, new Uint8Array(0)), /out of bounds/);
  t.equal(dev.pci.regionRead(RegionIndex.CONFIG, 0, 4096).length, 4096, 'whole config space in one read');
  t.end();
});

t.test('register page follows the table', (t) => {
  const { dev, reg, regW } = setup();
  t.equal(reg(MDGPU_REGS.ID.offset), MDGPU_ID);
  regW(MDGPU_REGS.ID.offset, 0);
  t.equal(reg(MDGPU_REGS.ID.offset), MDGPU_ID, 'ID is read-only');
  regW(MDGPU_REGS.SCRATCH.offset, 0xdeadbeef);
  t.equal(reg(MDGPU_REGS.SCRATCH.offset), 0xdeadbeef);
  t.equal(reg(MDGPU_REGS.APERTURE_SIZE_LO.offset), APERTURE);
  t.equal(reg(MDGPU_REGS.APERTURE_SIZE_HI.offset), 0);
  const b = dev.pci.regionRead(REGISTER_BAR, MDGPU_REGS.ID.offset, 8);
  t.same([...b], [0x50, 0x47, 0x44, 0x4d, MDGPU_CONTRACT_MINOR, 0, MDGPU_CONTRACT_MAJOR, 0], '8-byte read is two registers');
  t.same([...dev.pci.regionRead(REGISTER_BAR, 1, 1)], [0x47], 'byte read');
  t.same([...dev.pci.regionRead(REGISTER_BAR, 1, 2)], [0, 0], 'misaligned read ignored');
  t.end();
});

t.test('trapped window shows the aperture at WINDOW_BASE', (t) => {
  const { dev, regW, reg } = setup();
  dev.aperture.set([9, 8, 7], 0x3000);
  regW(MDGPU_REGS.WINDOW_BASE_LO.offset, 0x3000);
  t.same([...dev.pci.regionRead(APERTURE_BAR, 0, 3)], [9, 8, 7]);
  dev.pci.regionWrite(APERTURE_BAR, 0x10, Uint8Array.of(5));
  t.equal(dev.aperture[0x3010], 5);
  regW(MDGPU_REGS.WINDOW_BASE_LO.offset, APERTURE);
  t.equal(reg(MDGPU_REGS.WINDOW_BASE_LO.offset), 0, 'window outside the aperture is refused');
  dev.pci.regionWrite(APERTURE_BAR, 0x8000, Uint8Array.of(1, 2));
  t.same([...dev.aperture.subarray(0x8000, 0x8002)], [1, 2], 'trapped access to the mmapped part still works');
  t.equal(dev.pci.trappedAccesses, 6, 'every region access counted');
  t.end();
});

t.test('interrupts: MSI-X per source, INTx level otherwise', (t) => {
  const { host, dev, regW, reg, cfgW32 } = setup();
  const msixCap = dev.pci.config.capabilities().find((c) => c.id === PciCapId.MSIX)!.offset;
  const intx = host.eventfd();
  dev.pci.irqs.set({ index: IrqIndex.INTX, action: 'trigger', start: 0, count: 1, data: { kind: 'eventfd', fds: [intx] } });
  regW(MDGPU_REGS.IRQ_ENABLE.offset, 0x3);
  regW(MDGPU_REGS.IRQ_RAISE.offset, 0x1);
  t.same(host.signals, [intx], 'INTx asserted');
  t.ok(dev.pci.regionRead(RegionIndex.CONFIG, PciReg.STATUS, 1)[0]! & 0x08, 'STATUS.INTERRUPT set');
  regW(MDGPU_REGS.IRQ_STATUS.offset, 0x1);
  t.equal(reg(MDGPU_REGS.IRQ_STATUS.offset), 0, 'w1c cleared');
  t.notOk(dev.pci.irqs.intxAsserted, 'line deasserted');

  cfgW32(msixCap, 0x8000 << 16);
  t.ok(dev.pci.msixEnabled);
  const v1 = host.eventfd();
  dev.pci.irqs.set({ index: IrqIndex.MSIX, action: 'trigger', start: 1, count: 1, data: { kind: 'eventfd', fds: [v1] } });
  regW(MDGPU_REGS.IRQ_RAISE.offset, 0x2);
  t.same(host.signals, [intx, v1], 'source 1 on vector 1');
  regW(MDGPU_REGS.IRQ_RAISE.offset, 0x2);
  t.equal(host.signals.length, 2, 'already pending: no new edge');
  regW(MDGPU_REGS.IRQ_RAISE.offset, 0x1);
  t.same([...dev.pci.regionRead(REGISTER_BAR, MSIX_PBA_OFFSET, 4)], [1, 0, 0, 0], 'vector 0 pending in PBA (no eventfd yet)');
  t.same([...dev.pci.regionRead(REGISTER_BAR, MSIX_TABLE_OFFSET + 12, 4)], [1, 0, 0, 0], 'table entries start masked');
  t.end();
});

t.test('reset: registers and aperture back to zero; detach releases client state', (t) => {
  const { host, dev, regW, reg } = setup();
  regW(MDGPU_REGS.SCRATCH.offset, 1);
  dev.aperture[100] = 1;
  dev.pci.config.setU16(PciReg.COMMAND, 6);
  dev.pci.reset();
  t.equal(reg(MDGPU_REGS.SCRATCH.offset), 0);
  t.equal(dev.aperture[100], 0, 'fresh aperture');
  t.equal(dev.pci.commandRegister, 0);
  const fd = host.eventfd();
  dev.pci.irqs.set({ index: IrqIndex.MSIX, action: 'trigger', start: 0, count: 1, data: { kind: 'eventfd', fds: [fd] } });
  dev.pci.dma.map({ iova: 0n, size: 0x1000n, fdOffset: 0n, readable: true, writable: true, fd: null });
  dev.pci.detachClient();
  t.notOk(host.open.has(fd));
  t.equal(dev.pci.dma.count, 0);
  dev.close();
  dev.close();
  t.equal(host.open.size, 0, 'aperture memfd closed');
  t.end();
});

t.test('bad aperture sizes are refused', (t) => {
  t.throws(() => new MdgpuDevice({ name: 'x', apertureSize: 3 << 20, host: new FakeHost() }), /power of two/);
  t.throws(() => new MdgpuDevice({ name: 'x', apertureSize: 4096, host: new FakeHost() }), /64 KiB/);
  t.end();
});
