/**
 * The compute device in a worker process (src/backend/isolated.ts), on the real device (Mesa
 * lavapipe where there is no GPU): batches run in the worker on memory the daemon's own mapping
 * shows; a kernel that would run for hours is stopped by a reset, after which the same memory and
 * kernel objects work again; a worker that dies on its own is replaced; kernels are built in the
 * builder process first and refused there; this process never loads the driver. Fails (never
 * skips) without the host driver, Vulkan or the kernels.
 */
import * as fs from 'node:fs';
import { fileURLToPath } from 'node:url';
import t, { type Test } from 'tap';
import { KernelBuildError, type BackendKernel, type Command } from '../../src/backend/backend.js';
import { ContextLostError } from '../../src/execution-errors.js';
import { spirvWords } from '../../src/backend/host-driver.js';
import { IsolatedDevice } from '../../src/backend/isolated.js';
import { loadNative } from '../../src/native/binding.js';
import { setLogSink } from '../../src/log.js';

const logs: string[] = [];
setLogSink((l) => logs.push(l));
const native = loadNative();
const kernel = (name: string) => spirvWords(fs.readFileSync(fileURLToPath(new URL(`../../../guest-driver/kernels/build/${name}.spv`, import.meta.url))));
const SAXPY = kernel('saxpy');
/** guest-driver/kernels/spin.comp: hours of work on a large grid. */
const SPIN = kernel('spin');
const SIZE = 1 << 20;
const N = 4096;

/** A device and a shared memfd mapped here; all released at the end of the test. */
function setup(t: Test) {
  const dev = IsolatedDevice.open();
  const fd = native.memfdCreate('mdgpu-isolated-test', 0);
  native.ftruncate(fd, SIZE);
  const buf = native.mmap(fd, 0, SIZE, native.PROT_READ | native.PROT_WRITE);
  t.teardown(async () => {
    await dev.destroy();
    native.munmap(buf);
    native.close(fd);
  });
  const mem = dev.importFd(fd, 0, SIZE);
  return { dev, fd, buf, mem, view: new DataView(buf) };
}

/** y = 2.5x + y over N floats at 0 (x) and 64 KiB (y); checks the result in this process's mapping. */
async function saxpy(t: Test, s: ReturnType<typeof setup>, kernel: BackendKernel, what: string) {
  const x = new Float32Array(s.buf, 0, N);
  const y = new Float32Array(s.buf, 64 << 10, N);
  for (let i = 0; i < N; i++) {
    x[i] = i % 13;
    y[i] = i % 7;
  }
  const push = new Uint8Array(8);
  new DataView(push.buffer).setUint32(0, N, true);
  new DataView(push.buffer).setFloat32(4, 2.5, true);
  const status = await s.dev.submit(s.mem, [dispatch(kernel, [N / 64, 1, 1], [0, N * 4], [64 << 10, N * 4], push)]);
  let bad = 0;
  for (let i = 0; i < N; i++) if (y[i] !== 2.5 * (i % 13) + (i % 7)) bad++;
  t.equal(bad, 0, `${what}: saxpy computed in the worker, visible in this process's mapping (batch ${status.id})`);
}

function spinBatch(s: ReturnType<typeof setup>, spin: BackendKernel): Command[] {
  const push = new Uint8Array(4);
  new DataView(push.buffer).setUint32(0, 1, true); // stop stays 0: hours of work (spin.comp)
  s.view.setUint32(128 << 10, 0, true);
  return [dispatch(spin, [4096, 4096, 1], [128 << 10, 256], null, push)];
}

/** A dispatch with storage buffers at set 0, bindings 0 and 1 ([offset, size] each). */
function dispatch(kernel: BackendKernel, groups: [number, number, number], b0: [number, number], b1: [number, number] | null, push: Uint8Array): Command {
  const storage = (binding: number, [offset, size]: [number, number]) => ({ set: 0, binding, index: 0, type: 'storage' as const, range: { offset, size } });
  return {
    kind: 'dispatch',
    kernel,
    base: [0, 0, 0],
    groups,
    descriptors: b1 === null ? [storage(0, b0)] : [storage(0, b0), storage(1, b1)],
    pushConstants: push,
  };
}

const alive = (pid: number) => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

t.test('batches run in a worker process, on memory shared with the daemon', async (t) => {
  const s = setup(t);
  t.ok(s.dev.info.name.length > 0, `device: ${s.dev.info.name}`);
  t.ok(s.dev.workerPid !== null && s.dev.workerPid !== process.pid, `worker process ${s.dev.workerPid}`);
  t.equal(s.mem.zeroCopy, s.dev.info.hostImport, 'zero copy where the device imports host memory');
  const kernel = await s.dev.buildKernel(SAXPY, { bindings: 2, pushConstantSize: 8 });
  await saxpy(t, s, kernel, 'first batch');
  t.equal(s.dev.pending, 0, 'nothing pending');
});

t.test('kernels are refused by the builder process; bad imports and stale objects are refused', async (t) => {
  const s = setup(t);
  await t.rejects(s.dev.buildKernel(SAXPY.slice(0, 5), { bindings: 2, pushConstantSize: 8 }), KernelBuildError, 'truncated SPIR-V: refused by the builder');
  const refused = await s.dev.buildKernel(SAXPY, { bindings: 2, pushConstantSize: 200 }).catch((e: unknown) => e as KernelBuildError);
  t.equal(refused instanceof KernelBuildError && refused.fault, 'invalid', 'push constants above the limit: refused as invalid (cheap, not a strike)');
  t.equal(s.dev.builder.stats.refused, 2, 'both refusals came from the builder');
  t.ok(s.dev.builder.pid !== null && s.dev.builder.pid !== process.pid && s.dev.builder.pid !== s.dev.workerPid, `builder process ${s.dev.builder.pid}`);
  t.throws(() => s.dev.importFd(s.fd, -1, 4096), { code: 'EINVAL' }, 'a negative import offset: refused at once');
  t.throws(() => s.dev.importMemory(), { code: 'ENOTSUP' }, 'memory of this process cannot reach the worker');
  const k = await s.dev.buildKernel(SAXPY, { bindings: 2, pushConstantSize: 8 });
  k.destroy();
  await t.rejects(
    s.dev.submit(s.mem, [dispatch(k, [1, 1, 1], [0, 256], [4096, 256], new Uint8Array(8))]),
    { code: 'ENOENT' },
    'a destroyed kernel: the worker says ENOENT',
  );
  await t.rejects(s.dev.submit({} as never, [{ kind: 'fill', dst: { offset: 0, size: 4 }, value: 1 }]), TypeError, 'memory of another device: TypeError');
});

t.test('a kernel that would run for hours is stopped by a reset; everything made before works after it', async (t) => {
  const s = setup(t);
  const saxpyKernel = await s.dev.buildKernel(SAXPY, { bindings: 2, pushConstantSize: 8 });
  const spin = await s.dev.buildKernel(SPIN, { bindings: 1, pushConstantSize: 4 });
  const firstWorker = s.dev.workerPid!;
  const hung = s.dev.submit(s.mem, spinBatch(s, spin));
  // It is running: its turn counter moves in our mapping.
  const deadline = Date.now() + 30_000;
  while (s.view.getUint32((128 << 10) + 4, true) === 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
  const turns = s.view.getUint32((128 << 10) + 4, true);
  t.ok(turns > 0, `the spinning kernel runs (${turns} turns so far)`);
  t.equal(s.dev.pending, 1, 'and its batch is pending');
  s.dev.reset('test: a kernel that never ends');
  await t.rejects(hung, ContextLostError, 'the reset fails the hung batch: its context is lost');
  t.equal(s.dev.resets, 1, 'one reset');
  t.notOk(alive(firstWorker), 'the old worker is gone');
  t.ok(
    logs.some((l) => /resetting the device: test/.test(l)),
    'the reset is logged',
  );
  await saxpy(t, s, saxpyKernel, 'after the reset, the same memory and kernel objects');
  t.not(s.dev.workerPid, firstWorker, 'in a new worker');
  const ready = s.dev.whenReady();
  t.equal(ready, null, 'the device is ready again');
});

t.test('a worker that dies on its own is replaced; its batch fails, the next runs', async (t) => {
  const s = setup(t);
  const kernel = await s.dev.buildKernel(SAXPY, { bindings: 2, pushConstantSize: 8 });
  const spin = await s.dev.buildKernel(SPIN, { bindings: 1, pushConstantSize: 4 });
  await s.dev.whenReady();
  const pid = s.dev.workerPid!;
  const hung = s.dev.submit(s.mem, spinBatch(s, spin));
  process.kill(pid, 'SIGKILL');
  await t.rejects(
    hung,
    { name: 'ContextLostError', reason: 'device-reset' } as never,
    'the batch it had fails, and its context is to be marked lost (it may be what crashed the worker)',
  );
  await saxpy(t, s, kernel, 'after the crash');
  t.equal(s.dev.resets, 1, 'counted as a reset');
});

t.test('destroy ends the worker', async (t) => {
  const dev = IsolatedDevice.open();
  await dev.whenReady();
  const pid = dev.workerPid!;
  t.ok(alive(pid), 'the worker runs');
  await dev.destroy();
  t.notOk(alive(pid), 'and is gone after destroy');
  t.equal(dev.workerPid, null);
  await t.rejects(dev.buildKernel(SAXPY, { bindings: 2, pushConstantSize: 8 }), { code: 'ENOENT' }, 'nothing more on a destroyed device');
  await t.rejects(dev.submit({} as never, []), { code: 'ENOENT' });
});
