/**
 * Several real guests on one mdgpu daemon sharing one Vulkan device: both run the compute
 * workload concurrently with verified results; then one QEMU is killed (SIGKILL) in the middle
 * of its work while the other finishes, and everything the dead VM held is released; then one
 * guest submits a kernel that would run for hours while the other works: the device is reset,
 * the hanging guest's context is lost and the other guest's results are all correct.
 */
import t from 'tap';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { bootVms } from '../../src/cli/run.js';
import { startDaemon } from '../../src/cli/daemon.js';
import { ensureKit } from '../../src/kit/kit.js';
import type { Kit } from '../../src/kit/kit-tree.js';
import { qemuArgs, spawnQemu } from '../../src/kit/qemu.js';
import { buildGuestDriver, type GuestDriverBuild } from '../../src/guest/build.js';
import { guestImage, GUEST_MODULE_PATH } from '../../src/guest/image.js';
import { loadNative } from '../../src/native/binding.js';
import { setLogSink } from '../../src/log.js';
import type { IsolatedDevice } from '../../src/backend/isolated.js';

setLogSink(() => {});
const native = loadNative();

/** Boot a guest on `socket` that runs `init`; its console output (no CRs) and, line by line, to `onLine`. */
async function bootGuest(kit: Kit, build: GuestDriverBuild, dir: string, socket: string, init: string, onLine: (line: string) => void = () => {}) {
  const initrd = path.join(dir, `${path.basename(socket)}.img`);
  fs.writeFileSync(initrd, await guestImage(kit, build, init));
  let partial = '';
  let output = '';
  const q = spawnQemu(kit, qemuArgs({ accel: 'tcg', memoryMiB: 256, kernel: kit.kernel, initrd, vfioUser: [{ socket }] }), {
    timeoutMs: 300_000,
    onStdout: (c) => {
      const text = c.replace(/\r/g, '');
      output += text;
      partial += text;
      let nl: number;
      while ((nl = partial.indexOf('\n')) >= 0) {
        onLine(partial.slice(0, nl));
        partial = partial.slice(nl + 1);
      }
    },
  });
  return { q, output: () => output };
}

t.test('two guests run the compute workload at the same time on one daemon', async (t) => {
  const r = await bootVms({ accel: 'tcg', apertureSize: 64 << 20, memoryMiB: 256, timeoutMs: 300_000, compute: true, print: (l) => t.comment(l) }, 2);
  t.comment(`two guests, boot to poweroff: ${(r.wallMs / 1000).toFixed(1)} s`);
  for (const vm of r.vms) {
    t.same(vm.problems, [], `${vm.name}: every check passed`);
    t.ok(
      vm.compute !== null && vm.compute.rows.length >= 4 && vm.compute.rows.every((row) => row.ok),
      `${vm.name}: ${vm.compute?.rows.map((row) => row.kernel).join(', ')} verified in the guest`,
    );
    t.equal(vm.compute?.checks.hostile, true, `${vm.name}: a submission naming a buffer that is not its own is refused`);
    t.ok(vm.host.submissions > 0, `${vm.name}: ${vm.host.submissions} submissions on the shared device`);
  }
  t.ok(
    Object.values(r.shares).every((s) => s > 0),
    `both used the device: ${JSON.stringify(r.shares)}`,
  );
});

t.test("killing one QEMU mid-run: the other VM completes, the dead one's resources are released", async (t) => {
  const kit = await ensureKit();
  const build = await buildGuestDriver(kit);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'mdgpu-kill-'));
  const daemon = startDaemon({
    vgpus: [
      { name: 'survivor', socket: path.join(dir, 'a.sock'), apertureSize: 64 << 20, quota: 32 << 20 },
      { name: 'victim', socket: path.join(dir, 'b.sock'), apertureSize: 64 << 20, quota: 32 << 20 },
    ],
    compute: {},
  });
  t.teardown(async () => {
    await daemon.close();
    fs.rmSync(dir, { recursive: true, force: true });
  });
  const [survivor, victim] = daemon.vgpus;
  const fdsBefore = fs.readdirSync('/proc/self/fd').length;
  const mappingsBefore = native.liveMappings();

  // The survivor works for three rounds, so it is still mid-run when the victim dies.
  const survivorInit = `insmod ${GUEST_MODULE_PATH}; rc=0; for i in 1 2 3 4; do mdgpu-run || { rc=$?; break; }; echo "MDGPU-SURVIVOR-ROUND $i"; done; echo "MDGPU-SURVIVOR rc=$rc"; rmmod mdgpu`;
  const victimInit = `insmod ${GUEST_MODULE_PATH}; while true; do mdgpu-run >/dev/null 2>&1; echo MDGPU-VICTIM-LOOP; done`;
  let victimLoops = 0;
  let killedAt = -1;
  const victimVm = await bootGuest(kit, build, dir, victim!.config.socket, victimInit, (line) => {
    if (line.includes('MDGPU-VICTIM-LOOP')) victimLoops++;
  });
  let survivorRoundsAtKill = -1;
  let survivorRounds = 0;
  const survivorVm = await bootGuest(kit, build, dir, survivor!.config.socket, survivorInit, (line) => {
    if (line.includes('MDGPU-SURVIVOR-ROUND')) survivorRounds++;
  });
  // Kill the victim once it is in its second round of work: queues, kernels and buffers live.
  const deadline = Date.now() + 200_000;
  while (victimLoops < 1 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
  while (victim!.executor!.kernelCount === 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 5));
  t.ok(victimLoops >= 1, 'the victim ran the workload at least once');
  const heldBeforeKill = { kernels: victim!.executor!.kernelCount, dma: victim!.device.pci.dma.count, eventfds: victim!.device.pci.irqs.heldFds().length };
  t.ok(
    heldBeforeKill.kernels > 0 && heldBeforeKill.dma > 0 && heldBeforeKill.eventfds > 0,
    `the victim held resources when killed: ${JSON.stringify(heldBeforeKill)}`,
  );
  victimVm.q.child.kill('SIGKILL');
  killedAt = Date.now();
  survivorRoundsAtKill = survivorRounds;
  const victimExit = await victimVm.q.exited;
  t.equal(victimExit.signal, 'SIGKILL', 'victim QEMU killed');

  const survivorExit = await survivorVm.q.exited;
  const out = survivorVm.output();
  t.equal(survivorExit.code, 0, 'the survivor powered off normally');
  t.match(out, /MDGPU-SURVIVOR rc=0/, 'mdgpu-run in the surviving VM passed');
  const verifiedRounds = (out.match(/MDGPU-RUN-RESULT pass=\d+ fail=0/g) ?? []).length;
  t.equal(verifiedRounds, 4, 'every kernel verified in all four rounds of the surviving VM');
  // The survivor's console is the only witness of what went wrong inside it.
  if (verifiedRounds !== 4) for (const line of out.split('\n').filter((l) => /MDGPU|mdgpu/.test(l))) t.comment(`survivor: ${line}`);
  t.ok(
    survivorRoundsAtKill < 4,
    `the survivor was mid-run at the kill (${survivorRoundsAtKill} of 4 rounds done) and finished ${((Date.now() - killedAt) / 1000).toFixed(1)} s later`,
  );

  // Everything of the dead VM is released.
  const settle = Date.now() + 10_000;
  while ((victim!.server.session !== null || victim!.executor!.batchesOnDevice > 0) && Date.now() < settle) await new Promise((r) => setTimeout(r, 20));
  t.equal(victim!.server.session, null, "the victim's session is closed");
  t.equal(victim!.device.pci.dma.count, 0, 'its DMA mappings of guest RAM are unmapped');
  t.same(victim!.device.pci.irqs.heldFds(), [], 'its eventfds are closed');
  t.equal(victim!.device.queues.queueCount, 0, 'its queues are stopped');
  t.equal(victim!.executor!.kernelCount, 0, 'its kernels are released from the host driver');
  t.equal(survivor!.device.queues.kernelCount, 0, 'the survivor has no kernel left once its driver unloaded');
  t.equal(
    survivor!.executor!.kernelCount,
    survivor!.device.queues.kernels.cache.idleCount,
    "the host driver keeps only the survivor's idle cached kernels (its next process reuses them)",
  );
  while (survivor!.server.session !== null && Date.now() < settle) await new Promise((r) => setTimeout(r, 20));
  t.equal(fs.readdirSync('/proc/self/fd').length, fdsBefore, 'no fd left over from either VM');
  t.equal(native.liveMappings(), mappingsBefore, 'no mapping left over from either VM');
});

t.test('a guest submits a kernel that would run for hours: its context is lost, the device is reset, the other guest finishes', async (t) => {
  const kit = await ensureKit();
  const build = await buildGuestDriver(kit);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'mdgpu-hang-'));
  const daemon = startDaemon({
    vgpus: [
      { name: 'worker', socket: path.join(dir, 'a.sock'), apertureSize: 64 << 20, quota: 32 << 20 },
      { name: 'hanger', socket: path.join(dir, 'b.sock'), apertureSize: 64 << 20, quota: 32 << 20 },
    ],
    compute: {},
    // Far above any batch of mdgpu-run here (tens of ms), far below the spin kernel's hours.
    // Batches run whole: this is the reset path (test/e2e/preemption.test.ts has the parts').
    scheduler: { batchTimeLimitNs: 3e9, preempt: false },
  });
  t.teardown(async () => {
    await daemon.close();
    fs.rmSync(dir, { recursive: true, force: true });
  });
  const [worker, hanger] = daemon.vgpus;
  const workerVm = await bootGuest(
    kit,
    build,
    dir,
    worker!.config.socket,
    `insmod ${GUEST_MODULE_PATH}; rc=0; for i in 1 2 3; do mdgpu-run || { rc=$?; break; }; done; echo "MDGPU-WORKER rc=$rc"; rmmod mdgpu`,
  );
  const hangerVm = await bootGuest(kit, build, dir, hanger!.config.socket, `insmod ${GUEST_MODULE_PATH}; mdgpu-run -H; echo "MDGPU-HANGER rc=$?"; rmmod mdgpu`);
  const [workerExit, hangerExit] = await Promise.all([workerVm.q.exited, hangerVm.q.exited]);
  const hangOut = hangerVm.output();
  const workOut = workerVm.output();
  const hang = hangOut.split('\n').find((l) => l.startsWith('MDGPU-RUN check=hang')) ?? '';
  t.equal(hangerExit.code, 0, 'the hanging guest powered off normally');
  t.match(
    hang,
    /ok=1 wait=EIO fence=0x8[0-9a-f]{15} error=CONTEXT_LOST turns=[1-9]\d* ns=\d+ after=EIO/,
    `in the guest: error fence, CONTEXT_LOST, the context stays lost (${hang})`,
  );
  t.match(hangOut, /MDGPU-HANGER rc=0/, 'mdgpu-run -H passed');
  t.equal(workerExit.code, 0, 'the other guest powered off normally');
  t.match(workOut, /MDGPU-WORKER rc=0/, 'and all three of its rounds of mdgpu-run passed');
  t.equal((workOut.match(/MDGPU-RUN-RESULT pass=\d+ fail=0/g) ?? []).length, 3, 'every kernel verified in every round');
  const compute = daemon.compute as IsolatedDevice;
  t.equal(compute.resets, 1, 'the device was reset once');
  t.equal(daemon.scheduler.stats().find((s) => s.name === 'hanger')!.timeouts, 1, "one overrun, the hanger's");
  t.equal(daemon.scheduler.stats().find((s) => s.name === 'worker')!.timeouts, 0, "none of the other guest's batches overran");
  if (!/MDGPU-WORKER rc=0/.test(workOut) || !/ok=1/.test(hang)) {
    for (const line of [...hangOut.split('\n'), ...workOut.split('\n')].filter((l) => /MDGPU|mdgpu/.test(l))) t.comment(line);
  }
});
