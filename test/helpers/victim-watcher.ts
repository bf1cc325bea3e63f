/**
 * Watches an innocent vGPU while another one is attacked: a victim vfio-user client on the victim's
 * socket keeps doing trapped register reads (each one a VM exit a real guest would be waiting on),
 * optionally a victim guest keeps submitting FILL batches to a queue, and the watcher records what
 * the daemon's event loop and memory did meanwhile.
 *
 * Meant for a daemon started in the test's own process (`startDaemon`): the event-loop delay
 * histogram (`perf_hooks.monitorEventLoopDelay`) and the RSS are then the daemon's. The peak RSS is
 * the kernel's high-water mark (VmHWM), reset at start through /proc/self/clear_refs, so a spike
 * between two samples is not missed.
 *
 * Two stall figures: `maxStallMs`, the longest wall-clock gap in the event loop, and
 * `maxBusyStallMs`, the CPU time the main thread itself spent inside its longest-running gap. On
 * a shared, overloaded machine the first also counts time the process waited for a core (350 ms
 * with no attack at all, at a load average of 9 on 2 cores); the second counts only work the
 * loop did without yielding, which is what an attack that holds the loop inflates. Tests bound
 * the second.
 *
 * Reusable for queue-side attacks: start a watcher on the victim, run the attack, `stop()`, assert
 * on the report (wide bounds: shared 2-core machines are noisy).
 */
import * as fs from 'node:fs';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { VfioUserClient } from '../../src/client/client.js';
import type { NativeBinding } from '../../src/native/binding.js';
import type { MdgpuDevice } from '../../src/vgpu/device.js';
import { REGISTER_BAR } from '../../src/vgpu/device.js';
import { MDGPU_REGS } from '../../src/vgpu/regs.js';
import { encodeSubmission } from '../../src/vgpu/command-builder.js';
import { HostGuest } from './host-guest.js';

export interface VictimOptions {
  native: NativeBinding;
  /** The victim vGPU's vfio-user socket. */
  socket: string;
  /** The victim's device (in-process daemon): enables queue submissions when `submissions` is set. */
  device?: MdgpuDevice;
  /** Keep FILL submissions going on a queue of the victim device (needs a compute backend). */
  submissions?: boolean;
  /** Milliseconds before a victim request counts as unanswered (default 5000, QEMU's x-msg-timeout). */
  timeoutMs?: number;
}

export interface VictimReport {
  /** Trapped reads answered with the right value, and refused or timed out. */
  reads: number;
  readFailures: number;
  readP50Ms: number;
  readP99Ms: number;
  readMaxMs: number;
  /** Submissions completed without error, and with one. */
  submissions: number;
  submissionErrors: number;
  /** Whether the victim's connection was still up at the end. */
  connected: boolean;
  /** Longest event-loop stall seen by the histogram (wall clock), in ms. */
  maxStallMs: number;
  /** Most main-thread CPU time spent within one gap between two loop turns, in ms (10 ms ticks). */
  maxBusyStallMs: number;
  /** Peak RSS during the watch minus RSS at start, in bytes. */
  rssGrowthBytes: number;
  seconds: number;
  /** Victim errors, first few, for the failure message. */
  firstErrors: string[];
}

function rssBytes(): number {
  return process.memoryUsage.rss();
}

function peakRssBytes(): number {
  const m = /VmHWM:\s+(\d+) kB/.exec(fs.readFileSync('/proc/self/status', 'utf8'));
  return m ? Number(m[1]) * 1024 : rssBytes();
}

function resetPeakRss(): void {
  try {
    fs.writeFileSync('/proc/self/clear_refs', '5');
  } catch {
    // Older kernels: VmHWM then covers the whole process life, which only makes the bound stricter.
  }
}

/** CPU time of this process's main thread (user + system), in ms; the kernel counts in 10 ms ticks. */
function mainThreadCpuMs(): number {
  const stat = fs.readFileSync(`/proc/self/task/${process.pid}/stat`, 'utf8');
  // Fields after the command name (which may hold spaces): utime and stime are fields 14 and 15.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11]) + Number(fields[12])) * 10;
}

/**
 * Samples the loop every few ms: the largest wall-clock gap between two samples, and the largest
 * main-thread CPU time spent within one gap (work done without yielding).
 */
class LoopSampler {
  private timer: NodeJS.Timeout | null = null;
  private lastWall = 0;
  private lastCpu = 0;
  maxGapMs = 0;
  maxBusyMs = 0;

  start(): void {
    this.lastWall = performance.now();
    this.lastCpu = mainThreadCpuMs();
    this.timer = setInterval(() => {
      const wall = performance.now();
      const cpu = mainThreadCpuMs();
      const gap = wall - this.lastWall;
      this.maxGapMs = Math.max(this.maxGapMs, gap);
      // A 10 ms tick can land in a short gap; never count more CPU than the gap lasted.
      this.maxBusyMs = Math.max(this.maxBusyMs, Math.min(cpu - this.lastCpu, gap));
      this.lastWall = wall;
      this.lastCpu = cpu;
    }, 5);
  }

  stop(): void {
    if (this.timer !== null) clearInterval(this.timer);
    this.timer = null;
  }
}

function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return Number.NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))]!;
}

export class VictimWatcher {
  private readonly histogram = monitorEventLoopDelay({ resolution: 5 });
  private readonly sampler = new LoopSampler();
  private readonly latencies: number[] = [];
  private readonly errors: string[] = [];
  private readFailures = 0;
  private submissions = 0;
  private submissionErrors = 0;
  private stopping = false;
  private loops: Promise<void>[] = [];
  private startedAt = 0;
  private rssAtStart = 0;

  private constructor(
    private readonly options: VictimOptions,
    private readonly client: VfioUserClient,
  ) {}

  /** Connect the victim and start watching. */
  static async start(options: VictimOptions): Promise<VictimWatcher> {
    const client = VfioUserClient.connect(options.native, options.socket, { timeoutMs: options.timeoutMs ?? 5000 });
    await client.version();
    const watcher = new VictimWatcher(options, client);
    watcher.begin();
    return watcher;
  }

  private begin(): void {
    this.startedAt = Date.now();
    resetPeakRss();
    this.rssAtStart = rssBytes();
    this.histogram.enable();
    this.sampler.start();
    this.loops.push(this.readLoop());
    if (this.options.submissions === true) {
      if (this.options.device === undefined) throw new Error('victim submissions need the device');
      this.loops.push(this.submitLoop(this.options.device));
    }
  }

  private note(error: string): void {
    if (this.errors.length < 5) this.errors.push(error);
  }

  /** A guest driver's register traffic: write SCRATCH, read it back, over the socket. */
  private async readLoop(): Promise<void> {
    const scratch = MDGPU_REGS.SCRATCH.offset;
    for (let i = 1; !this.stopping; i++) {
      const value = new Uint8Array(4);
      new DataView(value.buffer).setUint32(0, i, true);
      const start = performance.now();
      try {
        await this.client.regionWrite(REGISTER_BAR, scratch, value);
        const back = await this.client.regionRead(REGISTER_BAR, scratch, 4);
        const got = new DataView(back.buffer, back.byteOffset, 4).getUint32(0, true);
        if (got !== i) throw new Error(`SCRATCH read ${got}, wrote ${i}`);
        this.latencies.push(performance.now() - start);
      } catch (err) {
        this.readFailures++;
        this.note(`read: ${(err as Error).message}`);
        if (this.client.isClosed) return;
      }
      // A guest does other work between exits; also keeps the victim from being a flood itself.
      await new Promise((resolve) => setTimeout(resolve, 1));
    }
  }

  /** A guest process's queue: one small FILL per submission, waited for, again and again. */
  private async submitLoop(device: MdgpuDevice): Promise<void> {
    const guest = new HostGuest(device);
    const publish = guest.queue(0x4000);
    const target = guest.alloc(0x1000);
    for (let i = 0; !this.stopping; i++) {
      const before = guest.done.length;
      publish(encodeSubmission([{ op: 'fill', dst: { buffer: target.handle, offset: 0 }, size: 0x1000, value: i }]));
      await guest.completions(before + 1);
      const error = guest.done[before];
      if (error === null) this.submissions++;
      else {
        this.submissionErrors++;
        this.note(`submission: ${error}`);
      }
    }
  }

  /** Stop, wait for the victim's loops, disconnect, and report. */
  async stop(): Promise<VictimReport> {
    this.stopping = true;
    await Promise.all(this.loops);
    this.histogram.disable();
    this.sampler.stop();
    const connected = !this.client.isClosed;
    this.client.close();
    const sorted = [...this.latencies].sort((a, b) => a - b);
    return {
      reads: this.latencies.length,
      readFailures: this.readFailures,
      readP50Ms: percentile(sorted, 0.5),
      readP99Ms: percentile(sorted, 0.99),
      readMaxMs: sorted.at(-1) ?? Number.NaN,
      submissions: this.submissions,
      submissionErrors: this.submissionErrors,
      connected,
      maxStallMs: this.histogram.max / 1e6,
      maxBusyStallMs: this.sampler.maxBusyMs,
      rssGrowthBytes: Math.max(0, peakRssBytes() - this.rssAtStart),
      seconds: (Date.now() - this.startedAt) / 1000,
      firstErrors: this.errors,
    };
  }
}

/** One line for a test comment or a benchmark row. */
export function formatReport(name: string, r: VictimReport): string {
  const mib = (n: number) => `${(n / 2 ** 20).toFixed(0)} MiB`;
  return (
    `${name}: victim reads ${r.reads} ok / ${r.readFailures} failed (p50 ${r.readP50Ms.toFixed(2)} ms, p99 ${r.readP99Ms.toFixed(2)} ms, ` +
    `max ${r.readMaxMs.toFixed(1)} ms), submissions ${r.submissions} ok / ${r.submissionErrors} failed, ` +
    `longest stall ${r.maxStallMs.toFixed(1)} ms (${r.maxBusyStallMs.toFixed(0)} ms of it busy), RSS +${mib(r.rssGrowthBytes)}, ${r.seconds.toFixed(1)} s`
  );
}
