/**
 * The host's per-VM kernel cache seen from a real Debian guest through mdgpu's ICD, under TCG:
 * the suite's pipeline-cache program (vks-pipecache) runs twice, as `vksuite` runs it — the
 * first run creates six pipelines (one module, six specializations) and a seventh through a
 * merged cache and saves the cache data; the second, a new process, loads it and creates them
 * again. With the host's cache the second run's kernels are READY at once: the builder process
 * never sees them. The same job on a vGPU with the cache off (`kernel-cache=0`, what every
 * creation cost before) builds them all again. The creation times of the second run's six
 * pipelines are printed (the guest measures them, vkCreateComputePipelines); no assertion on
 * them (a shared, loaded machine).
 */
import t from 'tap';
import type { IsolatedDevice } from '../../src/backend/isolated.js';
import type { RunningVgpu } from '../../src/cli/daemon.js';
import { ensureKit } from '../../src/kit/kit.js';
import { setLogSink } from '../../src/log.js';
import type { KernelCacheStats } from '../../src/vgpu/kernel-cache.js';
import { parseVksuite } from '../helpers/vksuite.js';
import { runVulkanGuests } from '../helpers/vulkan-guest.js';

setLogSink(() => {});
const kit = await ensureKit();

/** The pipeline-cache program twice in one guest; what the host's builder and cache saw. */
async function pipecacheTwice(kernelCache?: number) {
  let vgpu: RunningVgpu | undefined;
  const [run] = await runVulkanGuests(kit, {
    jobs: [{ body: 'vksuite --only pipecache; echo "VKSUITE-RC $?"' }],
    apertureSize: 256 << 20,
    quota: 128 << 20,
    timeoutMs: 600_000,
    ...(kernelCache !== undefined ? { vgpu: { kernelCache } } : {}),
    onStart: (vgpus) => (vgpu = vgpus[0]),
  });
  const result = parseVksuite(run!.lines.join('\n'));
  const builder = (vgpu!.executor!.device as IsolatedDevice).builder.stats;
  const cache: KernelCacheStats = { ...vgpu!.device.queues.kernels.cache.stats };
  return { run: run!, result, built: builder.built, cache };
}

const off = await pipecacheTwice(0);
const on = await pipecacheTwice();

for (const [what, r] of [
  ['cache off', off],
  ['cache on', on],
] as const) {
  t.test(`${what}: both runs pass, the second reuses the saved pipeline cache`, async (t) => {
    t.equal(r.run.rc, 0, 'the job ended');
    t.match(r.run.lines.join('\n'), /VKSUITE-RC 0/, 'vksuite exits 0');
    const names = r.result.checks.map((c) => c.name);
    t.same(names, ['cache.create', 'cache.reuse'], 'created, then reused from its file');
    t.ok(
      r.result.checks.every((c) => c.ok),
      'every check passes',
    );
    t.equal(r.result.checks[1]!.fields.hits_loaded, '6/6', "the ICD reports the loaded keys' six creations as cache hits");
  });
}

const createMs = (r: typeof on, i: number) => Number(r.result.checks[i]!.fields.create_ms);

t.test('with the cache, the second run builds nothing: its kernels come from the VM’s kernel cache', async (t) => {
  t.same(off.cache, { hits: 0, misses: off.cache.misses, evictions: 0 }, `cache off: every creation built (${off.cache.misses})`);
  t.equal(off.built, off.cache.misses, 'each by the builder process');
  t.ok(on.cache.hits >= 7, `cache on: the second run's seven kernels were cache hits (${on.cache.hits})`);
  t.equal(on.built, on.cache.misses, 'only misses reached the builder');
  t.equal(off.built - on.built, 7, `seven builds fewer (${off.built} → ${on.built}): the second run's six pipelines and the merged one`);
  t.comment(
    `six pipelines of vks-pipecache, vkCreateComputePipelines in the guest (TCG): ` +
      `first run ${createMs(off, 0).toFixed(1)} / ${createMs(on, 0).toFixed(1)} ms, ` +
      `second run ${createMs(off, 1).toFixed(1)} ms without the host cache, ${createMs(on, 1).toFixed(1)} ms with it`,
  );
});
