/**
 * The innocent VM of an attack test or benchmark, and what the attack cost it: while another
 * vGPU of the same daemon is attacked, the victim keeps doing what a guest does — register
 * traffic over its real vfio-user socket (write SCRATCH, read it back: every access waits for
 * the daemon's event loop) and small submissions through a queue (a 4 KiB FILL with a fence,
 * through the shared compute device) — and records how long each took and which failed.
 *
 * - {@link Victim.open}: the daemon runs in this process (`startDaemon`); the queue is driven on
 *   the device directly (test/helpers/host-guest.ts), the registers over the socket.
 * - {@link Victim.connect}: the daemon is another process (`mdgpu serve`, bench:hostile); the
 *   aperture is mapped from the fd its region info carries (test/helpers/socket-guest.ts), so
 *   the queue is driven as a VM does, with loads, stores and trapped doorbells.
 *
 * {@link LoopWatch} measures the daemon's side when it runs in this process: the longest
 * event-loop stall, the busiest one, and the peak RSS growth. Together with the victim's report
 * this is what "the attack did not stop, slow or corrupt another tenant" means in the hostile
 * tests and in `npm run bench:hostile` (wide bounds: shared 2-core machines are noisy).
 */
import * as fs from 'node:fs';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import type { RunningVgpu } from '../../src/cli/daemon.js';
import { VfioUserClient } from '../../src/client/client.js';
import type { NativeBinding } from '../../src/native/binding.js';
import { REGISTER_BAR } from '../../src/vgpu/device.js';
import { QueueControl } from '../../src/vgpu/queue-ring.js';
import { MDGPU_REGS } from '../../src/vgpu/regs.js';
import { HostGuest } from './host-guest.js';
import { SocketGuest } from './socket-guest.js';

export interface VictimReport {
  /** Trapped reads of SCRATCH that returned what the victim had just written there: round trips, ms, sorted. */
  reads: number[];
  /** Register accesses refused, timed out or reading back something else. */
  readFailures: number;
  /** Submissions from publish to their fence, ms, sorted. */
  submissions: number[];
  /** Submissions that failed (their error) or never completed. */
  failures: string[];
  /** Whether the victim's connection was still up at the end. */
  connected: boolean;
  seconds: number;
  /** The first few errors, reads' and submissions', for failure messages. */
  firstErrors: string[];
}

/** The `p`-th percentile (0–100) of sorted values. */
export function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return Number.NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

/** How the victim's submissions reach its queue: one FILL + fence, resolved when the fence holds `value`. */
interface VictimQueue {
  submit(value: bigint): Promise<void>;
  close(): void;
}

/** A queue of a device in this process, filled through the aperture, completions from the queue engine. */
function hostQueue(vgpu: RunningVgpu): VictimQueue {
  const guest = new HostGuest(vgpu.device);
  const target = guest.alloc(0x1000);
  const fence = guest.alloc(0x1000);
  const publish = guest.queue();
  return {
    async submit(value) {
      const before = guest.done.length;
      publish(SocketGuest.fillWithFence(target, fence, value));
      await guest.completions(before + 1);
      const error = guest.done[before];
      if (error !== null && error !== undefined) throw new Error(error);
      const seen = guest.view.getBigUint64(fence.offset, true);
      if (seen !== value) throw new Error(`fence ${seen}, expected ${value}`);
    },
    close() {},
  };
}

/** A queue driven as a VM drives it: the aperture mapped from its fd, doorbells over the socket. */
async function socketQueue(guest: SocketGuest): Promise<VictimQueue> {
  const q = await guest.queue();
  const target = await guest.alloc(0x1000);
  const fence = await guest.alloc(0x1000);
  return {
    async submit(value) {
      const before = q.completed();
      const errorsBefore = guest.view.getBigUint64(q.ring.offset + QueueControl.fields.errors.offset, true);
      await q.publish(SocketGuest.fillWithFence(target, fence, value));
      await guest.waitCompleted(q.completed, before + 1n);
      const errors = guest.view.getBigUint64(q.ring.offset + QueueControl.fields.errors.offset, true);
      if (errors !== errorsBefore) throw new Error(`the submission failed (queue errors ${errorsBefore} → ${errors})`);
      const seen = guest.view.getBigUint64(fence.offset, true);
      if (seen !== value) throw new Error(`fence ${seen}, expected ${value}`);
    },
    close() {
      guest.close();
    },
  };
}

export class Victim {
  private running = false;
  private loops: Promise<void>[] = [];
  private reads: number[] = [];
  private readFailures = 0;
  private submissions: number[] = [];
  private failures: string[] = [];
  private errors: string[] = [];
  private startedAt = 0;
  private fenceValue = 0n;
  private scratchValue = 0;

  private constructor(
    private readonly client: VfioUserClient,
    private readonly queue: VictimQueue,
    private readonly ownsClient: boolean,
  ) {}

  /** A victim of a daemon in this process: its own client on the vGPU's socket, a context, buffers and a queue. */
  static async open(vgpu: RunningVgpu, native: NativeBinding): Promise<Victim> {
    const client = VfioUserClient.connect(native, vgpu.config.socket);
    await client.version();
    return new Victim(client, hostQueue(vgpu), true);
  }

  /** A victim of a daemon in another process, over its socket only. */
  static async connect(native: NativeBinding, socket: string): Promise<Victim> {
    const guest = await SocketGuest.connect(native, socket);
    return new Victim(guest.client, await socketQueue(guest), false);
  }

  /** Write a new value to SCRATCH, then read it back; the read's round trip, ms. Throws if it reads something else. */
  async read(): Promise<number> {
    const value = ++this.scratchValue >>> 0;
    const bytes = new Uint8Array(4);
    new DataView(bytes.buffer).setUint32(0, value, true);
    await this.client.regionWrite(REGISTER_BAR, MDGPU_REGS.SCRATCH.offset, bytes);
    const t0 = performance.now();
    const back = await this.client.regionRead(REGISTER_BAR, MDGPU_REGS.SCRATCH.offset, 4);
    const ms = performance.now() - t0;
    const got = new DataView(back.buffer, back.byteOffset, 4).getUint32(0, true);
    if (got !== value) throw new Error(`SCRATCH read ${got}, wrote ${value}`);
    return ms;
  }

  /** One FILL + fence through the queue and the shared device, ms; throws if it failed. */
  async submit(): Promise<number> {
    const t0 = performance.now();
    await this.queue.submit(++this.fenceValue);
    return performance.now() - t0;
  }

  private note(error: string): void {
    if (this.errors.length < 5) this.errors.push(error);
  }

  /** Keep reading and submitting until {@link stop} (a new start begins a new report). */
  start(): void {
    this.reads = [];
    this.readFailures = 0;
    this.submissions = [];
    this.failures = [];
    this.errors = [];
    this.startedAt = performance.now();
    this.running = true;
    this.loops = [
      (async () => {
        while (this.running) {
          try {
            this.reads.push(await this.read());
          } catch (err) {
            this.readFailures++;
            this.note(`read: ${(err as Error).message}`);
            if (this.client.isClosed) return;
          }
          // A guest does other work between exits; also keeps the victim from being a flood itself.
          await new Promise((r) => setTimeout(r, 2));
        }
      })(),
      (async () => {
        while (this.running) {
          try {
            this.submissions.push(await this.submit());
          } catch (err) {
            this.failures.push((err as Error).message);
            this.note(`submission: ${(err as Error).message}`);
          }
          await new Promise((r) => setTimeout(r, 5));
        }
      })(),
    ];
  }

  async stop(): Promise<VictimReport> {
    this.running = false;
    await Promise.all(this.loops);
    return {
      reads: [...this.reads].sort((a, b) => a - b),
      readFailures: this.readFailures,
      submissions: [...this.submissions].sort((a, b) => a - b),
      failures: [...this.failures],
      connected: !this.client.isClosed,
      seconds: (performance.now() - this.startedAt) / 1000,
      firstErrors: [...this.errors],
    };
  }

  close(): void {
    this.queue.close();
    if (this.ownsClient) this.client.close();
  }
}

/** What the daemon's process went through while a {@link LoopWatch} ran. */
export interface LoopReport {
  /** Longest event-loop stall (perf_hooks' loop delay histogram, wall clock), ms. */
  maxStallMs: number;
  /** Most main-thread CPU time spent within one gap between two loop turns, ms (10 ms ticks). */
  maxBusyStallMs: number;
  /** Peak RSS during the watch minus RSS at its start, bytes. */
  rssGrowthBytes: number;
}

/** CPU time of this process's main thread (user + system), in ms; the kernel counts in 10 ms ticks. */
function mainThreadCpuMs(): number {
  const stat = fs.readFileSync(`/proc/self/task/${process.pid}/stat`, 'utf8');
  // Fields after the command name (which may hold spaces): utime and stime are fields 14 and 15.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11]) + Number(fields[12])) * 10;
}

function peakRssBytes(): number {
  const m = /VmHWM:\s+(\d+) kB/.exec(fs.readFileSync('/proc/self/status', 'utf8'));
  return m ? Number(m[1]) * 1024 : process.memoryUsage.rss();
}

function resetPeakRss(): void {
  try {
    fs.writeFileSync('/proc/self/clear_refs', '5');
  } catch {
    // Older kernels: VmHWM then covers the whole process life, which only makes the bound stricter.
  }
}

/**
 * Watches this process — the daemon's, when it runs in the test (`startDaemon`) — from
 * construction to {@link stop}. Two stall figures: `maxStallMs`, the longest wall-clock gap in
 * the event loop, and `maxBusyStallMs`, the CPU time the main thread itself spent inside its
 * longest-running gap (sampled every 5 ms). On a shared, overloaded machine the first also counts
 * time the process waited for a core (350 ms with no attack at all, at a load average of 9 on 2
 * cores); the second counts only work the loop did without yielding, which is what an attack
 * that holds the loop inflates. The peak RSS is the kernel's high-water mark (VmHWM), reset at
 * the start through /proc/self/clear_refs, so a spike between two samples is not missed.
 */
export class LoopWatch {
  private readonly histogram = monitorEventLoopDelay({ resolution: 5 });
  private readonly timer: NodeJS.Timeout;
  private readonly rssAtStart: number;
  private lastWall = performance.now();
  private lastCpu = mainThreadCpuMs();
  private maxBusyMs = 0;

  constructor() {
    resetPeakRss();
    this.rssAtStart = process.memoryUsage.rss();
    this.histogram.enable();
    this.timer = setInterval(() => {
      const wall = performance.now();
      const cpu = mainThreadCpuMs();
      // A 10 ms tick can land in a short gap; never count more CPU than the gap lasted.
      this.maxBusyMs = Math.max(this.maxBusyMs, Math.min(cpu - this.lastCpu, wall - this.lastWall));
      this.lastWall = wall;
      this.lastCpu = cpu;
    }, 5);
  }

  stop(): LoopReport {
    clearInterval(this.timer);
    this.histogram.disable();
    return { maxStallMs: this.histogram.max / 1e6, maxBusyStallMs: this.maxBusyMs, rssGrowthBytes: Math.max(0, peakRssBytes() - this.rssAtStart) };
  }
}

/** One line for a test comment or a benchmark row. */
export function formatReport(name: string, r: VictimReport, loop?: LoopReport): string {
  const mib = (n: number) => `${(n / 2 ** 20).toFixed(0)} MiB`;
  const ms = (sorted: number[], p: number) => percentile(sorted, p).toFixed(2);
  return (
    `${name}: victim reads ${r.reads.length} ok / ${r.readFailures} failed (p50 ${ms(r.reads, 50)} ms, p99 ${ms(r.reads, 99)} ms, ` +
    `max ${(r.reads.at(-1) ?? Number.NaN).toFixed(1)} ms), submissions ${r.submissions.length} ok / ${r.failures.length} failed` +
    (loop ? `, longest stall ${loop.maxStallMs.toFixed(1)} ms (${loop.maxBusyStallMs.toFixed(0)} ms of it busy), RSS +${mib(loop.rssGrowthBytes)}` : '') +
    `, ${r.seconds.toFixed(1)} s`
  );
}
