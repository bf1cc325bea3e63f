/**
 * The Debian guest image's logic without building it: recipes and cache keys (the base root by
 * its package list and kernel, the packages by the driver's sources, the layer by both), module
 * dependency order for the initramfs, the two init scripts, versions and changelog, and which
 * files of guest-driver/ are packaging sources.
 */
import t from 'tap';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { defaultSourceDir } from '../../src/guest/build.js';
import { BASE_DISK_SERIAL, DEBIAN_INIT_PATH, debianDrives, debianInit, LAYER_DISK_SERIAL, stage1Init } from '../../src/guest/debian-boot.js';
import {
  debFileName,
  debianChangelog,
  debianVersion,
  GUEST_PACKAGES,
  guestPackagesHash,
  listPackageSources,
  packageVersion,
} from '../../src/guest/packages.js';
import {
  GUEST_ROOT_PACKAGES,
  guestLayerHash,
  guestRootDir,
  guestRootHash,
  guestRootRecipe,
  moduleLoadOrder,
  moduleName,
  parseModulesDep,
  type DebianImage,
} from '../../src/guest/rootfs.js';

t.test('base root recipe: the Vulkan userland, DKMS and the kit kernel; its hash is its cache key', async (t) => {
  const r = guestRootRecipe('6.12.117+deb13-amd64');
  for (const p of ['libvulkan1', 'vulkan-tools', 'vulkan-validationlayers', 'dkms', 'kmod', 'gcc', 'make']) t.ok(r.include.includes(p), p);
  t.same(r.include, GUEST_ROOT_PACKAGES);
  t.equal(r.suite, 'trixie');
  t.equal(r.kernelVersion, '6.12.117+deb13-amd64');
  t.notOk(JSON.stringify(r).includes('http'), 'no mirror in the recipe');
  const h = guestRootHash(r);
  t.match(h, /^[0-9a-f]{12}$/);
  t.equal(guestRootHash(guestRootRecipe('6.12.117+deb13-amd64')), h, 'stable');
  t.not(guestRootHash(guestRootRecipe('6.12.118+deb13-amd64')), h, 'another kernel, another root');
  t.not(guestRootHash({ ...r, include: [...r.include, 'strace'] }), h, 'another package list, another root');
  t.equal(path.basename(guestRootDir(r, '/c')), `guestroot-${h}`);
});

t.test('layer key: changes with the base root or the packages, not otherwise', async (t) => {
  const root = { hash: 'aaaaaaaaaaaa', info: { recipe: guestRootRecipe('6.12.117+deb13-amd64') } } as never;
  const other = { hash: 'bbbbbbbbbbbb', info: { recipe: guestRootRecipe('6.12.117+deb13-amd64') } } as never;
  const h = guestLayerHash(root, { hash: '1111' });
  t.match(h, /^[0-9a-f]{16}$/);
  t.equal(guestLayerHash(root, { hash: '1111' }), h);
  t.not(guestLayerHash(root, { hash: '2222' }), h);
  t.not(guestLayerHash(other, { hash: '1111' }), h);
});

t.test('package key: any source or packaging file of guest-driver/, the kit and the version', async (t) => {
  const src = fs.mkdtempSync(path.join(os.tmpdir(), 'mdgpu-pkgsrc-'));
  t.teardown(() => fs.rmSync(src, { recursive: true, force: true }));
  fs.cpSync(defaultSourceDir(), src, { recursive: true, filter: (p) => !p.includes(`${path.sep}build`) && !p.includes(`${path.sep}out`) });
  const kit = { hash: 'k1' };
  const h = await guestPackagesHash(src, kit, '0.1.0');
  t.match(h, /^[0-9a-f]{16}$/);
  t.not(await guestPackagesHash(src, { hash: 'k2' }, '0.1.0'), h, 'kit');
  t.not(await guestPackagesHash(src, kit, '0.1.1'), h, 'version');
  fs.writeFileSync(path.join(src, 'debian', 'changelog'), 'left by a hand build');
  fs.mkdirSync(path.join(src, 'debian', '.debhelper'));
  fs.writeFileSync(path.join(src, 'debian', '.debhelper', 'x'), 'y');
  fs.writeFileSync(path.join(src, 'debian', 'files'), 'z');
  t.equal(await guestPackagesHash(src, kit, '0.1.0'), h, 'build leftovers in debian/ do not count');
  fs.appendFileSync(path.join(src, 'debian', 'control'), '\n');
  const h2 = await guestPackagesHash(src, kit, '0.1.0');
  t.not(h2, h, 'debian/control');
  fs.appendFileSync(path.join(src, 'kmod', 'mdgpu_drv.c'), '\n');
  t.not(await guestPackagesHash(src, kit, '0.1.0'), h2, 'the module source');
  fs.mkdirSync(path.join(src, 'out'));
  fs.writeFileSync(path.join(src, 'out', 'libmdgpu.so.1'), 'built');
  fs.writeFileSync(path.join(src, 'kmod', 'mdgpu.ko'), 'built');
  fs.writeFileSync(path.join(src, 'kmod', '.mdgpu.o.cmd'), 'built');
  // A directory guest-driver/ does not have yet (vulkan/ exists since the Vulkan suite).
  fs.mkdirSync(path.join(src, 'newpart'));
  fs.writeFileSync(path.join(src, 'newpart', 'icd.c'), 'int x;');
  const files = await listPackageSources(src);
  for (const f of [
    'Makefile',
    'debian/control',
    'debian/rules',
    'debian/mdgpu-dkms.dkms',
    'kmod/Kbuild',
    'kmod/mdgpu_drv.c',
    'lib/mdgpu.h',
    'include/uapi/mdgpu.h',
    'tools/mdgpu-run.c',
    'kernels/saxpy.comp',
  ]) {
    t.ok(files.includes(f), f);
  }
  t.ok(files.includes('newpart/icd.c'), 'a new directory is picked up without a list to update');
  t.ok(files.includes('vulkan/suite/saxpy.c') && !files.some((f) => f.startsWith('vulkan/suite/out/')), 'the Vulkan suite, not its build');
  t.notOk(
    files.some((f) => f === 'debian/changelog' || f === 'debian/files' || f.includes('.debhelper')),
    'generated debian/ files are not sources',
  );
  t.notOk(
    files.some((f) => f.startsWith('out/') || f.endsWith('.ko') || f.includes('/.') || f.endsWith('.md')),
    'nor build outputs, dot files, docs',
  );
  for (const p of GUEST_PACKAGES) t.ok(p === 'mdgpu-dkms' || files.includes(`debian/${p}.install`), `debian/${p}.install`);
});

t.test('versions: package.json, made Debian', async (t) => {
  const pkg = JSON.parse(fs.readFileSync(path.join(defaultSourceDir(), '..', 'package.json'), 'utf8')) as { version: string };
  t.equal(packageVersion(), pkg.version);
  t.equal(debianVersion('0.1.0'), '0.1.0');
  t.equal(debianVersion('0.2.0-rc.1'), '0.2.0~rc.1', 'a prerelease sorts before its release, as in npm');
  t.throws(() => debianVersion('latest'), /Not a semantic version/);
  const c = debianChangelog('0.1.0', 'a note');
  t.match(c, /^mdgpu \(0\.1\.0\) trixie; urgency=medium\n\n {2}\* a note\n\n -- .+ <.+> {2}\w{3}, \d\d \w{3} \d{4} \d\d:\d\d:\d\d \+0000\n$/);
  t.equal(debFileName('mdgpu-dkms', '0.1.0'), 'mdgpu-dkms_0.1.0_all.deb');
  t.equal(debFileName('libmdgpu1', '0.1.0'), 'libmdgpu1_0.1.0_amd64.deb');
});

const DEP = `kernel/fs/ext4/ext4.ko.xz: kernel/lib/crc16.ko.xz kernel/fs/mbcache.ko.xz kernel/fs/jbd2/jbd2.ko.xz
kernel/fs/mbcache.ko.xz:
kernel/fs/jbd2/jbd2.ko.xz:
kernel/lib/crc16.ko.xz:
kernel/drivers/block/virtio_blk.ko.xz:
kernel/fs/overlayfs/overlay.ko.xz:
kernel/drivers/scsi/sd_mod.ko.xz: kernel/drivers/scsi/scsi_mod.ko.xz
kernel/drivers/scsi/scsi_mod.ko.xz: kernel/drivers/scsi/scsi_common.ko.xz
kernel/drivers/scsi/scsi_common.ko.xz:
kernel/x/a.ko: kernel/x/b.ko
kernel/x/b.ko: kernel/x/a.ko
`;

t.test('stage-1 modules: dependencies first, each once, names as the kernel spells them', async (t) => {
  const dep = parseModulesDep(DEP);
  t.same(dep.get('kernel/fs/ext4/ext4.ko.xz'), ['kernel/lib/crc16.ko.xz', 'kernel/fs/mbcache.ko.xz', 'kernel/fs/jbd2/jbd2.ko.xz']);
  t.same(moduleLoadOrder(dep, ['virtio_blk', 'ext4', 'overlay']).map(moduleName), ['virtio_blk', 'crc16', 'mbcache', 'jbd2', 'ext4', 'overlay']);
  t.same(moduleLoadOrder(dep, ['sd-mod', 'scsi_mod']).map(moduleName), ['scsi_common', 'scsi_mod', 'sd_mod'], '- and _ are the same; no module twice');
  t.throws(() => moduleLoadOrder(dep, ['nvme']), /nvme is not in modules.dep/);
  t.throws(() => moduleLoadOrder(dep, ['a']), /cycle/);
  t.equal(moduleName('kernel/drivers/block/virtio_blk.ko.xz'), 'virtio_blk');
  t.equal(moduleName('x/mdgpu.ko'), 'mdgpu');
});

t.test('init scripts: stage 1 mounts the disks by serial and switches to Debian; Debian runs the job and powers off', async (t) => {
  const s1 = stage1Init(['virtio_blk.ko', 'ext4.ko', 'overlay.ko']);
  t.ok(s1.startsWith('#!/bin/sh\n'));
  t.match(s1, /for m in 'virtio_blk\.ko' 'ext4\.ko' 'overlay\.ko'; do insmod "\/lib\/modules\/\$m"/);
  t.ok(s1.includes(`disk ${BASE_DISK_SERIAL}`) && s1.includes(`disk ${LAYER_DISK_SERIAL}`));
  t.match(s1, /mount -t overlay overlay -o lowerdir=\/mnt\/layer:\/mnt\/base,upperdir=/, 'the layer above the base');
  t.match(s1, /mount -t ext4 -o ro /, 'the disks read-only');
  t.ok(s1.includes(`exec switch_root /newroot ${DEBIAN_INIT_PATH}`));
  const s2 = debianInit('echo hello', 'MDGPU-T');
  t.ok(s2.startsWith('#!/bin/sh\n'));
  t.match(s2, /echo MDGPU-T-BEGIN\n\(\necho hello\n\)\necho "MDGPU-T-END rc=\$\?"/);
  t.match(s2, /busybox poweroff -f\n$/);
  const image = { root: { image: '/c/root.img' }, layer: { image: '/c/layer.img' } } as unknown as DebianImage;
  t.same(
    debianDrives(image).map((d) => [d.file, d.serial]),
    [
      ['/c/root.img', BASE_DISK_SERIAL],
      ['/c/layer.img', LAYER_DISK_SERIAL],
    ],
  );
});
