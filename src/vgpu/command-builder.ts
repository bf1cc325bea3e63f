/**
 * Encodes submissions in the queue command format, from the same layouts the validator decodes.
 * Used by tests and host-side tools; the guest library has its own C encoder (libmdgpu).
 */
import { CMD, CMD_ALIGN, CMD_LAYOUTS, DESCRIPTOR_TYPES, DispatchBinding, DispatchDescriptor } from './commands.js';
import { KERNEL_FLAGS, KernelDesc, SpecMapEntry } from './kernels.js';

export type BufferRef = { buffer: number; offset: bigint | number };

export type CommandSpec =
  | { op: 'nop'; length?: number }
  | { op: 'barrier' }
  | { op: 'copy'; src: BufferRef; dst: BufferRef; size: bigint | number }
  | { op: 'fill'; dst: BufferRef; size: bigint | number; value: number }
  | { op: 'dispatch'; kernel: number; groups: [number, number, number]; bindings: (BufferRef & { size: bigint | number })[]; push?: Uint8Array }
  | { op: 'fence'; dst: BufferRef; value: bigint; irq?: boolean }
  | { op: 'wait'; src: BufferRef; value: bigint; timeoutNs?: bigint }
  | { op: 'timestamp'; dst: BufferRef }
  | {
      op: 'dispatch2';
      kernel: number;
      base?: [number, number, number];
      groups: [number, number, number];
      descriptors: DescriptorSpec[];
      push?: Uint8Array;
    }
  | { op: 'dispatchIndirect'; kernel: number; args: BufferRef; descriptors: DescriptorSpec[]; push?: Uint8Array }
  | { op: 'update'; dst: BufferRef; data: Uint8Array };

/** A DISPATCH2 descriptor (contract 1.3). */
export interface DescriptorSpec {
  set: number;
  binding: number;
  index?: number;
  type: 'storage' | 'uniform';
  buffer: number;
  offset: bigint | number;
  range: bigint | number;
}

/** Descriptors then push constants (padded to 8) after a header of `headSize` bytes. */
function withTail(head: Uint8Array, descriptors: DescriptorSpec[], push: Uint8Array): Uint8Array {
  const pushAt = head.length + descriptors.length * DispatchDescriptor.size;
  const out = new Uint8Array(pushAt + Math.ceil(push.length / CMD_ALIGN) * CMD_ALIGN);
  out.set(head);
  descriptors.forEach((d, i) =>
    DispatchDescriptor.encode(
      {
        set: d.set,
        binding: d.binding,
        index: d.index ?? 0,
        type: d.type === 'uniform' ? DESCRIPTOR_TYPES.UNIFORM_BUFFER.code : DESCRIPTOR_TYPES.STORAGE_BUFFER.code,
        buffer: d.buffer,
        reserved: 0,
        offset: big(d.offset),
        range: big(d.range),
      },
      out,
      head.length + i * DispatchDescriptor.size,
    ),
  );
  out.set(push, pushAt);
  return out;
}

const big = (v: bigint | number) => BigInt(v);

export function encodeCommand(spec: CommandSpec): Uint8Array {
  switch (spec.op) {
    case 'nop': {
      const length = spec.length ?? 8;
      const out = new Uint8Array(length);
      CMD_LAYOUTS.NOP.encode({ opcode: CMD.NOP, flags: 0, length }, out);
      return out;
    }
    case 'barrier':
      return CMD_LAYOUTS.BARRIER.encode({ opcode: CMD.BARRIER, flags: 0, length: 8 });
    case 'copy':
      return CMD_LAYOUTS.COPY.encode({
        opcode: CMD.COPY,
        flags: 0,
        length: CMD_LAYOUTS.COPY.size,
        srcBuffer: spec.src.buffer,
        dstBuffer: spec.dst.buffer,
        srcOffset: big(spec.src.offset),
        dstOffset: big(spec.dst.offset),
        size: big(spec.size),
      });
    case 'fill':
      return CMD_LAYOUTS.FILL.encode({
        opcode: CMD.FILL,
        flags: 0,
        length: CMD_LAYOUTS.FILL.size,
        buffer: spec.dst.buffer,
        value: spec.value >>> 0,
        offset: big(spec.dst.offset),
        size: big(spec.size),
      });
    case 'dispatch': {
      const push = spec.push ?? new Uint8Array(0);
      const pushAt = CMD_LAYOUTS.DISPATCH.size + spec.bindings.length * DispatchBinding.size;
      const length = pushAt + Math.ceil(push.length / 8) * 8;
      const out = new Uint8Array(length);
      CMD_LAYOUTS.DISPATCH.encode(
        {
          opcode: CMD.DISPATCH,
          flags: 0,
          length,
          kernel: spec.kernel,
          bindings: spec.bindings.length,
          groupsX: spec.groups[0],
          groupsY: spec.groups[1],
          groupsZ: spec.groups[2],
          pushSize: push.length,
        },
        out,
      );
      spec.bindings.forEach((b, i) =>
        DispatchBinding.encode(
          { buffer: b.buffer, reserved: 0, offset: big(b.offset), size: big(b.size) },
          out,
          CMD_LAYOUTS.DISPATCH.size + i * DispatchBinding.size,
        ),
      );
      out.set(push, pushAt);
      return out;
    }
    case 'fence':
      return CMD_LAYOUTS.FENCE.encode({
        opcode: CMD.FENCE,
        flags: spec.irq ? 1 : 0,
        length: CMD_LAYOUTS.FENCE.size,
        buffer: spec.dst.buffer,
        reserved: 0,
        offset: big(spec.dst.offset),
        value: spec.value,
      });
    case 'wait':
      return CMD_LAYOUTS.WAIT.encode({
        opcode: CMD.WAIT,
        flags: 0,
        length: CMD_LAYOUTS.WAIT.size,
        buffer: spec.src.buffer,
        reserved: 0,
        offset: big(spec.src.offset),
        value: spec.value,
        timeoutNs: spec.timeoutNs ?? 0n,
      });
    case 'dispatch2': {
      const push = spec.push ?? new Uint8Array(0);
      const length = CMD_LAYOUTS.DISPATCH2.size + spec.descriptors.length * DispatchDescriptor.size + Math.ceil(push.length / CMD_ALIGN) * CMD_ALIGN;
      const base = spec.base ?? [0, 0, 0];
      const head = CMD_LAYOUTS.DISPATCH2.encode({
        opcode: CMD.DISPATCH2,
        flags: 0,
        length,
        kernel: spec.kernel,
        descriptors: spec.descriptors.length,
        baseX: base[0],
        baseY: base[1],
        baseZ: base[2],
        groupsX: spec.groups[0],
        groupsY: spec.groups[1],
        groupsZ: spec.groups[2],
        pushSize: push.length,
        reserved: 0,
      });
      return withTail(head, spec.descriptors, push);
    }
    case 'dispatchIndirect': {
      const push = spec.push ?? new Uint8Array(0);
      const length = CMD_LAYOUTS.DISPATCH_INDIRECT.size + spec.descriptors.length * DispatchDescriptor.size + Math.ceil(push.length / CMD_ALIGN) * CMD_ALIGN;
      const head = CMD_LAYOUTS.DISPATCH_INDIRECT.encode({
        opcode: CMD.DISPATCH_INDIRECT,
        flags: 0,
        length,
        kernel: spec.kernel,
        descriptors: spec.descriptors.length,
        pushSize: push.length,
        argsBuffer: spec.args.buffer,
        argsOffset: big(spec.args.offset),
      });
      return withTail(head, spec.descriptors, push);
    }
    case 'update': {
      const length = CMD_LAYOUTS.UPDATE.size + Math.ceil(spec.data.length / CMD_ALIGN) * CMD_ALIGN;
      const out = new Uint8Array(length);
      CMD_LAYOUTS.UPDATE.encode({ opcode: CMD.UPDATE, flags: 0, length, buffer: spec.dst.buffer, size: spec.data.length, offset: big(spec.dst.offset) }, out);
      out.set(spec.data, CMD_LAYOUTS.UPDATE.size);
      return out;
    }
    case 'timestamp':
      return CMD_LAYOUTS.TIMESTAMP.encode({
        opcode: CMD.TIMESTAMP,
        flags: 0,
        length: CMD_LAYOUTS.TIMESTAMP.size,
        buffer: spec.dst.buffer,
        reserved: 0,
        offset: big(spec.dst.offset),
      });
  }
}

/** A whole submission: SUBMIT header (with an optional completion fence) then the commands. */
export function encodeSubmission(commands: CommandSpec[], fence?: { dst: BufferRef; value: bigint; irq?: boolean }): Uint8Array {
  const bodies = commands.map(encodeCommand);
  const length = CMD_LAYOUTS.SUBMIT.size + bodies.reduce((n, b) => n + b.length, 0);
  const out = new Uint8Array(length);
  CMD_LAYOUTS.SUBMIT.encode(
    {
      opcode: CMD.SUBMIT,
      flags: fence?.irq ? 1 : 0,
      length,
      fenceValue: fence?.value ?? 0n,
      fenceBuffer: fence?.dst.buffer ?? 0,
      reserved: 0,
      fenceOffset: big(fence?.dst.offset ?? 0),
    },
    out,
  );
  let at = CMD_LAYOUTS.SUBMIT.size;
  for (const b of bodies) {
    out.set(b, at);
    at += b.length;
  }
  return out;
}

/**
 * A KERNEL_CREATE2 record (contract 1.3) and what it names, laid out in one buffer image: the
 * record at 0, then the SPIR-V, the entry point name and the specialization map and data.
 */
export function encodeKernelRecord(options: {
  spirv: Uint8Array;
  pushBytes: number;
  entryPoint?: string;
  spec?: { entries: { constantId: number; offset: number; size: number }[]; data: Uint8Array };
  dispatchBase?: boolean;
}): Uint8Array {
  const entry = new TextEncoder().encode(options.entryPoint ?? '');
  const spirvOffset = 256;
  const entryOffset = spirvOffset + Math.ceil(options.spirv.length / 8) * 8;
  const mapOffset = entryOffset + Math.ceil(entry.length / 8) * 8;
  const entries = options.spec?.entries ?? [];
  const dataOffset = mapOffset + entries.length * SpecMapEntry.size;
  const data = options.spec?.data ?? new Uint8Array(0);
  const out = new Uint8Array(dataOffset + data.length);
  KernelDesc.encode(
    {
      flags: options.dispatchBase ? 1 << KERNEL_FLAGS.DISPATCH_BASE.bit : 0,
      pushBytes: options.pushBytes,
      spirvSize: options.spirv.length,
      entrySize: entry.length,
      spirvOffset: BigInt(spirvOffset),
      entryOffset: BigInt(entryOffset),
      specMapOffset: BigInt(mapOffset),
      specMapCount: entries.length,
      specDataSize: data.length,
      specDataOffset: BigInt(dataOffset),
      reserved: 0n,
    },
    out,
  );
  out.set(options.spirv, spirvOffset);
  out.set(entry, entryOffset);
  entries.forEach((e, i) => SpecMapEntry.encode({ ...e, reserved: 0 }, out, mapOffset + i * SpecMapEntry.size));
  out.set(data, dataOffset);
  return out;
}
