/**
 * spawnQemu's deadline handling, with a shell script standing in for QEMU: a QEMU that
 * pauses after a KVM internal error, one that ignores SIGTERM, one that cannot start.
 */
import t from 'tap';
import { KVM_INTERNAL_ERROR, spawnQemu } from '../../src/kit/qemu.js';

/** A "kit" whose QEMU is `sh -c script`. */
const fakeKit = (script: string) => ({ qemu: { command: '/bin/sh', args: ['-c', script, 'fake-qemu'], env: { FAKE_ENV: 'from-kit' } } });

t.test('a KVM internal error on stderr gets QEMU killed at once', async (t) => {
  const q = spawnQemu(fakeKit('echo "KVM internal error. Suberror: 1" >&2; echo "emulation failure" >&2; exec sleep 60'), [], { timeoutMs: 60_000 });
  const r = await q.exited;
  t.equal(r.killedFor, 'KVM internal error');
  t.equal(r.timedOut, false);
  t.equal(r.signal, 'SIGTERM');
  t.match(r.stderr, /emulation failure/, 'the whole dump is kept');
  t.match('KVM internal error. Suberror: 1', KVM_INTERNAL_ERROR);
});

t.test('killOnStderr: null disables the early kill; the deadline still applies', async (t) => {
  const q = spawnQemu(fakeKit('echo "KVM internal error" >&2; exec sleep 60'), [], { timeoutMs: 500, killOnStderr: null });
  const r = await q.exited;
  t.equal(r.killedFor, undefined);
  t.equal(r.timedOut, true);
});

t.test('a QEMU that ignores SIGTERM is SIGKILLed after the grace period', async (t) => {
  let out = '';
  const q = spawnQemu(fakeKit('trap "" TERM; echo "ready $FAKE_ENV $1"; while :; do sleep 0.1; done'), ['arg1'], {
    timeoutMs: 60_000,
    onStdout: (c) => (out += c),
  });
  while (!out.includes('ready')) await new Promise((r) => setTimeout(r, 20));
  t.equal(out, 'ready from-kit arg1\n', 'kit env and args reach the process');
  const r = await q.kill(300);
  t.equal(r.signal, 'SIGKILL');
  t.equal(r.timedOut, false);
  t.same(await q.kill(), r, 'killing an exited QEMU returns the same exit');
});

t.test('a QEMU that cannot be spawned resolves with the reason', async (t) => {
  const q = spawnQemu({ qemu: { command: '/nonexistent/ld.so', args: [], env: {} } }, [], { timeoutMs: 5000 });
  const r = await q.exited;
  t.equal(r.code, null);
  t.match(r.stderr, /spawn failed: .*ENOENT/);
});

t.test('exit code and stderr are reported', async (t) => {
  const r = await spawnQemu(fakeKit('echo oops >&2; exit 3'), [], { timeoutMs: 5000 }).exited;
  t.equal(r.code, 3);
  t.equal(r.stderr, 'oops\n');
  t.type(r.durationMs, 'number');
});
