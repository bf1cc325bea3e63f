/**
 * npm run bench:vulkan's pure parts (milliseconds, no guest): the guest job's order (a native
 * run before every guest run of a kernel and one after the last, vks-cost held at each phase
 * through the second serial port) and the tables' arithmetic (ratios, digests, exits per call
 * against their targets).
 */
import t from 'tap';
import { execFileSync } from 'node:child_process';
import { benchTable, exitsTable, guestJob, type Plan, phaseCalls, type TargetResult } from '../../bench/vulkan/run.js';
import type { VksuiteCheck } from '../helpers/vksuite.js';

const plan: Plan = {
  kernels: [
    { name: 'saxpy', program: 'vks-saxpy', size: '16M' },
    { name: 'gemm', program: 'vks-gemm', size: '256' },
  ],
  iterations: 4,
  submits: 1000,
  n: 2,
  rounds: 2,
};

t.test('the guest job: native before every guest run, one native after, then vks-cost held', async (t) => {
  const job = guestJob(plan);
  // A real shell parses it (the guest runs it with Debian's sh).
  t.doesNotThrow(() => execFileSync('sh', ['-n'], { input: job }), 'sh -n accepts the job');
  const steps = job
    .split('\n')
    .map((l) => (l.startsWith('host ') ? l : (/\/(vks-\S+) /.exec(l)?.[1] ?? null)))
    .filter((x): x is string => x !== null && !x.startsWith('host()'));
  t.same(steps, [
    'host native saxpy',
    'vks-saxpy',
    'host native saxpy',
    'vks-saxpy',
    'host native saxpy',
    'host native gemm',
    'vks-gemm',
    'host native gemm',
    'vks-gemm',
    'host native gemm',
    'host native-cost',
    'vks-cost',
  ]);
  t.match(job, /VKSUITE_PHASE_SYNC=\/dev\/ttyS1 \S+\/vks-cost --quiet --size 1000 --iterations 2;/, 'vks-cost waits on the second serial port');
  t.match(job, /vks-saxpy --quiet --size 16M --iterations 4;/);
  t.match(job, /exec 3<\/dev\/ttyS1/, 'the port stays open for the whole job');
});

const timing = (ms: number, wallMs: number, digest: string) => ({ ms, wallMs, ok: true, digest });
const cost = (name: string, fields: Record<string, string>): VksuiteCheck => ({ name, ok: true, digest: '0123456789abcdef', ms: 0, fields });
const zero = { trapped: 0, apertureTrapped: 0, configTrapped: 0, doorbells: 0, submissions: 0, msix: 0 };

t.test('table 1: ratios native/guest and whether the digests agree', async (t) => {
  const out = benchTable(plan.kernels, [
    {
      label: 'native',
      timings: new Map([
        ['saxpy', timing(50, 51, 'aa')],
        ['gemm', timing(30, 31, 'bb')],
      ]),
    },
    {
      label: 'guest',
      timings: new Map([
        ['saxpy', timing(40, 60, 'aa')],
        ['gemm', timing(30, 31, 'cc')],
      ]),
    },
  ]);
  const saxpy = out.split('\n').find((l) => l.includes('saxpy'))!;
  t.match(saxpy, /1\.250/, 'device ratio');
  t.match(saxpy, /0\.850/, 'wall ratio');
  t.match(saxpy, /yes/);
  t.match(out.split('\n').find((l) => l.includes('gemm'))!, /NO/, 'a different digest is shown');
});

t.test('table 2: exits per call against the targets', async (t) => {
  const guest: TargetResult = {
    timings: new Map(),
    runs: new Map(),
    cost: [cost('cost.access.coherent', { accesses: '4096' }), cost('cost.access.cached', { accesses: '4096' })],
    phases: [
      { name: 'submit', begin: zero, end: { ...zero, trapped: 5, doorbells: 5, submissions: 1000 } },
      { name: 'access.coherent', begin: { ...zero, trapped: 7 }, end: { ...zero, trapped: 7 } },
      { name: 'access.cached', begin: zero, end: { ...zero, trapped: 1 } },
      { name: 'alloc', begin: zero, end: { ...zero, trapped: 80 } },
    ],
    failures: [],
    raw: [],
  };
  t.same(
    phaseCalls(guest, plan).map((p) => [p.phase, p.calls]),
    [
      ['submit', 1000],
      ['access.coherent', 4096],
      ['access.cached', 4096],
      ['alloc', 8],
      ['map', 8],
      ['free', 8],
      ['pipeline.cold', 2],
      ['pipeline.cached', 2],
      ['pipeline.uncached', 2],
    ],
  );
  const rows = exitsTable(guest, plan).split('\n');
  const row = (what: string) => rows.find((l) => l.includes(what))!;
  t.match(row('vkQueueSubmit'), /0\.005.*≤ 0\.01 met/, '5 exits for 1000 submits');
  t.match(row('coherent'), /\s0\s.*≤ 0 met/, 'no exit while accessing mapped memory');
  t.match(row('cached'), /NOT MET/, 'one exit is one too many');
  t.match(row('vkAllocateMemory'), /10\.000.*traps by design/);
  t.match(row('vkMapMemory'), /\?/, 'a phase not counted shows as unknown');
});
