/** Generated from MDGPU_REGS: every register's reset value, read-only bits, w1c bits and reserved bits. */
import t from 'tap';
import { MdgpuDevice, REGISTER_BAR } from '../../src/vgpu/device.js';
import { MDGPU_REGS } from '../../src/vgpu/regs.js';
import { setLogSink } from '../../src/log.js';
import { FakeHost } from '../helpers/fake-host.js';

setLogSink(() => {});
const APERTURE = 1 << 20;
// Registers whose writes have side effects beyond the value are covered by their own tests.
const SIDE_EFFECTS = new Set(['MBOX_DOORBELL', 'IRQ_RAISE', 'WINDOW_BASE_LO', 'WINDOW_BASE_HI']);

for (const [name, reg] of Object.entries(MDGPU_REGS)) {
  t.test(name, (t) => {
    const dev = new MdgpuDevice({ name: 'regs', apertureSize: APERTURE, host: new FakeHost() });
    const read = () => new DataView(dev.pci.regionRead(REGISTER_BAR, reg.offset, 4).buffer).getUint32(0, true);
    const write = (v: number) => {
      const b = new Uint8Array(4);
      new DataView(b.buffer).setUint32(0, v >>> 0, true);
      dev.pci.regionWrite(REGISTER_BAR, reg.offset, b);
    };
    const ro = ('ro' in reg ? reg.ro : 0) >>> 0;
    const rsvd = ('rsvd' in reg ? reg.rsvd : 0) >>> 0;
    const w1c = ('w1c' in reg ? reg.w1c : 0) >>> 0;
    const initial = read();
    if (!('read' in reg)) t.equal(initial, (('reset' in reg ? reg.reset : 0) & ~rsvd) >>> 0, 'reset value');
    t.equal((initial & rsvd) >>> 0, 0, 'reserved bits read 0');
    if (SIDE_EFFECTS.has(name)) {
      t.end();
      return;
    }
    write(0xffff_ffff);
    const afterOnes = read();
    t.equal((afterOnes & ro) >>> 0, (initial & ro) >>> 0, 'read-only bits hold');
    t.equal((afterOnes & rsvd) >>> 0, 0, 'reserved bits still read 0');
    if (w1c !== 0) t.equal((afterOnes & w1c) >>> 0, 0, 'writing 1s clears w1c bits');
    const writable = ~(ro | rsvd | w1c) >>> 0;
    if (writable !== 0 && !('read' in reg)) t.equal((afterOnes & writable) >>> 0, writable, 'writable bits take 1s');
    write(0);
    t.equal((read() & ro) >>> 0, (initial & ro) >>> 0, 'read-only bits hold after 0s');
    dev.close();
    t.end();
  });
}
