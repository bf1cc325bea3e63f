/**
 * The Vulkan compute suite (guest-driver/vulkan/suite, package mdgpu-vulkan-suite: programs
 * written against the Vulkan API only) through mdgpu's ICD in real Debian guests, two VMs on one
 * daemon and one host device, under TCG:
 *
 * - the victim VM runs the whole suite but the hostile program: every check passes, and every
 *   digest equals the one of the same kit-built binaries run natively on the host's Vulkan
 *   (test/helpers/vksuite.ts, nativeDigests);
 * - meanwhile the attacker VM runs vks-hostile (out-of-range descriptors and offsets, bad
 *   indirect arguments, a kernel that never ends, waits that never complete, a process that
 *   exits with work queued, a huge allocation): each ends in a clean error or DEVICE_LOST with
 *   the program in control and no neighbouring buffer changed; then it runs the suite under the
 *   Khronos validation layer (with synchronization validation), which reports no error.
 */
import t from 'tap';
import { ensureKit } from '../../src/kit/kit.js';
import { setLogSink } from '../../src/log.js';
import { compareDigests, digests, HOSTILE_CHECKS, nativeDigests, parseVksuite, SUITE_CHECKS } from '../helpers/vksuite.js';
import { runVulkanGuests } from '../helpers/vulkan-guest.js';

setLogSink(() => {});
const kit = await ensureKit();
const native = await nativeDigests(kit);

const runs = await runVulkanGuests(kit, {
  jobs: [
    { body: 'vksuite --no-hostile; echo "VKSUITE-RC $?"' },
    {
      body: `/usr/libexec/mdgpu-vulkan-suite/vks-hostile; echo "VKHOSTILE-RC $?"
echo VALIDATION-RUN
vksuite --validation 2>&1; echo "VKVALIDATION-RC $?"`,
    },
  ],
  apertureSize: 256 << 20,
  quota: 192 << 20,
  memoryMiB: 1024,
  timeoutMs: 1_500_000,
});
const [victim, attacker] = runs;

t.test('both guests ran their jobs to the end', async (t) => {
  for (const r of runs) {
    t.equal(r.rc, 0, `${r.vgpu}: the job ended`);
    t.notOk(r.guest.timedOut, `${r.vgpu}: QEMU exited by itself`);
  }
});

t.test('the suite in the guest: every check passes, digests equal to the native run', async (t) => {
  const text = victim!.lines.join('\n');
  const result = parseVksuite(text);
  const failed = result.checks.filter((c) => !c.ok);
  t.same(
    failed.map((c) => `${c.name} ${c.fields.error ?? ''}`),
    [],
    'no check failed',
  );
  t.same(
    result.checks.filter((c) => c.skipped).map((c) => c.name),
    [],
    'none skipped',
  );
  const names = new Set(result.checks.map((c) => c.name));
  for (const name of SUITE_CHECKS.filter((n) => n !== 'cache.create' && n !== 'cache.reuse')) t.ok(names.has(name), `${name} ran`);
  t.ok(names.has('cache.create') && names.has('cache.reuse'), 'the pipeline cache created, then reused from its file');
  t.match(text, /VKSUITE-RC 0/, 'vksuite exits 0');
  // A check the native device skips (lavapipe 22.3 has no VK_EXT_memory_budget) has nothing to compare.
  const nativeHas = new Set(native.filter((c) => c.digest !== '-').map((c) => c.name));
  const compared = digests(result).filter((c) => nativeHas.has(c.name));
  t.same(compareDigests(compared, native), [], `${compared.length} checks: the guest's digests are the native run's`);
  t.ok(compared.length >= SUITE_CHECKS.length - 2, `all but what the native device skips compared (${compared.length})`);
  t.ok(
    result.devices.every((d) => d.name?.startsWith('mdgpu (')),
    'every program ran on the mdgpu device',
  );
});

t.test('hostile programs: clean errors or DEVICE_LOST, the other VM unaffected', async (t) => {
  const text = attacker!.lines.join('\n');
  const hostile = parseVksuite(text.slice(0, text.indexOf('VALIDATION-RUN')));
  for (const name of HOSTILE_CHECKS) {
    const c = hostile.checks.find((x) => x.name === name);
    t.ok(c?.ok, `${name}: outcome=${c?.fields.outcome ?? 'none'}`);
  }
  t.match(text, /VKHOSTILE-RC 0/, 'vks-hostile exits 0');
});

t.test('the suite under the Khronos validation layer: no error', async (t) => {
  const text = attacker!.lines.join('\n');
  const result = parseVksuite(text.slice(text.indexOf('VALIDATION-RUN')));
  t.equal(result.summary?.validation, '1', 'validation on');
  t.equal(result.summary?.validation_errors, '0', 'no validation error');
  t.ok(
    result.validation.length > 0 && result.validation.every((v) => v.layer && v.errors === 0),
    `every program ran with the layer and no error (${result.validation.length})`,
  );
  t.same(
    result.checks.filter((c) => !c.ok).map((c) => c.name),
    [],
    'every check passes under the layer',
  );
});
