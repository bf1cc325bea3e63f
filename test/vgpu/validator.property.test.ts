/**
 * The submission validator against random command streams (fast-check): whatever bytes a guest
 * publishes, validation either refuses them with a CommandError or returns commands whose every
 * range lies inside a live buffer of the submitting context — never an exception of another
 * kind, never a reference to another context's buffer or kernel, never a range outside a buffer.
 * Streams are built three ways: random bytes, well-formed commands with random fields (handles of
 * this context, of another context, and garbage), and well-formed submissions with random
 * single-byte corruptions.
 */
import fc from 'fast-check';
import t from 'tap';
import { storageLayout } from '../helpers/layouts.js';
import { encodeCommand, encodeSubmission, type CommandSpec } from '../../src/vgpu/command-builder.js';
import { type ApertureRange, CommandError, DEFAULT_COMMAND_LIMITS, type SubmissionScope, validateSubmission } from '../../src/vgpu/commands.js';

/** Buffers 1..3 and kernel 1 belong to the submitting context; 7 and 8 (buffer) and 5 (kernel) to another. */
/** A fixed seed in CI, so a run is repeatable; `FC_SEED=random` explores. */
const seed = process.env.FC_SEED === 'random' ? Date.now() : Number(process.env.FC_SEED ?? 9);
const OURS = new Map([
  [1, { offset: 0x10000, size: 0x1000 }],
  [2, { offset: 0x20000, size: 0x4000 }],
  [3, { offset: 0x40000, size: 0x100 }],
]);
const THEIRS = new Set([7, 8]);
const scope: SubmissionScope = {
  buffer: (h) => OURS.get(h),
  kernel: (h) => (h === 1 ? { bindings: 2, pushConstantBytes: 8, layout: storageLayout(2), dispatchBase: false } : undefined),
};

function inside(r: ApertureRange): boolean {
  const b = OURS.get(r.buffer);
  return b !== undefined && r.size > 0 && r.offset >= b.offset && r.offset + r.size <= b.offset + b.size;
}

/** Validate and check the outcome; returns a description of a violation, or null. */
function check(bytes: Uint8Array): string | null {
  let result: ReturnType<typeof validateSubmission>;
  try {
    result = validateSubmission(bytes, scope, DEFAULT_COMMAND_LIMITS);
  } catch (err) {
    return err instanceof CommandError ? null : `threw ${(err as Error)?.constructor?.name}: ${(err as Error)?.message}`;
  }
  if (result.length > bytes.length || result.length % 8 !== 0) return `length ${result.length} of ${bytes.length} bytes`;
  if (result.fence !== null && !inside(result.fence.dst)) return `fence outside: ${JSON.stringify(result.fence.dst)}`;
  for (const c of result.commands) {
    const ranges: ApertureRange[] =
      c.kind === 'copy'
        ? [c.src, c.dst]
        : c.kind === 'fill' || c.kind === 'fence' || c.kind === 'timestamp'
          ? [c.dst]
          : c.kind === 'wait'
            ? [c.src]
            : c.kind === 'dispatch'
              ? c.descriptors.map((d) => d.range)
              : [];
    for (const r of ranges) if (!inside(r)) return `${c.kind} range outside its buffer or context: ${JSON.stringify(r)}`;
    if (c.kind === 'dispatch' && c.kernel !== 1) return `dispatch of kernel ${c.kernel}, not ours`;
  }
  return null;
}

const handle = fc.oneof(fc.constantFrom(1, 2, 3), fc.constantFrom(...THEIRS), fc.integer({ min: 0, max: 0xffff_ffff }));
const offset = fc.oneof(fc.integer({ min: 0, max: 0x5000 }), fc.bigInt({ min: 0n, max: (1n << 64n) - 1n }));
const size = fc.oneof(fc.integer({ min: 0, max: 0x5000 }), fc.bigInt({ min: 0n, max: (1n << 64n) - 1n }));
const ref = fc.record({ buffer: handle, offset });
const command: fc.Arbitrary<CommandSpec> = fc.oneof(
  fc.constant({ op: 'barrier' } as const),
  fc.record({ op: fc.constant('nop' as const), length: fc.constantFrom(8, 16, 64) }),
  fc.record({ op: fc.constant('copy' as const), src: ref, dst: ref, size }),
  fc.record({ op: fc.constant('fill' as const), dst: ref, size, value: fc.integer({ min: 0, max: 0xffff_ffff }) }),
  fc.record({ op: fc.constant('fence' as const), dst: ref, value: fc.bigInt({ min: 0n, max: (1n << 64n) - 1n }) }),
  fc.record({ op: fc.constant('wait' as const), src: ref, value: fc.bigInt({ min: 0n, max: (1n << 64n) - 1n }), timeoutNs: fc.constant(1n) }),
  fc.record({ op: fc.constant('timestamp' as const), dst: ref }),
  fc.record({
    op: fc.constant('dispatch' as const),
    kernel: fc.oneof(fc.constant(1), fc.constant(5), fc.integer({ min: 0, max: 0xffff_ffff })),
    groups: fc.tuple(fc.integer({ min: 0, max: 70000 }), fc.integer({ min: 0, max: 3 }), fc.integer({ min: 0, max: 3 })),
    bindings: fc.array(fc.record({ buffer: handle, offset, size }), { maxLength: 3 }),
    push: fc.uint8Array({ maxLength: 16 }),
  }),
);
const fence = fc.option(fc.record({ dst: ref, value: fc.bigInt({ min: 0n, max: (1n << 63n) - 1n }) }), { nil: undefined });

/** Encode what the encoder can (it refuses values outside a field's width: those are skipped). */
function submission(commands: CommandSpec[], f: { dst: { buffer: number; offset: number | bigint }; value: bigint } | undefined): Uint8Array | null {
  try {
    for (const c of commands) encodeCommand(c);
    return encodeSubmission(commands, f);
  } catch {
    return null;
  }
}

t.test('random bytes: refused cleanly or, if valid, confined to the context', (t) => {
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 512 }), (bytes) => check(bytes) === null),
    { numRuns: 2000, seed },
  );
  t.pass('2000 random byte streams');
  t.end();
});

t.test('well-formed commands with random fields: never a reference outside the context', (t) => {
  let valid = 0;
  fc.assert(
    fc.property(fc.array(command, { maxLength: 6 }), fence, (commands, f) => {
      const bytes = submission(commands, f);
      if (bytes === null) return true;
      const violation = check(bytes);
      if (violation === null) {
        try {
          validateSubmission(bytes, scope);
          valid++;
        } catch {
          // refused: fine
        }
      }
      return violation === null;
    }),
    { numRuns: 3000, seed },
  );
  t.ok(valid > 50, `${valid} random submissions were valid and every one of their ranges was inside this context`);
  t.end();
});

t.test('a valid submission with one byte corrupted: refused cleanly or still confined', (t) => {
  const base = encodeSubmission(
    [
      { op: 'fill', dst: { buffer: 1, offset: 0 }, size: 64, value: 7 },
      { op: 'copy', src: { buffer: 1, offset: 0 }, dst: { buffer: 2, offset: 0x100 }, size: 64 },
      {
        op: 'dispatch',
        kernel: 1,
        groups: [2, 1, 1],
        bindings: [
          { buffer: 2, offset: 0, size: 0x100 },
          { buffer: 3, offset: 0, size: 0x40 },
        ],
        push: new Uint8Array(8),
      },
      { op: 'timestamp', dst: { buffer: 3, offset: 8 } },
    ],
    { dst: { buffer: 3, offset: 0 }, value: 1n },
  );
  t.equal(check(base), null, 'the uncorrupted submission is valid');
  fc.assert(
    fc.property(fc.integer({ min: 0, max: base.length - 1 }), fc.integer({ min: 0, max: 255 }), (at, value) => {
      const bytes = base.slice();
      bytes[at] = value;
      return check(bytes) === null;
    }),
    { numRuns: 3000, seed },
  );
  t.pass('3000 corruptions');
  t.end();
});
