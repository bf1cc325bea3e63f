/**
 * The command format of mdgpu queues (contract 1.1; 1.3 adds DISPATCH2, DISPATCH_INDIRECT and
 * UPDATE and byte-granular COPY), declared once as layouts, and the validator that turns the
 * bytes a guest wrote into its ring into commands mdgpu may execute.
 *
 * A guest is hostile: every field is checked before anything reaches the host driver. Buffer
 * references are (handle, offset, size) of the submitting context's live buffers; they are
 * resolved to aperture ranges here, after overflow-safe bounds checks. A submission that fails
 * validation is not executed at all; the queue reports it with an error fence and goes on.
 */
import type { Descriptor, DescriptorType, DeviceCommand, KernelBinding } from '../device-commands.js';
import { structWith, u16, u32, u64, type Layout, type Fields } from '../layout/struct.js';

/** Why a submission was refused; written to the queue's error record (docs/device.md). */
export const SUBMIT_ERRORS = {
  OK: { code: 0, doc: 'Success' },
  BAD_OPCODE: { code: 1, doc: 'Unknown command opcode' },
  BAD_LENGTH: { code: 2, doc: 'Command length not a multiple of 8, too small for its opcode, or past the submission' },
  TRUNCATED: { code: 3, doc: 'The submission extends past what the guest published (tail)' },
  BAD_BUFFER: { code: 4, doc: 'A buffer handle that is not a live buffer of the submitting context' },
  OUT_OF_BOUNDS: { code: 5, doc: 'Offset + size outside the buffer, or overflowing' },
  BAD_ALIGNMENT: { code: 6, doc: 'An offset or size that must be aligned is not' },
  BAD_KERNEL: { code: 7, doc: 'A kernel handle that is not a live, built (READY) kernel of the submitting context' },
  BAD_WORKGROUPS: { code: 8, doc: 'Workgroup counts zero or above the device limits' },
  BAD_BINDINGS: { code: 9, doc: "Binding count differs from the kernel's, or above the limit" },
  BAD_PUSH_CONSTANTS: { code: 10, doc: "Push-constant size differs from the kernel's, or above 128 bytes" },
  BAD_FLAGS: { code: 11, doc: 'Unknown flag bits' },
  TOO_LARGE: { code: 12, doc: 'Submission larger than the limit, or too many commands' },
  WAIT_TIMEOUT: { code: 13, doc: 'A WAIT did not see its value within its timeout (bounded by the device)' },
  EXEC_FAILED: { code: 14, doc: 'The host driver failed to execute the submission' },
  BAD_RING: { code: 15, doc: 'Ring pointers out of range (tail behind head or more than the ring size ahead)' },
  CONTEXT_LOST: { code: 16, doc: 'The context was marked lost (a kernel ran past its time limit)' },
  OVERLAP: { code: 17, doc: 'COPY source and destination overlap' },
  THROTTLED: {
    code: 18,
    doc: "Refused for a cool-off period: this VM's work caused too many device resets (contract 1.2)",
  },
  BAD_DESCRIPTOR: {
    code: 19,
    doc: 'A DISPATCH2 descriptor the kernel does not declare, of the wrong type, repeated, or past its array (contract 1.3)',
  },
  BAD_INDIRECT: {
    code: 20,
    doc: 'DISPATCH_INDIRECT arguments above the device limits, read when the dispatch was due (contract 1.3)',
  },
} as const;

export type SubmitErrorName = keyof typeof SUBMIT_ERRORS;

export class CommandError extends Error {
  constructor(
    readonly error: Exclude<SubmitErrorName, 'OK'>,
    message: string,
    /** Byte offset of the offending command inside the submission. */
    readonly at = 0,
  ) {
    super(message);
  }
}

const struct = structWith((message) => new CommandError('BAD_LENGTH', message));

/** Command opcodes. */
export const CMD = {
  NOP: 0x00,
  SUBMIT: 0x01,
  COPY: 0x02,
  FILL: 0x03,
  DISPATCH: 0x04,
  FENCE: 0x05,
  WAIT: 0x06,
  TIMESTAMP: 0x07,
  BARRIER: 0x08,
  DISPATCH2: 0x09,
  DISPATCH_INDIRECT: 0x0a,
  UPDATE: 0x0b,
} as const;

/** Every command starts with this 8-byte header; `length` covers the whole command. */
export const CommandHeader = struct('mdgpu_cmd_header', { opcode: u16, flags: u16, length: u32 });

/** Flags of SUBMIT and FENCE: raise the FENCE interrupt source when the fence value is written. */
export const CMD_FLAG_IRQ = 0x1;

/** Every command's length, and so every submission's, is a multiple of this many bytes. */
export const CMD_ALIGN = 8;
/** Most storage-buffer bindings a kernel may declare (and a DISPATCH pass). */
export const MAX_BINDINGS = 16;
/** Most push-constant bytes a kernel may take (and a DISPATCH pass). */
export const MAX_PUSH_CONSTANT_BYTES = 128;
/** Bit 63 of a fence value: set in the value a failed submission writes (an error fence). */
export const FENCE_ERROR_BIT = 1n << 63n;
/** Most descriptors one DISPATCH2 or DISPATCH_INDIRECT may carry (contract 1.3). */
export const MAX_DISPATCH_DESCRIPTORS = 256;
/** Most bytes one UPDATE may carry inline (vkCmdUpdateBuffer's limit, contract 1.3). */
export const MAX_UPDATE_BYTES = 65536;
/** Descriptor types of DISPATCH2 (contract 1.3). */
export const DESCRIPTOR_TYPES = {
  STORAGE_BUFFER: { code: 0, doc: 'A storage buffer (GLSL buffer block)' },
  UNIFORM_BUFFER: { code: 1, doc: 'A uniform buffer (GLSL uniform block)' },
} as const;
export type { DescriptorType, KernelBinding } from '../device-commands.js';

export const CMD_LAYOUTS = {
  /** The head of a submission: its length covers the header and every command in it. */
  SUBMIT: struct('mdgpu_cmd_submit', {
    opcode: u16,
    flags: u16,
    length: u32,
    fenceValue: u64,
    fenceBuffer: u32,
    reserved: u32,
    fenceOffset: u64,
  }),
  COPY: struct('mdgpu_cmd_copy', {
    opcode: u16,
    flags: u16,
    length: u32,
    srcBuffer: u32,
    dstBuffer: u32,
    srcOffset: u64,
    dstOffset: u64,
    size: u64,
  }),
  FILL: struct('mdgpu_cmd_fill', {
    opcode: u16,
    flags: u16,
    length: u32,
    buffer: u32,
    value: u32,
    offset: u64,
    size: u64,
  }),
  /** Followed by `bindings` × DispatchBinding and `pushSize` bytes of push constants (padded to 8). */
  DISPATCH: struct('mdgpu_cmd_dispatch', {
    opcode: u16,
    flags: u16,
    length: u32,
    kernel: u32,
    bindings: u32,
    groupsX: u32,
    groupsY: u32,
    groupsZ: u32,
    pushSize: u32,
  }),
  FENCE: struct('mdgpu_cmd_fence', {
    opcode: u16,
    flags: u16,
    length: u32,
    buffer: u32,
    reserved: u32,
    offset: u64,
    value: u64,
  }),
  WAIT: struct('mdgpu_cmd_wait', {
    opcode: u16,
    flags: u16,
    length: u32,
    buffer: u32,
    reserved: u32,
    offset: u64,
    value: u64,
    timeoutNs: u64,
  }),
  TIMESTAMP: struct('mdgpu_cmd_timestamp', {
    opcode: u16,
    flags: u16,
    length: u32,
    buffer: u32,
    reserved: u32,
    offset: u64,
  }),
  BARRIER: struct('mdgpu_cmd_barrier', { opcode: u16, flags: u16, length: u32 }),
  NOP: struct('mdgpu_cmd_nop', { opcode: u16, flags: u16, length: u32 }),
  /**
   * Contract 1.3: a dispatch with a base and descriptors in any set, followed by `descriptors` ×
   * DispatchDescriptor and `pushSize` bytes of push constants (padded to 8). Group counts of 0 make
   * it a no-op; a non-zero base needs a kernel created with MDGPU_KERNEL_DISPATCH_BASE.
   */
  DISPATCH2: struct('mdgpu_cmd_dispatch2', {
    opcode: u16,
    flags: u16,
    length: u32,
    kernel: u32,
    descriptors: u32,
    baseX: u32,
    baseY: u32,
    baseZ: u32,
    groupsX: u32,
    groupsY: u32,
    groupsZ: u32,
    pushSize: u32,
    reserved: u32,
  }),
  /**
   * Contract 1.3: DISPATCH2 whose group counts are three u32 at `argsOffset` of `argsBuffer`, read
   * by the device when every earlier command of the submission has completed, and checked then.
   */
  DISPATCH_INDIRECT: struct('mdgpu_cmd_dispatch_indirect', {
    opcode: u16,
    flags: u16,
    length: u32,
    kernel: u32,
    descriptors: u32,
    pushSize: u32,
    argsBuffer: u32,
    argsOffset: u64,
  }),
  /** Contract 1.3: write `size` bytes carried inline (padded to 8) at `offset` of `buffer`. */
  UPDATE: struct('mdgpu_cmd_update', {
    opcode: u16,
    flags: u16,
    length: u32,
    buffer: u32,
    size: u32,
    offset: u64,
  }),
} as const satisfies Record<keyof typeof CMD, Layout<Fields>>;

export const DispatchBinding = struct('mdgpu_dispatch_binding', { buffer: u32, reserved: u32, offset: u64, size: u64 });

/** One descriptor of a DISPATCH2 or DISPATCH_INDIRECT: `range` bytes at `offset` of `buffer`. */
export const DispatchDescriptor = struct('mdgpu_dispatch_descriptor', {
  set: u32,
  binding: u32,
  index: u32,
  type: u32,
  buffer: u32,
  reserved: u32,
  offset: u64,
  range: u64,
});

/** Limits a validator enforces; the device reports them through QUERY. */
export interface CommandLimits {
  maxSubmissionBytes: number;
  maxCommands: number;
  maxBindings: number;
  maxPushConstantBytes: number;
  maxWorkgroups: readonly [number, number, number];
  maxWorkgroupsTotal: number;
  maxWaitNs: bigint;
  /** Binding offsets must be multiples of this (the device's minStorageBufferOffsetAlignment). */
  bindingAlignment: number;
  /** Largest binding in bytes. */
  maxBindingBytes: number;
  /** Descriptors one DISPATCH2 may carry. */
  maxDescriptors: number;
  /** Uniform-buffer descriptor offsets must be multiples of this (minUniformBufferOffsetAlignment). */
  uniformAlignment: number;
  /** Largest uniform-buffer descriptor range (maxUniformBufferRange). */
  maxUniformBytes: number;
}

export const DEFAULT_COMMAND_LIMITS: CommandLimits = {
  maxSubmissionBytes: 1 << 20,
  maxCommands: 4096,
  maxBindings: MAX_BINDINGS,
  maxPushConstantBytes: MAX_PUSH_CONSTANT_BYTES,
  maxWorkgroups: [65535, 65535, 65535],
  maxWorkgroupsTotal: 1 << 24,
  maxWaitNs: 10_000_000_000n,
  bindingAlignment: 16,
  maxBindingBytes: 128 << 20,
  maxDescriptors: MAX_DISPATCH_DESCRIPTORS,
  uniformAlignment: 16,
  maxUniformBytes: 65536,
};

/** What the validator needs to know of a kernel. */
export interface KernelShape {
  /** Storage buffers in set 0, bindings 0..n-1, for DISPATCH (contract 1.1 kernels). */
  bindings: number;
  pushConstantBytes: number;
  /** Every descriptor binding it declares (DISPATCH2, contract 1.3). */
  layout: readonly KernelBinding[];
  /** Created with MDGPU_KERNEL_DISPATCH_BASE: DISPATCH2 may give a non-zero base. */
  dispatchBase: boolean;
}

/** What the validator needs to know about the submitting context. */
export interface SubmissionScope {
  /** A live buffer of the submitting context (aperture offset and size), or undefined. */
  buffer(handle: number): { offset: number; size: number } | undefined;
  /** A live, built kernel of the submitting context, or undefined. */
  kernel(handle: number): KernelShape | undefined;
}

/** An aperture range a command may touch, resolved and bounds-checked. */
export interface ApertureRange {
  /** The buffer handle it came from (the queue pins buffers while a submission is in flight). */
  buffer: number;
  /** Absolute aperture offset. */
  offset: number;
  size: number;
}

/** A descriptor of a dispatch, resolved. DISPATCH's bindings are set 0, binding i, storage. */
export type ValidDescriptor = Descriptor<ApertureRange>;

/**
 * A validated command: the device commands (src/device-commands.ts) with the guest's kernel
 * handle and ranges that remember their buffer (for pinning), plus what the queue engine does
 * itself between device batches: FENCE, WAIT, and reading DISPATCH_INDIRECT's arguments.
 */
export type ValidCommand =
  | DeviceCommand<number, ApertureRange>
  /** Group counts read from `args` (12 bytes) when the dispatch is due, then checked. */
  | { kind: 'dispatchIndirect'; kernel: number; args: ApertureRange; descriptors: ValidDescriptor[]; pushConstants: Uint8Array }
  | { kind: 'fence'; dst: ApertureRange; value: bigint; irq: boolean }
  | { kind: 'wait'; src: ApertureRange; value: bigint; timeoutNs: bigint };

/** The group counts of a dispatch are within the device's limits (0 is allowed by 1.3 commands). */
export function checkGroups(groups: readonly number[], limits: CommandLimits, allowZero: boolean): string | null {
  if (groups.some((g, i) => g > limits.maxWorkgroups[i]! || (!allowZero && g === 0))) return `workgroups ${groups.join('x')}`;
  if (groups[0]! * groups[1]! * groups[2]! > limits.maxWorkgroupsTotal) return `workgroups ${groups.join('x')} > ${limits.maxWorkgroupsTotal} in all`;
  return null;
}

export interface ValidSubmission {
  /** Bytes the submission occupies in the ring. */
  length: number;
  /** Where the completion (or error) fence is written, if any. */
  fence: { dst: ApertureRange; value: bigint; irq: boolean } | null;
  commands: ValidCommand[];
}

/** A failed submission's fence value: the value it asked for with bit 63 set. */
export function errorFenceValue(value: bigint): bigint {
  return value | FENCE_ERROR_BIT;
}

function range(scope: SubmissionScope, handle: number, offset: bigint, size: bigint, at: number, align = 1n): ApertureRange {
  const buffer = scope.buffer(handle);
  if (buffer === undefined) throw new CommandError('BAD_BUFFER', `buffer ${handle} is not a live buffer of this context`, at);
  if (offset % align !== 0n || size % align !== 0n) throw new CommandError('BAD_ALIGNMENT', `offset ${offset} or size ${size} not ${align}-byte aligned`, at);
  // Bigint arithmetic: offset + size cannot overflow, and both come straight from the guest.
  if (size === 0n || offset + size > BigInt(buffer.size)) {
    throw new CommandError('OUT_OF_BOUNDS', `range ${offset}+${size} outside buffer ${handle} of ${buffer.size} bytes`, at);
  }
  return { buffer: handle, offset: buffer.offset + Number(offset), size: Number(size) };
}

function noFlags(flags: number, allowed: number, at: number, reserved = 0): void {
  if ((flags & ~allowed) !== 0) throw new CommandError('BAD_FLAGS', `unknown flags 0x${flags.toString(16)}`, at);
  // Reserved fields must be zero, so they can gain a meaning later without breaking anyone.
  if (reserved !== 0) throw new CommandError('BAD_FLAGS', `reserved field is 0x${reserved.toString(16)}, must be 0`, at);
}

/**
 * Validate one submission: `bytes` starts at its SUBMIT header and holds everything the guest
 * published after it (the submission may be shorter). Throws CommandError with the offset of the
 * offending command; returns commands with every reference resolved.
 */
export function validateSubmission(bytes: Uint8Array, scope: SubmissionScope, limits: CommandLimits = DEFAULT_COMMAND_LIMITS): ValidSubmission {
  if (bytes.length < CMD_LAYOUTS.SUBMIT.size)
    throw new CommandError('TRUNCATED', `${bytes.length} bytes published, a SUBMIT header needs ${CMD_LAYOUTS.SUBMIT.size}`);
  const head = CMD_LAYOUTS.SUBMIT.decode(bytes);
  if (head.opcode !== CMD.SUBMIT) throw new CommandError('BAD_OPCODE', `a submission must start with SUBMIT, found opcode ${head.opcode}`);
  noFlags(head.flags, CMD_FLAG_IRQ, 0, head.reserved);
  if (head.length % CMD_ALIGN !== 0 || head.length < CMD_LAYOUTS.SUBMIT.size) throw new CommandError('BAD_LENGTH', `submission length ${head.length}`);
  if (head.length > limits.maxSubmissionBytes) throw new CommandError('TOO_LARGE', `submission of ${head.length} bytes > ${limits.maxSubmissionBytes}`);
  if (head.length > bytes.length) throw new CommandError('TRUNCATED', `submission of ${head.length} bytes, only ${bytes.length} published`);
  const fence =
    head.fenceBuffer === 0
      ? null
      : { dst: range(scope, head.fenceBuffer, head.fenceOffset, 8n, 0, 8n), value: head.fenceValue, irq: (head.flags & CMD_FLAG_IRQ) !== 0 };
  const commands: ValidCommand[] = [];
  let at = CMD_LAYOUTS.SUBMIT.size;
  while (at < head.length) {
    if (commands.length >= limits.maxCommands) throw new CommandError('TOO_LARGE', `more than ${limits.maxCommands} commands`, at);
    if (head.length - at < CommandHeader.size) throw new CommandError('BAD_LENGTH', 'command header past the submission', at);
    const header = CommandHeader.decode(bytes, at);
    if (header.length % CMD_ALIGN !== 0 || header.length < CommandHeader.size || at + header.length > head.length) {
      throw new CommandError('BAD_LENGTH', `command length ${header.length} at ${at}`, at);
    }
    const body = bytes.subarray(at, at + header.length);
    const need = (layout: Layout<Fields>) => {
      if (header.length < layout.size) throw new CommandError('BAD_LENGTH', `${layout.name} needs ${layout.size} bytes, has ${header.length}`, at);
    };
    switch (header.opcode) {
      case CMD.NOP:
        noFlags(header.flags, 0, at);
        break;
      case CMD.BARRIER:
        noFlags(header.flags, 0, at);
        commands.push({ kind: 'barrier' });
        break;
      case CMD.COPY: {
        need(CMD_LAYOUTS.COPY);
        const c = CMD_LAYOUTS.COPY.decode(body);
        noFlags(c.flags, 0, at);
        // Byte-granular since contract 1.3 (vkCmdCopyBuffer has no alignment rule).
        const src = range(scope, c.srcBuffer, c.srcOffset, c.size, at);
        const dst = range(scope, c.dstBuffer, c.dstOffset, c.size, at);
        if (src.offset < dst.offset + dst.size && dst.offset < src.offset + src.size) {
          throw new CommandError('OVERLAP', `COPY source and destination overlap`, at);
        }
        commands.push({ kind: 'copy', src, dst });
        break;
      }
      case CMD.FILL: {
        need(CMD_LAYOUTS.FILL);
        const c = CMD_LAYOUTS.FILL.decode(body);
        noFlags(c.flags, 0, at);
        commands.push({ kind: 'fill', dst: range(scope, c.buffer, c.offset, c.size, at, 4n), value: c.value });
        break;
      }
      case CMD.DISPATCH: {
        need(CMD_LAYOUTS.DISPATCH);
        const c = CMD_LAYOUTS.DISPATCH.decode(body);
        noFlags(c.flags, 0, at);
        const kernel = scope.kernel(c.kernel);
        if (kernel === undefined) throw new CommandError('BAD_KERNEL', `kernel ${c.kernel} is not a live kernel of this context`, at);
        const groups: [number, number, number] = [c.groupsX, c.groupsY, c.groupsZ];
        const badGroups = checkGroups(groups, limits, false);
        if (badGroups !== null) throw new CommandError('BAD_WORKGROUPS', badGroups, at);
        if (c.bindings !== kernel.bindings || c.bindings > limits.maxBindings) {
          throw new CommandError('BAD_BINDINGS', `${c.bindings} bindings, kernel ${c.kernel} takes ${kernel.bindings}`, at);
        }
        if (c.pushSize !== kernel.pushConstantBytes || c.pushSize > limits.maxPushConstantBytes || c.pushSize % 4 !== 0) {
          throw new CommandError('BAD_PUSH_CONSTANTS', `${c.pushSize} push-constant bytes, kernel ${c.kernel} takes ${kernel.pushConstantBytes}`, at);
        }
        const pushAt = CMD_LAYOUTS.DISPATCH.size + c.bindings * DispatchBinding.size;
        const expected = pushAt + Math.ceil(c.pushSize / CMD_ALIGN) * CMD_ALIGN;
        if (header.length !== expected) throw new CommandError('BAD_LENGTH', `DISPATCH length ${header.length}, expected ${expected}`, at);
        const descriptors: ValidDescriptor[] = [];
        for (let i = 0; i < c.bindings; i++) {
          const b = DispatchBinding.decode(body, CMD_LAYOUTS.DISPATCH.size + i * DispatchBinding.size);
          noFlags(0, 0, at, b.reserved);
          if (b.offset % BigInt(limits.bindingAlignment) !== 0n) {
            throw new CommandError('BAD_ALIGNMENT', `binding ${i} offset ${b.offset} not a multiple of ${limits.bindingAlignment}`, at);
          }
          if (b.size > BigInt(limits.maxBindingBytes))
            throw new CommandError('OUT_OF_BOUNDS', `binding ${i} of ${b.size} bytes > ${limits.maxBindingBytes}`, at);
          descriptors.push({ set: 0, binding: i, index: 0, type: 'storage', range: range(scope, b.buffer, b.offset, b.size, at, 4n) });
        }
        commands.push({ kind: 'dispatch', kernel: c.kernel, base: [0, 0, 0], groups, descriptors, pushConstants: body.slice(pushAt, pushAt + c.pushSize) });
        break;
      }
      case CMD.DISPATCH2: {
        need(CMD_LAYOUTS.DISPATCH2);
        const c = CMD_LAYOUTS.DISPATCH2.decode(body);
        noFlags(c.flags, 0, at, c.reserved);
        const kernel = scope.kernel(c.kernel);
        if (kernel === undefined) throw new CommandError('BAD_KERNEL', `kernel ${c.kernel} is not a live kernel of this context`, at);
        const groups: [number, number, number] = [c.groupsX, c.groupsY, c.groupsZ];
        const badGroups = checkGroups(groups, limits, true);
        if (badGroups !== null) throw new CommandError('BAD_WORKGROUPS', badGroups, at);
        const base: [number, number, number] = [c.baseX, c.baseY, c.baseZ];
        if (base.some((b) => b !== 0) && !kernel.dispatchBase) {
          throw new CommandError('BAD_WORKGROUPS', `base ${base.join(',')}: kernel ${c.kernel} was not created for DispatchBase`, at);
        }
        // The workgroup ids base + count - 1 must be representable.
        if (base.some((b, i) => b + groups[i]! > 0x1_0000_0000))
          throw new CommandError('BAD_WORKGROUPS', `base ${base.join(',')} + ${groups.join('x')} overflows`, at);
        const { descriptors, push } = dispatchTail(body, CMD_LAYOUTS.DISPATCH2.size, c.descriptors, c.pushSize, kernel, scope, limits, at);
        if (groups.every((g) => g > 0)) commands.push({ kind: 'dispatch', kernel: c.kernel, base, groups, descriptors, pushConstants: push });
        break;
      }
      case CMD.DISPATCH_INDIRECT: {
        need(CMD_LAYOUTS.DISPATCH_INDIRECT);
        const c = CMD_LAYOUTS.DISPATCH_INDIRECT.decode(body);
        noFlags(c.flags, 0, at);
        const kernel = scope.kernel(c.kernel);
        if (kernel === undefined) throw new CommandError('BAD_KERNEL', `kernel ${c.kernel} is not a live kernel of this context`, at);
        const args = range(scope, c.argsBuffer, c.argsOffset, 12n, at, 4n);
        const { descriptors, push } = dispatchTail(body, CMD_LAYOUTS.DISPATCH_INDIRECT.size, c.descriptors, c.pushSize, kernel, scope, limits, at);
        commands.push({ kind: 'dispatchIndirect', kernel: c.kernel, args, descriptors, pushConstants: push });
        break;
      }
      case CMD.UPDATE: {
        need(CMD_LAYOUTS.UPDATE);
        const c = CMD_LAYOUTS.UPDATE.decode(body);
        noFlags(c.flags, 0, at);
        if (c.size === 0 || c.size > MAX_UPDATE_BYTES) throw new CommandError('TOO_LARGE', `UPDATE of ${c.size} bytes (1..${MAX_UPDATE_BYTES})`, at);
        const expected = CMD_LAYOUTS.UPDATE.size + Math.ceil(c.size / CMD_ALIGN) * CMD_ALIGN;
        if (header.length !== expected) throw new CommandError('BAD_LENGTH', `UPDATE length ${header.length}, expected ${expected}`, at);
        const dst = range(scope, c.buffer, c.offset, BigInt(c.size), at, 4n);
        commands.push({ kind: 'update', dst, data: body.slice(CMD_LAYOUTS.UPDATE.size, CMD_LAYOUTS.UPDATE.size + c.size) });
        break;
      }
      case CMD.FENCE: {
        need(CMD_LAYOUTS.FENCE);
        const c = CMD_LAYOUTS.FENCE.decode(body);
        noFlags(c.flags, CMD_FLAG_IRQ, at, c.reserved);
        commands.push({ kind: 'fence', dst: range(scope, c.buffer, c.offset, 8n, at, 8n), value: c.value, irq: (c.flags & CMD_FLAG_IRQ) !== 0 });
        break;
      }
      case CMD.WAIT: {
        need(CMD_LAYOUTS.WAIT);
        const c = CMD_LAYOUTS.WAIT.decode(body);
        noFlags(c.flags, 0, at, c.reserved);
        const timeoutNs = c.timeoutNs === 0n || c.timeoutNs > limits.maxWaitNs ? limits.maxWaitNs : c.timeoutNs;
        commands.push({ kind: 'wait', src: range(scope, c.buffer, c.offset, 8n, at, 8n), value: c.value, timeoutNs });
        break;
      }
      case CMD.TIMESTAMP: {
        need(CMD_LAYOUTS.TIMESTAMP);
        const c = CMD_LAYOUTS.TIMESTAMP.decode(body);
        noFlags(c.flags, 0, at, c.reserved);
        commands.push({ kind: 'timestamp', dst: range(scope, c.buffer, c.offset, 8n, at, 8n) });
        break;
      }
      case CMD.SUBMIT:
        throw new CommandError('BAD_OPCODE', 'SUBMIT inside a submission', at);
      default:
        throw new CommandError('BAD_OPCODE', `unknown opcode ${header.opcode}`, at);
    }
    at += header.length;
  }
  return { length: head.length, fence, commands };
}

/**
 * The descriptors and push constants after a DISPATCH2 or DISPATCH_INDIRECT header at `headSize`:
 * every descriptor one the kernel declares (its set, binding and type), inside its array, not
 * repeated, its range inside a live buffer of the context, aligned and no larger than the
 * device allows for its type; the push constants exactly the kernel's; the command exactly as
 * long as all of that. Descriptors the kernel declares and the dispatch leaves out bind a small
 * zeroed buffer of the host's.
 */
function dispatchTail(
  body: Uint8Array,
  headSize: number,
  count: number,
  pushSize: number,
  kernel: KernelShape,
  scope: SubmissionScope,
  limits: CommandLimits,
  at: number,
): { descriptors: ValidDescriptor[]; push: Uint8Array } {
  if (count > limits.maxDescriptors) throw new CommandError('TOO_LARGE', `${count} descriptors > ${limits.maxDescriptors}`, at);
  if (pushSize !== kernel.pushConstantBytes || pushSize > limits.maxPushConstantBytes || pushSize % 4 !== 0) {
    throw new CommandError('BAD_PUSH_CONSTANTS', `${pushSize} push-constant bytes, the kernel takes ${kernel.pushConstantBytes}`, at);
  }
  const pushAt = headSize + count * DispatchDescriptor.size;
  const expected = pushAt + Math.ceil(pushSize / CMD_ALIGN) * CMD_ALIGN;
  if (body.length !== expected) throw new CommandError('BAD_LENGTH', `dispatch length ${body.length}, expected ${expected}`, at);
  const seen = new Set<string>();
  const descriptors: ValidDescriptor[] = [];
  for (let i = 0; i < count; i++) {
    const d = DispatchDescriptor.decode(body, headSize + i * DispatchDescriptor.size);
    noFlags(0, 0, at, d.reserved);
    const type: DescriptorType | undefined =
      d.type === DESCRIPTOR_TYPES.STORAGE_BUFFER.code ? 'storage' : d.type === DESCRIPTOR_TYPES.UNIFORM_BUFFER.code ? 'uniform' : undefined;
    const declared = kernel.layout.find((b) => b.set === d.set && b.binding === d.binding);
    if (type === undefined || declared === undefined || declared.type !== type || d.index >= declared.count) {
      throw new CommandError(
        'BAD_DESCRIPTOR',
        `descriptor ${i} (set ${d.set}, binding ${d.binding}[${d.index}], type ${d.type}) is not one the kernel declares`,
        at,
      );
    }
    const key = `${d.set}/${d.binding}/${d.index}`;
    if (seen.has(key)) throw new CommandError('BAD_DESCRIPTOR', `descriptor ${i} repeats set ${d.set}, binding ${d.binding}[${d.index}]`, at);
    seen.add(key);
    const align = type === 'uniform' ? limits.uniformAlignment : limits.bindingAlignment;
    const max = type === 'uniform' ? limits.maxUniformBytes : limits.maxBindingBytes;
    if (d.offset % BigInt(align) !== 0n) throw new CommandError('BAD_ALIGNMENT', `descriptor ${i} offset ${d.offset} not a multiple of ${align}`, at);
    if (d.range > BigInt(max)) throw new CommandError('OUT_OF_BOUNDS', `descriptor ${i} of ${d.range} bytes > ${max}`, at);
    descriptors.push({ set: d.set, binding: d.binding, index: d.index, type, range: range(scope, d.buffer, d.offset, d.range, at) });
  }
  return { descriptors, push: body.slice(pushAt, pushAt + pushSize) };
}
