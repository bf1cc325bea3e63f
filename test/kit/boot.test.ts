/**
 * A real boot: the kit's kernel under TCG with a busybox initramfs, behind q35 with a
 * pinned root port and a built-in PCI device. Fails (never skips) when the kit is missing:
 * CI builds it (`node bin/mdgpu.js kit`, as root).
 */
import t from 'tap';
import * as fs from 'node:fs';
import { ensureKit } from '../../src/kit/kit.js';
import { busyboxApplets, guestInitramfs, initScript } from '../../src/kit/initramfs.js';
import { probeKvm, resolveAccel, runGuest } from '../../src/kit/qemu.js';

const kit = await ensureKit();

t.test('the kit has what guests and the driver build need', async (t) => {
  t.match(kit.qemuVersion, /^(1[1-9]|10\.[1-9])\./, 'QEMU ≥ 10.1 (vfio-user-pci client)');
  t.match(kit.kernelVersion, /^\d+\.\d+/);
  for (const p of [kit.kernel, kit.busybox, kit.modulesDir, kit.headersDir, kit.qemu.command]) t.ok(fs.existsSync(p), p);
  t.ok(fs.existsSync(`${kit.headersDir}/Makefile`), 'kbuild Makefile present');
  t.ok(fs.existsSync(`${kit.root}/usr/bin/gcc`), 'gcc present');
  const applets = await busyboxApplets(kit.busybox);
  for (const a of ['sh', 'mount', 'cat', 'poweroff', 'insmod', 'uname']) t.ok(applets.includes(a), `busybox has ${a}`);
});

t.test('boot the kit kernel under TCG to a marker and a clean power-off', async (t) => {
  const init = initScript(`echo "MDGPU-GUEST-OK $(uname -r)"
for d in /sys/bus/pci/devices/*; do
	echo "PCI $(basename $d) $(cat $d/vendor) $(cat $d/device) $(cat $d/class)"
done`);
  const initrd = await guestInitramfs(kit, { init });
  const lines: string[] = [];
  const r = await runGuest(kit, {
    initrd,
    accel: 'tcg',
    timeoutMs: 120_000,
    // A device QEMU has built in, behind root port rp0 at 00:10.0: the guest must find it on bus 1.
    devices: [{ driver: 'edu' }],
    onLine: (l) => lines.push(l),
  });
  t.comment(`TCG boot to power-off took ${r.durationMs} ms`);
  const output = r.output;
  t.equal(r.timedOut, false, 'finished before the deadline');
  t.equal(r.code, 0, `QEMU exit code 0 (stderr: ${r.stderr.trim()})`);
  t.equal(r.signal, null);
  t.equal(r.accel, 'tcg');
  t.match(output, new RegExp(`^MDGPU-GUEST-OK ${kit.kernelVersion.replace(/[.+]/g, '\\$&')}$`, 'm'), 'marker with the kit kernel version');
  t.match(output, /^MDGPU-INIT-END rc=0$/m, 'init body ran to completion');
  t.match(output, /^PCI 0000:00:00\.0 0x8086 0x29c0 0x060000$/m, 'q35 host bridge');
  t.match(output, /^PCI 0000:00:10\.0 0x1b36 0x000c 0x060400$/m, 'root port at the pinned address');
  t.match(output, /^PCI 0000:01:00\.0 0x1234 0x11e8 0x00ff00$/m, 'edu behind the root port');
  t.ok(lines.includes('MDGPU-INIT-BEGIN'), 'onLine sees whole lines');
});

t.test('a guest that never powers off is killed at the deadline', async (t) => {
  const initrd = await guestInitramfs(kit, { init: '#!/bin/sh\necho MDGPU-HANG\nwhile :; do sleep 1; done\n', applets: ['sh', 'echo', 'sleep'] });
  let seen = '';
  // Not quiet: the kernel's banner is the first console line, so the test
  // sees streamed output even when a loaded CI machine has not reached init
  // by the deadline (the deadline, not the guest, is what this checks).
  const append = 'console=ttyS0 panic=-1 no_timer_check';
  const r = await runGuest(kit, { initrd, append, timeoutMs: 20_000, onOutput: (c) => (seen += c) });
  t.equal(r.timedOut, true, 'timedOut is set (QEMU itself exits 0 on SIGTERM)');
  t.match(seen, /Linux version/, 'output streamed before the kill');
});

t.test('accelerator choice: explicit TCG, auto falls back to TCG unless the KVM probe passes', async (t) => {
  t.equal(await resolveAccel(kit, 'tcg'), 'tcg');
  t.equal(await resolveAccel(kit, 'kvm'), 'kvm');
  const probe = await probeKvm(kit);
  t.comment(`KVM probe: ${probe.ok ? 'ok' : 'not usable'}: ${probe.reason}`);
  t.type(probe.ok, 'boolean');
  t.equal(await resolveAccel(kit, 'auto'), probe.ok ? 'kvm' : 'tcg');
  t.same(await probeKvm(kit), probe, 'the probe result is cached');
});
