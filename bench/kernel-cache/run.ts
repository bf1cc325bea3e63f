/**
 * What the host's per-VM kernel cache saves a Vulkan program that keeps a pipeline cache: the
 * suite's vks-pipecache (one module, six specializations, plus a seventh through a merged
 * cache) run --runs times in one Debian guest under TCG, one process after another with one
 * cache file, on a vGPU without the kernel cache (`kernel-cache=0`: every creation validated
 * and compiled again, as before the cache) and on one with it. The guest times the creation of
 * the six pipelines (vkCreateComputePipelines); the first run builds them either way, the later
 * ones find the keys in the loaded VkPipelineCache data and ask the host again. The host's
 * builder and cache counters say what it did.
 *
 *   npm run bench:kernel-cache [-- --runs 10]
 */
import * as fs from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { IsolatedDevice } from '../../src/backend/isolated.js';
import type { RunningVgpu } from '../../src/cli/daemon.js';
import { ensureKit } from '../../src/kit/kit.js';
import type { Kit } from '../../src/kit/kit-tree.js';
import { setLogSink } from '../../src/log.js';
import { parseVksuite } from '../../test/helpers/vksuite.js';
import { runVulkanGuests } from '../../test/helpers/vulkan-guest.js';
import { table } from '../guest-bench.js';

interface Column {
  label: string;
  /** create_ms of the six pipelines, per run. */
  createMs: number[];
  builds: number;
  hits: number;
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
}

async function measure(kit: Kit, label: string, kernelCache: number | undefined, runs: number): Promise<Column> {
  let vgpu: RunningVgpu | undefined;
  const body = `rm -f /tmp/pc.bin
for i in $(seq ${runs}); do /usr/libexec/mdgpu-vulkan-suite/vks-pipecache --quiet --cache /tmp/pc.bin; done`;
  const [run] = await runVulkanGuests(kit, {
    jobs: [{ body }],
    apertureSize: 256 << 20,
    quota: 128 << 20,
    timeoutMs: 900_000,
    ...(kernelCache !== undefined ? { vgpu: { kernelCache } } : {}),
    onStart: (vgpus) => (vgpu = vgpus[0]),
  });
  const checks = parseVksuite(run!.lines.join('\n')).checks;
  if (checks.length !== runs || !checks.every((c) => c.ok)) throw new Error(`${label}: the runs did not all pass:\n${run!.lines.join('\n')}`);
  return {
    label,
    createMs: checks.map((c) => Number(c.fields.create_ms)),
    builds: (vgpu!.executor!.device as IsolatedDevice).builder.stats.built,
    hits: vgpu!.device.queues.kernels.cache.stats.hits,
  };
}

async function main(): Promise<void> {
  const i = process.argv.indexOf('--runs');
  const runs = i >= 0 ? Number(process.argv[i + 1]) : 10;
  if (!Number.isInteger(runs) || runs < 2) throw new Error('--runs: at least 2');
  setLogSink(() => {});
  const kit = await ensureKit();
  const columns = [await measure(kit, 'without the kernel cache', 0, runs), await measure(kit, 'with the kernel cache', undefined, runs)];
  const later = (c: Column) => c.createMs.slice(1);
  console.log(`vks-pipecache x ${runs} in one Debian guest (TCG), six pipelines created per run (ms, in the guest)\n`);
  console.log(
    table(
      ['vGPU', 'first run', `runs 2-${runs}: median`, 'min', 'max', 'host builds', 'cache hits'],
      columns.map((c) => [
        c.label,
        c.createMs[0]!.toFixed(1),
        median(later(c)).toFixed(1),
        Math.min(...later(c)).toFixed(1),
        Math.max(...later(c)).toFixed(1),
        String(c.builds),
        String(c.hits),
      ]),
    ),
  );
  const [off, on] = columns;
  console.log(`\nlater runs: ${(median(later(off!)) / median(later(on!))).toFixed(1)}x faster with the cache (medians)`);
}

if (process.argv[1] && fs.realpathSync(process.argv[1]) === fileURLToPath(import.meta.url)) {
  await main();
}
