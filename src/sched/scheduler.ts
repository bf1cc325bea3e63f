/**
 * Weighted fair sharing of one execution device among many vGPUs.
 *
 * Start-time fair queueing on device time: every vGPU has a virtual time that advances by
 * `deviceNs / weight` for each batch it runs; when the device is free, the backlogged vGPU with
 * the smallest virtual time gets it, and may keep it for up to one time slice of device time
 * while it stays backlogged (fewer switches, the same long-run shares). A vGPU that becomes busy
 * after being idle starts at the current minimum virtual time: idle time banks no credit, so an
 * idle VM costs nothing and cannot later starve the others. Within a vGPU, higher-priority queues
 * (0 highest .. 3 lowest) go first, FIFO within a priority.
 *
 * One batch runs on the device at a time, so each batch's device time is its own, and a flood
 * from one VM waits its turn like everyone else's work. A batch that overruns the per-batch time
 * limit is reported as lost at the limit (its context is marked lost by the caller), and
 * `onOverrun` is told so that it can stop the batch (the daemon resets the device, see
 * src/backend/isolated.ts); the scheduler waits until the batch has settled before the next.
 */
import { tracer } from '../log.js';

const traceSched = tracer('sched');

export interface BatchResult {
  deviceNs: number;
}

export class BatchTimeoutError extends Error {
  /** The device model marks the submitting context lost on this error. */
  readonly contextLost = true;
  constructor(readonly limitNs: number) {
    super(`Batch exceeded the execution time limit of ${limitNs / 1e6} ms`);
  }
}

export class TooManyInFlightError extends Error {}

export interface SchedulerOptions {
  /** Device time a vGPU may use in a row while it stays backlogged, ns. */
  timeSliceNs: number;
  /** Wall-clock limit for one batch, ns (0 = none). */
  batchTimeLimitNs: number;
  /** Clock for wall time, ns (injectable for tests). */
  now?: () => number;
  /**
   * Called when a batch of `vgpu` overruns the time limit, after it was reported lost: the
   * place to stop it (reset the device), since the scheduler waits for it before the next.
   */
  onOverrun?: (vgpu: string) => void;
  /** A promise while the device is not ready to run batches (restarting after a reset), else null. */
  deviceReady?: () => Promise<void> | null;
}

export const DEFAULT_SCHEDULER_OPTIONS: SchedulerOptions = {
  timeSliceNs: 2_000_000,
  batchTimeLimitNs: 10_000_000_000,
};

interface Job {
  priority: number;
  run: () => Promise<BatchResult>;
  resolve: (r: BatchResult) => void;
  reject: (e: Error) => void;
  queuedAt: number;
}

export interface VgpuShareStats {
  name: string;
  weight: number;
  batches: number;
  deviceNs: number;
  /** Share of all device time used so far, 0..1. */
  share: number;
  pending: number;
  inFlight: number;
  /** Total time batches waited for the device, ns. */
  waitNs: number;
  timeouts: number;
  virtualTime: number;
}

class Account {
  readonly queues: Job[][] = [[], [], [], []];
  virtualTime = 0;
  batches = 0;
  deviceNs = 0;
  waitNs = 0;
  timeouts = 0;
  running = 0;
  constructor(
    readonly name: string,
    public weight: number,
    public maxInFlight: number,
  ) {}
  get pending(): number {
    return this.queues.reduce((n, q) => n + q.length, 0);
  }
  next(): Job | undefined {
    for (const q of this.queues) if (q.length > 0) return q.shift();
    return undefined;
  }
}

export class FairScheduler {
  private readonly accounts = new Map<string, Account>();
  private busy = false;
  private holder: Account | null = null;
  private holderSliceUsed = 0;
  private readonly options: SchedulerOptions;
  private readonly now: () => number;
  /** Device time of every batch run, ns. */
  totalDeviceNs = 0;

  constructor(options: Partial<SchedulerOptions> = {}) {
    this.options = { ...DEFAULT_SCHEDULER_OPTIONS, ...options };
    this.now = options.now ?? (() => Number(process.hrtime.bigint()));
  }

  register(name: string, weight = 1, maxInFlight = 64): void {
    if (this.accounts.has(name)) throw new Error(`vGPU ${name} is already registered`);
    if (!(weight > 0)) throw new RangeError(`Weight must be positive: ${weight}`);
    const account = new Account(name, weight, maxInFlight);
    account.virtualTime = this.minVirtualTime();
    this.accounts.set(name, account);
  }

  /** Forget a vGPU; its queued batches fail, a running one finishes. */
  unregister(name: string): void {
    const account = this.accounts.get(name);
    if (account === undefined) return;
    this.accounts.delete(name);
    for (const q of account.queues) for (const job of q.splice(0)) job.reject(new Error(`vGPU ${name} is gone`));
    if (this.holder === account) this.holder = null;
  }

  /** The virtual time a newly busy vGPU starts from: the minimum among busy ones. */
  private minVirtualTime(): number {
    let min = Infinity;
    for (const a of this.accounts.values()) if (a.pending > 0 || a.running > 0) min = Math.min(min, a.virtualTime);
    if (min === Infinity) for (const a of this.accounts.values()) min = Math.min(min, a.virtualTime);
    return min === Infinity ? 0 : min;
  }

  /** Queue a batch for `vgpu`; resolves when it ran on the device. */
  submit(vgpu: string, priority: number, run: () => Promise<BatchResult>): Promise<BatchResult> {
    const account = this.accounts.get(vgpu);
    if (account === undefined) return Promise.reject(new Error(`Unknown vGPU ${vgpu}`));
    if (account.pending + account.running >= account.maxInFlight) {
      return Promise.reject(new TooManyInFlightError(`vGPU ${vgpu} has ${account.maxInFlight} batches in flight`));
    }
    if (account.pending === 0 && account.running === 0) {
      // Waking up: no credit for the time it was idle.
      account.virtualTime = Math.max(account.virtualTime, this.minVirtualTime());
    }
    return new Promise<BatchResult>((resolve, reject) => {
      account.queues[Math.min(3, Math.max(0, priority))]!.push({ priority, run, resolve, reject, queuedAt: this.now() });
      this.dispatch();
    });
  }

  private pick(): Account | undefined {
    const h = this.holder;
    if (h !== null && h.pending > 0 && this.holderSliceUsed < this.options.timeSliceNs && this.accounts.has(h.name)) return h;
    let best: Account | undefined;
    for (const a of this.accounts.values()) {
      if (a.pending === 0) continue;
      if (best === undefined || a.virtualTime < best.virtualTime) best = a;
    }
    return best;
  }

  private dispatch(): void {
    if (this.busy) return;
    const account = this.pick();
    if (account === undefined) return;
    if (account !== this.holder) {
      this.holder = account;
      this.holderSliceUsed = 0;
    }
    const job = account.next()!;
    this.busy = true;
    account.running++;
    // A device coming back from a reset is not the batch's time: start the clock once it is up.
    const gate = this.options.deviceReady?.() ?? null;
    if (gate === null) this.start(account, job);
    else
      void gate.then(
        () => this.start(account, job),
        () => this.start(account, job),
      );
  }

  private start(account: Account, job: Job): void {
    const started = this.now();
    account.waitNs += started - job.queuedAt;
    traceSched(() => `${account.name}: batch starts (vt ${account.virtualTime.toFixed(0)})`);
    const limit = this.options.batchTimeLimitNs;
    let timedOut = false;
    const timer =
      limit > 0
        ? setTimeout(() => {
            timedOut = true;
            account.timeouts++;
            job.reject(new BatchTimeoutError(limit));
            this.options.onOverrun?.(account.name);
          }, limit / 1e6)
        : null;
    const finish = (deviceNs: number) => {
      if (timer !== null) clearTimeout(timer);
      account.running--;
      account.batches++;
      account.deviceNs += deviceNs;
      account.virtualTime += deviceNs / account.weight;
      this.totalDeviceNs += deviceNs;
      this.holderSliceUsed += deviceNs;
      this.busy = false;
      this.dispatch();
    };
    job.run().then(
      (result) => {
        finish(result.deviceNs);
        if (!timedOut) job.resolve(result);
      },
      (err: unknown) => {
        finish(Math.max(0, this.now() - started));
        if (!timedOut) job.reject(err as Error);
      },
    );
  }

  stats(): VgpuShareStats[] {
    const total = this.totalDeviceNs;
    return [...this.accounts.values()].map((a) => ({
      name: a.name,
      weight: a.weight,
      batches: a.batches,
      deviceNs: a.deviceNs,
      share: total > 0 ? a.deviceNs / total : 0,
      pending: a.pending,
      inFlight: a.running,
      waitNs: a.waitNs,
      timeouts: a.timeouts,
      virtualTime: a.virtualTime,
    }));
  }
}

/** Jain's fairness index of the shares normalised by weight: 1 is perfectly fair. */
export function jainIndex(values: number[]): number {
  const n = values.length;
  if (n === 0) return 1;
  const sum = values.reduce((a, b) => a + b, 0);
  const squares = values.reduce((a, b) => a + b * b, 0);
  return squares === 0 ? 1 : (sum * sum) / (n * squares);
}
