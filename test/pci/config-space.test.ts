import t from 'tap';
import { ConfigSpace, PciCapId, PciReg, PciStatus } from '../../src/pci/config-space.js';

t.test('writes honour wmask and w1cmask byte by byte', (t) => {
  const c = new ConfigSpace(256);
  c.setU16(PciReg.STATUS, 0xf910);
  c.setMasks(PciReg.STATUS, 2, 0, PciStatus.W1C_ERRORS);
  c.setMasks(PciReg.COMMAND, 2, 0x0006);
  c.write(PciReg.COMMAND, Uint8Array.of(0xff, 0xff));
  t.equal(c.u16(PciReg.COMMAND), 0x0006, 'only writable bits of COMMAND change');
  c.write(PciReg.STATUS, Uint8Array.of(0x10, 0x80));
  t.equal(c.u16(PciReg.STATUS), 0x7910, 'writing 1 clears only that w1c bit; cap-list bit is read-only');
  c.write(PciReg.STATUS, Uint8Array.of(0, 0));
  t.equal(c.u16(PciReg.STATUS), 0x7910, 'writing 0 keeps w1c bits');
  t.end();
});

t.test('capability list is chained in order and walkable', (t) => {
  const c = new ConfigSpace(4096);
  const pm = c.addCapability(PciCapId.PM, 8);
  const msix = c.addCapability(PciCapId.MSIX, 12);
  const exp = c.addCapability(PciCapId.EXP, 0x3c);
  t.equal(c.u8(PciReg.CAPABILITY_LIST), pm);
  t.ok(c.u16(PciReg.STATUS) & PciStatus.CAP_LIST);
  t.same(c.capabilities(), [
    { id: PciCapId.PM, offset: pm },
    { id: PciCapId.MSIX, offset: msix },
    { id: PciCapId.EXP, offset: exp },
  ]);
  t.equal(msix % 4, 0);
  t.throws(() => c.addCapability(PciCapId.VENDOR, 200), /does not fit/);
  t.end();
});

t.test('a looping capability list terminates', (t) => {
  const c = new ConfigSpace(256);
  const a = c.addCapability(PciCapId.PM, 8);
  c.setU8(a + 1, a);
  t.equal(c.capabilities().length, 1);
  t.end();
});
