/**
 * vks-cost, the benchmark's program of the Vulkan suite (npm run bench:vulkan), natively on the
 * host's lavapipe with the kit-built binary: every check passes, and its phases are marked so
 * that an observer can count what happens in each — with VKSUITE_PHASE_SYNC the program stops
 * after each `VKSUITE-PHASE` line until the observer answers (here through a FIFO; in the bench,
 * the guest's second serial port), which is what makes the bench's per-phase exit counts exact.
 * The runner leaves it out of a plain run and runs it with --only.
 */
import t from 'tap';
import { execFileSync, spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as fsp from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import * as readline from 'node:readline';
import { ensureKit } from '../../src/kit/kit.js';
import { nativeVulkan, parseVksuite, runVksuiteNative, vksuiteBinaries } from '../helpers/vksuite.js';

const kit = await ensureKit();
const bins = await vksuiteBinaries(kit);

const PHASES = ['submit', 'access.coherent', 'access.cached', 'alloc', 'map', 'free', 'pipeline.cold', 'pipeline.cached', 'pipeline.uncached'];
const CHECKS = [
  'cost.submit',
  'cost.access.coherent',
  'cost.access.cached',
  'cost.alloc.4k',
  'cost.alloc.64k',
  'cost.alloc.1m',
  'cost.alloc.16m',
  'cost.pipeline.cold',
  'cost.pipeline.cached',
  'cost.pipeline.uncached',
];

t.test('phases held until the observer answers; every check passes', async (t) => {
  const dir = await fsp.mkdtemp(path.join(os.tmpdir(), 'mdgpu-vkcost-'));
  t.teardown(() => fsp.rm(dir, { recursive: true, force: true }));
  const fifo = path.join(dir, 'sync');
  execFileSync('mkfifo', [fifo]);
  const native = nativeVulkan(kit);
  const child = spawn(native.prefix[0]!, [...native.prefix.slice(1), path.join(bins.libexec, 'vks-cost'), '--quiet', '--size', '300', '--iterations', '3'], {
    env: { ...process.env, ...native.env, VKSUITE_PHASE_SYNC: fifo },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stderr = '';
  child.stderr.on('data', (d: Buffer) => {
    stderr += d.toString();
  });
  // Opening the FIFO for writing waits for the program to open it for reading (before its
  // first phase line).
  const writer = fs.createWriteStream(fifo);
  const lines: string[] = [];
  /** Lines the program printed while a phase line was still unanswered. */
  const whileHeld: string[] = [];
  let held = false;
  const exited = new Promise<number | null>((resolve) => child.on('exit', resolve));
  for await (const line of readline.createInterface({ input: child.stdout })) {
    lines.push(line);
    if (held) whileHeld.push(line);
    if (line.startsWith('VKSUITE-PHASE ')) {
      held = true;
      // Answer late: nothing may come out of the program meanwhile.
      setTimeout(() => {
        held = false;
        writer.write('go\n');
      }, 50);
    }
  }
  const code = await exited;
  writer.end();
  t.equal(code, 0, `exit status\n${stderr.slice(-2000)}`);
  t.same(whileHeld, [], 'the program printed nothing while its phase line was unanswered');
  const phases = lines.filter((l) => l.startsWith('VKSUITE-PHASE ')).map((l) => /name=(\S+) state=(\S+)/.exec(l)!.slice(1).join(' '));
  t.same(
    phases,
    PHASES.flatMap((p) => [`${p} begin`, `${p} end`]),
    'every phase begins and ends, in order',
  );
  const result = parseVksuite(lines.join('\n'));
  t.same(
    result.checks.map((c) => c.name),
    CHECKS,
  );
  for (const c of result.checks) t.ok(c.ok && /^[0-9a-f]{16}$/.test(c.digest), `${c.name}: ${JSON.stringify(c.fields)}`);
  const submit = result.checks.find((c) => c.name === 'cost.submit');
  t.equal(submit?.fields.submits, '300', '--size: the number of batches');
  t.equal(result.checks.find((c) => c.name === 'cost.alloc.16m')?.fields.n, '3', '--iterations: allocations per size');
  t.equal(result.checks.find((c) => c.name === 'cost.pipeline.cold')?.fields.n, '3', '--iterations: pipelines per kind');
});

t.test('the runner: not in a plain run, run with --only', async (t) => {
  const list = execFileSync('sh', [bins.runner, '--list'], { encoding: 'utf8' }).split('\n');
  t.ok(list.includes('vks-cost'), '--list names it');
  const run = await runVksuiteNative(kit, bins, { only: 'cost', args: ['--size', '50', '--iterations', '1'] });
  t.equal(run.code, 0, run.stderr.slice(-2000));
  t.equal(run.summary?.programs, '1');
  t.same(
    run.checks.map((c) => c.name),
    CHECKS,
  );
});
