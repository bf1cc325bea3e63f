import t from 'tap';
import { MdgpuDevice } from '../../src/vgpu/device.js';
import { KERNEL_STATES, MAILBOX_OPS, MAILBOX_RESULTS, QUERY_PARAMS } from '../../src/vgpu/mailbox-ops.js';
import { KERNEL_PIPELINE_CHARGE } from '../../src/vgpu/kernels.js';
import { QueueControl, QUEUE_CONTROL_SIZE } from '../../src/vgpu/queue-ring.js';
import { encodeSubmission } from '../../src/vgpu/command-builder.js';
import { SUBMIT_ERRORS } from '../../src/vgpu/commands.js';
import { setLogSink } from '../../src/log.js';
import { FakeHost } from '../helpers/fake-host.js';
import { ReferenceExecutor, referenceCaps } from '../helpers/reference-executor.js';
import { HostGuest } from '../helpers/host-guest.js';

setLogSink(() => {});
const APERTURE = 4 << 20;
const RING = 0x4000;

async function setup() {
  const host = new FakeHost();
  let backend: ReferenceExecutor | null = null;
  const dev = new MdgpuDevice({
    name: 'q',
    apertureSize: APERTURE,
    host,
    executor: {
      run: (c, m, signal) => backend!.run(c, m, signal),
      buildKernel: (request) => backend!.buildKernel(request),
      destroyKernel: () => backend!.destroyKernel(),
      caps: (limits) => backend!.caps(limits),
    },
  });
  backend = new ReferenceExecutor(dev.aperture);
  dev.queues.graceMs = 2;
  const guest = new HostGuest(dev);
  const w = (name: string, v: number) => guest.write(name, v);
  const r = (name: string) => guest.read(name);
  const op = (code: number, ...args: number[]) => guest.op(code, ...args);
  const ctx = guest.ctx;
  const alloc = (size: number) => guest.alloc(size);
  const ring = alloc(QUEUE_CONTROL_SIZE + RING);
  const data = alloc(0x10000);
  const created = op(MAILBOX_OPS.QUEUE_CREATE.code, ctx, ring.handle, 0);
  const view = new DataView(dev.aperture.buffer);
  const control = (field: keyof typeof QueueControl.fields) => {
    const f = QueueControl.fields[field];
    return f.size === 8 ? view.getBigUint64(ring.offset + f.offset, true) : BigInt(view.getUint32(ring.offset + f.offset, true));
  };
  /** The guest's side: copy into the ring at tail, publish, ring only if asked to. */
  let tail = 0n;
  const doorbells: number[] = [];
  const publish = (bytes: Uint8Array, opts: { forceTail?: bigint } = {}) => {
    for (let i = 0; i < bytes.length; i++) dev.aperture[ring.offset + QUEUE_CONTROL_SIZE + Number((tail + BigInt(i)) % BigInt(RING))] = bytes[i]!;
    tail = opts.forceTail ?? tail + BigInt(bytes.length);
    view.setBigUint64(ring.offset + QueueControl.fields.tail.offset, tail, true);
    if (control('doorbellNeeded') === 1n) {
      doorbells.push(created.ret);
      w('QUEUE_DOORBELL', created.ret);
    }
  };
  const done: (string | null)[] = [];
  let waiter: (() => void) | null = null;
  dev.queues.onSubmissionDone = (_q, error) => {
    done.push(error);
    waiter?.();
  };
  const completions = async (n: number) => {
    while (done.length < n) await new Promise<void>((resolve) => (waiter = resolve));
  };
  return { dev, backend: backend!, guest, op, r, w, ctx, alloc, ring, data, queue: created, control, publish, completions, done, doorbells, view };
}

t.test('a queue runs submissions and writes fences; the first one rings, later ones during polling do not', async (t) => {
  const s = await setup();
  t.equal(s.queue.result, MAILBOX_RESULTS.OK.code);
  t.equal(s.control('doorbellNeeded'), 1n, 'a new queue sleeps');
  const fence = { dst: { buffer: s.data.handle, offset: 0 }, value: 1n, irq: true };
  s.w('IRQ_ENABLE', 0xff);
  s.publish(encodeSubmission([{ op: 'fill', dst: { buffer: s.data.handle, offset: 0x100 }, size: 0x100, value: 0x01020304 }], fence));
  // Published while the device polls: no doorbell needed.
  s.publish(
    encodeSubmission([{ op: 'copy', src: { buffer: s.data.handle, offset: 0x100 }, dst: { buffer: s.data.handle, offset: 0x800 }, size: 0x100 }], {
      ...fence,
      value: 2n,
    }),
  );
  await s.completions(2);
  t.same(s.done, [null, null]);
  t.equal(s.doorbells.length, 1, 'one doorbell for two submissions');
  t.equal(s.view.getBigUint64(s.data.offset, true), 2n, 'fence value written');
  t.equal(s.view.getUint32(s.data.offset + 0x800, true), 0x01020304, 'COPY after FILL, in order');
  t.equal(s.control('completed'), 2n);
  t.equal(s.control('head'), s.control('tail'), 'everything consumed');
  t.ok(s.r('IRQ_STATUS') & 0x2, 'FENCE interrupt source raised');
  // The grace period is 5 ms; a loaded machine may take longer to get there, so wait for it.
  for (let i = 0; i < 300 && s.control('doorbellNeeded') !== 1n; i++) await new Promise((r) => setTimeout(r, 10));
  t.equal(s.control('doorbellNeeded'), 1n, 'after the grace period the queue asks for a doorbell again');
  s.publish(encodeSubmission([{ op: 'barrier' }], { ...fence, value: 3n }));
  await s.completions(3);
  t.equal(s.doorbells.length, 2, 'an idle queue costs one doorbell');
});

t.test('a submission that wraps around the ring end runs', async (t) => {
  const s = await setup();
  const pad = encodeSubmission([{ op: 'nop', length: RING - 48 - 40 }]);
  s.publish(pad);
  await s.completions(1);
  s.publish(
    encodeSubmission(
      [
        { op: 'fill', dst: { buffer: s.data.handle, offset: 0 }, size: 16, value: 7 },
        { op: 'fill', dst: { buffer: s.data.handle, offset: 16 }, size: 16, value: 9 },
      ],
      { dst: { buffer: s.data.handle, offset: 64 }, value: 5n },
    ),
  );
  await s.completions(2);
  t.same(s.done, [null, null]);
  t.equal(s.view.getUint32(s.data.offset + 16, true), 9);
  t.equal(s.view.getBigUint64(s.data.offset + 64, true), 5n);
});

t.test('a hostile submission fails with an error fence and record; the next valid one runs', async (t) => {
  const s = await setup();
  s.w('IRQ_ENABLE', 0xff);
  const fence = (value: bigint) => ({ dst: { buffer: s.data.handle, offset: 8 }, value });
  s.publish(encodeSubmission([{ op: 'copy', src: { buffer: 999, offset: 0 }, dst: { buffer: s.data.handle, offset: 0 }, size: 4 }], fence(10n)));
  s.publish(
    encodeSubmission([{ op: 'fill', dst: { buffer: s.data.handle, offset: 0x40 }, size: 4, value: 0xabcd }], {
      dst: { buffer: s.data.handle, offset: 16 },
      value: 11n,
    }),
  );
  await s.completions(2);
  t.same(s.done, ['BAD_BUFFER', null]);
  t.equal(s.view.getBigUint64(s.data.offset + 8, true), 10n | (1n << 63n), 'error fence: value with bit 63');
  t.equal(s.view.getBigUint64(s.data.offset + 16, true), 11n, 'the next submission ran');
  t.equal(s.control('errors'), 1n);
  t.equal(s.control('errorCode'), BigInt(SUBMIT_ERRORS.BAD_BUFFER.code));
  t.equal(s.control('errorAt'), 32n, 'offending command right after the 32-byte SUBMIT header');
  t.ok(s.r('IRQ_STATUS') & 0x4, 'ERROR interrupt source raised');
});

t.test('garbled lengths skip what was published; a bad tail stops consumption until fixed', async (t) => {
  const s = await setup();
  const bad = encodeSubmission([{ op: 'barrier' }]);
  new DataView(bad.buffer).setUint32(4, 12, true);
  s.publish(bad);
  await s.completions(1);
  t.same(s.done, ['BAD_LENGTH']);
  t.equal(s.control('head'), s.control('tail'), 'skipped to tail');
  const ok = encodeSubmission([{ op: 'barrier' }], { dst: { buffer: s.data.handle, offset: 0 }, value: 1n });
  s.publish(ok, { forceTail: 0n }); // tail behind head
  // Seen at the next look at the ring (while the queue polls, or on the doorbell): wait for it.
  for (let i = 0; i < 300 && s.control('state') !== BigInt(SUBMIT_ERRORS.BAD_RING.code); i++) await new Promise((r) => setTimeout(r, 10));
  t.equal(s.control('state'), BigInt(SUBMIT_ERRORS.BAD_RING.code), 'BAD_RING reported');
  t.equal(s.done.length, 1, 'nothing consumed');
});

t.test('WAIT: satisfied by another write; timeout fails the submission', async (t) => {
  const s = await setup();
  const flag = { buffer: s.data.handle, offset: 0x200 };
  s.publish(
    encodeSubmission([
      { op: 'wait', src: flag, value: 1n, timeoutNs: 2_000_000_000n },
      { op: 'fill', dst: { buffer: s.data.handle, offset: 0x300 }, size: 4, value: 1 },
    ]),
  );
  await new Promise((r) => setTimeout(r, 10));
  t.equal(s.done.length, 0, 'waiting');
  s.view.setBigUint64(s.data.offset + 0x200, 1n, true);
  await s.completions(1);
  t.same(s.done, [null]);
  s.publish(encodeSubmission([{ op: 'wait', src: flag, value: 5n, timeoutNs: 5_000_000n }]));
  await s.completions(2);
  t.same(s.done, [null, 'WAIT_TIMEOUT']);
});

t.test('buffers in flight stay allocated when freed; execution failure is reported', async (t) => {
  const s = await setup();
  let release!: () => void;
  s.backend.gate = new Promise((r) => (release = r));
  const victim = s.alloc(0x1000);
  s.publish(encodeSubmission([{ op: 'fill', dst: { buffer: victim.handle, offset: 0 }, size: 0x1000, value: 0x55 }]));
  await new Promise((r) => setTimeout(r, 5));
  t.equal(s.op(MAILBOX_OPS.BO_FREE.code, s.ctx, victim.handle).result, 0, 'guest frees it while in flight');
  const next = s.alloc(0x1000);
  t.not(next.offset, victim.offset, 'its range is not handed out while the device uses it');
  release();
  s.backend.gate = null;
  await s.completions(1);
  const again = s.alloc(0x1000);
  t.equal(again.offset, victim.offset, 'released once the submission completed');
  t.ok(
    s.dev.aperture.subarray(again.offset, again.offset + 0x1000).every((b) => b === 0),
    'and zeroed',
  );
  s.backend.fail = 'device lost';
  s.publish(encodeSubmission([{ op: 'barrier' }]));
  await s.completions(2);
  t.same(s.done, [null, 'EXEC_FAILED']);
  s.backend.fail = null;
  s.backend.loseContext = true;
  const fences = s.alloc(0x1000);
  s.publish(encodeSubmission([{ op: 'barrier' }], { dst: { buffer: fences.handle, offset: 0 }, value: 1n }));
  s.publish(encodeSubmission([{ op: 'barrier' }], { dst: { buffer: fences.handle, offset: 8 }, value: 2n }));
  await s.completions(4);
  t.same(s.done.slice(2), ['CONTEXT_LOST', 'CONTEXT_LOST'], 'a batch past the time limit loses the context; its later work fails');
  t.equal(s.view.getBigUint64(fences.offset, true), 1n | (1n << 63n), 'the lost batch: error fence');
  t.equal(s.view.getBigUint64(fences.offset + 8, true), 2n | (1n << 63n), 'a later submission of the lost context: error fence too, so its waiter wakes');
  t.ok(s.dev.queues.isContextLost(s.ctx));
  t.same(s.backend.metas[0], { ctx: s.ctx, queue: s.queue.ret, priority: 0 }, 'batches carry their context, queue and priority');
});

t.test('kernels and queue mailbox errors', async (t) => {
  const s = await setup();
  const spv = s.alloc(0x1000);
  s.view.setUint32(spv.offset, 0x07230203, true);
  const k = s.op(MAILBOX_OPS.KERNEL_CREATE.code, s.ctx, spv.handle, 0, 64, 2, 8);
  t.equal(k.result, 0, 'kernel created');
  t.same(await s.guest.kernelSettled(k.ret), { state: KERNEL_STATES.READY.code, result: 0 }, 'and built');
  s.publish(
    encodeSubmission([
      {
        op: 'dispatch',
        kernel: k.ret,
        groups: [2, 1, 1],
        bindings: [
          { buffer: s.data.handle, offset: 0, size: 64 },
          { buffer: s.data.handle, offset: 64, size: 64 },
        ],
        push: new Uint8Array(8),
      },
    ]),
  );
  await s.completions(1);
  t.same(s.backend.dispatches, [{ kernel: 1, base: [0, 0, 0], groups: [2, 1, 1], descriptors: 2 }], 'dispatched with the backend kernel id');
  const R = MAILBOX_RESULTS;
  t.equal(s.op(MAILBOX_OPS.KERNEL_CREATE.code, s.ctx, spv.handle, 4, 64, 2, 8).result, R.BAD_KERNEL.code, 'bad magic');
  t.equal(s.op(MAILBOX_OPS.KERNEL_CREATE.code, s.ctx, spv.handle, 0, 0x2000, 2, 8).result, R.BAD_SIZE.code, 'past the buffer');
  t.equal(s.op(MAILBOX_OPS.KERNEL_CREATE.code, s.ctx, spv.handle, 0, 64, 17, 8).result, R.BAD_FLAGS.code, 'too many bindings');
  const refused = s.op(MAILBOX_OPS.KERNEL_CREATE.code, s.ctx, spv.handle, 0, 8, 2, 8);
  t.equal(refused.result, 0, 'a kernel the backend will refuse: accepted for building');
  t.same(await s.guest.kernelSettled(refused.ret), { state: KERNEL_STATES.FAILED.code, result: R.BAD_KERNEL.code }, 'then FAILED with BAD_KERNEL');
  t.equal(s.op(MAILBOX_OPS.KERNEL_DESTROY.code, s.ctx, refused.ret).result, 0, 'a failed kernel is destroyed like any other');
  t.equal(s.op(MAILBOX_OPS.QUEUE_CREATE.code, s.ctx, s.ring.handle, 0).result, R.BUSY.code, 'buffer already a queue');
  t.equal(s.op(MAILBOX_OPS.QUEUE_CREATE.code, s.ctx, spv.handle, 0).result, R.BAD_SIZE.code, 'no room for a ring');
  t.equal(s.op(MAILBOX_OPS.QUEUE_CREATE.code, s.ctx, s.data.handle, 9).result, R.BAD_FLAGS.code, 'priority');
  t.equal(s.op(MAILBOX_OPS.QUEUE_DESTROY.code, s.ctx, 99).result, R.BAD_HANDLE.code);
  t.equal(s.op(MAILBOX_OPS.KERNEL_DESTROY.code, s.ctx, 99).result, R.BAD_HANDLE.code);
  t.equal(s.op(MAILBOX_OPS.QUEUE_DESTROY.code, 77, s.queue.ret).result, R.BAD_CONTEXT.code);
  t.equal(s.op(MAILBOX_OPS.BO_FREE.code, s.ctx, s.ring.handle).result, 0, 'freeing the ring buffer detaches it...');
  t.equal(s.dev.memory.isPinned(s.ring.handle), true, '...but the queue keeps it');
  t.equal(s.op(MAILBOX_OPS.QUEUE_DESTROY.code, s.ctx, s.queue.ret).result, 0);
  t.equal(s.dev.memory.isPinned(s.ring.handle), false, 'released with the queue');
  t.equal(s.op(MAILBOX_OPS.CTX_DESTROY.code, s.ctx).result, 0);
  t.equal(s.dev.queues.kernelCount, 0, 'context destruction destroys its kernels');
  t.equal(s.dev.memory.bufferCount, 0);
  t.equal(s.backend.destroyed, 0, "the built kernel stays in the VM's kernel cache...");
  t.equal(s.dev.queues.kernels.cache.idleCount, 1);
  s.dev.pci.reset();
  t.equal(s.backend.destroyed, 1, '...until the device is reset');
});

t.test('no executor: queues exist but KERNEL_CREATE is UNSUPPORTED', (t) => {
  const dev = new MdgpuDevice({ name: 'nobackend', apertureSize: APERTURE, host: new FakeHost() });
  t.equal(dev.executor, null);
  dev.close();
  t.end();
});

t.test('the VM going away stops its queues and releases its kernels; buffers stay consistent', async (t) => {
  const s = await setup();
  const spv = s.alloc(0x1000);
  s.view.setUint32(spv.offset, 0x07230203, true);
  const k = s.op(MAILBOX_OPS.KERNEL_CREATE.code, s.ctx, spv.handle, 0, 64, 0, 0);
  t.equal(k.result, 0);
  await s.guest.kernelSettled(k.ret);
  let release!: () => void;
  s.backend.gate = new Promise((r) => (release = r));
  s.publish(encodeSubmission([{ op: 'fill', dst: { buffer: s.data.handle, offset: 0 }, size: 16, value: 1 }]));
  await new Promise((r) => setTimeout(r, 5));
  s.dev.pci.detachClient();
  t.equal(s.dev.queues.queueCount, 0, 'queues stopped');
  t.equal(s.dev.queues.kernelCount, 0, 'kernels released');
  t.equal(s.backend.destroyed, 1, 'from the backend too');
  release();
  await new Promise((r) => setTimeout(r, 10));
  t.notOk(s.dev.memory.isPinned(s.data.handle), 'the in-flight submission unpinned its buffer when it finished');
  t.notOk(s.dev.memory.isPinned(s.ring.handle), 'the ring buffer is released');
  t.equal(s.op(MAILBOX_OPS.BO_FREE.code, s.ctx, s.data.handle).result, 0, 'buffers can still be freed');
});

t.test('without an executor: queues run fences and waits; GPU commands fail; kernels are UNSUPPORTED', async (t) => {
  const dev = new MdgpuDevice({ name: 'nobackend', apertureSize: APERTURE, host: new FakeHost() });
  dev.queues.graceMs = 1;
  const guest = new HostGuest(dev);
  const fence = guest.alloc(0x1000);
  const publish = guest.queue(RING);
  publish(encodeSubmission([{ op: 'fence', dst: { buffer: fence.handle, offset: 8 }, value: 5n }], { dst: { buffer: fence.handle, offset: 0 }, value: 1n }));
  publish(
    encodeSubmission([{ op: 'fill', dst: { buffer: fence.handle, offset: 64 }, size: 4, value: 1 }], { dst: { buffer: fence.handle, offset: 16 }, value: 2n }),
  );
  await guest.completions(2);
  t.same(guest.done, [null, 'EXEC_FAILED']);
  t.equal(guest.view.getBigUint64(fence.offset + 8, true), 5n, 'FENCE ran without a backend');
  const spv = guest.alloc(0x1000);
  guest.view.setUint32(spv.offset, 0x07230203, true);
  t.equal(guest.op(MAILBOX_OPS.KERNEL_CREATE.code, guest.ctx, spv.handle, 0, 64, 0, 0).result, MAILBOX_RESULTS.UNSUPPORTED.code);
  dev.close();
});

t.test('kernels build asynchronously (contract 1.2): BUILDING, then READY with the KERNEL interrupt; DISPATCH waits for READY', async (t) => {
  const s = await setup();
  s.w('IRQ_ENABLE', 0xff);
  const spv = s.alloc(0x1000);
  s.view.setUint32(spv.offset, 0x07230203, true);
  let release!: () => void;
  s.backend.buildGate = new Promise((r) => (release = r));
  const usedBefore = s.op(MAILBOX_OPS.QUERY.code, QUERY_PARAMS.USED.code).ret;
  const k = s.op(MAILBOX_OPS.KERNEL_CREATE.code, s.ctx, spv.handle, 0, 64, 0, 0);
  t.equal(k.result, 0, 'KERNEL_CREATE returns at once');
  t.same(s.op(MAILBOX_OPS.KERNEL_STATUS.code, s.ctx, k.ret).ret, KERNEL_STATES.BUILDING.code, 'BUILDING while the backend builds');
  t.equal(
    s.op(MAILBOX_OPS.QUERY.code, QUERY_PARAMS.USED.code).ret - usedBefore,
    64 + KERNEL_PIPELINE_CHARGE,
    'its SPIR-V and pipeline count against the quota',
  );
  s.publish(encodeSubmission([{ op: 'dispatch', kernel: k.ret, groups: [1, 1, 1], bindings: [], push: new Uint8Array(0) }]));
  await s.completions(1);
  t.same(s.done, ['BAD_KERNEL'], 'a DISPATCH of a kernel still BUILDING is refused');
  s.w('IRQ_STATUS', 0xff);
  release();
  t.same(await s.guest.kernelSettled(k.ret), { state: KERNEL_STATES.READY.code, result: 0 }, 'READY once built');
  t.ok(s.r('IRQ_STATUS') & (1 << 3), 'the KERNEL interrupt source was raised');
  s.publish(encodeSubmission([{ op: 'dispatch', kernel: k.ret, groups: [1, 1, 1], bindings: [], push: new Uint8Array(0) }]));
  await s.completions(2);
  t.same(s.done, ['BAD_KERNEL', null], 'then it runs');
  t.equal(s.op(MAILBOX_OPS.KERNEL_STATUS.code, s.ctx, 99).result, MAILBOX_RESULTS.BAD_HANDLE.code, 'KERNEL_STATUS of an unknown kernel');
  t.equal(s.op(MAILBOX_OPS.KERNEL_STATUS.code, 77, k.ret).result, MAILBOX_RESULTS.BAD_CONTEXT.code, 'KERNEL_STATUS in an unknown context');
  t.equal(s.op(MAILBOX_OPS.KERNEL_DESTROY.code, s.ctx, k.ret).result, 0);
  t.equal(s.op(MAILBOX_OPS.QUERY.code, QUERY_PARAMS.USED.code).ret, usedBefore, 'the charge is returned with the kernel');
});

t.test('a kernel destroyed while BUILDING is released when its build ends; builds in progress are bounded (THROTTLED)', async (t) => {
  const s = await setup();
  const spv = s.alloc(0x1000);
  // Different modules (identical ones would share one build: kernel-cache.test.ts).
  for (let i = 0; i < 16; i++) {
    s.view.setUint32(spv.offset + 64 * i, 0x07230203, true);
    s.view.setUint32(spv.offset + 64 * i + 4, i, true);
  }
  s.dev.queues.kernels.cache.maxEntries = 0;
  let release!: () => void;
  s.backend.buildGate = new Promise((r) => (release = r));
  const max = s.op(MAILBOX_OPS.QUERY.code, QUERY_PARAMS.MAX_KERNEL_BUILDS.code).ret;
  t.ok(max > 0 && max < 16, `at most ${max} builds in progress`);
  const ids = Array.from({ length: max }, (_, i) => s.op(MAILBOX_OPS.KERNEL_CREATE.code, s.ctx, spv.handle, 64 * i, 64, 0, 0));
  t.ok(
    ids.every((r) => r.result === 0),
    'up to the limit: accepted',
  );
  t.equal(s.op(MAILBOX_OPS.KERNEL_CREATE.code, s.ctx, spv.handle, 64 * max, 64, 0, 0).result, MAILBOX_RESULTS.THROTTLED.code, 'one more: THROTTLED');
  t.equal(s.op(MAILBOX_OPS.KERNEL_DESTROY.code, s.ctx, ids[0]!.ret).result, 0, 'destroyed while building');
  release();
  s.backend.buildGate = null;
  for (const r of ids.slice(1)) await s.guest.kernelSettled(r.ret);
  t.equal(s.backend.kernels, max, 'every build finished');
  t.equal(s.backend.destroyed, 1, 'the abandoned one was destroyed when its build ended (the kernel cache is off)');
  t.equal(s.dev.queues.kernelCount, max - 1);
  t.equal(s.op(MAILBOX_OPS.KERNEL_CREATE.code, s.ctx, spv.handle, 64 * max, 64, 0, 0).result, 0, 'room again');
});

t.test('kernels count against the quota: OVER_QUOTA when the SPIR-V and pipeline would not fit', async (t) => {
  const host = new FakeHost();
  const backend = { run: async () => ({ deviceNs: 0 }), buildKernel: async () => ({ handle: 1, layout: [] }), destroyKernel: () => {}, caps: referenceCaps };
  const dev = new MdgpuDevice({ name: 'quota', apertureSize: APERTURE, host, executor: backend, quota: 0x2000 + KERNEL_PIPELINE_CHARGE - 1 });
  const guest = new HostGuest(dev);
  const spv = guest.alloc(0x1000);
  guest.view.setUint32(spv.offset, 0x07230203, true);
  t.equal(guest.op(MAILBOX_OPS.KERNEL_CREATE.code, guest.ctx, spv.handle, 0, 0x1000, 0, 0).result, MAILBOX_RESULTS.OVER_QUOTA.code);
  t.equal(guest.op(MAILBOX_OPS.KERNEL_CREATE.code, guest.ctx, spv.handle, 0, 64, 0, 0).result, 0, 'a smaller one fits');
  dev.close();
});

t.test('a guest that keeps its ring full does not hold the event loop', async (t) => {
  const s = await setup();
  // 1,000 empty submissions published at once, with one doorbell: none needs the device.
  const one = encodeSubmission([]);
  const many = new Uint8Array(one.length * 400);
  for (let i = 0; i < 400; i++) many.set(one, i * one.length);
  let timerRanAfter = -1;
  setTimeout(() => (timerRanAfter = s.done.length), 0);
  s.publish(many);
  await s.completions(400);
  t.ok(timerRanAfter >= 0 && timerRanAfter < 400, `a timer ran while the queue was still working (after ${timerRanAfter} of 400)`);
  t.ok(s.dev.queues.totals.yields > 0, `the queue yielded ${s.dev.queues.totals.yields} times`);
});

t.test('destroying a queue withdraws its parked WAIT and the work behind it', async (t) => {
  const s = await setup();
  const target = s.alloc(0x1000);
  s.publish(
    encodeSubmission([
      { op: 'wait', src: { buffer: s.data.handle, offset: 0 }, value: 1n, timeoutNs: 10_000_000_000n },
      { op: 'fill', dst: { buffer: target.handle, offset: 0 }, size: 16, value: 0x41414141 },
    ]),
  );
  for (let i = 0; i < 100 && !s.dev.memory.isPinned(target.handle); i++) await new Promise((r) => setTimeout(r, 2));
  t.ok(s.dev.memory.isPinned(target.handle), 'the parked submission pins its buffers');
  t.equal(s.op(MAILBOX_OPS.QUEUE_DESTROY.code, s.ctx, s.queue.ret).result, 0);
  for (let i = 0; i < 100 && s.dev.memory.isPinned(target.handle); i++) await new Promise((r) => setTimeout(r, 2));
  t.notOk(s.dev.memory.isPinned(target.handle), 'the WAIT ended at once and released its pins (not after its 10 s timeout)');
  s.view.setBigUint64(s.data.offset, 1n, true);
  await new Promise((r) => setTimeout(r, 20));
  t.equal(s.view.getUint32(target.offset, true), 0, 'the FILL behind it never ran');
  t.equal(s.backend.metas.length, 0, 'nothing reached the backend');
});

t.test('CTX_DESTROY withdraws parked work at once: its buffers are not held for hours', async (t) => {
  const s = await setup();
  s.publish(encodeSubmission([{ op: 'wait', src: { buffer: s.data.handle, offset: 0 }, value: 1n, timeoutNs: 10_000_000_000n }]));
  for (let i = 0; i < 100 && !s.dev.memory.isPinned(s.data.handle); i++) await new Promise((r) => setTimeout(r, 2));
  t.ok(s.dev.memory.isPinned(s.data.handle), 'parked');
  t.equal(s.op(MAILBOX_OPS.CTX_DESTROY.code, s.ctx).result, 0);
  for (let i = 0; i < 100 && s.dev.memory.bufferCount > 0; i++) await new Promise((r) => setTimeout(r, 2));
  t.equal(s.dev.memory.bufferCount, 0, 'every buffer released right away');
  t.equal(s.dev.memory.used, 0, 'and nothing counts against the quota');
});

t.test('work from before a device reset never runs after it, nor writes into memory handed out after it', async (t) => {
  const s = await setup();
  const target = s.alloc(0x1000);
  // F5: "WAIT, then FILL 0x41", parked; then the device is reset.
  s.publish(
    encodeSubmission([
      { op: 'wait', src: { buffer: s.data.handle, offset: 0 }, value: 1n, timeoutNs: 10_000_000_000n },
      { op: 'fill', dst: { buffer: target.handle, offset: 0 }, size: 0x1000, value: 0x41414141 },
    ]),
  );
  for (let i = 0; i < 100 && !s.dev.memory.isPinned(target.handle); i++) await new Promise((r) => setTimeout(r, 2));
  s.dev.pci.reset();
  // The next boot allocates the same range and keeps a secret there.
  const guest = new HostGuest(s.dev);
  const fresh = guest.alloc(0x1000);
  const secret = new TextEncoder().encode('new owner secret');
  s.dev.aperture.set(secret, fresh.offset);
  s.view.setBigUint64(s.data.offset, 1n, true); // the old WAIT's condition, now in someone else's memory
  await new Promise((r) => setTimeout(r, 30));
  t.same(s.dev.aperture.subarray(fresh.offset, fresh.offset + secret.length), secret, "the new owner's memory is untouched");
  t.equal(s.backend.metas.length, 0, 'the FILL never reached the device');
});

t.test('a batch on the device across a reset keeps its range out of new allocations until it ends', async (t) => {
  const s = await setup();
  let release!: () => void;
  s.backend.gate = new Promise((r) => (release = r));
  const target = s.alloc(0x1000);
  s.publish(encodeSubmission([{ op: 'fill', dst: { buffer: target.handle, offset: 0 }, size: 0x1000, value: 0x55555555 }]));
  for (let i = 0; i < 100 && s.backend.metas.length === 0; i++) await new Promise((r) => setTimeout(r, 2));
  t.equal(s.backend.metas.length, 1, 'the batch is on the device');
  s.dev.pci.reset();
  t.equal(s.dev.memory.quarantined, 1, 'its buffer is quarantined, not released');
  const guest = new HostGuest(s.dev);
  const offsets = Array.from({ length: 8 }, () => guest.alloc(0x1000).offset);
  t.notOk(offsets.includes(target.offset), 'no new allocation gets the range the device still writes');
  release();
  s.backend.gate = null;
  for (let i = 0; i < 100 && s.dev.memory.quarantined > 0; i++) await new Promise((r) => setTimeout(r, 2));
  t.equal(s.dev.memory.quarantined, 0, 'released once the batch ended');
  t.ok(
    s.dev.aperture.subarray(target.offset, target.offset + 0x1000).every((b) => b === 0),
    'and zeroed again',
  );
});

t.test('polling has a CPU budget: out of budget, a drained queue asks for a doorbell at once', async (t) => {
  const s = await setup();
  s.dev.queues.graceMs = 50;
  s.dev.queues.pollBudgetMsPerS = 0;
  s.dev.queues.pollBudgetBurstMs = 0;
  s.publish(encodeSubmission([{ op: 'barrier' }]));
  await s.completions(1);
  for (let i = 0; i < 50 && s.control('doorbellNeeded') !== 1n; i++) await new Promise((r) => setImmediate(r));
  t.equal(s.control('doorbellNeeded'), 1n, 'asleep without polling through its 50 ms grace period');
  t.ok(s.dev.queues.totals.pollBudgetExhausted > 0, 'counted');
});
