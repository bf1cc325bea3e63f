/**
 * How a batch is cut into parts (src/exec/batch-parts.ts), without a device: a fake submit
 * records each part and reports a device time from a model of the work in it, so sizing,
 * learning and the geometry of split dispatches are checked exactly. The real device's results
 * and device times are test/exec/split-dispatch.test.ts.
 */
import t from 'tap';
import type { BackendKernel, Command } from '../../src/backend/backend.js';
import { BatchParts, DeviceTimeModel, PROBE_WORKGROUPS, TRANSFER_CHUNK } from '../../src/exec/batch-parts.js';

function fakeKernel(splittable = true): BackendKernel {
  return { layout: [], pushConstantSize: 0, localSize: [1, 1, 1], dispatchBase: true, splittable, destroy() {} };
}

type Dispatch = Extract<Command, { kind: 'dispatch' }>;

function dispatch(kernel: BackendKernel, groups: [number, number, number], base: [number, number, number] = [0, 0, 0]): Dispatch {
  return { kind: 'dispatch', kernel, base, groups, descriptors: [], pushConstants: new Uint8Array(0) };
}

/** Device time of a part: `nsPerGroup` per workgroup of each kernel, 1 ns per transfer byte. */
function costOf(part: readonly Command[], nsPerGroup: Map<BackendKernel, number>): number {
  let ns = 0;
  for (const c of part) {
    if (c.kind === 'dispatch') ns += (nsPerGroup.get(c.kernel) ?? 0) * c.groups[0] * c.groups[1] * c.groups[2];
    else if (c.kind === 'copy') ns += c.src.size;
    else if (c.kind === 'fill') ns += c.dst.size;
    else if (c.kind === 'update') ns += c.data.byteLength;
  }
  return ns;
}

/** Run `commands` part by part with `budget`; each part's commands and device time. */
async function runAll(commands: Command[], budget: number, nsPerGroup: Map<BackendKernel, number>, model = new DeviceTimeModel()) {
  const parts: { commands: readonly Command[]; ns: number }[] = [];
  let started = 0;
  const run = new BatchParts(commands, model, async (part, start) => {
    start();
    const ns = costOf(part, nsPerGroup);
    parts.push({ commands: part, ns });
    return ns;
  });
  let total = 0;
  for (let i = 0; i < 10_000; i++) {
    const r = await run.next({ started: () => started++ }, budget);
    total += r.deviceNs;
    if (r.done) break;
  }
  return { parts, total, started, model };
}

/** Every workgroup id a list of dispatch pieces covers, with the NumWorkgroups each was given. */
function coverage(parts: { commands: readonly Command[] }[]) {
  const seen = new Map<string, number>();
  const counts = new Set<string>();
  for (const p of parts)
    for (const c of p.commands) {
      if (c.kind !== 'dispatch') continue;
      counts.add(String(c.numWorkgroups ?? c.groups));
      for (let z = 0; z < c.groups[2]; z++)
        for (let y = 0; y < c.groups[1]; y++)
          for (let x = 0; x < c.groups[0]; x++) {
            const id = `${c.base[0] + x},${c.base[1] + y},${c.base[2] + z}`;
            seen.set(id, (seen.get(id) ?? 0) + 1);
          }
    }
  return { seen, counts };
}

t.test('a long dispatch runs in ranges that cover each workgroup once, each told the whole count', async (t) => {
  const k = fakeKernel();
  const groups: [number, number, number] = [7, 5, 3];
  const base: [number, number, number] = [10, 20, 30];
  const { parts, total, started } = await runAll([dispatch(k, groups, base)], 9_000, new Map([[k, 1000]]));
  const { seen, counts } = coverage(parts);
  t.equal(seen.size, 7 * 5 * 3, 'every workgroup ran');
  t.ok(
    [...seen.values()].every((n) => n === 1),
    'each exactly once',
  );
  t.ok(
    [...seen.keys()].every((id) => {
      const [x, y, z] = id.split(',').map(Number);
      return x! >= 10 && x! < 17 && y! >= 20 && y! < 25 && z! >= 30 && z! < 33;
    }),
    'inside the dispatch: the base moved, never past it',
  );
  t.same([...counts], ['7,5,3'], 'NumWorkgroups is the whole dispatch in every range');
  t.equal(total, 105 * 1000, 'the device time of all parts');
  t.equal(started, parts.length, 'each part says when it started');
  t.equal(parts[0]!.ns, PROBE_WORKGROUPS * 1000, 'an unmeasured kernel first runs a probe');
  const later = parts.slice(1, -1);
  t.ok(
    later.every((p) => p.ns <= 9_000 * 1.25),
    `after the probe no part is much over the 9 µs budget: ${parts.map((p) => p.ns / 1000).join(' ')}`,
  );
  t.ok(
    later.every((p) => p.ns >= 5_000),
    'and none is tiny but the last (ranges of a row, rows and slabs fill the budget)',
  );
});

t.test('a batch that fits runs whole, as one submission of its own commands', async (t) => {
  const k = fakeKernel();
  const model = new DeviceTimeModel();
  model.learnKernel(k, 100);
  const cmds: Command[] = [
    { kind: 'fill', dst: { offset: 0, size: 4096 }, value: 1 },
    { kind: 'barrier' },
    dispatch(k, [16, 1, 1]),
    { kind: 'timestamp', dst: { offset: 8192, size: 8 } },
  ];
  const { parts } = await runAll(cmds, 1e6, new Map([[k, 100]]), model);
  t.equal(parts.length, 1);
  t.same(parts[0]!.commands, cmds, 'the same commands, unchanged');
  t.equal(parts[0]!.commands[2], cmds[2], 'the dispatch itself, not a copy with a count');
});

t.test('barriers and timestamps stay with the commands before them', async (t) => {
  const k = fakeKernel();
  const model = new DeviceTimeModel();
  model.learnKernel(k, 1000);
  const ts = (offset: number): Command => ({ kind: 'timestamp', dst: { offset, size: 8 } });
  const cmds: Command[] = [ts(0), dispatch(k, [100, 1, 1]), ts(8), { kind: 'barrier' }, ts(16), dispatch(k, [100, 1, 1]), ts(24)];
  const { parts } = await runAll(cmds, 20_000, new Map([[k, 1000]]), model);
  t.ok(parts.length >= 10, `${parts.length} parts`);
  for (const p of parts.slice(1)) {
    t.equal(p.commands[0]!.kind, 'dispatch', 'no part starts with a timestamp or barrier (the first one may)');
  }
  const flat = parts.flatMap((p) => p.commands.map((c) => c.kind));
  t.same(
    flat.filter((k) => k !== 'dispatch'),
    ['timestamp', 'timestamp', 'barrier', 'timestamp', 'timestamp'],
    'all of them, in order',
  );
  const i = parts.findIndex((p) => p.commands.some((c) => c.kind === 'barrier'));
  t.same(
    parts[i]!.commands.slice(-3).map((c) => c.kind),
    ['timestamp', 'barrier', 'timestamp'],
    'after the last range of the first dispatch, in its part',
  );
});

t.test('the probe teaches the model: later parts fill the budget; a kernel slower than thought is caught up with', async (t) => {
  const k = fakeKernel();
  const model = new DeviceTimeModel();
  const cost = new Map([[k, 2000]]);
  const first = await runAll([dispatch(k, [1000, 1, 1])], 100_000, cost, model);
  t.equal(model.nsPerWorkgroup(k), 2000, 'learned from the probe');
  t.ok(first.parts.length <= 1 + Math.ceil(1000 / 50) + 1, `${first.parts.length} parts for 2 ms at a 100 µs budget`);
  // The kernel becomes 4x slower (other inputs): the first part overruns, the next ones do not.
  cost.set(k, 8000);
  const second = await runAll([dispatch(k, [1000, 1, 1])], 100_000, cost, model);
  t.ok(second.parts[0]!.ns > 100_000 * 1.25, `the first part, planned with the old estimate, overran: ${second.parts[0]!.ns / 1000} µs`);
  t.ok(
    second.parts.slice(2, -1).every((p) => p.ns <= 100_000 * 1.25),
    `from the third part on, within the budget: ${second.parts.map((p) => (p.ns / 1000).toFixed(0)).join(' ')}`,
  );
});

t.test('a kernel that cannot be split runs whole, in a part of its own when it does not fit', async (t) => {
  const k = fakeKernel(false);
  const s = fakeKernel();
  const model = new DeviceTimeModel();
  model.learnKernel(k, 1000);
  model.learnKernel(s, 1000);
  const { parts } = await runAll(
    [dispatch(s, [3, 1, 1]), dispatch(k, [50, 1, 1]), dispatch(s, [3, 1, 1])],
    10_000,
    new Map([
      [k, 1000],
      [s, 1000],
    ]),
    model,
  );
  t.same(
    parts.map((p) => p.commands.map((c) => (c.kind === 'dispatch' ? c.groups[0] : c.kind))),
    [[3], [50], [3]],
    'the unsplittable dispatch is whole and alone',
  );
  t.equal((parts[1]!.commands[0] as Dispatch).numWorkgroups, undefined, 'and has no count of another');
});

t.test('COPY and FILL are split into byte ranges in order', async (t) => {
  const model = new DeviceTimeModel();
  const size = 10 * TRANSFER_CHUNK + 12;
  const cmds: Command[] = [
    { kind: 'copy', src: { offset: 1 << 20, size }, dst: { offset: 3 << 20, size } },
    { kind: 'fill', dst: { offset: 8 << 20, size }, value: 7 },
  ];
  const { parts } = await runAll(cmds, 3 * TRANSFER_CHUNK, new Map(), model);
  t.ok(parts.length >= 6, `${parts.length} parts`);
  const copies = parts.flatMap((p) => p.commands).filter((c) => c.kind === 'copy');
  const fills = parts.flatMap((p) => p.commands).filter((c) => c.kind === 'fill');
  let at = 0;
  for (const c of copies) {
    t.equal(c.src.offset, (1 << 20) + at);
    t.equal(c.dst.offset, (3 << 20) + at);
    t.equal(c.src.size, c.dst.size);
    at += c.src.size;
  }
  t.equal(at, size, 'the copy, all of it, once');
  at = 0;
  for (const c of fills) {
    t.equal(c.dst.offset, (8 << 20) + at);
    t.equal(c.dst.size % 4, 0, 'FILL sizes stay multiples of 4');
    at += c.dst.size;
  }
  t.equal(at, size, 'the fill, all of it, once');
  t.ok(
    parts.every((p) => p.ns <= 3 * TRANSFER_CHUNK * 1.25 + TRANSFER_CHUNK),
    'parts about the budget at the initial estimate of 1 ns per byte',
  );
});

t.test('learning: transfers from transfer-only parts; several kernels in one part by their shares', (t) => {
  const a = fakeKernel();
  const b = fakeKernel();
  const model = new DeviceTimeModel();
  model.learnKernel(a, 100);
  model.learnKernel(b, 300);
  const run = new BatchParts([dispatch(a, [10, 1, 1]), dispatch(b, [10, 1, 1])], model, async () => 8000);
  return run.next({ started() {} }, 1e9).then((r) => {
    t.ok(r.done);
    // Predicted 1000 + 3000; measured 8000: both twice as slow.
    t.equal(model.nsPerWorkgroup(a)! > 100, true, `a: ${model.nsPerWorkgroup(a)}`);
    t.equal(Math.round(model.nsPerWorkgroup(b)! / model.nsPerWorkgroup(a)!), 3, 'their ratio kept');
  });
});

t.test('ranges are whole rounds of the device’s parallel workgroups (lavapipe: one per thread)', async (t) => {
  const k = fakeKernel();
  const model = new DeviceTimeModel(2);
  model.learnKernel(k, 1000);
  // A budget of 9 workgroups, rows of 31: ranges of 8, and a row's last range of what is left.
  const { parts } = await runAll([dispatch(k, [31, 4, 1])], 9_000, new Map([[k, 1000]]), model);
  const sizes = parts.map((p) => p.commands.map((c) => (c as Dispatch).groups[0] * (c as Dispatch).groups[1]));
  t.ok(
    sizes.every((boxes) => boxes.length === 1),
    `one range per part: ${JSON.stringify(sizes)}`,
  );
  t.same(sizes.slice(0, 4).flat(), [8, 8, 8, 7], 'a row of 31 in ranges of 8 and the 7 left');
  t.equal(coverage(parts).seen.size, 31 * 4, 'all of it');
  t.ok(
    parts.every((p) => (p.commands[0] as Dispatch).base[0] % 2 === 0 || (p.commands[0] as Dispatch).base[0] === 0),
    'ranges start on even workgroups',
  );
});

t.test('queueNext: the next part goes to the device before the one running ends; in order, each once', async (t) => {
  const k = fakeKernel();
  const model = new DeviceTimeModel();
  model.learnKernel(k, 1000);
  const events: string[] = [];
  const pending: { resolve: (ns: number) => void; ns: number }[] = [];
  const submitted: (readonly Command[])[] = [];
  const run = new BatchParts([dispatch(k, [40, 1, 1])], model, (part, start) => {
    start();
    const i = submitted.length;
    submitted.push(part);
    events.push(`submit${i}`);
    return new Promise<number>((resolve) => pending.push({ resolve, ns: costOf(part, new Map([[k, 1000]])) }));
  });
  const complete = () => {
    const p = pending.shift()!;
    events.push('complete');
    p.resolve(p.ns);
  };
  let started = 0;
  const control = { started: () => started++, queueNext: true };
  const first = run.next(control, 10_000);
  await new Promise((r) => setImmediate(r));
  t.same(events, ['submit0', 'submit1'], 'two parts on the device at once');
  complete();
  const r1 = await first;
  t.equal(r1.queuedNext, true, 'the scheduler is told the next part is queued');
  t.equal(r1.done, false);
  // The queued part runs next; the scheduler may stop queueing (another VM came).
  const second = run.next({ started: () => started++, queueNext: false }, 10_000);
  await new Promise((r) => setImmediate(r));
  t.equal(submitted.length, 2, 'nothing more queued when not allowed');
  complete();
  const r2 = await second;
  t.equal(r2.queuedNext, false);
  let total = r1.deviceNs + r2.deviceNs;
  for (let i = 0; i < 100; i++) {
    const p = run.next({ started: () => started++ }, 10_000);
    await new Promise((r) => setImmediate(r));
    complete();
    const r = await p;
    total += r.deviceNs;
    if (r.done) break;
  }
  const { seen } = coverage(submitted.map((commands) => ({ commands })));
  t.equal(seen.size, 40, 'every workgroup');
  t.ok(
    [...seen.values()].every((n) => n === 1),
    'once',
  );
  t.equal(total, 40 * 1000, 'every part’s device time reported once');
  const bases = submitted.map((p) => (p[0] as Dispatch).base[0]);
  t.same(
    bases,
    [...bases].sort((a, b) => a - b),
    'ranges in order',
  );
});

t.test('queueNext: a failed part is reported only once the part queued behind it has left the device', async (t) => {
  const k = fakeKernel();
  const model = new DeviceTimeModel();
  model.learnKernel(k, 1000);
  const pending: { resolve: (ns: number) => void; reject: (e: Error) => void }[] = [];
  const run = new BatchParts([dispatch(k, [40, 1, 1])], model, (_part, start) => {
    start();
    return new Promise<number>((resolve, reject) => pending.push({ resolve, reject }));
  });
  let settled = false;
  const first = run.next({ started: () => {}, queueNext: true }, 10_000).finally(() => {
    settled = true;
  });
  first.catch(() => {});
  await new Promise((r) => setImmediate(r));
  t.equal(pending.length, 2, 'two parts on the device');
  pending[0]!.reject(new Error('device lost'));
  await new Promise((r) => setImmediate(r));
  t.notOk(settled, 'not reported while the queued part may still write');
  pending[1]!.reject(new Error('device lost'));
  await t.rejects(first, /device lost/);
});
