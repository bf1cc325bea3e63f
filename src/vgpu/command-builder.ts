/**
 * Encodes submissions in the queue command format, from the same layouts the validator decodes.
 * Used by tests and host-side tools; the guest library has its own C encoder (libmdgpu).
 */
import { CMD, CMD_LAYOUTS, DispatchBinding } from './commands.js';

export type BufferRef = { buffer: number; offset: bigint | number };

export type CommandSpec =
  | { op: 'nop'; length?: number }
  | { op: 'barrier' }
  | { op: 'copy'; src: BufferRef; dst: BufferRef; size: bigint | number }
  | { op: 'fill'; dst: BufferRef; size: bigint | number; value: number }
  | { op: 'dispatch'; kernel: number; groups: [number, number, number]; bindings: (BufferRef & { size: bigint | number })[]; push?: Uint8Array }
  | { op: 'fence'; dst: BufferRef; value: bigint; irq?: boolean }
  | { op: 'wait'; src: BufferRef; value: bigint; timeoutNs?: bigint }
  | { op: 'timestamp'; dst: BufferRef };

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
