/**
 * The README's main job (`mdgpu run`) as a test: a real Linux guest (the kit's kernel, a busybox
 * initramfs) boots under the kit's QEMU against a real mdgpu, enumerates the device, touches
 * both BARs, loads the guest driver, runs mdgpu-info, mdgpu-smoke and the compute workload, and
 * unloads the driver. Runs under TCG (KVM is not dependable on these machines; see DESIGN.md).
 */
import t from 'tap';
import { GUEST_PATTERN, GUEST_SCRATCH_VALUE } from '../../src/cli/guest-script.js';
import { bootAndProbe } from '../../src/cli/run.js';
import { setLogSink } from '../../src/log.js';

setLogSink(() => {});
const APERTURE = 64 << 20;
// The whole main job, compute included (mdgpu-run on the host's Vulkan device through mdgpu).
const COMPUTE = true;

t.test('mdgpu run: a Linux guest sees the device as documented and uses it through its driver', async (t) => {
  const r = await bootAndProbe({ accel: 'tcg', apertureSize: APERTURE, memoryMiB: 256, timeoutMs: 240_000, compute: COMPUTE, print: (l) => t.comment(l) });
  t.comment(`guest boot + job + poweroff: ${(r.guest.durationMs / 1000).toFixed(1)} s under ${r.guest.accel}`);
  t.notOk(r.guest.timedOut, 'QEMU exited by itself');
  t.equal(r.guest.code, 0, 'QEMU exited cleanly (guest powered off)');
  t.equal(r.view.initStatus, 0, 'the guest init script finished');
  t.equal(r.view.vendor, '0x4d44', 'vendor id');
  t.equal(r.view.device, '0x4750', 'device id');
  t.equal(r.view.class, '0x030200', 'class: 3D controller');
  const bar0 = r.view.bars.find((b) => b.index === 0);
  const bar2 = r.view.bars.find((b) => b.index === 2);
  t.equal(bar0?.size, BigInt(APERTURE), 'BAR0 = the aperture size');
  t.ok(bar0 !== undefined && (bar0.flags & 0x4) !== 0 && (bar0.flags & 0x8) !== 0, 'BAR0 64-bit prefetchable (IORESOURCE_MEM_64 | PREFETCH)');
  t.equal(bar2?.size, 0x4000n, 'BAR2 = 16 KiB of registers');
  t.equal(r.view.regs.ID, 0x4d444750, 'ID register read through the trapped BAR');
  t.equal(r.view.regs.APERTURE_SIZE_LO, APERTURE, 'APERTURE_SIZE register');
  t.equal(r.view.scratch, GUEST_SCRATCH_VALUE, 'SCRATCH reads back in the guest');
  t.equal(r.view.apertureReadback, GUEST_PATTERN, 'aperture store reads back in the guest');
  t.equal(r.host.patternInMemfd, GUEST_PATTERN, "...and is in mdgpu's memfd: the BAR is mapped straight onto it");
  t.ok((r.host.messages.Version ?? 0) >= 1 && (r.host.messages.DmaMap ?? 0) >= 1, 'QEMU negotiated and mapped guest RAM');
  t.ok((r.host.messages.DeviceReset ?? 0) >= 1, 'QEMU reset the device at machine start');
  t.same(
    Object.fromEntries(Object.entries(r.steps).map(([k, v]) => [k, v.status])),
    { insmod: 'ok', info: 'ok', smoke: 'ok', ...(COMPUTE ? { compute: 'ok' } : {}), rmmod: 'ok' },
    'every guest step ok',
  );
  t.equal(r.smoke.fail, 0, `mdgpu-smoke: ${r.smoke.pass} checks passed`);
  t.ok(
    r.patterns.reported > 0 && r.patterns.verified === r.patterns.reported,
    `guest patterns in mdgpu's memfd: ${r.patterns.verified}/${r.patterns.reported}`,
  );
  t.equal(r.host.intxSignals, 0, 'no INTx');
  t.ok(r.host.msixSignals > 0, 'MSI-X interrupts delivered');
  t.equal(r.host.contextsLeft + r.host.buffersLeft, 0, 'nothing left on the device after rmmod');
  t.ok(
    r.compute !== null && r.compute.rows.length >= 4 && r.compute.rows.every((row) => row.ok),
    `compute: ${r.compute?.rows.map((row) => `${row.kernel} ${row.ok ? 'ok' : 'WRONG'}`).join(', ')}`,
  );
  t.same(r.compute?.checks, { hostile: true, 'irq-wait': true }, 'hostile submission refused, fence wait woken by an interrupt');
  t.ok(r.host.submissions > 0 && r.host.submissionErrors > 0, `mdgpu ran ${r.host.submissions} submissions and refused ${r.host.submissionErrors}`);
  t.same(r.problems, []);
});
