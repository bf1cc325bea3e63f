/** Command numbers, names, the header layout and the wire constants, checked against the spec tables. */
import t from 'tap';
import {
  Command,
  DeviceFeatureFlag,
  DeviceFeatureId,
  DeviceInfoFlag,
  DmaMapFlag,
  DmaUnmapFlag,
  HEADER_FLAGS_KNOWN,
  HEADER_SIZE,
  HeaderFlag,
  HeaderLayout,
  IrqInfoFlag,
  IrqSetFlag,
  MessageType,
  MigState,
  MigrationFlag,
  PciIrq,
  PciRegion,
  RegionCapId,
  RegionInfoFlag,
  commandName,
  commandSpecName,
  isCommand,
} from '../../src/protocol/index.js';

t.test('command numbers match the spec table', (t) => {
  const spec: Array<[string, number]> = [
    ['VFIO_USER_VERSION', 1],
    ['VFIO_USER_DMA_MAP', 2],
    ['VFIO_USER_DMA_UNMAP', 3],
    ['VFIO_USER_DEVICE_GET_INFO', 4],
    ['VFIO_USER_DEVICE_GET_REGION_INFO', 5],
    ['VFIO_USER_DEVICE_GET_REGION_IO_FDS', 6],
    ['VFIO_USER_DEVICE_GET_IRQ_INFO', 7],
    ['VFIO_USER_DEVICE_SET_IRQS', 8],
    ['VFIO_USER_REGION_READ', 9],
    ['VFIO_USER_REGION_WRITE', 10],
    ['VFIO_USER_DMA_READ', 11],
    ['VFIO_USER_DMA_WRITE', 12],
    ['VFIO_USER_DEVICE_RESET', 13],
    ['VFIO_USER_DIRTY_PAGES', 14],
    ['VFIO_USER_REGION_WRITE_MULTI', 15],
    ['VFIO_USER_DEVICE_FEATURE', 16],
    ['VFIO_USER_MIG_DATA_READ', 17],
    ['VFIO_USER_MIG_DATA_WRITE', 18],
  ];
  for (const [name, n] of spec) t.equal(commandSpecName(n), name);
  t.equal(Command.RegionWriteMulti, 15);
  t.equal(Command.MigDataWrite, 18);
  t.end();
});

t.test('commandName is safe for any number', (t) => {
  t.equal(commandName(Command.RegionRead), 'RegionRead');
  t.equal(commandName(0), 'Unknown(0)');
  t.equal(commandName(19), 'Unknown(19)');
  t.equal(commandName(65535), 'Unknown(65535)');
  t.equal(commandSpecName(99), 'Unknown(99)');
  t.end();
});

t.test('isCommand accepts exactly the enum values', (t) => {
  t.ok(isCommand(1));
  t.ok(isCommand(18));
  t.notOk(isCommand(0));
  t.notOk(isCommand(19));
  t.notOk(isCommand(1.5));
  t.end();
});

t.test('the header is 16 bytes with fields at the spec offsets', (t) => {
  t.equal(HEADER_SIZE, 16);
  t.strictSame(
    Object.entries(HeaderLayout.fields).map(([name, f]) => [name, f.offset, f.size]),
    [
      ['msgId', 0, 2],
      ['command', 2, 2],
      ['size', 4, 4],
      ['flags', 8, 4],
      ['error', 12, 4],
    ],
  );
  t.end();
});

t.test('header flag constants match the spec', (t) => {
  t.equal(HeaderFlag.TypeMask, 0xf);
  t.equal(MessageType.Command, 0);
  t.equal(MessageType.Reply, 1);
  t.equal(HeaderFlag.NoReply, 0x10);
  t.equal(HeaderFlag.Error, 0x20);
  t.equal(HEADER_FLAGS_KNOWN, 0x3f);
  t.end();
});

t.test('linux vfio constants match vfio.h', (t) => {
  t.strictSame({ ...RegionInfoFlag }, { Read: 1, Write: 2, Mmap: 4, Caps: 8 });
  t.strictSame({ ...RegionCapId }, { SparseMmap: 1, Type: 2, MsixMappable: 3 });
  t.strictSame({ ...PciRegion }, { Bar0: 0, Bar1: 1, Bar2: 2, Bar3: 3, Bar4: 4, Bar5: 5, Rom: 6, Config: 7, Vga: 8, Count: 9 });
  t.strictSame({ ...PciIrq }, { Intx: 0, Msi: 1, Msix: 2, Err: 3, Req: 4, Count: 5 });
  t.strictSame({ ...IrqInfoFlag }, { Eventfd: 1, Maskable: 2, Automasked: 4, NoResize: 8 });
  t.strictSame(
    { ...IrqSetFlag },
    {
      DataNone: 1,
      DataBool: 2,
      DataEventfd: 4,
      ActionMask: 8,
      ActionUnmask: 0x10,
      ActionTrigger: 0x20,
      DataTypeMask: 7,
      ActionTypeMask: 0x38,
    },
  );
  t.strictSame({ ...DeviceInfoFlag }, { Reset: 1, Pci: 2 });
  t.strictSame({ ...DmaMapFlag }, { Read: 1, Write: 2, ModeMmap: 4, ModeFileIo: 8 });
  t.strictSame({ ...DmaUnmapFlag }, { GetDirtyBitmap: 1, All: 2 });
  t.strictSame({ ...DeviceFeatureFlag }, { Mask: 0xffff, Get: 0x10000, Set: 0x20000, Probe: 0x40000 });
  t.strictSame({ ...DeviceFeatureId }, { Migration: 1, MigDeviceState: 2, DmaLoggingStart: 6, DmaLoggingStop: 7, DmaLoggingReport: 8 });
  t.strictSame({ ...MigrationFlag }, { StopCopy: 1, P2p: 2, PreCopy: 4 });
  t.equal(MigState.PreCopyP2p, 7);
  t.end();
});
