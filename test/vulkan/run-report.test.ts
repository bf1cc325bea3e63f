/**
 * `mdgpu run`'s Debian job and the Vulkan part of its report: the guest script runs vulkaninfo
 * and the unmodified Vulkan program while the driver is loaded (before `modprobe -r`), the parser
 * reads their lines back, and checkDebian calls a run good only when vulkaninfo lists the mdgpu
 * device and the program verified its result on it.
 */
import t from 'tap';
import { checkDebian } from '../../src/cli/run.js';
import { parseDebianReport } from '../../src/cli/guest-output.js';
import { DEBIAN_MARKER, driverScript, VKLOADER_MARKER, VKPROGRAM_MARKER, VULKAN_PROGRAM, VULKANINFO_MARKER } from '../../src/cli/guest-script.js';

const kernel = '6.12.117+deb13-amd64';
const base = [
  `${DEBIAN_MARKER} kernel=${kernel}`,
  ...['mdgpu-dkms', 'libmdgpu1', 'mdgpu-tools', 'mdgpu-vulkan-icd'].map((p) => `${DEBIAN_MARKER} package=${p} status=install-ok-installed version=0.1.0`),
  `${DEBIAN_MARKER} dkms mdgpu/0.1.0, ${kernel}, x86_64: installed`,
  `${DEBIAN_MARKER} module=/lib/modules/${kernel}/updates/dkms/mdgpu.ko.xz`,
  `${VKLOADER_MARKER} /usr/share/vulkan/explicit_layer.d/VkLayer_khronos_validation.json`,
];
const vulkaninfo = [
  `${DEBIAN_MARKER} vulkaninfo rc=0`,
  `${VULKANINFO_MARKER} Devices:`,
  `${VULKANINFO_MARKER} GPU0:`,
  `${VULKANINFO_MARKER} \tdeviceName         = mdgpu (llvmpipe (LLVM 15.0.6, 256 bits))`,
];
const program = (ok: number, rc = 0) => [
  `${DEBIAN_MARKER} vulkan-program name=vks-saxpy rc=${rc}`,
  `${VKPROGRAM_MARKER} VKSUITE-DEVICE prog=vks-saxpy name="mdgpu (llvmpipe (LLVM 15.0.6, 256 bits))" api=1.3.309`,
  `${VKPROGRAM_MARKER} VKSUITE name=saxpy ok=${ok} digest=3d2ffd00e73106de ms=4.2`,
];

t.test('the script: vulkaninfo and the Vulkan program run while the driver is loaded', async (t) => {
  const script = driverScript(true, 'debian');
  const at = (s: string) => script.indexOf(s);
  t.ok(at('modprobe mdgpu') >= 0 && at('vulkaninfo --summary >') > at('modprobe mdgpu'), 'vulkaninfo after modprobe');
  t.ok(at(`${VULKAN_PROGRAM} >`) > at('vulkaninfo --summary >'), 'the program after vulkaninfo');
  t.ok(at('modprobe -r mdgpu') > at(`${VULKAN_PROGRAM} >`), 'both before modprobe -r (no device after it)');
  t.match(script, `${DEBIAN_MARKER} vulkan-program name=`, 'prints what the parser reads');
  t.match(script, `sed 's/^/${VKPROGRAM_MARKER} /'`);
});

t.test('the parser and the checks', async (t) => {
  const good = parseDebianReport([...base, ...vulkaninfo, ...program(1)]);
  t.same(good.vulkanProgram.name, 'vks-saxpy');
  t.equal(good.vulkanProgram.rc, 0);
  t.equal(good.vulkanProgram.output.length, 2, 'the program lines');
  t.same(checkDebian(good), [], 'a good run has no problem');

  const noDevice = parseDebianReport([...base, `${DEBIAN_MARKER} vulkaninfo rc=1`, `${VULKANINFO_MARKER} ERROR: Found no drivers!`, ...program(1)]);
  const p1 = checkDebian(noDevice);
  t.ok(
    p1.some((p) => /vulkaninfo --summary failed \(rc 1\)/.test(p)),
    'vulkaninfo failing is a problem',
  );
  t.ok(
    p1.some((p) => /does not list the mdgpu device/.test(p)),
    'and not listing the device',
  );

  t.ok(
    checkDebian(parseDebianReport([...base, ...vulkaninfo, ...program(0, 1)])).some((p) => /did not verify its result/.test(p)),
    'a program whose check failed',
  );
  t.ok(
    checkDebian(parseDebianReport([...base, ...vulkaninfo, `${DEBIAN_MARKER} vulkan-program name=vks-saxpy rc=127`])).some((p) => /did not verify/.test(p)),
    'a missing program',
  );
  const elsewhere = parseDebianReport([...base, ...vulkaninfo, ...program(1).map((l) => l.replace('name="mdgpu (', 'name="llvmpipe ('))]);
  t.ok(
    checkDebian(elsewhere).some((p) => /did not run on the mdgpu device/.test(p)),
    'a program that ran on another device',
  );
  const noIcd = parseDebianReport([...base.filter((l) => !l.includes('mdgpu-vulkan-icd')), ...vulkaninfo, ...program(1)]);
  t.ok(
    checkDebian(noIcd).some((p) => /dpkg -s mdgpu-vulkan-icd/.test(p)),
    'the ICD package must be installed',
  );
});
