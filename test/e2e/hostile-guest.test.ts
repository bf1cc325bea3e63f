/**
 * A hostile guest against the real daemon (real compute worker, real lavapipe), through the
 * paths a guest really uses — the mailbox, its queues in the aperture, its QEMU's vfio-user
 * messages — while a second vGPU of the same daemon is watched (test/helpers/victim.ts): it
 * must keep answering trapped reads over its socket and completing submissions, lose no
 * context, and the daemon's event loop must never stall for long (issue 9: F1, F2, F3, F5, F6).
 *
 * Bounds are wide on purpose (these machines are shared and noisy): what matters is that the
 * stalls measured before the fixes (seconds to minutes) cannot happen.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import t, { type Test } from 'tap';
import { startDaemon, type RunningDaemon } from '../../src/cli/daemon.js';
import { VfioUserClient } from '../../src/client/client.js';
import { setLogSink } from '../../src/log.js';
import { loadNative } from '../../src/native/binding.js';
import { encodeSubmission } from '../../src/vgpu/command-builder.js';
import { QUEUE_CONTROL_SIZE, QueueControl } from '../../src/vgpu/queue-ring.js';
import { arrayVariable, nestedModule, unrollBomb } from '../fixtures/spirv.js';
import { HostGuest } from '../helpers/host-guest.js';
import { LoopWatch, Victim } from '../helpers/victim.js';

setLogSink(() => {});
const native = loadNative();
/**
 * Longest busy event-loop stall allowed under attack, ms: the main thread's CPU time within one
 * gap (test/helpers/victim.ts LoopWatch), so waiting for a core on a loaded machine does not
 * count — the wall-clock stall reached 822 ms at a load of 10 with nothing of the daemon's
 * running. Generous against the 20 ms target of bench:hostile.
 */
const STALL_BOUND_MS = 150;
const SPIN = fs.readFileSync(new URL('../../../guest-driver/kernels/build/spin.spv', import.meta.url));

function daemonWith(
  t: Test,
  scheduler: Parameters<typeof startDaemon>[0]['scheduler'] = {},
  compute: Parameters<typeof startDaemon>[0]['compute'] = {},
): RunningDaemon {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'mdgpu-hostile-'));
  const daemon = startDaemon({
    vgpus: [
      { name: 'attacker', socket: path.join(dir, 'attacker.sock'), apertureSize: 64 << 20 },
      { name: 'victim', socket: path.join(dir, 'victim.sock'), apertureSize: 16 << 20 },
    ],
    compute,
    scheduler,
  });
  t.teardown(async () => {
    await daemon.close();
    fs.rmSync(dir, { recursive: true, force: true });
  });
  return daemon;
}

const bytesOf = (words: Uint32Array) => new Uint8Array(words.buffer, words.byteOffset, words.byteLength);

/** KERNEL_CREATE through the mailbox and the build's outcome: [state, result] (contract 1.2). */
async function tryKernel(guest: HostGuest, words: Uint32Array, bindings: number, push: number): Promise<{ create: number; state?: number; result?: number }> {
  const bo = guest.alloc(words.byteLength);
  guest.dev.aperture.set(bytesOf(words), bo.offset);
  const r = guest.op(0x0200, guest.ctx, bo.handle, 0, words.byteLength, bindings, push);
  if (r.result !== 0) return { create: r.result };
  return { create: 0, ...(await guest.kernelSettled(r.ret)) };
}

t.test('F1: SPIR-V that took SPIRV-Tools 50 s, sent over and over, costs the other VM nothing', async (t) => {
  const daemon = daemonWith(t);
  const victim = await Victim.open(daemon.vgpus[1]!, native);
  t.teardown(() => victim.close());
  const attacker = new HostGuest(daemon.vgpus[0]!.device);
  const bomb = nestedModule(16, 3, { push: true });
  await victim.submit();
  const watch = new LoopWatch();
  victim.start();
  const outcomes = [];
  for (let i = 0; i < 10; i++) outcomes.push(await tryKernel(attacker, bomb, 0, 128));
  const report = await victim.stop();
  const loop = watch.stop();
  const stall = loop.maxBusyStallMs;
  t.ok(
    outcomes.every((o) => o.create === 0 && o.state === 2 && o.result === 11),
    `every attempt: accepted for building, then FAILED with BAD_KERNEL (${JSON.stringify(outcomes[0])})`,
  );
  t.same(report.failures, [], 'the victim lost no submission');
  t.ok(report.reads.length > 0, `${report.reads.length} victim reads answered meanwhile`);
  t.equal(report.readFailures, 0, `no victim read failed: ${report.firstErrors.join('; ')}`);
  t.ok(stall < STALL_BOUND_MS, `longest busy event-loop stall ${stall.toFixed(1)} ms < ${STALL_BOUND_MS} ms (wall: ${loop.maxStallMs.toFixed(0)} ms)`);
  const compute = daemon.compute as import('../../src/backend/isolated.js').IsolatedDevice;
  t.equal(compute.builder.stats.refused, 10, 'refused by the builder process, never checked in the daemon');
  t.equal(compute.resets, 0, 'no device reset');
});

t.test('F1: builds that run past the time limit are killed and throttled; the other VM still builds and runs', async (t) => {
  // A limit far above a real kernel's build (saxpy: ~10 ms, ~100 ms on a loaded machine) and far
  // below the bomb's (minutes), so neither side of it depends on the machine's load.
  const daemon = daemonWith(t, {}, { kernelBuild: { timeLimitMs: 2000 } });
  const victim = await Victim.open(daemon.vgpus[1]!, native);
  t.teardown(() => victim.close());
  const attacker = new HostGuest(daemon.vgpus[0]!.device);
  const slow = unrollBomb(64); // 1.7 KB that lavapipe compiles for minutes
  victim.start();
  const outcomes = [];
  for (let i = 0; i < 4; i++) outcomes.push(await tryKernel(attacker, slow, 1, 0));
  // The victim's own kernel still builds (the builder takes VMs round-robin and is not stuck).
  const victimGuest = new HostGuest(daemon.vgpus[1]!.device);
  const saxpySpv = fs.readFileSync(new URL('../../../guest-driver/kernels/build/saxpy.spv', import.meta.url));
  const saxpy = await tryKernel(victimGuest, new Uint32Array(saxpySpv.buffer.slice(saxpySpv.byteOffset, saxpySpv.byteOffset + saxpySpv.length)), 2, 8);
  const report = await victim.stop();
  t.same(
    outcomes.slice(0, 3).map((o) => [o.create, o.state, o.result]),
    [
      [0, 2, 11],
      [0, 2, 11],
      [0, 2, 11],
    ],
    'three builds past the limit: FAILED with BAD_KERNEL',
  );
  t.equal(outcomes[3]!.create, 13, 'the fourth is THROTTLED at once: the VM is cooled off');
  t.same([saxpy.create, saxpy.state], [0, 1], `the victim's kernel built (${JSON.stringify(saxpy)})`);
  t.same(report.failures, [], 'the victim lost no submission');
  t.equal(report.readFailures, 0, `no victim read failed: ${report.firstErrors.join('; ')}`);
  const compute = daemon.compute as import('../../src/backend/isolated.js').IsolatedDevice;
  t.equal(compute.builder.stats.timeouts, 3, 'the builder was killed three times');
  t.equal(compute.resets, 0, 'the compute device never noticed');
});

t.test('F6: a kernel over the device limits (2 GiB of shared memory) is refused at creation, never crashing the device', async (t) => {
  const daemon = daemonWith(t);
  const victim = await Victim.open(daemon.vgpus[1]!, native);
  t.teardown(() => victim.close());
  const attacker = new HostGuest(daemon.vgpus[0]!.device);
  victim.start();
  const shared = await tryKernel(attacker, arrayVariable(1 << 29, 'Workgroup'), 1, 0);
  const report = await victim.stop();
  t.same([shared.create, shared.state, shared.result], [0, 2, 11], 'FAILED with BAD_KERNEL');
  t.same(report.failures, [], 'the victim lost nothing');
  t.equal(report.readFailures, 0, `no victim read failed: ${report.firstErrors.join('; ')}`);
  const compute = daemon.compute as import('../../src/backend/isolated.js').IsolatedDevice;
  t.equal(compute.resets, 0, 'no device reset');
});

t.test('F2: a ring of 65,536 empty submissions published at once does not hold the daemon', async (t) => {
  const daemon = daemonWith(t);
  const victim = await Victim.open(daemon.vgpus[1]!, native);
  t.teardown(() => victim.close());
  const attacker = new HostGuest(daemon.vgpus[0]!.device);
  const RING = 2 << 20;
  const ring = attacker.alloc(QUEUE_CONTROL_SIZE + RING);
  const q = attacker.op(0x0100, attacker.ctx, ring.handle, 0);
  t.equal(q.result, 0, 'a 2 MiB ring');
  const one = encodeSubmission([]);
  const n = RING / one.length;
  for (let i = 0; i < n; i++) daemon.vgpus[0]!.device.aperture.set(one, ring.offset + QUEUE_CONTROL_SIZE + i * one.length);
  await victim.submit(); // warm: the victim's path is up before the attack starts
  const watch = new LoopWatch();
  victim.start();
  // One store and one doorbell publish all of it.
  attacker.view.setBigUint64(ring.offset + QueueControl.fields.tail.offset, BigInt(RING), true);
  attacker.write('QUEUE_DOORBELL', q.ret);
  const completed = () => attacker.view.getBigUint64(ring.offset + QueueControl.fields.completed.offset, true);
  const deadline = Date.now() + 120_000;
  while (completed() < BigInt(n) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
  const report = await victim.stop();
  const loop = watch.stop();
  const stall = loop.maxBusyStallMs;
  t.equal(completed(), BigInt(n), `the attacker's ${n} submissions were all consumed`);
  t.same(report.failures, [], 'the victim lost no submission');
  t.equal(report.readFailures, 0, `no victim read failed: ${report.firstErrors.join('; ')}`);
  t.equal(daemon.vgpus[1]!.device.queues.lostContextCount, 0, 'and no context');
  t.ok(
    report.reads.length > 10 && report.submissions.length > 2,
    `the victim kept working: ${report.reads.length} reads, ${report.submissions.length} submissions`,
  );
  t.ok(stall < STALL_BOUND_MS, `longest busy event-loop stall ${stall.toFixed(1)} ms < ${STALL_BOUND_MS} ms (wall: ${loop.maxStallMs.toFixed(0)} ms)`);
  t.ok(daemon.vgpus[0]!.device.queues.totals.yields > 0, 'the flooded queue yielded to others');
});

/** A new context of `vgpu` dispatches the spin kernel (hours of work): one device reset. */
async function overrun(daemon: RunningDaemon): Promise<string | null | undefined> {
  const want = new Uint8Array(4);
  new DataView(want.buffer).setUint32(0, 1, true); // the flag stays 0: hours of work (spin.comp)
  // Each overrun from a new context: a lost context cannot reach the device again.
  const g = new HostGuest(daemon.vgpus[0]!.device);
  const spin = await g.kernel(SPIN, 1, 4);
  const flag = g.alloc(0x1000);
  g.queue()(
    encodeSubmission([{ op: 'dispatch', kernel: spin, groups: [4096, 4096, 1], bindings: [{ buffer: flag.handle, offset: 0, size: 4096 }], push: want }]),
  );
  await g.completions(1);
  return g.done[0];
}

t.test('F3: device resets caused by one VM cost the other VM no submission and no context', async (t) => {
  // A short limit, so the test takes seconds: the spin kernel overruns it every time.
  // Batches run whole: the reset path (preempted, a batch past its limit is lost between parts).
  const daemon = daemonWith(t, { batchTimeLimitNs: 1e9, preempt: false, resetPolicy: { strikes: 0, windowMs: 60_000, coolOffMs: 60_000 } });
  const victim = await Victim.open(daemon.vgpus[1]!, native);
  t.teardown(() => victim.close());
  await victim.submit();
  const watch = new LoopWatch();
  victim.start();
  const outcomes = [];
  for (let i = 0; i < 3; i++) outcomes.push(await overrun(daemon));
  const report = await victim.stop();
  const loop = watch.stop();
  const stall = loop.maxBusyStallMs;
  t.same(outcomes, ['CONTEXT_LOST', 'CONTEXT_LOST', 'CONTEXT_LOST'], "each overrun costs the attacker's context");
  const compute = daemon.compute as import('../../src/backend/isolated.js').IsolatedDevice;
  t.equal(compute.resets, 3, 'three device resets');
  t.same(report.failures, [], 'the victim lost no submission across them');
  t.equal(report.readFailures, 0, `no victim read failed: ${report.firstErrors.join('; ')}`);
  t.equal(daemon.vgpus[1]!.device.queues.lostContextCount, 0, 'and no context');
  t.ok(report.submissions.length > 3, `${report.submissions.length} victim submissions completed meanwhile`);
  t.ok(stall < STALL_BOUND_MS, `longest busy event-loop stall ${stall.toFixed(1)} ms < ${STALL_BOUND_MS} ms (wall: ${loop.maxStallMs.toFixed(0)} ms)`);
});

t.test('F3: a VM whose work keeps resetting the device is cooled off (THROTTLED); the other is not', async (t) => {
  const daemon = daemonWith(t, { batchTimeLimitNs: 500e6, preempt: false, resetPolicy: { strikes: 2, windowMs: 60_000, coolOffMs: 60_000 } });
  const victim = await Victim.open(daemon.vgpus[1]!, native);
  t.teardown(() => victim.close());
  victim.start();
  t.equal(await overrun(daemon), 'CONTEXT_LOST', 'first overrun: lost');
  t.equal(await overrun(daemon), 'CONTEXT_LOST', 'second overrun: lost, and the vGPU is cooled off');
  t.equal(await overrun(daemon), 'THROTTLED', 'third: refused without running');
  const report = await victim.stop();
  t.same(report.failures, [], 'the victim is not throttled and lost nothing');
  t.equal(report.readFailures, 0, `no victim read failed: ${report.firstErrors.join('; ')}`);
  const stats = daemon.scheduler.stats().find((s) => s.name === 'attacker')!;
  t.equal(stats.coolOffs, 1);
  t.ok(stats.coolingOffUntil !== null, 'cooling off');
  const compute = daemon.compute as import('../../src/backend/isolated.js').IsolatedDevice;
  t.equal(compute.resets, 2, 'two resets, not three');
});

t.test('F5: work parked before a DEVICE_RESET (a real vfio-user message) never runs after it', async (t) => {
  const daemon = daemonWith(t);
  const vgpu = daemon.vgpus[0]!;
  const client = VfioUserClient.connect(native, vgpu.config.socket);
  t.teardown(() => client.close());
  await client.version();
  const old = new HostGuest(vgpu.device);
  const target = old.alloc(0x1000);
  const flag = old.alloc(0x1000);
  old.queue()(
    encodeSubmission([
      { op: 'wait', src: { buffer: flag.handle, offset: 0 }, value: 1n, timeoutNs: 10_000_000_000n },
      { op: 'fill', dst: { buffer: target.handle, offset: 0 }, size: 0x1000, value: 0x41414141 },
    ]),
  );
  await new Promise((r) => setTimeout(r, 20));
  await client.reset();
  // The parked WAIT held its buffers pinned; the reset withdrew it, and it lets go at its next
  // look at the queue (a loaded machine may take a while). Until then its ranges stay out of the
  // allocator, and the new owner would be placed elsewhere: wait, so the attack is the real one.
  for (let waited = 0; vgpu.device.memory.quarantined > 0 && waited < 10_000; waited += 10) await new Promise((r) => setTimeout(r, 10));
  t.equal(vgpu.device.memory.quarantined, 0, 'the withdrawn work let go of its buffers');
  const next = new HostGuest(vgpu.device);
  const mine = next.alloc(0x2000);
  const secret = new TextEncoder().encode('new owner secret');
  for (let at = 0; at < 0x2000; at += 0x1000) vgpu.device.aperture.set(secret, mine.offset + at);
  // The old flag's range is now the new owner's: its secret, read as a u64, satisfies the old
  // WAIT's condition. Nothing may wake up and run the FILL.
  t.ok(mine.offset <= flag.offset && flag.offset < mine.offset + 0x2000, "the old flag is inside the new owner's buffer");
  await new Promise((r) => setTimeout(r, 50));
  for (let at = 0; at < 0x2000; at += 0x1000) {
    t.same(
      vgpu.device.aperture.subarray(mine.offset + at, mine.offset + at + secret.length),
      secret,
      `the new owner's data at +0x${at.toString(16)} is intact`,
    );
  }
  t.equal(daemon.scheduler.stats().find((s) => s.name === 'attacker')!.batches, 0, 'the FILL never reached the device');
});
