/**
 * `bash scripts/setup.sh` as a new user runs it: on a fresh Debian 13 (trixie) root with only
 * Debian's `nodejs` and `npm` (test/helpers/setup-root.ts, built with mmdebstrap from the host's
 * mirror and cached), as root, in a chroot, with a HOME that has no npm configuration — so the
 * addon must build against Node's headers from Debian's archive (libnode-dev), never headers
 * node-gyp downloads. Setup must install its Debian packages and the npm dependencies, build the
 * native addon, compile TypeScript, build the host driver and its SPIR-V kernels, and pass its
 * guest-kit step.
 *
 * The kit step finds the kit this machine already built (bind-mounted read-only into the root's
 * cache): building one inside the chroot would nest mmdebstrap in a chroot and cost minutes and
 * ~800 MB more, and the kit's build is tested elsewhere (test/kit/kit-build.test.ts; every real
 * guest test runs on a real kit). Downloads are kept between runs (apt's .debs, npm's cache), so
 * only the first run fetches them. Needs root (mmdebstrap, mounts, chroot): without it this fails.
 */
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import t from 'tap';
import { ensureKit } from '../../src/kit/kit.js';
import { ensureSetupRoot, openOverlay, runTimed, type TimedLine } from '../helpers/setup-root.js';

const REPO = fileURLToPath(new URL('../../../', import.meta.url));
/** Where the repository goes in the root, and the root's cache directory. */
const SRC = 'src/mdgpu';
const CACHE = 'var/cache/mdgpu';

/** The repository as a clean clone would have it: tracked and new files, nothing ignored (no node_modules, no build/). */
function copyRepository(to: string): number {
  const files = execFileSync('git', ['ls-files', '-z', '--cached', '--others', '--exclude-standard'], { cwd: REPO, encoding: 'utf8' })
    .split('\0')
    .filter((f) => f.length > 0 && fs.existsSync(path.join(REPO, f)));
  for (const f of files) {
    fs.mkdirSync(path.dirname(path.join(to, f)), { recursive: true });
    fs.copyFileSync(path.join(REPO, f), path.join(to, f));
    fs.chmodSync(path.join(to, f), fs.statSync(path.join(REPO, f)).mode);
  }
  return files.length;
}

t.test('scripts/setup.sh on a fresh Debian 13 root, with no npm configuration', async (t) => {
  t.equal(process.getuid?.(), 0, 'runs as root (mmdebstrap, overlay mounts, chroot)');
  const log = (l: string) => t.comment(l);
  const kit = await ensureKit({ log });
  const t0 = performance.now();
  const root = await ensureSetupRoot({ log });
  t.comment(
    `fresh root: ${root.dir} (${root.info.packages.nodejs ? `nodejs ${root.info.packages.nodejs}` : 'no nodejs?'}, npm ${root.info.packages.npm}), ready in ${((performance.now() - t0) / 1000).toFixed(1)} s`,
  );
  t.match(root.info.packages.nodejs, /^20\./, "Debian 13's nodejs");
  t.ok(root.info.packages.npm, "Debian's npm");

  const overlay = await openOverlay(root, os.tmpdir(), (l) => t.comment(l));
  t.teardown(() => overlay.close());
  const home = path.join(overlay.root, 'root');
  t.same(
    fs.readdirSync(home).filter((f) => f !== '.npm'),
    fs.readdirSync(path.join(root.tree, 'root')).filter((f) => f !== '.npm'),
    'HOME is the fresh root',
  );
  for (const f of ['.npmrc', '.config/npm']) t.notOk(fs.existsSync(path.join(home, f)), `no ${f} in HOME`);
  for (const f of ['etc/npmrc', 'usr/etc/npmrc']) t.notOk(fs.existsSync(path.join(overlay.root, f)), `no global npm config (/${f})`);
  const copied = copyRepository(path.join(overlay.root, SRC));
  t.ok(copied > 100, `the repository copied in (${copied} files)`);
  await overlay.bind(kit.root, path.join(CACHE, path.basename(kit.root)), { readOnly: true });

  // The machine's own trust store (its local CAs), as on the host: not part of setup.
  const trust = await runTimed(overlay.root, '/', 'update-ca-certificates', {});
  t.equal(trust.code, 0, 'the root trusts what the host trusts');

  const lines: TimedLine[] = [];
  const run = await runTimed(overlay.root, `/${SRC}`, 'bash scripts/setup.sh', { MDGPU_CACHE_DIR: `/${CACHE}` }, (l) => lines.push(l));
  const tail = lines
    .slice(-40)
    .map((l) => `  | ${l.line}`)
    .join('\n');
  t.equal(run.code, 0, `setup.sh succeeded in ${run.seconds.toFixed(0)} s${run.code === 0 ? '' : `; last output:\n${tail}`}`);
  const steps = lines.filter((l) => l.line.startsWith('setup: '));
  for (const [i, s] of steps.entries()) t.comment(`+${s.at.toFixed(1)} s ${s.line} (${((steps[i + 1]?.at ?? run.seconds) - s.at).toFixed(1)} s)`);
  for (const step of ['installing Debian packages', 'installing npm dependencies', 'compiling TypeScript', 'building the host driver', 'guest kit']) {
    t.ok(
      steps.some((s) => s.line.startsWith(`setup: ${step}`)),
      `setup ran its step: ${step}`,
    );
  }
  const headers = await runTimed(overlay.root, '/', 'dpkg -S /usr/include/node/node_api.h', {});
  t.match(headers.lines[0]?.line ?? '', /^libnode-dev: /, "the addon's Node headers are Debian's (libnode-dev, which Debian's npm pulls in through node-gyp)");
  t.notOk(fs.existsSync(path.join(home, '.cache/node-gyp')), 'node-gyp downloaded no headers (no ~/.cache/node-gyp)');
  t.notOk(fs.existsSync(path.join(home, '.npmrc')), 'and setup wrote no npm config');
  const src = path.join(overlay.root, SRC);
  for (const f of [
    'native/build/Release/mdgpu_native.node',
    'build/src/cli/main.js',
    'build/test/setup/setup.test.js',
    'host-driver/build/libmdgpu-host.so',
    'guest-driver/kernels/build/saxpy.spv',
  ]) {
    t.ok(fs.existsSync(path.join(src, f)), `built ${f}`);
  }
  t.ok(
    lines.some((l) => l.line === `kit      /${CACHE}/${path.basename(kit.root)}`),
    "the kit step found this machine's kit",
  );

  // What was built works in the root: the addon's syscalls, the CLI, Vulkan through the host driver.
  const check = await runTimed(
    overlay.root,
    `/${SRC}`,
    [
      `node --input-type=module -e "const n = (await import('./build/src/native/binding.js')).loadNative(); const fd = n.memfdCreate('setup', 0); n.ftruncate(fd, 4096); console.log('addon ok', n.fstatSize(fd))"`,
      'node bin/mdgpu.js kit --root',
      `node --input-type=module -e "const h = await import('./build/src/backend/host-driver.js'); console.log('devices', h.listDevices().map((d) => d.name).join(', '))"`,
    ].join(' && '),
    { MDGPU_CACHE_DIR: `/${CACHE}` },
  );
  const out = check.lines.map((l) => l.line);
  t.equal(check.code, 0, `the build runs in the root: ${out.join(' | ')}`);
  t.ok(out.includes('addon ok 4096'), 'the addon makes a memfd');
  t.ok(out.includes(`/${CACHE}/${path.basename(kit.root)}`), '`mdgpu kit --root` names the kit');
  t.match(out.find((l) => l.startsWith('devices ')) ?? '', /llvmpipe|lavapipe/i, "the host driver finds Vulkan (Debian's lavapipe)");
});
