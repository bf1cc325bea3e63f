/**
 * The guest's side of `mdgpu run` (src/cli/run.ts): the busybox shell script its init runs, and
 * the markers it prints. The script probes the device from sysfs and with devmem, then loads the
 * guest driver, runs its tools and unloads it; every line meant for mdgpu starts with an
 * `MDGPU-` marker, parsed back by guest-output.ts.
 */
import { DEFAULT_IDENTITY, TRAPPED_WINDOW_SIZE } from '../vgpu/device.js';
import { MDGPU_REGS } from '../vgpu/regs.js';
import { GUEST_MODULE_PATH } from '../guest/image.js';

/** The marker of the job's own lines (`MDGPU-RUN-END rc=<n>` when the init body finished). */
export const GUEST_MARKER = 'MDGPU-RUN';
/** A pattern the guest writes into the directly mapped part of the aperture. */
export const GUEST_PATTERN = 0x6d646770; // "pgdm" little-endian
/** Where the probe stores its pattern: the aperture's last page, which buffers reach last. */
export function guestPatternOffset(apertureSize: number): number {
  return apertureSize - TRAPPED_WINDOW_SIZE + 0x10;
}
export const GUEST_SCRATCH_VALUE = 0x5eed_1234;

/** `MDGPU-STEP <step> ok|FAIL`: one step of the driver job. */
export const STEP_MARKER = 'MDGPU-STEP';
/** Lines about the Debian userland (`root: 'debian'`). */
export const DEBIAN_MARKER = 'MDGPU-DEBIAN';
export const VULKANINFO_MARKER = 'MDGPU-VULKANINFO';
export const VKLOADER_MARKER = 'MDGPU-VKLOADER';
/** The output of the unmodified Vulkan program the Debian job runs through mdgpu's ICD. */
export const VKPROGRAM_MARKER = 'MDGPU-VKPROGRAM';
/**
 * That program: the suite's saxpy (package mdgpu-vulkan-suite), written against the Vulkan API
 * only; it checks its result on the CPU and prints `VKSUITE name=saxpy ok=1|0 ...`.
 */
export const VULKAN_PROGRAM = '/usr/libexec/mdgpu-vulkan-suite/vks-saxpy';

/** The packages `mdgpu run --root debian` reports on (`dpkg -s`). */
export const DEBIAN_REPORTED_PACKAGES = ['mdgpu-dkms', 'libmdgpu1', 'mdgpu-tools', 'mdgpu-vulkan-icd', 'libvulkan1', 'vulkan-tools', 'vulkan-validationlayers'];

/**
 * What the guest boots: the kit's busybox initramfs with the driver built in the kit
 * (`initramfs`, the default), or the Debian image with the driver installed from its Debian
 * packages and built by DKMS (`debian`, src/guest/rootfs.ts).
 */
export type GuestRootKind = 'initramfs' | 'debian';
export const GUEST_ROOT_KINDS: readonly GuestRootKind[] = ['initramfs', 'debian'];

/**
 * The guest side of the job, a busybox shell script. It finds the device in sysfs, prints its
 * identity and BARs in machine-readable lines, enables it, reads the ID register through the
 * trapped register BAR, and writes/reads the directly mapped aperture with devmem.
 */
export function deviceProbeScript(apertureSize: number, vendorId = DEFAULT_IDENTITY.vendorId, deviceId = DEFAULT_IDENTITY.deviceId, devmem = 'devmem'): string {
  const patternOffset = guestPatternOffset(apertureSize);
  const hex4 = (n: number) => `0x${n.toString(16).padStart(4, '0')}`;
  return `
found=0
for d in /sys/bus/pci/devices/*; do
  [ "$(cat $d/vendor)" = "${hex4(vendorId)}" ] && [ "$(cat $d/device)" = "${hex4(deviceId)}" ] || continue
  found=1
  echo "MDGPU-DEVICE bdf=$(basename $d) vendor=$(cat $d/vendor) device=$(cat $d/device) class=$(cat $d/class) subsystem=$(cat $d/subsystem_vendor):$(cat $d/subsystem_device) revision=$(cat $d/revision)"
  i=0
  while read start end flags; do
    if [ $((start)) -ne 0 ]; then echo "MDGPU-BAR index=$i start=$start size=$((end - start + 1)) flags=$flags"; fi
    i=$((i + 1))
  done < $d/resource
  caps=""
  echo 1 > $d/enable
  aperture=$(sed -n 1p $d/resource | cut -d' ' -f1)
  regs=$(sed -n 3p $d/resource | cut -d' ' -f1)
  echo "MDGPU-REG ID=$(${devmem} $((regs + ${MDGPU_REGS.ID.offset})) 32) VERSION=$(${devmem} $((regs + ${MDGPU_REGS.VERSION.offset})) 32) APERTURE_SIZE_LO=$(${devmem} $((regs + ${MDGPU_REGS.APERTURE_SIZE_LO.offset})) 32)"
  ${devmem} $((regs + ${MDGPU_REGS.SCRATCH.offset})) 32 ${GUEST_SCRATCH_VALUE}
  echo "MDGPU-SCRATCH $(${devmem} $((regs + ${MDGPU_REGS.SCRATCH.offset})) 32)"
  ${devmem} $((aperture + ${patternOffset})) 32 ${GUEST_PATTERN}
  echo "MDGPU-APERTURE readback=$(${devmem} $((aperture + ${patternOffset})) 32)"
done
[ $found = 1 ] || echo "MDGPU-DEVICE none"
`;
}

/** The steps of the guest job, in order. */
export function jobSteps(compute: boolean, root: GuestRootKind = 'initramfs'): string[] {
  return [root === 'debian' ? 'modprobe' : 'insmod', 'info', 'smoke', ...(compute ? ['compute'] : []), 'rmmod'];
}

/**
 * The guest's job after the device probe: load the driver, run the tools, unload it. In Debian
 * the module is the one DKMS built (modprobe), the tools are the packages', and the job also
 * reports the packages, DKMS and what the Vulkan loader finds, and, while the driver is loaded,
 * runs `vulkaninfo --summary` and an unmodified Vulkan program through mdgpu's ICD.
 */
export function driverScript(compute: boolean, root: GuestRootKind = 'initramfs'): string {
  const run = compute ? 'if [ -x /usr/bin/mdgpu-run ]; then mdgpu-run && step compute ok || step compute FAIL; else step compute FAIL missing-tool; fi' : '';
  if (root === 'initramfs') {
    return `
step() { echo "${STEP_MARKER} $*"; }
insmod ${GUEST_MODULE_PATH} && step insmod ok || step insmod FAIL
mdgpu-info && step info ok || step info FAIL
mdgpu-smoke && step smoke ok || step smoke FAIL
${run}
rmmod mdgpu && step rmmod ok || step rmmod FAIL
`;
  }
  const DEBIAN = DEBIAN_MARKER;
  return `
step() { echo "${STEP_MARKER} $*"; }
echo "${DEBIAN} kernel=$(uname -r)"
# One dpkg -s for all (each dpkg run reads its whole database: ~70 ms under TCG).
dpkg -s ${DEBIAN_REPORTED_PACKAGES.join(' ')} 2>/dev/null | awk '
  /^Package: / { if (p) print o; p = $2; s = ""; v = "" }
  /^Status: / { s = $2 "-" $3 "-" $4 }
  /^Version: / { v = $2 }
  { o = "${DEBIAN} package=" p " status=" s " version=" v }
  END { if (p) print o }'
dkms status 2>&1 | sed 's/^/${DEBIAN} dkms /'
modprobe mdgpu && step modprobe ok || step modprobe FAIL
echo "${DEBIAN} module=$(modinfo -n mdgpu)"
mdgpu-info && step info ok || step info FAIL
mdgpu-smoke && step smoke ok || step smoke FAIL
${run}
vulkaninfo --summary > /tmp/vulkaninfo.txt 2>&1
echo "${DEBIAN} vulkaninfo rc=$?"
sed 's/^/${VULKANINFO_MARKER} /' /tmp/vulkaninfo.txt
if [ -x ${VULKAN_PROGRAM} ]; then
  ${VULKAN_PROGRAM} > /tmp/vkprogram.txt 2>&1
  echo "${DEBIAN} vulkan-program name=$(basename ${VULKAN_PROGRAM}) rc=$?"
  sed 's/^/${VKPROGRAM_MARKER} /' /tmp/vkprogram.txt
else
  echo "${DEBIAN} vulkan-program name=$(basename ${VULKAN_PROGRAM}) rc=127"
fi
modprobe -r mdgpu && step rmmod ok || step rmmod FAIL
VK_LOADER_DEBUG=driver,layer vulkaninfo --summary 2>&1 | grep -oE '/[^ ]*(icd|layer)[.]d[^ ]*' | sort -u | sed 's/^/${VKLOADER_MARKER} /'
`;
}
