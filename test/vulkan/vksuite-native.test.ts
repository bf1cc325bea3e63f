/**
 * The Vulkan suite natively: the kit-built binaries of the mdgpu-vulkan-suite package (the ones
 * the guest image installs) run on the host's Vulkan (lavapipe) with the kit's loader
 * (test/helpers/vksuite.ts). Every check passes, only what lavapipe lacks is skipped, the
 * Khronos validation layer (with synchronization validation) reports nothing, results are the
 * same with and without it, and the hostile programs all end with an outcome.
 */
import t from 'tap';
import { ensureKit } from '../../src/kit/kit.js';
import {
  compareDigests,
  digests,
  HOSTILE_CHECKS,
  runVksuiteNative,
  runVksuiteProgram,
  SUITE_CHECKS,
  vksuiteBinaries,
  type VksuiteRun,
} from '../helpers/vksuite.js';

const kit = await ensureKit();
const bins = await vksuiteBinaries(kit);
/** What lavapipe (Mesa 22.3) does not offer: VK_EXT_memory_budget. */
const NATIVE_SKIPS = ['memory.budget'];

function failures(run: VksuiteRun): string {
  return [...run.checks.filter((c) => !c.ok).map((c) => JSON.stringify(c.fields)), run.stderr.slice(-3000)].join('\n');
}

let plain: VksuiteRun | undefined;

t.test('the whole suite on lavapipe: every check passes, only what lavapipe lacks is skipped', async (t) => {
  const run = await runVksuiteNative(kit, bins);
  plain = run;
  t.comment(`${run.checks.length} checks in ${run.seconds.toFixed(1)} s`);
  t.equal(run.code, 0, `runner exit status\n${failures(run)}`);
  t.match(run.devices[0]?.name, /llvmpipe/, 'the host device, through the kit loader');
  t.same(
    run.checks.map((c) => c.name),
    [...SUITE_CHECKS],
    'every check, in order',
  );
  for (const c of run.checks) t.ok(c.ok, `${c.name}: ${JSON.stringify(c.fields)}`);
  t.same(
    run.checks.filter((c) => c.skipped !== undefined).map((c) => c.name),
    NATIVE_SKIPS,
    'skipped: only VK_EXT_memory_budget, which lavapipe 22.3 does not have',
  );
  for (const c of run.checks.filter((x) => x.skipped === undefined)) t.match(c.digest, /^[0-9a-f]{16}$/, `${c.name} has a digest`);
  t.equal(run.summary?.failed, '0');
  t.equal(run.summary?.validation_layer_runs, '0', 'no validation layer unless asked for');
  t.equal(run.summary?.programs, '21', '20 programs, vks-pipecache twice');
  t.equal(run.checks.find((c) => c.name === 'cache.create')?.fields.file, 'absent', 'the first run of vks-pipecache finds no file');
  t.equal(run.checks.find((c) => c.name === 'cache.reuse')?.fields.file, 'valid', 'the second loads what the first saved');
  for (const c of run.checks) t.comment(`${c.name.padEnd(24)} ${c.ok ? 'ok ' : 'BAD'} ${c.digest} ${c.ms.toFixed(3)} ms`);
});

t.test('under the Khronos validation layer: no error, and the same results', async (t) => {
  const run = await runVksuiteNative(kit, bins, { validation: true });
  t.comment(`${run.checks.length} checks in ${run.seconds.toFixed(1)} s with validation`);
  t.equal(run.code, 0, `runner exit status\n${failures(run)}`);
  t.equal(run.summary?.validation, '1');
  t.equal(
    run.summary?.validation_errors,
    '0',
    run.stderr
      .split('\n')
      .filter((l) => l.includes('VKSUITE-MESSAGE validation'))
      .join('\n'),
  );
  t.equal(run.summary?.vuid_lines, '0');
  t.equal(run.validation.length, 21, 'every run of a program had a debug messenger (20 programs, vks-pipecache twice)');
  t.ok(
    run.validation.every((v) => v.errors === 0 && v.layer),
    'in every run the layer announced itself, and no program counted an error',
  );
  t.equal(run.summary?.validation_layer_runs, '21');
  for (const c of run.checks) t.ok(c.ok, `${c.name}: ${JSON.stringify(c.fields)}`);
  t.ok(plain, 'the plain run happened first');
  if (plain) t.same(compareDigests(digests(plain), digests(run)), [], 'same digests with the layer as without');
});

t.test('the layer is really loaded: a descriptor offset past its buffer is reported', async (t) => {
  const run = await runVksuiteProgram(kit, bins, 'vks-hostile', ['--quiet'], {
    env: { VK_INSTANCE_LAYERS: 'VK_LAYER_KHRONOS_validation', VKSUITE_HOSTILE_ONLY: 'hostile.desc_offset' },
  });
  t.match(run.stderr, /VKSUITE-MESSAGE validation severity=error id=VUID-VkDescriptorBufferInfo-offset/);
  t.equal(run.checks.length, 1, 'and the check still reports its outcome');
});

t.test('hostile programs natively: each ends with an outcome, none hangs', async (t) => {
  const run = await runVksuiteProgram(kit, bins, 'vks-hostile', ['--quiet'], { env: { VK_INSTANCE_LAYERS: '' } });
  t.comment(`vks-hostile in ${run.seconds.toFixed(1)} s`);
  t.same(
    run.checks.map((c) => c.name),
    [...HOSTILE_CHECKS],
  );
  const outcome = (name: string) => run.checks.find((c) => c.name === name)?.fields.outcome;
  for (const c of run.checks) t.comment(`${c.name.padEnd(24)} ok=${c.ok ? 1 : 0} outcome=${c.fields.outcome}`);
  t.equal(outcome('hostile.oob_index'), 'confined', 'robustBufferAccess keeps writes inside the buffer');
  t.match(outcome('hostile.indirect_limit'), /^(ran|skipped)$/);
  t.equal(outcome('hostile.indirect_huge'), 'timeout', 'lavapipe works at 2^96 workgroups; the program gave up waiting');
  t.equal(outcome('hostile.spin'), 'timeout_then_released');
  t.equal(outcome('hostile.wait_semaphore'), 'timeout');
  t.equal(outcome('hostile.wait_queue'), 'timeout_then_released');
  t.equal(outcome('hostile.wait_event'), 'timeout_then_released');
  t.equal(outcome('hostile.wait_abandoned'), 'abandoned');
  t.equal(outcome('hostile.alloc_huge'), 'error');
  // lavapipe trusts descriptors (invalid usage is undefined behaviour in Vulkan): writes through
  // a range or offset past the buffer land in other memory of the process. mdgpu must not.
  t.match(outcome('hostile.desc_range'), /^(crash|corrupted|confined)$/, 'lavapipe: recorded, not confined');
  t.match(outcome('hostile.desc_offset'), /^(crash|corrupted|confined)$/, 'lavapipe: recorded, not confined');
  for (const c of run.checks.filter((x) => !['hostile.desc_range', 'hostile.desc_offset'].includes(x.name))) t.ok(c.ok, `${c.name} ok`);
  t.ok(run.seconds < 300, 'bounded (children are killed after 15 s each)');
});
