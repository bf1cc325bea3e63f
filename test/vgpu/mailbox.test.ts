import t from 'tap';
import { MdgpuDevice, REGISTER_BAR, ALLOC_BASE } from '../../src/vgpu/device.js';
import { MDGPU_CONTRACT_MAJOR, MDGPU_CONTRACT_MINOR, MDGPU_REGS } from '../../src/vgpu/regs.js';
import { MAILBOX_OPS, MAILBOX_RESULTS, QUERY_PARAMS } from '../../src/vgpu/mailbox-ops.js';
import { setLogSink } from '../../src/log.js';
import { FakeHost } from '../helpers/fake-host.js';

setLogSink(() => {});
const APERTURE = 1 << 20;

function setup(options: { quota?: number; maxContexts?: number; maxBuffers?: number } = {}) {
  const host = new FakeHost();
  const dev = new MdgpuDevice({ name: 'mbox', apertureSize: APERTURE, host, ...options });
  const w = (name: keyof typeof MDGPU_REGS, v: number) => {
    const b = new Uint8Array(4);
    new DataView(b.buffer).setUint32(0, v >>> 0, true);
    dev.pci.regionWrite(REGISTER_BAR, MDGPU_REGS[name].offset, b);
  };
  const r = (name: keyof typeof MDGPU_REGS) => new DataView(dev.pci.regionRead(REGISTER_BAR, MDGPU_REGS[name].offset, 4).buffer).getUint32(0, true);
  /** Post an operation the way the driver does; returns the result code and the four results. */
  const op = (code: number, ...args: number[]) => {
    args.forEach((v, i) => w(`MBOX_ARG${i}` as keyof typeof MDGPU_REGS, v));
    w('MBOX_OPCODE', code);
    const before = r('MBOX_STATUS') >>> 16;
    w('MBOX_DOORBELL', 1);
    const status = r('MBOX_STATUS');
    if (status >>> 16 !== ((before + 1) & 0xffff)) throw new Error('SEQ did not advance');
    return { result: status & 0xffff, rets: [r('MBOX_RET0'), r('MBOX_RET1'), r('MBOX_RET2'), r('MBOX_RET3')] };
  };
  return { host, dev, op, r, w };
}
const R = Object.fromEntries(Object.entries(MAILBOX_RESULTS).map(([k, v]) => [k, v.code])) as Record<keyof typeof MAILBOX_RESULTS, number>;
const O = Object.fromEntries(Object.entries(MAILBOX_OPS).map(([k, v]) => [k, v.code])) as Record<keyof typeof MAILBOX_OPS, number>;

t.test('contexts, allocation, info, free; allocations are zeroed', (t) => {
  const { dev, op } = setup();
  t.equal(op(O.NOP).result, R.OK);
  const ctx = op(O.CTX_CREATE);
  t.equal(ctx.result, R.OK);
  t.not(ctx.rets[0], 0, 'context ids are never 0');
  const bo = op(O.BO_ALLOC, ctx.rets[0]!, 5000, 0, 0, 0);
  t.equal(bo.result, R.OK);
  t.equal(bo.rets[1], ALLOC_BASE, 'first buffer at the allocation base');
  const info = op(O.BO_INFO, ctx.rets[0]!, bo.rets[0]!);
  t.same(info.rets, [ALLOC_BASE, 0, 0x2000, 0], 'size rounded up to 4 KiB');
  dev.aperture.fill(0xaa, ALLOC_BASE, ALLOC_BASE + 0x2000);
  t.equal(op(O.BO_FREE, ctx.rets[0]!, bo.rets[0]!).result, R.OK);
  t.equal(dev.aperture[ALLOC_BASE], 0, 'freed memory zeroed at once');
  dev.aperture.fill(0xbb, ALLOC_BASE, ALLOC_BASE + 0x2000);
  const again = op(O.BO_ALLOC, ctx.rets[0]!, 0x2000, 0, 0, 0);
  t.equal(again.rets[1], ALLOC_BASE, 'same range handed out again');
  t.ok(
    dev.aperture.subarray(ALLOC_BASE, ALLOC_BASE + 0x2000).every((b) => b === 0),
    '...and zeroed before the guest sees it',
  );
  const aligned = op(O.BO_ALLOC, ctx.rets[0]!, 0x1000, 0, 16, 0);
  t.equal(aligned.rets[1]! % 0x10000, 0, '64 KiB alignment');
  t.equal(op(O.QUERY, QUERY_PARAMS.BUFFERS.code).rets[0], 2);
  const destroyed = op(O.CTX_DESTROY, ctx.rets[0]!);
  t.same([destroyed.result, destroyed.rets[0]], [R.OK, 2], 'destroying a context frees its buffers');
  t.equal(dev.memory.used, 0);
  t.end();
});

t.test('queries', (t) => {
  const { op } = setup({ quota: 0x40000 });
  const q = (p: keyof typeof QUERY_PARAMS) => {
    const { result, rets } = op(O.QUERY, QUERY_PARAMS[p].code);
    t.equal(result, R.OK, `${p} ok`);
    return rets[0]! + rets[1]! * 2 ** 32;
  };
  t.equal(q('VERSION'), (MDGPU_CONTRACT_MAJOR << 16) | MDGPU_CONTRACT_MINOR);
  t.equal(q('APERTURE_SIZE'), APERTURE);
  t.equal(q('ALLOC_BASE'), ALLOC_BASE);
  t.equal(q('QUOTA'), 0x40000);
  t.equal(q('USED'), 0);
  t.equal(q('MIN_ALIGN'), 4096);
  t.equal(q('LARGEST_FREE'), APERTURE - ALLOC_BASE);
  t.equal(q('CONTEXTS'), 0);
  t.ok(q('MAX_CONTEXTS') > 0 && q('MAX_BUFFERS') > 0);
  t.equal(op(O.QUERY, 999).result, R.BAD_PARAM);
  t.end();
});

t.test('hostile mailbox arguments get their result code and change nothing', (t) => {
  const { dev, op } = setup({ quota: 0x10000, maxContexts: 2, maxBuffers: 3 });
  const ctx = op(O.CTX_CREATE).rets[0]!;
  const other = op(O.CTX_CREATE).rets[0]!;
  t.equal(op(O.CTX_CREATE).result, R.TOO_MANY, 'context limit');
  const bo = op(O.BO_ALLOC, ctx, 0x1000, 0, 0, 0).rets[0]!;
  const usedBefore = dev.memory.used;
  const cases: [string, number, number[], number][] = [
    ['unknown opcode', 0x7777, [], R.UNKNOWN_OPCODE],
    ['reserved queue opcode', 0x0150, [], R.UNKNOWN_OPCODE],
    ['reserved kernel opcode', 0x0250, [], R.UNKNOWN_OPCODE],
    ['size 0', O.BO_ALLOC, [ctx, 0, 0, 0, 0], R.BAD_SIZE],
    ['size beyond the aperture', O.BO_ALLOC, [ctx, 0, 1, 0, 0], R.BAD_SIZE],
    ['size 2^64-1', O.BO_ALLOC, [ctx, 0xffffffff, 0xffffffff, 0, 0], R.BAD_SIZE],
    ['over quota', O.BO_ALLOC, [ctx, 0x10000, 0, 0, 0], R.OVER_QUOTA],
    ['unknown flags', O.BO_ALLOC, [ctx, 0x1000, 0, 0, 2], R.BAD_FLAGS],
    ['alignment too small', O.BO_ALLOC, [ctx, 0x1000, 0, 5, 0], R.BAD_FLAGS],
    ['alignment too large', O.BO_ALLOC, [ctx, 0x1000, 0, 31, 0], R.BAD_FLAGS],
    ['context 0', O.BO_ALLOC, [0, 0x1000, 0, 0, 0], R.BAD_CONTEXT],
    ['unknown context', O.BO_ALLOC, [12345, 0x1000, 0, 0, 0], R.BAD_CONTEXT],
    ["free of another context's buffer", O.BO_FREE, [other, bo], R.BAD_HANDLE],
    ["info of another context's buffer", O.BO_INFO, [other, bo], R.BAD_HANDLE],
    ['unknown handle', O.BO_FREE, [ctx, 999], R.BAD_HANDLE],
    ['destroy unknown context', O.CTX_DESTROY, [777], R.BAD_CONTEXT],
  ];
  for (const [what, code, args, expected] of cases) {
    const { result, rets } = op(code, ...args, ...new Array(8 - args.length).fill(0));
    t.equal(result, expected, what);
    t.same(rets, [0, 0, 0, 0], `${what}: no results`);
  }
  t.equal(dev.memory.used, usedBefore, 'nothing allocated by failures');
  t.equal(op(O.BO_FREE, ctx, bo).result, R.OK);
  t.equal(op(O.BO_FREE, ctx, bo).result, R.BAD_HANDLE, 'double free');
  op(O.BO_ALLOC, ctx, 0x1000, 0, 0, 0);
  op(O.BO_ALLOC, ctx, 0x1000, 0, 0, 0);
  op(O.BO_ALLOC, other, 0x1000, 0, 0, 0);
  t.equal(op(O.BO_ALLOC, other, 0x1000, 0, 0, 0).result, R.TOO_MANY, 'buffer limit');
  t.equal(dev.mailboxStats.failures > 10, true, 'failures counted');
  t.end();
});

t.test('NO_MEMORY when fragmented, even under quota', (t) => {
  const { op } = setup();
  const ctx = op(O.CTX_CREATE).rets[0]!;
  const handles: number[] = [];
  for (let i = 0; i < (APERTURE - ALLOC_BASE) / 0x1000; i++) handles.push(op(O.BO_ALLOC, ctx, 0x1000, 0, 0, 0).rets[0]!);
  t.equal(op(O.BO_ALLOC, ctx, 0x1000, 0, 0, 0).result, R.OVER_QUOTA, 'aperture full: the default quota is the whole aperture');
  for (let i = 0; i < handles.length; i += 2) op(O.BO_FREE, ctx, handles[i]!);
  t.equal(op(O.BO_ALLOC, ctx, 0x2000, 0, 0, 0).result, R.NO_MEMORY, 'half free but no 8 KiB hole');
  t.equal(op(O.BO_ALLOC, ctx, 0x1000, 0, 0, 0).result, R.OK);
  t.end();
});

t.test('completion raises the MAILBOX interrupt source; reset clears everything', (t) => {
  const { dev, op, r, w } = setup();
  w('IRQ_ENABLE', 1);
  const ctx = op(O.CTX_CREATE).rets[0]!;
  t.equal(r('IRQ_STATUS') & 1, 1, 'MAILBOX pending after completion');
  op(O.BO_ALLOC, ctx, 0x4000, 0, 0, 0);
  dev.pci.reset();
  t.equal(dev.memory.contextCount, 0);
  t.equal(dev.memory.bufferCount, 0);
  t.equal(dev.memory.used, 0);
  t.equal(r('MBOX_STATUS'), 0);
  t.equal(op(O.BO_ALLOC, ctx, 0x1000, 0, 0, 0).result, R.BAD_CONTEXT, 'contexts do not survive a reset');
  t.end();
});
