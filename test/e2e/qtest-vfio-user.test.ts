/**
 * Real QEMU (the kit's 11.1.3, `-accel qtest`, no guest kernel) with mdgpu attached through
 * vfio-user-pci. The test plays firmware and driver: enumerates, sizes and assigns BARs, then
 * drives the trapped register BAR, the trapped window page, the mmapped aperture, and MSI-X all
 * the way from mdgpu's eventfd write to the MSI message landing in guest RAM.
 */
import t from 'tap';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { ensureKit } from '../../src/kit/kit.js';
import { PciCapId, PciCommand, PciReg } from '../../src/pci/config-space.js';
import { formatBdf, PciFirmware } from '../helpers/pci-firmware.js';
import { startQtest } from '../helpers/qtest.js';
import { startServer } from '../../src/cli/serve.js';
import { IrqIndex } from '../../src/pci/irqs.js';
import { MDGPU_ID, MDGPU_REGS } from '../../src/vgpu/regs.js';
import { MAILBOX_OPS } from '../../src/vgpu/mailbox-ops.js';
import { setLogSink } from '../../src/log.js';

setLogSink(() => {});
const kit = await ensureKit();
const APERTURE = 16 << 20;

function waitFor(cond: () => boolean | Promise<boolean>, what: string, ms = 10_000): Promise<void> {
  const start = Date.now();
  return new Promise((resolve, reject) => {
    const poll = async () => {
      if (await cond()) resolve();
      else if (Date.now() - start > ms) reject(new Error(`Timed out waiting for ${what}`));
      else setTimeout(poll, 5);
    };
    void poll();
  });
}

t.test('QEMU realizes mdgpu; config, BARs, trapped and mapped accesses, MSI-X end to end', async (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'mdgpu-qtest-'));
  const socket = path.join(dir, 'vgpu.sock');
  const running = startServer({ socket, apertureSize: APERTURE, name: 'qtest' });
  const qt = await startQtest(kit, { vfioUser: [{ socket }], memoryMiB: 128, timeoutMs: 120_000 });
  t.teardown(async () => {
    await qt.close();
    await running.close();
    fs.rmSync(dir, { recursive: true, force: true });
  });
  const dev = running.device;
  const counts = () => running.server.commandCounts();
  t.ok((counts().get('Version') ?? 0) === 1, 'QEMU negotiated the protocol version');
  t.ok((counts().get('DeviceGetRegionInfo') ?? 0) >= 7, 'QEMU asked for every region');
  t.ok(dev.pci.dma.count >= 1, 'QEMU mapped guest RAM (DMA_MAP)');
  t.ok(
    dev.pci.dma.list().some((m) => m.fileBacked),
    '...with a memfd, kept to be mapped on first use',
  );

  const pci = new PciFirmware(qt);
  await pci.init();
  const fn = (await pci.findDevice(0x4d44, 0x4750))!;
  t.ok(fn, 'mdgpu enumerated behind the root port');
  t.equal(formatBdf(fn.bdf), '01:00.0');
  t.equal(fn.classCode, 0x030200, 'class 3D controller');
  t.same(
    (await pci.capabilities(fn.bdf)).map(([id]) => id),
    [0x01, 0x11, 0x10],
    'PM, MSI-X, PCIe as QEMU rebuilt them',
  );

  const bars = await pci.bars(fn.bdf);
  t.same(
    bars.map((b) => [b.index, b.is64, b.prefetchable, b.size]),
    [
      [0, true, true, BigInt(APERTURE)],
      [2, false, false, 0x4000n],
    ],
    'BAR0 64-bit prefetchable aperture, BAR2 32-bit registers',
  );

  const assigned = (await pci.assignBars()).functions.find((f) => f.vendor === 0x4d44)!;
  const bar0 = assigned.bars.find((b) => b.index === 0)!.address;
  const bar2 = assigned.bars.find((b) => b.index === 2)!.address;
  t.ok((await pci.cfgRead(fn.bdf, PciReg.COMMAND, 2)) & PciCommand.MEMORY, 'memory decoding on');

  // Trapped register BAR.
  t.equal(await qt.readl(bar2 + BigInt(MDGPU_REGS.ID.offset)), MDGPU_ID, 'ID register through a trapped read');
  await qt.writel(bar2 + BigInt(MDGPU_REGS.SCRATCH.offset), 0xfeedf00d);
  t.equal(dev.regs.get('SCRATCH'), 0xfeedf00d, 'a trapped write reached mdgpu');
  t.equal(await qt.readl(bar2 + BigInt(MDGPU_REGS.SCRATCH.offset)), 0xfeedf00d);

  // The trapped window page shows the aperture at WINDOW_BASE.
  await qt.writel(bar2 + BigInt(MDGPU_REGS.WINDOW_BASE_LO.offset), 0x3000);
  await qt.writel(bar0 + 0x10n, 0x11223344);
  t.equal(new DataView(dev.aperture.buffer).getUint32(0x3010, true), 0x11223344, 'window write landed at WINDOW_BASE + 0x10');

  // The mmapped aperture: no message reaches mdgpu, the bytes are in its memfd.
  const trappedBefore = dev.pci.trappedAccesses;
  await qt.writel(bar0 + 0x8000n, 0xcafebabe);
  await qt.write(bar0 + 0x9000n, Uint8Array.of(1, 2, 3, 4, 5));
  t.equal(new DataView(dev.aperture.buffer).getUint32(0x8000, true), 0xcafebabe, 'store through the mapped BAR is in our memfd');
  t.same([...dev.aperture.subarray(0x9000, 0x9005)], [1, 2, 3, 4, 5]);
  dev.aperture.set([9, 8, 7, 6], 0xa000);
  t.equal(await qt.readl(bar0 + 0xa000n), 0x06070809, 'a byte mdgpu writes is seen through the mapped BAR');
  t.equal(dev.pci.trappedAccesses, trappedBefore, 'mapped accesses cost no trapped access');

  // MSI-X: program vector 1 to write into guest RAM, raise source 1, see the message land.
  const msiAddress = 0x10_0000n;
  const msiData = 0x4d47;
  await qt.writel(msiAddress, 0);
  const setIrqsBefore = counts().get('DeviceSetIrqs') ?? 0;
  await pci.setMsixVector(fn.bdf, 1, msiAddress, msiData);
  t.ok((counts().get('DeviceSetIrqs') ?? 0) > setIrqsBefore, 'enabling MSI-X sent SET_IRQS');
  await waitFor(() => dev.pci.irqs.hasMsixVector(1), 'the eventfd for vector 1');
  t.ok(dev.pci.msixEnabled, 'MSI-X enabled in our config space');
  t.ok((await pci.findCapability(fn.bdf, PciCapId.MSIX)) !== undefined);
  await qt.writel(bar2 + BigInt(MDGPU_REGS.IRQ_ENABLE.offset), 0xff);
  await qt.writel(bar2 + BigInt(MDGPU_REGS.IRQ_RAISE.offset), 0x2);
  t.equal(dev.pci.irqs.signalled[IrqIndex.MSIX], 1, 'mdgpu signalled the MSI-X eventfd');
  await waitFor(async () => (await qt.readl(msiAddress)) === msiData, 'the MSI message in guest RAM');
  t.pass('QEMU delivered the MSI-X message (data written to the programmed address)');
  t.equal(await qt.readl(bar2 + BigInt(MDGPU_REGS.IRQ_STATUS.offset)), 0x2, 'IRQ_STATUS shows the source');
  await qt.writel(bar2 + BigInt(MDGPU_REGS.IRQ_STATUS.offset), 0x2);
  t.equal(await qt.readl(bar2 + BigInt(MDGPU_REGS.IRQ_STATUS.offset)), 0, 'w1c cleared it');

  // The mediation mailbox, driven through real trapped MMIO: allocate, use the mapped range, free.
  const reg = (name: keyof typeof MDGPU_REGS) => bar2 + BigInt(MDGPU_REGS[name].offset);
  const mailbox = async (code: number, ...args: number[]) => {
    for (let i = 0; i < args.length; i++) await qt.writel(reg(`MBOX_ARG${i}` as keyof typeof MDGPU_REGS), args[i]!);
    await qt.writel(reg('MBOX_OPCODE'), code);
    await qt.writel(reg('MBOX_DOORBELL'), 1);
    return { result: (await qt.readl(reg('MBOX_STATUS'))) & 0xffff, ret: [await qt.readl(reg('MBOX_RET0')), await qt.readl(reg('MBOX_RET1'))] };
  };
  const ctx = await mailbox(MAILBOX_OPS.CTX_CREATE.code);
  t.equal(ctx.result, 0, 'CTX_CREATE through MMIO');
  const bo = await mailbox(MAILBOX_OPS.BO_ALLOC.code, ctx.ret[0]!, 0x10000, 0, 0, 0);
  t.equal(bo.result, 0, 'BO_ALLOC of 64 KiB');
  const offset = BigInt(bo.ret[1]!);
  const live = dev.memory.liveBuffers();
  t.same(
    live.map((b) => [b.offset, b.size]),
    [[Number(offset), 0x10000]],
    'mdgpu recorded the buffer at the offset it returned',
  );
  const trapped = dev.pci.trappedAccesses;
  const pattern = Uint8Array.from({ length: 256 }, (_, i) => (i * 7 + 3) & 0xff);
  await qt.write(bar0 + offset + 0x100n, pattern);
  t.same(
    [...dev.aperture.subarray(Number(offset) + 0x100, Number(offset) + 0x200)],
    [...pattern],
    'bytes written through the mapped BAR at the buffer are in the memfd',
  );
  t.equal(dev.pci.trappedAccesses, trapped, 'using the buffer cost no trapped access');
  t.equal((await mailbox(MAILBOX_OPS.BO_FREE.code, ctx.ret[0]!, bo.ret[0]!)).result, 0, 'BO_FREE');
  t.equal(dev.aperture[Number(offset) + 0x100], 0, 'freed buffer zeroed');
  t.equal((await mailbox(MAILBOX_OPS.BO_FREE.code, ctx.ret[0]!, bo.ret[0]!)).result, 7, 'double free: BAD_HANDLE');
});
