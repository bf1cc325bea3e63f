/**
 * parentDeathSignal (prctl PR_SET_PDEATHSIG): a process that armed it dies with its parent, even
 * when the parent is SIGKILLed and the child's own event loop is blocked (so that it could not
 * notice a closed IPC channel). The compute worker relies on it (src/backend/isolated-worker.ts).
 */
import { spawn } from 'node:child_process';
import { constants } from 'node:os';
import t from 'tap';
import { native } from './fixtures/native.js';

const bindingUrl = new URL('../../src/native/binding.js', import.meta.url).href;

const alive = (pid: number) => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

t.test('arguments', (t) => {
  t.throws(() => (native.parentDeathSignal as unknown as () => number)(), { code: 'ERR_MISSING_ARGS' });
  t.throws(() => native.parentDeathSignal(65), { code: 'ERR_OUT_OF_RANGE' });
  t.throws(() => native.parentDeathSignal(-1), { code: 'ERR_OUT_OF_RANGE' });
  t.end();
});

t.test('returns the parent pid, read after arming', (t) => {
  // Armed here with 0 (no signal): this test process must not die with tap.
  t.equal(native.parentDeathSignal(0), process.ppid);
  t.end();
});

t.test('a child with a blocked event loop dies when its parent is SIGKILLed', async (t) => {
  // The parent starts the child, prints its pid, and waits; the child arms SIGKILL and then
  // blocks its event loop for a minute.
  const child = `
import { loadNative } from ${JSON.stringify(bindingUrl)};
const ppid = loadNative().parentDeathSignal(${constants.signals.SIGKILL});
console.log(String(ppid));
Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 60000);`;
  const parent = `
import { spawn } from 'node:child_process';
const c = spawn(process.execPath, ['--input-type=module', '-e', ${JSON.stringify(child)}], { stdio: ['ignore', 'pipe', 'inherit'] });
c.stdout.once('data', (d) => console.log(c.pid + ' ' + String(d).trim()));
setInterval(() => {}, 1000);`;
  const p = spawn(process.execPath, ['--input-type=module', '-e', parent], { stdio: ['ignore', 'pipe', 'inherit'] });
  const line = await new Promise<string>((resolve, reject) => {
    p.stdout.once('data', (d: Buffer) => resolve(String(d).trim()));
    p.once('exit', () => reject(new Error('the parent exited early')));
  });
  const [pid, armedWith] = line.split(' ').map(Number);
  t.equal(armedWith, p.pid, 'the child armed the signal while its parent lived');
  t.ok(alive(pid!), `the child ${pid} runs`);
  p.kill('SIGKILL');
  const deadline = Date.now() + 30_000;
  while (alive(pid!) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
  t.notOk(alive(pid!), 'and died with its parent, its event loop blocked all the while');
});
