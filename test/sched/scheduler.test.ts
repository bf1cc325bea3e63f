import t from 'tap';
import {
  BatchTimeoutError,
  FairScheduler,
  jainIndex,
  type PartedRun,
  type PartResult,
  QUIET_PART_SLICES,
  TooManyInFlightError,
} from '../../src/sched/scheduler.js';
import { StrikeCounter } from '../../src/sched/strikes.js';
import { CancelledError, ContextLostError, ThrottledError } from '../../src/execution-errors.js';

/** A simulated device: each batch "takes" its device time; the clock is the sum of them. */
function simulated(timeSliceNs = 2_000_000) {
  let clock = 0;
  const sched = new FairScheduler({ timeSliceNs, batchTimeLimitNs: 0, now: () => clock });
  const job = (deviceNs: number) => async () => {
    clock += deviceNs;
    return { deviceNs };
  };
  return { sched, job, clock: () => clock };
}

/** Keep `depth` batches of `cost` ns outstanding for a vGPU until `until` device time has passed. */
async function flood(
  sched: FairScheduler,
  job: (ns: number) => () => Promise<{ deviceNs: number }>,
  vgpu: string,
  cost: number,
  depth: number,
  stop: () => boolean,
): Promise<number> {
  let done = 0;
  const worker = async () => {
    while (!stop()) {
      await sched.submit(vgpu, 0, job(cost));
      done++;
    }
  };
  await Promise.all(Array.from({ length: depth }, worker));
  return done;
}

const share = (sched: FairScheduler, name: string) => sched.stats().find((s) => s.name === name)!.share;

t.test('equal weights share device time equally, even with unequal batch sizes', async (t) => {
  const { sched, job, clock } = simulated();
  sched.register('a', 1);
  sched.register('b', 1);
  const stop = () => clock() > 2e9;
  await Promise.all([flood(sched, job, 'a', 1_000_000, 4, stop), flood(sched, job, 'b', 100_000, 4, stop)]);
  t.ok(Math.abs(share(sched, 'a') - 0.5) < 0.02, `a ${share(sched, 'a').toFixed(3)}`);
  t.ok(Math.abs(share(sched, 'b') - 0.5) < 0.02, `b ${share(sched, 'b').toFixed(3)}`);
  t.ok(jainIndex(sched.stats().map((s) => s.share / s.weight)) > 0.99, 'Jain index ~1');
});

t.test('weights 1:2 give shares 1:2 within 5%', async (t) => {
  const { sched, job, clock } = simulated();
  sched.register('light', 1);
  sched.register('heavy', 2);
  const stop = () => clock() > 3e9;
  await Promise.all([flood(sched, job, 'light', 500_000, 4, stop), flood(sched, job, 'heavy', 500_000, 4, stop)]);
  const ratio = share(sched, 'heavy') / share(sched, 'light');
  t.ok(Math.abs(ratio - 2) / 2 < 0.05, `heavy/light = ${ratio.toFixed(3)}`);
  t.ok(jainIndex(sched.stats().map((s) => s.share / s.weight)) > 0.99, 'fair once normalised by weight');
});

t.test('no starvation: a single batch behind a flood runs within a time slice', async (t) => {
  const { sched, job, clock } = simulated(2_000_000);
  sched.register('flood', 1);
  sched.register('quiet', 1);
  let quietDoneAt = -1;
  const floodDone = flood(sched, job, 'flood', 100_000, 16, () => clock() > 1e8);
  await new Promise((r) => setImmediate(r));
  const submittedAt = clock();
  await sched.submit('quiet', 0, job(100_000));
  quietDoneAt = clock();
  await floodDone;
  t.ok(quietDoneAt - submittedAt <= 2_000_000 + 2 * 100_000, `waited ${(quietDoneAt - submittedAt) / 1e6} ms of device time`);
});

t.test('an idle vGPU banks no credit and is not charged', async (t) => {
  const { sched, job, clock } = simulated(500_000);
  sched.register('busy', 1);
  sched.register('sleeper', 1);
  await flood(sched, job, 'busy', 1_000_000, 2, () => clock() > 1e9);
  t.equal(share(sched, 'sleeper'), 0, 'idle: no device time');
  const before = { busy: sched.stats().find((s) => s.name === 'busy')!.deviceNs, sleeper: 0 };
  const start = clock();
  await Promise.all([
    flood(sched, job, 'busy', 1_000_000, 2, () => clock() > start + 4e8),
    flood(sched, job, 'sleeper', 1_000_000, 2, () => clock() > start + 4e8),
  ]);
  const s = Object.fromEntries(sched.stats().map((x) => [x.name, x.deviceNs]));
  const busyNew = s.busy! - before.busy;
  const sleeperNew = s.sleeper!;
  t.ok(
    Math.abs(busyNew - sleeperNew) / (busyNew + sleeperNew) < 0.05,
    `after waking, equal halves: ${busyNew / 1e6} vs ${sleeperNew / 1e6} ms (no burst from banked idle time)`,
  );
});

t.test('priorities within a vGPU; in-flight limit; unregister', async (t) => {
  const { sched, job } = simulated();
  sched.register('v', 1, 4);
  const order: string[] = [];
  const tag = (name: string) => async () => {
    order.push(name);
    return job(1000)();
  };
  // The first batch starts at once; the rest queue and are ordered by priority.
  const all = [sched.submit('v', 3, tag('first')), sched.submit('v', 3, tag('low')), sched.submit('v', 0, tag('high')), sched.submit('v', 1, tag('mid'))];
  await t.rejects(sched.submit('v', 0, tag('too-many')), /batches in flight/);
  t.ok(TooManyInFlightError);
  await Promise.all(all);
  t.same(order, ['first', 'high', 'mid', 'low']);
  await t.rejects(sched.submit('nobody', 0, tag('x')), /Unknown vGPU/);
  t.throws(() => sched.register('v'), /already registered/);
  t.throws(() => sched.register('w', 0), /Weight/);
  sched.register('w', 1);
  let release!: () => void;
  const blocker = sched.submit('w', 0, () => new Promise((r) => (release = () => r({ deviceNs: 1 }))));
  const queued = sched.submit('w', 0, job(1));
  sched.unregister('w');
  await t.rejects(queued, /gone/);
  release();
  await blocker;
});

t.test('a batch past the time limit fails as lost; the device is not reused before it ends', async (t) => {
  const sched = new FairScheduler({ timeSliceNs: 1e6, batchTimeLimitNs: 20e6 });
  sched.register('slow', 1);
  sched.register('other', 1);
  let finishSlow!: () => void;
  const slow = sched.submit('slow', 0, () => new Promise((r) => (finishSlow = () => r({ deviceNs: 50e6 }))));
  let otherRan = false;
  const other = sched.submit('other', 0, async () => {
    otherRan = true;
    return { deviceNs: 1 };
  });
  await new Promise((r) => setTimeout(r, 40));
  t.notOk(otherRan, 'the next batch waits for the device');
  finishSlow();
  await t.rejects(slow, BatchTimeoutError, 'reported once the batch really ended');
  await other;
  t.ok(otherRan);
  t.equal(sched.stats().find((s) => s.name === 'slow')!.timeouts, 1);
});

t.test('an overrun is reported to onOverrun, which can stop the batch (a device reset)', async (t) => {
  const overruns: string[] = [];
  let failRunning!: (e: Error) => void;
  const sched = new FairScheduler({
    timeSliceNs: 1e6,
    batchTimeLimitNs: 20e6,
    onOverrun: (vgpu) => {
      overruns.push(vgpu);
      failRunning(new Error('reset')); // what the daemon's reset does to the running batch
    },
  });
  sched.register('hog', 1);
  sched.register('other', 1);
  const hog = sched.submit('hog', 0, () => new Promise((_r, reject) => (failRunning = reject)));
  const other = sched.submit('other', 0, async () => ({ deviceNs: 1 }));
  await t.rejects(hog, /execution time limit/, 'the hog hears of the limit, not of the reset');
  await other;
  t.same(overruns, ['hog'], "onOverrun named the vGPU, and the next batch ran once the hog's ended");
});

t.test("a batch's clock starts when its work starts on the device, not while it waits for the device", async (t) => {
  const sched = new FairScheduler({ timeSliceNs: 1e6, batchTimeLimitNs: 30e6 });
  sched.register('a', 1);
  const batch = sched.submit(
    'a',
    0,
    async ({ started }) => {
      // Longer than the time limit: a device process coming back from a reset, kernels being
      // rebuilt there. Not the batch's time.
      await new Promise((r) => setTimeout(r, 60));
      started();
      return { deviceNs: 1 };
    },
    { awaitStart: true },
  );
  t.same(await batch, { deviceNs: 1 }, 'the batch runs within its limit');
  t.equal(sched.stats()[0]!.timeouts, 0, 'and no timeout was counted');
});

t.test('a timed-out batch is answered only once the device let go of it', async (t) => {
  let release!: () => void;
  const sched = new FairScheduler({ timeSliceNs: 1e6, batchTimeLimitNs: 10e6, onOverrun: () => setTimeout(() => release(), 30) });
  sched.register('hog', 1);
  const events: string[] = [];
  const hog = sched.submit(
    'hog',
    0,
    () =>
      new Promise<{ deviceNs: number }>((r) => {
        release = () => {
          events.push('device done');
          r({ deviceNs: 1 });
        };
      }),
  );
  await t.rejects(
    hog.finally(() => events.push('answered')),
    BatchTimeoutError,
  );
  t.same(events, ['device done', 'answered'], 'the timeout is reported after the run settled, so pins hold until then');
  t.ok((await hog.catch((e: unknown) => e)) instanceof ContextLostError, 'a timeout is a lost context');
});

t.test('a queued batch is withdrawn by its abort signal; a running one is not', async (t) => {
  const { sched, job } = simulated();
  sched.register('v', 1);
  let release!: () => void;
  const running = sched.submit('v', 0, () => new Promise((r) => (release = () => r({ deviceNs: 1 }))));
  const controller = new AbortController();
  let ran = false;
  const queued = sched.submit(
    'v',
    0,
    async () => {
      ran = true;
      return { deviceNs: 1 };
    },
    { signal: controller.signal },
  );
  const after = sched.submit('v', 0, job(1));
  controller.abort();
  await t.rejects(queued, CancelledError);
  release();
  await running;
  await after;
  t.notOk(ran, 'the withdrawn batch never ran');
  t.equal(sched.stats()[0]!.cancelled, 1);
  await t.rejects(sched.submit('v', 0, job(1), { signal: controller.signal }), CancelledError, 'an already aborted signal is refused at once');
});

t.test('device resets are strikes: a vGPU with too many is cooled off, the others are not', async (t) => {
  // Two strikes at once are within any window, so the real clock will do.
  const sched = new FairScheduler({ timeSliceNs: 1e6, batchTimeLimitNs: 0, resetPolicy: { strikes: 2, windowMs: 60_000, coolOffMs: 60_000 } });
  sched.register('bad', 1);
  sched.register('good', 1);
  const crash = () => Promise.reject(new ContextLostError('the device was reset', 'device-reset'));
  await t.rejects(sched.submit('bad', 0, crash), ContextLostError);
  await t.rejects(sched.submit('bad', 0, crash), ContextLostError);
  const refused = sched.submit('bad', 0, async () => ({ deviceNs: 1 }));
  await t.rejects(refused, ThrottledError, 'the third batch is refused: cooling off');
  t.same(await sched.submit('good', 0, async () => ({ deviceNs: 1 })), { deviceNs: 1 }, 'another vGPU is not affected');
  const bad = sched.stats().find((s) => s.name === 'bad')!;
  t.equal(bad.resets, 2);
  t.equal(bad.coolOffs, 1);
  t.equal(bad.throttled, 1);
  t.ok(bad.coolingOffUntil !== null && bad.coolingOffUntil > Date.now(), 'cooling off until later');
});

t.test('strike counter: window, cool-off, and 0 never throttles', (t) => {
  let now = 0;
  const c = new StrikeCounter({ strikes: 3, windowMs: 100, coolOffMs: 1000 }, () => now);
  t.notOk(c.strike('v'));
  now = 50;
  t.notOk(c.strike('v'));
  now = 160; // both earlier strikes left the window
  t.notOk(c.strike('v'));
  now = 170;
  t.notOk(c.strike('v'), 'two within the window');
  now = 180;
  t.ok(c.strike('v'), 'three within the window: cool-off');
  t.equal(c.coolingOffUntil('v'), 1180);
  now = 1180;
  t.equal(c.coolingOffUntil('v'), null, 'over');
  t.same(c.stats('v'), { strikes: 5, coolOffs: 1, coolingOffUntil: null });
  const never = new StrikeCounter({ strikes: 0, windowMs: 100, coolOffMs: 1000 }, () => now);
  for (let i = 0; i < 10; i++) t.notOk(never.strike('v'));
  t.equal(never.coolingOffUntil('v'), null);
  c.forget('v');
  t.same(c.stats('v'), { strikes: 0, coolOffs: 0, coolingOffUntil: null });
  t.end();
});

/**
 * A batch of `parts` parts of `partNs` device time each, on the simulated clock; `log` records
 * each part as `<name><index>`, `onPart` runs before each.
 */
function parted(
  name: string,
  parts: number,
  partNs: number,
  clock: { t: number },
  log: string[],
  onPart: (i: number) => void = () => {},
): PartedRun & { ran: number } {
  const run = {
    ran: 0,
    async next() {
      onPart(run.ran);
      log.push(`${name}${run.ran}`);
      clock.t += partNs;
      run.ran++;
      return { deviceNs: partNs, done: run.ran === parts };
    },
  };
  return run;
}

t.test('a batch in parts is preempted between them: another VM runs after at most one part, and the batch resumes in order', async (t) => {
  const clock = { t: 0 };
  const sched = new FairScheduler({ timeSliceNs: 1_000_000, batchTimeLimitNs: 0, now: () => clock.t });
  sched.register('flood', 1);
  sched.register('quiet', 1);
  const log: string[] = [];
  let quietAt = -1;
  // Parts shorter than the slice they were sized to (estimates err on the short side): each
  // still spends the slice, so the flood does not run a second part while the quiet VM waits.
  const flood = parted('f', 50, 600_000, clock, log, (i) => {
    if (i === 10) {
      // Arrives while the flood's part 10 is about to run.
      quietAt = clock.t;
      void sched.submit('quiet', 0, parted('q', 1, 100_000, clock, log));
    }
  });
  const r = await sched.submit('flood', 0, flood);
  t.equal(r.deviceNs, 50 * 600_000, 'the submitter sees one batch: the device time of all its parts');
  t.equal(flood.ran, 50, 'every part ran');
  const q = log.indexOf('q0');
  t.same(log.slice(q - 1, q + 2), ['f10', 'q0', 'f11'], 'the quiet VM ran right after the part in progress, then the batch resumed');
  t.same(
    log.filter((e) => e.startsWith('f')),
    Array.from({ length: 50 }, (_, i) => `f${i}`),
    'parts in order',
  );
  t.ok(quietAt >= 0);
  const s = Object.fromEntries(sched.stats().map((x) => [x.name, x]));
  t.equal(s.flood!.batches, 1, 'one batch');
  t.equal(s.flood!.parts, 50, 'of 50 device submissions');
  t.equal(s.flood!.preemptions, 1, 'preempted once, for the quiet VM');
});

t.test('parts share the device fairly: weights 1:2 within 5% with batches much longer than a slice', async (t) => {
  const clock = { t: 0 };
  const sched = new FairScheduler({ timeSliceNs: 1_000_000, batchTimeLimitNs: 0, now: () => clock.t });
  sched.register('light', 1);
  sched.register('heavy', 2);
  const log: string[] = [];
  // Measured while both are backlogged: the loops stop submitting at 2 s of device time, and
  // the batches in flight then finish alone.
  let window: ReturnType<FairScheduler['stats']> | null = null;
  let windowParts = 0;
  const atPart = () => {
    if (window === null && clock.t >= 2e9) {
      window = sched.stats();
      windowParts = log.length;
    }
  };
  const loop = async (name: string) => {
    while (clock.t < 2e9) await sched.submit(name, 0, parted(name, 100, 1_000_000, clock, log, atPart));
  };
  await Promise.all([loop('light'), loop('light'), loop('heavy'), loop('heavy')]);
  const ns = Object.fromEntries(window!.map((x) => [x.name, x.deviceNs]));
  const ratio = ns.heavy! / ns.light!;
  t.ok(Math.abs(ratio - 2) / 2 < 0.05, `heavy/light = ${ratio.toFixed(3)} with 100 ms batches and 1 ms slices`);
  // Preemption: neither VM held the device for a whole batch at a time.
  let longest = 0;
  let run = 0;
  for (let i = 1; i < windowParts; i++) {
    run = log[i]!.startsWith(log[i - 1]!.replace(/\d+$/, '')) ? run + 1 : 0;
    longest = Math.max(longest, run);
  }
  t.ok(longest < 10, `the longest run of one VM's parts while both wait: ${longest + 1}`);
});

t.test('the time limit counts a batch’s parts together: parts that use it up fail the batch, without a reset', async (t) => {
  const clock = { t: 0 };
  const overruns: string[] = [];
  const sched = new FairScheduler({ timeSliceNs: 1_000_000, batchTimeLimitNs: 50e6, now: () => clock.t, onOverrun: (v) => overruns.push(v) });
  sched.register('long', 1);
  sched.register('other', 1);
  const log: string[] = [];
  // 30 ms of device time per part: the second part ends 60 ms in, past the 50 ms limit, though
  // neither part alone reached it.
  const batch = parted('l', 10, 30_000_000, clock, log);
  await t.rejects(sched.submit('long', 0, batch), BatchTimeoutError, 'lost, as a batch run whole past its limit');
  t.equal(batch.ran, 2, 'no part ran after the limit was used up');
  t.same(overruns, [], 'no reset: the device was already free');
  const s = sched.stats().find((x) => x.name === 'long')!;
  t.equal(s.timeouts, 1);
  t.equal(s.resets, 1, 'a strike, as for a batch past its limit');
  t.same(await sched.submit('other', 0, parted('o', 1, 1, clock, log)), { deviceNs: 1 }, 'the other VM runs on');
});

t.test('a part that runs past what is left of the limit is stopped through onOverrun (a device reset)', async (t) => {
  let failRunning!: (e: Error) => void;
  const overruns: string[] = [];
  const sched = new FairScheduler({
    timeSliceNs: 1e6,
    batchTimeLimitNs: 60e6,
    onOverrun: (vgpu) => {
      overruns.push(vgpu);
      failRunning(new ContextLostError('the device was reset', 'device-reset'));
    },
  });
  sched.register('hog', 1);
  let parts = 0;
  const hog: PartedRun = {
    async next() {
      parts++;
      // Part 1 takes 40 ms of the 60 ms limit; part 2 hangs (a workgroup that never ends).
      if (parts === 1) {
        await new Promise((r) => setTimeout(r, 40));
        return { deviceNs: 40e6, done: false };
      }
      return new Promise<PartResult>((_r, reject) => (failRunning = reject));
    },
  };
  const started = Date.now();
  await t.rejects(sched.submit('hog', 0, hog), BatchTimeoutError);
  t.same(overruns, ['hog'], 'the hanging part was reset');
  t.ok(Date.now() - started < 1000, 'within what was left of the limit, not a whole limit more');
  t.equal(parts, 2);
});

t.test('a batch withdrawn or orphaned between two parts runs no further part', async (t) => {
  const clock = { t: 0 };
  const sched = new FairScheduler({ timeSliceNs: 1_000_000, batchTimeLimitNs: 0, now: () => clock.t });
  sched.register('v', 1);
  sched.register('w', 1);
  const log: string[] = [];
  const controller = new AbortController();
  const batch = parted('v', 10, 1_000_000, clock, log, (i) => {
    if (i === 2) controller.abort(); // the queue was destroyed while part 2 ran
  });
  await t.rejects(sched.submit('v', 0, batch, { signal: controller.signal }), CancelledError);
  t.equal(batch.ran, 3, 'the running part finished; none after it');
  t.equal(sched.stats().find((x) => x.name === 'v')!.cancelled, 1);
  // Parked behind another VM's work, then the VM goes away.
  const other = parted('w', 3, 1_000_000, clock, log);
  const gone = parted('g', 10, 1_000_000, clock, log, (i) => {
    if (i === 0) void sched.submit('w', 0, other);
    if (i === 1) sched.unregister('v');
  });
  await t.rejects(sched.submit('v', 0, gone), /gone/);
  t.ok(gone.ran <= 2, `the orphaned batch stopped after ${gone.ran} parts`);
});

/** A PartedRun that queues its next part when the scheduler allows it (as BatchParts does). */
function pipelined(name: string, parts: number, partNs: number, clock: { t: number }, log: string[], onPart: (i: number) => void = () => {}) {
  const run = {
    ran: 0,
    allowed: [] as boolean[],
    budgets: [] as number[],
    queued: false,
    async next(control: { queueNext?: boolean }, budgetNs: number) {
      onPart(run.ran);
      run.allowed.push(control.queueNext === true);
      run.budgets.push(budgetNs);
      log.push(`${name}${run.ran}`);
      clock.t += partNs;
      run.ran++;
      run.queued = control.queueNext === true && run.ran < parts;
      return { deviceNs: partNs, done: run.ran === parts, queuedNext: run.queued };
    },
  };
  return run;
}

t.test('a part queued on the device behind the one running runs next; only while other vGPUs are quiet', async (t) => {
  const clock = { t: 0 };
  const sched = new FairScheduler({ timeSliceNs: 1_000_000, batchTimeLimitNs: 0, now: () => clock.t });
  sched.register('flood', 1);
  sched.register('quiet', 1);
  const log: string[] = [];
  const flood = pipelined('f', 30, 1_000_000, clock, log, (i) => {
    // Arrives while part 10 runs, with part 11 already queued behind it.
    if (i === 10) void sched.submit('quiet', 0, parted('q', 1, 100_000, clock, log));
  });
  const r = await sched.submit('flood', 0, flood);
  t.equal(r.deviceNs, 30 * 1_000_000, 'one batch, all its parts');
  t.same(
    log.filter((e) => e.startsWith('f')),
    Array.from({ length: 30 }, (_, i) => `f${i}`),
    'parts in order, each once',
  );
  const q = log.indexOf('q0');
  t.same(log.slice(q - 2, q + 2), ['f10', 'f11', 'q0', 'f12'], 'the queued part ran first, then the quiet VM');
  t.ok(flood.allowed.slice(0, 11).every(Boolean), 'queueing allowed while alone');
  t.notOk(flood.allowed[11], 'not while another vGPU waits');
  t.notOk(flood.allowed[12], 'nor right after it ran');
  t.ok(flood.allowed[29], 'again after a quiet spell');
  t.same(
    [flood.budgets[0], flood.budgets[11], flood.budgets[12], flood.budgets[29]],
    [QUIET_PART_SLICES * 1_000_000, 1_000_000, 1_000_000, QUIET_PART_SLICES * 1_000_000],
    'parts of several slices while the others are quiet, of one slice otherwise',
  );
  const s = Object.fromEntries(sched.stats().map((x) => [x.name, x]));
  t.equal(s.flood!.parts, 30);
  t.ok(s.flood!.queuedParts >= 11, `${s.flood!.queuedParts} parts were queued behind another`);
});

t.test('a batch withdrawn while its next part is queued settles once that part ended', async (t) => {
  const clock = { t: 0 };
  const sched = new FairScheduler({ timeSliceNs: 1_000_000, batchTimeLimitNs: 0, now: () => clock.t });
  sched.register('a', 1);
  const ac = new AbortController();
  const log: string[] = [];
  const run = pipelined('a', 10, 1_000_000, clock, log, (i) => {
    if (i === 3) ac.abort();
  });
  await t.rejects(sched.submit('a', 0, run, { signal: ac.signal }), CancelledError);
  t.same(log, ['a0', 'a1', 'a2', 'a3', 'a4'], 'the part queued when it was withdrawn ran; none after');
  t.equal(sched.stats()[0]!.inFlight, 0);
});
