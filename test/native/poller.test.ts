import { spawnSync } from 'node:child_process';
import { openSync, closeSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import t from 'tap';
import type { PollerInstance } from '../../src/native/binding.js';
import { closeAtEnd, native, pair } from './fixtures/native.js';

const { Poller, POLL_READABLE, POLL_WRITABLE } = native;

/** Resolves with the first callback's (err, events); rejects after `ms`. */
function nextEvent(setup: (cb: (err: Error | null, events: number) => void) => void, ms = 2000) {
  return new Promise<{ err: Error | null; events: number }>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('no poll callback')), ms);
    setup((err, events) => {
      clearTimeout(timer);
      resolve({ err, events });
    });
  });
}

/** Lets a few event-loop turns (with their poll phases) pass. */
function turns(n = 5): Promise<void> {
  return new Promise((resolve) => {
    const step = (left: number) => (left === 0 ? resolve() : setImmediate(() => step(left - 1)));
    step(n);
  });
}

t.test('constants', (t) => {
  t.equal(POLL_READABLE, 1);
  t.equal(POLL_WRITABLE, 2);
  t.end();
});

t.test('a socket becomes readable when the peer sends', async (t) => {
  const [a, b] = pair(t);
  let poller: PollerInstance | undefined;
  let calls = 0;
  const got = nextEvent((cb) => {
    poller = new Poller(b, (err, events) => {
      calls++;
      cb(err, events);
    });
    poller.start(POLL_READABLE);
  });
  t.teardown(() => poller?.close());
  await turns();
  t.equal(calls, 0, 'no callback while nothing is readable');
  native.sendmsg(a, Uint8Array.of(1, 2), []);
  const { err, events } = await got;
  t.equal(err, null);
  t.equal(events, POLL_READABLE);
  poller!.close();
});

t.test('readiness is level-triggered: it repeats until the data is read', async (t) => {
  const [a, b] = pair(t);
  native.sendmsg(a, Uint8Array.of(1), []);
  let calls = 0;
  const p = new Poller(b, () => {
    calls++;
  });
  t.teardown(() => p.close());
  p.start(POLL_READABLE);
  await turns(4);
  t.ok(calls >= 2, `fired on several turns (${calls})`);
  native.recvmsg(b, new Uint8Array(1), 0, 1, 0);
  await turns(1);
  const after = calls;
  await turns(4);
  t.equal(calls, after, 'quiet once drained');
  p.close();
});

t.test('a socket with room is writable at once', async (t) => {
  const [a] = pair(t);
  let p: PollerInstance | undefined;
  const { err, events } = await nextEvent((cb) => {
    p = new Poller(a, cb);
    p.start(POLL_READABLE | POLL_WRITABLE);
  });
  p!.close();
  t.equal(err, null);
  t.equal(events, POLL_WRITABLE, 'writable, and not readable');
});

t.test('an eventfd is readable after eventfdWrite and the callback can read it', async (t) => {
  const efd = native.eventfd(0, 0);
  closeAtEnd(t, efd);
  const values: bigint[] = [];
  let p: PollerInstance | undefined;
  const got = nextEvent((cb) => {
    p = new Poller(efd, (err, events) => {
      values.push(native.eventfdRead(efd));
      cb(err, events);
    });
    p.start(POLL_READABLE);
  });
  native.eventfdWrite(efd, 3);
  const { events } = await got;
  t.equal(events, POLL_READABLE);
  t.same(values, [3n]);
  p!.close();
});

t.test('stop pauses callbacks and start resumes them', async (t) => {
  const [a, b] = pair(t);
  let calls = 0;
  const p = new Poller(b, () => {
    calls++;
  });
  t.teardown(() => p.close());
  p.start(POLL_READABLE);
  p.stop();
  native.sendmsg(a, Uint8Array.of(1), []);
  await turns();
  t.equal(calls, 0, 'nothing while stopped');
  p.start(POLL_READABLE);
  await turns();
  t.ok(calls > 0, 'fires again after start');
  p.close();
});

t.test('close stops callbacks, is idempotent, and a closed poller cannot start', async (t) => {
  const [a, b] = pair(t);
  let calls = 0;
  const p = new Poller(b, () => {
    calls++;
  });
  p.start(POLL_READABLE);
  p.close();
  native.sendmsg(a, Uint8Array.of(1), []);
  await turns();
  t.equal(calls, 0, 'no callback after close');
  t.doesNotThrow(() => p.close(), 'close twice is fine');
  t.doesNotThrow(() => p.stop(), 'stop after close is a no-op');
  t.throws(() => p.start(POLL_READABLE), { code: 'ERR_INVALID_STATE' });
});

t.test('close from inside the callback stops further callbacks', async (t) => {
  const [a, b] = pair(t);
  native.sendmsg(a, Uint8Array.of(1), []); // stays unread: level-triggered would repeat
  let calls = 0;
  const p = new Poller(b, () => {
    calls++;
    p.close();
  });
  p.start(POLL_READABLE);
  await turns(6);
  t.equal(calls, 1);
});

t.test('promise jobs queued by a callback run before the next callback (MakeCallback)', async (t) => {
  const [a1, b1] = pair(t);
  const [a2, b2] = pair(t);
  native.sendmsg(a1, Uint8Array.of(1), []);
  native.sendmsg(a2, Uint8Array.of(1), []);
  const order: string[] = [];
  const pollers: PollerInstance[] = [];
  await new Promise<void>((resolve) => {
    const onReady = (name: string) => () => {
      if (order.some((o) => o === name)) return;
      order.push(name);
      void Promise.resolve().then(() => {
        order.push(`${name} job`);
        if (order.length === 4) resolve();
      });
    };
    pollers.push(new Poller(b1, onReady('one')), new Poller(b2, onReady('two')));
    for (const p of pollers) p.start(POLL_READABLE);
  });
  for (const p of pollers) p.close();
  t.equal(order.length, 4);
  t.equal(order[1], `${order[0]} job`, `the first callback's job ran before the second callback: ${order.join(', ')}`);
});

t.test('Poller rejects fds it cannot watch', (t) => {
  const path = fileURLToPath(import.meta.url);
  const file = openSync(path, 'r');
  t.teardown(() => closeSync(file));
  t.throws(() => new Poller(file, () => {}), { code: 'EPERM', syscall: 'uv_poll_init' }, 'regular file');
  const [a, b] = native.socketpair();
  native.close(b);
  const p = new Poller(a, () => {});
  native.close(a);
  t.throws(() => p.start(POLL_READABLE), { code: 'EBADF' }, 'fd closed before start: an error, not a libuv abort');
  p.close();
  t.end();
});

t.test('start checks its events mask', (t) => {
  const [a] = pair(t);
  const p = new Poller(a, () => {});
  t.teardown(() => p.close());
  t.throws(() => p.start(0), RangeError);
  t.throws(() => p.start(4), RangeError);
  t.throws(() => p.start('1' as unknown as number), TypeError);
  t.end();
});

// Child processes: what keeps the event loop alive, GC while polling, and throwing callbacks.
const bindingUrl = new URL('../../src/native/binding.js', import.meta.url).href;

function runChild(body: string, timeoutMs = 3000, args: string[] = []) {
  const script = `import { loadNative } from ${JSON.stringify(bindingUrl)};
const native = loadNative();
const { Poller, POLL_READABLE } = native;
${body}`;
  return spawnSync(process.execPath, [...args, '--input-type=module', '-e', script], {
    timeout: timeoutMs,
    encoding: 'utf8',
  });
}

t.test('a closed poller lets the process exit', (t) => {
  const r = runChild(`
const [a, b] = native.socketpair();
const p = new Poller(b, () => {});
p.start(POLL_READABLE);
p.close();
native.close(a); native.close(b);
console.log('done');`);
  t.equal(r.signal, null, 'exited by itself');
  t.equal(r.status, 0, r.stderr);
  t.equal(r.stdout.trim(), 'done');
  t.end();
});

t.test('a stopped poller lets the process exit', (t) => {
  const r = runChild(`
const [a, b] = native.socketpair();
const p = new Poller(b, () => {});
p.start(POLL_READABLE);
p.stop();`);
  t.equal(r.signal, null);
  t.equal(r.status, 0, r.stderr);
  t.end();
});

t.test('control: an active poller keeps the process alive', (t) => {
  const r = runChild(
    `
const [a, b] = native.socketpair();
new Poller(b, () => {}).start(POLL_READABLE);`,
    300,
  );
  t.equal(r.signal, 'SIGTERM', 'still running when the timeout killed it');
  t.end();
});

t.test('an unreferenced poller lets the process exit, and still fires while something else keeps it alive', (t) => {
  const r = runChild(`
const [a, b] = native.socketpair();
const p = new Poller(b, () => { console.log('fired'); p.close(); clearTimeout(keep); });
p.start(POLL_READABLE);
p.unref();
p.ref();
p.unref();
const keep = setTimeout(() => {}, 10000);
native.sendmsg(a, Uint8Array.of(1), []);`);
  t.equal(r.signal, null, 'exited by itself');
  t.equal(r.status, 0, r.stderr);
  t.equal(r.stdout.trim(), 'fired');
  const idle = runChild(`
const [a, b] = native.socketpair();
const p = new Poller(b, () => {});
p.start(POLL_READABLE);
p.unref();`);
  t.equal(idle.signal, null, 'an idle unreferenced poller does not hold the process');
  t.equal(idle.status, 0, idle.stderr);
  const held = runChild(
    `
const [a, b] = native.socketpair();
const p = new Poller(b, () => {});
p.start(POLL_READABLE);
p.unref();
p.ref();`,
    300,
  );
  t.equal(held.signal, 'SIGTERM', 'referenced again, it holds the process');
  t.end();
});

t.test('a started poller is not collected while active, even with no JS reference', (t) => {
  const r = runChild(
    `
const [a, b] = native.socketpair();
(() => {
  new Poller(b, function () {
    console.log('fired');
    this.close();
  }).start(POLL_READABLE);
})();
for (let i = 0; i < 5; i++) { globalThis.gc(); await new Promise((r) => setImmediate(r)); }
native.sendmsg(a, Uint8Array.of(1), []);`,
    3000,
    ['--expose-gc'],
  );
  t.equal(r.status, 0, r.stderr);
  t.equal(r.stdout.trim(), 'fired');
  t.end();
});

t.test('an exception in a callback is an uncaught exception, not a crash', (t) => {
  const r = runChild(`
process.on('uncaughtException', (err) => { console.log('caught', err.message); p.close(); });
const [a, b] = native.socketpair();
const p = new Poller(b, () => { throw new Error('boom'); });
p.start(POLL_READABLE);
native.sendmsg(a, Uint8Array.of(1), []);`);
  t.equal(r.signal, null);
  t.equal(r.status, 0, r.stderr);
  t.equal(r.stdout.trim(), 'caught boom');
  t.end();
});
