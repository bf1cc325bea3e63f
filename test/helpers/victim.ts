/**
 * The innocent VM of an attack test: while another vGPU of the same daemon is attacked, this one
 * keeps doing what a guest does — trapped register reads over its real vfio-user socket (every
 * read waits for the daemon's event loop) and small submissions through a queue (a FILL with a
 * fence, through the shared compute device) — and records how long each took and whether any
 * failed. Together with {@link StallMonitor} (the daemon's longest event-loop stall), this is
 * what "the attack did not stop, slow or corrupt another tenant" means in the tests and in
 * `npm run bench:hostile`.
 */
import { monitorEventLoopDelay, type IntervalHistogram } from 'node:perf_hooks';
import type { RunningVgpu } from '../../src/cli/daemon.js';
import { VfioUserClient } from '../../src/client/client.js';
import type { NativeBinding } from '../../src/native/binding.js';
import { encodeSubmission } from '../../src/vgpu/command-builder.js';
import { REGISTER_BAR } from '../../src/vgpu/device.js';
import { MDGPU_REGS } from '../../src/vgpu/regs.js';
import { HostGuest } from './host-guest.js';

export interface VictimReport {
  /** Trapped-read round trips, ms, sorted. */
  reads: number[];
  /** Submission publish → fence, ms, sorted. */
  submissions: number[];
  /** Submissions that failed (their error names) or never completed. */
  failures: string[];
  /** Whether any of its contexts was marked lost. */
  lost: boolean;
}

export function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return Number.NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

export class Victim {
  private readonly client: VfioUserClient;
  private readonly guest: HostGuest;
  private readonly publish: (bytes: Uint8Array) => void;
  private readonly target: { handle: number; offset: number };
  private readonly fences: { handle: number; offset: number };
  private running = false;
  private loops: Promise<void>[] = [];
  private readonly reads: number[] = [];
  private readonly submissions: number[] = [];
  private readonly failures: string[] = [];
  private fenceValue = 0n;

  private constructor(
    private readonly vgpu: RunningVgpu,
    native: NativeBinding,
  ) {
    this.client = VfioUserClient.connect(native, vgpu.config.socket);
    this.guest = new HostGuest(vgpu.device);
    this.target = this.guest.alloc(0x1000);
    this.fences = this.guest.alloc(0x1000);
    this.publish = this.guest.queue();
  }

  /** Connect to the vGPU's socket, make a context, buffers and a queue. */
  static async open(vgpu: RunningVgpu, native: NativeBinding): Promise<Victim> {
    const v = new Victim(vgpu, native);
    await v.client.version();
    return v;
  }

  /** One trapped read of SCRATCH over the socket, ms. */
  async read(): Promise<number> {
    const t0 = performance.now();
    await this.client.regionRead(REGISTER_BAR, MDGPU_REGS.SCRATCH.offset, 4);
    return performance.now() - t0;
  }

  /** One FILL + fence through the queue and the shared device, ms; throws if it failed. */
  async submit(): Promise<number> {
    const value = ++this.fenceValue;
    const before = this.guest.done.length;
    const t0 = performance.now();
    this.publish(
      encodeSubmission([{ op: 'fill', dst: { buffer: this.target.handle, offset: 0 }, size: 0x1000, value: Number(value & 0xffffn) }], {
        dst: { buffer: this.fences.handle, offset: 0 },
        value,
      }),
    );
    await this.guest.completions(before + 1);
    const error = this.guest.done[before];
    if (error !== null && error !== undefined) throw new Error(error);
    const seen = this.guest.view.getBigUint64(this.fences.offset, true);
    if (seen !== value) throw new Error(`fence ${seen}, expected ${value}`);
    return performance.now() - t0;
  }

  /** Keep reading and submitting until {@link stop}. */
  start(): void {
    this.running = true;
    this.loops = [
      (async () => {
        while (this.running) {
          this.reads.push(await this.read());
          await new Promise((r) => setTimeout(r, 2));
        }
      })(),
      (async () => {
        while (this.running) {
          try {
            this.submissions.push(await this.submit());
          } catch (err) {
            this.failures.push((err as Error).message);
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
      submissions: [...this.submissions].sort((a, b) => a - b),
      failures: [...this.failures],
      lost: this.vgpu.device.queues.lostContextCount > 0,
    };
  }

  close(): void {
    this.client.close();
  }
}

/** The longest event-loop stall while it runs (perf_hooks' loop delay histogram), ms. */
export class StallMonitor {
  private readonly histogram: IntervalHistogram = monitorEventLoopDelay({ resolution: 5 });
  constructor() {
    this.histogram.enable();
  }
  /** Longest stall so far, ms. */
  get maxMs(): number {
    return this.histogram.max / 1e6;
  }
  reset(): void {
    this.histogram.reset();
  }
  stop(): number {
    this.histogram.disable();
    return this.maxMs;
  }
}
