/**
 * The host driver's C ABI as TypeScript copies it, checked against the header compiled: every
 * `MDGPU_HOST_*` constant of `host-driver/include/mdgpu_host.h` is either mirrored in TypeScript
 * (and must have the same value) or listed below as one the daemon does not use, and every
 * koffi struct declaration and encoder layout has the C compiler's sizes and offsets. A constant
 * added to the header fails this test until it is classified, so nothing is copied by hand
 * without being compared.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import koffi from 'koffi';
import t from 'tap';
import { DeviceType } from '../../src/backend/backend.js';
import {
  ABI_MAJOR,
  ABI_MINOR,
  abiTypes,
  DEVICE_CPU_TIMESTAMPS,
  DEVICE_HOST_IMPORT,
  DEVICE_ROBUST_ACCESS,
  DEVICE_TIMESTAMPS,
  FEATURE_BITS,
  KERNEL_DISPATCH_BASE,
  KERNEL_SPLITTABLE,
  MAX_ENTRY_NAME,
  MAX_KERNEL_DESCRIPTORS,
  MEMORY_STAGED,
  MEMORY_ZERO_COPY,
  OPEN_CPU_TIMESTAMPS,
  ROBUSTNESS,
} from '../../src/backend/host-library.js';
import { CMD2, DESCRIPTOR, DESCRIPTOR_TYPE, Op, STATUS, STATUS_DEVICE_TIME } from '../../src/backend/host-records.js';
import { DONE_STATUS_AT, FAILED_HEADER, RecordType, RELEASE_SIZE, RING, RingKind, Stage, SUBMIT_HEADER } from '../../src/backend/ring.js';
import { MAX_DISPATCH_DESCRIPTORS, MAX_UPDATE_BYTES } from '../../src/vgpu/commands.js';
import { MAX_SPEC_DATA, MAX_SPEC_ENTRIES, MAX_ENTRY_NAME as GUEST_MAX_ENTRY_NAME } from '../../src/vgpu/kernels.js';

const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
const HEADER = join(ROOT, 'host-driver/include/mdgpu_host.h');

const robustness = (name: string) => Number(Object.entries(ROBUSTNESS).find(([, v]) => v === name)![0]);

/** Every constant TypeScript mirrors, by its C name. */
const MIRRORED: Record<string, number> = {
  MDGPU_HOST_ABI_MAJOR: ABI_MAJOR,
  MDGPU_HOST_ABI_MINOR: ABI_MINOR,
  MDGPU_HOST_DEVICE_OTHER: DeviceType.Other,
  MDGPU_HOST_DEVICE_INTEGRATED: DeviceType.IntegratedGpu,
  MDGPU_HOST_DEVICE_DISCRETE: DeviceType.DiscreteGpu,
  MDGPU_HOST_DEVICE_VIRTUAL: DeviceType.VirtualGpu,
  MDGPU_HOST_DEVICE_CPU: DeviceType.Cpu,
  MDGPU_HOST_DEVICE_HOST_IMPORT: DEVICE_HOST_IMPORT,
  MDGPU_HOST_DEVICE_ROBUST_ACCESS: DEVICE_ROBUST_ACCESS,
  MDGPU_HOST_DEVICE_TIMESTAMPS: DEVICE_TIMESTAMPS,
  MDGPU_HOST_DEVICE_CPU_TIMESTAMPS: DEVICE_CPU_TIMESTAMPS,
  MDGPU_HOST_ROBUSTNESS_NONE: robustness('none'),
  MDGPU_HOST_ROBUSTNESS_BUFFER_ACCESS: robustness('robustBufferAccess'),
  MDGPU_HOST_ROBUSTNESS_BUFFER_ACCESS_2: robustness('robustBufferAccess2'),
  MDGPU_HOST_OPEN_CPU_TIMESTAMPS: OPEN_CPU_TIMESTAMPS,
  MDGPU_HOST_MEMORY_STAGED: MEMORY_STAGED,
  MDGPU_HOST_MEMORY_ZERO_COPY: MEMORY_ZERO_COPY,
  MDGPU_HOST_OP_COPY: Op.Copy,
  MDGPU_HOST_OP_FILL: Op.Fill,
  MDGPU_HOST_OP_BARRIER: Op.Barrier,
  MDGPU_HOST_OP_TIMESTAMP: Op.Timestamp,
  MDGPU_HOST_OP_UPDATE: Op.Update,
  MDGPU_HOST_OP_DISPATCH2: Op.Dispatch2,
  MDGPU_HOST_STATUS_DEVICE_TIME: STATUS_DEVICE_TIME,
  MDGPU_HOST_MAX_ENTRY_NAME: MAX_ENTRY_NAME,
  MDGPU_HOST_FEATURE_SHADER_INT64: FEATURE_BITS.shaderInt64,
  MDGPU_HOST_FEATURE_SHADER_FLOAT64: FEATURE_BITS.shaderFloat64,
  MDGPU_HOST_FEATURE_SHADER_INT16: FEATURE_BITS.shaderInt16,
  MDGPU_HOST_FEATURE_SHADER_INT8: FEATURE_BITS.shaderInt8,
  MDGPU_HOST_FEATURE_SHADER_FLOAT16: FEATURE_BITS.shaderFloat16,
  MDGPU_HOST_FEATURE_STORAGE_BUFFER_16BIT: FEATURE_BITS.storageBuffer16BitAccess,
  MDGPU_HOST_FEATURE_UNIFORM_16BIT: FEATURE_BITS.uniformAndStorageBuffer16BitAccess,
  MDGPU_HOST_FEATURE_PUSH_CONSTANT_16BIT: FEATURE_BITS.storagePushConstant16,
  MDGPU_HOST_FEATURE_STORAGE_BUFFER_8BIT: FEATURE_BITS.storageBuffer8BitAccess,
  MDGPU_HOST_FEATURE_UNIFORM_8BIT: FEATURE_BITS.uniformAndStorageBuffer8BitAccess,
  MDGPU_HOST_FEATURE_PUSH_CONSTANT_8BIT: FEATURE_BITS.storagePushConstant8,
  MDGPU_HOST_FEATURE_VARIABLE_POINTERS: FEATURE_BITS.variablePointersStorageBuffer,
  MDGPU_HOST_DESCRIPTOR_STORAGE_BUFFER: DESCRIPTOR_TYPE.storage,
  MDGPU_HOST_DESCRIPTOR_UNIFORM_BUFFER: DESCRIPTOR_TYPE.uniform,
  MDGPU_HOST_KERNEL_DISPATCH_BASE: KERNEL_DISPATCH_BASE,
  MDGPU_HOST_KERNEL_SPLITTABLE: KERNEL_SPLITTABLE,
  MDGPU_HOST_RING_MAGIC: RING.magic,
  MDGPU_HOST_RING_VERSION: RING.version,
  MDGPU_HOST_RING_HEADER_SIZE: RING.headerSize,
  MDGPU_HOST_RING_MIN_AREA: RING.minArea,
  MDGPU_HOST_RING_PAD: RecordType.Pad,
  MDGPU_HOST_RING_SUBMIT: RecordType.Submit,
  MDGPU_HOST_RING_RELEASE: RecordType.Release,
  MDGPU_HOST_RING_STARTED: RecordType.Started,
  MDGPU_HOST_RING_DONE: RecordType.Done,
  MDGPU_HOST_RING_FAILED: RecordType.Failed,
  MDGPU_HOST_RING_BROKEN: RecordType.Broken,
  MDGPU_HOST_RING_MEMORY: RingKind.Memory,
  MDGPU_HOST_RING_KERNEL: RingKind.Kernel,
  MDGPU_HOST_RING_STAGE_RECORD: Stage.Record,
  MDGPU_HOST_RING_STAGE_SUBMIT: Stage.Submit,
  MDGPU_HOST_RING_STAGE_WAIT: Stage.Wait,
  MDGPU_HOST_RING_STAGE_DEVICE: Stage.Device,
};

/**
 * Constants the daemon does not copy: limits the library enforces and reports at run time
 * (device info, capabilities), the ABI 1 submit's opcode, and the header's own macros.
 */
const C_ONLY = new Set([
  'MDGPU_HOST_H',
  'MDGPU_HOST_API',
  'MDGPU_HOST_ABI_VERSION',
  'MDGPU_HOST_MAX_BINDINGS',
  'MDGPU_HOST_MAX_PUSH_CONSTANTS',
  'MDGPU_HOST_MAX_SPIRV_WORDS',
  'MDGPU_HOST_MAX_COMMANDS',
  'MDGPU_HOST_MAX_INFLIGHT',
  'MDGPU_HOST_MAX_TYPE_DEPTH',
  'MDGPU_HOST_MAX_TYPE_PATHS',
  'MDGPU_HOST_MAX_MODULE_PATHS',
  'MDGPU_HOST_MAX_PRIVATE_SIZE',
  'MDGPU_HOST_MEMORY_FD_MAPPED',
  'MDGPU_HOST_OP_DISPATCH',
  'MDGPU_HOST_MAX_SETS',
  'MDGPU_HOST_MAX_STAGE_DESCRIPTORS',
  'MDGPU_HOST_MAX_BINDING_NUMBER',
  'MDGPU_HOST_MAX_DISPATCH_DESCRIPTORS',
  'MDGPU_HOST_MAX_SPEC_ENTRIES',
  'MDGPU_HOST_MAX_SPEC_DATA',
  'MDGPU_HOST_MAX_UPDATE',
  'MDGPU_HOST_MAX_SUBMIT_DATA',
  'MDGPU_HOST_ZERO_BUFFER_SIZE',
  'MDGPU_HOST_RING_MAX_AREA',
  'MDGPU_HOST_RING_MAX_INFLIGHT',
  'MDGPU_HOST_RING_MAX_MESSAGE',
]);

/** Offsets the encoders and the ring writer use, as `struct.field` of the header. */
const OFFSETS: Record<string, number> = {
  'mdgpu_host_cmd2.op': CMD2.op,
  'mdgpu_host_cmd2.flags': CMD2.flags,
  'mdgpu_host_cmd2.u': CMD2.u,
  'mdgpu_host_cmd2.u.copy.src_mem': CMD2.copy.srcMem,
  'mdgpu_host_cmd2.u.copy.dst_mem': CMD2.copy.dstMem,
  'mdgpu_host_cmd2.u.copy.src_offset': CMD2.copy.srcOffset,
  'mdgpu_host_cmd2.u.copy.dst_offset': CMD2.copy.dstOffset,
  'mdgpu_host_cmd2.u.copy.size': CMD2.copy.size,
  'mdgpu_host_cmd2.u.fill.mem': CMD2.fill.mem,
  'mdgpu_host_cmd2.u.fill.value': CMD2.fill.value,
  'mdgpu_host_cmd2.u.fill.offset': CMD2.fill.offset,
  'mdgpu_host_cmd2.u.fill.size': CMD2.fill.size,
  'mdgpu_host_cmd2.u.timestamp.mem': CMD2.timestamp.mem,
  'mdgpu_host_cmd2.u.timestamp.offset': CMD2.timestamp.offset,
  'mdgpu_host_cmd2.u.update.mem': CMD2.update.mem,
  'mdgpu_host_cmd2.u.update.size': CMD2.update.size,
  'mdgpu_host_cmd2.u.update.offset': CMD2.update.offset,
  'mdgpu_host_cmd2.u.update.data_offset': CMD2.update.dataOffset,
  'mdgpu_host_cmd2.u.dispatch2.kernel': CMD2.dispatch2.kernel,
  'mdgpu_host_cmd2.u.dispatch2.first_descriptor': CMD2.dispatch2.firstDescriptor,
  'mdgpu_host_cmd2.u.dispatch2.descriptor_count': CMD2.dispatch2.descriptorCount,
  'mdgpu_host_cmd2.u.dispatch2.push_offset': CMD2.dispatch2.pushOffset,
  'mdgpu_host_cmd2.u.dispatch2.push_size': CMD2.dispatch2.pushSize,
  'mdgpu_host_cmd2.u.dispatch2.base': CMD2.dispatch2.base,
  'mdgpu_host_cmd2.u.dispatch2.groups': CMD2.dispatch2.groups,
  'mdgpu_host_cmd2.u.dispatch2.num_workgroups': CMD2.dispatch2.numWorkgroups,
  'mdgpu_host_descriptor.mem': DESCRIPTOR.mem,
  'mdgpu_host_descriptor.set': DESCRIPTOR.set,
  'mdgpu_host_descriptor.binding': DESCRIPTOR.binding,
  'mdgpu_host_descriptor.index': DESCRIPTOR.index,
  'mdgpu_host_descriptor.type': DESCRIPTOR.type,
  'mdgpu_host_descriptor.offset': DESCRIPTOR.offset,
  'mdgpu_host_descriptor.range': DESCRIPTOR.range,
  'mdgpu_host_status.submission': STATUS.submission,
  'mdgpu_host_status.result': STATUS.result,
  'mdgpu_host_status.flags': STATUS.flags,
  'mdgpu_host_status.device_begin_ns': STATUS.deviceBeginNs,
  'mdgpu_host_status.device_end_ns': STATUS.deviceEndNs,
  'mdgpu_host_status.device_ns': STATUS.deviceNs,
  'mdgpu_host_status.submit_ns': STATUS.submitNs,
  'mdgpu_host_status.complete_ns': STATUS.completeNs,
  'mdgpu_host_ring_header.magic': RING.magicAt,
  'mdgpu_host_ring_header.version': RING.versionAt,
  'mdgpu_host_ring_header.submit_size': RING.submitSizeAt,
  'mdgpu_host_ring_header.complete_size': RING.completeSizeAt,
  'mdgpu_host_ring_header.submit_tail': RING.submitTail,
  'mdgpu_host_ring_header.submit_head': RING.submitHead,
  'mdgpu_host_ring_header.complete_tail': RING.completeTail,
  'mdgpu_host_ring_header.complete_head': RING.completeHead,
  'mdgpu_host_ring_done.status': DONE_STATUS_AT,
};

/** Sizes the encoders and the ring writer use. */
const SIZES: Record<string, number> = {
  mdgpu_host_cmd2: CMD2.size,
  mdgpu_host_descriptor: DESCRIPTOR.size,
  mdgpu_host_status: STATUS.size,
  mdgpu_host_ring_submit: SUBMIT_HEADER,
  mdgpu_host_ring_release: RELEASE_SIZE,
  mdgpu_host_ring_failed: FAILED_HEADER,
};

/** The names of every constant the header declares (macros that are not function-like, enumerators). */
function headerConstants(text: string): string[] {
  const names = new Set<string>();
  for (const m of text.matchAll(/^#define\s+(MDGPU_HOST_[A-Z0-9_]+)(?!\()/gm)) names.add(m[1]!);
  for (const m of text.matchAll(/^\s+(MDGPU_HOST_[A-Z0-9_]+)\s*=/gm)) names.add(m[1]!);
  return [...names];
}

/** What a koffi record declaration says its fields are: `struct.field` → offset, and its size. */
function koffiLayout(): { offsets: Record<string, number>; sizes: Record<string, number> } {
  const offsets: Record<string, number> = {};
  const sizes: Record<string, number> = {};
  for (const type of Object.values(abiTypes)) {
    const info = koffi.type(type) as { name: string; primitive: string; size: number; members: Record<string, { offset: number }> };
    if (info.primitive !== 'Record') continue; // the cmd2 union: its members are checked through cmd2
    sizes[info.name] = info.size;
    for (const [field, m] of Object.entries(info.members)) offsets[`${info.name}.${field}`] = m.offset;
  }
  return { offsets, sizes };
}

/** Compile a program that prints every value asked for, run it, and parse `name value` lines. */
function compiled(constants: string[], offsets: string[], sizes: string[]): Map<string, number> {
  const dir = mkdtempSync(join(tmpdir(), 'mdgpu-abi-'));
  try {
    const lines = [
      '#include <stddef.h>',
      '#include <stdio.h>',
      '#include "mdgpu_host.h"',
      'int main(void) {',
      ...constants.map((n) => `  printf("${n} %llu\\n", (unsigned long long)(${n}));`),
      ...offsets.map((f) => {
        const [struct, ...path] = f.split('.');
        return `  printf("${f} %zu\\n", offsetof(struct ${struct}, ${path.join('.')}));`;
      }),
      ...sizes.map((s) => `  printf("${s} %zu\\n", sizeof(struct ${s}));`),
      '  return 0;',
      '}',
    ];
    writeFileSync(join(dir, 'abi.c'), `${lines.join('\n')}\n`);
    execFileSync('cc', ['-std=c11', '-Wall', '-Werror', '-I', join(ROOT, 'host-driver/include'), '-o', join(dir, 'abi'), join(dir, 'abi.c')], {
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    const out = execFileSync(join(dir, 'abi'), { encoding: 'utf8' });
    return new Map(
      out
        .trim()
        .split('\n')
        .map((l) => {
          const [name, value] = l.split(' ');
          return [name!, Number(value)] as const;
        }),
    );
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

const header = readFileSync(HEADER, 'utf8');
const names = headerConstants(header);
const valued = names.filter((n) => n !== 'MDGPU_HOST_H' && n !== 'MDGPU_HOST_API');
const koffiDecl = koffiLayout();
const c = compiled(
  valued,
  [...new Set([...Object.keys(OFFSETS), ...Object.keys(koffiDecl.offsets)])],
  [...new Set([...Object.keys(SIZES), ...Object.keys(koffiDecl.sizes)])],
);

t.test('every constant of mdgpu_host.h is mirrored or known to be C only', async (t) => {
  t.ok(names.length > 60, `${names.length} constants in the header`);
  const unclassified = names.filter((n) => !(n in MIRRORED) && !C_ONLY.has(n));
  t.same(unclassified, [], 'a new constant: mirror it in TypeScript and here, or list it as C only');
  const stale = [...Object.keys(MIRRORED), ...C_ONLY].filter((n) => !names.includes(n));
  t.same(stale, [], 'names here that the header no longer has');
});

t.test('mirrored constants have the header’s values', async (t) => {
  for (const [name, value] of Object.entries(MIRRORED)) t.equal(value, c.get(name), name);
});

t.test('the encoders’ and the ring writer’s layouts are the compiler’s', async (t) => {
  for (const [field, at] of Object.entries(OFFSETS)) t.equal(at, c.get(field), `offsetof ${field}`);
  for (const [struct, size] of Object.entries(SIZES)) t.equal(size, c.get(struct), `sizeof ${struct}`);
});

t.test('every koffi declaration has the compiler’s size and field offsets', async (t) => {
  t.ok(Object.keys(koffiDecl.sizes).length >= 15, `${Object.keys(koffiDecl.sizes).length} structs declared for koffi`);
  for (const [struct, size] of Object.entries(koffiDecl.sizes)) t.equal(size, c.get(struct), `sizeof ${struct}`);
  for (const [field, at] of Object.entries(koffiDecl.offsets)) t.equal(at, c.get(field), `offsetof ${field}`);
});

t.test('the guest contract stays within what the host driver takes', async (t) => {
  // A record the validator accepts must never be one the host refuses: the guest would see a
  // device error for a submission the contract allows.
  t.ok(MAX_DISPATCH_DESCRIPTORS <= c.get('MDGPU_HOST_MAX_DISPATCH_DESCRIPTORS')!, 'descriptors of a DISPATCH2');
  t.ok(MAX_UPDATE_BYTES <= c.get('MDGPU_HOST_MAX_UPDATE')!, 'bytes of an UPDATE');
  t.ok(MAX_SPEC_ENTRIES <= c.get('MDGPU_HOST_MAX_SPEC_ENTRIES')!, 'specialization entries');
  t.ok(MAX_SPEC_DATA <= c.get('MDGPU_HOST_MAX_SPEC_DATA')!, 'specialization bytes');
  t.ok(GUEST_MAX_ENTRY_NAME <= c.get('MDGPU_HOST_MAX_ENTRY_NAME')!, 'entry point name');
  t.equal(MAX_KERNEL_DESCRIPTORS, 2 * c.get('MDGPU_HOST_MAX_STAGE_DESCRIPTORS')!, 'storage plus uniform descriptors a kernel declares');
});
