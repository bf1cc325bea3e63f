/**
 * The Debian guest image for real: the base root (mmdebstrap of trixie with the Vulkan loader,
 * vulkan-tools, the validation layers and DKMS), mdgpu's packages built in the kit and the layer
 * that installs them with apt (DKMS building mdgpu.ko against the guest kernel's headers) — built
 * here or taken from the cache — then booted under TCG against a real mdgpu: in Debian,
 * `dpkg -s` shows the packages, `dkms status` shows the module installed for the running kernel,
 * `modprobe mdgpu` loads DKMS's module, the packaged mdgpu-info, mdgpu-smoke and mdgpu-run pass
 * their checks (verified from mdgpu's side as for the initramfs), and `vulkaninfo --summary`
 * lists the mdgpu device through mdgpu's ICD (mdgpu-vulkan-icd), the loader finds the validation
 * layer, and the suite's saxpy (mdgpu-vulkan-suite) runs on the device and verifies its result.
 * (debian-layer.test.ts: a driver change rebuilds only the packages and the layer.)
 */
import t from 'tap';
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { GUEST_PATTERN } from '../../src/cli/guest-script.js';
import { bootAndProbe } from '../../src/cli/run.js';
import { debianVersion, packageVersion } from '../../src/guest/packages.js';
import { debianImageEntries, ensureDebianImage } from '../../src/guest/rootfs.js';
import { ensureKit } from '../../src/kit/kit.js';
import { setLogSink } from '../../src/log.js';

setLogSink(() => {});
const kit = await ensureKit();
const logs: string[] = [];
const t0 = Date.now();
const image = await ensureDebianImage(kit, { log: (l) => logs.push(l) });
const built = logs.filter((l) => / done in /.test(l));
t.comment(`ensureDebianImage: ${((Date.now() - t0) / 1000).toFixed(1)} s (${built.length ? built.join('; ') : 'all cached'})`);
const version = debianVersion(packageVersion());
const kver = kit.kernelVersion;
const sha256 = (f: string) => createHash('sha256').update(fs.readFileSync(f)).digest('hex');

t.test('the image: a trixie root for the kit kernel, mdgpu installed from its packages, the module built by DKMS', async (t) => {
  t.equal(image.root.kernelVersion, kver, 'the base root is for the kit kernel');
  t.equal(sha256(image.root.kernel), sha256(kit.kernel), "the guest boots its own /boot/vmlinuz, the same file as the kit's kernel");
  for (const p of ['libvulkan1', 'vulkan-tools', 'vulkan-validationlayers', 'dkms', `linux-headers-${kver}`, `linux-image-${kver}`]) {
    t.ok(image.root.info.packages[p], `base root has ${p} ${image.root.info.packages[p] ?? ''}`);
  }
  t.notOk(fs.existsSync(path.join(image.root.tree, 'sbin/init')), 'no init system in the root: the boot runs our init');
  t.same(image.root.info.stage1.slice(-2), ['ext4.ko', 'overlay.ko'], `stage-1 modules, dependencies first: ${image.root.info.stage1.join(' ')}`);
  t.ok(image.root.info.stage1.indexOf('jbd2.ko') < image.root.info.stage1.indexOf('ext4.ko'), 'jbd2 before ext4');
  t.equal(image.layer.info.dkmsStatus, `mdgpu/${version}, ${kver}, x86_64: installed`, 'dkms status at build time');
  t.equal(image.layer.info.module, `/usr/lib/modules/${kver}/updates/dkms/mdgpu.ko.xz`);
  t.same(image.layer.info.packages, {
    'libmdgpu-dev': version,
    libmdgpu1: version,
    'mdgpu-dkms': version,
    'mdgpu-tools': version,
    'mdgpu-vulkan-icd': version,
    'mdgpu-vulkan-suite': version,
  });
  t.ok(fs.statSync(image.layer.image).size * 10 < fs.statSync(image.root.image).size, 'the layer is small next to the base');
  t.equal(image.layer.info.rootHash, image.root.hash);
  t.equal(image.layer.info.debsHash, image.debs.hash);
  t.same(
    await debianImageEntries(kit),
    [image.root.dir, image.debs.dir, image.layer.dir].map((d) => path.basename(d)),
    'mdgpu kit --prune keeps exactly these three, computed without building',
  );
});

t.test('boots under TCG against mdgpu: DKMS module, the packaged tools, vulkaninfo', async (t) => {
  const r = await bootAndProbe({
    root: 'debian',
    accel: 'tcg',
    apertureSize: 64 << 20,
    memoryMiB: 512,
    timeoutMs: 300_000,
    compute: true,
    print: (l) => t.comment(l),
  });
  t.comment(`Debian guest: boot + job + poweroff ${(r.guest.durationMs / 1000).toFixed(1)} s under ${r.guest.accel}`);
  const d = r.debian;
  if (!r.ok) t.comment(`problems: ${r.problems.join('; ')}\n${r.guest.output.split('\n').slice(-60).join('\n')}\n${r.guest.stderr}`);
  t.notOk(r.guest.timedOut, 'QEMU exited by itself');
  t.equal(r.guest.code, 0, 'the guest powered off');
  t.equal(r.view.initStatus, 0, 'our init in Debian ran the job to its end');
  t.equal(r.view.vendor, '0x4d44', 'the device seen from Debian');
  t.equal(r.view.apertureReadback, GUEST_PATTERN, "busybox devmem's aperture store reads back");
  t.equal(r.host.patternInMemfd, GUEST_PATTERN, "...and is in mdgpu's memfd");
  t.ok(d, 'the Debian report');
  if (!d) return;
  t.equal(d.kernel, kver, 'uname -r: the kit kernel');
  for (const p of ['mdgpu-dkms', 'libmdgpu1', 'mdgpu-tools', 'mdgpu-vulkan-icd'])
    t.same(d.packages[p], { status: 'install ok installed', version }, `dpkg -s ${p}`);
  for (const p of ['libvulkan1', 'vulkan-tools', 'vulkan-validationlayers']) t.equal(d.packages[p]?.status, 'install ok installed', `dpkg -s ${p}`);
  t.ok(d.dkms.includes(`mdgpu/${version}, ${kver}, x86_64: installed`), `dkms status in the guest: ${d.dkms.join('; ')}`);
  t.match(d.module, new RegExp(`^(/usr)?/lib/modules/${kver.replace(/[.+]/g, '\\$&')}/updates/dkms/mdgpu\\.ko\\.xz$`), 'modprobe loaded the module DKMS built');
  t.same(
    Object.fromEntries(Object.entries(r.steps).map(([k, v]) => [k, v.status])),
    { modprobe: 'ok', info: 'ok', smoke: 'ok', compute: 'ok', rmmod: 'ok' },
    'modprobe, the packaged tools, modprobe -r',
  );
  t.equal(r.smoke.fail, 0, `mdgpu-smoke from mdgpu-tools: ${r.smoke.pass} checks passed`);
  t.ok(
    r.patterns.reported > 0 && r.patterns.verified === r.patterns.reported,
    `smoke patterns in mdgpu's memfd: ${r.patterns.verified}/${r.patterns.reported}`,
  );
  t.ok(
    r.compute !== null && r.compute.rows.length >= 4 && r.compute.rows.every((row) => row.ok),
    `mdgpu-run: ${r.compute?.rows.map((x) => `${x.kernel} ${x.ok ? 'ok' : 'WRONG'}`).join(', ')}`,
  );
  t.same(r.compute?.checks, { hostile: true, 'irq-wait': true }, "mdgpu-run's hostile and interrupt checks");
  t.equal(r.host.contextsLeft + r.host.buffersLeft, 0, 'nothing left on the device after modprobe -r');
  // vulkaninfo through mdgpu's ICD (package mdgpu-vulkan-icd), while the driver is loaded.
  t.equal(d.vulkaninfo.rc, 0, 'vulkaninfo --summary exits 0');
  t.ok(
    d.vulkaninfo.output.some((l) => /deviceName\s*= mdgpu \(/.test(l)),
    'it lists the mdgpu device',
  );
  t.ok(d.loaderFound.includes('/usr/share/vulkan/icd.d/mdgpu_icd.x86_64.json'), `the loader found mdgpu's ICD manifest: ${d.loaderFound.join(' ')}`);
  t.match(d.vulkanProgram.output.join('\n'), /VKSUITE name=saxpy ok=1 /, `an unmodified Vulkan program verified its result (rc ${d.vulkanProgram.rc})`);
  t.ok(d.loaderFound.includes('/usr/share/vulkan/explicit_layer.d/VkLayer_khronos_validation.json'), 'the loader found the Khronos validation layer');
  t.same(r.problems, []);
});
