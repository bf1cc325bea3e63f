/**
 * Runs the session fuzz target under Jazzer.js (libFuzzer), for the tap test's fixed budget or for
 * a longer local run:
 *
 *   npm run fuzz [-- seconds]   # default 300; new inputs go to the committed corpus
 *
 * Jazzer.js 4.0.0's prebuilt fuzzer needs glibc 2.38 and GLIBCXX_3.4.32; Debian 12 has 2.36. When
 * it does not load with the system's libraries, this runs Node under the guest kit's dynamic
 * loader and libraries (Debian 13, built and cached by the kit layer), the way the kit runs QEMU.
 */
import { spawn, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { ensureKit } from '../../src/kit/kit.js';

const here = path.dirname(fileURLToPath(import.meta.url));
/** The package root (build/test/helpers → ../../..). */
export const ROOT = path.resolve(here, '../../..');
export const TARGET = path.join(ROOT, 'build/test/helpers/fuzz-session-target.js');
export const CORPUS = path.join(ROOT, 'test/fuzz/corpus/session');
const CLI = path.join(ROOT, 'node_modules/@jazzer.js/core/dist/cli.js');

/** How to start a Node that can load the fuzzer addon. */
export async function fuzzerNode(): Promise<{ command: string; prefix: string[] }> {
  const probe = spawnSync(process.execPath, ['-e', "require('@jazzer.js/fuzzer')"], { cwd: ROOT, encoding: 'utf8' });
  if (probe.status === 0) return { command: process.execPath, prefix: [] };
  if (!/GLIBC|GLIBCXX/.test(probe.stderr)) throw new Error(`@jazzer.js/fuzzer does not load: ${probe.stderr}`);
  const kit = await ensureKit();
  const libs = [path.join(kit.root, 'usr/lib/x86_64-linux-gnu'), path.join(kit.root, 'lib/x86_64-linux-gnu')].join(':');
  return { command: path.join(kit.root, 'lib64/ld-linux-x86-64.so.2'), prefix: ['--library-path', libs, process.execPath] };
}

export interface FuzzRun {
  /** libFuzzer's -runs (inputs to try), or... */
  runs?: number;
  /** ...-max_total_time in seconds. */
  seconds?: number;
  /** Where new interesting inputs go (first corpus directory); the committed corpus is read too. */
  corpusOut: string;
  /** Where a crashing input is written. */
  artifacts: string;
  /** libFuzzer -seed (fixed in CI so a run is repeatable). */
  seed?: number;
}

/**
 * The environment without what a test runner injects into Node (tap's `--import` hooks and V8
 * coverage directory): the fuzzer's Node must run only the fuzzer.
 */
function cleanEnv(): NodeJS.ProcessEnv {
  const env = { ...process.env };
  for (const key of Object.keys(env)) {
    if (key === 'NODE_OPTIONS' || key === 'NODE_V8_COVERAGE' || key.startsWith('TAP') || key.startsWith('_TAPJS')) delete env[key];
  }
  return env;
}

export async function runFuzzer(run: FuzzRun): Promise<{ code: number | null; signal: NodeJS.Signals | null; output: string }> {
  const { command, prefix } = await fuzzerNode();
  fs.mkdirSync(run.corpusOut, { recursive: true });
  fs.mkdirSync(run.artifacts, { recursive: true });
  const corpora = path.resolve(run.corpusOut) === path.resolve(CORPUS) ? [CORPUS] : [run.corpusOut, CORPUS];
  const libFuzzer = [
    `-artifact_prefix=${run.artifacts}${path.sep}`,
    '-max_len=8192',
    ...(run.runs !== undefined ? [`-runs=${run.runs}`] : []),
    ...(run.seconds !== undefined ? [`-max_total_time=${run.seconds}`] : []),
    ...(run.seed !== undefined ? [`-seed=${run.seed}`] : []),
  ];
  // --timeout is per input; libFuzzer enforces it with SIGALRM, which under load was seen to
  // arrive after the last run and kill the process. A hang is caught by the caller's deadline.
  const args = [
    ...prefix,
    CLI,
    TARGET,
    ...corpora,
    '--sync',
    '--timeout',
    '600000',
    '-i',
    'build/src/',
    '-i',
    'build/test/helpers/fuzz-session-target',
    '--',
    ...libFuzzer,
  ];
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { cwd: ROOT, env: cleanEnv(), stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    child.stdout.setEncoding('utf8').on('data', (c: string) => (output += c));
    child.stderr.setEncoding('utf8').on('data', (c: string) => (output += c));
    child.on('error', reject);
    child.on('exit', (code, signal) => resolve({ code, signal, output }));
  });
}

if (process.argv[1] !== undefined && import.meta.url.endsWith(path.basename(process.argv[1]))) {
  const seconds = Number(process.argv[2] ?? 300);
  const artifacts = fs.mkdtempSync(path.join(os.tmpdir(), 'mdgpu-fuzz-'));
  const { code, output } = await runFuzzer({ seconds, corpusOut: CORPUS, artifacts });
  process.stdout.write(output.split('\n').slice(-25).join('\n'));
  process.stdout.write(`\nexit ${code}; crashing inputs (if any) in ${artifacts}\n`);
  process.exitCode = code ?? 1;
}
