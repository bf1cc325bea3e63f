/**
 * The mdgpu-vulkan-suite package as built in the kit: its files (the runner and one program per
 * source of guest-driver/vulkan/suite), its dependency on the Khronos loader (libvulkan1), and
 * programs that link to libvulkan.so.1 and to nothing of mdgpu.
 */
import t from 'tap';
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { defaultSourceDir } from '../../src/guest/build.js';
import { elfSection, parseElf, PT_INTERP } from '../../src/guest/elf.js';
import { debContents, debFields, debFile } from '../../src/guest/packages.js';
import { ensureKit } from '../../src/kit/kit.js';
import { SUITE_LIBEXEC, SUITE_PACKAGE, vksuiteBinaries } from '../helpers/vksuite.js';

const kit = await ensureKit();
const bins = await vksuiteBinaries(kit);
const suiteDir = path.join(defaultSourceDir(), 'vulkan/suite');
const programs = fs
  .readdirSync(suiteDir)
  .filter((n) => n.endsWith('.c') && n !== 'vks.c')
  .map((n) => `vks-${n.slice(0, -2)}`)
  .sort();

t.test('fields: architecture, and the loader as a dependency', async (t) => {
  const f = await debFields(bins.deb);
  t.equal(f.Package, SUITE_PACKAGE);
  t.equal(f.Architecture, 'amd64');
  t.match(f.Depends, /\blibvulkan1\b/, 'depends on the Khronos loader');
  t.notMatch(f.Depends, /mdgpu/, 'and on nothing of mdgpu');
});

t.test('files: vksuite and one program per source', async (t) => {
  t.ok(programs.length >= 20, `${programs.length} programs in the tree`);
  const files = (await debContents(bins.deb))
    .filter((e) => !e.mode.startsWith('d') && !e.path.startsWith('/usr/share/doc/'))
    .map((e) => e.path)
    .sort();
  t.same(files, ['/usr/bin/vksuite', ...programs.map((p) => `${SUITE_LIBEXEC}/${p}`)].sort());
  for (const p of programs) {
    const elf = parseElf(await debFile(bins.deb, `${SUITE_LIBEXEC}/${p}`));
    const dynstr = elfSection(elf, '.dynstr')?.toString('latin1') ?? '';
    t.ok(
      elf.programHeaders.some((h) => h.type === PT_INTERP),
      `${p} is dynamically linked`,
    );
    t.ok(dynstr.includes('libvulkan.so.1'), `${p} needs libvulkan.so.1`);
    t.notOk(dynstr.includes('mdgpu'), `${p} needs nothing of mdgpu`);
  }
  const runner = (await debFile(bins.deb, '/usr/bin/vksuite')).toString();
  t.match(runner, /^#!\/bin\/sh/);
  t.match(runner, new RegExp(`^VKSUITE_LIBEXEC_DEFAULT=${SUITE_LIBEXEC}$`, 'm'), 'the runner finds the installed programs');
});

t.test('vksuite --list names every program', async (t) => {
  const out = execFileSync('sh', [bins.runner, '--list'], { encoding: 'utf8' });
  t.same(out.trim().split('\n').sort(), programs);
  t.match(execFileSync('sh', [bins.runner, '--help'], { encoding: 'utf8' }), /--validation/);
  let status = 0;
  try {
    execFileSync('sh', [bins.runner, '--bogus'], { stdio: 'pipe' });
  } catch (e) {
    status = (e as { status: number }).status;
  }
  t.equal(status, 2, 'an unknown option is refused');
});
