/**
 * The suite's output contract as test/helpers/vksuite.ts reads it, and the native command line
 * it builds: pure code, milliseconds.
 */
import t from 'tap';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { compareDigests, digests, lineFields, nativeVulkan, parseVksuite } from '../helpers/vksuite.js';

const SAMPLE = `VKSUITE-DEVICE prog=vks-saxpy name="llvmpipe (LLVM 15.0.6, 256 bits)" api=1.3.230 subgroup=8
VKSUITE name=saxpy ok=1 digest=3d2ffd00e73106de ms=2.429 wall_ms=2.558 size=262144 iterations=1
some diagnostic line
VKSUITE-VALIDATION prog=vks-saxpy errors=0 warnings=2 layer=1
VKSUITE name=memory.budget ok=1 skipped=feature feature=VK_EXT_memory_budget digest=- ms=0
VKSUITE name=gemm ok=0 digest=- ms=0 error=VK_ERROR_DEVICE_LOST
VKSUITE name=hostile.spin ok=1 digest=309276df8d15f3c4 ms=0.000 outcome=timeout_then_released
VKSUITE-SUMMARY programs=3 checks=4 passed=2 failed=1 skipped=1 validation=0 validation_errors=0
`;

t.test('lineFields: key=value pairs, quoted values', async (t) => {
  t.same(lineFields('VKSUITE-DEVICE name="a b" api=1.3 x='), { name: 'a b', api: '1.3', x: '' });
  t.same(lineFields('nothing here'), {});
});

t.test('parseVksuite: checks, skips, device, validation counts, summary', async (t) => {
  const r = parseVksuite(SAMPLE);
  t.same(
    r.checks.map((c) => [c.name, c.ok, c.digest, c.ms, c.skipped]),
    [
      ['saxpy', true, '3d2ffd00e73106de', 2.429, undefined],
      ['memory.budget', true, '-', 0, 'VK_EXT_memory_budget'],
      ['gemm', false, '-', 0, undefined],
      ['hostile.spin', true, '309276df8d15f3c4', 0, undefined],
    ],
  );
  t.equal(r.checks[0]!.fields.wall_ms, '2.558');
  t.equal(r.checks[2]!.fields.error, 'VK_ERROR_DEVICE_LOST');
  t.equal(r.devices[0]!.name, 'llvmpipe (LLVM 15.0.6, 256 bits)');
  t.same(r.validation, [{ prog: 'vks-saxpy', errors: 0, warnings: 2, layer: true }]);
  t.equal(r.summary?.failed, '1');
  t.same(parseVksuite(''), { checks: [], devices: [], validation: [] });
});

t.test('digests and compareDigests: skipped and hostile checks are not compared', async (t) => {
  const a = digests(parseVksuite(SAMPLE));
  t.same(a[0], { name: 'saxpy', ok: true, digest: '3d2ffd00e73106de' });
  const b = a.map((x) => (x.name === 'hostile.spin' ? { ...x, digest: 'ffffffffffffffff' } : x));
  t.same(compareDigests(a, b), [], 'a hostile outcome may differ');
  const c = [
    ...b.filter((x) => x.name !== 'saxpy'),
    { name: 'saxpy', ok: true, digest: '0000000000000000' },
    { name: 'new', ok: true, digest: '1111111111111111' },
  ];
  t.same(compareDigests(a, c), [
    { name: 'saxpy', a: '3d2ffd00e73106de', b: '0000000000000000' },
    { name: 'new', b: '1111111111111111' },
  ]);
});

t.test('nativeVulkan: the kit loader first, host libraries after, only the given ICD', async (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vks-kit-'));
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  const icd = path.join(dir, 'icd.json');
  fs.writeFileSync(icd, '{}');
  t.throws(() => nativeVulkan({ root: dir }, icd), /no libvulkan\.so\.1/, 'a kit without the loader');
  fs.mkdirSync(path.join(dir, 'usr/lib/x86_64-linux-gnu'), { recursive: true });
  fs.writeFileSync(path.join(dir, 'usr/lib/x86_64-linux-gnu/libvulkan.so.1'), '');
  t.throws(() => nativeVulkan({ root: dir }, path.join(dir, 'missing.json')), /No Vulkan driver manifest/);
  const n = nativeVulkan({ root: dir }, icd);
  t.equal(n.prefix[0], path.join(dir, 'lib64/ld-linux-x86-64.so.2'));
  t.equal(n.prefix[1], '--library-path');
  t.same(n.prefix[2]!.split(':'), [
    path.join(dir, 'usr/lib/x86_64-linux-gnu'),
    path.join(dir, 'lib/x86_64-linux-gnu'),
    '/usr/lib/x86_64-linux-gnu',
    '/lib/x86_64-linux-gnu',
  ]);
  t.same(n.env, {
    VK_DRIVER_FILES: icd,
    VK_LOADER_LAYERS_DISABLE: '~implicit~',
    VK_LAYER_PATH: path.join(dir, 'usr/share/vulkan/explicit_layer.d'),
  });
  const spaced = path.join(dir, 'a kit');
  fs.mkdirSync(path.join(spaced, 'usr/lib/x86_64-linux-gnu'), { recursive: true });
  fs.writeFileSync(path.join(spaced, 'usr/lib/x86_64-linux-gnu/libvulkan.so.1'), '');
  t.throws(() => nativeVulkan({ root: spaced }, icd), /blanks/);
});
