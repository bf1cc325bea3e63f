import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { ADDON_PATH, findPackageRoot, isErrno, loadNative, loadNativeFrom } from '../../src/native/binding.js';

t.test('loadNative loads once and caches', (t) => {
  const a = loadNative();
  t.equal(loadNative(), a);
  t.type(a.recvmsg, 'function');
  t.type(a.Poller, 'function');
  t.end();
});

t.test('findPackageRoot walks up to the nearest package.json', (t) => {
  const root = mkdtempSync(join(tmpdir(), 'mdgpu-root-'));
  t.teardown(() => rmSync(root, { recursive: true, force: true }));
  writeFileSync(join(root, 'package.json'), '{}');
  const deep = join(root, 'build', 'src', 'native');
  mkdirSync(deep, { recursive: true });
  t.equal(findPackageRoot(deep), root);
  t.equal(findPackageRoot(root), root);
  t.throws(() => findPackageRoot('/proc/self'), /No package.json at or above/);
  t.end();
});

t.test('a missing addon says how to build it', (t) => {
  const root = mkdtempSync(join(tmpdir(), 'mdgpu-root-'));
  t.teardown(() => rmSync(root, { recursive: true, force: true }));
  writeFileSync(join(root, 'package.json'), '{}');
  const file = join(root, ADDON_PATH);
  mkdirSync(join(root, 'native'));
  t.throws(() => loadNativeFrom(file), {
    message: new RegExp(`not built: ${file} is missing; run \`npm install\` \\(or \`npx node-gyp rebuild --directory native\`\\) in ${root}`),
  });
  t.end();
});

t.test('an addon that fails to load or lacks exports says to rebuild', (t) => {
  const root = mkdtempSync(join(tmpdir(), 'mdgpu-root-'));
  t.teardown(() => rmSync(root, { recursive: true, force: true }));
  writeFileSync(join(root, 'package.json'), '{}');
  const broken = join(root, 'broken.node');
  writeFileSync(broken, 'not an ELF file');
  t.throws(() => loadNativeFrom(broken), { message: /failed to load .*npm install/, cause: Error });
  // A CommonJS module standing in for an old build that lacks most exports.
  const stale = join(root, 'stale.cjs');
  writeFileSync(stale, 'module.exports = { close() {} };');
  t.throws(() => loadNativeFrom(stale), { message: /is stale \(missing listenUnix, accept, .*offsetofs, sdNotify, adoptSocket\); run `npm install`/ });
  t.end();
});

t.test('isErrno recognises syscall errors, optionally by code', (t) => {
  let err: unknown;
  try {
    loadNative().close(2 ** 31 - 1);
  } catch (e) {
    err = e;
  }
  t.ok(isErrno(err));
  t.ok(isErrno(err, 'EBADF'));
  t.notOk(isErrno(err, 'EAGAIN'));
  t.notOk(isErrno(new Error('plain')));
  t.notOk(isErrno({ code: 'EBADF', errno: -9, syscall: 'close' }), 'not an Error');
  t.notOk(isErrno(new TypeError('x')));
  t.notOk(isErrno(undefined));
  t.end();
});
