/**
 * Coverage-guided fuzzing of the session dispatcher (Jazzer.js, libFuzzer) for a fixed budget:
 * the committed corpus (test/fuzz/corpus/session) is replayed, then a fixed number of mutated
 * inputs with a fixed seed. Fails if the fuzzer finds a crash (what counts as one:
 * test/helpers/fuzz-session-target.ts); longer runs are `npm run fuzz [-- seconds]`.
 *
 * Also replays every input that once crashed it (test/fuzz/regressions), in this process, so
 * a regression shows its stack directly.
 */
import t from 'tap';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fuzz } from '../helpers/fuzz-session-target.js';
import { CORPUS, ROOT, runFuzzer } from '../helpers/fuzz-runner.js';

/**
 * Inputs in all, the corpus included: ~2 s at the ~2,000 inputs a second of an idle core, ~10 s
 * on a loaded one (300 a second measured with a load average of 9 on 2 cores).
 */
const RUNS = 3000;
const REGRESSIONS = path.join(ROOT, 'test/fuzz/regressions');

t.test('the committed corpus and every past crash replay cleanly in-process', (t) => {
  const files = [CORPUS, REGRESSIONS].flatMap((dir) => (fs.existsSync(dir) ? fs.readdirSync(dir).map((f) => path.join(dir, f)) : []));
  t.ok(files.length > 20, `${files.length} inputs`);
  for (const file of files) {
    try {
      fuzz(fs.readFileSync(file));
    } catch (err) {
      t.fail(`${path.relative(ROOT, file)}: ${(err as Error).stack}`);
    }
  }
  t.end();
});

t.test(`Jazzer.js: the corpus, then mutated inputs, ${RUNS} in all, find no crash`, { timeout: 300_000 }, async (t) => {
  const scratch = fs.mkdtempSync(path.join(os.tmpdir(), 'mdgpu-fuzz-'));
  t.teardown(() => fs.rmSync(scratch, { recursive: true, force: true }));
  const { code, signal, output } = await runFuzzer({ runs: RUNS, seed: 1, corpusOut: path.join(scratch, 'new'), artifacts: path.join(scratch, 'artifacts') });
  const done = /#(\d+)\s+DONE\s+cov: (\d+)/.exec(output);
  const crashes = fs.existsSync(path.join(scratch, 'artifacts')) ? fs.readdirSync(path.join(scratch, 'artifacts')) : [];
  const tail = output.split('\n').slice(-30).join('\n');
  t.equal(code, 0, `the fuzzer exits 0${code === 0 ? '' : ` (${signal ?? code}):\n${tail}`}`);
  t.same(crashes, [], 'no crashing input');
  for (const crash of crashes) t.comment(`${crash}: ${fs.readFileSync(path.join(scratch, 'artifacts', crash)).toString('base64')}`);
  t.ok(done, `libFuzzer finished its runs${done ? `: ${done[1]} inputs, ${done[2]} coverage points` : `:\n${tail}`}`);
  t.ok(Number(done?.[2] ?? 0) > 500, 'and reached into the dispatcher and the device (coverage)');
});
