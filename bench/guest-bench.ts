/**
 * Shared by the benchmarks: boot one guest with the guest driver against a fresh mdgpu (with the
 * Vulkan backend), run a shell command in it, and record mdgpu's trapped-access counts at every
 * phase mark the guest tools write (MDGPU_IOCTL_MARK → SCRATCH).
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { startServer } from '../src/cli/serve.js';
import { ensureKit } from '../src/kit/kit.js';
import { runGuest, type AccelChoice, type GuestResult } from '../src/kit/qemu.js';
import { buildGuestDriver } from '../src/guest/build.js';
import { guestImage, GUEST_MODULE_PATH } from '../src/guest/image.js';
import { setLogSink } from '../src/log.js';
import type { VgpuShareStats } from '../src/sched/scheduler.js';

export interface Mark {
  value: number;
  /** All trapped accesses (VM exits to mdgpu) so far, when the mark arrived. */
  trapped: number;
  doorbells: number;
  submissions: number;
  at: number;
}

export interface GuestBenchResult {
  guest: GuestResult;
  marks: Mark[];
  lines: string[];
  qemuVersion: string;
  /** The scheduler's account of the guest's batches (device submissions, device time). */
  sched: VgpuShareStats;
}

export async function runGuestBench(opts: {
  command: string;
  apertureSize: number;
  quota?: number;
  accel?: AccelChoice;
  memoryMiB?: number;
  timeoutMs?: number;
  /** Run long batches in parts (the default) or whole (`mdgpu serve --no-preempt`). */
  preempt?: boolean;
}): Promise<GuestBenchResult> {
  setLogSink(() => {});
  const kit = await ensureKit();
  const build = await buildGuestDriver(kit);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'mdgpu-bench-'));
  const socket = path.join(dir, 'vgpu0.sock');
  const running = startServer({
    socket,
    apertureSize: opts.apertureSize,
    ...(opts.quota !== undefined ? { quota: opts.quota } : {}),
    name: 'bench',
    compute: {},
  });
  const device = running.device;
  if (opts.preempt !== undefined) running.daemon.scheduler.preemptive = opts.preempt;
  const marks: Mark[] = [];
  device.scratchListeners.push((value) => {
    marks.push({
      value,
      trapped: device.pci.trappedAccesses,
      doorbells: device.queues.totals.doorbells,
      submissions: device.queues.totals.submissions,
      at: Date.now(),
    });
  });
  try {
    const init = `insmod ${GUEST_MODULE_PATH} && ${opts.command}; rmmod mdgpu`;
    const guest = await runGuest(kit, {
      accel: opts.accel ?? 'tcg',
      initrd: await guestImage(kit, build, init),
      vfioUser: [{ socket }],
      memoryMiB: opts.memoryMiB ?? 512,
      timeoutMs: opts.timeoutMs ?? 900_000,
    });
    const sched = running.daemon.scheduler.stats()[0]!;
    return { guest, marks, lines: guest.output.split('\n').map((l) => l.trim()), qemuVersion: kit.qemuVersion, sched };
  } finally {
    await running.close();
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

/** `key=value` fields of a machine line. */
export function fields(line: string): Record<string, string> {
  return Object.fromEntries(
    line
      .trim()
      .split(/\s+/)
      .slice(1)
      .filter((kv) => kv.includes('='))
      .map((kv) => kv.split('=') as [string, string]),
  );
}

/** Trapped accesses between the mark `begin` and the next mark (which is itself one trapped write). */
export function trappedInPhase(marks: Mark[], begin: number): number | undefined {
  const i = marks.findIndex((m) => m.value === begin);
  const next = marks[i + 1];
  if (i < 0 || next === undefined) return undefined;
  return next.trapped - marks[i]!.trapped - 1;
}

export function table(header: string[], rows: string[][]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const fmt = (r: string[]) => r.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join('  ');
  return [fmt(header), ...rows.map(fmt)].join('\n');
}
