/**
 * The per-VM kernel cache (src/vgpu/kernel-cache.ts) in the device model, against the
 * reference backend: a kernel made from the bytes of one this VM built before is READY at once
 * and shares its build; any differing byte or option builds anew; destroyed kernels stay cached
 * (least recently used out first, a bound on entries); idle entries are evicted before the VM
 * is refused quota and are not counted in QUERY USED; VMs never share; a reset empties it.
 */
import t from 'tap';
import { setLogSink } from '../../src/log.js';
import { encodeKernelRecord } from '../../src/vgpu/command-builder.js';
import { MdgpuDevice } from '../../src/vgpu/device.js';
import { KernelCache } from '../../src/vgpu/kernel-cache.js';
import { type KernelBuildRequest, requestDigest, sameRequest } from '../../src/vgpu/kernel-request.js';
import { KERNEL_PIPELINE_CHARGE } from '../../src/vgpu/kernels.js';
import { KERNEL_STATES, MAILBOX_OPS, MAILBOX_RESULTS, QUERY_PARAMS } from '../../src/vgpu/mailbox-ops.js';
import { encodeSubmission } from '../../src/vgpu/command-builder.js';
import { FakeHost } from '../helpers/fake-host.js';
import { HostGuest } from '../helpers/host-guest.js';
import { ReferenceExecutor } from '../helpers/reference-executor.js';

setLogSink(() => {});
const R = MAILBOX_RESULTS;
const S = KERNEL_STATES;
/** A 64-byte module with the magic number, told apart by its second word. */
function spirv(n: number, bytes = 64): Uint8Array {
  const out = new Uint8Array(bytes);
  const v = new DataView(out.buffer);
  v.setUint32(0, 0x0723_0203, true);
  if (bytes >= 8) v.setUint32(4, n, true);
  return out;
}
type RecordOptions = Parameters<typeof encodeKernelRecord>[0];
/** What one kernel record costs the quota (its SPIR-V, entry, map and data, and the pipeline). */
const charge = (spirvBytes: number) => spirvBytes + KERNEL_PIPELINE_CHARGE;

function setup(options: { quota?: number; name?: string; backend?: ReferenceExecutor } = {}) {
  let backend: ReferenceExecutor | null = options.backend ?? null;
  const dev = new MdgpuDevice({
    name: options.name ?? 'kc',
    apertureSize: 4 << 20,
    host: new FakeHost(),
    ...(options.quota !== undefined ? { quota: options.quota } : {}),
    executor: {
      run: (c, m, signal) => backend!.run(c, m, signal),
      buildKernel: (request) => backend!.buildKernel(request),
      destroyKernel: (handle) => backend!.destroyKernel(handle),
      caps: (limits) => backend!.caps(limits),
    },
  });
  backend ??= new ReferenceExecutor(dev.aperture);
  dev.queues.graceMs = 1;
  const guest = new HostGuest(dev);
  const scratch = guest.alloc(0x1000);
  const kernels = dev.queues.kernels;
  /** KERNEL_CREATE2 of a record; `ctx` defaults to the guest's. */
  const create = (record: RecordOptions, ctx = guest.ctx) => {
    const bytes = encodeKernelRecord(record);
    dev.aperture.set(bytes, scratch.offset);
    return guest.op(MAILBOX_OPS.KERNEL_CREATE2.code, ctx, scratch.handle, 0, 64);
  };
  /** KERNEL_CREATE (contract 1.1) of a module with `bindings` storage buffers. */
  const create1 = (module: Uint8Array, bindings: number, push = 0) => {
    dev.aperture.set(module, scratch.offset);
    return guest.op(MAILBOX_OPS.KERNEL_CREATE.code, guest.ctx, scratch.handle, 0, module.length, bindings, push);
  };
  const state = (kernel: number, ctx = guest.ctx) => guest.op(MAILBOX_OPS.KERNEL_STATUS.code, ctx, kernel).ret;
  const destroy = (kernel: number, ctx = guest.ctx) => guest.op(MAILBOX_OPS.KERNEL_DESTROY.code, ctx, kernel).result;
  const used = () => guest.op(MAILBOX_OPS.QUERY.code, QUERY_PARAMS.USED.code).ret;
  /** Create, wait for the build, and return the kernel. */
  const built = async (record: RecordOptions, ctx = guest.ctx) => {
    const r = create(record, ctx);
    if (r.result !== 0) throw new Error(`KERNEL_CREATE2: ${r.result}`);
    const settled = await guest.kernelSettled(r.ret, ctx);
    if (settled.state !== S.READY.code) throw new Error(`kernel ${r.ret} failed: ${settled.result}`);
    return r.ret;
  };
  return { dev, backend, guest, kernels, create, create1, state, destroy, used, built, scratch };
}

t.test('the same bytes again: READY at once, sharing the build (no second build)', async (t) => {
  const s = setup();
  const record = {
    spirv: spirv(1),
    pushBytes: 8,
    entryPoint: 'main',
    spec: { entries: [{ constantId: 0, offset: 0, size: 4 }], data: new Uint8Array([64, 0, 0, 0]) },
  };
  const a = await s.built(record);
  t.equal(s.backend.requests.length, 1, 'one build');
  const b = s.create(record);
  t.equal(b.result, 0);
  t.equal(s.state(b.ret), S.READY.code, 'READY when KERNEL_CREATE2 returns');
  t.equal(s.backend.requests.length, 1, 'not built again');
  t.not(a, b.ret, 'a kernel handle of its own');
  t.equal(s.kernels.ready(s.guest.ctx, a)!.handle, s.kernels.ready(s.guest.ctx, b.ret)!.handle, 'the same device kernel');
  t.same(s.kernels.cache.stats, { hits: 1, misses: 1, evictions: 0 });
  // Both dispatch; destroying one leaves the other working.
  const publish = s.guest.queue();
  t.equal(s.destroy(a), 0);
  t.equal(s.backend.destroyed, 0, 'the device kernel lives on with its other user');
  publish(encodeSubmission([{ op: 'dispatch2', kernel: b.ret, groups: [1, 1, 1], descriptors: [], push: new Uint8Array(8) }]));
  await s.guest.completions(1);
  t.same(s.guest.done, [null], 'the remaining kernel runs');
  t.equal(s.backend.dispatches[0]!.kernel, 1, 'on the shared device kernel');
  s.dev.close();
});

t.test('any differing byte or option builds anew', async (t) => {
  const s = setup();
  const data = new Uint8Array([1, 0, 0, 0, 2, 0, 0, 0]);
  const entries = [
    { constantId: 0, offset: 0, size: 4 },
    { constantId: 1, offset: 4, size: 4 },
  ];
  const base: RecordOptions = { spirv: spirv(7), pushBytes: 16, entryPoint: 'main', spec: { entries, data } };
  await s.built(base);
  const variants: [string, RecordOptions][] = [
    [
      'a SPIR-V byte',
      {
        ...base,
        spirv: (() => {
          const m = spirv(7);
          m[63] = 1;
          return m;
        })(),
      },
    ],
    ['a longer module (trailing zero word)', { ...base, spirv: spirv(7, 68) }],
    ['the push-constant size', { ...base, pushBytes: 20 }],
    ['DISPATCH_BASE', { ...base, dispatchBase: true }],
    ['the entry point', { ...base, entryPoint: 'main2' }],
    ['no entry point name (the only one)', { ...base, entryPoint: '' }],
    ['a specialization data byte', { ...base, spec: { entries, data: new Uint8Array([1, 0, 0, 0, 3, 0, 0, 0]) } }],
    ['more specialization data', { ...base, spec: { entries, data: new Uint8Array([1, 0, 0, 0, 2, 0, 0, 0, 0, 0, 0, 0]) } }],
    ['a constant id', { ...base, spec: { entries: [entries[0]!, { constantId: 2, offset: 4, size: 4 }], data } }],
    ['an offset', { ...base, spec: { entries: [entries[0]!, { constantId: 1, offset: 0, size: 4 }], data } }],
    ['a size', { ...base, spec: { entries: [entries[0]!, { constantId: 1, offset: 4, size: 2 }], data } }],
    ['the map order', { ...base, spec: { entries: [entries[1]!, entries[0]!], data } }],
    ['no specialization', { spirv: spirv(7), pushBytes: 16, entryPoint: 'main' }],
  ];
  for (const [what, record] of variants) {
    const before = s.backend.requests.length;
    await s.built(record);
    t.equal(s.backend.requests.length, before + 1, `${what}: built`);
  }
  // Contract 1.1: the binding count is part of what a kernel is; 1.1 and 1.3 never share.
  const module = spirv(7);
  for (const [what, bindings, push] of [
    ['KERNEL_CREATE of the same module', 2, 16],
    ['another binding count', 3, 16],
    ['another push size', 3, 8],
  ] as const) {
    const before = s.backend.requests.length;
    const r = s.create1(module, bindings, push);
    t.equal(r.result, 0);
    await s.guest.kernelSettled(r.ret);
    t.equal(s.backend.requests.length, before + 1, `${what}: built`);
  }
  const again = s.create1(module, 3, 8);
  t.equal(s.state(again.ret), S.READY.code, 'and the same 1.1 kernel again: from the cache');
  t.same(s.kernels.cache.stats, { hits: 1, misses: 17, evictions: 0 });
  s.dev.close();
});

t.test('a digest is only a candidate: the full request must match', (t) => {
  const released: unknown[] = [];
  const cache = new KernelCache({ release: (e) => released.push(e) });
  const a: KernelBuildRequest = { spirv: new Uint32Array([0x0723_0203, 1]), pushConstantBytes: 0, dispatchBase: false };
  const b: KernelBuildRequest = { spirv: new Uint32Array([0x0723_0203, 2]), pushConstantBytes: 0, dispatchBase: false };
  t.not(requestDigest(a), requestDigest(b));
  t.ok(sameRequest(a, { ...a, spirv: a.spirv.slice() }), 'equal bytes in another buffer: the same request');
  t.notOk(sameRequest(a, b));
  // Forge a collision: b filed under a's digest is still not a's entry.
  const entry = cache.add(requestDigest(a), b, 100);
  t.equal(cache.find(requestDigest(a), a), undefined, "a colliding digest does not hand out another request's kernel");
  t.equal(cache.find(requestDigest(a), b), entry, 'the request it was built from finds it');
  cache.built(entry, { handle: 9, layout: [] });
  cache.release(entry);
  t.equal(cache.idleCount, 1, 'idle once its user went');
  t.equal(cache.reclaimableBytes, 100);
  cache.clear();
  t.same(released, [entry], 'released once, by the clear');
  t.equal(cache.size, 0);
  t.end();
});

t.test('destroyed kernels stay cached: a new context (the next process) gets them without a build', async (t) => {
  const s = setup();
  const usedBefore = s.used();
  const record = { spirv: spirv(3), pushBytes: 0 };
  const k = await s.built(record);
  t.equal(s.used() - usedBefore, charge(64), 'a live kernel is charged');
  t.equal(s.guest.op(MAILBOX_OPS.CTX_DESTROY.code, s.guest.ctx).result, 0, 'its process ends (CTX_DESTROY of the last user)');
  t.equal(s.kernels.count, 0);
  t.equal(s.backend.destroyed, 0, 'the device kernel is kept');
  t.equal(s.kernels.cache.idleCount, 1, 'idle in the cache');
  t.equal(s.dev.memory.chargedBytes, charge(64), 'still charged to the quota...');
  const next = s.guest.op(MAILBOX_OPS.CTX_CREATE.code).ret;
  t.equal(s.used(), 0, '...but not counted in QUERY USED: it is given back on demand');
  const bo = s.guest.op(MAILBOX_OPS.BO_ALLOC.code, next, 0x1000, 0, 0, 0);
  s.dev.aperture.set(encodeKernelRecord(record), bo.ret1);
  const again = s.guest.op(MAILBOX_OPS.KERNEL_CREATE2.code, next, bo.ret, 0, 64);
  t.equal(again.result, 0);
  t.equal(s.state(again.ret, next), S.READY.code, 'READY at once in the new context');
  t.equal(s.backend.requests.length, 1, 'built once in all');
  t.not(again.ret, k);
  t.equal(s.kernels.cache.idleCount, 0, 'in use again');
  s.dev.close();
  t.end();
});

t.test('identical creations while the build runs join it; a failed build is not kept', async (t) => {
  const s = setup();
  let release!: () => void;
  s.backend.buildGate = new Promise((r) => (release = r));
  const record = { spirv: spirv(4), pushBytes: 0 };
  const ids = [s.create(record), s.create(record), s.create(record)].map((r) => r.ret);
  t.same(
    ids.map((k) => s.state(k)),
    [S.BUILDING.code, S.BUILDING.code, S.BUILDING.code],
    'all BUILDING',
  );
  t.equal(s.kernels.buildsInProgress, 1, 'one build (no builder slot for the others)');
  t.equal(s.destroy(ids[1]!), 0, 'one is destroyed while it waits');
  s.guest.write('IRQ_STATUS', 0xff);
  release();
  s.backend.buildGate = null;
  t.same(await s.guest.kernelSettled(ids[0]!), { state: S.READY.code, result: 0 });
  t.equal(s.state(ids[2]!), S.READY.code, 'the other waiter too');
  t.ok(s.guest.read('IRQ_STATUS') & (1 << 3), 'the KERNEL interrupt');
  t.equal(s.backend.requests.length, 1);
  // A module the backend refuses: every waiter fails, and the next attempt builds again.
  s.backend.buildGate = new Promise((r) => (release = r));
  const bad = { spirv: spirv(0, 8), pushBytes: 0 };
  const usedBefore = s.used();
  const fails = [s.create(bad), s.create(bad)].map((r) => r.ret);
  release();
  s.backend.buildGate = null;
  for (const k of fails) t.same(await s.guest.kernelSettled(k), { state: S.FAILED.code, result: R.BAD_KERNEL.code }, 'FAILED');
  t.equal(s.used(), usedBefore, 'the failed build returned its charge');
  const retry = s.create(bad);
  t.same(await s.guest.kernelSettled(retry.ret), { state: S.FAILED.code, result: R.BAD_KERNEL.code });
  t.equal(s.backend.requests.length, 3, 'a failure is not cached: built again');
  t.same(s.kernels.cache.stats, { hits: 3, misses: 3, evictions: 0 });
  s.dev.close();
});

t.test('least recently used out first, at most maxEntries idle entries', async (t) => {
  const s = setup();
  s.kernels.cache.maxEntries = 3;
  const rec = (n: number) => ({ spirv: spirv(n), pushBytes: 0 });
  const handle = (k: number) => s.kernels.ready(s.guest.ctx, k)!.handle;
  const h: Record<string, unknown> = {};
  for (const n of [1, 2, 3]) {
    const k = await s.built(rec(n));
    h[n] = handle(k);
    s.destroy(k);
  }
  t.equal(s.kernels.cache.idleCount, 3);
  // Using 1 again makes it the most recent: 2 is now the oldest.
  const k1 = s.create(rec(1)).ret;
  t.equal(s.state(k1), S.READY.code);
  s.destroy(k1);
  const k4 = await s.built(rec(4));
  s.destroy(k4);
  t.same(s.backend.destroyedHandles, [h[2]], 'the fourth idle entry pushed out the least recently used (2)');
  t.equal(s.kernels.cache.idleCount, 3);
  t.equal(s.kernels.cache.stats.evictions, 1);
  const requests = s.backend.requests.length;
  t.equal(s.state(s.create(rec(2)).ret), S.BUILDING.code, '2 builds again');
  t.equal(s.state(s.create(rec(3)).ret), S.READY.code, '3 is still cached');
  t.equal(s.backend.requests.length, requests + 1);
  s.kernels.cache.maxEntries = 0;
  t.equal(s.kernels.cache.idleCount, 0, 'turning the cache off evicts the idle entries');
  s.dev.close();
});

t.test('quota pressure evicts idle entries, oldest first, before anything is refused', async (t) => {
  // Room for three kernels and the scratch buffer.
  const quota = 0x1000 + 3 * charge(64);
  const s = setup({ quota });
  const rec = (n: number) => ({ spirv: spirv(n), pushBytes: 0 });
  const handles: unknown[] = [];
  for (const n of [1, 2, 3]) {
    const k = await s.built(rec(n));
    handles.push(s.kernels.ready(s.guest.ctx, k)!.handle);
    s.destroy(k);
  }
  t.equal(s.dev.memory.used, quota, 'the quota is full of idle cached kernels');
  t.equal(s.used(), 0x1000, 'QUERY USED: only the buffer');
  // A buffer that needs one kernel's room: the oldest goes.
  const bo = s.guest.op(MAILBOX_OPS.BO_ALLOC.code, s.guest.ctx, KERNEL_PIPELINE_CHARGE, 0, 0, 0);
  t.equal(bo.result, 0, 'the allocation succeeds');
  t.same(s.backend.destroyedHandles, [handles[0]], 'by evicting the oldest idle kernel');
  // A new kernel that needs room: the next oldest goes.
  const k4 = await s.built(rec(4));
  t.same(s.backend.destroyedHandles, [handles[0], handles[1]], 'a new kernel evicts the next oldest');
  t.equal(s.state(s.create(rec(3)).ret), S.READY.code, 'the newest survived');
  t.equal(s.kernels.cache.stats.evictions, 2);
  // Nothing idle is left: the quota is refused, nothing evicted needlessly.
  t.equal(s.guest.op(MAILBOX_OPS.BO_ALLOC.code, s.guest.ctx, 0x1000, 0, 0, 0).result, R.OVER_QUOTA.code, 'over the quota with nothing idle: OVER_QUOTA');
  s.destroy(k4);
  t.equal(s.kernels.cache.idleCount, 1);
  t.equal(
    s.guest.op(MAILBOX_OPS.BO_ALLOC.code, s.guest.ctx, 2 * KERNEL_PIPELINE_CHARGE + 0x2000, 0, 0, 0).result,
    R.OVER_QUOTA.code,
    'more than evicting everything would free: OVER_QUOTA',
  );
  t.equal(s.kernels.cache.idleCount, 1, 'and the idle entry was not evicted for nothing');
  s.dev.close();
});

t.test('per VM: another VM on the same backend never gets this VM’s kernels', async (t) => {
  const a = setup({ name: 'vm-a' });
  const b = setup({ name: 'vm-b', backend: a.backend });
  const record = { spirv: spirv(5), pushBytes: 0 };
  await a.built(record);
  const k = b.create(record);
  t.equal(b.state(k.ret), S.BUILDING.code, 'the same bytes in another VM: built there');
  await b.guest.kernelSettled(k.ret);
  t.equal(a.backend.requests.length, 2, 'two builds');
  t.not(a.kernels.ready(a.guest.ctx, 1)!.handle, b.kernels.ready(b.guest.ctx, k.ret)!.handle, 'two device kernels');
  a.dev.close();
  b.dev.close();
});

t.test('a device reset or the VM going away empties the cache; a build in flight is released when it ends', async (t) => {
  const s = setup();
  const rec = (n: number) => ({ spirv: spirv(n), pushBytes: 0 });
  s.destroy(await s.built(rec(1)));
  await s.built(rec(2));
  let release!: () => void;
  s.backend.buildGate = new Promise((r) => (release = r));
  s.create(rec(3));
  t.equal(s.dev.memory.chargedBytes, 3 * charge(64));
  s.dev.pci.reset();
  t.equal(s.kernels.count, 0);
  t.equal(s.kernels.cache.size, 0, 'the cache is empty');
  t.equal(s.backend.destroyed, 2, 'both built kernels destroyed');
  t.equal(s.dev.memory.chargedBytes, 0, 'every charge returned, the build in flight too');
  release();
  s.backend.buildGate = null;
  await new Promise((r) => setTimeout(r, 5));
  t.equal(s.backend.destroyed, 3, 'what the build in flight produced is destroyed when it ends');
  t.equal(s.dev.memory.chargedBytes, 0);
  // After the reset the same bytes build again (the next user may be another VM).
  const g = new HostGuest(s.dev);
  const bo = g.alloc(0x1000);
  s.dev.aperture.set(encodeKernelRecord(rec(1)), bo.offset);
  const again = g.op(MAILBOX_OPS.KERNEL_CREATE2.code, g.ctx, bo.handle, 0, 64);
  t.equal(s.state(again.ret, g.ctx), S.BUILDING.code, 'built again after the reset');
  await g.kernelSettled(again.ret);
  // The VM going away (QEMU gone) empties it too.
  g.op(MAILBOX_OPS.KERNEL_DESTROY.code, g.ctx, again.ret);
  t.equal(s.kernels.cache.idleCount, 1);
  s.dev.pci.detachClient();
  t.equal(s.kernels.cache.size, 0);
  t.equal(s.backend.destroyed, 4);
  s.dev.close();
});

t.test('hits still count against the kernel limit; the cache turned off builds every time', async (t) => {
  const s = setup();
  s.kernels.maxKernels = 2;
  const record = { spirv: spirv(6), pushBytes: 0 };
  await s.built(record);
  t.equal(s.create(record).result, 0);
  t.equal(s.create(record).result, R.TOO_MANY.code, 'TOO_MANY even for a cached kernel');
  const off = setup();
  off.kernels.cache.maxEntries = 0;
  const k = await off.built(record);
  t.equal(off.state(off.create(record).ret), S.BUILDING.code, 'no sharing with the cache off');
  off.destroy(k);
  t.equal(off.backend.destroyed, 1, 'and nothing kept');
  t.same(off.kernels.cache.stats.hits, 0);
  s.dev.close();
  off.dev.close();
});
