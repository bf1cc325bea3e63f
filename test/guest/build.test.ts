/**
 * The guest driver builds in a chroot of the kit: mdgpu.ko for the kit's kernel (vermagic read
 * from the module's .modinfo, as modinfo does) and static tools; the build is cached by a hash
 * of the sources, and a failing build leaves no mount, work directory or half-written cache.
 * Fails (never skips) when the kit is missing: CI builds it.
 */
import t from 'tap';
import * as fs from 'node:fs';
import * as fsp from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import { gunzipSync } from 'node:zlib';
import { ensureKit } from '../../src/kit/kit.js';
import {
  buildGuestDriver,
  defaultSourceDir,
  GUEST_KERNELS,
  GUEST_TOOLS,
  guestDriverHash,
  listKernelSources,
  listSources,
  loadGuestBuild,
} from '../../src/guest/build.js';
import { EM_X86_64, isStaticExecutable, parseElf, readModinfo } from '../../src/guest/elf.js';
import { GUEST_KERNELS_DIR, GUEST_MODULE_PATH, guestImage } from '../../src/guest/image.js';

const kit = await ensureKit();
const logs: string[] = [];
const log = (line: string) => logs.push(line);

async function copyTree(from: string, to: string): Promise<void> {
  await fsp.cp(from, to, { recursive: true });
}

/** Names and modes of the members of a gzip newc archive. */
function cpioMembers(image: Buffer): Map<string, number> {
  const data = gunzipSync(image);
  const out = new Map<string, number>();
  let off = 0;
  for (;;) {
    const field = (i: number) => Number.parseInt(data.toString('ascii', off + 6 + 8 * i, off + 14 + 8 * i), 16);
    const mode = field(1);
    const size = field(6);
    const nameSize = field(11);
    const name = data.toString('utf8', off + 110, off + 110 + nameSize - 1);
    if (name === 'TRAILER!!!') return out;
    out.set(name, mode);
    off = Math.ceil((off + 110 + nameSize) / 4) * 4;
    off = Math.ceil((off + size) / 4) * 4;
  }
}

t.test('mdgpu.ko and the static tools build for the kit kernel', async (t) => {
  const t0 = Date.now();
  const build = await buildGuestDriver(kit, { log });
  t.comment(`buildGuestDriver: ${Date.now() - t0} ms (${logs.some((l) => l.includes('using the cached')) ? 'cached' : 'built'})`);
  t.ok(fs.existsSync(build.module), 'mdgpu.ko exists');
  t.equal(path.dirname(build.dir), path.dirname(kit.root), 'cached next to the kit');
  t.match(path.basename(build.dir), /^guest-[0-9a-f]{16}$/, 'cache directory named by the hash');
  t.equal(fs.statSync(build.dir).mode & 0o777, 0o755, 'cache directory readable by everyone');

  const info = await readModinfo(build.module);
  t.equal(info.vermagic?.[0]?.split(' ')[0], kit.kernelVersion, `vermagic is the kit kernel's: ${info.vermagic?.[0]}`);
  t.match(info.vermagic?.[0] ?? '', / mod_unload /, 'vermagic: module unloading');
  t.same(info.name, ['mdgpu'], 'module name');
  t.same(info.license, ['GPL'], 'license');
  t.ok(info.alias?.includes('pci:v00004D44d00004750sv*sd*bc*sc*i*'), `PCI alias for 4d44:4750 (${info.alias?.join(', ')})`);
  t.same(info.depends, [''], 'depends on no other module (loads with a bare insmod)');
  t.ok(
    info.parm?.some((p) => p.startsWith('mbox_timeout_ms:')),
    'mbox_timeout_ms parameter documented',
  );
  t.ok(info.description?.[0], 'has a description');
  t.equal(parseElf(await fsp.readFile(build.module)).type, 1, 'module is a relocatable ELF');

  t.same(Object.keys(build.tools).sort(), [...GUEST_TOOLS].sort(), 'every tool');
  for (const tool of GUEST_TOOLS) {
    const file = build.tools[tool];
    const elf = parseElf(await fsp.readFile(file));
    t.equal(elf.machine, EM_X86_64, `${tool}: x86-64`);
    t.ok(await isStaticExecutable(file), `${tool}: statically linked (no PT_INTERP)`);
    t.ok((fs.statSync(file).mode & 0o111) !== 0, `${tool}: executable`);
  }
  t.ok(fs.existsSync(path.join(build.dir, 'libmdgpu.a')), 'libmdgpu.a kept for other programs');

  t.same(Object.keys(build.kernels).sort(), [...GUEST_KERNELS].sort(), 'every compute kernel');
  for (const kernel of GUEST_KERNELS) {
    const spv = await fsp.readFile(build.kernels[kernel]);
    t.ok(spv.length > 20 && spv.length % 4 === 0 && spv.readUInt32LE(0) === 0x07230203, `${kernel}.spv: SPIR-V, ${spv.length} bytes`);
  }
});

t.test('a second build comes from the cache; the key is the sources', async (t) => {
  logs.length = 0;
  const a = await buildGuestDriver(kit, { log });
  const b = await buildGuestDriver(kit, { log });
  t.equal(a.dir, b.dir);
  t.ok(
    logs.every((l) => !l.includes('chroot')),
    'no compiler ran',
  );
  t.ok(
    logs.some((l) => l.includes('using the cached')),
    'says it used the cache',
  );
  t.ok(await loadGuestBuild(a.dir), 'manifest and outputs complete');
  const manifest = JSON.parse(await fsp.readFile(path.join(a.dir, 'manifest.json'), 'utf8'));
  t.equal(manifest.kernelVersion, kit.kernelVersion);
  t.equal(manifest.kitHash, kit.hash);

  const src = defaultSourceDir();
  const sources = await listSources(src);
  for (const f of ['include/mdgpu_hw.h', 'include/uapi/mdgpu.h', 'kmod/Kbuild', 'kmod/mdgpu_drv.c', 'lib/libmdgpu.c', 'tools/mdgpu-smoke.c']) {
    t.ok(sources.includes(f), `hashed and copied: ${f}`);
  }
  t.ok(
    sources.every((f) => /^(include|kmod|lib|tools)\//.test(f)),
    'only the parts the chroot build uses (not kernels/)',
  );
  t.ok(sources.includes('lib/mdgpu_queue.c') && sources.includes('tools/mdgpu-run.c'), 'every lib/*.c and tool');
  const kernelSources = await listKernelSources(src);
  for (const f of ['kernels/Makefile', ...GUEST_KERNELS.map((k) => `kernels/${k}.comp`)]) t.ok(kernelSources.includes(f), `hashed: ${f}`);
  t.ok(
    kernelSources.every((f) => /^kernels\/(Makefile|[^/]+\.comp)$/.test(f)),
    "the kernels' sources only, not their build/ outputs",
  );
  const tmp = await fsp.mkdtemp(path.join(os.tmpdir(), 'mdgpu-guest-src-'));
  t.teardown(() => fsp.rm(tmp, { recursive: true, force: true }));
  await copyTree(src, tmp);
  const hash = await guestDriverHash(src, kit);
  t.equal(await guestDriverHash(tmp, kit), hash, 'same sources, same hash');
  t.equal(path.basename(a.dir), `guest-${hash}`);
  await fsp.writeFile(path.join(tmp, 'kmod', 'mdgpu_drv.o'), 'stale object');
  await fsp.writeFile(path.join(tmp, 'kmod', 'mdgpu.mod.c'), 'generated by modpost');
  t.equal(await guestDriverHash(tmp, kit), hash, 'build outputs left in the tree do not count');
  await fsp.mkdir(path.join(tmp, 'kernels', 'build'), { recursive: true });
  await fsp.writeFile(path.join(tmp, 'kernels', 'build', 'saxpy.spv'), 'stale SPIR-V');
  t.equal(await guestDriverHash(tmp, kit), hash, 'nor do stale kernel outputs');
  await fsp.appendFile(path.join(tmp, 'kernels', 'saxpy.comp'), '\n');
  const kernelHash = await guestDriverHash(tmp, kit);
  t.not(kernelHash, hash, 'a changed kernel source changes the hash');
  await fsp.appendFile(path.join(tmp, 'tools', 'mdgpu-info.c'), '\n');
  t.not(await guestDriverHash(tmp, kit), kernelHash, 'a changed source changes the hash');
  t.not(await guestDriverHash(src, { ...kit, kernelVersion: '6.1.0-test' }), hash, 'another kernel changes the hash');
});

t.test('a compile error fails the build and leaves nothing behind', async (t) => {
  const tmp = await fsp.mkdtemp(path.join(os.tmpdir(), 'mdgpu-guest-bad-'));
  t.teardown(() => fsp.rm(tmp, { recursive: true, force: true }));
  const src = path.join(tmp, 'guest-driver');
  const cache = path.join(tmp, 'cache');
  await copyTree(defaultSourceDir(), src);
  await fsp.appendFile(path.join(src, 'kmod', 'mdgpu_mbox.c'), '\nint mdgpu_broken(void) { return missing_symbol; }\n');
  logs.length = 0;
  await t.rejects(buildGuestDriver(kit, { log, sourceDir: src, cacheDir: cache }), /missing_symbol/, 'the compiler error is in the message');
  const mount = logs.findIndex((l) => l.includes('mount -t proc'));
  const umount = logs.findIndex((l) => l.includes('] umount '));
  t.ok(mount >= 0 && umount > mount, '/proc was mounted for the build and unmounted after the failure');
  const work = /cd (\/tmp\/mdgpu-guest-[^/\s]+)/.exec(logs.join('\n'))?.[1];
  t.ok(work, 'the build ran in a work directory inside the kit');
  t.notOk(fs.existsSync(path.join(kit.root, work ?? '/nonexistent')), 'work directory removed');
  t.same(fs.existsSync(cache) ? await fsp.readdir(cache) : [], [], 'nothing cached, no staging directory left');
});

t.test('the guest image carries the module, the tools and the kernels, and no kit modules', async (t) => {
  const build = await buildGuestDriver(kit, { log });
  const image = await guestImage(kit, build, 'echo hello', { marker: 'MDGPU-T' });
  const members = cpioMembers(image);
  t.equal(members.get(GUEST_MODULE_PATH.slice(1)), 0o100644, 'mdgpu.ko at /lib/modules/mdgpu.ko');
  for (const tool of GUEST_TOOLS) t.equal(members.get(`usr/bin/${tool}`), 0o100755, `/usr/bin/${tool}`);
  for (const kernel of GUEST_KERNELS) t.equal(members.get(`${GUEST_KERNELS_DIR.slice(1)}/${kernel}.spv`), 0o100644, `${GUEST_KERNELS_DIR}/${kernel}.spv`);
  t.same(
    [...members.keys()].filter((n) => n.endsWith('.ko') || n.endsWith('.ko.xz')),
    ['lib/modules/mdgpu.ko'],
    'the only module',
  );
  t.ok(members.has('init') && members.has('bin/busybox') && members.has('bin/insmod'), 'init, busybox, insmod');
});
