import t from 'tap';
import { storageLayout } from '../helpers/layouts.js';
import { CMD, CMD_LAYOUTS, validateSubmission, CommandError, DEFAULT_COMMAND_LIMITS, errorFenceValue, type SubmissionScope } from '../../src/vgpu/commands.js';
import { encodeCommand, encodeSubmission, type CommandSpec } from '../../src/vgpu/command-builder.js';

// Context: buffers 1 (64 KiB at 0x10000), 2 (4 KiB at 0x40000); buffer 9 belongs to someone else.
const scope: SubmissionScope = {
  buffer: (h) => (({ 1: { offset: 0x10000, size: 0x10000 }, 2: { offset: 0x40000, size: 0x1000 } }) as Record<number, { offset: number; size: number }>)[h],
  kernel: (h) => (h === 5 ? { bindings: 2, pushConstantBytes: 8, layout: storageLayout(2), dispatchBase: false } : undefined),
};
const fence = { dst: { buffer: 2, offset: 0 }, value: 42n };
const push8 = new Uint8Array(8);
const goodDispatch: CommandSpec = {
  op: 'dispatch',
  kernel: 5,
  groups: [4, 1, 1],
  bindings: [
    { buffer: 1, offset: 0, size: 0x1000 },
    { buffer: 1, offset: 0x1000, size: 0x1000 },
  ],
  push: push8,
};
const bindingAt = (offset: number): CommandSpec =>
  ({
    ...goodDispatch,
    bindings: [
      { buffer: 1, offset, size: 16 },
      { buffer: 1, offset: 0, size: 16 },
    ],
  }) as CommandSpec;

t.test('a valid submission of every command resolves to aperture ranges', (t) => {
  const bytes = encodeSubmission(
    [
      { op: 'copy', src: { buffer: 1, offset: 0 }, dst: { buffer: 2, offset: 0x100 }, size: 0x100 },
      { op: 'fill', dst: { buffer: 1, offset: 0x2000 }, size: 0x1000, value: 0xdeadbeef },
      goodDispatch,
      { op: 'barrier' },
      { op: 'fence', dst: { buffer: 2, offset: 8 }, value: 7n, irq: true },
      { op: 'wait', src: { buffer: 2, offset: 16 }, value: 1n },
      { op: 'timestamp', dst: { buffer: 2, offset: 24 } },
      { op: 'nop', length: 16 },
    ],
    fence,
  );
  const s = validateSubmission(bytes, scope);
  t.equal(s.length, bytes.length);
  t.same(s.fence, { dst: { buffer: 2, offset: 0x40000, size: 8 }, value: 42n, irq: false });
  t.same(
    s.commands.map((c) => c.kind),
    ['copy', 'fill', 'dispatch', 'barrier', 'fence', 'wait', 'timestamp'],
  );
  t.same(s.commands[0], { kind: 'copy', src: { buffer: 1, offset: 0x10000, size: 0x100 }, dst: { buffer: 2, offset: 0x40100, size: 0x100 } });
  const wait = s.commands[5];
  t.equal(wait?.kind === 'wait' && wait.timeoutNs, DEFAULT_COMMAND_LIMITS.maxWaitNs, 'a WAIT without timeout gets the device bound');
  t.equal(errorFenceValue(42n), 42n | (1n << 63n));
  t.ok(validateSubmission(encodeSubmission([]), scope), 'empty submission without fence is valid');
  const trailing = new Uint8Array(bytes.length + 64);
  trailing.set(bytes);
  t.equal(validateSubmission(trailing, scope).length, bytes.length, 'bytes published after the submission are not part of it');
  t.end();
});

function errorOf(fn: () => unknown): string {
  try {
    fn();
    return 'accepted';
  } catch (err) {
    return err instanceof CommandError ? err.error : String(err);
  }
}

function corrupt(bytes: Uint8Array, at: number, patch: (view: DataView) => void): Uint8Array {
  const copy = bytes.slice();
  patch(new DataView(copy.buffer, at));
  return copy;
}
const sub = (...cmds: CommandSpec[]) => encodeSubmission(cmds, fence);
const H = CMD_LAYOUTS.SUBMIT.size; // first command offset

const hostile: [string, Uint8Array, string][] = [
  ['empty input', new Uint8Array(0), 'TRUNCATED'],
  ['short SUBMIT header', sub().subarray(0, 20), 'TRUNCATED'],
  [
    'not starting with SUBMIT',
    encodeCommand({ op: 'barrier' }).slice(0, 8).constructor === Uint8Array ? corrupt(sub(), 0, (v) => v.setUint16(0, CMD.COPY, true)) : new Uint8Array(0),
    'BAD_OPCODE',
  ],
  ['submission length not a multiple of 8', corrupt(sub(), 0, (v) => v.setUint32(4, 33, true)), 'BAD_LENGTH'],
  ['submission longer than published', corrupt(sub({ op: 'barrier' }), 0, (v) => v.setUint32(4, 64, true)), 'TRUNCATED'],
  ['submission above the size limit', corrupt(sub(), 0, (v) => v.setUint32(4, (1 << 20) + 8, true)), 'TOO_LARGE'],
  ['unknown SUBMIT flags', corrupt(sub(), 0, (v) => v.setUint16(2, 0x80, true)), 'BAD_FLAGS'],
  ['reserved SUBMIT field set', corrupt(sub(), 0, (v) => v.setUint32(20, 1, true)), 'BAD_FLAGS'],
  ["fence in another context's buffer", encodeSubmission([], { dst: { buffer: 9, offset: 0 }, value: 1n }), 'BAD_BUFFER'],
  ['fence misaligned', encodeSubmission([], { dst: { buffer: 2, offset: 4 }, value: 1n }), 'BAD_ALIGNMENT'],
  ['fence past the buffer end', encodeSubmission([], { dst: { buffer: 2, offset: 0x1000 }, value: 1n }), 'OUT_OF_BOUNDS'],
  ['unknown opcode', corrupt(sub({ op: 'barrier' }), H, (v) => v.setUint16(0, 0x77, true)), 'BAD_OPCODE'],
  ['nested SUBMIT', corrupt(sub({ op: 'barrier' }), H, (v) => v.setUint16(0, CMD.SUBMIT, true)), 'BAD_OPCODE'],
  ['command length 0', corrupt(sub({ op: 'barrier' }), H, (v) => v.setUint32(4, 0, true)), 'BAD_LENGTH'],
  ['command past the submission', corrupt(sub({ op: 'barrier' }), H, (v) => v.setUint32(4, 16, true)), 'BAD_LENGTH'],
  [
    'COPY too short for its fields',
    (() => {
      const s = sub({ op: 'nop', length: 16 });
      return corrupt(s, H, (v) => v.setUint16(0, CMD.COPY, true));
    })(),
    'BAD_LENGTH',
  ],
  ["COPY from another context's buffer", sub({ op: 'copy', src: { buffer: 9, offset: 0 }, dst: { buffer: 1, offset: 0 }, size: 4 }), 'BAD_BUFFER'],
  ['COPY from a freed buffer (handle 3)', sub({ op: 'copy', src: { buffer: 3, offset: 0 }, dst: { buffer: 1, offset: 0 }, size: 4 }), 'BAD_BUFFER'],
  ['COPY size 0', sub({ op: 'copy', src: { buffer: 1, offset: 0 }, dst: { buffer: 1, offset: 0 }, size: 0 }), 'OUT_OF_BOUNDS'],
  ['COPY past the end', sub({ op: 'copy', src: { buffer: 2, offset: 0xffc }, dst: { buffer: 1, offset: 0 }, size: 8 }), 'OUT_OF_BOUNDS'],
  [
    'COPY offset+size overflowing 2^64',
    sub({ op: 'copy', src: { buffer: 1, offset: 0xffff_ffff_ffff_fff0n }, dst: { buffer: 1, offset: 0 }, size: 0x20 }),
    'OUT_OF_BOUNDS',
  ],
  [
    'COPY overlapping by a byte (byte-granular since 1.3)',
    sub({ op: 'copy', src: { buffer: 1, offset: 3 }, dst: { buffer: 1, offset: 0 }, size: 4 }),
    'OVERLAP',
  ],
  ['FILL misaligned', sub({ op: 'fill', dst: { buffer: 1, offset: 2 }, size: 4, value: 0 }), 'BAD_ALIGNMENT'],
  ['COPY onto itself', sub({ op: 'copy', src: { buffer: 1, offset: 0 }, dst: { buffer: 1, offset: 8 }, size: 16 }), 'OVERLAP'],
  ['DISPATCH binding offset not a multiple of 16', sub(bindingAt(4)), 'BAD_ALIGNMENT'],
  ['FILL beyond the buffer', sub({ op: 'fill', dst: { buffer: 1, offset: 0 }, size: 0x10004, value: 0 }), 'OUT_OF_BOUNDS'],
  ['DISPATCH unknown kernel', sub({ ...goodDispatch, kernel: 6 } as CommandSpec), 'BAD_KERNEL'],
  ['DISPATCH zero workgroups', sub({ ...goodDispatch, groups: [0, 1, 1] } as CommandSpec), 'BAD_WORKGROUPS'],
  ['DISPATCH enormous workgroups', sub({ ...goodDispatch, groups: [65535, 65535, 65535] } as CommandSpec), 'BAD_WORKGROUPS'],
  ['DISPATCH workgroup above the per-dimension limit', sub({ ...goodDispatch, groups: [65536, 1, 1] } as CommandSpec), 'BAD_WORKGROUPS'],
  ['DISPATCH wrong binding count', sub({ ...goodDispatch, bindings: [{ buffer: 1, offset: 0, size: 4 }] } as CommandSpec), 'BAD_BINDINGS'],
  ['DISPATCH wrong push-constant size', sub({ ...goodDispatch, push: new Uint8Array(16) } as CommandSpec), 'BAD_PUSH_CONSTANTS'],
  [
    'DISPATCH binding in another context',
    sub({
      ...goodDispatch,
      bindings: [
        { buffer: 1, offset: 0, size: 4 },
        { buffer: 9, offset: 0, size: 4 },
      ],
    } as CommandSpec),
    'BAD_BUFFER',
  ],
  ['DISPATCH length lying about push constants', corrupt(sub(goodDispatch), H, (v) => v.setUint32(4, v.getUint32(4, true) - 8, true)), 'BAD_LENGTH'],
  ['DISPATCH binding reserved field set', corrupt(sub(goodDispatch), H + 32 + 4, (v) => v.setUint32(0, 1, true)), 'BAD_FLAGS'],
  ['FENCE unknown flags', corrupt(sub({ op: 'fence', dst: { buffer: 2, offset: 0 }, value: 1n }), H, (v) => v.setUint16(2, 2, true)), 'BAD_FLAGS'],
  ['WAIT past the buffer', sub({ op: 'wait', src: { buffer: 2, offset: 0x1000 }, value: 1n }), 'OUT_OF_BOUNDS'],
  ['TIMESTAMP misaligned', sub({ op: 'timestamp', dst: { buffer: 2, offset: 3 } }), 'BAD_ALIGNMENT'],
  ['BARRIER with flags', corrupt(sub({ op: 'barrier' }), H, (v) => v.setUint16(2, 1, true)), 'BAD_FLAGS'],
];

t.test('hostile streams are refused with their error, at the offending command', (t) => {
  for (const [what, bytes, expected] of hostile) {
    try {
      validateSubmission(bytes, scope);
      t.fail(`${what}: accepted`);
    } catch (err) {
      t.ok(err instanceof CommandError, `${what}: a CommandError`);
      t.equal((err as CommandError).error, expected, what);
    }
  }
  t.end();
});

t.test('every truncation of a valid submission is refused', (t) => {
  const bytes = sub({ op: 'copy', src: { buffer: 1, offset: 0 }, dst: { buffer: 2, offset: 0 }, size: 16 }, goodDispatch, { op: 'barrier' });
  for (let n = 0; n < bytes.length; n++) {
    t.equal(
      errorOf(() => validateSubmission(bytes.subarray(0, n), scope)),
      'TRUNCATED',
      `truncated to ${n}`,
    );
  }
  t.end();
});

t.test('a binding above the device limit', (t) => {
  const big = sub({
    ...goodDispatch,
    bindings: [
      { buffer: 1, offset: 0, size: 0x10000 },
      { buffer: 1, offset: 0, size: 16 },
    ],
  } as CommandSpec);
  t.equal(
    errorOf(() => validateSubmission(big, scope, { ...DEFAULT_COMMAND_LIMITS, maxBindingBytes: 0x8000 })),
    'OUT_OF_BOUNDS',
  );
  t.end();
});

t.test('too many commands', (t) => {
  const many = Array.from({ length: 20 }, (): CommandSpec => ({ op: 'barrier' }));
  t.equal(
    errorOf(() => validateSubmission(encodeSubmission(many), scope, { ...DEFAULT_COMMAND_LIMITS, maxCommands: 10 })),
    'TOO_LARGE',
  );
  t.end();
});
