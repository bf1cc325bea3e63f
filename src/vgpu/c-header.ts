/**
 * Generates the guest driver's C headers from the TypeScript tables, so C and TypeScript cannot
 * drift apart: the hardware header (guest-driver/include/mdgpu_hw.h: registers, interrupt
 * sources, mailbox, the device's limits) and the queue-format header of libmdgpu
 * (guest-driver/lib/mdgpu_cmd.h: command opcodes, sizes and layouts, submission errors, the
 * queue control block). Every struct comes with `_Static_assert`s on its size and field offsets,
 * so a C compiler that lays it out differently refuses to build. A test fails when a committed
 * header differs from what this writes; `npm run gen-header` rewrites both.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { fieldMask } from '../pci/reg-file.js';
import type { Fields, Layout } from '../layout/struct.js';
import {
  IRQ_SOURCE_ERROR,
  IRQ_SOURCE_FENCE,
  IRQ_SOURCE_KERNEL,
  IRQ_SOURCE_MAILBOX,
  MDGPU_CONTRACT_MAJOR,
  MDGPU_CONTRACT_MINOR,
  MDGPU_ID,
  MDGPU_IRQ_SOURCES,
  MDGPU_REGS,
  MAILBOX_ARGS,
  MAILBOX_RETS,
} from './regs.js';
import {
  BO_FLAGS,
  BO_FLAGS_KNOWN,
  KERNEL_STATES,
  MAILBOX_OPS,
  MAILBOX_RESERVED,
  MAILBOX_RESULTS,
  MAX_ALIGN_LOG2,
  MIN_ALIGN_LOG2,
  QUERY_PARAMS,
} from './mailbox-ops.js';
import { CAPS_FEATURES, CAPS_VERSION, Caps } from './caps.js';
import {
  CMD,
  CMD_ALIGN,
  CMD_FLAG_IRQ,
  CMD_LAYOUTS,
  CommandHeader,
  DEFAULT_COMMAND_LIMITS,
  DESCRIPTOR_TYPES,
  DispatchBinding,
  DispatchDescriptor,
  FENCE_ERROR_BIT,
  MAX_BINDINGS,
  MAX_DISPATCH_DESCRIPTORS,
  MAX_PUSH_CONSTANT_BYTES,
  MAX_UPDATE_BYTES,
  SUBMIT_ERRORS,
} from './commands.js';
import { QUEUE_MAX_PRIORITY } from './queues.js';
import { QUEUE_CONTROL_DOCS, QUEUE_CONTROL_SIZE, QUEUE_MAX_RING, QUEUE_MIN_RING, QueueControl } from './queue-ring.js';
import { KERNEL_FLAGS, KernelDesc, MAX_ENTRY_NAME, MAX_SPEC_DATA, MAX_SPEC_ENTRIES, MAX_SPIRV_BYTES, SpecMapEntry } from './kernels.js';
import {
  ALLOC_BASE,
  DEFAULT_IDENTITY,
  MSIX_PBA_OFFSET,
  MSIX_TABLE_OFFSET,
  REGISTER_BAR,
  REGISTER_BAR_SIZE,
  APERTURE_BAR,
  TRAPPED_WINDOW_SIZE,
} from './device.js';

export const HEADER_PATH = 'guest-driver/include/mdgpu_hw.h';
export const CMD_HEADER_PATH = 'guest-driver/lib/mdgpu_cmd.h';

const hex = (n: number, pad = 0) => `0x${(n >>> 0).toString(16).padStart(pad, '0')}`;

function define(name: string, value: string, comment?: string): string {
  const line = `#define ${name.padEnd(40)} ${value}`;
  return comment ? `${line.padEnd(64)} /* ${comment} */` : line;
}

/** A C literal for a limit: hex from 256 up, a shift for a single bit above 32 bits (fits u64). */
export function cValue(value: number | bigint): string {
  const v = BigInt(value);
  if (v >= 1n << 32n) {
    const bit = v.toString(2).length - 1;
    if (v === 1n << BigInt(bit)) return `(1ULL << ${bit})`;
    return `0x${v.toString(16)}ULL`;
  }
  return v >= 256n ? `0x${v.toString(16)}` : v.toString();
}

/**
 * A limit of the device that the guest driver needs: its generated name in mdgpu_hw.h, its value
 * from the TypeScript tables, and the name under which include/uapi/mdgpu.h promises it to
 * userspace. The uapi header is self-contained (userspace installs it alone), so it spells the
 * value out; the kernel module and libmdgpu `_Static_assert` that the two agree.
 */
export interface DeviceLimit {
  /** Macro in mdgpu_hw.h. */
  readonly name: string;
  readonly value: number | bigint;
  readonly doc: string;
  /** The uapi header's macro that must equal it, if the uapi repeats it. */
  readonly uapi?: string;
}

/**
 * The device's limits, each declared once in the TypeScript tables. Where the uapi header uses
 * the plain name for its own promise, the device's value is MDGPU_HW_*.
 */
export const DEVICE_LIMITS: readonly DeviceLimit[] = [
  { name: 'MDGPU_TRAPPED_WINDOW_SIZE', value: TRAPPED_WINDOW_SIZE, doc: 'BAR0[0, this) is trapped', uapi: 'MDGPU_WINDOW_SIZE' },
  { name: 'MDGPU_ALLOC_BASE', value: ALLOC_BASE, doc: 'buffers start here in the aperture' },
  { name: 'MDGPU_HW_BO_FLAGS_KNOWN', value: BO_FLAGS_KNOWN, doc: 'BO_ALLOC flags the device knows', uapi: 'MDGPU_BO_FLAGS_KNOWN' },
  { name: 'MDGPU_MIN_ALIGN_LOG2', value: MIN_ALIGN_LOG2, doc: 'smallest explicit BO_ALLOC alignment (0: the granule)', uapi: 'MDGPU_BO_ALIGN_MIN_LOG2' },
  { name: 'MDGPU_MAX_ALIGN_LOG2', value: MAX_ALIGN_LOG2, doc: 'largest BO_ALLOC alignment', uapi: 'MDGPU_BO_ALIGN_MAX_LOG2' },
  { name: 'MDGPU_HW_QUEUE_CONTROL_SIZE', value: QUEUE_CONTROL_SIZE, doc: 'control block at the start of a queue buffer', uapi: 'MDGPU_QUEUE_CONTROL_SIZE' },
  { name: 'MDGPU_HW_QUEUE_RING_MIN', value: QUEUE_MIN_RING, doc: 'smallest ring (a power of two)', uapi: 'MDGPU_QUEUE_RING_MIN' },
  { name: 'MDGPU_HW_QUEUE_RING_MAX', value: QUEUE_MAX_RING, doc: 'largest ring', uapi: 'MDGPU_QUEUE_RING_MAX' },
  { name: 'MDGPU_HW_QUEUE_PRIORITY_MAX', value: QUEUE_MAX_PRIORITY, doc: 'queue priorities are 0..this', uapi: 'MDGPU_QUEUE_PRIORITY_MAX' },
  { name: 'MDGPU_HW_KERNEL_MAX_SPIRV', value: MAX_SPIRV_BYTES, doc: 'largest SPIR-V module, bytes', uapi: 'MDGPU_KERNEL_MAX_SPIRV' },
  { name: 'MDGPU_HW_KERNEL_MAX_BINDINGS', value: MAX_BINDINGS, doc: 'most bindings of a kernel', uapi: 'MDGPU_KERNEL_MAX_BINDINGS' },
  { name: 'MDGPU_HW_KERNEL_MAX_PUSH_BYTES', value: MAX_PUSH_CONSTANT_BYTES, doc: 'most push-constant bytes of a kernel', uapi: 'MDGPU_KERNEL_MAX_PUSH_BYTES' },
  { name: 'MDGPU_HW_FENCE_ERROR', value: FENCE_ERROR_BIT, doc: 'set in the fence value of a failed submission', uapi: 'MDGPU_FENCE_ERROR' },
  { name: 'MDGPU_KERNEL_MAX_ENTRY_NAME', value: MAX_ENTRY_NAME, doc: 'longest entry point name of a kernel record, bytes (1.3)' },
  { name: 'MDGPU_KERNEL_MAX_SPEC_ENTRIES', value: MAX_SPEC_ENTRIES, doc: 'most specialization constants of a kernel record (1.3)' },
  { name: 'MDGPU_KERNEL_MAX_SPEC_DATA', value: MAX_SPEC_DATA, doc: 'most specialization data bytes of a kernel record (1.3)' },
  { name: 'MDGPU_DISPATCH_MAX_DESCRIPTORS', value: MAX_DISPATCH_DESCRIPTORS, doc: 'most descriptors of a DISPATCH2 (1.3)' },
  { name: 'MDGPU_UPDATE_MAX_BYTES', value: MAX_UPDATE_BYTES, doc: 'most bytes one UPDATE carries (1.3)' },
];

/** Interrupt sources (IRQ_STATUS bit n, MSI-X vector n). */
export const IRQ_SOURCE_DEFINES = {
  MDGPU_IRQ_SOURCE_MAILBOX: IRQ_SOURCE_MAILBOX,
  MDGPU_IRQ_SOURCE_FENCE: IRQ_SOURCE_FENCE,
  MDGPU_IRQ_SOURCE_ERROR: IRQ_SOURCE_ERROR,
  MDGPU_IRQ_SOURCE_KERNEL: IRQ_SOURCE_KERNEL,
} as const;

export function generateHeader(): string {
  const out: string[] = [];
  out.push('/* SPDX-License-Identifier: (GPL-2.0 WITH Linux-syscall-note) OR MIT */');
  out.push('/*');
  out.push(' * mdgpu virtual GPGPU: hardware interface (registers, interrupt sources, mailbox operations,');
  out.push(" * result codes, the device's limits).");
  out.push(' *');
  out.push(' * GENERATED by src/vgpu/c-header.ts from src/vgpu/regs.ts, src/vgpu/mailbox-ops.ts,');
  out.push(' * src/vgpu/device.ts, src/vgpu/queues.ts, src/vgpu/kernels.ts and src/vgpu/commands.ts.');
  out.push(' * Do not edit: run `npm run gen-header`. The contract is docs/device.md.');
  out.push(' */');
  out.push('#ifndef MDGPU_HW_H');
  out.push('#define MDGPU_HW_H');
  out.push('');
  out.push(define('MDGPU_PCI_VENDOR_ID', hex(DEFAULT_IDENTITY.vendorId, 4), 'not PCI-SIG assigned'));
  out.push(define('MDGPU_PCI_DEVICE_ID', hex(DEFAULT_IDENTITY.deviceId, 4)));
  out.push(define('MDGPU_ID_VALUE', hex(MDGPU_ID, 8), '"MDGP"'));
  out.push(define('MDGPU_CONTRACT_MAJOR', String(MDGPU_CONTRACT_MAJOR)));
  out.push(define('MDGPU_CONTRACT_MINOR', String(MDGPU_CONTRACT_MINOR)));
  out.push('');
  out.push(define('MDGPU_APERTURE_BAR', String(APERTURE_BAR)));
  out.push(define('MDGPU_REGISTER_BAR', String(REGISTER_BAR)));
  out.push(define('MDGPU_REGISTER_BAR_SIZE', hex(REGISTER_BAR_SIZE)));
  out.push(define('MDGPU_MSIX_TABLE_OFFSET', hex(MSIX_TABLE_OFFSET)));
  out.push(define('MDGPU_MSIX_PBA_OFFSET', hex(MSIX_PBA_OFFSET)));
  out.push(define('MDGPU_IRQ_SOURCES', String(MDGPU_IRQ_SOURCES)));
  out.push(define('MDGPU_MAILBOX_ARGS', String(MAILBOX_ARGS)));
  out.push(define('MDGPU_MAILBOX_RETS', String(MAILBOX_RETS)));
  out.push('');
  out.push('/* Interrupt sources: IRQ_STATUS bit n, delivered on MSI-X vector n. */');
  for (const [name, source] of Object.entries(IRQ_SOURCE_DEFINES)) out.push(define(name, String(source)));
  out.push('');
  out.push('/*');
  out.push(" * The device's limits. include/uapi/mdgpu.h repeats those it promises userspace (MDGPU_HW_X");
  out.push(' * there is MDGPU_X); the kernel module and libmdgpu assert that the two agree.');
  out.push(' */');
  for (const l of DEVICE_LIMITS) out.push(define(l.name, cValue(l.value), l.doc));
  out.push('');
  out.push('/* Registers in BAR2, all 32 bits wide. */');
  for (const [name, reg] of Object.entries(MDGPU_REGS)) {
    out.push(define(`MDGPU_REG_${name}`, `${hex(reg.offset, 3)}u`, reg.doc));
    for (const [field, def] of Object.entries('fields' in reg ? (reg.fields as Record<string, readonly [number, number]>) : {})) {
      out.push(define(`MDGPU_REG_${name}_${field}_SHIFT`, String(def[0])));
      out.push(define(`MDGPU_REG_${name}_${field}_MASK`, `${hex(fieldMask(def))}u`));
    }
  }
  out.push('');
  out.push('/* Mailbox operations (MBOX_OPCODE). */');
  for (const [name, op] of Object.entries(MAILBOX_OPS)) {
    const sig = `args: ${op.args.join(', ') || '-'}; returns: ${op.rets.join(', ') || '-'}`;
    out.push(define(`MDGPU_OP_${name}`, hex(op.code, 4), sig));
  }
  for (const r of MAILBOX_RESERVED) out.push(`/* ${hex(r.from, 4)}..${hex(r.to, 4)} reserved: ${r.use} */`);
  out.push('');
  out.push('/* Mailbox results (MBOX_STATUS.RESULT). */');
  for (const [name, r] of Object.entries(MAILBOX_RESULTS)) out.push(define(`MDGPU_RESULT_${name}`, String(r.code), r.doc));
  out.push('');
  out.push('/* Kernel states (KERNEL_STATUS.state). */');
  for (const [name, k] of Object.entries(KERNEL_STATES)) out.push(define(`MDGPU_KERNEL_${name}`, String(k.code), k.doc));
  out.push('');
  out.push('/* QUERY parameters. */');
  for (const [name, p] of Object.entries(QUERY_PARAMS)) out.push(define(`MDGPU_QUERY_${name}`, String(p.code), p.doc));
  out.push('');
  out.push('/* BO_ALLOC flags. */');
  for (const [name, f] of Object.entries(BO_FLAGS)) out.push(define(`MDGPU_BO_FLAG_${name}`, `(1u << ${f.bit})`, f.doc));
  out.push('');
  out.push('/* Kernel record flags (struct mdgpu_kernel_desc.flags, contract 1.3). */');
  for (const [name, f] of Object.entries(KERNEL_FLAGS)) out.push(define(`MDGPU_KERNEL_FLAG_${name}`, `(1u << ${f.bit})`, f.doc));
  out.push('');
  out.push('/* Capability record (struct mdgpu_caps in mdgpu_cmd.h, contract 1.3). */');
  out.push(define('MDGPU_CAPS_VERSION', String(CAPS_VERSION)));
  out.push(define('MDGPU_CAPS_SIZE', String(Caps.size)));
  for (const [name, f] of Object.entries(CAPS_FEATURES)) out.push(define(`MDGPU_CAPS_FEATURE_${name}`, `(1u << ${f.bit})`, f.doc));
  out.push('');
  out.push('#endif /* MDGPU_HW_H */');
  out.push('');
  return out.join('\n');
}

const snake = (name: string) => name.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`);

/** C declaration of a layout field: fixed-width little-endian integers and byte arrays. */
function cField(kind: string, name: string): string {
  const m = /^u(8|16|32|64)$/.exec(kind);
  if (m) return `uint${m[1]}_t ${name}`;
  const a = /^u8\[(\d+)\]$/.exec(kind);
  if (a) return `uint8_t ${name}[${a[1]}]`;
  throw new Error(`no C type for a ${kind} field`);
}

/**
 * The command structs of mdgpu_cmd.h, in order: the header, every command with a fixed layout
 * (NOP has none: any length from the header's up), and the DISPATCH binding. Exported for the
 * contract test, which compiles the header and compares every size and offset with these.
 */
export const COMMAND_STRUCTS: readonly Layout<Fields>[] = [
  CommandHeader,
  ...Object.entries(CMD_LAYOUTS)
    .filter(([name]) => name !== 'NOP')
    .map(([, layout]) => layout as Layout<Fields>),
  DispatchBinding,
  DispatchDescriptor,
];

/** Records userspace writes into buffers or reads from them (contract 1.3), in mdgpu_cmd.h too. */
export const RECORD_STRUCTS: readonly Layout<Fields>[] = [Caps, KernelDesc, SpecMapEntry];

/** A packed struct for `layout`, with asserts on its size and every offset. */
function commandStruct(layout: Layout<Fields>, sizeMacro: string | undefined): string[] {
  const out: string[] = [];
  const fields = Object.entries(layout.fields);
  out.push(`struct ${layout.name} {`);
  for (const [name, f] of fields) out.push(`\t${cField(f.type.kind, snake(name))};`);
  out.push('} __attribute__((packed));');
  out.push(`_Static_assert(sizeof(struct ${layout.name}) == ${sizeMacro ?? layout.size}, "${layout.name} layout");`);
  for (const [name, f] of fields) {
    out.push(`_Static_assert(offsetof(struct ${layout.name}, ${snake(name)}) == ${f.offset}, "${layout.name} layout");`);
  }
  return out;
}

/** libmdgpu's queue-format header: what userspace writes into rings and reads back. */
export function generateCommandHeader(): string {
  const out: string[] = [];
  const d = (name: string, value: string | number, comment?: string) => {
    const line = `#define ${name.padEnd(32)} ${value}`;
    out.push(comment ? `${line.padEnd(48)} /* ${comment} */` : line);
  };
  out.push('/* SPDX-License-Identifier: MIT */');
  out.push('/*');
  out.push(' * mdgpu virtual GPGPU: the queue format (docs/device.md, "Queues"): command opcodes, sizes and');
  out.push(' * layouts, the submission error codes the device writes into the control block, and the');
  out.push(' * control block at the start of a queue buffer.');
  out.push(' *');
  out.push(' * GENERATED by src/vgpu/c-header.ts from src/vgpu/commands.ts and src/vgpu/queues.ts.');
  out.push(' * Do not edit: run `npm run gen-header`.');
  out.push(' *');
  out.push(" * These are the device's, not the kernel driver's: userspace writes commands straight into");
  out.push(' * the ring in the aperture and the driver never sees them. The command structs give each');
  out.push(' * field its offset and width; the format is little-endian whatever the CPU, so libmdgpu');
  out.push(' * (mdgpu_queue.c) stores fields byte by byte at offsetof() rather than through the structs.');
  out.push(' * Every struct is asserted against the layouts of the TypeScript tables.');
  out.push(' */');
  out.push('#ifndef MDGPU_CMD_H');
  out.push('#define MDGPU_CMD_H');
  out.push('');
  out.push('#include <stddef.h>');
  out.push('#include <stdint.h>');
  out.push('');
  out.push('/* Command opcodes (header: opcode u16, flags u16, length u32). */');
  for (const [name, code] of Object.entries(CMD)) d(`MDGPU_CMD_${name}`, hex(code, 2));
  out.push('');
  out.push('/* SUBMIT and FENCE flag: raise the FENCE interrupt source when the fence value is written. */');
  d('MDGPU_CMD_FLAG_IRQ', hex(CMD_FLAG_IRQ));
  out.push('');
  out.push('/* Every command length (so every submission) is a multiple of this; DISPATCH pads its push. */');
  d('MDGPU_CMD_ALIGN', CMD_ALIGN);
  out.push('');
  out.push('/* Command sizes in bytes, header included. DISPATCH is followed by its bindings and push. */');
  d('MDGPU_CMD_HEADER_SIZE', CommandHeader.size);
  // NOP has no fixed size: any length from the header's up skips that many bytes.
  for (const [name, layout] of Object.entries(CMD_LAYOUTS)) if (name !== 'NOP') d(`MDGPU_CMD_${name}_SIZE`, layout.size);
  d('MDGPU_CMD_BINDING_SIZE', DispatchBinding.size);
  d('MDGPU_CMD_DESCRIPTOR_SIZE', DispatchDescriptor.size);
  out.push('');
  out.push('/* Descriptor types of struct mdgpu_dispatch_descriptor (contract 1.3). */');
  for (const [name, t] of Object.entries(DESCRIPTOR_TYPES)) d(`MDGPU_DESCRIPTOR_${name}`, t.code, t.doc);
  out.push('');
  out.push('/* Device limits (QUERY MAX_SUBMISSION reports the first). */');
  const maxBytes = DEFAULT_COMMAND_LIMITS.maxSubmissionBytes;
  const log2 = Math.log2(maxBytes);
  d('MDGPU_SUBMIT_MAX_BYTES', Number.isInteger(log2) ? `(1u << ${log2})` : `${maxBytes}u`);
  d('MDGPU_SUBMIT_MAX_COMMANDS', DEFAULT_COMMAND_LIMITS.maxCommands);
  out.push('');
  out.push('/* Submission error codes (control block error_code, docs/device.md "Submission errors"). */');
  for (const [name, e] of Object.entries(SUBMIT_ERRORS)) d(`MDGPU_SUBMIT_${name}`, e.code, e.doc);
  out.push('');
  out.push('/* Their names, as an initializer: static const char *const names[] = MDGPU_SUBMIT_ERROR_NAMES; */');
  out.push('#define MDGPU_SUBMIT_ERROR_NAMES \\');
  out.push('\t{ \\');
  for (const name of Object.keys(SUBMIT_ERRORS)) out.push(`\t\t[MDGPU_SUBMIT_${name}] = "${name}", \\`);
  out.push('\t}');
  out.push('');
  out.push('/*');
  out.push(' * Command layouts: packed, fixed-width, little-endian (fields are stored in that byte order');
  out.push(" * whatever the CPU). The size macros above are each struct's size; DISPATCH is followed by");
  out.push(' * its bindings (struct mdgpu_dispatch_binding) and its push constants, padded to');
  out.push(' * MDGPU_CMD_ALIGN. NOP is a header with any length.');
  out.push(' */');
  for (const layout of COMMAND_STRUCTS) {
    const entry = Object.entries(CMD_LAYOUTS).find(([, l]) => l === layout);
    const sizeMacro =
      layout === CommandHeader
        ? 'MDGPU_CMD_HEADER_SIZE'
        : layout === DispatchBinding
          ? 'MDGPU_CMD_BINDING_SIZE'
          : layout === DispatchDescriptor
            ? 'MDGPU_CMD_DESCRIPTOR_SIZE'
            : entry
              ? `MDGPU_CMD_${entry[0]}_SIZE`
              : undefined;
    out.push(...commandStruct(layout, sizeMacro));
    out.push('');
  }
  out.push('/*');
  out.push(' * Records userspace places in a buffer for the device (contract 1.3): the capability record');
  out.push(' * CAPS_READ writes (its size is MDGPU_CAPS_SIZE), and the kernel record of KERNEL_CREATE2 with');
  out.push(' * its specialization map entries. Packed, little-endian like the commands.');
  out.push(' */');
  for (const layout of RECORD_STRUCTS) {
    out.push(...commandStruct(layout, undefined));
    out.push('');
  }
  const fields = Object.entries(QueueControl.fields);
  out.push('/**');
  out.push(' * struct mdgpu_queue_control - the control block, the first 4 KiB of a queue buffer');
  for (const [name] of fields) out.push(` * @${snake(name)}: ${QUEUE_CONTROL_DOCS[name as keyof typeof QUEUE_CONTROL_DOCS]}`);
  out.push(' *');
  out.push(' * The device writes its fields while the guest reads them: access them through the volatile');
  out.push(' * pointer mdgpu_queue_control() returns (64-bit fields are naturally aligned, so a load is');
  out.push(' * one access).');
  out.push(' */');
  out.push('struct mdgpu_queue_control {');
  for (const [name, f] of fields) out.push(`\t${cField(f.type.kind, snake(name))};`);
  out.push('};');
  out.push('');
  for (const [name, f] of fields) {
    out.push(`_Static_assert(offsetof(struct mdgpu_queue_control, ${snake(name)}) == ${hex(f.offset, 2)}, "control block layout");`);
  }
  out.push(`_Static_assert(sizeof(struct mdgpu_queue_control) == ${hex(QueueControl.size, 2)}, "control block layout");`);
  out.push('');
  out.push('#endif /* MDGPU_CMD_H */');
  out.push('');
  return out.join('\n');
}

function packageRoot(): string {
  let dir = path.dirname(fileURLToPath(import.meta.url));
  while (!fs.existsSync(path.join(dir, 'package.json'))) {
    const up = path.dirname(dir);
    if (up === dir) throw new Error('package.json not found');
    dir = up;
  }
  return dir;
}

export function headerFile(): string {
  return path.join(packageRoot(), HEADER_PATH);
}

export function commandHeaderFile(): string {
  return path.join(packageRoot(), CMD_HEADER_PATH);
}

if (process.argv[1] !== undefined && fileURLToPath(import.meta.url) === path.resolve(process.argv[1])) {
  fs.mkdirSync(path.dirname(headerFile()), { recursive: true });
  fs.writeFileSync(headerFile(), generateHeader());
  fs.writeFileSync(commandHeaderFile(), generateCommandHeader());
  console.log(`wrote ${HEADER_PATH} and ${CMD_HEADER_PATH}`);
}
