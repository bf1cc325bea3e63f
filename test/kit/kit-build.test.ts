/**
 * The kit's logic without a real build: recipe hashing, cache location, mirror discovery,
 * the mmdebstrap command line, and ensureKit's build/verify/rename/lock protocol driven by
 * a fake mmdebstrap that lays out a minimal tree with a fake QEMU "loader".
 */
import t from 'tap';
import * as fs from 'node:fs';
import * as fsp from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import { hostMirror, parseDeb822Sources, parseOneLineSources, pickDebianMirror, suiteKeyrings } from '../../src/kit/apt-sources.js';
import { cacheDir } from '../../src/kit/cache.js';
import { ensureKit, KIT_RECIPE, kitDir, recipeHash } from '../../src/kit/kit.js';
import { describeKit, type KitRecipe, kitQemu, loadKit } from '../../src/kit/kit-tree.js';
import { removeTree } from '../../src/kit/locks.js';
import { dpkgVersions, mmdebstrapArgs } from '../../src/kit/mmdebstrap.js';
import { parseQemuVersion, qemuAtLeast } from '../../src/kit/qemu.js';

t.test('recipe hash: 12 hex digits, stable, sensitive to the recipe', async (t) => {
  const h = recipeHash();
  t.match(h, /^[0-9a-f]{12}$/);
  t.equal(recipeHash(KIT_RECIPE), h);
  t.not(recipeHash({ ...KIT_RECIPE, include: [...KIT_RECIPE.include, 'strace'] }), h);
  t.equal(path.basename(kitDir(KIT_RECIPE, '/c')), `kit-${h}`);
  t.ok(KIT_RECIPE.backports.includes('qemu-system-x86'), 'QEMU comes from backports');
  t.ok(KIT_RECIPE.sources.includes('trixie-backports main'));
});

t.test('cache dir precedence: MDGPU_CACHE_DIR, XDG_CACHE_HOME, HOME', async (t) => {
  t.equal(cacheDir({ MDGPU_CACHE_DIR: '/a', XDG_CACHE_HOME: '/b', HOME: '/h' }), '/a');
  t.equal(cacheDir({ XDG_CACHE_HOME: '/b', HOME: '/h' }), '/b/mdgpu');
  t.equal(cacheDir({ HOME: '/h' }), '/h/.cache/mdgpu');
  t.equal(cacheDir({}), path.join(os.homedir(), '.cache', 'mdgpu'));
});

t.test('apt sources parsing and mirror choice', async (t) => {
  const deb822 = `Types: deb
# http://snapshot.example/archive/debian/20250520T000000Z
URIs: http://mirror.example/debian/
Suites: bookworm bookworm-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: http://mirror.example/debian-security
Suites: bookworm-security
Components: main

Types: deb-src
URIs: http://src.example/debian
Suites: bookworm
Components: main

Types: deb
Enabled: no
URIs: http://disabled.example/debian
Suites: bookworm
Components: main
`;
  const s = parseDeb822Sources(deb822, 'x.sources');
  t.same(
    s.map((x) => x.uri),
    ['http://mirror.example/debian/', 'http://mirror.example/debian-security'],
  );
  t.same(s[0]!.suites, ['bookworm', 'bookworm-updates']);
  t.equal(pickDebianMirror(s), 'http://mirror.example/debian');
  const folded = parseDeb822Sources('Types: deb\nURIs: http://a.example/debian\n http://b.example/debian\nSuites: trixie\nComponents: main contrib\n');
  t.same(
    folded.map((x) => x.uri),
    ['http://a.example/debian', 'http://b.example/debian'],
    'continuation lines',
  );

  const oneLine = parseOneLineSources(`# comment
deb [signed-by=/k.gpg arch=amd64] http://ftp.example/debian bookworm main contrib
deb-src http://ftp.example/debian bookworm main
deb http://security.example/debian-security bookworm-security main
deb https://apt.thirdparty.example/node nodistro main
`);
  t.equal(oneLine.length, 3);
  t.same(oneLine[0], { uri: 'http://ftp.example/debian', suites: ['bookworm'], components: ['main', 'contrib'], file: '' });
  t.equal(pickDebianMirror(oneLine), 'http://ftp.example/debian', 'the /debian URI wins over third-party repos');
  t.equal(pickDebianMirror([{ uri: 'http://proxy:3142/deb', suites: ['trixie'], components: ['main'], file: '' }]), 'http://proxy:3142/deb');
  t.equal(pickDebianMirror([]), undefined);
});

t.test('hostMirror reads /etc/apt, honours MDGPU_APT_MIRROR, explains failure', async (t) => {
  const etc = await fsp.mkdtemp(path.join(os.tmpdir(), 'mdgpu-etcapt-'));
  t.teardown(() => fsp.rm(etc, { recursive: true, force: true }));
  await t.rejects(hostMirror({}, etc), /No Debian mirror found.*MDGPU_APT_MIRROR/);
  await fsp.mkdir(path.join(etc, 'sources.list.d'));
  await fsp.writeFile(path.join(etc, 'sources.list.d', 'a.list.disabled'), 'deb http://no.example/debian bookworm main\n');
  await fsp.writeFile(path.join(etc, 'sources.list.d', 'n.list'), 'deb https://nodesource.example/node nodistro main\n');
  await fsp.writeFile(path.join(etc, 'sources.list'), 'deb http://legacy.example/debian bookworm main\n');
  t.equal(await hostMirror({}, etc), 'http://legacy.example/debian');
  await fsp.writeFile(path.join(etc, 'sources.list.d', 'debian.sources'), 'Types: deb\nURIs: http://d822.example/debian\nSuites: trixie\nComponents: main\n');
  t.equal(await hostMirror({}, etc), 'http://d822.example/debian', 'sources.list.d comes first');
  t.equal(await hostMirror({ MDGPU_APT_MIRROR: 'http://override.example/debian/' }, etc), 'http://override.example/debian');
  t.match(await hostMirror(), /^https?:\/\//, 'this host has a mirror configured');
});

t.test('keyrings that can verify a suite', async (t) => {
  const d = await fsp.mkdtemp(path.join(os.tmpdir(), 'mdgpu-keys-'));
  t.teardown(() => fsp.rm(d, { recursive: true, force: true }));
  await fsp.writeFile(path.join(d, 'debian-archive-trixie-stable.gpg'), '');
  await fsp.writeFile(path.join(d, 'debian-archive-bookworm-stable.asc'), '');
  await fsp.writeFile(path.join(d, 'trixie-notes.txt'), '');
  t.same(await suiteKeyrings('trixie', [d, path.join(d, 'missing')]), [path.join(d, 'debian-archive-trixie-stable.gpg')]);
  t.same(await suiteKeyrings('forky', [d]), []);
  t.ok((await suiteKeyrings('trixie')).length > 0, 'the host keyring has trixie keys (debian-archive-keyring)');
});

t.test('mmdebstrap command line', async (t) => {
  const a = mmdebstrapArgs(KIT_RECIPE, 'http://m.example/debian', '/tmp/x', '/k.gpg');
  t.ok(a.includes('--variant=apt'));
  t.ok(a.includes('--mode=root'));
  t.ok(a.includes('--keyring=/k.gpg'));
  t.ok(a.includes(`--include=${KIT_RECIPE.include.join(',')}`));
  t.ok(a.includes('--dpkgopt=path-exclude=/usr/share/man/*'));
  const hook = a.find((x) => x.startsWith('--customize-hook='))!;
  t.match(hook, /apt-get install -y -o APT::Install-Recommends=false -t trixie-backports qemu-system-x86$/);
  t.same(a.slice(-4), ['trixie', '/tmp/x', 'deb http://m.example/debian trixie main', 'deb http://m.example/debian trixie-backports main']);
  t.notOk(mmdebstrapArgs({ ...KIT_RECIPE, backports: [] }, 'http://m', '/t').some((x) => x.startsWith('--customize-hook')));
  t.notOk(mmdebstrapArgs(KIT_RECIPE, 'http://m', '/t').some((x) => x.startsWith('--keyring')));
});

t.test('QEMU version parsing', async (t) => {
  const v = parseQemuVersion('QEMU emulator version 11.1.3 (Debian 1:11.1.3+ds-1~bpo13+1)\nCopyright (c) 2003-2026\n');
  t.equal(v, '11.1.3 (Debian 1:11.1.3+ds-1~bpo13+1)');
  t.equal(parseQemuVersion('QEMU emulator version 10.1.0\n'), '10.1.0');
  t.throws(() => parseQemuVersion('something else'), /Unrecognised QEMU version/);
  t.ok(qemuAtLeast(v, 10, 1));
  t.ok(qemuAtLeast('10.1.0', 10, 1));
  t.notOk(qemuAtLeast('10.0.13', 10, 1));
  t.notOk(qemuAtLeast('7.2.0', 10, 1));
  t.notOk(qemuAtLeast('garbage', 10, 1));
});

t.test('kitQemu: the kit loader, library path, firmware paths and module dir', async (t) => {
  const q = kitQemu('/K');
  t.equal(q.command, '/K/lib64/ld-linux-x86-64.so.2');
  t.same(q.args, [
    '--library-path',
    '/K/usr/lib/x86_64-linux-gnu:/K/lib/x86_64-linux-gnu',
    '/K/usr/bin/qemu-system-x86_64',
    '-L',
    '/K/usr/share/qemu',
    '-L',
    '/K/usr/share/seabios',
    '-L',
    '/K/usr/lib/ipxe/qemu',
  ]);
  t.same(q.env, { QEMU_MODULE_DIR: '/K/usr/lib/x86_64-linux-gnu/qemu' });
});

const FAKE_MMDEBSTRAP = `#!/bin/sh
# A stand-in for mmdebstrap: lays out the files a kit must have.
prev=""
for a in "$@"; do
	if [ "$prev" = "trixie" ]; then target="$a"; fi
	prev="$a"
done
echo "$@" >> "$FAKE_LOG"
echo "I: fake mmdebstrap into $target" >&2
echo "progress on stdout"
if [ -n "$FAKE_FAIL" ]; then mkdir -p "$target/proc"; echo "E: NO_PUBKEY 0123456789ABCDEF" >&2; exit 100; fi
mkdir -p "$target/usr/lib/modules/6.1.0-fake" "$target/boot" "$target/usr/src/linux-headers-6.1.0-fake" \\
	"$target/usr/bin" "$target/lib64" "$target/var/lib/dpkg"
echo kernel > "$target/boot/vmlinuz-6.1.0-fake"
echo initrd > "$target/boot/initrd.img-6.1.0-fake"
echo busybox > "$target/usr/bin/busybox"
cat > "$target/lib64/ld-linux-x86-64.so.2" <<'EOF'
#!/bin/sh
case "$*" in
*--version*) echo "QEMU emulator version \${FAKE_QEMU_VERSION:-11.1.3} (fake)";;
*vfio-user-pci,help*) echo "vfio-user-pci options:"; [ -z "$FAKE_NO_SOCKET" ] && echo "  socket=<VFIOUserSocket>";;
esac
exit 0
EOF
chmod +x "$target/lib64/ld-linux-x86-64.so.2"
printf 'Package: qemu-system-x86\\nStatus: install ok installed\\nVersion: 1:11.1.3+fake\\n\\nPackage: gcc\\nStatus: deinstall ok config-files\\nVersion: 14\\n\\n' > "$target/var/lib/dpkg/status"
`;

t.test('ensureKit builds through a temp dir, verifies, records kit.json and reuses it', async (t) => {
  const dir = await fsp.mkdtemp(path.join(os.tmpdir(), 'mdgpu-kitcache-'));
  t.teardown(() => fsp.rm(dir, { recursive: true, force: true }));
  const fake = path.join(dir, 'fake-mmdebstrap');
  await fsp.writeFile(fake, FAKE_MMDEBSTRAP, { mode: 0o755 });
  const fakeLog = path.join(dir, 'calls.log');
  process.env.FAKE_LOG = fakeLog;
  t.teardown(() => {
    delete process.env.FAKE_LOG;
  });
  const recipe: KitRecipe = { ...KIT_RECIPE, include: ['busybox-static'] };
  const final = kitDir(recipe, path.join(dir, 'cache'));
  await fsp.mkdir(path.dirname(final), { recursive: true });
  // A half-built leftover of a dead process must be cleaned up, never used.
  const stale = `${final}.tmp-999999999`;
  await fsp.mkdir(stale);
  await t.rejects(ensureKit({ cacheDir: path.join(dir, 'cache'), recipe, build: false }), /No guest kit at .*sudo node bin\/mdgpu\.js kit/);

  const lines: string[] = [];
  const opts = { cacheDir: path.join(dir, 'cache'), recipe, mmdebstrap: fake, mirror: 'http://fake.example/debian', log: (l: string) => lines.push(l) };
  const [kit, again] = await Promise.all([ensureKit(opts), ensureKit(opts)]);
  t.equal((await fsp.readFile(fakeLog, 'utf8')).trim().split('\n').length, 1, 'concurrent callers share one build');
  t.equal(kit.root, final);
  t.equal(again.root, final);
  t.notOk(fs.existsSync(stale), 'stale temp dir removed');
  t.notOk(fs.existsSync(`${final}.lock`), 'lock released');
  t.same((await fsp.readdir(path.dirname(final))).sort(), [path.basename(final)], 'nothing but the kit is left');
  t.equal(kit.kernelVersion, '6.1.0-fake');
  t.equal(kit.kernel, path.join(final, 'boot/vmlinuz-6.1.0-fake'));
  t.equal(kit.modulesDir, path.join(final, 'usr/lib/modules/6.1.0-fake'));
  t.equal(kit.headersDir, path.join(final, 'usr/src/linux-headers-6.1.0-fake'));
  t.equal(kit.busybox, path.join(final, 'usr/bin/busybox'));
  t.equal(kit.qemuVersion, '11.1.3 (fake)');
  t.notOk(fs.existsSync(path.join(final, 'boot/initrd.img-6.1.0-fake')), 'trimmed');
  const info = JSON.parse(await fsp.readFile(path.join(final, 'kit.json'), 'utf8'));
  t.equal(info.hash, recipeHash(recipe));
  t.equal(info.mirror, 'http://fake.example/debian');
  t.type(info.buildSeconds, 'number');
  t.ok(info.sizeBytes > 0);
  t.same(info.packages, { 'qemu-system-x86': '1:11.1.3+fake' }, 'only installed packages are recorded');
  t.same(info.recipe, recipe);
  t.ok(
    lines.some((l) => /^\[kit \+\d+\.\ds\] mmdebstrap: I: fake mmdebstrap into .*\.tmp-\d+$/.test(l)),
    'mmdebstrap output is prefixed with elapsed time',
  );
  t.ok(lines.some((l) => /mmdebstrap: progress on stdout/.test(l)));
  t.ok(lines.some((l) => /^\[kit\] done in/.test(l)));
  t.match(describeKit(kit), /qemu {5}11\.1\.3 \(fake\)/);

  const before = lines.length;
  const cached = await ensureKit(opts);
  t.equal(cached.root, final);
  t.equal(lines.length, before, 'a cached kit is used silently');
  t.equal((await loadKit(final))!.hash, recipeHash(recipe));
  t.equal(await loadKit(path.join(dir, 'nothing')), undefined);
});

t.test('a failed or unverifiable build leaves nothing behind', async (t) => {
  const dir = await fsp.mkdtemp(path.join(os.tmpdir(), 'mdgpu-kitfail-'));
  t.teardown(() => fsp.rm(dir, { recursive: true, force: true }));
  const fake = path.join(dir, 'fake-mmdebstrap');
  await fsp.writeFile(fake, FAKE_MMDEBSTRAP, { mode: 0o755 });
  process.env.FAKE_LOG = path.join(dir, 'calls.log');
  t.teardown(() => {
    delete process.env.FAKE_LOG;
    delete process.env.FAKE_FAIL;
    delete process.env.FAKE_QEMU_VERSION;
    delete process.env.FAKE_NO_SOCKET;
  });
  const cache = path.join(dir, 'cache');
  const base = { cacheDir: cache, recipe: { ...KIT_RECIPE, include: ['x'] }, mmdebstrap: fake, mirror: 'http://f/debian', log: () => undefined };

  process.env.FAKE_FAIL = '1';
  await t.rejects(ensureKit(base), /mmdebstrap failed with exit code 100 \(the host cannot verify the Debian archive.*\n.*NO_PUBKEY/s);
  t.same(await fsp.readdir(cache), [], 'no temp dir, no kit, no lock');
  delete process.env.FAKE_FAIL;

  process.env.FAKE_QEMU_VERSION = '10.0.13';
  await t.rejects(ensureKit(base), /vfio-user-pci needs QEMU ≥ 10\.1/);
  t.same(await fsp.readdir(cache), []);
  delete process.env.FAKE_QEMU_VERSION;

  process.env.FAKE_NO_SOCKET = '1';
  await t.rejects(ensureKit(base), /no usable vfio-user-pci device/);
  t.same(await fsp.readdir(cache), []);

  await t.rejects(ensureKit({ ...base, mmdebstrap: path.join(dir, 'missing-mmdebstrap') }), /ENOENT/);
  t.same(await fsp.readdir(cache), []);
});

t.test('no kit and no way to build one: errors say what to run', async (t) => {
  const dir = await fsp.mkdtemp(path.join(os.tmpdir(), 'mdgpu-kitnoroot-'));
  t.teardown(() => fsp.rm(dir, { recursive: true, force: true }));
  const getuid = process.getuid;
  process.getuid = () => 1000;
  try {
    await t.rejects(ensureKit({ cacheDir: dir, log: () => undefined }), /building one needs root.*sudo node bin\/mdgpu\.js kit.*MDGPU_CACHE_DIR=/s);
  } finally {
    process.getuid = getuid;
  }
  const pathVar = process.env.PATH;
  process.env.PATH = dir;
  try {
    await t.rejects(ensureKit({ cacheDir: dir, log: () => undefined }), /mmdebstrap is not installed: apt-get install -y mmdebstrap/);
  } finally {
    process.env.PATH = pathVar;
  }
  t.same(await fsp.readdir(dir), [], 'nothing created');
});

t.test('dpkgVersions and removeTree', async (t) => {
  const d = await fsp.mkdtemp(path.join(os.tmpdir(), 'mdgpu-dpkg-'));
  await fsp.mkdir(path.join(d, 'var/lib/dpkg'), { recursive: true });
  await fsp.writeFile(
    path.join(d, 'var/lib/dpkg/status'),
    'Package: a\nStatus: install ok installed\nVersion: 1\n\nPackage: b\nStatus: install ok installed\nVersion: 2\n',
  );
  t.same(await dpkgVersions(d, ['b', 'c']), { b: '2' });
  await removeTree(d);
  t.notOk(fs.existsSync(d));
  await removeTree(d);
  t.pass('removing a missing tree is fine');
});
