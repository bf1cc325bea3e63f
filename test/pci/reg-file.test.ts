import t from 'tap';
import { applyWrite, defineRegs, fieldMask, RegisterFile } from '../../src/pci/reg-file.js';
import { setLogSink } from '../../src/log.js';

t.test('applyWrite: ro bits hold, w1c clears, byte lanes respected', (t) => {
  t.equal(applyWrite({ offset: 0, ro: 0xff00 }, 0x1234, 0xffff), 0x12ff);
  t.equal(applyWrite({ offset: 0, w1c: 0x3 }, 0x3, 0x1), 0x2);
  t.equal(applyWrite({ offset: 0, w1c: 0x3 }, 0x3, 0x0), 0x3);
  t.equal(applyWrite({ offset: 0 }, 0x11223344, 0xaabbccdd, 0x0000ff00), 0x1122cc44);
  t.equal(applyWrite({ offset: 0, rsvd: 0xf0 }, 0, 0xff), 0x0f);
  t.end();
});

t.test('defineRegs rejects bad tables', (t) => {
  t.throws(() => defineRegs()({ A: { offset: 2 } }), /aligned/);
  t.throws(() => defineRegs()({ A: { offset: 4 }, B: { offset: 4 } }), /share offset/);
  t.throws(() => defineRegs()({ A: { offset: 4, fields: { F: [30, 4] } } }), /outside 32 bits/);
  t.equal(fieldMask([4, 4]), 0xf0);
  t.equal(fieldMask([0, 32]), 0xffff_ffff);
  t.end();
});

t.test('RegisterFile: sub-word access, hooks, unknown offsets', (t) => {
  const lines: string[] = [];
  const restore = setLogSink((l) => lines.push(l));
  t.teardown(() => void setLogSink(restore));
  const writes: number[] = [];
  const regs = defineRegs<{ log: number[] }>()({
    A: { offset: 0x0, reset: 0x11223344 },
    B: { offset: 0x4, read: () => 0xcafe },
    C: { offset: 0x8, ro: 0xffff_ffff, reset: 7 },
    D: { offset: 0xc, postWrite: (ctx, v) => ctx.log.push(v) },
  });
  const file = new RegisterFile('test', regs, { log: writes });
  t.equal(file.read(0x1, 1), 0x33);
  t.equal(file.read(0x2, 2), 0x1122);
  file.write(0x3, 1, 0xaa);
  t.equal(file.get('A'), 0xaa223344);
  t.equal(file.read(0x4, 4), 0xcafe);
  file.write(0x8, 4, 0);
  t.equal(file.get('C'), 7);
  file.write(0xc, 4, 0x55);
  t.same(writes, [0x55]);
  t.equal(file.read(0x40, 4), 0);
  file.write(0x40, 4, 1);
  t.ok(lines.some((l) => /unimplemented register 0x40/.test(l)));
  t.ok(lines.some((l) => /read-only register C/.test(l)));
  file.reset();
  t.equal(file.get('A'), 0x11223344);
  t.throws(() => file.get('Z' as never));
  t.end();
});

t.test('RegisterFile: offsets past the last register, between registers and sub-word reads of hooks', (t) => {
  const lines: string[] = [];
  const restore = setLogSink((l) => lines.push(l));
  t.teardown(() => void setLogSink(restore));
  const regs = defineRegs<null>()({
    A: { offset: 0x0, reset: 0xffff_ffff, rsvd: 0xff00_0000 },
    B: { offset: 0x10, read: () => 0x8765_4321 },
  });
  const file = new RegisterFile('sparse', regs, null);
  t.equal(file.read(0x0, 4), 0x00ff_ffff, 'reserved bits read as 0');
  t.equal(file.read(0x8, 4), 0, 'a hole between registers reads 0');
  t.equal(file.read(0x14, 4), 0, 'past the last register reads 0');
  t.equal(file.read(0x4000, 4), 0, 'far past it too');
  file.write(0x14, 4, 5);
  t.equal(file.read(0x12, 2), 0x8765, 'a hook’s value, upper half');
  t.equal(file.read(0x13, 1), 0x87);
  file.set('A', -1);
  t.equal(file.get('A'), 0xffff_ffff, 'set stores the value as a u32');
  t.equal(lines.filter((l) => /unimplemented register/.test(l)).length, 4);
  t.end();
});
