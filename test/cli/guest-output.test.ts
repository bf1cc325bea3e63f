/**
 * `mdgpu run`'s reading of the guest console without booting one: the probe's lines, the job's
 * steps, the tools' results, the smoke patterns and the Debian report, from console text in the
 * formats the script (src/cli/guest-script.ts) and the guest tools print.
 */
import t from 'tap';
import { field, matchesPattern, parseDebianReport, parseGuestView, parseStepLine, parseToolResults } from '../../src/cli/guest-output.js';
import {
  DEBIAN_MARKER,
  deviceProbeScript,
  driverScript,
  GUEST_MARKER,
  jobSteps,
  STEP_MARKER,
  VKLOADER_MARKER,
  VULKANINFO_MARKER,
} from '../../src/cli/guest-script.js';

const CONSOLE = `[    1.234] pci 0000:01:00.0: [4d44:4750] type 00 class 0x030200
MDGPU-DEVICE bdf=0000:01:00.0 vendor=0x4d44 device=0x4750 class=0x030200 subsystem=0x4d44:0x0001 revision=0x01
MDGPU-BAR index=0 start=0x8000000000 size=67108864 flags=0x0014220c
MDGPU-BAR index=2 start=0xc0000000 size=16384 flags=0x00040200
MDGPU-REG ID=0x4d444750 VERSION=0x00010002 APERTURE_SIZE_LO=0x04000000
  MDGPU-SCRATCH 0x5eed1234
MDGPU-APERTURE readback=0x6d646770
MDGPU-STEP insmod ok
MDGPU-INFO version=1.2 vendor=0x4d44 device=0x4750 aperture=67108864 quota=33554432
MDGPU-SMOKE ctx-create ok
MDGPU-SMOKE bo-alloc FAIL ENOMEM
MDGPU-SMOKE-PATTERN offset=0x1000 size=4096 seed=7
MDGPU-SMOKE-RESULT pass=11 fail=1
MDGPU-RUN kernel=saxpy size=1M ok=1 ns=1500000 dev_ns=900000
MDGPU-RUN kernel=gemm size=64 ok=0 ns=2500000 dev_ns=2000000
MDGPU-RUN check=hostile ok=1 error=BAD_COMMAND
MDGPU-RUN-RESULT pass=2 fail=1
${GUEST_MARKER}-END rc=0
`;

t.test('the device probe: identity, BARs, registers, scratch, aperture, init status', async (t) => {
  const v = parseGuestView(CONSOLE);
  t.same([v.bdf, v.vendor, v.device, v.class], ['0000:01:00.0', '0x4d44', '0x4750', '0x030200']);
  t.same(v.bars, [
    { index: 0, start: 0x80_0000_0000n, size: 64n << 20n, flags: 0x0014220c },
    { index: 2, start: 0xc000_0000n, size: 16384n, flags: 0x00040200 },
  ]);
  t.same(v.regs, { ID: 0x4d444750, VERSION: 0x00010002, APERTURE_SIZE_LO: 0x04000000 });
  t.equal(v.scratch, 0x5eed1234, 'lines are trimmed');
  t.equal(v.apertureReadback, 0x6d646770);
  t.equal(v.initStatus, 0);
  const none = parseGuestView('MDGPU-DEVICE none\n');
  t.same(none, { bars: [], regs: {}, bdf: undefined, vendor: undefined, device: undefined, class: undefined }, 'no device: nothing made up');
  t.equal(parseGuestView('').initStatus, undefined, 'an init that never finished has no status');
});

t.test('step lines', async (t) => {
  t.same(parseStepLine(`${STEP_MARKER} insmod ok`), { step: 'insmod', status: 'ok' });
  t.same(parseStepLine(`${STEP_MARKER} compute FAIL missing-tool`), { step: 'compute', status: 'FAIL' });
  t.equal(parseStepLine(`x ${STEP_MARKER} insmod ok`), undefined, 'only at the start of a line');
  t.equal(parseStepLine('MDGPU-STEPS insmod'), undefined);
  t.same(jobSteps(true), ['insmod', 'info', 'smoke', 'compute', 'rmmod']);
  t.same(jobSteps(false, 'debian'), ['modprobe', 'info', 'smoke', 'rmmod']);
  for (const root of ['initramfs', 'debian'] as const) {
    const script = driverScript(true, root);
    for (const step of jobSteps(true, root)) t.match(script, new RegExp(`step ${step} ok`), `the ${root} script reports ${step}`);
  }
});

t.test("the tools' results", async (t) => {
  const r = parseToolResults(CONSOLE.split('\n').map((l) => l.trim()));
  t.same(r.info, { version: '1.2', vendor: '0x4d44', device: '0x4750', aperture: '67108864', quota: '33554432' });
  t.same(r.smoke, { pass: 11, fail: 1, failed: ['MDGPU-SMOKE bo-alloc FAIL ENOMEM'] });
  t.same(r.patterns, [{ offset: 0x1000, size: 4096, seed: 7 }]);
  t.same(r.compute.rows, [
    { kernel: 'saxpy', size: '1M', ok: true, ns: 1500000 },
    { kernel: 'gemm', size: '64', ok: false, ns: 2500000 },
  ]);
  t.same(r.compute.checks, { hostile: true });
  t.same([r.compute.pass, r.compute.fail], [2, 1]);
  const empty = parseToolResults([]);
  t.same(empty.info, {});
  t.same([empty.smoke.pass, empty.smoke.fail, empty.compute.fail], [0, -1, -1], 'a tool that printed no result counts as failed');
  t.equal(field('a=1 bb=2 b=3', 'b'), '3', 'whole keys only');
});

t.test("mdgpu-smoke's patterns", async (t) => {
  const seed = 7;
  const bytes = new Uint8Array(64);
  const view = new DataView(bytes.buffer);
  const base = Math.imul(seed, 0x9e3779b1) >>> 0;
  for (let i = 0; i < 16; i++) view.setUint32(4 * i, (base + i) >>> 0, true);
  t.ok(matchesPattern(bytes, seed));
  t.notOk(matchesPattern(bytes, seed + 1), 'another seed');
  bytes[63] = bytes[63]! ^ 1;
  t.notOk(matchesPattern(bytes, seed), 'one bit off');
  t.ok(matchesPattern(bytes.subarray(0, 60), seed), 'a view at an offset of its buffer');
});

t.test('the Debian report', async (t) => {
  const lines = [
    `${DEBIAN_MARKER} kernel=6.12.117+deb13-amd64`,
    `${DEBIAN_MARKER} package=mdgpu-dkms status=install-ok-installed version=0.1.0-1`,
    `${DEBIAN_MARKER} package=libvulkan1 status=-- version=`,
    `${DEBIAN_MARKER} dkms mdgpu/0.1.0, 6.12.117+deb13-amd64, x86_64: installed`,
    `${DEBIAN_MARKER} module=/lib/modules/6.12.117+deb13-amd64/updates/dkms/mdgpu.ko.xz`,
    `${DEBIAN_MARKER} vulkaninfo rc=1`,
    `${VULKANINFO_MARKER} ERROR: Found no drivers!`,
    VULKANINFO_MARKER,
    `${VKLOADER_MARKER} /usr/share/vulkan/explicit_layer.d/VkLayer_khronos_validation.json`,
  ];
  const d = parseDebianReport(lines);
  t.equal(d.kernel, '6.12.117+deb13-amd64');
  t.same(d.packages, { 'mdgpu-dkms': { status: 'install ok installed', version: '0.1.0-1' }, libvulkan1: { status: '  ', version: '' } });
  t.same(d.dkms, ['mdgpu/0.1.0, 6.12.117+deb13-amd64, x86_64: installed']);
  t.equal(d.module, '/lib/modules/6.12.117+deb13-amd64/updates/dkms/mdgpu.ko.xz');
  t.same(d.vulkaninfo, { rc: 1, output: ['ERROR: Found no drivers!', ''] });
  t.same(d.loaderFound, ['/usr/share/vulkan/explicit_layer.d/VkLayer_khronos_validation.json']);
  t.match(driverScript(false, 'debian'), `${DEBIAN_MARKER} vulkaninfo rc=`, 'the script prints what the parser reads');
});

t.test('the probe script prints the lines the parser reads', async (t) => {
  const script = deviceProbeScript(64 << 20);
  for (const marker of ['MDGPU-DEVICE bdf=', 'MDGPU-BAR index=', 'MDGPU-REG ID=', 'MDGPU-SCRATCH ', 'MDGPU-APERTURE readback=']) t.match(script, marker);
  const other = deviceProbeScript(64 << 20, 0x1234, 0x5678, 'busybox devmem');
  t.match(other, /= "0x1234" .* = "0x5678"/, 'the identity it looks for');
  t.match(other, /\$\(busybox devmem \$\(\(regs \+ /, 'the devmem it uses');
});
