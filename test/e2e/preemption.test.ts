/**
 * Preemption through the paths a guest uses (its queues in the aperture, the real daemon with
 * its compute worker on lavapipe): a long batch runs in parts with other VMs' work between
 * them, and the guest still sees one batch — its barriers, timestamps and fences in order, its
 * results those of the batch run whole; its time limit counts its parts together; and a device
 * reset while a batch is preempted costs the VM whose part hung its context, and the other VM
 * (whose batch waited between two parts) nothing, watched as in hostile-guest.test.ts.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import t, { type Test } from 'tap';
import type { IsolatedDevice } from '../../src/backend/isolated.js';
import { startDaemon, type RunningDaemon } from '../../src/cli/daemon.js';
import { setLogSink } from '../../src/log.js';
import { loadNative } from '../../src/native/binding.js';
import { encodeSubmission } from '../../src/vgpu/command-builder.js';
import { glsl } from '../fixtures/spirv.js';
import { HostGuest } from '../helpers/host-guest.js';
import { Victim } from '../helpers/victim.js';

setLogSink(() => {});
const native = loadNative();
const spv = (name: string) => fs.readFileSync(new URL(`../../../guest-driver/kernels/build/${name}.spv`, import.meta.url));
const bytesOf = (words: Uint32Array) => new Uint8Array(words.buffer, words.byteOffset, words.byteLength);

/**
 * spin.comp with 128 bytes of push constants that also reads NumWorkgroups: no room is left to
 * supply the whole count, so the host driver cannot split it, and a dispatch of it runs whole —
 * over millions of workgroups, for hours: a part that does not end.
 */
const HANG_GLSL = `#version 450
layout(local_size_x = 1) in;
layout(std430, binding = 0) coherent buffer Flag { uint stop; uint turns; } flag;
layout(push_constant) uniform Push { uint want; uint pad[31]; } p;
void main() {
  if (gl_NumWorkGroups.x == 0u) return;
  while (flag.stop != p.want)
    atomicAdd(flag.turns, 1u);
}
`;

function daemonWith(t: Test, scheduler: Parameters<typeof startDaemon>[0]['scheduler']): RunningDaemon {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'mdgpu-preempt-'));
  const daemon = startDaemon({
    vgpus: [
      { name: 'a', socket: path.join(dir, 'a.sock'), apertureSize: 64 << 20 },
      { name: 'b', socket: path.join(dir, 'b.sock'), apertureSize: 64 << 20 },
    ],
    compute: {},
    scheduler,
  });
  t.teardown(async () => {
    await daemon.close();
    fs.rmSync(dir, { recursive: true, force: true });
  });
  return daemon;
}

const u32s = (...v: number[]) => new Uint8Array(new Uint32Array(v).buffer);

/** A gemm of `dim`: inputs of small integers (every sum exact in f32), C, and what C must hold. */
function gemmJob(g: HostGuest, kernel: number, dim: number, seed: number) {
  const bytes = dim * dim * 4;
  const a = g.alloc(bytes);
  const b = g.alloc(bytes);
  const c = g.alloc(bytes);
  const av = new Float32Array(dim * dim);
  const bv = new Float32Array(dim * dim);
  for (let i = 0; i < dim * dim; i++) {
    av[i] = (i * 7 + seed) % 4;
    bv[i] = (i * 5 + seed * 3) % 3;
  }
  g.dev.aperture.set(new Uint8Array(av.buffer), a.offset);
  g.dev.aperture.set(new Uint8Array(bv.buffer), b.offset);
  const want = new Float32Array(dim * dim);
  for (let r = 0; r < dim; r++)
    for (let k = 0; k < dim; k++) {
      const x = av[r * dim + k]!;
      if (x !== 0) for (let col = 0; col < dim; col++) want[r * dim + col]! += x * bv[k * dim + col]!;
    }
  return {
    c,
    command: {
      op: 'dispatch' as const,
      kernel,
      groups: [dim / 16, dim / 16, 1] as [number, number, number],
      bindings: [
        { buffer: a.handle, offset: 0, size: bytes },
        { buffer: b.handle, offset: 0, size: bytes },
        { buffer: c.handle, offset: 0, size: bytes },
      ],
      push: u32s(dim, dim, dim),
    },
    /** Elements of `buffer` (C, or a copy of it) that differ from the product. */
    wrong(at: { offset: number } = c): number {
      const got = new Float32Array(g.dev.aperture.buffer.slice(g.dev.aperture.byteOffset + at.offset, g.dev.aperture.byteOffset + at.offset + bytes));
      let bad = 0;
      for (let i = 0; i < dim * dim; i++) if (got[i] !== want[i]) bad++;
      return bad;
    },
  };
}

t.test('a preempted batch resumes with its barriers, timestamps and fences in order; another VM runs between its parts', async (t) => {
  const daemon = daemonWith(t, { timeSliceNs: 2e6 });
  const a = new HostGuest(daemon.vgpus[0]!.device);
  const b = new HostGuest(daemon.vgpus[1]!.device);
  const gemm = await a.kernel(spv('gemm'), 3, 12);
  const memcpy = await a.kernel(spv('memcpy'), 2, 4);
  const dim = 256;
  const job = gemmJob(a, gemm, dim, 1);
  const d = a.alloc(dim * dim * 4);
  const marks = a.alloc(0x1000); // timestamps at 0, 8, 16; the inner fence at 64; the batch's at 128
  const words = (dim * dim) / 1;
  const publishA = a.queue();
  // B: small submissions, one after another, each a FILL and its fence.
  const bBuf = b.alloc(0x1000);
  const publishB = b.queue();
  let bDone = 0;
  let aDone = false;
  let bDuringA = 0;
  const bLoop = (async () => {
    for (let i = 1; i <= 400 && !aDone; i++) {
      publishB(
        encodeSubmission([{ op: 'fill', dst: { buffer: bBuf.handle, offset: 0 }, size: 256, value: i }], {
          dst: { buffer: bBuf.handle, offset: 512 },
          value: BigInt(i),
        }),
      );
      await b.completions(i);
      bDone = i;
      if (!aDone && a.done.length === 0 && daemon.scheduler.stats()[0]!.parts > 0) bDuringA++;
    }
  })();
  await new Promise((r) => setTimeout(r, 20));
  publishA(
    encodeSubmission(
      [
        { op: 'timestamp', dst: { buffer: marks.handle, offset: 0 } },
        job.command,
        { op: 'barrier' },
        { op: 'timestamp', dst: { buffer: marks.handle, offset: 8 } },
        { op: 'fence', dst: { buffer: marks.handle, offset: 64 }, value: 5n },
        {
          op: 'dispatch',
          kernel: memcpy,
          groups: [words / 64, 1, 1],
          bindings: [
            { buffer: job.c.handle, offset: 0, size: words * 4 },
            { buffer: d.handle, offset: 0, size: words * 4 },
          ],
          push: u32s(words),
        },
        { op: 'timestamp', dst: { buffer: marks.handle, offset: 16 } },
      ],
      { dst: { buffer: marks.handle, offset: 128 }, value: 7n },
    ),
  );
  await a.completions(1);
  aDone = true;
  await bLoop;
  t.same(a.done, [null], 'the batch completed without error');
  const at = (off: number) => a.view.getBigUint64(marks.offset + off, true);
  t.equal(at(128), 7n, 'its fence');
  t.equal(at(64), 5n, 'and the fence inside it');
  t.equal(job.wrong(), 0, 'the split gemm computed the product');
  t.equal(job.wrong(d), 0, 'the copy after the barrier read all of it');
  t.ok(at(0) > 0n && at(0) <= at(8) && at(8) <= at(16), `timestamps in order: ${at(0)} ≤ ${at(8)} ≤ ${at(16)}`);
  const s = daemon.scheduler.stats().find((x) => x.name === 'a')!;
  t.equal(s.batches, 2, 'two batches on the device (the inner fence is between them)');
  t.ok(s.parts > 4, `that ran as ${s.parts} device submissions`);
  t.ok(s.preemptions >= 1, `preempted ${s.preemptions} times for the other VM`);
  t.ok(bDuringA >= 1, `${bDuringA} of the other VM's ${bDone} submissions completed while the batch was in progress`);
  t.same(new Set(b.done), new Set([null]), "none of the other VM's failed");
});

t.test('a batch in parts is lost at its time limit, between two parts, with no device reset', async (t) => {
  const daemon = daemonWith(t, { timeSliceNs: 4e6, batchTimeLimitNs: 300e6, resetPolicy: { strikes: 0, windowMs: 60_000, coolOffMs: 60_000 } });
  const victim = await Victim.open(daemon.vgpus[1]!, native);
  t.teardown(() => victim.close());
  await victim.submit();
  victim.start();
  const a = new HostGuest(daemon.vgpus[0]!.device);
  // spin.comp, its flag never set: every workgroup ends (lavapipe bounds its loop), millions of them take hours.
  const spin = await a.kernel(spv('spin'), 1, 4);
  const flag = a.alloc(0x1000);
  const fence = a.alloc(0x1000);
  a.queue()(
    encodeSubmission([{ op: 'dispatch', kernel: spin, groups: [4096, 4096, 1], bindings: [{ buffer: flag.handle, offset: 0, size: 4096 }], push: u32s(1) }], {
      dst: { buffer: fence.handle, offset: 0 },
      value: 1n,
    }),
  );
  await a.completions(1);
  const report = await victim.stop();
  t.same(a.done, ['CONTEXT_LOST'], 'the batch is lost');
  t.equal(a.view.getBigUint64(fence.offset, true), 1n | (1n << 63n), 'with an error fence');
  t.ok(a.view.getUint32(flag.offset + 4, true) > 0, 'after its parts ran');
  const s = daemon.scheduler.stats().find((x) => x.name === 'a')!;
  t.equal(s.timeouts, 1, 'a timeout');
  t.equal(s.resets, 1, 'a strike');
  t.ok(s.parts > 2, `over ${s.parts} parts`);
  t.equal((daemon.compute as IsolatedDevice).resets, 0, 'and no device reset: the device was between two parts');
  t.same(report.failures, [], 'the other VM lost no submission');
  t.equal(report.readFailures, 0, `no read of the other VM failed: ${report.firstErrors.join('; ')}`);
  t.equal(daemon.vgpus[1]!.device.queues.lostContextCount, 0, 'nor its context');
});

t.test(
  "a device reset during preempted batches: the hung part's VM loses its context; the other VM's batch, waiting between two parts, completes correctly",
  async (t) => {
    const daemon = daemonWith(t, { timeSliceNs: 2e6, batchTimeLimitNs: 1.5e9, resetPolicy: { strikes: 0, windowMs: 60_000, coolOffMs: 60_000 } });
    const victim = await Victim.open(daemon.vgpus[1]!, native);
    t.teardown(() => victim.close());
    await victim.submit();
    const a = new HostGuest(daemon.vgpus[0]!.device);
    const b = new HostGuest(daemon.vgpus[1]!.device);
    const hang = await a.kernel(bytesOf(glsl(HANG_GLSL)), 1, 128);
    const gemmA = await a.kernel(spv('gemm'), 3, 12);
    const gemmB = await b.kernel(spv('gemm'), 3, 12);
    const jobA = gemmJob(a, gemmA, 256, 2);
    const flag = a.alloc(0x1000);
    const fenceA = a.alloc(0x1000);
    const publishB = b.queue();
    const jobsB = [gemmJob(b, gemmB, 256, 3), gemmJob(b, gemmB, 256, 4)];
    const fenceB = b.alloc(0x1000);
    victim.start();
    // B: gemm batches, one after another, until A's batch has ended.
    let aEnded = false;
    let bBatches = 0;
    let acrossReset = 0;
    const compute = daemon.compute as IsolatedDevice;
    const bLoop = (async () => {
      while (!aEnded || bBatches < 2) {
        const job = jobsB[bBatches % 2]!;
        new Uint8Array(b.dev.aperture.buffer, b.dev.aperture.byteOffset + job.c.offset, 256 * 256 * 4).fill(0);
        const resets = compute.resets;
        publishB(encodeSubmission([job.command], { dst: { buffer: fenceB.handle, offset: 8 * (bBatches % 64) }, value: BigInt(bBatches + 1) }));
        await b.completions(++bBatches);
        if (compute.resets > resets) acrossReset++;
        if (job.wrong() !== 0) b.done.push(`batch ${bBatches}: ${job.wrong()} wrong elements`);
      }
    })();
    // A: a gemm run in parts (B's parts between them), then a part that does not end.
    const push = new Uint8Array(128);
    new DataView(push.buffer).setUint32(0, 1, true); // want 1: the flag stays 0
    a.queue()(
      encodeSubmission(
        [
          jobA.command,
          { op: 'barrier' },
          { op: 'dispatch', kernel: hang, groups: [4096, 4096, 1], bindings: [{ buffer: flag.handle, offset: 0, size: 4096 }], push },
        ],
        { dst: { buffer: fenceA.handle, offset: 0 }, value: 1n },
      ),
    );
    await a.completions(1);
    aEnded = true;
    await bLoop;
    const report = await victim.stop();
    t.same(a.done, ['CONTEXT_LOST'], "the hung part's VM: its batch is lost");
    t.equal(a.view.getBigUint64(fenceA.offset, true), 1n | (1n << 63n), 'with an error fence');
    t.ok(daemon.vgpus[0]!.device.queues.isContextLost(a.ctx), 'and its context');
    t.equal(jobA.wrong(), 0, 'the gemm before the hang had completed, in parts');
    const sa = daemon.scheduler.stats().find((x) => x.name === 'a')!;
    const sb = daemon.scheduler.stats().find((x) => x.name === 'b')!;
    t.ok(sa.preemptions >= 1, `A's batch was preempted ${sa.preemptions} times before its part hung`);
    t.equal(sa.timeouts, 1);
    t.equal(compute.resets, 1, 'one device reset stopped the hung part');
    t.ok(sb.parts > bBatches, `B's ${bBatches} batches ran in ${sb.parts} parts`);
    t.equal(acrossReset, 1, 'one of them was in progress when the device was reset');
    t.same(b.done, Array(bBatches).fill(null), "every one of B's batches completed with the right product, that one too");
    t.equal(sb.timeouts, 0, 'none of them timed out');
    t.equal(daemon.vgpus[1]!.device.queues.lostContextCount, 0, 'B lost no context');
    t.same(report.failures, [], "the other VM's small submissions: none lost");
    t.equal(report.readFailures, 0, `its reads all answered: ${report.firstErrors.join('; ')}`);
  },
);
