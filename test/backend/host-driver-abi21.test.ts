/**
 * What contract 1.3 adds to the host driver (ABI 2.1), through {@link HostDevice} on the real
 * device (lavapipe here): the capability record; kernels whose layout is reflected from their
 * SPIR-V (several sets, descriptor arrays, uniform buffers), built with an entry point by name,
 * specialization constants (the workgroup size among them) and dispatch base; DISPATCH2 with
 * descriptors (left-out ones read zeros), UPDATE and byte-granular COPY; 8/16-bit storage,
 * Int64 and subgroup arithmetic where the device has them. And every argument of the wrong
 * type refused in TypeScript, every bad value by the library with its errno.
 *
 * Needs `make -C host-driver`, glslangValidator (glslang-tools) and spirv-as (spirv-tools):
 * FAILS, never skips, without them.
 */
import t, { type Test } from 'tap';
import type { BackendKernel, Command, KernelOptions } from '../../src/backend/backend.js';
import { HostDevice, type HostMemory } from '../../src/backend/host-driver.js';
import type { Descriptor, DescriptorType } from '../../src/device-commands.js';
import { loadNative } from '../../src/native/binding.js';
import { assemble, BASE_GLSL, glsl, NARROW_GLSL, SETS_GLSL, SPEC_GLSL, TWO_ENTRIES } from '../fixtures/spirv.js';

const native = loadNative();
const RW = native.PROT_READ | native.PROT_WRITE;

function openDevice(t: Test): HostDevice {
  const dev = HostDevice.open();
  t.teardown(() => dev.destroy());
  return dev;
}

/** A memfd mapped shared, as mdgpu maps its aperture; unmapped after `dev` is destroyed. */
function aperture(t: Test, dev: HostDevice, size: number): ArrayBuffer {
  const fd = native.memfdCreate('mdgpu-abi21-test', 0);
  native.ftruncate(fd, size);
  const buf = native.mmap(fd, 0, size, RW);
  t.teardown(async () => {
    await dev.destroy();
    native.munmap(buf);
    native.close(fd);
  });
  return buf;
}

function desc(set: number, binding: number, index: number, type: DescriptorType, offset: number, size: number): Descriptor {
  return { set, binding, index, type, range: { offset, size } };
}

function dispatch(
  kernel: BackendKernel,
  groups: [number, number, number],
  descriptors: Descriptor[],
  push: Uint8Array = new Uint8Array(0),
  base: [number, number, number] = [0, 0, 0],
): Command {
  return { kind: 'dispatch', kernel, base, groups, descriptors, pushConstants: push };
}

/** What t.rejects matches an error against. */
type Expected = { code: string; [k: string]: unknown } | { name: string; [k: string]: unknown };

function u32s(...values: number[]): Uint8Array {
  return new Uint8Array(new Uint32Array(values).buffer);
}

t.test('several sets, descriptor arrays and uniform buffers; left-out descriptors read zeros', async (t) => {
  const dev = openDevice(t);
  const buf = aperture(t, dev, 2 << 20);
  const k = await dev.buildKernel(glsl(SETS_GLSL), { pushConstantSize: 0 });
  t.same(
    k.layout,
    [
      { set: 0, binding: 0, type: 'uniform', count: 1 },
      { set: 0, binding: 2, type: 'storage', count: 3 },
      { set: 2, binding: 1, type: 'storage', count: 1 },
    ],
    'the layout reflected from the SPIR-V, sorted by set and binding',
  );
  t.same(k.localSize, [64, 1, 1]);
  t.equal(k.pushConstantSize, 0);
  t.equal(k.dispatchBase, false);
  const n = 1000;
  for (const [what, mem, base] of [
    ['zero copy', dev.importMemory(new Uint8Array(buf, 0, 1 << 20)), 0],
    ['staged', dev.importMemory(new Uint8Array(buf, 1 << 20, 1 << 20), { staged: true }), 1 << 20],
  ] as Array<[string, HostMemory, number]>) {
    new Uint32Array(buf, base, 2).set([n, 7]);
    const inputs = [0, 1, 2].map((j) => new Uint32Array(buf, base + 0x1000 * (j + 1), n));
    inputs.forEach((a, j) => a.forEach((_, i) => (a[i] = i + 1000 * j)));
    const out = new Uint32Array(buf, base + 0x10000, n + 1);
    out.fill(0xcccc_cccc);
    const all = [
      desc(2, 1, 0, 'storage', 0x10000, n * 4),
      ...[2, 1, 0].map((j) => desc(0, 2, j, 'storage', 0x1000 * (j + 1), n * 4)),
      desc(0, 0, 0, 'uniform', 0, 16),
    ];
    await dev.submit(mem, [dispatch(k, [Math.ceil(n / 64), 1, 1], all)]);
    let bad = 0;
    for (let i = 0; i < n; i++) if (out[i] !== (inputs[0]![i]! + 2 * inputs[1]![i]! + 3 * inputs[2]![i]!) * 7) bad++;
    t.equal(bad, 0, `${what}: every element from three sets' worth of descriptors`);
    t.equal(out[n], 0xcccc_cccc, `${what}: nothing past n`);
    // inputs[1] left out: it reads zeros.
    await dev.submit(mem, [
      dispatch(
        k,
        [Math.ceil(n / 64), 1, 1],
        all.filter((d) => !(d.binding === 2 && d.index === 1)),
      ),
    ]);
    bad = 0;
    for (let i = 0; i < n; i++) if (out[i] !== (inputs[0]![i]! + 3 * inputs[2]![i]!) * 7) bad++;
    t.equal(bad, 0, `${what}: a left-out array element reads zeros`);
    // The uniform buffer left out: n reads 0, nothing is written.
    out.fill(0xcccc_cccc);
    await dev.submit(mem, [dispatch(k, [Math.ceil(n / 64), 1, 1], [all[0]!])]);
    t.ok(
      out.every((w) => w === 0xcccc_cccc),
      `${what}: a left-out uniform buffer reads zeros`,
    );
  }
});

t.test('specialization constants, the workgroup size among them', async (t) => {
  const dev = openDevice(t);
  const buf = aperture(t, dev, 1 << 20);
  const mem = dev.importMemory(buf);
  const spirv = glsl(SPEC_GLSL);
  const defaults = dev.createKernel(spirv, { pushConstantSize: 0 });
  t.same(defaults.localSize, [1, 1, 1], 'without specialization: the defaults');
  defaults.destroy();
  const entries = [0, 1, 2, 3].map((id) => ({ constantId: id, offset: id * 4, size: 4 }));
  const options: KernelOptions = { pushConstantSize: 0, entryPoint: 'main', specialization: { entries, data: u32s(128, 3, -5 >>> 0, 128) } };
  const k = await dev.createKernelAsync(spirv, options);
  t.same(k.localSize, [128, 1, 1], 'the specialized workgroup size');
  const n = 512;
  await dev.submit(mem, [dispatch(k, [n / 128, 1, 1], [desc(0, 0, 0, 'storage', 0, n * 4)])]);
  const out = new Uint32Array(buf, 0, n);
  t.ok(
    out.every((v, i) => v === i * 3 - 5 + 128_000_000),
    `out[i] = i * MUL + ADD + 128e6 (out[1] = ${out[1]})`,
  );
  // The device's limits hold for the specialized values.
  const over = (data: Uint8Array) => dev.createKernel(spirv, { pushConstantSize: 0, specialization: { entries, data } });
  t.throws(() => over(u32s(dev.info.maxComputeWorkGroupInvocations + 1, 1, 0, 16)), { code: 'E2BIG', message: /WorkgroupSize/ });
  t.throws(() => over(u32s(64, 1, 0, dev.info.maxComputeSharedMemorySize / 4 + 1)), { code: 'E2BIG', message: /maxComputeSharedMemorySize/ });
  t.throws(() => over(u32s(64, 1, 0, 0)), { code: 'EINVAL', message: /length 0/ });
  t.throws(() => dev.createKernel(spirv, { pushConstantSize: 0, specialization: { entries: [{ constantId: 1, offset: 0, size: 2 }], data: u32s(1) } }), {
    code: 'EINVAL',
    message: /specialization constant 1 is given 2 bytes/,
  });
  await t.rejects(
    dev.createKernelAsync(spirv, {
      pushConstantSize: 0,
      specialization: {
        entries: [
          { constantId: 1, offset: 0, size: 4 },
          { constantId: 1, offset: 0, size: 4 },
        ],
        data: u32s(1),
      },
    }),
    { code: 'EINVAL', call: 'mdgpu_host_kernel_create2', message: /given twice/ },
  );
});

t.test('dispatch base: workgroup ids start at the base; zero groups run nothing', async (t) => {
  const dev = openDevice(t);
  const buf = aperture(t, dev, 1 << 20);
  const mem = dev.importMemory(buf);
  const spirv = glsl(BASE_GLSL);
  const k = dev.createKernel(spirv, { pushConstantSize: 4, dispatchBase: true });
  const plain = dev.createKernel(spirv, { pushConstantSize: 4 });
  t.equal(k.dispatchBase, true);
  t.equal(plain.dispatchBase, false);
  const out = new Uint32Array(buf, 0, 8 * 4 * 4);
  out.fill(0xffff_ffff);
  const records = [desc(0, 0, 0, 'storage', 0, out.byteLength)];
  await dev.submit(mem, [dispatch(k, [3, 2, 1], records, u32s(8), [2, 1, 0])]);
  let bad = 0;
  for (let y = 0; y < 4; y++) {
    for (let x = 0; x < 8; x++) {
      const r = out.subarray((y * 8 + x) * 4, (y * 8 + x) * 4 + 4);
      const inside = x >= 2 && x < 5 && y >= 1 && y < 3;
      if (inside ? r.join() !== [x, y, 0, 3].join() : r[0] !== 0xffff_ffff) bad++;
    }
  }
  t.equal(bad, 0, 'groups (2..4, 1..2) wrote their ids and the count 3; no other');
  await t.rejects(dev.submit(mem, [dispatch(plain, [1, 1, 1], records, u32s(8), [1, 0, 0])]), {
    code: 'EINVAL',
    message: /MDGPU_HOST_KERNEL_DISPATCH_BASE/,
  });
  await t.rejects(dev.submit(mem, [dispatch(k, [1, 1, 1], records, u32s(8), [65535, 0, 0])]), { code: 'E2BIG' });
  out.fill(0xffff_ffff);
  await dev.submit(mem, [dispatch(k, [4, 0, 2], records, u32s(8), [1, 1, 1]), dispatch(plain, [0, 0, 0], records, u32s(8))]);
  t.ok(
    out.every((w) => w === 0xffff_ffff),
    'a dispatch with a zero count runs nothing',
  );
  await t.rejects(dev.submit(mem, [dispatch(plain, [0, 1, 1], records)]), { code: 'EINVAL', message: /push constants/ }, 'and is checked all the same');
});

t.test('UPDATE and byte-granular COPY on zero-copy and staged memory', async (t) => {
  const dev = openDevice(t);
  const buf = aperture(t, dev, 2 << 20);
  const bytes = new Uint8Array(buf);
  for (const [what, mem, base] of [
    ['zero copy', dev.importMemory(new Uint8Array(buf, 0, 1 << 20)), 0],
    ['staged', dev.importMemory(new Uint8Array(buf, 1 << 20, 1 << 20), { staged: true }), 1 << 20],
  ] as Array<[string, HostMemory, number]>) {
    const view = bytes.subarray(base, base + (1 << 20));
    view.fill(0x11);
    for (let i = 0; i < 0x1000; i++) view[i] = i & 0xff;
    const big = Uint8Array.from({ length: 65536 }, (_, i) => (i * 7) & 0xff);
    await dev.submit(mem, [
      { kind: 'copy', src: { offset: 1, size: 5 }, dst: { offset: 0x4003, size: 5 } },
      { kind: 'copy', src: { offset: 0x101, size: 0x333 }, dst: { offset: 0x5002, size: 0x333 } },
      { kind: 'update', dst: { offset: 0x6000, size: 12 }, data: u32s(1, 2, 3) },
      { kind: 'update', dst: { offset: 0x10000, size: big.length }, data: big },
      { kind: 'barrier' },
      { kind: 'copy', src: { offset: 0x6001, size: 7 }, dst: { offset: 0x7011, size: 7 } },
    ]);
    t.same([...view.subarray(0x4002, 0x4009)], [0x11, 1, 2, 3, 4, 5, 0x11], `${what}: 5 bytes copied at odd offsets`);
    t.ok(view.subarray(0x5002, 0x5335).every((b, i) => b === ((0x101 + i) & 0xff)) && view[0x5335] === 0x11, `${what}: 0x333 bytes copied`);
    t.same([...new Uint32Array(buf, base + 0x6000, 4)], [1, 2, 3, 0x1111_1111], `${what}: UPDATE wrote 12 bytes`);
    t.ok(view.subarray(0x10000, 0x20000).every((b, i) => b === ((i * 7) & 0xff)) && view[0x20000] === 0x11, `${what}: UPDATE of 64 KiB`);
    t.same([...view.subarray(0x7011, 0x7018)], [0, 0, 0, 2, 0, 0, 0], `${what}: a COPY after the BARRIER sees the UPDATE`);
  }
  const mem = dev.importMemory(new Uint8Array(buf, 0, 1 << 20));
  await t.rejects(dev.submit(mem, [{ kind: 'update', dst: { offset: 2, size: 4 }, data: u32s(1) }]), { code: 'EINVAL', message: /UPDATE offset/ });
  await t.rejects(dev.submit(mem, [{ kind: 'update', dst: { offset: 0, size: 65540 }, data: new Uint8Array(65540) }]), { code: 'E2BIG' });
});

t.test('8/16-bit storage, Int64 and subgroup arithmetic where the device has them', async (t) => {
  const dev = openDevice(t);
  const { features, subgroupSupportedOperations: ops, subgroupSize } = dev.info.caps;
  if (dev.info.driverName === 'llvmpipe')
    t.ok(features.storageBuffer8BitAccess && features.storageBuffer16BitAccess && (ops & 0x05) === 0x05, 'lavapipe has them');
  if (!features.storageBuffer8BitAccess || !features.storageBuffer16BitAccess || !features.shaderInt64 || (ops & 0x05) !== 0x05) {
    t.throws(
      () => dev.createKernel(glsl(NARROW_GLSL), { pushConstantSize: 0 }),
      { code: 'EINVAL', message: /capability/ },
      'refused where the device lacks them',
    );
    return;
  }
  const buf = aperture(t, dev, 1 << 20);
  const mem = dev.importMemory(buf);
  const k = dev.createKernel(glsl(NARROW_GLSL), { pushConstantSize: 0 });
  const n = 256;
  const a = new Uint8Array(buf, 0, n);
  const b = new Uint16Array(buf, 0x1000, n);
  for (let i = 0; i < n; i++) {
    a[i] = (i * 7) & 0xff;
    b[i] = 0x4000 + (i % 4) * 0x100; // 2.0, 2.5, 3.0, 3.5 as float16
  }
  await dev.submit(mem, [
    dispatch(
      k,
      [n / 64, 1, 1],
      [0, 1, 2, 3, 4].map((j) => desc(0, j, 0, 'storage', 0x1000 * j, n * 8)),
    ),
  ]);
  const c = new Uint32Array(buf, 0x2000, n);
  const s = new Uint32Array(buf, 0x3000, 2 * n);
  const l = new BigInt64Array(buf, 0x4000, n);
  let bad = 0;
  for (let i = 0; i < n; i++) if (c[i] !== 2 + Math.floor((i % 4) / 2) + a[i]! || l[i] !== BigInt(a[i]!) * -4294967296n) bad++;
  t.equal(bad, 0, 'u8 and f16 read, i64 written');
  bad = 0;
  for (let i = 0; i < n; i++) {
    let sum = 0;
    for (let j = 0; j < n; j++) if (s[2 * j + 1] === s[2 * i + 1]) sum += a[j]!;
    if (s[2 * i] !== sum) bad++;
  }
  t.equal(bad, 0, `subgroupAdd over subgroups of ${subgroupSize}`);
});

t.test('entry points by name', async (t) => {
  const dev = openDevice(t);
  const buf = aperture(t, dev, 1 << 20);
  const mem = dev.importMemory(buf);
  const spirv = assemble(TWO_ENTRIES);
  const one = dev.createKernel(spirv, { pushConstantSize: 0, entryPoint: 'one' });
  const two = await dev.createKernelAsync(spirv, { pushConstantSize: 0, entryPoint: 'two' });
  t.same(
    [one.localSize, two.localSize],
    [
      [4, 1, 1],
      [2, 3, 1],
    ],
  );
  await dev.submit(mem, [
    dispatch(one, [1, 1, 1], [desc(0, 0, 0, 'storage', 0, 16)]),
    { kind: 'barrier' },
    dispatch(two, [1, 1, 1], [desc(0, 0, 0, 'storage', 16, 16)]),
  ]);
  t.same([new Uint32Array(buf)[0], new Uint32Array(buf)[4]], [1, 2], 'each ran its own function');
  t.throws(() => dev.createKernel(spirv, { pushConstantSize: 0 }), { code: 'EINVAL', message: /no entry point "main"/ });
  t.throws(() => dev.createKernel(spirv, { pushConstantSize: 0, entryPoint: 'three' }), { code: 'EINVAL', message: /no entry point "three"/ });
});

t.test('kernels and descriptors the library refuses, with its errno', async (t) => {
  const dev = openDevice(t);
  const buf = aperture(t, dev, 1 << 20);
  const mem = dev.importMemory(buf);
  const { caps } = dev.info;
  const layout = (decl: string) => glsl(`#version 450\nlayout(local_size_x = 1) in;\n${decl}\nvoid main() {}\n`);
  t.throws(() => dev.createKernel(layout('layout(set = 0, binding = 0) uniform sampler2D s;\nvoid f() { texture(s, vec2(0)); }'), { pushConstantSize: 0 }), {
    code: 'EINVAL',
    message: /is not supported \(storage and uniform buffers/,
  });
  t.throws(() => dev.createKernel(layout(`layout(set = ${caps.maxBoundDescriptorSets}, binding = 0) buffer B { uint v; } b;`), { pushConstantSize: 0 }), {
    code: 'E2BIG',
    message: /maxBoundDescriptorSets/,
  });
  t.throws(
    () =>
      dev.createKernel(layout(`layout(set = 0, binding = 0) uniform B { uint v; } b[${caps.maxPerStageDescriptorUniformBuffers + 1}];`), {
        pushConstantSize: 0,
      }),
    { code: 'E2BIG', message: /maxPerStageDescriptorUniformBuffers/ },
  );
  t.throws(() => dev.createKernel(glsl(SETS_GLSL), { bindings: 4, pushConstantSize: 0 }), { code: 'EINVAL', message: /uniform buffers are not supported/ });
  const k = dev.createKernel(glsl(SETS_GLSL), { pushConstantSize: 0 });
  const bad = async (descriptors: Descriptor[], expected: Expected, what: string) =>
    t.rejects(dev.submit(mem, [dispatch(k, [1, 1, 1], descriptors)]), expected, what);
  await bad([desc(0, 1, 0, 'storage', 0, 64)], { code: 'EINVAL', message: /not one the kernel declares/ }, 'a binding it does not declare');
  await bad([desc(0, 0, 0, 'storage', 0, 64)], { code: 'EINVAL', message: /type 0 for a binding of type 1/ }, 'the wrong type');
  await bad([desc(0, 2, 3, 'storage', 0, 64)], { code: 'EINVAL', message: /index 3 of an array of 3/ }, 'past the array');
  await bad([desc(0, 2, 1, 'storage', 0, 64), desc(0, 2, 1, 'storage', 64, 64)], { code: 'EINVAL', message: /given twice/ }, 'twice');
  await bad([desc(0, 0, 0, 'uniform', 0, caps.maxUniformBufferRange + 16)], { code: 'E2BIG' }, 'a uniform range over maxUniformBufferRange');
  await bad(
    [desc(0, 0, 0, 'uniform', caps.minUniformBufferOffsetAlignment + 4, 16)],
    { code: 'EINVAL', message: /not a multiple/ },
    'a misaligned uniform offset',
  );
  await bad([desc(0, 2, 0, 'storage', (1 << 20) - 16, 64)], { code: 'EINVAL', message: /outside memory/ }, 'past the memory');
});

t.test('arguments of the wrong type are refused before the library', async (t) => {
  const dev = openDevice(t);
  const other = openDevice(t);
  const buf = aperture(t, dev, 1 << 20);
  const mem = dev.importMemory(buf);
  const spirv = glsl(BASE_GLSL);
  const kernelOf = (options: unknown) => () => dev.createKernel(spirv, options as KernelOptions);
  t.throws(kernelOf({ pushConstantSize: 4, entryPoint: 7 }), { name: 'TypeError', code: 'ERR_INVALID_ARG_TYPE' });
  t.throws(kernelOf({ pushConstantSize: 4, entryPoint: 'x'.repeat(256) }), { name: 'RangeError', code: 'ERR_OUT_OF_RANGE' });
  t.throws(kernelOf({ pushConstantSize: 4, entryPoint: '' }), { name: 'RangeError' });
  t.throws(kernelOf({ pushConstantSize: 4, entryPoint: 'ma\0in' }), { name: 'RangeError' });
  t.throws(kernelOf({ pushConstantSize: 4, specialization: { entries: [], data: [1, 2] } }), { name: 'TypeError' });
  t.throws(kernelOf({ pushConstantSize: 4, specialization: { entries: [{ constantId: -1, offset: 0, size: 4 }], data: new Uint8Array(4) } }), {
    code: 'ERR_OUT_OF_RANGE',
  });
  t.throws(kernelOf({ pushConstantSize: 4, dispatchBase: 1 }), { name: 'TypeError' });
  t.throws(kernelOf({ pushConstantSize: -4 }), { code: 'ERR_OUT_OF_RANGE' });
  t.throws(kernelOf(null), { name: 'TypeError' });
  await t.rejects(dev.createKernelAsync(spirv, { pushConstantSize: 4, bindings: 1.5 }), { code: 'ERR_INVALID_ARG_TYPE' });
  const k = dev.createKernel(spirv, { pushConstantSize: 4 });
  const foreign = other.createKernel(spirv, { pushConstantSize: 4 });
  const records = [desc(0, 0, 0, 'storage', 0, 256)];
  const bad = async (cmds: unknown[], expected: Expected, what: string) => t.rejects(dev.submit(mem, cmds as Command[]), expected, what);
  await bad([dispatch(foreign, [1, 1, 1], records, u32s(1))], { name: 'TypeError', message: /not a kernel of this device/ }, 'a kernel of another device');
  await bad(
    [dispatch(k, [1, 1, 1], [{ ...records[0]!, type: 'image' as DescriptorType }], u32s(1))],
    { name: 'TypeError', message: /'storage' or 'uniform'/ },
    'descriptor type',
  );
  await bad(
    [dispatch(k, [1, 1, 1], [{ ...records[0]!, range: null as unknown as { offset: number; size: number } }], u32s(1))],
    { name: 'TypeError' },
    'no range',
  );
  await bad([{ ...dispatch(k, [1, 1, 1], records), pushConstants: [1, 0, 0, 0] }], { name: 'TypeError', message: /pushConstants/ }, 'push constants');
  await bad([{ ...dispatch(k, [1, 1, 1], records, u32s(1)), groups: [1, 1] }], { code: 'ERR_INVALID_ARG_TYPE', message: /groups\[2\]/ }, 'two group counts');
  await bad([{ ...dispatch(k, [1, 1, 1], records, u32s(1)), base: [0, 0, 2 ** 32] }], { code: 'ERR_OUT_OF_RANGE' }, 'a base over 32 bits');
  await bad(
    [{ kind: 'update', dst: { offset: 0, size: 8 }, data: u32s(1) }],
    { name: 'RangeError', message: /UPDATE dst.size 8 is not data.byteLength 4/ },
    'update size',
  );
  await bad([{ kind: 'update', dst: { offset: 0, size: 4 }, data: [1, 2, 3, 4] }], { name: 'TypeError' }, 'update data');
  await bad([{ kind: 'copy', src: { offset: 0, size: 8 }, dst: { offset: 64, size: 4 } }], { name: 'RangeError', message: /differ/ }, 'copy sizes');
  await bad([{ kind: 'timestamp', dst: 8 }], { name: 'TypeError', message: /range/ }, 'a range that is a number');
  t.equal(dev.pending, 0, 'nothing submitted');
});
