/**
 * The per-VM kernel cache on the real compute device (the host driver on lavapipe, in its
 * worker process, kernels checked in the builder process): a kernel a finished "process"
 * (context) built is READY at once for the next one, without the builder; it computes the
 * right results; and it stays valid across a compute-device reset (the worker replaced), where
 * the new worker builds it when a batch first needs it.
 */
import t from 'tap';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import type { IsolatedDevice } from '../../src/backend/isolated.js';
import { startServer } from '../../src/cli/serve.js';
import { setLogSink } from '../../src/log.js';
import { encodeSubmission } from '../../src/vgpu/command-builder.js';
import { KERNEL_STATES, MAILBOX_OPS } from '../../src/vgpu/mailbox-ops.js';
import { HostGuest } from '../helpers/host-guest.js';

setLogSink(() => {});
const saxpySpv = fs.readFileSync(new URL('../../../guest-driver/kernels/build/saxpy.spv', import.meta.url));
const N = 4096;

/** One "process": a context, saxpy created (timed), run once, checked; then the context ends. */
async function processRun(guest: HostGuest, a: number) {
  const dev = guest.dev;
  const view = new DataView(dev.aperture.buffer);
  const x = guest.alloc(N * 4);
  const y = guest.alloc(N * 4);
  const spv = guest.alloc(saxpySpv.length);
  for (let i = 0; i < N; i++) {
    view.setFloat32(x.offset + 4 * i, i, true);
    view.setFloat32(y.offset + 4 * i, 1, true);
  }
  dev.aperture.set(saxpySpv, spv.offset);
  const t0 = performance.now();
  const created = guest.op(MAILBOX_OPS.KERNEL_CREATE.code, guest.ctx, spv.handle, 0, saxpySpv.length, 2, 8);
  const stateAtCreate = guest.op(MAILBOX_OPS.KERNEL_STATUS.code, guest.ctx, created.ret).ret;
  const settled = await guest.kernelSettled(created.ret);
  const createMs = performance.now() - t0;
  const publish = guest.queue();
  const push = new Uint8Array(8);
  new DataView(push.buffer).setUint32(0, N, true);
  new DataView(push.buffer).setFloat32(4, a, true);
  publish(
    encodeSubmission([
      {
        op: 'dispatch',
        kernel: created.ret,
        groups: [N / 64, 1, 1],
        bindings: [
          { buffer: x.handle, offset: 0, size: N * 4 },
          { buffer: y.handle, offset: 0, size: N * 4 },
        ],
        push,
      },
    ]),
  );
  await guest.completions(1);
  let wrong = 0;
  for (let i = 0; i < N; i++) if (view.getFloat32(y.offset + 4 * i, true) !== a * i + 1) wrong++;
  const result = { created: created.result, stateAtCreate, settled, createMs, done: guest.done[0], wrong };
  guest.op(MAILBOX_OPS.CTX_DESTROY.code, guest.ctx);
  return result;
}

t.test('the next process gets the kernel without a build; it survives a compute-device reset', async (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'mdgpu-kcache-'));
  const running = startServer({ socket: path.join(dir, 's'), apertureSize: 16 << 20, name: 'kcache', compute: {} });
  t.teardown(async () => {
    await running.close();
    fs.rmSync(dir, { recursive: true, force: true });
  });
  const dev = running.device;
  const compute = running.daemon.compute as IsolatedDevice;
  const cache = dev.queues.kernels.cache;

  const first = await processRun(new HostGuest(dev), 2);
  t.same([first.created, first.stateAtCreate, first.settled.state], [0, KERNEL_STATES.BUILDING.code, KERNEL_STATES.READY.code], 'built the first time');
  t.same([first.done, first.wrong], [null, 0], 'and computed');
  t.equal(compute.builder.stats.built, 1, 'by the builder');
  t.equal(dev.queues.kernelCount, 0, 'its process ended: no kernel left...');
  t.equal(running.executor!.kernelCount, 1, '...but the device kernel is kept, idle in the cache');

  const second = await processRun(new HostGuest(dev), 3);
  t.equal(second.stateAtCreate, KERNEL_STATES.READY.code, 'the next process: READY when KERNEL_CREATE returns');
  t.same([second.done, second.wrong], [null, 0], 'and it computes');
  t.equal(compute.builder.stats.built, 1, 'the builder did not see it again');
  t.comment(`saxpy creation: ${first.createMs.toFixed(1)} ms built, ${second.createMs.toFixed(2)} ms from the cache`);

  // The compute device is reset (what a batch past the time limit causes): the worker and all
  // it built are gone; the cached kernel's handle stays, and the new worker builds it on demand.
  const resetsBefore = compute.resets;
  compute.reset('kernel-cache test');
  for (let i = 0; i < 1000 && compute.resets === resetsBefore; i++) await new Promise((r) => setTimeout(r, 10));
  t.equal(compute.resets, resetsBefore + 1, 'the worker was replaced');
  const third = await processRun(new HostGuest(dev), 4);
  t.equal(third.stateAtCreate, KERNEL_STATES.READY.code, 'after the reset: still READY at once');
  t.same([third.done, third.wrong], [null, 0], 'and it computes on the new worker');
  t.equal(compute.builder.stats.built, 1, 'still one build by the builder');
  t.same(cache.stats, { hits: 2, misses: 1, evictions: 0 });

  // A device reset of the vGPU empties the cache: the next creation builds.
  dev.pci.reset();
  t.equal(running.executor!.kernelCount, 0, 'the vGPU reset released the cached kernel');
  const fourth = await processRun(new HostGuest(dev), 5);
  t.equal(fourth.stateAtCreate, KERNEL_STATES.BUILDING.code, 'built again after the vGPU reset');
  t.same([fourth.done, fourth.wrong], [null, 0]);
  t.equal(compute.builder.stats.built, 2);
});
