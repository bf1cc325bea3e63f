/**
 * The compute device in a worker process (src/backend/isolated.ts), on the real device (Mesa
 * lavapipe where there is no GPU): batches run in the worker on memory the daemon's own mapping
 * shows; a kernel that would run for hours is stopped by a reset, after which the same memory and
 * kernel objects work again; a worker that dies on its own is replaced; kernels are built in the
 * builder process first and refused there; this process never loads the driver. Fails (never
 * skips) without the host driver, Vulkan or the kernels.
 */
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import { fileURLToPath } from 'node:url';
import t, { type Test } from 'tap';
import { KernelBuildError, type BackendKernel, type Command } from '../../src/backend/backend.js';
import { ContextLostError } from '../../src/execution-errors.js';
import { spirvWords } from '../../src/backend/host-driver.js';
import { IsolatedDevice, type IsolatedOptions } from '../../src/backend/isolated.js';
import { RING, RecordType } from '../../src/backend/ring.js';
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

/** The device's info, probed once for the whole file. */
let probed: IsolatedDevice['info'] | undefined;

/** A device and a shared memfd mapped here; all released at the end of the test. */
function setup(t: Test, options: IsolatedOptions = {}) {
  const dev = IsolatedDevice.open({ ...(probed !== undefined ? { info: probed } : {}), ...options });
  probed = dev.info;
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

t.test('a memory released before the worker imported it is no problem (its file is already closed)', async (t) => {
  const s = setup(t);
  const before = logs.length;
  // Released at once: the worker reaches the import only after the daemon closed the file.
  for (let i = 0; i < 8; i++) s.dev.importFd(s.fd, 0, SIZE).destroy();
  // A batch after them: the worker has handled every import by the time it completes.
  const fill: Command = { kind: 'fill', dst: { offset: 0, size: 4096 }, value: 7 };
  await s.dev.submit(s.mem, [fill]);
  t.same(
    logs.slice(before).filter((l) => /compute worker: memory/.test(l)),
    [],
    'no warning about the released imports',
  );
  t.equal(s.view.getUint32(0, true), 7, 'the device works on');
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

/** Polls `cond` every 10 ms for up to 30 s. */
async function until(cond: () => boolean): Promise<boolean> {
  const deadline = Date.now() + 30_000;
  while (!cond() && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
  return cond();
}

t.test('many batches in flight through the ring complete in order', async (t) => {
  const s = setup(t);
  await s.dev.whenReady();
  const started: number[] = [];
  const all = Array.from({ length: 64 }, (_, i) =>
    s.dev.submit(s.mem, [{ kind: 'fill', dst: { offset: i * 64, size: 64 }, value: i + 1 }], { started: () => started.push(i) }),
  );
  t.equal(s.dev.pending, 64);
  const statuses = await Promise.all(all);
  t.ok(
    statuses.every((st, i) => i === 0 || st.id > statuses[i - 1]!.id),
    'completed in submission order',
  );
  t.same(
    started,
    Array.from({ length: 64 }, (_, i) => i),
    'each started, in order, before it completed',
  );
  t.equal(s.view.getUint32(63 * 64, true), 64, 'and ran in the worker, visible here');
  t.equal(s.dev.pending, 0);
});

t.test('ring backpressure: a batch larger than its room waits; larger than the ring, it is refused up front', async (t) => {
  const s = setup(t, { submitAreaSize: 8192 });
  const update = (i: number): Command[] => {
    const data = new Uint8Array(5000).fill(i + 1);
    return [{ kind: 'update', dst: { offset: (256 << 10) | (i * 8192), size: 5000 }, data }];
  };
  const all = Array.from({ length: 24 }, (_, i) => s.dev.submit(s.mem, update(i)));
  await Promise.all(all);
  let bad = 0;
  for (let i = 0; i < 24; i++) if (s.view.getUint8(((256 << 10) | (i * 8192)) + 4999) !== i + 1) bad++;
  t.equal(bad, 0, 'all 24 batches ran, two at most in the 8 KiB ring at a time');
  await t.rejects(
    s.dev.submit(s.mem, [{ kind: 'update', dst: { offset: 0, size: 9000 }, data: new Uint8Array(9000) }]),
    { name: 'BackendError', code: 'E2BIG', message: /submission ring, which has 8192/ },
    'a batch larger than the ring: E2BIG before anything is written',
  );
});

t.test('batches submitted while the worker restarts wait for the new one; kernels are bound again only when used', async (t) => {
  const s = setup(t);
  const used = await s.dev.buildKernel(SAXPY, { bindings: 2, pushConstantSize: 8 });
  const unused = await s.dev.buildKernel(SAXPY, { bindings: 2, pushConstantSize: 8 });
  await saxpy(t, s, used, 'before the reset');
  t.ok(await until(() => s.dev.workerObjects.kernels === 2), 'both kernels were built and bound in the first worker');
  const first = s.dev.workerPid;
  s.dev.reset('test: rebinding');
  t.ok(await until(() => s.dev.workerPid !== first), 'a new worker starts');
  const waiting = s.dev.submit(s.mem, [{ kind: 'fill', dst: { offset: 0, size: 64 }, value: 7 }]);
  await waiting;
  t.equal(s.view.getUint32(0, true), 7, 'a batch submitted before the new worker was ready ran there');
  t.same(s.dev.workerObjects, { memories: 1, kernels: 0 }, 'the memory is bound again under its id; no kernel is built yet');
  await saxpy(t, s, used, 'after the reset, the same kernel object');
  t.same(s.dev.workerObjects, { memories: 1, kernels: 1 }, 'only the kernel a batch used was built again');
  unused.destroy();
  used.destroy();
  t.equal(s.dev.workerObjects.kernels, 0, 'destroyed kernels are released');
  await t.rejects(s.dev.submit(s.mem, [dispatch(used, [1, 1, 1], [0, 256], [4096, 256], new Uint8Array(8))]), { code: 'ENOENT' });
});

t.test('a corrupted ring: the worker refuses it cleanly, the device is reset, batches run again', async (t) => {
  const s = setup(t);
  const kernel = await s.dev.buildKernel(SAXPY, { bindings: 2, pushConstantSize: 8 });
  await saxpy(t, s, kernel, 'before');
  const ring = s.dev.ringMemory!;
  const v = ring.view;
  // A record claiming 1 MiB, with 64 bytes published: the framing is gone.
  const tail = v.getUint32(RING.submitTail, true);
  const at = RING.headerSize + (tail & (ring.submitSize - 1));
  v.setUint32(at, RecordType.Submit, true);
  v.setUint32(at + 4, 1 << 20, true);
  v.setUint32(RING.submitTail, tail + 64, true);
  native.eventfdWrite(ring.submitEvent, 1);
  t.ok(await until(() => s.dev.resets === 1), 'the ring broke, and the device was reset');
  t.ok(
    logs.some((l) => /submission ring broke|ring service stopped/.test(l)),
    'and said why',
  );
  await saxpy(t, s, kernel, 'after');
});

t.test('this process never loads the driver', (t) => {
  const maps = fs.readFileSync('/proc/self/maps', 'utf8');
  t.notMatch(maps, /libmdgpu-host/, 'no libmdgpu-host mapped here');
  t.notMatch(maps, /libvulkan/, 'no Vulkan loader mapped here');
  t.end();
});

t.test('the worker dies with the daemon, even when the daemon is SIGKILLed', async (t) => {
  const script = fileURLToPath(new URL('../helpers/isolated-daemon.js', import.meta.url));
  // Its stderr is kept, not shown: its kernel builder, killed while it starts, may complain.
  const daemon = spawn(process.execPath, [script], { stdio: ['ignore', 'pipe', 'pipe'] });
  let stderr = '';
  daemon.stderr.on('data', (d: Buffer) => (stderr += String(d)));
  t.teardown(() => daemon.kill('SIGKILL'));
  const worker = await new Promise<number>((resolve, reject) => {
    daemon.stdout.once('data', (d: Buffer) => resolve(Number(String(d).trim())));
    daemon.once('exit', (code) => reject(new Error(`the daemon exited (${code}): ${stderr}`)));
  });
  t.ok(alive(worker), `the daemon ${daemon.pid} runs its worker ${worker}`);
  daemon.kill('SIGKILL');
  t.ok(await until(() => !alive(worker)), 'the worker is gone');
});
