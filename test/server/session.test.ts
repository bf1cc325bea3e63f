import t from 'tap';
import { constants } from 'node:os';
import { errnoName } from '../../src/protocol/errors.js';
import { Command, DmaUnmapFlag, IrqInfoFlag, RegionInfoFlag, MessageType } from '../../src/protocol/commands.js';
import { encodeMessage } from '../../src/protocol/message.js';
import { encodeRegionReadRequest } from '../../src/protocol/codec/region-read.js';
import { ErrorReply } from '../../src/client/client.js';
import { PciReg } from '../../src/pci/config-space.js';
import { RegionIndex } from '../../src/pci/pci-function.js';
import { IrqIndex } from '../../src/pci/irqs.js';
import { APERTURE_BAR, REGISTER_BAR } from '../../src/vgpu/device.js';
import { MDGPU_ID, MDGPU_REGS } from '../../src/vgpu/regs.js';
import { native, readU32, serveDevice, u32le } from '../helpers/served-device.js';

/** Whether the peer closed the client's connection within `ms` (a close that never comes fails here, not by the test's timeout). */
async function closedWithin(client: { waitClosed(): Promise<unknown> }, ms: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<false>((resolve) => (timer = setTimeout(() => resolve(false), ms)));
  try {
    return await Promise.race([client.waitClosed().then(() => true as const), timeout]);
  } finally {
    clearTimeout(timer);
  }
}

const errnoOf = (p: Promise<unknown>) =>
  p.then(
    () => 'none',
    (err: unknown) => (err instanceof ErrorReply ? err.code : String(err)),
  );

t.test('commands before VERSION are refused, then VERSION negotiates 0.0', async (t) => {
  const s = serveDevice();
  t.teardown(() => s.close());
  t.equal(await errnoOf(s.client.deviceInfo()), 'EINVAL');
  const v = await s.client.version();
  t.equal(v.major, 0);
  t.equal(v.minor, 0);
  t.equal(v.capabilities?.maxMsgFds, 16);
  t.equal(v.capabilities?.maxDataXferSize, 1 << 20);
  t.equal(await errnoOf(s.client.version()), 'EINVAL', 'second VERSION refused');
});

t.test('VERSION reply fits in the request (QEMU reads it into a buffer that size)', async (t) => {
  const s = serveDevice();
  t.teardown(() => s.close());
  const frame = await s.client.request(Command.Version, new Uint8Array([0, 0, 0, 0]));
  t.equal(frame.payload.length, 4, 'a request without JSON gets a reply without JSON');
  const s2 = serveDevice();
  t.teardown(() => s2.close());
  const qemuLike = new TextEncoder().encode(
    '{"capabilities": {"pgsizes": 4096, "max_msg_fds": 16, "max_dma_maps": 65535, "max_data_xfer_size": 1048576, "migration": {"max_bitmap_size": 268435456, "pgsize": 4096}, "write_multiple": true}}\0',
  );
  const request = new Uint8Array(4 + qemuLike.length);
  request.set(qemuLike, 4);
  t.equal(request.length, 198, 'the request QEMU 11.1.3 sends');
  const reply = await s2.client.request(Command.Version, request);
  t.ok(reply.payload.length <= 198 && reply.payload.length > 4, `reply payload ${reply.payload.length} bytes carries our capabilities`);
});

t.test('DEVICE_GET_INFO: PCI|RESET, 9 regions, 5 irqs', async (t) => {
  const s = serveDevice();
  t.teardown(() => s.close());
  await s.client.version();
  const info = await s.client.deviceInfo();
  t.same(info, { argsz: 16, flags: 3, numRegions: 9, numIrqs: 5 });
});

t.test('GET_REGION_INFO: two rounds, sparse mmap cap, the aperture fd aliases the device memory', async (t) => {
  const s = serveDevice();
  t.teardown(() => s.close());
  await s.client.version();
  const { info, fd, rounds } = await s.client.regionInfo(APERTURE_BAR);
  t.equal(rounds, 2, 'first reply asked for a larger argsz');
  t.equal(info.size, 1n << 20n);
  t.equal(info.flags & (RegionInfoFlag.Read | RegionInfoFlag.Write | RegionInfoFlag.Mmap), 7);
  t.same(info.caps, [{ kind: 'sparse-mmap', areas: [{ offset: 0x1000n, size: (1n << 20n) - 0x1000n }] }]);
  t.ok(fd !== null && fd >= 0, 'fd sent with the caps-carrying reply');
  const mapping = native.mmap(fd!, 0x1000, 0x1000, native.PROT_READ | native.PROT_WRITE);
  new Uint8Array(mapping).set([0xde, 0xad], 0x10);
  t.same([...s.device.aperture.subarray(0x1010, 0x1012)], [0xde, 0xad], 'a store through the client mapping lands in mdgpu memory');
  native.munmap(mapping);
  native.close(fd!);
  const regs = await s.client.regionInfo(REGISTER_BAR);
  t.equal(regs.rounds, 1);
  t.equal(regs.fd, null, 'trapped BAR has no fd');
  t.equal(regs.info.size, 0x4000n);
  const cfg = await s.client.regionInfo(RegionIndex.CONFIG);
  t.equal(cfg.info.size, 4096n);
  t.equal(cfg.info.flags, RegionInfoFlag.Read | RegionInfoFlag.Write);
  t.equal((await s.client.regionInfo(4)).info.size, 0n, 'unimplemented BAR');
  t.equal(await errnoOf(s.client.regionInfo(9)), 'EINVAL', 'index out of range');
});

t.test('GET_IRQ_INFO', async (t) => {
  const s = serveDevice();
  t.teardown(() => s.close());
  await s.client.version();
  const msix = await s.client.irqInfo(IrqIndex.MSIX);
  t.equal(msix.count, 4);
  t.equal(msix.flags, IrqInfoFlag.Eventfd, 'no NORESIZE');
  t.equal((await s.client.irqInfo(IrqIndex.INTX)).count, 1);
  t.equal((await s.client.irqInfo(IrqIndex.MSI)).count, 0);
  t.equal(await errnoOf(s.client.irqInfo(IrqIndex.ERR)), 'EINVAL', 'no ERR irq: QEMU skips it silently');
  t.equal(await errnoOf(s.client.irqInfo(5)), 'EINVAL');
});

t.test('REGION_READ/WRITE: config space, registers, bounds', async (t) => {
  const s = serveDevice();
  t.teardown(() => s.close());
  await s.client.version();
  const cfg = await s.client.regionRead(RegionIndex.CONFIG, 0, 4096);
  t.equal(cfg.length, 4096, 'whole config space in one read, as QEMU does at realize');
  t.equal(readU32(cfg), 0x47504d44);
  t.equal(readU32(await s.client.regionRead(REGISTER_BAR, MDGPU_REGS.ID.offset, 4)), MDGPU_ID);
  await s.client.regionWrite(REGISTER_BAR, MDGPU_REGS.SCRATCH.offset, u32le(0x12345678));
  t.equal(readU32(await s.client.regionRead(REGISTER_BAR, MDGPU_REGS.SCRATCH.offset, 4)), 0x12345678);
  s.client.postRegionWrite(REGISTER_BAR, MDGPU_REGS.SCRATCH.offset, u32le(7));
  t.equal(readU32(await s.client.regionRead(REGISTER_BAR, MDGPU_REGS.SCRATCH.offset, 4)), 7, 'posted write applied, no reply sent for it');
  t.equal(await errnoOf(s.client.regionRead(REGISTER_BAR, 0x3ffe, 4)), 'EINVAL', 'crosses the end');
  t.equal(await errnoOf(s.client.regionRead(REGISTER_BAR, 0xffff_ffff_ffff_fffen, 4)), 'EINVAL', 'offset+count overflows');
  t.equal(await errnoOf(s.client.regionRead(1, 0, 4)), 'EINVAL', 'empty region');
  t.equal(await errnoOf(s.client.regionRead(12, 0, 4)), 'EINVAL', 'no such region');
  t.equal(
    await errnoOf(s.client.request(Command.RegionRead, encodeRegionReadRequest({ offset: 0n, region: 7, count: (1 << 20) + 1 }))),
    'EINVAL',
    'count > max_data_xfer_size',
  );
  const before = s.device.pci.trappedAccesses;
  await s.client.regionRead(APERTURE_BAR, 0, 4);
  t.equal(s.device.pci.trappedAccesses, before + 1, 'trapped accesses counted');
});

t.test('SET_IRQS with eventfds: the device signals the latest one', async (t) => {
  const s = serveDevice();
  t.teardown(() => s.close());
  await s.client.version();
  const msixCap = s.device.pci.config.capabilities().find((c) => c.id === 0x11)!.offset;
  await s.client.regionWrite(RegionIndex.CONFIG, msixCap + 2, Uint8Array.of(0x03, 0x80));
  t.ok(s.device.pci.msixEnabled);
  const efd = native.eventfd(0, 0);
  t.teardown(() => native.close(efd));
  await s.client.setIrqs({ index: IrqIndex.MSIX, action: 'trigger', start: 1, count: 1, data: { kind: 'eventfd' } }, [efd]);
  await s.client.regionWrite(REGISTER_BAR, MDGPU_REGS.IRQ_ENABLE.offset, u32le(0xff));
  await s.client.regionWrite(REGISTER_BAR, MDGPU_REGS.IRQ_RAISE.offset, u32le(0x2));
  t.equal(native.eventfdRead(efd), 1n, 'vector 1 fired through the eventfd we passed');
  const held = s.device.pci.irqs.heldFds();
  t.equal(held.length, 1);
  await s.client.setIrqs({ index: IrqIndex.MSIX, action: 'trigger', start: 0, count: 0, data: { kind: 'none' } });
  t.same(s.device.pci.irqs.heldFds(), [], 'disable released the server-side fd');
  const efd2 = native.eventfd(0, 0);
  t.teardown(() => native.close(efd2));
  t.equal(
    await errnoOf(s.client.setIrqs({ index: IrqIndex.MSIX, action: 'trigger', start: 3, count: 2, data: { kind: 'eventfd' } }, [efd2, efd2])),
    'EINVAL',
    'range beyond the vectors',
  );
  t.equal(
    await errnoOf(s.client.setIrqs({ index: IrqIndex.MSIX, action: 'mask', start: 0, count: 1, data: { kind: 'none' } })),
    'EINVAL',
    'MSI-X not maskable here',
  );
});

t.test('DMA_MAP/UNMAP with a memfd: zero-copy guest memory; errors', async (t) => {
  const s = serveDevice();
  t.teardown(() => s.close());
  await s.client.version();
  const memfd = native.memfdCreate('guest-ram', 0);
  native.ftruncate(memfd, 0x10000);
  const guest = new Uint8Array(native.mmap(memfd, 0, 0x10000, native.PROT_READ | native.PROT_WRITE));
  t.teardown(() => {
    native.munmap(guest.buffer as ArrayBuffer);
    native.close(memfd);
  });
  await s.client.dmaMap({ address: 0x100000n, size: 0x8000n, offset: 0x8000n, fd: memfd });
  guest.set([1, 2, 3, 4], 0x8010);
  await s.client.regionWrite(RegionIndex.CONFIG, PciReg.COMMAND, Uint8Array.of(0x06, 0x00));
  t.same([...(await s.device.pci.dma.read(0x100010n, 4))], [1, 2, 3, 4], 'the server reads guest memory through the fd');
  await s.device.pci.dma.write(0x100020n, Uint8Array.of(9));
  t.equal(guest[0x8020], 9, 'and writes it');
  t.equal(await errnoOf(s.client.dmaMap({ address: 0x104000n, size: 0x1000n })), 'EEXIST', 'overlap');
  t.equal(await errnoOf(s.client.dmaMap({ address: 0n, size: 0n })), 'EINVAL', 'zero size');
  t.equal(await errnoOf(s.client.dmaUnmap(0x100000n, 0x1000n)), 'ENOENT', 'unmap must match a map exactly');
  await s.client.dmaUnmap(0x100000n, 0x8000n);
  t.equal(s.device.pci.dma.count, 0);
  await s.client.dmaMap({ address: 0n, size: 0x1000n, flags: 1 });
  await s.client.dmaMap({ address: 0x2000n, size: 0x1000n, flags: 1 });
  await s.client.dmaUnmap(0n, 0n, DmaUnmapFlag.All);
  t.equal(s.device.pci.dma.count, 0, 'UNMAP_ALL');
});

t.test('message-based DMA for memory without an fd: DMA_READ/WRITE go to the client', async (t) => {
  const memory = new Uint8Array(0x2000).map((_, i) => i & 0xff);
  const s = serveDevice({
    memory: {
      read: (a, n) => memory.slice(Number(a), Number(a) + n),
      write: (a, d) => memory.set(d, Number(a)),
    },
  });
  t.teardown(() => s.close());
  await s.client.version();
  await s.client.dmaMap({ address: 0n, size: 0x2000n });
  const errno = await s.device.pci.dma.read(0n, 4).then(
    () => 'none',
    (e: { errno: string }) => e.errno,
  );
  t.equal(errno, 'ENODEV', 'no DMA before Bus Master Enable');
  await s.client.regionWrite(RegionIndex.CONFIG, PciReg.COMMAND, Uint8Array.of(0x04, 0x00));
  t.same([...(await s.device.pci.dma.read(0x10n, 4))], [0x10, 0x11, 0x12, 0x13]);
  await s.device.pci.dma.write(0x20n, Uint8Array.of(0xaa, 0xbb));
  t.same([...memory.subarray(0x20, 0x22)], [0xaa, 0xbb]);
  t.same(s.client.serverRequests, ['DmaRead', 'DmaWrite']);
});

t.test('DEVICE_RESET restores power-on state', async (t) => {
  const s = serveDevice();
  t.teardown(() => s.close());
  await s.client.version();
  await s.client.regionWrite(REGISTER_BAR, MDGPU_REGS.SCRATCH.offset, u32le(5));
  s.device.aperture[0x5000] = 1;
  await s.client.reset();
  t.equal(readU32(await s.client.regionRead(REGISTER_BAR, MDGPU_REGS.SCRATCH.offset, 4)), 0);
  t.equal(s.device.aperture[0x5000], 0, 'aperture zeroed (hole punched)');
});

t.test('unsupported and unknown commands', async (t) => {
  const s = serveDevice();
  t.teardown(() => s.close());
  await s.client.version();
  t.equal(await errnoOf(s.client.request(99, new Uint8Array(0))), 'ENOSYS');
  t.equal(await errnoOf(s.client.request(Command.DeviceFeature, Uint8Array.of(8, 0, 0, 0, 1, 0, 4, 0))), 'EINVAL', 'no migration feature');
  t.equal(await errnoOf(s.client.request(Command.MigDataRead, new Uint8Array(8))), errnoName(constants.errno.ENOTSUP), 'no migration data');
  t.equal(await errnoOf(s.client.request(Command.DmaRead, new Uint8Array(16))), 'EINVAL', 'server-to-client command from the client');
  s.client.post(99, new Uint8Array(0));
  t.ok(await s.client.deviceInfo(), 'no reply to a NO_REPLY message, and the stream stays in sync');
});

t.test('an untrusted stream is closed: fds where none are allowed', async (t) => {
  const s = serveDevice();
  t.teardown(() => s.close());
  await s.client.version();
  const efd = native.eventfd(0, 0);
  s.client.sendRaw(
    encodeMessage({ msgId: 1, command: Command.RegionRead, flags: MessageType.Command }, encodeRegionReadRequest({ offset: 0n, region: 7, count: 4 })),
    [efd],
  );
  native.close(efd);
  t.ok(await closedWithin(s.client, 5000), 'the server closed the connection');
  t.ok(s.client.isClosed);
  t.equal(s.server.session, null);
});

t.test('an untrusted stream is closed: bad type bits, oversized size', async (t) => {
  for (const [name, bytes] of [
    ['type 2', encodeMessage({ msgId: 1, command: Command.DeviceGetInfo, flags: 2 }, new Uint8Array(16))],
    ['unknown flag', encodeMessage({ msgId: 1, command: Command.DeviceGetInfo, flags: 0x100 }, new Uint8Array(16))],
    [
      'size 8 GiB-ish',
      (() => {
        const m = encodeMessage({ msgId: 1, command: 9, flags: 0 });
        new DataView(m.buffer).setUint32(4, 0xffff_fff0, true);
        return m;
      })(),
    ],
  ] as const) {
    const s = serveDevice();
    s.client.sendRaw(bytes);
    t.ok(await closedWithin(s.client, 5000), `${name}: the server closed the connection`);
    t.ok(s.client.isClosed, name);
    s.close();
  }
});

t.test('a reply nobody asked for closes the session', async (t) => {
  const s = serveDevice();
  t.teardown(() => s.close());
  await s.client.version();
  s.client.sendRaw(encodeMessage({ msgId: 77, command: Command.DmaRead, flags: MessageType.Reply }));
  t.ok(await closedWithin(s.client, 5000), 'the server closed the connection');
  t.equal(s.server.session, null, 'and dropped the session');
  t.equal(await errnoOf(s.reconnect().version()), 'none', 'a new connection is served');
});
