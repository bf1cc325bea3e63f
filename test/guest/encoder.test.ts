/**
 * libmdgpu's C encoder (guest-driver/lib/mdgpu_queue.c) writes exactly the bytes of the
 * TypeScript encoder (src/vgpu/command-builder.ts), whose layouts the device's validator
 * decodes: every command, flags, 64-bit fields above 4 GiB, bindings and push constants with
 * their padding. The C side is test/guest/fixtures/encode.c, built with the host's compiler
 * (the encoder stores explicit little-endian bytes, so the host can stand in for the guest).
 * Also checks what the C encoder refuses, and that the validator accepts what it wrote.
 */
import t from 'tap';
import { storageLayout } from '../helpers/layouts.js';
import { execFile } from 'node:child_process';
import * as fsp from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import { promisify } from 'node:util';
import { defaultSourceDir } from '../../src/guest/build.js';
import { encodeSubmission, type CommandSpec } from '../../src/vgpu/command-builder.js';
import { validateSubmission } from '../../src/vgpu/commands.js';

const execFileP = promisify(execFile);

const EINVAL = 22;
const E2BIG = 7;

const three = [
  { buffer: 7, offset: 0, size: 4096 },
  { buffer: 8, offset: 0x1_0000_0010n, size: 0x20000 },
  { buffer: 0xffff_ffff, offset: 16, size: 4 },
];
const push12 = new Uint8Array([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12]);
const push8 = new Uint8Array([0, 0, 0x20, 0x40, 0xff, 0xee, 0xdd, 0xcc]);

/** The same submissions as fixtures/encode.c, in the same order. */
const expected: [string, CommandSpec[], Parameters<typeof encodeSubmission>[1]][] = [
  ['fence-only', [], { dst: { buffer: 3, offset: 0 }, value: 1n, irq: true }],
  ['nop-barrier', [{ op: 'nop' }, { op: 'nop', length: 24 }, { op: 'barrier' }], undefined],
  [
    'copy-fill',
    [
      { op: 'copy', src: { buffer: 5, offset: 0x10 }, dst: { buffer: 6, offset: 0x2_0000_0004n }, size: 0x1000 },
      { op: 'fill', dst: { buffer: 6, offset: 8 }, size: 64, value: 0xdeadbeef },
    ],
    { dst: { buffer: 9, offset: 0x1008 }, value: 0x0123_4567_89ab_cdefn },
  ],
  [
    'dispatch',
    [
      { op: 'dispatch', kernel: 2, groups: [16, 16, 1], bindings: three, push: push12 },
      { op: 'barrier' },
      { op: 'dispatch', kernel: 65535, groups: [1, 1, 1], bindings: [] },
      { op: 'dispatch', kernel: 1, groups: [65535, 2, 1], bindings: three.slice(0, 2), push: push8 },
    ],
    { dst: { buffer: 4, offset: 64 }, value: 42n, irq: true },
  ],
  [
    'fence-wait-timestamp',
    [
      { op: 'fence', dst: { buffer: 4, offset: 8 }, value: 5n, irq: true },
      { op: 'fence', dst: { buffer: 4, offset: 16 }, value: 0xffff_ffff_0000_0000n },
      { op: 'wait', src: { buffer: 4, offset: 24 }, value: 3n, timeoutNs: 1_000_000n },
      { op: 'wait', src: { buffer: 4, offset: 24 }, value: 3n },
      { op: 'timestamp', dst: { buffer: 4, offset: 32 } },
    ],
    { dst: { buffer: 4, offset: 0 }, value: 0x7fff_ffff_ffff_ffffn },
  ],
];

const hex = (b: Uint8Array) => Buffer.from(b).toString('hex');

t.test('the C encoder writes the bytes the TypeScript encoder writes', async (t) => {
  const src = defaultSourceDir();
  const dir = await fsp.mkdtemp(path.join(os.tmpdir(), 'mdgpu-encode-'));
  t.teardown(() => fsp.rm(dir, { recursive: true, force: true }));
  const exe = path.join(dir, 'encode');
  const fixture = path.join(path.dirname(src), 'test', 'guest', 'fixtures', 'encode.c');
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
  const { stdout } = await execFileP(exe);
  const lines = stdout.trim().split('\n');
  const got = new Map(lines.map((l) => l.split(' ') as [string, string]));

  for (const [name, commands, fence] of expected) {
    const ts = encodeSubmission(commands, fence);
    t.equal(got.get(name), hex(ts), `${name}: ${ts.length} bytes, identical`);
  }
  t.equal(lines.filter((l) => !l.startsWith('errors ')).length, expected.length, 'no other submissions');

  // What the C encoder wrote is what the device's validator reads back.
  const dispatch = Buffer.from(got.get('dispatch') ?? '', 'hex');
  const scope = {
    buffer: (h: number) => ({ offset: 0x10000 * (h & 0xff), size: 0x2_0000_0000 }),
    kernel: (k: number) =>
      k === 2
        ? { bindings: 3, pushConstantBytes: 12, layout: storageLayout(3), dispatchBase: false }
        : k === 1
          ? { bindings: 2, pushConstantBytes: 8, layout: storageLayout(2), dispatchBase: false }
          : { bindings: 0, pushConstantBytes: 0, layout: storageLayout(0), dispatchBase: false },
  };
  const v = validateSubmission(new Uint8Array(dispatch), scope);
  t.equal(v.length, dispatch.length, 'the validator accepts the whole C-encoded submission');
  t.same(
    v.commands.map((c) => c.kind),
    ['dispatch', 'barrier', 'dispatch', 'dispatch'],
    'commands decoded',
  );
  const first = v.commands[0];
  t.same(first?.kind === 'dispatch' ? [...first.pushConstants] : [], [...push12], 'push constants decoded (12 bytes, padding dropped)');

  const errors = lines.find((l) => l.startsWith('errors ')) ?? '';
  const field = (k: string) => Number(new RegExp(`${k}=(-?\\d+)`).exec(errors)?.[1]);
  t.equal(field('nop12'), -EINVAL, 'a NOP whose length is not a multiple of 8: -EINVAL');
  t.equal(field('bindings17'), -EINVAL, 'more than 16 bindings: -EINVAL');
  t.equal(field('push132'), -EINVAL, 'more than 128 push-constant bytes: -EINVAL');
  t.equal(field('no_begin'), -EINVAL, 'commands without a SUBMIT header: -EINVAL');
  t.equal(field('too_big'), -E2BIG, 'above 1 MiB: -E2BIG');
  t.equal(field('commands'), -E2BIG, 'more than 4096 commands: -E2BIG');
});
