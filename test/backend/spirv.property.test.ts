/**
 * The host driver's SPIR-V checks against random input (fast-check), in process on the real
 * device (lavapipe): real kernels with random words overwritten, truncated or extended (as
 * contract 1.1 kernels with declared bindings, and with their layout reflected), random word
 * streams after a valid header, and a kernel with random specialization entries and data.
 * Every module is either built or refused with a
 * BackendError (EINVAL or E2BIG from the checks, EIO from the driver's compiler, and a message) —
 * never another exception, and never a crash of
 * this process (which is what a kernel check would be if it read outside the module: the C
 * test also runs these under ASan). The checks' linear bounds are what keep each call short;
 * the time per call is not asserted (noisy machines), only that the whole run finishes.
 */
import * as fs from 'node:fs';
import { fileURLToPath } from 'node:url';
import fc from 'fast-check';
import t from 'tap';
import { BackendError, type KernelOptions } from '../../src/backend/backend.js';
import { HostDevice, spirvWords } from '../../src/backend/host-driver.js';
import { setLogSink } from '../../src/log.js';
import { glsl, SPEC_GLSL } from '../fixtures/spirv.js';

setLogSink(() => {});
const kernel = (name: string) => spirvWords(fs.readFileSync(fileURLToPath(new URL(`../../../guest-driver/kernels/build/${name}.spv`, import.meta.url))));
const KERNELS = [
  { words: kernel('saxpy'), bindings: 2, push: 8 },
  { words: kernel('reduce'), bindings: 2, push: 4 },
  { words: kernel('gemm'), bindings: 3, push: 12 },
];

const dev = HostDevice.open();
/** A fixed seed in CI, so a run is repeatable; `FC_SEED=random` explores. */
const seed = process.env.FC_SEED === 'random' ? Date.now() : Number(process.env.FC_SEED ?? 9);
t.teardown(() => dev.destroy());

/** Build or refuse; a description of anything else. */
function attempt(words: Uint32Array, bindings: number | undefined, push: number, more: Partial<KernelOptions> = {}): string | null {
  try {
    dev.createKernel(words, { ...(bindings === undefined ? {} : { bindings }), pushConstantSize: push, ...more }).destroy();
    return null;
  } catch (err) {
    // EINVAL/E2BIG: refused by the checks; EIO: the checks let it through and the driver's own
    // compiler refused it (lavapipe answers some malformed modules with VK_ERROR_UNKNOWN).
    if (err instanceof BackendError && ['EINVAL', 'E2BIG', 'EIO'].includes(err.code) && err.message.length > 0) return null;
    return `${(err as Error)?.constructor?.name} ${(err as BackendError).code ?? ''}: ${(err as Error)?.message}`;
  }
}

t.test('real kernels with random words overwritten: built or refused with a reason', (t) => {
  let refused = 0;
  fc.assert(
    fc.property(
      fc.constantFrom(...KERNELS),
      fc.array(fc.tuple(fc.nat(), fc.oneof(fc.integer({ min: 0, max: 0xffff_ffff }), fc.integer({ min: 0, max: 64 }))), { minLength: 1, maxLength: 4 }),
      (k, edits) => {
        const words = k.words.slice();
        // Leave the magic number alone: without it the module is refused before any walk.
        for (const [at, value] of edits) words[1 + (at % (words.length - 1))] = value >>> 0;
        const outcome = attempt(words, k.bindings, k.push);
        if (outcome === null) {
          try {
            dev.createKernel(words, { bindings: k.bindings, pushConstantSize: k.push }).destroy();
          } catch {
            refused++;
          }
        }
        return outcome === null;
      },
    ),
    { numRuns: 300, seed },
  );
  t.ok(refused > 0, `${refused} mutated modules refused, the rest built`);
  t.end();
});

t.test('truncated and extended kernels, and random words after a valid header', (t) => {
  fc.assert(
    fc.property(
      fc.constantFrom(...KERNELS),
      fc.integer({ min: 1, max: 2000 }),
      (k, cut) => attempt(k.words.slice(0, Math.min(cut, k.words.length - 1)), k.bindings, k.push) === null,
    ),
    { numRuns: 150, seed },
  );
  fc.assert(
    fc.property(fc.constantFrom(...KERNELS), fc.uint32Array({ minLength: 1, maxLength: 64 }), (k, tail) => {
      const words = new Uint32Array(k.words.length + tail.length);
      words.set(k.words);
      words.set(tail, k.words.length);
      return attempt(words, k.bindings, k.push) === null;
    }),
    { numRuns: 150, seed },
  );
  fc.assert(
    fc.property(fc.uint32Array({ minLength: 0, maxLength: 256 }), fc.integer({ min: 0, max: 16 }), (body, bindings) => {
      const words = new Uint32Array(5 + body.length);
      words.set([0x0723_0203, 0x0001_0300, 0, 0x1000, 0]);
      words.set(body, 5);
      return attempt(words, bindings, 0) === null;
    }),
    { numRuns: 300, seed },
  );
  t.pass('every one built or refused with a reason');
  t.end();
});

t.test('reflected layouts of mutated kernels: built or refused with a reason', (t) => {
  let built = 0;
  fc.assert(
    fc.property(
      fc.constantFrom(...KERNELS),
      fc.array(fc.tuple(fc.nat(), fc.oneof(fc.integer({ min: 0, max: 0xffff_ffff }), fc.integer({ min: 0, max: 64 }))), { minLength: 1, maxLength: 3 }),
      (k, edits) => {
        const words = k.words.slice();
        for (const [at, value] of edits) words[1 + (at % (words.length - 1))] = value >>> 0;
        const outcome = attempt(words, undefined, k.push);
        if (outcome === null) {
          try {
            const kernel = dev.createKernel(words, { pushConstantSize: k.push });
            built++;
            // What a kernel reflects is within the library's limits.
            const ok = kernel.layout.every((b) => b.set < dev.info.caps.maxBoundDescriptorSets && b.count >= 1 && b.binding < 1024);
            kernel.destroy();
            return ok;
          } catch {
            return true;
          }
        }
        return false;
      },
    ),
    { numRuns: 150, seed },
  );
  t.ok(built > 0, `${built} mutated modules built with a reflected layout`);
  t.end();
});

t.test('random specialization entries and data: built or refused with a reason', (t) => {
  const spec = glsl(SPEC_GLSL);
  const entry = fc.record({
    constantId: fc.oneof(fc.integer({ min: 0, max: 4 }), fc.nat()),
    offset: fc.oneof(fc.integer({ min: 0, max: 24 }), fc.integer({ min: 0, max: 0xffff_ffff })),
    size: fc.constantFrom(0, 1, 2, 3, 4, 8, 16),
  });
  let built = 0;
  fc.assert(
    fc.property(fc.array(entry, { maxLength: 6 }), fc.uint8Array({ maxLength: 32 }), (entries, data) => {
      const outcome = attempt(spec, undefined, 0, { specialization: { entries, data } });
      if (outcome === null && entries.every((e) => e.size === 4 && e.offset + 4 <= data.length)) built++;
      return outcome === null;
    }),
    { numRuns: 150, seed },
  );
  t.comment(`${built} of 150 had only well-formed entries`);
  t.pass('every one built or refused with a reason');
  t.end();
});
