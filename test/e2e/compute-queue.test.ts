/**
 * The device model's queues on the real host driver (Vulkan on lavapipe, through koffi), without
 * a VM: the test plays the guest driver through trapped register accesses and writes commands
 * straight into the aperture, as a guest process does through its mapping.
 */
import t from 'tap';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { startServer } from '../../src/cli/serve.js';
import { KERNEL_STATES, MAILBOX_OPS, MAILBOX_RESULTS, QUERY_PARAMS } from '../../src/vgpu/mailbox-ops.js';
import { QUEUE_CONTROL_SIZE, QueueControl } from '../../src/vgpu/queue-ring.js';
import { encodeSubmission, type CommandSpec } from '../../src/vgpu/command-builder.js';
import { setLogSink } from '../../src/log.js';
import { HostGuest } from '../helpers/host-guest.js';

setLogSink(() => {});
const saxpySpv = fs.readFileSync(new URL('../../../guest-driver/kernels/build/saxpy.spv', import.meta.url));

t.test('saxpy through a mediated queue on Vulkan; a hostile submission fails and the next runs', async (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'mdgpu-compute-'));
  const running = startServer({ socket: path.join(dir, 's'), apertureSize: 16 << 20, name: 'compute', compute: {} });
  t.teardown(async () => {
    await running.close();
    fs.rmSync(dir, { recursive: true, force: true });
  });
  const dev = running.device;
  t.ok(running.executor, 'compute attached');
  const guest = new HostGuest(dev);
  const w = (name: string, v: number) => guest.write(name, v);
  const op = (code: number, ...args: number[]) => guest.op(code, ...args);
  t.equal(op(MAILBOX_OPS.QUERY.code, QUERY_PARAMS.HAS_BACKEND.code).ret, 1, 'HAS_BACKEND');
  t.equal(op(MAILBOX_OPS.QUERY.code, QUERY_PARAMS.BINDING_ALIGN.code).ret, 16, 'binding alignment from the device');
  const ctx = guest.ctx;
  const alloc = (size: number) => guest.alloc(size);
  const N = 65536;
  const x = alloc(N * 4);
  const y = alloc(N * 4);
  const misc = alloc(0x1000);
  const spv = alloc(saxpySpv.length);
  const ring = alloc(QUEUE_CONTROL_SIZE + 0x10000);
  const view = new DataView(dev.aperture.buffer);
  for (let i = 0; i < N; i++) {
    view.setFloat32(x.offset + 4 * i, i, true);
    view.setFloat32(y.offset + 4 * i, 1, true);
  }
  dev.aperture.set(saxpySpv, spv.offset);
  const kernel = op(MAILBOX_OPS.KERNEL_CREATE.code, ctx, spv.handle, 0, saxpySpv.length, 2, 8);
  t.equal(kernel.result, 0, 'saxpy kernel created from SPIR-V in a buffer');
  t.same(await guest.kernelSettled(kernel.ret), { state: KERNEL_STATES.READY.code, result: 0 }, 'and built');
  const bad = op(MAILBOX_OPS.KERNEL_CREATE.code, ctx, spv.handle, 0, 64, 2, 8);
  t.equal(bad.result, 0, 'a truncated module is accepted for building...');
  t.same(
    await guest.kernelSettled(bad.ret),
    { state: KERNEL_STATES.FAILED.code, result: MAILBOX_RESULTS.BAD_KERNEL.code },
    '...and refused by validation (BAD_KERNEL)',
  );
  const queue = op(MAILBOX_OPS.QUEUE_CREATE.code, ctx, ring.handle, 0);
  t.equal(queue.result, 0);

  let tail = 0n;
  const ringBase = ring.offset + QUEUE_CONTROL_SIZE;
  const publish = (bytes: Uint8Array) => {
    dev.aperture.set(bytes, ringBase + Number(tail));
    tail += BigInt(bytes.length);
    view.setBigUint64(ring.offset + QueueControl.fields.tail.offset, tail, true);
    if (view.getUint32(ring.offset + QueueControl.fields.doorbellNeeded.offset, true) === 1) w('QUEUE_DOORBELL', queue.ret);
  };
  const done: (string | null)[] = [];
  const waiters: (() => void)[] = [];
  dev.queues.onSubmissionDone = (_q, error) => {
    done.push(error);
    waiters.splice(0).forEach((f) => f());
  };
  const completions = async (n: number) => {
    while (done.length < n) await new Promise<void>((resolve) => waiters.push(resolve));
  };
  const push = new Uint8Array(8);
  new DataView(push.buffer).setUint32(0, N, true);
  new DataView(push.buffer).setFloat32(4, 2, true);
  const saxpy: CommandSpec = {
    op: 'dispatch',
    kernel: kernel.ret,
    groups: [N / 64, 1, 1],
    bindings: [
      { buffer: x.handle, offset: 0, size: N * 4 },
      { buffer: y.handle, offset: 0, size: N * 4 },
    ],
    push,
  };
  publish(
    encodeSubmission(
      [
        { op: 'copy', src: { buffer: y.handle, offset: 0 }, dst: { buffer: misc.handle, offset: 0x100 }, size: 16 },
        saxpy,
        { op: 'timestamp', dst: { buffer: misc.handle, offset: 8 } },
      ],
      { dst: { buffer: misc.handle, offset: 0 }, value: 1n },
    ),
  );
  publish(
    encodeSubmission(
      [
        {
          ...saxpy,
          bindings: [
            { buffer: x.handle, offset: 0, size: N * 4 },
            { buffer: 4242, offset: 0, size: 16 },
          ],
        } as CommandSpec,
      ],
      { dst: { buffer: misc.handle, offset: 16 }, value: 2n },
    ),
  );
  publish(
    encodeSubmission([{ op: 'fill', dst: { buffer: misc.handle, offset: 0x200 }, size: 64, value: 0x01010101 }], {
      dst: { buffer: misc.handle, offset: 24 },
      value: 3n,
    }),
  );
  await completions(3);
  t.same(done, [null, 'BAD_BUFFER', null], 'valid, hostile, valid');
  let wrong = 0;
  for (let i = 0; i < N; i++) if (view.getFloat32(y.offset + 4 * i, true) !== 2 * i + 1) wrong++;
  t.equal(wrong, 0, `y = 2x + y for all ${N} elements, computed by Vulkan in mdgpu's memfd`);
  t.equal(view.getFloat32(misc.offset + 0x100, true), 1, 'COPY ran before the dispatch');
  t.ok(view.getBigUint64(misc.offset + 8, true) > 0n, 'TIMESTAMP written');
  t.equal(view.getBigUint64(misc.offset, true), 1n, 'fence 1');
  t.equal(view.getBigUint64(misc.offset + 16, true), 2n | (1n << 63n), 'error fence 2');
  t.equal(view.getBigUint64(misc.offset + 24, true), 3n, 'fence 3: the queue carried on');
  t.equal(view.getUint32(misc.offset + 0x200, true), 0x01010101, 'FILL');
  t.ok(dev.queues.queueStats(queue.ret)!.deviceNs > 0, 'device time accounted');
  t.equal(op(MAILBOX_OPS.CTX_DESTROY.code, ctx).result, 0);
  t.equal(dev.memory.bufferCount, 0, 'all freed');
});

t.test('a batch past the time limit loses its context; another vGPU on the same device carries on', async (t) => {
  const { startDaemon } = await import('../../src/cli/daemon.js');
  const { HostGuest } = await import('../helpers/host-guest.js');
  const gemmSpv = fs.readFileSync(new URL('../../../guest-driver/kernels/build/gemm.spv', import.meta.url));
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'mdgpu-limit-'));
  const daemon = startDaemon({
    vgpus: [
      { name: 'hog', socket: path.join(dir, 'hog.sock'), apertureSize: 16 << 20 },
      { name: 'polite', socket: path.join(dir, 'polite.sock'), apertureSize: 16 << 20 },
    ],
    compute: {},
    scheduler: { batchTimeLimitNs: 100e6 },
  });
  t.teardown(async () => {
    await daemon.close();
    fs.rmSync(dir, { recursive: true, force: true });
  });
  const hog = new HostGuest(daemon.vgpus[0]!.device);
  const polite = new HostGuest(daemon.vgpus[1]!.device);
  // A 512x512 gemm takes ~0.3 s on lavapipe here: ten times the limit.
  const M = 512;
  const a = hog.alloc(M * M * 4);
  const b = hog.alloc(M * M * 4);
  const c = hog.alloc(M * M * 4);
  const fenceHog = hog.alloc(0x1000);
  const gemm = await hog.kernel(gemmSpv, 3, 12);
  const push = new Uint8Array(12);
  new DataView(push.buffer).setUint32(0, M, true);
  new DataView(push.buffer).setUint32(4, M, true);
  new DataView(push.buffer).setUint32(8, M, true);
  const publishHog = hog.queue();
  publishHog(
    encodeSubmission(
      [
        {
          op: 'dispatch',
          kernel: gemm,
          groups: [M / 16, M / 16, 1],
          bindings: [
            { buffer: a.handle, offset: 0, size: M * M * 4 },
            { buffer: b.handle, offset: 0, size: M * M * 4 },
            { buffer: c.handle, offset: 0, size: M * M * 4 },
          ],
          push,
        },
      ],
      { dst: { buffer: fenceHog.handle, offset: 0 }, value: 1n },
    ),
  );
  await new Promise((r) => setTimeout(r, 5));
  const fencePolite = polite.alloc(0x1000);
  const publishPolite = polite.queue();
  publishPolite(
    encodeSubmission([{ op: 'fill', dst: { buffer: fencePolite.handle, offset: 0x100 }, size: 64, value: 7 }], {
      dst: { buffer: fencePolite.handle, offset: 0 },
      value: 1n,
    }),
  );
  await hog.completions(1);
  t.same(hog.done, ['CONTEXT_LOST'], 'the overrunning batch is reported once the device let go of it');
  t.equal(hog.view.getBigUint64(fenceHog.offset, true), 1n | (1n << 63n), 'with an error fence');
  t.ok(daemon.vgpus[0]!.device.queues.isContextLost(hog.ctx), 'and its context is lost');
  publishHog(encodeSubmission([{ op: 'barrier' }], { dst: { buffer: fenceHog.handle, offset: 8 }, value: 2n }));
  await hog.completions(2);
  t.equal(hog.done[1], 'CONTEXT_LOST', 'its later work fails too');
  await polite.completions(1);
  t.same(polite.done, [null], "the other vGPU's submission ran");
  t.equal(polite.view.getBigUint64(fencePolite.offset, true), 1n);
  t.equal(polite.view.getUint32(fencePolite.offset + 0x100, true), 7);
  t.equal(daemon.scheduler.stats().find((s) => s.name === 'hog')!.timeouts, 1);
});

t.test('a kernel that would run for hours: the device is reset, the hog loses its context, the other vGPU carries on', async (t) => {
  const { startDaemon } = await import('../../src/cli/daemon.js');
  const { HostGuest } = await import('../helpers/host-guest.js');
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'mdgpu-hang-'));
  const daemon = startDaemon({
    vgpus: [
      { name: 'hung', socket: path.join(dir, 'hung.sock'), apertureSize: 16 << 20 },
      { name: 'other', socket: path.join(dir, 'other.sock'), apertureSize: 16 << 20 },
    ],
    compute: {},
    // Batches run whole: this is the reset path. (Preempted, the spin kernel's bounded
    // workgroups end and its batch is lost between parts with no reset: test/e2e/preemption.)
    scheduler: { batchTimeLimitNs: 1e9, preempt: false },
  });
  t.teardown(async () => {
    await daemon.close();
    fs.rmSync(dir, { recursive: true, force: true });
  });
  const hung = new HostGuest(daemon.vgpus[0]!.device);
  const other = new HostGuest(daemon.vgpus[1]!.device);
  // The other vGPU builds its kernel before the reset: the new worker must build it again.
  const x = other.alloc(4096);
  const y = other.alloc(4096);
  const saxpy = await other.kernel(saxpySpv, 2, 8);
  const fenceOther = other.alloc(0x1000);
  const publishOther = other.queue();

  const flag = hung.alloc(4096);
  const fenceHung = hung.alloc(0x1000);
  const spin = await hung.kernel(fs.readFileSync(new URL('../../../guest-driver/kernels/build/spin.spv', import.meta.url)), 1, 4);
  const want = new Uint8Array(4);
  new DataView(want.buffer).setUint32(0, 1, true); // the flag stays 0: hours of work (guest-driver/kernels/spin.comp)
  const publishHung = hung.queue();
  publishHung(
    encodeSubmission([{ op: 'dispatch', kernel: spin, groups: [4096, 4096, 1], bindings: [{ buffer: flag.handle, offset: 0, size: 4096 }], push: want }], {
      dst: { buffer: fenceHung.handle, offset: 0 },
      value: 1n,
    }),
  );
  // Wait until it spins (its turn counter moves), then queue the other vGPU's work behind it.
  const deadline = Date.now() + 30_000;
  while (hung.view.getUint32(flag.offset + 4, true) === 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
  t.ok(hung.view.getUint32(flag.offset + 4, true) > 0, 'the kernel spins on the device');
  for (let i = 0; i < 1024; i++) {
    other.view.setFloat32(x.offset + 4 * i, i % 9, true);
    other.view.setFloat32(y.offset + 4 * i, 1, true);
  }
  const push = new Uint8Array(8);
  new DataView(push.buffer).setUint32(0, 1024, true);
  new DataView(push.buffer).setFloat32(4, 2, true);
  publishOther(
    encodeSubmission(
      [
        {
          op: 'dispatch',
          kernel: saxpy,
          groups: [16, 1, 1],
          bindings: [
            { buffer: x.handle, offset: 0, size: 4096 },
            { buffer: y.handle, offset: 0, size: 4096 },
          ],
          push,
        },
      ],
      { dst: { buffer: fenceOther.handle, offset: 0 }, value: 1n },
    ),
  );

  await hung.completions(1);
  t.same(hung.done, ['CONTEXT_LOST'], 'the hung batch is reported at the time limit');
  t.equal(hung.view.getBigUint64(fenceHung.offset, true), 1n | (1n << 63n), 'with an error fence');
  t.ok(daemon.vgpus[0]!.device.queues.isContextLost(hung.ctx), 'and its context is lost');
  await other.completions(1);
  t.same(other.done, [null], "the other vGPU's batch ran after the reset");
  let bad = 0;
  for (let i = 0; i < 1024; i++) if (other.view.getFloat32(y.offset + 4 * i, true) !== 2 * (i % 9) + 1) bad++;
  t.equal(bad, 0, 'with its kernel built again in the new worker, and a correct result');
  const compute = daemon.compute as import('../../src/backend/isolated.js').IsolatedDevice;
  t.equal(compute.resets, 1, 'one device reset');
  t.equal(daemon.scheduler.stats().find((s) => s.name === 'hung')!.timeouts, 1, 'the scheduler counted the overrun');
});

t.test('closing the daemon with batches queued and running writes nothing into unmapped memory', async (t) => {
  const { startDaemon } = await import('../../src/cli/daemon.js');
  const { HostGuest } = await import('../helpers/host-guest.js');
  const gemmSpv = fs.readFileSync(new URL('../../../guest-driver/kernels/build/gemm.spv', import.meta.url));
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'mdgpu-close-'));
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  const daemon = startDaemon({
    vgpus: [
      { name: 'busy', socket: path.join(dir, 'a.sock'), apertureSize: 16 << 20 },
      { name: 'queued', socket: path.join(dir, 'b.sock'), apertureSize: 16 << 20 },
    ],
    compute: {},
  });
  const busy = new HostGuest(daemon.vgpus[0]!.device);
  const queued = new HostGuest(daemon.vgpus[1]!.device);
  const M = 256;
  const bufs = [busy.alloc(M * M * 4), busy.alloc(M * M * 4), busy.alloc(M * M * 4)];
  const gemm = await busy.kernel(gemmSpv, 3, 12);
  const push = new Uint8Array(12);
  [0, 4, 8].forEach((o) => new DataView(push.buffer).setUint32(o, M, true));
  const fenceBusy = busy.alloc(0x1000);
  busy.queue()(
    encodeSubmission(
      [{ op: 'dispatch', kernel: gemm, groups: [M / 16, M / 16, 1], bindings: bufs.map((b) => ({ buffer: b.handle, offset: 0, size: M * M * 4 })), push }],
      { dst: { buffer: fenceBusy.handle, offset: 0 }, value: 1n },
    ),
  );
  const fenceQueued = queued.alloc(0x1000);
  queued.queue()(
    encodeSubmission([{ op: 'fill', dst: { buffer: fenceQueued.handle, offset: 64 }, size: 64, value: 1 }], {
      dst: { buffer: fenceQueued.handle, offset: 0 },
      value: 1n,
    }),
  );
  await new Promise((r) => setTimeout(r, 5));
  const stats = daemon.scheduler.stats();
  t.ok(stats.some((s) => s.inFlight > 0) || stats.some((s) => s.pending > 0), 'work on and queued for the device');
  // Both VMs go away first (their QEMUs exit), then the daemon shuts down.
  daemon.vgpus[0]!.device.pci.detachClient();
  daemon.vgpus[1]!.device.pci.detachClient();
  await daemon.close();
  await new Promise((r) => setTimeout(r, 50));
  t.pass('the daemon closed with work in flight and nothing crashed');
});
