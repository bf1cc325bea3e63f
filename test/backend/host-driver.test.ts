/**
 * libmdgpu-host through koffi, on the real device (Mesa lavapipe where there is no GPU).
 *
 * Needs `make -C host-driver` and `make -C guest-driver/kernels` (the library and the SPIR-V
 * kernels) and a Vulkan driver. Without them this file FAILS with a message saying what to
 * build or install: it never skips.
 */
import koffi from 'koffi';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import t, { type Test } from 'tap';
import { BackendError, type BackendKernel, type Command, DeviceType, type SubmissionStatus } from '../../src/backend/backend.js';
import {
  abiTypes,
  HOST_DRIVER_PATH,
  HostDevice,
  type HostMemory,
  listDevices,
  loadHostDriver,
  loadHostDriverFrom,
  spirvWords,
} from '../../src/backend/host-driver.js';
import type { Descriptor } from '../../src/device-commands.js';
import { errnoName } from '../../src/errno.js';
import { loadNative } from '../../src/native/binding.js';
import { kernel } from '../fixtures/spirv.js';

const native = loadNative();
const lib = loadHostDriver(); // throws (failing this file) if the library is not built
const KERNELS = fileURLToPath(new URL('../../../guest-driver/kernels/build/', import.meta.url));
const PAGE = 4096;
const RW = native.PROT_READ | native.PROT_WRITE;

function kernelWords(name: string): Uint32Array {
  const file = join(KERNELS, `${name}.spv`);
  if (!existsSync(file)) throw new Error(`${file} is missing: run \`make -C guest-driver/kernels\``);
  return spirvWords(readFileSync(file));
}

/** Open the default device; destroyed (after its pending work) at the end of the test. */
function openDevice(t: Test, options: Parameters<typeof HostDevice.open>[0] = {}): HostDevice {
  const dev = HostDevice.open(options);
  t.teardown(() => dev.destroy());
  return dev;
}

/**
 * A memfd of `size` bytes mapped shared through the native addon: exactly how mdgpu maps its
 * aperture. Unmapped after `dev` is destroyed (the device may use it until then).
 */
function aperture(t: Test, dev: HostDevice, size: number): { fd: number; buf: ArrayBuffer } {
  const fd = native.memfdCreate('mdgpu-backend-test', 0);
  native.ftruncate(fd, size);
  const buf = native.mmap(fd, 0, size, RW);
  t.teardown(async () => {
    await dev.destroy();
    native.munmap(buf);
    native.close(fd);
  });
  return { fd, buf };
}

function pushOf(...fields: Array<['u32' | 'f32', number]>): Uint8Array {
  const bytes = new Uint8Array(fields.length * 4);
  const dv = new DataView(bytes.buffer);
  fields.forEach(([type, v], i) => (type === 'u32' ? dv.setUint32(i * 4, v, true) : dv.setFloat32(i * 4, v, true)));
  return bytes;
}

/** 1D dispatch of ceil(n / 64) groups as the x·y grid the kernels flatten. */
function grid(n: number): [number, number, number] {
  const groups = Math.ceil(n / 64);
  const x = Math.min(groups, 65535);
  return [x, Math.ceil(groups / x), 1];
}

/** A storage-buffer descriptor of set 0 (the guest kernels' bindings). */
function storage(binding: number, offset: number, size: number): Descriptor {
  return { set: 0, binding, index: 0, type: 'storage', range: { offset, size } };
}

/** A dispatch command with no base. */
function dispatch(kernel: BackendKernel, groups: readonly number[], descriptors: Descriptor[], push: Uint8Array = new Uint8Array(0)): Command {
  return { kind: 'dispatch', kernel, base: [0, 0, 0], groups: [groups[0] ?? 1, groups[1] ?? 1, groups[2] ?? 1], descriptors, pushConstants: push };
}

/** A range of the batch's memory. */
function at(offset: number, size: number): { offset: number; size: number } {
  return { offset, size };
}

t.test('the koffi declarations match the C ABI', (t) => {
  const { DeviceInfoT, MemoryInfoT, CopyT, FillT, TimestampT, StatusT } = abiTypes;
  const { CapsT, SpecEntryT, KernelDescT, KernelBindingT, KernelInfoT, DescriptorT, UpdateT, Dispatch2T, Cmd2T } = abiTypes;
  // The same numbers as the library's _Static_asserts (host-driver/src/core.c).
  t.equal(koffi.sizeof(Cmd2T), 64);
  t.equal(koffi.offsetof(Cmd2T, 'u'), 8);
  t.equal(koffi.sizeof(CopyT), 32);
  t.equal(koffi.sizeof(FillT), 24);
  t.equal(koffi.sizeof(UpdateT), 24);
  t.equal(koffi.sizeof(Dispatch2T), 56);
  t.equal(koffi.offsetof(Dispatch2T, 'num_workgroups'), 44);
  t.equal(koffi.sizeof(TimestampT), 16);
  t.equal(koffi.sizeof(DescriptorT), 40);
  t.equal(koffi.sizeof(StatusT), 56);
  t.equal(koffi.sizeof(CapsT), 144);
  t.equal(koffi.offsetof(CapsT, 'max_memory_allocation_size'), 72);
  t.equal(koffi.sizeof(SpecEntryT), 16);
  t.equal(koffi.sizeof(KernelDescT), 72);
  t.equal(koffi.offsetof(KernelDescT, 'push_size'), 48);
  t.equal(koffi.sizeof(KernelBindingT), 16);
  t.equal(koffi.sizeof(KernelInfoT), 48);
  t.equal(koffi.sizeof(MemoryInfoT), 24);
  t.equal(koffi.sizeof(DeviceInfoT), 992);
  t.equal(koffi.offsetof(DeviceInfoT, 'index'), 784);
  t.equal(koffi.offsetof(DeviceInfoT, 'min_import_alignment'), 856);
  t.equal(koffi.offsetof(DeviceInfoT, 'max_shared_memory_size'), 888);
  t.equal(lib.abiVersion >>> 16, 2, 'ABI major 2');
  t.ok((lib.abiVersion & 0xffff) >= 1, 'ABI minor 1 or later');
  t.ok(lib.path.endsWith(HOST_DRIVER_PATH));
  t.end();
});

t.test('a missing or broken library is an error that says to run make', (t) => {
  const root = mkdtempSync(join(tmpdir(), 'mdgpu-hd-'));
  t.teardown(() => rmSync(root, { recursive: true, force: true }));
  writeFileSync(join(root, 'package.json'), '{}');
  const file = join(root, HOST_DRIVER_PATH);
  t.throws(() => loadHostDriverFrom(file), {
    message: new RegExp(`mdgpu host driver not built: ${file} is missing; run \`make -C host-driver\` in ${root}`),
  });
  mkdirSync(join(root, 'host-driver', 'build'), { recursive: true });
  writeFileSync(file, 'not an ELF file');
  t.throws(() => loadHostDriverFrom(file), { message: /failed to load from .*make -C host-driver/ });
  t.end();
});

t.test('errno names (the C ABI returns -errno; the one errnoName takes it positive)', (t) => {
  t.equal(errnoName(22), 'EINVAL');
  t.equal(errnoName(11), 'EAGAIN');
  t.equal(errnoName(95), 'ENOTSUP');
  t.equal(errnoName(110), 'ETIMEDOUT');
  t.equal(errnoName(9999), 'E9999');
  t.end();
});

t.test('devices: listed, opened by default, by name and by index; no match is ENODEV', async (t) => {
  const devices = listDevices();
  t.ok(devices.length >= 1, `${devices.length} device(s): ${devices.map((d) => d.name).join('; ')}`);
  const dev = openDevice(t);
  const info = dev.info;
  t.equal(info.backend, 'vulkan');
  t.match(info.apiVersion, /^1\.\d+\.\d+$/);
  t.ok(info.timestamps, 'timestamps');
  t.ok(info.maxBindings >= 3 && info.maxPushConstantSize >= 12, 'limits for the kernels');
  t.ok(info.minBindingAlignment >= 1 && info.maxBindingSize > 0);
  // Vulkan's required minimums, and the library's own kernel limits.
  t.ok(info.maxComputeSharedMemorySize >= 16384, `shared memory ${info.maxComputeSharedMemorySize}`);
  t.ok(
    info.maxComputeWorkGroupSize.every((n, i) => n >= [128, 128, 64][i]!),
    `local size ${info.maxComputeWorkGroupSize}`,
  );
  t.ok(info.maxComputeWorkGroupInvocations >= 128, `invocations ${info.maxComputeWorkGroupInvocations}`);
  t.match(info.robustness, /^(robustBufferAccess2|robustBufferAccess|none)$/);
  t.equal(info.robustAccess, info.robustness !== 'none');
  t.same([info.maxKernelPrivateSize, info.maxKernelTypeDepth, info.maxKernelTypePaths, info.maxKernelModulePaths], [16384, 16, 256, 1 << 22]);
  if (info.hostImport) t.ok(info.minImportAlignment >= 1, `import alignment ${info.minImportAlignment}`);
  // The capability record, the same from the open device and from the list.
  const caps = info.caps;
  t.same(devices.find((d) => d.index === info.index)?.caps, caps, 'listDevices has the same capabilities');
  t.match(caps.pipelineCacheUuid, /^[0-9a-f]{32}$/);
  t.equal(caps.maxStorageBufferRange, info.maxBindingSize);
  t.equal(caps.minStorageBufferOffsetAlignment, info.minBindingAlignment);
  t.equal(caps.maxMemoryAllocationSize, info.maxMemorySize);
  t.ok(caps.maxBoundDescriptorSets >= 4 && caps.maxBoundDescriptorSets <= 32, `sets ${caps.maxBoundDescriptorSets}`);
  t.ok(caps.maxPerStageDescriptorStorageBuffers >= 4 && caps.maxPerStageDescriptorUniformBuffers >= 12);
  t.ok(caps.maxUniformBufferRange >= 16384 && caps.minUniformBufferOffsetAlignment >= 1);
  if (info.driverName === 'llvmpipe') {
    t.ok(
      Object.values(caps.features).every((f) => f),
      `lavapipe: every feature kernels may use (${JSON.stringify(caps.features)})`,
    );
    t.ok(caps.subgroupSize >= 4 && (caps.subgroupSupportedOperations & 0x0f) === 0x0f, `subgroups of ${caps.subgroupSize}`);
  }
  t.ok(
    devices.some((d) => d.name === info.name),
    'the default is one of the listed devices',
  );
  if (!devices.some((d) => d.deviceType !== DeviceType.Cpu)) {
    t.equal(info.deviceType, DeviceType.Cpu, 'no GPU: the default is the CPU device (lavapipe)');
  }
  const byIndex = openDevice(t, { device: String(info.index) });
  t.equal(byIndex.info.name, info.name);
  const byName = openDevice(t, { device: info.name.slice(0, 5).toUpperCase() });
  t.ok(byName.info.name.toLowerCase().includes(info.name.slice(0, 5).toLowerCase()));
  t.throws(() => HostDevice.open({ device: 'no-such-gpu-anywhere' }), {
    name: 'BackendError',
    code: 'ENODEV',
    errno: -19,
    call: 'mdgpu_host_device_open',
    message: /no usable Vulkan device matches "no-such-gpu-anywhere"/,
  });
});

t.test('saxpy and memcpy on memfd-mapped memory, zero copy', async (t) => {
  const dev = openDevice(t);
  const { buf } = aperture(t, dev, 16 << 20);
  const mem = dev.importMemory(buf);
  t.equal(mem.size, 16 << 20);
  t.equal(mem.zeroCopy, dev.info.hostImport, 'zero copy wherever the device can import');
  const saxpy = dev.createKernel(kernelWords('saxpy'), { bindings: 2, pushConstantSize: 8 });
  const memcpy = dev.createKernel(kernelWords('memcpy'), { bindings: 2, pushConstantSize: 4 });

  const n = 100_003;
  const x = new Float32Array(buf, 0, n);
  const y = new Float32Array(buf, 1 << 20, n);
  const want = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    x[i] = Math.sin(i);
    y[i] = Math.cos(i) * 3;
    want[i] = Math.fround(1.5 * x[i]! + y[i]!);
  }
  const status = await dev.submit(mem, [dispatch(saxpy, grid(n), [storage(0, 0, n * 4), storage(1, 1 << 20, n * 4)], pushOf(['u32', n], ['f32', 1.5]))]);
  let bad = 0;
  for (let i = 0; i < n; i++) if (Math.abs(y[i]! - want[i]!) > 1e-6 * (1 + Math.abs(want[i]!))) bad++;
  t.equal(bad, 0, `saxpy: all ${n} elements match the CPU`);
  t.type(status.id, 'bigint');
  t.ok(status.deviceNs !== undefined && status.deviceNs > 0, `device time ${status.deviceNs} ns`);
  t.ok(status.completeNs >= status.submitNs);
  t.ok(status.deviceEndNs! >= status.deviceBeginNs!);

  const words = 250_000;
  const src = new Uint32Array(buf, 4 << 20, words);
  const dst = new Uint32Array(buf, 8 << 20, words + 1);
  for (let i = 0; i < words; i++) src[i] = (i * 2654435761) >>> 0;
  dst[words] = 0x600dcafe;
  await dev.submit(mem, [dispatch(memcpy, grid(words), [storage(0, 4 << 20, words * 4), storage(1, 8 << 20, words * 4)], pushOf(['u32', words]))]);
  t.same(dst.subarray(0, words), src, 'memcpy copied every word');
  t.equal(dst[words], 0x600dcafe, 'and nothing past the end');
});

t.test('COPY, FILL, BARRIER and TIMESTAMP on zero-copy, staged and fd-imported memory', async (t) => {
  const dev = openDevice(t);
  const { fd, buf } = aperture(t, dev, 4 << 20);
  const bytes = new Uint8Array(buf);
  const cases: Array<[string, HostMemory, number]> = [
    ['zero copy', dev.importMemory(new Uint8Array(buf, 0, 1 << 20)), 0],
    ['staged', dev.importMemory(new Uint8Array(buf, 1 << 20, 1 << 20), { staged: true }), 1 << 20],
    ['fd', dev.importFd(fd, 2 << 20, 1 << 20), 2 << 20],
  ];
  t.equal(cases[1]![1].zeroCopy, false, 'staged is not zero copy');
  t.not(cases[2]![1].hostAddress, cases[0]![1].hostAddress + BigInt(2 << 20), 'the fd import has its own mapping');
  for (const [what, mem, base] of cases) {
    bytes.fill(0x11, base, base + 0x4000);
    const status = await dev.submit(mem, [
      { kind: 'timestamp', dst: at(0x3000, 8) },
      { kind: 'fill', dst: at(0x1000, 0x800), value: 0xa5a5a5a5 },
      { kind: 'barrier' },
      { kind: 'copy', src: at(0x1000, 0x400), dst: at(0x2004, 0x400) },
      { kind: 'barrier' },
      { kind: 'timestamp', dst: at(0x3008, 8) },
      { kind: 'fill', dst: at(0x3800, 8), value: -1 },
    ]);
    const view = bytes.subarray(base, base + 0x4000);
    t.ok(
      view.subarray(0x1000, 0x1800).every((b) => b === 0xa5),
      `${what}: FILL`,
    );
    t.equal(view[0xfff], 0x11, `${what}: FILL stayed in range`);
    t.ok(
      view.subarray(0x2004, 0x2404).every((b) => b === 0xa5),
      `${what}: COPY`,
    );
    t.equal(view[0x2404], 0x11, `${what}: COPY stayed in range`);
    t.ok(
      view.subarray(0x3800, 0x3808).every((b) => b === 0xff),
      `${what}: FILL with -1`,
    );
    const dv = new DataView(buf, base);
    const t0 = dv.getBigUint64(0x3000, true);
    const t1 = dv.getBigUint64(0x3008, true);
    t.ok(t0 > 0n && t1 >= t0, `${what}: timestamps ${t0} <= ${t1}`);
    t.ok(t0 >= status.deviceBeginNs! && t1 <= status.deviceEndNs!, `${what}: timestamps inside the batch`);
  }
});

t.test('invalid SPIR-V and mismatched kernels are rejected with EINVAL and a reason', (t) => {
  const dev = openDevice(t);
  const garbage = Uint32Array.from({ length: 64 }, (_, i) => Math.imul(i, 0x9e3779b9) >>> 0);
  t.throws(() => dev.createKernel(garbage, { bindings: 2, pushConstantSize: 8 }), {
    name: 'BackendError',
    code: 'EINVAL',
    call: 'mdgpu_host_kernel_create2',
    message: /not SPIR-V/,
  });
  garbage[0] = 0x07230203;
  garbage[1] = 0x00010300;
  t.throws(() => dev.createKernel(garbage, { bindings: 2, pushConstantSize: 8 }), { code: 'EINVAL', message: /SPIR-V id bound \d+ is implausible/ });
  // Well formed for the driver's own walk, refused by SPIRV-Tools: a store to a constant.
  t.throws(() => dev.createKernel(kernel({ body: 'OpStore %c0 %c1' }), { bindings: 0, pushConstantSize: 0 }), {
    code: 'EINVAL',
    message: /SPIR-V invalid/,
  });
  const saxpy = kernelWords('saxpy');
  t.throws(() => dev.createKernel(saxpy.subarray(0, saxpy.length >> 1), { bindings: 2, pushConstantSize: 8 }), { code: 'EINVAL' });
  t.throws(() => dev.createKernel(saxpy, { bindings: 1, pushConstantSize: 8 }), { code: 'EINVAL', message: /binding 1/ });
  t.throws(() => dev.createKernel(saxpy, { bindings: 2, pushConstantSize: 4 }), { code: 'EINVAL', message: /push-constant block is 8/ });
  t.throws(() => dev.createKernel(saxpy, { bindings: 99, pushConstantSize: 8 }), { code: 'E2BIG' });
  t.throws(() => dev.createKernel(saxpy, { bindings: -1, pushConstantSize: 8 }), { code: 'ERR_OUT_OF_RANGE' });
  t.throws(() => dev.createKernel(new Uint8Array(8) as unknown as Uint32Array, { bindings: 2, pushConstantSize: 8 }), {
    code: 'ERR_INVALID_ARG_TYPE',
  });
  const k = dev.createKernel(saxpy, { bindings: 2, pushConstantSize: 8 });
  t.equal(k.layout.length, 2);
  k.destroy();
  k.destroy(); // idempotent
  t.ok(k.destroyed);
  t.end();
});

t.test('bad commands reject with the errno of the library and run nothing', async (t) => {
  const dev = openDevice(t);
  const other = openDevice(t);
  const { buf } = aperture(t, dev, 1 << 20);
  const mem = dev.importMemory(buf);
  const gone = dev.importMemory(new Uint8Array(buf, 0, PAGE));
  gone.destroy();
  const foreign = other.importMemory(new Uint8Array(buf, 0, PAGE));
  const memcpy = dev.createKernel(kernelWords('memcpy'), { bindings: 2, pushConstantSize: 4 });
  const bytes = new Uint8Array(buf);
  bytes.fill(0x33, 0, 64);
  const reject = async (cmds: Command[], expected: { code: string; [k: string]: unknown } | { name: string; [k: string]: unknown }, what: string, on = mem) =>
    t.rejects(dev.submit(on, cmds), expected, what);

  await reject(
    [
      { kind: 'fill', dst: at(0, 64), value: 0 },
      { kind: 'fill', dst: at(2, 4), value: 0 },
    ],
    {
      name: 'BackendError',
      code: 'EINVAL',
      call: 'mdgpu_host_submit2',
      message: /command 1: FILL offset/,
    },
    'misaligned FILL',
  );
  t.equal(bytes[0], 0x33, 'the good FILL before it did not run either');
  await reject([{ kind: 'copy', src: at((1 << 20) - 4, 8), dst: at(0, 8) }], { code: 'EINVAL' }, 'COPY past the end');
  await reject([{ kind: 'copy', src: at(0, 16), dst: at(8, 16) }], { code: 'EINVAL', message: /overlap/ }, 'overlap');
  await reject([{ kind: 'fill', dst: at(0, 4), value: 0 }], { code: 'ENOENT' }, 'destroyed memory', gone);
  await reject([{ kind: 'timestamp', dst: at(4, 8) }], { code: 'EINVAL' }, 'misaligned TIMESTAMP');
  await reject(
    [dispatch(memcpy, [1], [storage(0, 0, 64), storage(2, 64, 64)], pushOf(['u32', 16]))],
    { code: 'EINVAL', message: /set 0, binding 2 is not one the kernel declares/ },
    'a binding the kernel does not have',
  );
  await reject(
    [dispatch(memcpy, [1], [storage(0, 0, 64), storage(1, 8, 64)], pushOf(['u32', 16]))],
    { code: 'EINVAL', message: /not a multiple of/ },
    'binding alignment',
  );
  await reject(
    [dispatch(memcpy, [1], [storage(0, 0, 64), storage(1, 64, 64)])],
    { code: 'EINVAL', message: /0 bytes of push constants for a kernel of 4/ },
    'missing push constants',
  );
  await reject([dispatch(memcpy, [1 << 30], [storage(0, 0, 64), storage(1, 64, 64)], pushOf(['u32', 16]))], { code: 'E2BIG' }, 'too many groups');
  // Caught in TypeScript before the library: wrong objects and non-integers.
  await reject([{ kind: 'fill', dst: at(0, 4), value: 0 }], { name: 'TypeError', message: /not memory of this device/ }, 'foreign memory', foreign);
  await reject([{ kind: 'fill', dst: at(-4, 4), value: 0 }], { code: 'ERR_OUT_OF_RANGE' }, 'negative offset');
  await reject([{ kind: 'fill', dst: at(0.5, 4), value: 0 }], { code: 'ERR_INVALID_ARG_TYPE' }, 'fractional offset');
  await reject([{ kind: 'fill', dst: at(0, 4), value: 2 ** 32 }], { code: 'ERR_OUT_OF_RANGE' }, 'value over 32 bits');
  await reject([{ kind: 'nope' } as unknown as Command], { name: 'TypeError', message: /unknown kind nope/ }, 'unknown kind');
  await reject([], { code: 'EINVAL', message: /no commands/ }, 'empty batch');
  t.throws(() => dev.importMemory('x' as unknown as ArrayBuffer), { code: 'ERR_INVALID_ARG_TYPE' });
  t.throws(() => dev.importMemory(new ArrayBuffer(0)), { code: 'EINVAL' });
  t.throws(() => dev.importFd(-1, 0, PAGE), { code: 'ERR_OUT_OF_RANGE' });
  t.throws(() => dev.importFd(999_999, 0, PAGE), { code: 'EBADF' });
  t.equal(dev.pending, 0, 'nothing left pending');
  // The device still works after all that.
  await dev.submit(mem, [{ kind: 'fill', dst: at(0, 64), value: 0x01010101 }]);
  t.equal(bytes[63], 1);
});

t.test('a long gemm completes while the event loop keeps running', async (t) => {
  // 1 ms wait slices: the worker-thread wait times out and is re-armed many times.
  const dev = openDevice(t, { waitSliceNs: 1_000_000n });
  const { buf } = aperture(t, dev, 8 << 20);
  const mem = dev.importMemory(buf);
  const gemm = dev.createKernel(kernelWords('gemm'), { bindings: 3, pushConstantSize: 12 });
  const m = 384;
  const size = m * m * 4;
  const a = new Float32Array(buf, 0, m * m);
  const b = new Float32Array(buf, 1 << 20, m * m);
  const c = new Float32Array(buf, 2 << 20, m * m);
  for (let i = 0; i < m * m; i++) {
    a[i] = (i % 7) - 3;
    b[i] = (i % 5) - 2;
  }
  let ticks = 0;
  const timer = setInterval(() => ticks++, 2);
  const before = process.hrtime.bigint();
  const done = dev.submit(mem, [
    dispatch(gemm, [m / 16, m / 16], [storage(0, 0, size), storage(1, 1 << 20, size), storage(2, 2 << 20, size)], pushOf(['u32', m], ['u32', m], ['u32', m])),
  ]);
  const returned = process.hrtime.bigint();
  const submitMs = Number(returned - before) / 1e6;
  t.equal(dev.pending, 1);
  const status: SubmissionStatus = await done;
  clearInterval(timer);
  const deviceMs = status.deviceNs! / 1e6;
  // Causality, not speed (the machine is shared): submit() returned before the host driver saw
  // the batch complete (both CLOCK_MONOTONIC), and the event loop ran while the gemm did.
  t.ok(
    returned < status.completeNs,
    `submit returned in ${submitMs.toFixed(2)} ms, before the batch completed; the gemm took ${deviceMs.toFixed(1)} ms on the device`,
  );
  t.ok(ticks >= 1, `a 2 ms timer fired ${ticks} times while the gemm ran`);
  // Small integers: exact in f32. Spot-check a few elements against the CPU.
  for (const [i, j] of [
    [0, 0],
    [1, 2],
    [m - 1, m - 1],
    [200, 17],
  ] as const) {
    let acc = 0;
    for (let k = 0; k < m; k++) acc += a[i * m + k]! * b[k * m + j]!;
    t.equal(c[i * m + j], acc, `C[${i}][${j}]`);
  }
});

t.test('many batches in flight settle in submission order with one waiting thread', async (t) => {
  const dev = openDevice(t);
  const { buf } = aperture(t, dev, 1 << 20);
  const mem = dev.importMemory(buf);
  const order: bigint[] = [];
  const all = Array.from({ length: 64 }, (_, i) =>
    dev.submit(mem, [{ kind: 'fill', dst: at(i * 64, 64), value: i }]).then((s) => {
      order.push(s.id);
      return s;
    }),
  );
  t.equal(dev.pending, 64);
  const statuses = await Promise.all(all);
  t.same(
    order,
    [...order].sort((x, y) => (x < y ? -1 : 1)),
    'settled in id order',
  );
  t.equal(statuses[63]!.id - statuses[0]!.id, 63n, 'consecutive ids');
  t.equal(dev.pending, 0);
  t.equal(new Uint32Array(buf)[63 * 16], 63);
});

t.test('destroy waits for pending work, then everything is gone', async (t) => {
  const dev = HostDevice.open();
  const fd = native.memfdCreate('mdgpu-backend-destroy', 0);
  native.ftruncate(fd, 4 << 20);
  const buf = native.mmap(fd, 0, 4 << 20, RW);
  t.teardown(() => {
    native.munmap(buf);
    native.close(fd);
  });
  const mem = dev.importMemory(buf);
  const gemm = dev.createKernel(kernelWords('gemm'), { bindings: 3, pushConstantSize: 12 });
  const m = 256;
  new Float32Array(buf, 0, m * m).fill(1);
  new Float32Array(buf, 1 << 20, m * m).fill(2);
  const size = m * m * 4;
  const work = dev.submit(mem, [
    dispatch(gemm, [m / 16, m / 16], [storage(0, 0, size), storage(1, 1 << 20, size), storage(2, 2 << 20, size)], pushOf(['u32', m], ['u32', m], ['u32', m])),
  ]);
  let workDone = false;
  void work.then(() => (workDone = true));
  mem.destroy(); // the batch holds its own reference in the library
  gemm.destroy();
  await dev.destroy();
  t.ok(workDone, 'the pending batch settled before destroy resolved');
  t.equal(new Float32Array(buf, 2 << 20, m * m)[m * m - 1], 2 * m, 'and it ran to completion');
  t.ok(dev.destroyed);
  await dev.destroy(); // idempotent
  await t.rejects(dev.submit(mem, [{ kind: 'barrier' }]), { name: 'BackendError', code: 'ENOENT', message: /destroyed/ });
  t.throws(() => dev.importMemory(buf), { code: 'ENOENT' });
  t.throws(() => dev.createKernel(kernelWords('memcpy'), { bindings: 2, pushConstantSize: 4 }), { code: 'ENOENT' });
  mem.destroy(); // no-ops after the device is gone
  t.ok(new BackendError('EIO', -5, 'x', 'y') instanceof Error);
});
