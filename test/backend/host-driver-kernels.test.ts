/**
 * Hostile kernels through {@link HostDevice}, on the real device (lavapipe here), and kernels
 * built off the event loop:
 * - issue 9 F1: SPIR-V whose types expand to millions of member paths (SPIRV-Tools took 50-90 s
 *   to refuse 1.5 KB of it) is refused by the library's own linear walk before validation;
 * - F6: kernels over the device's limits (shared memory, local size, invocations) and the
 *   library's (Private/Function memory) are refused at creation, not at dispatch;
 * - F7: with robustBufferAccess2, a kernel reading and writing outside its bindings reads 0 and
 *   changes nothing outside them;
 * - createKernelAsync: a slow compile runs on a worker thread while batches complete and the
 *   event loop ticks; several compile at once.
 *
 * Needs `make -C host-driver`, `make -C guest-driver/kernels` and spirv-as (spirv-tools):
 * FAILS, never skips, without them.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import t, { type Test } from 'tap';
import { HostDevice, type HostKernel, spirvWords } from '../../src/backend/host-driver.js';
import type { Descriptor } from '../../src/device-commands.js';
import { loadNative } from '../../src/native/binding.js';
import { arrayVariable, assemble, kernel, localSize, nestedModule, ROBUSTNESS_KERNEL, slowKernel } from '../fixtures/spirv.js';

const native = loadNative();
const KERNELS = fileURLToPath(new URL('../../../guest-driver/kernels/build/', import.meta.url));
const RW = native.PROT_READ | native.PROT_WRITE;

function kernelWords(name: string): Uint32Array {
  const file = join(KERNELS, `${name}.spv`);
  if (!existsSync(file)) throw new Error(`${file} is missing: run \`make -C guest-driver/kernels\``);
  return spirvWords(readFileSync(file));
}

function openDevice(t: Test, options: Parameters<typeof HostDevice.open>[0] = {}): HostDevice {
  const dev = HostDevice.open(options);
  t.teardown(() => dev.destroy());
  return dev;
}

/** A memfd mapped shared, as mdgpu maps its aperture; unmapped after `dev` is destroyed. */
function aperture(t: Test, dev: HostDevice, size: number): ArrayBuffer {
  const fd = native.memfdCreate('mdgpu-kernels-test', 0);
  native.ftruncate(fd, size);
  const buf = native.mmap(fd, 0, size, RW);
  t.teardown(async () => {
    await dev.destroy();
    native.munmap(buf);
    native.close(fd);
  });
  return buf;
}

const NONE = { bindings: 0, pushConstantSize: 0 };

/** A storage-buffer descriptor of set 0. */
function storage(binding: number, offset: number, size: number): Descriptor {
  return { set: 0, binding, index: 0, type: 'storage', range: { offset, size } };
}

t.test('F1: types that expand to millions of member paths are refused before validation', async (t) => {
  const dev = openDevice(t);
  const attack = nestedModule(16, 3, { push: true });
  t.ok(attack.byteLength < 2048, `the attack is ${attack.byteLength} bytes`);
  t.throws(() => dev.createKernel(attack, { bindings: 0, pushConstantSize: 128 }), {
    name: 'BackendError',
    code: 'E2BIG',
    message: /expands to 729 member paths, more than 256 \(MDGPU_HOST_MAX_TYPE_PATHS\)/,
  });
  // Off the event loop too, under a watchdog no machine comes near: it used to take 50-90 s.
  let watchdog: NodeJS.Timeout | undefined;
  const outcome = await Promise.race([
    dev.createKernelAsync(attack, { bindings: 0, pushConstantSize: 128 }).then(
      () => 'built',
      (err: unknown) => err,
    ),
    new Promise((resolve) => {
      watchdog = setTimeout(() => resolve('still validating after 20 s'), 20_000);
    }),
  ]);
  clearTimeout(watchdog);
  t.match(outcome, { name: 'BackendError', code: 'E2BIG', message: /member paths/ }, 'refused, not built, before the watchdog');

  // Depth on its own: a chain of one-member structs, 16 levels accepted, 17 refused.
  dev.createKernel(nestedModule(15, 1), { bindings: 1, pushConstantSize: 0 }).destroy();
  t.throws(() => dev.createKernel(nestedModule(16, 1), { bindings: 1, pushConstantSize: 0 }), {
    code: 'E2BIG',
    message: /nested 17 deep, more than 16/,
  });
  // Paths: 4^4 = 256 accepted, one more refused.
  dev.createKernel(nestedModule(4, 4), { bindings: 1, pushConstantSize: 0 }).destroy();
  t.throws(() => dev.createKernel(nestedModule(4, 4, { extra: 1 }), { bindings: 1, pushConstantSize: 0 }), {
    code: 'E2BIG',
    message: /257 member paths/,
  });
  // Within the limit per type, but walked too often over the module (11 s each before).
  for (const [what, options] of [
    ['20,000 variables', { vars: 20_000 }],
    ['20,000 loads and stores', { uses: 20_000 }],
  ] as const) {
    t.throws(
      () => dev.createKernel(nestedModule(4, 4, options), { bindings: 1, pushConstantSize: 0 }),
      { code: 'E2BIG', message: /MDGPU_HOST_MAX_MODULE_PATHS/ },
      what,
    );
  }
  dev.createKernel(nestedModule(4, 4, { vars: 16, uses: 16 }), { bindings: 1, pushConstantSize: 0 }).destroy();
});

t.test("F6: a kernel over the device's limits is refused at creation, with the limit named", (t) => {
  const dev = openDevice(t);
  const { maxComputeSharedMemorySize: shared, maxComputeWorkGroupSize: size, maxComputeWorkGroupInvocations: inv } = dev.info;
  dev.createKernel(arrayVariable(shared / 4, 'Workgroup'), NONE).destroy();
  t.throws(() => dev.createKernel(arrayVariable(shared / 4 + 1, 'Workgroup'), NONE), {
    code: 'E2BIG',
    message: /over the \d+ allowed \(maxComputeSharedMemorySize\)/,
  });
  // A valid module that segfaulted lavapipe at dispatch.
  t.throws(() => dev.createKernel(arrayVariable(2 ** 29, 'Workgroup'), NONE), {
    code: 'E2BIG',
    message: /Workgroup \(shared\) variables are 2147483648 bytes/,
  });
  t.throws(() => dev.createKernel(localSize(size[0] + 1, 1, 1), NONE), { code: 'E2BIG', message: /LocalSize .* \(maxComputeWorkGroupSize\)/ });
  t.throws(() => dev.createKernel(localSize(1, 1, size[2] + 1), NONE), { code: 'E2BIG', message: /maxComputeWorkGroupSize/ });
  t.ok(size[0] * 2 > inv, 'x at its maximum times 2 is over the invocations');
  t.throws(() => dev.createKernel(localSize(size[0], 2, 1), NONE), {
    code: 'E2BIG',
    message: /invocations, over the device's \d+ \(maxComputeWorkGroupInvocations\)/,
  });
  t.throws(() => dev.createKernel(localSize(0, 1, 1), NONE), { code: 'EINVAL', message: /zero dimension/ });
  t.throws(
    () =>
      dev.createKernel(
        kernel({
          annotations: 'OpDecorate %wgs BuiltIn WorkgroupSize',
          types: `%v3 = OpTypeVector %uint 3\n%cx = OpSpecConstant %uint ${inv + 1}\n%wgs = OpSpecConstantComposite %v3 %cx %c1 %c1`,
        }),
        NONE,
      ),
    { code: 'E2BIG', message: /WorkgroupSize/ },
  );
  // Per-invocation memory: the library's limit.
  const limit = dev.info.maxKernelPrivateSize / 4;
  const fn = (n: number) =>
    kernel({ types: `%cn = OpConstant %uint ${n}\n%arr = OpTypeArray %float %cn\n%pf = OpTypePointer Function %arr`, body: '%a = OpVariable %pf Function' });
  dev.createKernel(fn(limit), NONE).destroy();
  t.throws(() => dev.createKernel(fn(limit + 1), NONE), { code: 'E2BIG', message: /MDGPU_HOST_MAX_PRIVATE_SIZE/ });
  t.throws(() => dev.createKernel(arrayVariable(2 ** 28, 'Private'), NONE), { code: 'E2BIG', message: /Private and Function variables/ });
  t.end();
});

t.test("ids outside the module are refused by the library's own walk, before validation", (t) => {
  const dev = openDevice(t);
  const saxpy = kernelWords('saxpy');
  for (const bound of [0, 1, 8]) {
    const words = saxpy.slice();
    words[3] = bound;
    t.throws(() => dev.createKernel(words, { bindings: 2, pushConstantSize: 8 }), { code: 'EINVAL', message: /not below the bound/ }, `bound ${bound}`);
  }
  t.throws(
    () => dev.createKernel(kernel({ types: '%S = OpTypeStruct %T\n%T = OpTypeFloat 64\n%pS = OpTypePointer Private %S\n%v = OpVariable %pS Private' }), NONE),
    { code: 'EINVAL', message: /not a type defined before it/ },
  );
  t.end();
});

t.test('F7: a kernel reading and writing outside its bindings touches nothing outside them', async (t) => {
  const dev = openDevice(t);
  const info = dev.info;
  if (info.driverName === 'llvmpipe') t.equal(info.robustness, 'robustBufferAccess2', 'lavapipe has VK_EXT_robustness2');
  t.not(info.robustness, 'none');
  const buf = aperture(t, dev, 1 << 20);
  const mem = dev.importMemory(buf);
  const k = dev.createKernel(assemble(ROBUSTNESS_KERNEL), { bindings: 2, pushConstantSize: 12 });
  const all = new Uint32Array(buf);
  const SRC = 0x10000;
  const DST = 0x20000;
  const WORDS = 256;
  const src = new Uint32Array(buf, SRC, WORDS);
  const dst = new Uint32Array(buf, DST, WORDS);
  const cases: Array<[string, number, number, number]> = [
    ['in bounds', 256, 0, 0],
    ['reads after the source', 256, 256, 0],
    ['reads before the source', 256, -512, 0],
    ['reads and writes past both', 512, 0, 0],
    ['writes after the destination', 256, 0, 256],
    ['writes before the destination', 256, 0, -1024],
    ['far outside the memory', 256, 0x3fff_0000, 0x3fff_0000],
  ];
  for (const [what, n, rshift, wshift] of cases) {
    for (let i = 0; i < all.length; i++) all[i] = (0xa500_0000 | i) >>> 0; // every word tells its place
    dst.fill(0xdddd_dddd);
    const before = all.slice();
    await dev.submit(mem, [
      {
        kind: 'dispatch',
        kernel: k,
        base: [0, 0, 0],
        groups: [Math.ceil(n / 64), 1, 1],
        descriptors: [storage(0, SRC, WORDS * 4), storage(1, DST, WORDS * 4)],
        pushConstants: new Uint8Array(new Uint32Array([n, rshift >>> 0, wshift >>> 0]).buffer),
      },
    ]);
    let outside = 0;
    for (let i = 0; i < all.length; i++) if ((i < DST / 4 || i >= DST / 4 + WORDS) && all[i] !== before[i]) outside++;
    t.equal(outside, 0, `${what}: no word outside the destination binding changed`);
    let wrong = 0;
    for (let i = 0; i < WORDS; i++) {
      const w = (i - wshift) >>> 0; // the invocation that writes dst[i]
      const r = (w + rshift) >>> 0; // and the source word it reads
      let want: number;
      if (w >= n) want = 0xdddd_dddd;
      else if (r < WORDS) want = src[r]!;
      else if (info.robustness === 'robustBufferAccess2') want = 0;
      else continue; // robustBufferAccess: any value of the memory, or 0
      if (dst[i] !== want) wrong++;
    }
    t.equal(wrong, 0, `${what}: the destination holds what was read (0 outside the source)`);
  }
});

t.test('createKernelAsync: a slow compile leaves the event loop and the device running', async (t) => {
  const dev = openDevice(t);
  const mem = dev.importMemory(aperture(t, dev, 1 << 20));
  const slow = slowKernel(20_000);
  let ticks = 0;
  const ticker = setInterval(() => ticks++, 1);
  t.teardown(() => clearInterval(ticker));
  const order: string[] = [];
  let ticksWhenBuilt = -1;
  let fillsWhenBuilt = -1;
  let fills = 0;
  const started = Date.now();
  const compile = dev.createKernelAsync(slow, { bindings: 1, pushConstantSize: 0 }).then((k) => {
    ticksWhenBuilt = ticks;
    fillsWhenBuilt = fills;
    order.push('built');
    return k;
  });
  order.push('returned');
  t.equal(dev.compiling, 1, 'one kernel compiling');
  // FILLs one after another, a few ms apart (not to starve the compile of the CPU).
  while (fillsWhenBuilt < 0) {
    await dev.submit(mem, [{ kind: 'fill', dst: { offset: 0, size: 4096 }, value: fills }]);
    if (fills++ === 0) order.push('first FILL completed');
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
  const k = await compile;
  t.comment(`compiled in ${Date.now() - started} ms`);
  t.same(order.slice(0, 3), ['returned', 'first FILL completed', 'built'], 'a batch completed while the kernel compiled');
  t.ok(fillsWhenBuilt >= 1, `${fillsWhenBuilt} FILLs completed during the compile`);
  t.ok(ticksWhenBuilt >= 1, `the event loop ticked ${ticksWhenBuilt} times during the compile`);
  t.equal(dev.compiling, 0);
  t.equal(k.layout.length, 1);
  // The kernel works: each of 64 words goes through the chain of 20,000 multiply-adds.
  const buf = aperture(t, dev, 4096);
  const words = new Float32Array(buf, 0, 64);
  words.fill(1);
  await dev.submit(dev.importMemory(buf), [
    { kind: 'dispatch', kernel: k, base: [0, 0, 0], groups: [1, 1, 1], descriptors: [storage(0, 0, 256)], pushConstants: new Uint8Array(0) },
  ]);
  let want = 1;
  for (let i = 0; i < 20_000; i++) want = Math.fround(Math.fround(want * Math.fround(1.0001)) + 0.5);
  t.ok(
    words.every((w) => Math.abs(w - want) <= 1e-3 * want),
    `${words[0]} ≈ ${want} in every word`,
  );
  k.destroy();
});

t.test('createKernelAsync: several at once; errors, destroy', async (t) => {
  const dev = openDevice(t);
  const names = ['saxpy', 'memcpy', 'gemm', 'reduce'] as const;
  const options = { saxpy: [2, 8], memcpy: [2, 4], gemm: [3, 12], reduce: [2, 4] } as const;
  const pending = [...names, ...names].map((name) =>
    dev.createKernelAsync(kernelWords(name), { bindings: options[name][0], pushConstantSize: options[name][1] }),
  );
  t.equal(dev.compiling, 8, 'two compiling, six waiting');
  const kernels = await Promise.all(pending);
  t.equal(new Set(kernels.map((k) => k.handle)).size, 8, 'eight kernels, eight handles');
  t.equal(dev.compiling, 0);

  // A kernel built on a worker thread runs: saxpy on 1000 floats.
  const buf = aperture(t, dev, 1 << 20);
  const mem = dev.importMemory(buf);
  const x = new Float32Array(buf, 0, 1000);
  const y = new Float32Array(buf, 4096, 1000);
  for (let i = 0; i < 1000; i++) {
    x[i] = i;
    y[i] = 1;
  }
  const push = new DataView(new ArrayBuffer(8));
  push.setUint32(0, 1000, true);
  push.setFloat32(4, 2, true);
  await dev.submit(mem, [
    {
      kind: 'dispatch',
      kernel: kernels[0]!,
      base: [0, 0, 0],
      groups: [Math.ceil(1000 / 64), 1, 1],
      descriptors: [storage(0, 0, 4000), storage(1, 4096, 4000)],
      pushConstants: new Uint8Array(push.buffer),
    },
  ]);
  t.equal(y[999], 2 * 999 + 1, 'saxpy ran');

  // Refusals come back with the library's errno and message (from the worker thread).
  await t.rejects(dev.createKernelAsync(kernelWords('saxpy'), { bindings: 1, pushConstantSize: 8 }), {
    name: 'BackendError',
    code: 'EINVAL',
    call: 'mdgpu_host_kernel_create2',
    message: /storage buffer at binding 1, but binding_count is 1/,
  });
  await t.rejects(dev.createKernelAsync(new Uint32Array(3), NONE), { code: 'EINVAL', message: /not SPIR-V/ });
  await t.rejects(dev.createKernelAsync(new Uint8Array(8) as unknown as Uint32Array, NONE), { code: 'ERR_INVALID_ARG_TYPE' });
  await t.rejects(dev.createKernelAsync(kernelWords('saxpy'), { bindings: -1, pushConstantSize: 8 }), { code: 'ERR_OUT_OF_RANGE' });

  // Destroy: a compile that started completes first; one still waiting is refused.
  const one = HostDevice.open({ compileThreads: 1 });
  const started = one.createKernelAsync(kernelWords('gemm'), { bindings: 3, pushConstantSize: 12 });
  const waiting = one.createKernelAsync(kernelWords('saxpy'), { bindings: 2, pushConstantSize: 8 });
  const destroyed = one.destroy();
  await t.rejects(waiting, { code: 'ENOENT', message: /destroyed/ });
  const kernel: HostKernel = await started;
  t.ok(kernel.handle > 0, 'the started compile finished');
  await destroyed;
  kernel.destroy(); // the device took it with it: a no-op
  await t.rejects(one.createKernelAsync(kernelWords('saxpy'), { bindings: 2, pushConstantSize: 8 }), { code: 'ENOENT' });
  t.throws(() => HostDevice.open({ compileThreads: 0 }), { code: 'ERR_OUT_OF_RANGE' });
});
