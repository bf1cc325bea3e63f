/**
 * Contract 1.3 in the device model, against the reference backend: the capability record
 * (CAPS_READ), kernel records (KERNEL_CREATE2: entry point, specialization, reflected layout),
 * DISPATCH2's descriptors and base, DISPATCH_INDIRECT's arguments read when due, UPDATE, and
 * byte-granular COPY — each accepted as the contract says and refused one bad field at a time.
 */
import t from 'tap';
import { setLogSink } from '../../src/log.js';
import { Caps } from '../../src/vgpu/caps.js';
import { encodeKernelRecord, encodeSubmission, type CommandSpec } from '../../src/vgpu/command-builder.js';
import type { SUBMIT_ERRORS } from '../../src/vgpu/commands.js';
import { MdgpuDevice } from '../../src/vgpu/device.js';
import { KERNEL_STATES, MAILBOX_OPS, MAILBOX_RESULTS, QUERY_PARAMS } from '../../src/vgpu/mailbox-ops.js';
import { FakeHost } from '../helpers/fake-host.js';
import { HostGuest } from '../helpers/host-guest.js';
import { ReferenceExecutor } from '../helpers/reference-executor.js';

setLogSink(() => {});
const R = MAILBOX_RESULTS;
const SPIRV = new Uint8Array([0x03, 0x02, 0x23, 0x07, ...new Array(60).fill(0)]);

function setup() {
  let backend: ReferenceExecutor | null = null;
  const dev = new MdgpuDevice({
    name: 'c13',
    apertureSize: 4 << 20,
    host: new FakeHost(),
    executor: {
      run: (c, m, signal) => backend!.run(c, m, signal),
      buildKernel: (request) => backend!.buildKernel(request),
      destroyKernel: () => backend!.destroyKernel(),
      caps: (limits) => backend!.caps(limits),
    },
  });
  backend = new ReferenceExecutor(dev.aperture);
  dev.queues.graceMs = 1;
  const guest = new HostGuest(dev);
  return { dev, backend, guest };
}

/** KERNEL_CREATE2 of `record` placed in a fresh buffer; the create result and, if created, its build's outcome. */
async function create2(s: ReturnType<typeof setup>, record: Uint8Array, size = record.length) {
  const bo = s.guest.alloc(Math.max(record.length, 0x1000));
  s.dev.aperture.set(record, bo.offset);
  const r = s.guest.op(MAILBOX_OPS.KERNEL_CREATE2.code, s.guest.ctx, bo.handle, 0, size);
  if (r.result !== 0) return { result: r.result, kernel: 0, state: -1 };
  const settled = await s.guest.kernelSettled(r.ret);
  return { result: 0, kernel: r.ret, state: settled.state, reason: settled.result };
}

t.test('CAPS_READ writes the capability record; QUERY CAPS_SIZE gives its size', (t) => {
  const s = setup();
  const bo = s.guest.alloc(0x1000);
  t.equal(s.guest.op(MAILBOX_OPS.QUERY.code, QUERY_PARAMS.CAPS_SIZE.code).ret, Caps.size, `CAPS_SIZE ${Caps.size}`);
  const r = s.guest.op(MAILBOX_OPS.CAPS_READ.code, s.guest.ctx, bo.handle, 16);
  t.equal(r.result, 0);
  t.equal(r.ret, Caps.size, 'returns the size written');
  const caps = Caps.decode(s.dev.aperture, bo.offset + 16);
  t.equal(caps.version, 1);
  t.equal(caps.size, Caps.size);
  t.equal(caps.maxDispatchDescriptors, s.dev.queues.limits.maxDescriptors, 'limits as the validator checks them');
  t.equal(caps.minStorageBufferOffsetAlignment, s.dev.queues.limits.bindingAlignment);
  t.equal(caps.maxMemoryAllocationSize, BigInt(s.dev.memory.quota), "the largest buffer is the VM's quota");
  t.equal(caps.timestampPeriodBits, 0x3f80_0000, 'TIMESTAMP writes ns: period 1.0');
  t.equal(s.guest.op(MAILBOX_OPS.CAPS_READ.code, s.guest.ctx, bo.handle, 0x1000 - 100).result, R.BAD_SIZE.code, 'does not fit: BAD_SIZE');
  t.equal(s.guest.op(MAILBOX_OPS.CAPS_READ.code, s.guest.ctx, 999, 0).result, R.BAD_HANDLE.code, 'not a buffer of the context');
  const bare = new MdgpuDevice({ name: 'bare', apertureSize: 1 << 20, host: new FakeHost() });
  const g = new HostGuest(bare);
  const b = g.alloc(0x1000);
  t.equal(g.op(MAILBOX_OPS.CAPS_READ.code, g.ctx, b.handle, 0).result, R.UNSUPPORTED.code, 'no executor: UNSUPPORTED');
  bare.close();
  s.dev.close();
  t.end();
});

t.test('KERNEL_CREATE2: entry point, specialization and the reflected layout reach the backend', async (t) => {
  const s = setup();
  s.backend.layout = [
    { set: 0, binding: 0, type: 'storage', count: 4 },
    { set: 1, binding: 2, type: 'uniform', count: 1 },
  ];
  const data = new Uint8Array([1, 0, 0, 0, 64, 0, 0, 0]);
  const record = encodeKernelRecord({
    spirv: SPIRV,
    pushBytes: 16,
    entryPoint: 'scan_main',
    spec: {
      entries: [
        { constantId: 7, offset: 0, size: 4 },
        { constantId: 100, offset: 4, size: 4 },
      ],
      data,
    },
    dispatchBase: true,
  });
  const k = await create2(s, record, 64);
  t.same([k.result, k.state], [0, KERNEL_STATES.READY.code], 'built');
  const req = s.backend.requests.at(-1)!;
  t.equal(req.entryPoint, 'scan_main');
  t.same(req.specialization?.entries, [
    { constantId: 7, offset: 0, size: 4 },
    { constantId: 100, offset: 4, size: 4 },
  ]);
  t.same([...(req.specialization?.data ?? [])], [...data]);
  t.equal(req.pushConstantBytes, 16);
  t.equal(req.dispatchBase, true);
  t.equal(req.bindings, undefined, 'the layout is reflected, not given');
  const ready = s.dev.queues.kernels.ready(s.guest.ctx, k.kernel)!;
  t.same(ready.layout, s.backend.layout, 'the layout the host reflected is the kernel shape the validator checks');
  t.equal(ready.bindings, -1, 'not a 1.1 layout: DISPATCH (1.1) cannot use it');
  s.dev.close();
});

t.test('KERNEL_CREATE2 refuses bad records one field at a time', async (t) => {
  const s = setup();
  const ok = () =>
    encodeKernelRecord({ spirv: SPIRV, pushBytes: 8, entryPoint: 'main', spec: { entries: [{ constantId: 1, offset: 0, size: 4 }], data: new Uint8Array(4) } });
  const edit = (f: (v: DataView, r: Uint8Array) => void) => {
    const r = ok();
    f(new DataView(r.buffer), r);
    return r;
  };
  const cases: [string, Uint8Array, number, number?][] = [
    ['record too small', ok(), R.BAD_SIZE.code, 32],
    ['unknown flags', edit((v) => v.setUint32(0, 2, true)), R.BAD_FLAGS.code],
    ['push bytes not a multiple of 4', edit((v) => v.setUint32(4, 6, true)), R.BAD_FLAGS.code],
    ['push bytes above 128', edit((v) => v.setUint32(4, 132, true)), R.BAD_FLAGS.code],
    ['SPIR-V past the buffer', edit((v) => v.setBigUint64(16, 0xfff0n, true)), R.BAD_SIZE.code],
    ['SPIR-V without the magic', edit((_v, r) => r.fill(0, 256, 260)), R.BAD_KERNEL.code],
    ['reserved field set', edit((v) => v.setBigUint64(56, 1n, true)), R.BAD_FLAGS.code],
    ['entry point with a NUL', edit((_v, r) => (r[256 + 64] = 0)), R.BAD_FLAGS.code],
    ['entry point longer than 255 bytes', edit((v) => v.setUint32(12, 300, true)), R.BAD_SIZE.code],
    ['spec constant past the data', edit((v) => v.setUint32(256 + 64 + 8 + 4, 4, true)), R.BAD_FLAGS.code],
    ['spec constant of 3 bytes', edit((v) => v.setUint32(256 + 64 + 8 + 8, 3, true)), R.BAD_FLAGS.code],
  ];
  for (const [what, record, expected, size] of cases) {
    const r = await create2(s, record, size ?? 64);
    t.equal(r.result, expected, what);
  }
  const two = encodeKernelRecord({
    spirv: SPIRV,
    pushBytes: 0,
    spec: {
      entries: [
        { constantId: 1, offset: 0, size: 4 },
        { constantId: 1, offset: 4, size: 4 },
      ],
      data: new Uint8Array(8),
    },
  });
  t.equal((await create2(s, two, 64)).result, R.BAD_FLAGS.code, 'the same constant twice');
  t.equal(s.dev.queues.kernelCount, 0, 'nothing was created by a refused record');
  s.dev.close();
});

/** A context with a 1.3 kernel of `layout`, a queue, and buffers. */
async function withKernel(layout: { set: number; binding: number; type: 'storage' | 'uniform'; count: number }[], dispatchBase = false) {
  const s = setup();
  s.backend.layout = layout;
  const k = await create2(s, encodeKernelRecord({ spirv: SPIRV, pushBytes: 8, dispatchBase }), 64);
  const buf = s.guest.alloc(0x10000);
  const publish = s.guest.queue(0x40000);
  const run = async (commands: CommandSpec[]) => {
    const before = s.guest.done.length;
    publish(encodeSubmission(commands));
    await s.guest.completions(before + 1);
    return s.guest.done[before];
  };
  return { ...s, kernel: k.kernel, buf, run };
}

t.test('DISPATCH2: descriptors in several sets, arrays and uniform buffers; a base; zero-sized dispatches', async (t) => {
  const s = await withKernel(
    [
      { set: 0, binding: 0, type: 'storage', count: 4 },
      { set: 2, binding: 1, type: 'uniform', count: 1 },
    ],
    true,
  );
  const d = (over: Partial<{ set: number; binding: number; index: number; type: 'storage' | 'uniform'; offset: number; range: number }> = {}) => ({
    set: 0,
    binding: 0,
    index: 0,
    type: 'storage' as const,
    buffer: s.buf.handle,
    offset: 0,
    range: 256,
    ...over,
  });
  const push = new Uint8Array(8);
  const ok = await s.run([
    {
      op: 'dispatch2',
      kernel: s.kernel,
      base: [1, 2, 0],
      groups: [3, 1, 1],
      descriptors: [d(), d({ index: 3, offset: 0x1000 }), d({ set: 2, binding: 1, type: 'uniform', offset: 0x2000, range: 64 })],
      push,
    },
  ]);
  t.equal(ok, null, 'a valid DISPATCH2 runs');
  t.same(s.backend.dispatches.at(-1), { kernel: 1, base: [1, 2, 0], groups: [3, 1, 1], descriptors: 3 }, 'with its base, groups and descriptors');
  const count = s.backend.dispatches.length;
  t.equal(await s.run([{ op: 'dispatch2', kernel: s.kernel, groups: [0, 1, 1], descriptors: [d()], push }]), null, 'zero groups: valid...');
  t.equal(s.backend.dispatches.length, count, '...and nothing reaches the device');
  const refused: [string, CommandSpec, keyof typeof SUBMIT_ERRORS][] = [
    [
      'a binding the kernel does not declare',
      { op: 'dispatch2', kernel: s.kernel, groups: [1, 1, 1], descriptors: [d({ binding: 5 })], push },
      'BAD_DESCRIPTOR',
    ],
    ['a set the kernel does not use', { op: 'dispatch2', kernel: s.kernel, groups: [1, 1, 1], descriptors: [d({ set: 1 })], push }, 'BAD_DESCRIPTOR'],
    ['the wrong type', { op: 'dispatch2', kernel: s.kernel, groups: [1, 1, 1], descriptors: [d({ type: 'uniform' })], push }, 'BAD_DESCRIPTOR'],
    ['past its array', { op: 'dispatch2', kernel: s.kernel, groups: [1, 1, 1], descriptors: [d({ index: 4 })], push }, 'BAD_DESCRIPTOR'],
    ['the same descriptor twice', { op: 'dispatch2', kernel: s.kernel, groups: [1, 1, 1], descriptors: [d(), d({ offset: 0x100 })], push }, 'BAD_DESCRIPTOR'],
    [
      'a uniform offset off its alignment',
      { op: 'dispatch2', kernel: s.kernel, groups: [1, 1, 1], descriptors: [d({ set: 2, binding: 1, type: 'uniform', offset: 4, range: 64 })], push },
      'BAD_ALIGNMENT',
    ],
    [
      'a uniform range above the limit',
      { op: 'dispatch2', kernel: s.kernel, groups: [1, 1, 1], descriptors: [d({ set: 2, binding: 1, type: 'uniform', range: 0x10000 + 16 })], push },
      'OUT_OF_BOUNDS',
    ],
    [
      'a range past the buffer',
      { op: 'dispatch2', kernel: s.kernel, groups: [1, 1, 1], descriptors: [d({ offset: 0xff00, range: 0x200 })], push },
      'OUT_OF_BOUNDS',
    ],
    [
      'push constants of the wrong size',
      { op: 'dispatch2', kernel: s.kernel, groups: [1, 1, 1], descriptors: [], push: new Uint8Array(4) },
      'BAD_PUSH_CONSTANTS',
    ],
    ['groups above the limit', { op: 'dispatch2', kernel: s.kernel, groups: [70000, 1, 1], descriptors: [], push }, 'BAD_WORKGROUPS'],
    ['base + groups overflowing', { op: 'dispatch2', kernel: s.kernel, base: [0xffff_ffff, 0, 0], groups: [2, 1, 1], descriptors: [], push }, 'BAD_WORKGROUPS'],
    ['a kernel of 1.1 (DISPATCH) with it', { op: 'dispatch', kernel: s.kernel, groups: [1, 1, 1], bindings: [], push }, 'BAD_BINDINGS'],
  ];
  for (const [what, spec, expected] of refused) t.equal(await s.run([spec]), expected, what);
  s.dev.close();
});

t.test('DISPATCH2 with a base needs a kernel built for it', async (t) => {
  const s = await withKernel([], false);
  t.equal(await s.run([{ op: 'dispatch2', kernel: s.kernel, base: [1, 0, 0], groups: [1, 1, 1], descriptors: [], push: new Uint8Array(8) }]), 'BAD_WORKGROUPS');
  t.equal(await s.run([{ op: 'dispatch2', kernel: s.kernel, groups: [1, 1, 1], descriptors: [], push: new Uint8Array(8) }]), null, 'base 0 is fine');
  s.dev.close();
});

t.test('DISPATCH_INDIRECT reads its counts when it is due (after earlier commands), checks them, skips zeros', async (t) => {
  const s = await withKernel([]);
  const push = new Uint8Array(8);
  const args = { buffer: s.buf.handle, offset: 0x800 };
  // The counts are written by an earlier command of the same submission.
  const ok = await s.run([
    { op: 'update', dst: args, data: new Uint8Array([5, 0, 0, 0, 2, 0, 0, 0, 1, 0, 0, 0]).slice(0, 12) },
    { op: 'dispatchIndirect', kernel: s.kernel, args, descriptors: [], push },
  ]);
  t.equal(ok, null);
  t.same(s.backend.dispatches.at(-1)?.groups, [5, 2, 1], 'the counts the UPDATE wrote');
  const count = s.backend.dispatches.length;
  t.equal(
    await s.run([
      { op: 'fill', dst: args, size: 12, value: 0 },
      { op: 'dispatchIndirect', kernel: s.kernel, args, descriptors: [], push },
    ]),
    null,
  );
  t.equal(s.backend.dispatches.length, count, 'zero counts: nothing runs');
  t.equal(
    await s.run([
      { op: 'fill', dst: args, size: 12, value: 0x10_0000 },
      { op: 'dispatchIndirect', kernel: s.kernel, args, descriptors: [], push },
    ]),
    'BAD_INDIRECT',
  );
  t.equal(await s.run([{ op: 'dispatchIndirect', kernel: s.kernel, args: { buffer: s.buf.handle, offset: 0xfffc }, descriptors: [], push }]), 'OUT_OF_BOUNDS');
  t.equal(await s.run([{ op: 'dispatchIndirect', kernel: s.kernel, args: { buffer: s.buf.handle, offset: 2 }, descriptors: [], push }]), 'BAD_ALIGNMENT');
  s.dev.close();
});

t.test('UPDATE writes inline data in order; COPY is byte-granular', async (t) => {
  const s = await withKernel([]);
  const data = new Uint8Array(64).map((_, i) => i + 1);
  t.equal(await s.run([{ op: 'update', dst: { buffer: s.buf.handle, offset: 0x100 }, data }]), null);
  t.same([...s.dev.aperture.subarray(s.buf.offset + 0x100, s.buf.offset + 0x140)], [...data], 'written');
  t.equal(
    await s.run([{ op: 'copy', src: { buffer: s.buf.handle, offset: 0x101 }, dst: { buffer: s.buf.handle, offset: 0x203 }, size: 7 }]),
    null,
    'an unaligned COPY runs',
  );
  t.same([...s.dev.aperture.subarray(s.buf.offset + 0x203, s.buf.offset + 0x20a)], [2, 3, 4, 5, 6, 7, 8], 'and copies those bytes');
  t.equal(await s.run([{ op: 'update', dst: { buffer: s.buf.handle, offset: 2 }, data: new Uint8Array(4) }]), 'BAD_ALIGNMENT');
  t.equal(await s.run([{ op: 'update', dst: { buffer: s.buf.handle, offset: 0 }, data: new Uint8Array(0) }]), 'TOO_LARGE', 'empty');
  t.equal(await s.run([{ op: 'update', dst: { buffer: s.buf.handle, offset: 0 }, data: new Uint8Array(65540) }]), 'TOO_LARGE', 'above 64 KiB');
  t.equal(await s.run([{ op: 'update', dst: { buffer: s.buf.handle, offset: 0xfff0 }, data: new Uint8Array(32) }]), 'OUT_OF_BOUNDS');
  s.dev.close();
});
