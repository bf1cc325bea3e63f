/**
 * The guest driver in a real guest, in one boot: the kit kernel under TCG loads mdgpu.ko against
 * a real mdgpu server, and mdgpu-info, mdgpu-smoke and a short mdgpu-bench run in it. Checked
 * from both sides: every smoke check passes in the guest; what mdgpu-info reports is the
 * device's configuration; the patterns the guest wrote through its direct mappings are in
 * mdgpu's memfd at the allocator's offsets (captured by the onRelease hook as each buffer is
 * freed); the driver took MSI-X, never INTx; a hot-unplug under an open file revokes it and
 * frees its buffers, and the device comes back clean on rescan; and unloading the driver leaves
 * no context or buffer on the device. Fails (never skips) when the kit is missing.
 */
import t from 'tap';
import * as fsp from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import { startServer } from '../../src/cli/serve.js';
import { ensureKit } from '../../src/kit/kit.js';
import { runGuest } from '../../src/kit/qemu.js';
import { buildGuestDriver } from '../../src/guest/build.js';
import { guestImage, GUEST_MODULE_PATH } from '../../src/guest/image.js';
import { setLogSink } from '../../src/log.js';
import { IrqIndex } from '../../src/pci/irqs.js';
import { ALLOC_BASE, APERTURE_BAR } from '../../src/vgpu/device.js';
import { MDGPU_CONTRACT_MAJOR, MDGPU_CONTRACT_MINOR } from '../../src/vgpu/regs.js';

const APERTURE = 64 << 20;
const QUOTA = 32 << 20;
const MARKER = 'MDGPU-DRV';
const PATTERN_MUL = 0x9e3779b1;

const hostLog: string[] = [];
setLogSink((line) => hostLog.push(line));

const kit = await ensureKit();
const build = await buildGuestDriver(kit, { log: (l) => t.comment(l) });

const INIT = `
step() { echo "${MARKER} $*"; }
insmod ${GUEST_MODULE_PATH} && step insmod ok || step insmod FAIL
[ -c /dev/mdgpu0 ] && step dev ok "$(ls -l /dev/mdgpu0)" || step dev FAIL missing
step irq "$(grep mdgpu /proc/interrupts | tr -s ' ')"
mdgpu-info; step info rc=$?
mdgpu-smoke; step smoke rc=$?
mdgpu-bench -s 8M -t 64K; step bench rc=$?
mdgpu-smoke -u; step unplug rc=$?
rmmod mdgpu && step rmmod ok || step rmmod FAIL
[ -e /dev/mdgpu0 ] && step dev-after-rmmod FAIL present || step dev-after-rmmod ok gone
dmesg | grep -i mdgpu
step dmesg-problems "$(dmesg | grep -c -E 'BUG|WARNING|Oops|Call Trace|general protection')"
`;

interface Capture {
  offset: number;
  size: number;
  bytes: Uint8Array;
}

/** The value of `key=` in a line of `key=value` fields. */
function field(line: string, key: string): string | undefined {
  return new RegExp(`(?:^|\\s)${key}=(\\S+)`).exec(line)?.[1];
}

function matchesPattern(bytes: Uint8Array, seed: number): boolean {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const base = Math.imul(seed, PATTERN_MUL) >>> 0;
  for (let i = 0; i < bytes.byteLength / 4; i++) {
    if (view.getUint32(4 * i, true) !== (base + i) >>> 0) return false;
  }
  return true;
}

t.test('mdgpu.ko, mdgpu-info and mdgpu-smoke in a real guest', async (t) => {
  const dir = await fsp.mkdtemp(path.join(os.tmpdir(), 'mdgpu-driver-'));
  t.teardown(() => fsp.rm(dir, { recursive: true, force: true }));
  const socket = path.join(dir, 'vgpu0.sock');
  const running = startServer({ socket, apertureSize: APERTURE, quota: QUOTA, name: 'vgpu0' });
  t.teardown(() => running.close());
  const { device } = running;
  t.equal(device.memory.quota, QUOTA, 'the server has the quota');

  const captures: Capture[] = [];
  device.memory.onRelease = (b) => captures.push({ offset: b.offset, size: b.size, bytes: device.aperture.slice(b.offset, b.offset + b.size) });

  // Device state sampled as the guest reports each step: the guest's mailbox operations are
  // synchronous, so by the time a line arrives mdgpu has done everything before it.
  const at: Record<string, { contexts: number; buffers: number; msix: boolean; vector0: boolean; irqEnable: number }> = {};
  const onLine = (line: string) => {
    const m = new RegExp(`^${MARKER} (\\S+)`).exec(line);
    if (m) {
      at[m[1]!] = {
        contexts: device.memory.contextCount,
        buffers: device.memory.bufferCount,
        msix: device.pci.msixEnabled,
        vector0: device.pci.irqs.hasMsixVector(0),
        irqEnable: device.regs.get('IRQ_ENABLE'),
      };
    }
  };

  const initrd = await guestImage(kit, build, INIT, { marker: MARKER });
  const r = await runGuest(kit, { accel: 'tcg', initrd, vfioUser: [{ socket }], memoryMiB: 256, timeoutMs: 240_000, onLine });
  t.comment(`guest boot + insmod + info + smoke + bench + unplug/rescan + rmmod + poweroff: ${(r.durationMs / 1000).toFixed(1)} s under TCG`);
  const lines = r.output.split('\n').map((l) => l.trimEnd());
  const diagnostics = () =>
    `--- guest console (last 60 lines) ---\n${lines.slice(-60).join('\n')}\n--- mdgpu log ---\n${hostLog.slice(-20).join('\n')}\n${r.stderr}`;

  t.notOk(r.timedOut, 'the guest finished before the deadline');
  t.equal(r.code, 0, 'QEMU exited cleanly');
  const ended = lines.includes(`${MARKER}-END rc=0`);
  t.ok(ended, 'the init script ran to completion');
  if (!ended) t.comment(diagnostics());

  // The module loads, binds, creates /dev/mdgpu0 and takes an MSI-X vector.
  t.ok(lines.includes(`${MARKER} insmod ok`), 'insmod mdgpu.ko');
  t.ok(
    lines.some((l) => l.startsWith(`${MARKER} dev ok`) && /^\S+ \S+ \S+ c/.test(l)),
    '/dev/mdgpu0 is a character device',
  );
  const irqLine = lines.find((l) => l.startsWith(`${MARKER} irq `)) ?? '';
  t.match(irqLine, /MSI-?X/i, `the guest's /proc/interrupts shows an MSI-X vector for mdgpu: ${irqLine}`);
  t.ok(
    lines.some((l) => /mdgpu 0000:\S+: mdgpu0: mdgpu contract \d+\.\d+, aperture 64 MiB .* quota 32 MiB/.test(l)),
    'probe dev_info line',
  );
  t.same(
    at.irq && { msix: at.irq.msix, vector0: at.irq.vector0, irqEnable: at.irq.irqEnable },
    { msix: true, vector0: true, irqEnable: 0b1111 },
    'while loaded: MSI-X enabled, vector 0 wired, MAILBOX, FENCE, ERROR and KERNEL sources enabled',
  );
  t.same(at.insmod && { contexts: at.insmod.contexts, buffers: at.insmod.buffers }, { contexts: 0, buffers: 0 }, 'probe leaves no context behind');
  t.ok(device.pci.irqs.signalled[IrqIndex.MSIX]! > 0, `mdgpu signalled MSI-X (${device.pci.irqs.signalled[IrqIndex.MSIX]} times)`);
  t.equal(device.pci.irqs.signalled[IrqIndex.INTX], 0, 'and never INTx');

  // mdgpu-info reports the device's configuration.
  t.ok(lines.includes(`${MARKER} info rc=0`), 'mdgpu-info exit status 0');
  const info = lines.find((l) => l.startsWith('MDGPU-INFO ')) ?? '';
  t.equal(field(info, 'version'), `${MDGPU_CONTRACT_MAJOR}.${MDGPU_CONTRACT_MINOR}`, 'contract version');
  t.equal(field(info, 'vendor'), '0x4d44', 'vendor');
  t.equal(field(info, 'device'), '0x4750', 'device');
  t.equal(Number(field(info, 'aperture')), APERTURE, 'aperture size');
  t.equal(Number(field(info, 'alloc_base')), ALLOC_BASE, 'allocation base');
  t.equal(Number(field(info, 'quota')), QUOTA, 'quota');
  t.equal(Number(field(info, 'used')), 0, 'nothing allocated');

  // Every smoke check passes: the main run, then the hot-unplug run (-u).
  const runs: [string, string, string, string[]][] = [
    [
      'mdgpu-smoke',
      `${MARKER} info rc=0`,
      `${MARKER} smoke rc=`,
      [
        'pattern-4',
        'window-read',
        'window-write',
        'destroy-mapped',
        'mmap-beyond',
        'double-free',
        'realloc-zeroed',
        'quota-exceed',
        'quota-undisturbed',
        'other-mmap',
        'window-busy',
        'fork-cleanup',
        'queue-create',
        'queue-bo-busy',
        'doorbell-other',
        'kernel-create-not-spirv',
        'wait-timeout',
        'wait-error-fence',
        'wait-error-later',
        'queue-destroy',
        'mark',
        'irq',
        'final-used',
      ],
    ],
    [
      'mdgpu-smoke -u',
      `${MARKER} bench rc=`,
      `${MARKER} unplug rc=`,
      ['unplug-remove', 'unplug-fence-wait', 'unplug-info', 'unplug-mmap', 'unplug-sigbus', 'unplug-window-sigbus', 'rescan', 'rescan-clean'],
    ],
  ];
  for (const [what, from, to, expected] of runs) {
    const start = lines.findIndex((l) => l.startsWith(from));
    const end = lines.findIndex((l) => l.startsWith(to));
    const section = start >= 0 && end > start ? lines.slice(start + 1, end) : [];
    const smoke = section.filter((l) => /^MDGPU-SMOKE \S+ (ok|FAIL)\b/.test(l));
    const failed = smoke.filter((l) => / FAIL\b/.test(l));
    t.same(failed, [], `${what}: no check failed`);
    if (failed.length > 0) t.comment(diagnostics());
    const names = new Set(smoke.map((l) => l.split(' ')[1]));
    for (const name of expected) t.ok(names.has(name), `${what}: check ${name} ran`);
    const result = section.find((l) => l.startsWith('MDGPU-SMOKE-RESULT ')) ?? '';
    t.equal(field(result, 'fail'), '0', `${what}: ${result}`);
    t.equal(Number(field(result, 'pass')), smoke.length, `${what}: the result counts every check line`);
    t.ok(lines.includes(`${to}0`), `${what}: exit status 0`);
  }
  t.same(
    at.smoke && { contexts: at.smoke.contexts, buffers: at.smoke.buffers },
    { contexts: 0, buffers: 0 },
    'after mdgpu-smoke every file is closed: no context, no buffer',
  );
  t.same(
    at.unplug && { contexts: at.unplug.contexts, buffers: at.unplug.buffers },
    { contexts: 0, buffers: 0 },
    "the unplug destroyed the open file's context, and the re-probed device is clean",
  );

  // The guest's stores through its mappings are in mdgpu's memfd, at the allocator's offsets.
  const patterns = lines.filter((l) => l.startsWith('MDGPU-SMOKE-PATTERN '));
  t.ok(patterns.length >= 12, `${patterns.length} pattern buffers reported (one freed by the driver's remove)`);
  const seeds = new Set<number>();
  for (const line of patterns) {
    const offset = Number(field(line, 'offset'));
    const size = Number(field(line, 'size'));
    const seed = Number(field(line, 'seed'));
    seeds.add(seed);
    const candidates = captures.filter((c) => c.offset === offset && c.size === size);
    t.ok(
      candidates.some((c) => matchesPattern(c.bytes, seed)),
      `memfd holds seed ${seed} at 0x${offset.toString(16)} (${size} bytes) when freed (${candidates.length} releases there)`,
    );
  }
  t.equal(seeds.size, patterns.length, 'seeds are unique');
  t.ok(captures.length >= patterns.length, `${captures.length} buffers released`);

  // Those bytes went through the direct mapping: only the window (and the bench's trapped
  // loop) reached mdgpu as trapped accesses to BAR0.
  const trapped = device.pci.trappedReads[APERTURE_BAR]! + device.pci.trappedWrites[APERTURE_BAR]!;
  t.ok(trapped < 20_000, `aperture accesses that trapped: ${trapped} (window only; the ~20 MB of patterns did not trap)`);

  // The benchmark ran both paths.
  t.ok(lines.includes(`${MARKER} bench rc=0`), 'mdgpu-bench exit status 0');
  for (const p of ['path=direct op=write', 'path=direct op=read', 'path=trapped op=write', 'path=trapped op=read']) {
    const l = lines.find((x) => x.startsWith(`MDGPU-BENCH ${p} `));
    t.ok(l && Number(field(l, 'ns')) > 0, `bench: ${l ?? p}`);
  }
  t.ok(lines.includes('trapped writes seen through the direct mapping: yes (0 words differ)'), 'bench: trapped writes reached the buffer');
  t.ok(lines.includes('direct writes seen through the trapped window: yes (0 words differ)'), 'bench: direct writes read back through the window');

  // rmmod: the device is left clean.
  t.ok(lines.includes(`${MARKER} rmmod ok`), 'rmmod mdgpu');
  t.ok(lines.includes(`${MARKER} dev-after-rmmod ok gone`), '/dev/mdgpu0 is gone');
  t.same(
    at.rmmod && { contexts: at.rmmod.contexts, buffers: at.rmmod.buffers, irqEnable: at.rmmod.irqEnable },
    { contexts: 0, buffers: 0, irqEnable: 0 },
    'after rmmod: no context, no buffer, interrupts disabled',
  );
  t.ok(
    lines.some((l) => /mdgpu0 removed/.test(l)),
    'remove dev_info line',
  );
  t.ok(lines.includes(`${MARKER} dmesg-problems 0`), 'no BUG/WARNING/Oops in the guest kernel log');
  t.equal(device.memory.contextCount, 0, 'finally: no context on the device');
  t.equal(device.memory.bufferCount, 0, 'finally: no buffer on the device');
});
