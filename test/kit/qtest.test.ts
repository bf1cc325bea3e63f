/**
 * Guest-less tests through qtest: the kit's QEMU with built-in devices behind pcie-root-ports
 * (the same topology a vfio-user device gets), enumerated and programmed by our PCI helpers,
 * then driven through their BARs. Fails (never skips) when the kit is missing.
 */
import t from 'tap';
import { ensureKit } from '../../src/kit/kit.js';
import { PciCapId, PciCommand, PciReg } from '../../src/pci/config-space.js';
import { formatBdf, PciFirmware, Q35_ECAM_BASE } from '../helpers/pci-firmware.js';
import { startQtest } from '../helpers/qtest.js';

const kit = await ensureKit();

const EDU = { vendor: 0x1234, device: 0x11e8 };
const VIRTIO_RNG = { vendor: 0x1af4, device: 0x1044 }; // modern virtio-rng-pci
const ROOT_PORT = { vendor: 0x1b36, device: 0x000c };

interface QmpPciDevice {
  bus: number;
  slot: number;
  function: number;
  id: { vendor: number; device: number };
  regions: { bar: number; type: string; address: number; size: number; prefetch?: boolean; mem_type_64?: boolean }[];
  pci_bridge?: { bus: { number: number; secondary: number; subordinate: number }; devices?: QmpPciDevice[] };
}

t.test('qtest: enumerate devices behind root ports, assign BARs, drive them', async (t) => {
  const qt = await startQtest(kit, {
    devices: [{ driver: 'edu' }, { driver: 'virtio-rng-pci' }],
    timeoutMs: 120_000,
  });
  t.teardown(() => qt.close());
  const pci = new PciFirmware(qt);

  t.equal(await qt.readl(Q35_ECAM_BASE), 0, 'ECAM decodes nothing before PCIEXBAR is enabled');
  t.equal(await pci.init(), Q35_ECAM_BASE, 'ECAM enabled at 0xb0000000');
  t.equal(await pci.init(), Q35_ECAM_BASE, 'init is idempotent');
  t.equal(await qt.readl(Q35_ECAM_BASE), 0x29c08086, 'MCH id through ECAM');

  const fns = await pci.enumerate();
  const ports = fns.filter((f) => f.vendor === ROOT_PORT.vendor && f.device === ROOT_PORT.device);
  t.same(
    ports.map((p) => [formatBdf(p.bdf), p.secondaryBus, p.subordinateBus]),
    [
      ['00:10.0', 1, 1],
      ['00:11.0', 2, 2],
    ],
    'root ports at the pinned slots get buses 1 and 2',
  );
  const edu = (await pci.findDevice(EDU.vendor, EDU.device))!;
  t.ok(edu, 'edu found');
  t.equal(formatBdf(edu.bdf), '01:00.0');
  t.equal(edu.classCode, 0x00ff00);
  const rng = (await pci.findDevice(VIRTIO_RNG.vendor, VIRTIO_RNG.device))!;
  t.equal(formatBdf(rng.bdf), '02:00.0');
  t.equal(await pci.findDevice(0xdead, 0xbeef), undefined);
  t.same(
    (await pci.findClass(0x0604)).map((f) => formatBdf(f.bdf)),
    ['00:10.0', '00:11.0'],
    'findClass by class/subclass',
  );
  t.equal(await pci.cfgRead(edu.bdf, PciReg.VENDOR_ID, 2), EDU.vendor, '16-bit config read');
  t.equal(await pci.cfgRead(edu.bdf, PciReg.DEVICE_ID + 1, 1), EDU.device >> 8, '8-bit config read');

  // Sizing before assignment: edu has one 1 MiB BAR; virtio-rng a 4 KiB MSI-X BAR1 and a 64-bit prefetchable BAR4.
  const eduBar0 = (await pci.sizeBar(edu.bdf, 0))!;
  t.match(eduBar0, { index: 0, kind: 'mem', is64: false, prefetchable: false, size: 0x100000n });
  t.equal(await pci.sizeBar(edu.bdf, 1), undefined, 'unimplemented BAR');
  const rngBars = await pci.bars(rng.bdf);
  t.same(
    rngBars.map((b) => [b.index, b.kind, b.is64, b.prefetchable, b.size]),
    [
      [1, 'mem', false, false, 0x1000n],
      [4, 'mem', true, true, 0x4000n],
    ],
  );
  t.equal(await pci.sizeBar(rng.bdf, 5), undefined, 'upper half of a 64-bit BAR');
  await t.rejects(pci.sizeBar(rng.bdf, 6), RangeError);

  const assignment = await pci.assignBars();
  const byBdf = new Map(assignment.functions.map((f) => [formatBdf(f.bdf), f]));
  const eduA = byBdf.get('01:00.0')!;
  const rngA = byBdf.get('02:00.0')!;
  t.equal(eduA.bars[0]!.address % 0x100000n, 0n, 'naturally aligned');
  t.ok(eduA.bars[0]!.address >= 0xc000_0000n && eduA.bars[0]!.address < 0xfec0_0000n, '32-bit window');
  const pref = rngA.bars.find((b) => b.index === 4)!;
  t.ok(pref.address >= 0x1_0000_0000n, '64-bit prefetchable BAR above 4 GiB');
  const rp1 = byBdf.get('00:11.0')!;
  t.ok(
    rp1.windows?.pref && rp1.windows.pref[0] <= pref.address && pref.address + pref.size - 1n <= rp1.windows.pref[1],
    'inside the bridge prefetchable window',
  );
  const rp0 = byBdf.get('00:10.0')!;
  t.ok(rp0.windows?.mem && rp0.windows.mem[0] <= eduA.bars[0]!.address, 'inside the bridge memory window');
  t.equal(rp0.windows?.pref, undefined, 'unused window stays closed');
  const cmd = await pci.cfgRead(edu.bdf, PciReg.COMMAND, 2);
  t.equal(cmd & (PciCommand.MEMORY | PciCommand.MASTER), PciCommand.MEMORY | PciCommand.MASTER, 'memory decode and bus master on');

  // QEMU's own view (QMP query-pci) agrees with what we programmed.
  const buses = await qt.qmp<{ bus: number; devices: QmpPciDevice[] }[]>('query-pci');
  const all: QmpPciDevice[] = [];
  const walk = (ds: QmpPciDevice[]) => {
    for (const d of ds) {
      all.push(d);
      if (d.pci_bridge?.devices) walk(d.pci_bridge.devices);
    }
  };
  walk(buses[0]!.devices);
  const qEdu = all.find((d) => d.id.vendor === EDU.vendor && d.id.device === EDU.device)!;
  t.same([qEdu.bus, qEdu.slot, qEdu.function], [1, 0, 0]);
  t.equal(BigInt(qEdu.regions.find((r) => r.bar === 0)!.address), eduA.bars[0]!.address, 'QEMU maps edu BAR0 where we put it');
  const qRng = all.find((d) => d.id.vendor === VIRTIO_RNG.vendor)!;
  t.equal(BigInt(qRng.regions.find((r) => r.bar === 4)!.address), pref.address, 'QEMU maps the 64-bit BAR where we put it');

  // Drive the devices through their BARs.
  const e = eduA.bars[0]!.address;
  t.equal(await qt.readl(e), 0x010000ed, 'edu identification register');
  await qt.writel(e + 4n, 0x12345678);
  t.equal(await qt.readl(e + 4n), 0xedcba987, 'edu liveness register inverts');
  await qt.writel(e + 8n, 5);
  let fact = 0;
  for (let i = 0; i < 1000 && ((await qt.readl(e + 0x20n)) & 1) !== 0; i++) await new Promise((r) => setTimeout(r, 1));
  fact = await qt.readl(e + 8n);
  t.equal(fact, 120, 'edu factorial (its worker thread) computed 5!');
  // virtio modern common config at the start of BAR4 (the MSI-X BAR is BAR1): num_queues (offset 0x12) = 1 for rng.
  t.equal(await qt.readw(pref.address + 0x12n), 1, 'virtio-rng num_queues through the 64-bit BAR');

  // Interrupts without a CPU: MSI aimed at guest RAM shows up as a memory write there.
  const MSI_SLOT = 0x20_0000n;
  await qt.writel(MSI_SLOT, 0);
  await pci.enableMsi(edu.bdf, MSI_SLOT, 0xbeef);
  await qt.writel(e + 0x60n, 1); // edu: raise interrupt (status bit 0)
  t.equal(await qt.readl(MSI_SLOT), 0xbeef, 'edu MSI message landed in RAM');
  t.equal(await qt.readl(e + 0x24n), 1, 'edu interrupt status');
  await qt.writel(e + 0x64n, 1); // acknowledge

  // MSI-X: the table is in BAR1 of virtio-rng; program vector 0 and read it back.
  const table = await pci.msixTable(rng.bdf);
  t.equal(table.bar, 1);
  t.ok(table.entries >= 1);
  const msixBar = rngA.bars.find((b) => b.index === 1)!;
  t.ok(table.address >= msixBar.address && table.address + BigInt(16 * table.entries) <= msixBar.address + msixBar.size, 'table inside BAR1');
  t.ok(table.pbaAddress >= msixBar.address && table.pbaAddress < msixBar.address + msixBar.size, 'PBA inside BAR1');
  await pci.setMsixVector(rng.bdf, 0, 0x20_1000n, 0x42);
  t.same(
    [await qt.readl(table.address), await qt.readl(table.address + 4n), await qt.readl(table.address + 8n), await qt.readl(table.address + 12n)],
    [0x20_1000, 0, 0x42, 0],
    'MSI-X entry programmed',
  );
  t.equal((await pci.cfgRead(rng.bdf, table.cap + 2, 2)) & 0xc000, 0x8000, 'MSI-X enabled, function unmasked');
  await t.rejects(pci.setMsixVector(rng.bdf, table.entries, 0n, 0), RangeError);
  await t.rejects(pci.msixTable(edu.bdf), /no MSI-X capability/);
  await t.rejects(pci.enableMsi(rng.bdf, 0n, 0), /no MSI capability/);

  const caps = await pci.capabilities(rng.bdf);
  t.ok(
    caps.some(([id]) => id === PciCapId.MSIX),
    'virtio-rng has MSI-X',
  );
  t.ok(
    caps.some(([id]) => id === 0x10),
    'PCIe capability (it sits behind a root port)',
  );
  t.equal(await pci.findCapability(rng.bdf, 0x11), caps.find(([id]) => id === 0x11)![1]);
  t.equal(await pci.findCapability(edu.bdf, 0x11), undefined);
  const ext = await pci.extCapabilities({ bus: 0, dev: 0x10, fn: 0 });
  t.ok(ext.length > 0 && ext[0]![2] === 0x100, 'root port extended capabilities through ECAM');

  await t.rejects(pci.cfgRead(edu.bdf, 0x1000, 1), RangeError);
  await t.rejects(pci.cfgRead(edu.bdf, 2, 4), /Invalid config access/);
  await t.rejects(pci.cfgRead({ bus: 0, dev: 32, fn: 0 }, 0, 4), /Invalid BDF/);
});

t.test('qtest: raw memory, ports, QMP and errors', async (t) => {
  const qt = await startQtest(kit, { memoryMiB: 256, timeoutMs: 60_000 });
  const RAM = 0x10_0000n;
  await qt.write(RAM, Buffer.from('mdgpu qtest'));
  t.equal((await qt.read(RAM, 11)).toString(), 'mdgpu qtest', 'write/read round trip');
  t.same(await qt.read(RAM, 0), Buffer.alloc(0));
  await qt.write(RAM, Buffer.alloc(0));
  await qt.memset(RAM + 0x100n, 8, 0xab);
  t.equal(await qt.readq(RAM + 0x100n), 0xababababababababn);
  await qt.writeq(RAM + 0x200n, 0x0123456789abcdefn);
  t.equal(await qt.readl(RAM + 0x200n), 0x89abcdef);
  t.equal(await qt.readw(RAM + 0x204n), 0x4567);
  t.equal(await qt.readb(RAM + 0x207n), 0x01);
  await qt.writeb(RAM + 0x300n, 0x1ff);
  await qt.writew(RAM + 0x302n, 0xbeef);
  t.equal(await qt.readl(RAM + 0x300n), 0xbeef00ff, 'values are masked to their width');
  await qt.writel(Number(RAM) + 0x400, -1);
  t.equal(await qt.readl(RAM + 0x400n), 0xffffffff, 'number addresses and negative values');
  // The memfd backend is guest RAM: its size is what -m says.
  const mem = await qt.qmp<{ 'base-memory': number }>('query-memory-size-summary');
  t.equal(mem['base-memory'], 256 * 1024 * 1024);
  const memdev = await qt.qmp<{ id: string; share: boolean; size: number }[]>('query-memdev');
  t.same(
    memdev.map((m) => [m.id, m.share]),
    [['mem', true]],
    'guest RAM is the shared memfd backend',
  );
  // CMOS through I/O ports: register 0x0d (status D) has VRT set.
  await qt.outb(0x70, 0x0d);
  t.equal((await qt.inb(0x71)) & 0x80, 0x80, 'RTC status D via outb/inb');
  await qt.outw(0x80, 0);
  t.type(await qt.inw(0x92), 'number');
  t.type(await qt.clockStep(1000), 'bigint');
  t.match(await qt.hmp('info version'), /^11\.|^1\d\./);
  await t.rejects(qt.command('no_such_command'), /qtest no_such_command: FAIL/);
  await t.rejects(qt.qmp('no-such-qmp-command'), /CommandNotFound/);
  const r = await qt.close();
  t.equal(r.code, 0, 'QEMU quits cleanly on QMP quit');
  await t.rejects(qt.readl(0), /qtest readl/, 'commands after close fail');
});

t.test('qtest: a vfio-user device whose server is not listening stops QEMU at startup', async (t) => {
  await t.rejects(
    startQtest(kit, { vfioUser: [{ socket: '/nonexistent/mdgpu.sock' }], timeoutMs: 30_000 }),
    /QEMU exited \(1\): .*vfio-user-pci.*nonexistent\/mdgpu\.sock/s,
  );
});
