/**
 * Contract 1.3 in libmdgpu's C encoder (guest-driver/lib/mdgpu_queue.c): DISPATCH2,
 * DISPATCH_INDIRECT, UPDATE, appended command streams and the kernel record of KERNEL_CREATE2
 * are byte for byte what the device's layouts (src/vgpu/commands.ts, src/vgpu/kernels.ts)
 * encode, and the validator reads back what the C side meant. The C side is
 * test/guest/fixtures/encode13.c, built with the host's compiler (the encoder stores explicit
 * little-endian bytes). Also checks what the encoder refuses and that a stream that does not fit
 * leaves the submission untouched (the Vulkan driver splits command buffers on it).
 */
import t from 'tap';
import { execFile } from 'node:child_process';
import * as fsp from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import { promisify } from 'node:util';
import { defaultSourceDir } from '../../src/guest/build.js';
import { CMD, CMD_LAYOUTS, DESCRIPTOR_TYPES, DispatchDescriptor, validateSubmission, type KernelShape } from '../../src/vgpu/commands.js';
import { KernelDesc, SpecMapEntry } from '../../src/vgpu/kernels.js';

const execFileP = promisify(execFile);
const EINVAL = 22;
const E2BIG = 7;

const hex = (b: Uint8Array) => Buffer.from(b).toString('hex');
const pad8 = (n: number) => Math.ceil(n / 8) * 8;
const concat = (parts: Uint8Array[]) => {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
};

const push12 = new Uint8Array([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12]);
const update20 = new Uint8Array(Array.from({ length: 20 }, (_, i) => 0xa0 + i));
const two = [
  { set: 0, binding: 1, index: 0, type: DESCRIPTOR_TYPES.STORAGE_BUFFER.code, buffer: 7, reserved: 0, offset: 0x100n, range: 4096n },
  { set: 3, binding: 0, index: 5, type: DESCRIPTOR_TYPES.UNIFORM_BUFFER.code, buffer: 0xffff_fffe, reserved: 0, offset: 0x1_0000_0040n, range: 0x1_2345_6789n },
];

function submit(fenceBuffer: number, fenceOffset: bigint, fenceValue: bigint, irq: boolean, body: Uint8Array[]): Uint8Array {
  const rest = concat(body);
  const head = CMD_LAYOUTS.SUBMIT.encode({
    opcode: CMD.SUBMIT,
    flags: irq ? 1 : 0,
    length: CMD_LAYOUTS.SUBMIT.size + rest.length,
    fenceValue,
    fenceBuffer,
    reserved: 0,
    fenceOffset,
  });
  return concat([head, rest]);
}

function dispatch2(kernel: number, base: number[], groups: number[], descriptors: typeof two, push: Uint8Array): Uint8Array {
  const head = CMD_LAYOUTS.DISPATCH2.size;
  const length = head + descriptors.length * DispatchDescriptor.size + pad8(push.length);
  const out = new Uint8Array(length);
  CMD_LAYOUTS.DISPATCH2.encode(
    {
      opcode: CMD.DISPATCH2,
      flags: 0,
      length,
      kernel,
      descriptors: descriptors.length,
      baseX: base[0]!,
      baseY: base[1]!,
      baseZ: base[2]!,
      groupsX: groups[0]!,
      groupsY: groups[1]!,
      groupsZ: groups[2]!,
      pushSize: push.length,
      reserved: 0,
    },
    out,
  );
  descriptors.forEach((d, i) => DispatchDescriptor.encode(d, out, head + i * DispatchDescriptor.size));
  out.set(push, head + descriptors.length * DispatchDescriptor.size);
  return out;
}

function indirect(kernel: number, argsBuffer: number, argsOffset: bigint, descriptors: typeof two, push: Uint8Array): Uint8Array {
  const head = CMD_LAYOUTS.DISPATCH_INDIRECT.size;
  const length = head + descriptors.length * DispatchDescriptor.size + pad8(push.length);
  const out = new Uint8Array(length);
  CMD_LAYOUTS.DISPATCH_INDIRECT.encode(
    { opcode: CMD.DISPATCH_INDIRECT, flags: 0, length, kernel, descriptors: descriptors.length, pushSize: push.length, argsBuffer, argsOffset },
    out,
  );
  descriptors.forEach((d, i) => DispatchDescriptor.encode(d, out, head + i * DispatchDescriptor.size));
  out.set(push, head + descriptors.length * DispatchDescriptor.size);
  return out;
}

function update(buffer: number, offset: bigint, data: Uint8Array): Uint8Array {
  const length = CMD_LAYOUTS.UPDATE.size + pad8(data.length);
  const out = new Uint8Array(length);
  CMD_LAYOUTS.UPDATE.encode({ opcode: CMD.UPDATE, flags: 0, length, buffer, size: data.length, offset }, out);
  out.set(data, CMD_LAYOUTS.UPDATE.size);
  return out;
}

const copy = (srcBuffer: number, srcOffset: bigint, dstBuffer: number, dstOffset: bigint, size: bigint) =>
  CMD_LAYOUTS.COPY.encode({ opcode: CMD.COPY, flags: 0, length: CMD_LAYOUTS.COPY.size, srcBuffer, dstBuffer, srcOffset, dstOffset, size });
const fill = (buffer: number, offset: bigint, size: bigint, value: number) =>
  CMD_LAYOUTS.FILL.encode({ opcode: CMD.FILL, flags: 0, length: CMD_LAYOUTS.FILL.size, buffer, value, offset, size });
const fence = (buffer: number, offset: bigint, value: bigint, irq: boolean) =>
  CMD_LAYOUTS.FENCE.encode({ opcode: CMD.FENCE, flags: irq ? 1 : 0, length: CMD_LAYOUTS.FENCE.size, buffer, reserved: 0, offset, value });
const barrier = () => CMD_LAYOUTS.BARRIER.encode({ opcode: CMD.BARRIER, flags: 0, length: 8 });

/** The buffer KERNEL_CREATE2 reads, laid out as mdgpu_kernel_record_write() promises. */
function record(spirv: Uint8Array, entry: string, spec: { id: number; offset: number; size: number }[], data: Uint8Array, push: number, flags: number) {
  const name = new TextEncoder().encode(entry);
  const entryAt = KernelDesc.size;
  const mapAt = pad8(entryAt + name.length);
  const dataAt = pad8(mapAt + spec.length * SpecMapEntry.size);
  const spirvAt = pad8(dataAt + data.length);
  const out = new Uint8Array(spirvAt + spirv.length);
  KernelDesc.encode(
    {
      flags,
      pushBytes: push,
      spirvSize: spirv.length,
      entrySize: name.length,
      spirvOffset: BigInt(spirvAt),
      entryOffset: name.length ? BigInt(entryAt) : 0n,
      specMapOffset: spec.length ? BigInt(mapAt) : 0n,
      specMapCount: spec.length,
      specDataSize: data.length,
      specDataOffset: data.length ? BigInt(dataAt) : 0n,
      reserved: 0n,
    },
    out,
  );
  out.set(name, entryAt);
  spec.forEach((e, i) => SpecMapEntry.encode({ constantId: e.id, offset: e.offset, size: e.size, reserved: 0 }, out, mapAt + i * SpecMapEntry.size));
  out.set(data, dataAt);
  out.set(spirv, spirvAt);
  return out;
}

t.test('the C encoder writes contract 1.3 commands and kernel records as the device lays them out', async (t) => {
  const src = defaultSourceDir();
  const dir = await fsp.mkdtemp(path.join(os.tmpdir(), 'mdgpu-encode13-'));
  t.teardown(() => fsp.rm(dir, { recursive: true, force: true }));
  const exe = path.join(dir, 'encode13');
  const fixture = path.join(path.dirname(src), 'test', 'guest', 'fixtures', 'encode13.c');
  await execFileP('gcc', [
    '-O2',
    '-Wall',
    '-Werror',
    `-I${path.join(src, 'include')}`,
    `-I${path.join(src, 'lib')}`,
    '-o',
    exe,
    fixture,
    path.join(src, 'lib', 'mdgpu_queue.c'),
    path.join(src, 'lib', 'libmdgpu.c'),
  ]);
  const { stdout } = await execFileP(exe, { maxBuffer: 1 << 20 });
  const lines = stdout.trim().split('\n');
  const got = new Map(lines.map((l) => [l.slice(0, l.indexOf(' ')), l.slice(l.indexOf(' ') + 1)] as const));

  const first = submit(4, 64n, 42n, true, [
    dispatch2(3, [0, 0, 0], [16, 2, 1], two, push12),
    dispatch2(65535, [7, 0xffff_fff0, 1], [0, 1, 1], [], new Uint8Array(0)),
    indirect(9, 5, 0x10004n, two.slice(0, 1), push12.slice(0, 8)),
    update(6, 0x2_0000_0008n, update20),
    update(6, 0n, update20.slice(0, 4)),
    copy(5, 3n, 6, 0x2_0000_0001n, 7n),
  ]);
  t.equal(got.get('dispatch2-indirect-update'), hex(first), `DISPATCH2, DISPATCH_INDIRECT, UPDATE, byte COPY: ${first.length} bytes, identical`);
  t.equal(got.get('append'), '0', 'a stream that fits is appended');
  const appended = submit(11, 24n, 7n, true, [fill(1, 0n, 4n, 1), barrier(), update(2, 16n, update20.slice(0, 8)), fence(9, 16n, 6n, true)]);
  t.equal(got.get('appended'), hex(appended), "an appended stream's commands follow, its header dropped; the fence set afterwards");

  const spirv = new Uint8Array(new Uint32Array([0x07230203, 0x00010300, 0, 9, 0, 0x11223344]).buffer);
  const specData = new Uint8Array([0x40, 0, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8]);
  const full = record(
    spirv,
    'main2',
    [
      { id: 0, offset: 0, size: 4 },
      { id: 7, offset: 4, size: 8 },
    ],
    specData,
    16,
    1,
  );
  t.equal(got.get('record'), hex(full), 'kernel record with entry point, two specialization constants and DISPATCH_BASE');
  t.equal(got.get('record-plain'), hex(record(spirv, '', [], new Uint8Array(0), 16, 0)), 'kernel record with only SPIR-V: no entry point, no map, no data');
  const desc = KernelDesc.decode(Buffer.from(got.get('record') ?? '', 'hex'));
  t.equal(desc.entryOffset % 8n, 0n, 'parts 8-aligned');
  t.equal(desc.spirvOffset % 8n, 0n);

  // The validator reads back what the C side meant.
  const scope = {
    buffer: (h: number) => ({ offset: 0x10000 * (h & 0xff), size: 0x4_0000_0000 }),
    kernel: (k: number): KernelShape | undefined =>
      ({
        bindings: 0,
        pushConstantBytes: k === 3 ? 12 : k === 9 ? 8 : 0,
        layout: [
          { set: 0, binding: 1, type: 'storage' as const, count: 1 },
          { set: 3, binding: 0, type: 'uniform' as const, count: 8 },
        ],
        dispatchBase: true,
      }) satisfies KernelShape,
  };
  const limits = {
    ...(await import('../../src/vgpu/commands.js')).DEFAULT_COMMAND_LIMITS,
    maxUniformBytes: 0x2_0000_0000,
    maxBindingBytes: 0x2_0000_0000,
  };
  const v = validateSubmission(Buffer.from(got.get('dispatch2-indirect-update') ?? '', 'hex'), scope, limits);
  t.same(
    v.commands.map((c) => c.kind),
    ['dispatch', 'dispatchIndirect', 'update', 'update', 'copy'],
    'decoded: the zero-sized DISPATCH2 is a no-op',
  );
  const d = v.commands[0];
  if (d?.kind === 'dispatch') {
    t.same(d.groups, [16, 2, 1]);
    t.same(
      d.descriptors.map((x) => [x.set, x.binding, x.index, x.type, x.range.size]),
      [
        [0, 1, 0, 'storage', 4096],
        [3, 0, 5, 'uniform', 0x1_2345_6789],
      ],
      'descriptors decoded',
    );
    t.same([...d.pushConstants], [...push12], 'push constants decoded');
  } else t.fail('first command is a dispatch');
  const u = v.commands[2];
  t.same(u?.kind === 'update' ? [...u.data] : [], [...update20], 'UPDATE data decoded (padding dropped)');
  const c = v.commands[4];
  t.same(c?.kind === 'copy' ? [c.src.size, c.dst.offset % 8] : [], [7, 1], 'byte-granular COPY decoded');

  const errors = lines.find((l) => l.startsWith('errors ')) ?? '';
  const field = (k: string) => Number(new RegExp(`${k}=(-?\\d+)`).exec(errors)?.[1]);
  t.equal(field('update0'), -EINVAL, 'UPDATE of 0 bytes: -EINVAL');
  t.equal(field('update_big'), -EINVAL, 'UPDATE above 64 KiB: -EINVAL');
  t.equal(field('desc257'), -EINVAL, 'more than 256 descriptors: -EINVAL');
  t.equal(field('push132'), -EINVAL, 'more than 128 push-constant bytes: -EINVAL');
  t.equal(field('append_full'), -E2BIG, 'a stream that would pass 1 MiB: -E2BIG');
  t.equal(field('len_kept'), 1, '... and the submission is left as it was');
  t.equal(field('append_unbegun'), -EINVAL, 'appending a stream that was never begun: -EINVAL');
  t.equal(field('record_spirv6'), -EINVAL, 'SPIR-V whose size is not a multiple of 4: -EINVAL');
  t.equal(field('record_small'), -E2BIG, 'a record buffer too small: -E2BIG');
});
