/**
 * `mdgpu kit --prune` on a scratch cache: older kits and guest builds go, the ones in use and
 * their side files stay, unrelated files stay, and nothing goes while a build holds a lock.
 */
import t, { type Test } from 'tap';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { pruneCache } from '../../src/kit/prune.js';

function scratch(t: Test): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'mdgpu-prune-'));
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  const tree = (name: string, bytes: number) => {
    fs.mkdirSync(path.join(dir, name, 'usr'), { recursive: true });
    fs.writeFileSync(path.join(dir, name, 'usr', 'blob'), Buffer.alloc(bytes));
  };
  tree('kit-aaaaaaaaaaaa', 3000); // an older recipe
  fs.writeFileSync(path.join(dir, 'kit-aaaaaaaaaaaa.kvm-probe.json'), '{}');
  tree('kit-bbbbbbbbbbbb', 5000); // in use
  fs.writeFileSync(path.join(dir, 'kit-bbbbbbbbbbbb.kvm-probe.json'), '{}');
  tree('guest-1111111111111111', 700); // older sources
  tree('guest-2222222222222222', 900); // in use
  tree('kit-cccccccccccc.tmp-999999', 100); // left by a killed build
  fs.writeFileSync(path.join(dir, 'notes.txt'), 'not ours');
  return dir;
}

t.test('removes older kits and guest builds, keeps the ones in use', async (t) => {
  const dir = scratch(t);
  const r = await pruneCache(dir, ['kit-bbbbbbbbbbbb', 'guest-2222222222222222']);
  t.same(r.removed, ['guest-1111111111111111', 'kit-aaaaaaaaaaaa', 'kit-aaaaaaaaaaaa.kvm-probe.json', 'kit-cccccccccccc.tmp-999999']);
  t.same(r.kept, ['guest-2222222222222222', 'kit-bbbbbbbbbbbb', 'kit-bbbbbbbbbbbb.kvm-probe.json']);
  t.ok(r.freedBytes >= 3000 + 700 + 100, `freed ${r.freedBytes} bytes`);
  t.same(fs.readdirSync(dir).sort(), ['guest-2222222222222222', 'kit-bbbbbbbbbbbb', 'kit-bbbbbbbbbbbb.kvm-probe.json', 'notes.txt']);
  t.same((await pruneCache(dir, ['kit-bbbbbbbbbbbb', 'guest-2222222222222222'])).removed, [], 'a second prune has nothing to do');
});

t.test("nothing is removed while a build holds a lock; a dead holder's lock does not count", async (t) => {
  const dir = scratch(t);
  fs.writeFileSync(path.join(dir, 'kit-aaaaaaaaaaaa.lock'), String(process.pid));
  await t.rejects(pruneCache(dir, ['kit-bbbbbbbbbbbb']), /build is running.*kit-aaaaaaaaaaaa\.lock/);
  t.ok(fs.existsSync(path.join(dir, 'kit-aaaaaaaaaaaa')), 'the locked kit is still there');
  fs.writeFileSync(path.join(dir, 'kit-aaaaaaaaaaaa.lock'), '999999999'); // no such process
  const r = await pruneCache(dir, ['kit-bbbbbbbbbbbb']);
  t.ok(r.removed.includes('kit-aaaaaaaaaaaa') && r.removed.includes('kit-aaaaaaaaaaaa.lock'), 'a stale lock goes with its kit');
});

t.test('a cache directory that does not exist', async (t) => {
  t.same(await pruneCache(path.join(os.tmpdir(), 'mdgpu-no-such-cache'), []), { removed: [], kept: [], freedBytes: 0 });
});
