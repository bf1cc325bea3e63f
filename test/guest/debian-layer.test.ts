/**
 * A change to the guest driver's sources rebuilds mdgpu's Debian packages and the image's layer
 * (apt install + DKMS on the cached base root), not the base root: a copy of guest-driver/ with
 * one more line in the module's sources gets new packages, a new layer with DKMS's module built
 * from the changed sources, and the same base.
 */
import t from 'tap';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { defaultSourceDir } from '../../src/guest/build.js';
import { debianVersion, packageVersion } from '../../src/guest/packages.js';
import { ensureDebianImage } from '../../src/guest/rootfs.js';
import { ensureKit } from '../../src/kit/kit.js';

const kit = await ensureKit();
const image = await ensureDebianImage(kit, { log: (l) => t.comment(l) });
const version = debianVersion(packageVersion());
const kver = kit.kernelVersion;

t.test('a change to the driver sources rebuilds the packages and the layer, not the base root', async (t) => {
  const src = fs.mkdtempSync(path.join(os.tmpdir(), 'mdgpu-driver-change-'));
  t.teardown(() => fs.rmSync(src, { recursive: true, force: true }));
  fs.cpSync(defaultSourceDir(), src, {
    recursive: true,
    filter: (p) => !/[/\\](build|out)$/.test(p),
  });
  fs.appendFileSync(path.join(src, 'kmod', 'mdgpu_drv.c'), '/* A change to the module sources (test/guest/debian-image.test.ts). */\n');
  const lines: string[] = [];
  const t1 = Date.now();
  const changed = await ensureDebianImage(kit, { sourceDir: src, log: (l) => lines.push(l) });
  t.comment(`driver change: ${((Date.now() - t1) / 1000).toFixed(1)} s (${lines.filter((l) => / done in |built |using the cached/.test(l)).join('; ')})`);
  t.equal(changed.root.dir, image.root.dir, 'the same base root');
  t.notOk(
    lines.some((l) => l.startsWith('[guestroot]')),
    'the base root was not rebuilt',
  );
  t.not(changed.debs.hash, image.debs.hash, 'new packages');
  t.not(changed.layer.hash, image.layer.hash, 'a new layer');
  t.equal(changed.layer.info.dkmsStatus, `mdgpu/${version}, ${kver}, x86_64: installed`, 'DKMS built the changed module');
  const installed = fs.readFileSync(path.join(changed.layer.dir, 'upper', 'usr/src', `mdgpu-${version}`, 'kmod', 'mdgpu_drv.c'), 'utf8');
  t.match(installed, /A change to the module sources/, "the layer's DKMS sources are the changed ones");
});
