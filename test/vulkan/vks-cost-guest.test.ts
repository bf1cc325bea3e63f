/**
 * What npm run bench:vulkan counts, as behaviour: vks-cost in a real Debian guest under TCG
 * through mdgpu's ICD, each phase held until the host has sampled the vGPU's counters (the
 * guest's second serial port), and the same program natively. Batches submitted back to back
 * make neither doorbells nor interrupts (the ICD asks for the FENCE interrupt only for a submit
 * with a VkFence: it asked for one per submit before, 2 VM exits each); CPU access to mapped
 * memory makes no exit at all; a pipeline from the ICD's cache traps nothing. Counts, not times:
 * the bounds leave room for a doorbell or two on a loaded machine.
 */
import t from 'tap';
import { ensureKit } from '../../src/kit/kit.js';
import { setLogSink } from '../../src/log.js';
import { type Plan, runSideBySide } from '../../bench/vulkan/run.js';
import { vksuiteBinaries } from '../helpers/vksuite.js';

setLogSink(() => {});
const kit = await ensureKit();
const bins = await vksuiteBinaries(kit);
const plan: Plan = { kernels: [], iterations: 1, submits: 1000, n: 4, rounds: 1 };
const { native, guest } = await runSideBySide(kit, bins, plan);

t.test('both sides ran vks-cost to the end, every check passed', async (t) => {
  t.same(native.failures, []);
  t.same(guest.failures, []);
  t.equal(guest.cost.length, 10, 'ten checks in the guest');
  for (const c of [...native.cost, ...guest.cost]) t.ok(c.ok, `${c.name} passed`);
  for (const c of guest.cost) t.equal(c.digest, native.cost.find((n) => n.name === c.name)?.digest, `${c.name}: the native result`);
});

t.test('the host counted every phase', async (t) => {
  t.same(
    guest.phases.map((p) => p.name),
    ['submit', 'access.coherent', 'access.cached', 'alloc', 'map', 'free', 'pipeline.cold', 'pipeline.cached', 'pipeline.uncached'],
  );
});

const delta = (name: string) => {
  const p = guest.phases.find((x) => x.name === name)!;
  return {
    trapped: p.end.trapped - p.begin.trapped,
    doorbells: p.end.doorbells - p.begin.doorbells,
    msix: p.end.msix - p.begin.msix,
    submissions: p.end.submissions - p.begin.submissions,
  };
};

t.test('vkQueueSubmit back to back: no exit per submit', async (t) => {
  const d = delta('submit');
  t.equal(d.submissions, plan.submits, 'every batch ran on the host');
  t.ok(d.msix <= 2, `one interrupt for the fence, not one per submit (${d.msix})`);
  t.ok(d.doorbells <= plan.submits / 100, `the notification protocol: hardly a doorbell (${d.doorbells})`);
  t.ok(d.trapped <= plan.submits / 20, `exits ${d.trapped} for ${plan.submits} submits (target 0.01 per submit; 2 per submit before)`);
});

t.test('mapped memory: no exit per access', async (t) => {
  for (const phase of ['access.coherent', 'access.cached']) {
    const accesses = Number(guest.cost.find((c) => c.name === `cost.${phase}`)?.fields.accesses);
    t.ok(accesses > 1_000_000, `${phase}: ${accesses} 8-byte accesses`);
    t.equal(delta(phase).trapped, 0, `${phase}: no trapped access`);
  }
  t.equal(delta('map').trapped, 0, 'the first vkMapMemory traps nothing: the buffer is in the mapped aperture');
});

t.test('what traps by design does, and a cache hit does not', async (t) => {
  t.ok(delta('alloc').trapped >= 4 * plan.n, 'vkAllocateMemory goes through the mailbox');
  t.ok(delta('pipeline.cold').trapped >= plan.n, 'a new pipeline creates a kernel on the host');
  t.equal(delta('pipeline.cached').trapped, 0, 'a pipeline from the ICD cache traps nothing');
});
