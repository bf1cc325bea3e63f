/**
 * The guest driver's Debian packages, built for real with dpkg-buildpackage/debhelper/dh-dkms in
 * the kit (or taken from the cache), checked from the outside with the host's dpkg-deb: names,
 * versions (package.json's), architectures, dependencies, maintainer scripts, and every file each
 * package ships — the module's sources and dkms.conf, the shared library and its SONAME, the
 * development files, the tools (dynamically linked to libmdgpu1) and the SPIR-V kernels.
 */
import t from 'tap';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { defaultSourceDir, GUEST_KERNELS, GUEST_TOOLS } from '../../src/guest/build.js';
import { elfSection, parseElf, PT_INTERP } from '../../src/guest/elf.js';
import {
  buildGuestPackages,
  debContents,
  debControlFile,
  debFields,
  debFile,
  debianVersion,
  GUEST_PACKAGES,
  packageVersion,
} from '../../src/guest/packages.js';
import { ensureKit } from '../../src/kit/kit.js';

const kit = await ensureKit();
const logs: string[] = [];
const t0 = Date.now();
const built = await buildGuestPackages(kit, { log: (l) => logs.push(l) });
t.comment(`buildGuestPackages: ${Date.now() - t0} ms (${logs.some((l) => l.includes('using the cached')) ? 'cached' : 'built'})`);
const version = debianVersion(packageVersion());
const src = defaultSourceDir();
const MULTIARCH = '/usr/lib/x86_64-linux-gnu';

/** Paths of regular files and links of a package, docs left out. */
async function files(deb: string): Promise<string[]> {
  return (await debContents(deb))
    .filter((e) => !e.mode.startsWith('d') && !e.path.startsWith('/usr/share/doc/'))
    .map((e) => e.path)
    .sort();
}

t.test('four packages at package.json version, with the right architectures and dependencies', async (t) => {
  t.equal(built.version, version);
  t.same(Object.keys(built.debs).sort(), [...GUEST_PACKAGES].sort());
  for (const pkg of GUEST_PACKAGES) {
    const f = await debFields(built.debs[pkg]);
    t.equal(f.Package, pkg);
    t.equal(f.Version, version, `${pkg} version`);
    t.equal(f.Architecture, pkg === 'mdgpu-dkms' ? 'all' : 'amd64', `${pkg} architecture`);
    t.ok(f.Maintainer && f.Description, `${pkg} has a maintainer and a description`);
  }
  t.match((await debFields(built.debs['mdgpu-dkms'])).Depends, /\bdkms\b/, 'mdgpu-dkms depends on dkms');
  t.match((await debFields(built.debs.libmdgpu1)).Depends, /\blibc6\b/, 'libmdgpu1 depends on libc6');
  t.match(
    (await debFields(built.debs['mdgpu-tools'])).Depends,
    new RegExp(`\\blibmdgpu1 \\(>= ${version.replace(/\./g, '\\.')}\\)`),
    'the tools depend on libmdgpu1',
  );
  t.equal((await debFields(built.debs['libmdgpu-dev'])).Depends, `libmdgpu1 (= ${version})`);
  t.equal((await debControlFile(built.debs.libmdgpu1, 'shlibs'))?.trim(), `libmdgpu 1 libmdgpu1 (>= ${version})`, 'shlibs: SONAME libmdgpu.so.1');
});

t.test('mdgpu-dkms: the module sources under /usr/src/mdgpu-<version>, dkms.conf, DKMS maintainer scripts', async (t) => {
  const deb = built.debs['mdgpu-dkms'];
  const base = `/usr/src/mdgpu-${version}`;
  const kmod = fs.readdirSync(path.join(src, 'kmod')).filter((n) => /\.[ch]$/.test(n) || n === 'Kbuild' || n === 'Makefile');
  const headers = [
    ...fs.readdirSync(path.join(src, 'include')).filter((n) => n.endsWith('.h')),
    ...fs.readdirSync(path.join(src, 'include', 'uapi')).map((n) => `uapi/${n}`),
  ];
  t.ok(headers.includes('mdgpu_hw.h') && headers.includes('uapi/mdgpu.h'), 'the headers the module includes');
  const want = ['dkms.conf', ...kmod.map((n) => `kmod/${n}`), ...headers.map((h) => `include/${h}`)].map((f) => `${base}/${f}`).sort();
  t.same(await files(deb), want, 'exactly the sources the module builds from');
  for (const f of kmod) t.same(await debFile(deb, `${base}/kmod/${f}`), fs.readFileSync(path.join(src, 'kmod', f)), `kmod/${f} as in the tree`);
  const conf = (await debFile(deb, `${base}/dkms.conf`)).toString();
  t.match(conf, /^PACKAGE_NAME="mdgpu"$/m);
  t.match(conf, new RegExp(`^PACKAGE_VERSION="${version}"$`, 'm'), 'dh_dkms filled in the version');
  t.match(conf, /^BUILT_MODULE_NAME\[0\]="mdgpu"$/m);
  t.match(conf, /^BUILT_MODULE_LOCATION\[0\]="kmod\/"$/m);
  t.match(conf, /^MAKE\[0\]="make -C kmod KDIR=\$\{kernel_source_dir\} modules"$/m);
  t.match(conf, /^AUTOINSTALL="yes"$/m, 'built for new kernels automatically');
  const postinst = (await debControlFile(deb, 'postinst')) ?? '';
  t.match(postinst, /\/usr\/lib\/dkms\/common\.postinst/, 'postinst hands over to DKMS');
  t.match(postinst, new RegExp(`DKMS_VERSION=${version.replace(/\./g, '\\.')}`));
  t.match((await debControlFile(deb, 'prerm')) ?? '', /dkms remove/, 'prerm removes the module from DKMS');
});

t.test('libmdgpu1 and libmdgpu-dev: the shared library, headers, static library, pkg-config', async (t) => {
  t.same(await files(built.debs.libmdgpu1), [`${MULTIARCH}/libmdgpu.so.1`]);
  const so = parseElf(await debFile(built.debs.libmdgpu1, `${MULTIARCH}/libmdgpu.so.1`));
  t.equal(so.type, 3, 'a shared object');
  t.ok(elfSection(so, '.dynstr')?.includes('libmdgpu.so.1'), 'SONAME libmdgpu.so.1');
  t.ok(elfSection(so, '.dynstr')?.includes('mdgpu_open'), 'exports mdgpu_open');
  const dev = built.debs['libmdgpu-dev'];
  t.same(await files(dev), [
    '/usr/include/mdgpu/mdgpu.h',
    '/usr/include/mdgpu/mdgpu_cmd.h',
    '/usr/include/mdgpu/mdgpu_hw.h',
    '/usr/include/mdgpu/uapi/mdgpu.h',
    `${MULTIARCH}/libmdgpu.a`,
    `${MULTIARCH}/libmdgpu.so`,
    `${MULTIARCH}/pkgconfig/mdgpu.pc`,
  ]);
  t.equal((await debContents(dev)).find((e) => e.path === `${MULTIARCH}/libmdgpu.so`)?.linkTarget, 'libmdgpu.so.1', 'the link for -lmdgpu');
  t.same(await debFile(dev, '/usr/include/mdgpu/mdgpu.h'), fs.readFileSync(path.join(src, 'lib', 'mdgpu.h')));
  const pc = (await debFile(dev, `${MULTIARCH}/pkgconfig/mdgpu.pc`)).toString();
  t.match(pc, new RegExp(`^Version: ${version.replace(/\./g, '\\.')}$`, 'm'));
  t.match(pc, /^Cflags: -I\$\{includedir\}\/mdgpu$/m, '#include <mdgpu.h> finds uapi/mdgpu.h and mdgpu_cmd.h next to it');
  t.match(pc, /^Libs: -L\$\{libdir\} -lmdgpu$/m);
});

t.test('mdgpu-tools: every tool, linked to libmdgpu.so.1, and the SPIR-V kernels mdgpu-run loads', async (t) => {
  const deb = built.debs['mdgpu-tools'];
  t.same(await files(deb), [...GUEST_TOOLS.map((n) => `/usr/bin/${n}`), ...GUEST_KERNELS.map((k) => `/usr/share/mdgpu/${k}.spv`)].sort());
  for (const tool of GUEST_TOOLS) {
    const elf = parseElf(await debFile(deb, `/usr/bin/${tool}`));
    t.ok(
      elf.programHeaders.some((p) => p.type === PT_INTERP),
      `${tool} is dynamically linked`,
    );
    t.ok(elfSection(elf, '.dynstr')?.includes('libmdgpu.so.1'), `${tool} needs libmdgpu.so.1`);
  }
  for (const k of GUEST_KERNELS) {
    t.equal((await debFile(deb, `/usr/share/mdgpu/${k}.spv`)).readUInt32LE(0), 0x07230203, `${k}.spv is SPIR-V`);
  }
});

t.test('a second build of the same sources is the cached one', async (t) => {
  const again: string[] = [];
  const b = await buildGuestPackages(kit, { log: (l) => again.push(l) });
  t.equal(b.dir, built.dir);
  t.ok(
    again.some((l) => l.includes('using the cached')),
    again.join('\n'),
  );
});
