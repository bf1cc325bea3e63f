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
 * from one VM waits its turn like everyone else's work. A device cannot stop a batch in the
 * middle, so preemption happens between device submissions: a batch submitted as a
 * {@link PartedRun} runs as a sequence of parts of about one time slice each (src/exec splits
 * it between commands and splits long dispatches into workgroup ranges), and between two
 * parts the scheduler may run other vGPUs' work; the batch then waits, at the head of its
 * vGPU's queue, for its vGPU's next turn. Each part ends with all its work complete, so the
 * parts keep the batch's order. Its submitter sees one batch: it settles once, after its last
 * part or its first failure.
 *
 * A batch's time limit counts its own time on the device: run whole, from when its work starts
 * there (not while it waits for a device process to come back from a reset, or for its
 * kernels to be rebuilt there); in parts, the device time of its parts summed (what happens
 * between them — other vGPUs' parts, the worker's round trips — is not its time). A batch
 * whose parts used up the limit fails with {@link BatchTimeoutError} between two parts,
 * with no device reset; a part still running {@link partGraceNs} past the limit (a workgroup
 * that does not end), or a batch run whole past it, is stopped through `onOverrun` (the daemon
 * resets the device, see src/backend/isolated.ts) and fails once the device has let go of it —
 * not before, so that its buffers stay pinned while the device may still write into them. Every device reset a vGPU's batch causes, and every batch past its limit, is
 * a strike (strikes.ts); a vGPU with too many is cooled off and its batches refused with
 * {@link ThrottledError}, so one VM can cost the others only a bounded pause.
 */
import { tracer } from '../log.js';
import { CancelledError, ContextLostError, ThrottledError, TooManyInFlightError } from '../execution-errors.js';
import { DEFAULT_BUILD_POLICY, DEFAULT_RESET_POLICY, StrikeCounter, type StrikePolicy } from './strikes.js';

export { TooManyInFlightError } from '../execution-errors.js';

const traceSched = tracer('sched');

export interface BatchResult {
  deviceNs: number;
}

/** A batch that ran past the time limit: its context is lost. */
export class BatchTimeoutError extends ContextLostError {
  override readonly name = 'BatchTimeoutError';
  constructor(readonly limitNs: number) {
    super(`Batch exceeded the execution time limit of ${limitNs / 1e6} ms`, 'timeout');
  }
}

export interface SchedulerOptions {
  /**
   * Device time a vGPU may use in a row while others wait, ns; also the device time one part
   * of a preemptible batch aims at (so about the longest another vGPU's work waits).
   */
  timeSliceNs: number;
  /**
   * Run batches in parts of about a time slice each, so that other vGPUs' work can run between
   * them (the executor splits batches only when this is on). Off: every batch runs whole.
   */
  preempt?: boolean;
  /** Wall-clock limit for one batch, ns (0 = none), counted from when its work starts on the device. */
  batchTimeLimitNs: number;
  /** Clock for wall time, ns (injectable for tests). */
  now?: () => number;
  /**
   * Called when a batch of `vgpu` overruns the time limit: the place to stop it (reset the
   * device). The scheduler waits until the batch has really settled before it runs the next
   * one and before it answers the batch's submitter, so nothing is released while the device
   * may still write into memory.
   */
  onOverrun?: (vgpu: string) => void;
  /** Device resets a vGPU may cause before it is cooled off (see strikes.ts). */
  resetPolicy?: StrikePolicy;
  /** Kernel builds failed by time or memory a vGPU may cause before its builds are refused. */
  buildPolicy?: StrikePolicy;
  /**
   * Called when a batch has settled (metrics): `waitNs` from when it was queued to when its work
   * started on the device, `deviceNs` the device time it used.
   */
  onBatch?: (vgpu: string, batch: { waitNs: number; deviceNs: number }) => void;
}

/**
 * How long a part of a batch may run past what is left of the batch's time limit before it is
 * stopped by a device reset: a part is sized to about one time slice, so one that runs several
 * slices has a workgroup that does not end.
 */
export function partGraceNs(timeSliceNs: number): number {
  return Math.max(4 * timeSliceNs, 100_000_000);
}

/**
 * Time slices during which no other vGPU had a part dispatched before a batch's next part may be
 * queued behind the one running ({@link BatchControl.queueNext}).
 */
export const QUIET_SLICES = 8;

/**
 * Time slices a part is sized to while other vGPUs are quiet. A vGPU that comes with work after
 * a quiet spell waits for up to two such parts (the one running and the one queued behind it),
 * once: from then on the others are not quiet and parts are one slice.
 */
export const QUIET_PART_SLICES = 4;

export const DEFAULT_SCHEDULER_OPTIONS: SchedulerOptions = {
  timeSliceNs: 8_000_000,
  preempt: true,
  batchTimeLimitNs: 10_000_000_000,
};

/** What a batch's run function is given. */
export interface BatchControl {
  /**
   * Call when the batch's work really starts on the device (after the device process is up and
   * the batch's kernels are built): its time limit counts from then. Only used when the batch
   * was submitted with `awaitStart`; otherwise the clock starts when `run` is called.
   */
  started(): void;
  /**
   * Parts of a {@link PartedRun}: the batch's next part may be queued on the device now, behind
   * this one, so the device goes on without waiting for the round trip between two parts. The
   * scheduler allows it only while no other vGPU has work or had any lately, and then runs that
   * part next, whatever else arrives: it is already on the device.
   */
  queueNext?: boolean;
  /**
   * Device time to aim the part at (and the one queued behind it): a time slice, or
   * QUIET_PART_SLICES of them while other vGPUs are quiet (fewer parts, each of which costs
   * the daemon and the worker a round trip and the device a ragged end).
   */
  partBudgetNs?: number;
}

/** What one part of a {@link PartedRun} did. */
export interface PartResult {
  /** Its device time, ns. */
  deviceNs: number;
  /** It was the batch's last part. */
  done: boolean;
  /** The next part is already queued on the device behind it (see {@link BatchControl.queueNext}). */
  queuedNext?: boolean;
}

/**
 * A batch that runs as a sequence of device submissions (parts), between which the scheduler
 * may run other vGPUs' work. `next` runs the next part, aiming at `budgetNs` of device time,
 * and resolves once the device completed it (or rejects, which fails the batch); the scheduler
 * calls it again, later, until a part says it was the last.
 */
export interface PartedRun {
  next(control: BatchControl, budgetNs: number): Promise<PartResult>;
}

export interface SubmitOptions {
  /** Withdraw the batch while it is still queued (a destroyed queue or context, a reset). */
  signal?: AbortSignal;
  /** The run function calls `started()`; the time limit waits for it. */
  awaitStart?: boolean;
}

interface Job {
  priority: number;
  /** Run the batch, or its next part. */
  run: (control: BatchControl) => Promise<PartResult>;
  /** It runs in parts ({@link PartedRun}). */
  parted: boolean;
  /**
   * What its time limit has been charged so far: the device time of its parts (a batch run
   * whole is charged from when it started on the device, as it runs). And its device time.
   */
  chargedNs: number;
  deviceNs: number;
  partsRun: number;
  /** Its next part is on the device already: it runs next. */
  ahead: boolean;
  /** Decided (failed, withdrawn, past its limit) while a part was still queued: settled with this once that part ended. */
  closing: BatchResult | Error | null;
  resolve: (r: BatchResult) => void;
  reject: (e: Error) => void;
  queuedAt: number;
  awaitStart: boolean;
  signal: AbortSignal | undefined;
  onAbort: (() => void) | null;
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
  /** Device submissions its batches ran as (a batch run whole is one). */
  parts: number;
  /** Times one of its batches was stopped between two parts for other vGPUs' work. */
  preemptions: number;
  /** Parts that were queued on the device behind the one before (no round trip between them). */
  queuedParts: number;
  /**
   * Time its parts spent outside their device time, ns: from when the scheduler gave the device
   * to the part to when it saw it complete, minus its device time (the daemon's and the worker's
   * round trip, kernels built on demand).
   */
  overheadNs: number;
  /** Device resets this vGPU's batches caused (timeouts and device crashes while they ran). */
  resets: number;
  /** Times it was cooled off, and until when it is now (ms since the epoch), if it is. */
  coolOffs: number;
  coolingOffUntil: number | null;
  /** Batches refused because it was cooling off. */
  throttled: number;
  cancelled: number;
  virtualTime: number;
}

class Account {
  readonly queues: Job[][] = [[], [], [], []];
  virtualTime = 0;
  batches = 0;
  deviceNs = 0;
  waitNs = 0;
  timeouts = 0;
  parts = 0;
  preemptions = 0;
  queuedParts = 0;
  overheadNs = 0;
  /** When it last had a part dispatched (ns, the scheduler's clock). */
  lastDispatch = Number.NEGATIVE_INFINITY;
  throttled = 0;
  cancelled = 0;
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
  remove(job: Job): boolean {
    for (const q of this.queues) {
      const i = q.indexOf(job);
      if (i >= 0) {
        q.splice(i, 1);
        return true;
      }
    }
    return false;
  }
}

export class FairScheduler {
  private readonly accounts = new Map<string, Account>();
  private busy = false;
  private holder: Account | null = null;
  private holderSliceUsed = 0;
  /** A job whose next part is on the device already: it is dispatched next. */
  private committed: { account: Account; job: Job } | null = null;
  private readonly options: SchedulerOptions;
  private readonly now: () => number;
  /** Device resets each vGPU caused, and its cool-offs. */
  readonly resets: StrikeCounter;
  /** Kernel builds each vGPU had fail by time or memory (they hold the shared builder). */
  readonly buildFaults: StrikeCounter;
  /** Device time of every batch run, ns. */
  totalDeviceNs = 0;

  constructor(options: Partial<SchedulerOptions> = {}) {
    this.options = { ...DEFAULT_SCHEDULER_OPTIONS, ...options };
    this.now = options.now ?? (() => Number(process.hrtime.bigint()));
    this.resets = new StrikeCounter(options.resetPolicy ?? DEFAULT_RESET_POLICY);
    this.buildFaults = new StrikeCounter(options.buildPolicy ?? DEFAULT_BUILD_POLICY);
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
    this.resets.forget(name);
    this.buildFaults.forget(name);
    for (const q of account.queues) for (const job of q.splice(0)) this.settle(job, new CancelledError(`vGPU ${name} is gone`));
    if (this.holder === account) this.holder = null;
  }

  /** The virtual time a newly busy vGPU starts from: the minimum among busy ones. */
  private minVirtualTime(): number {
    let min = Infinity;
    for (const a of this.accounts.values()) if (a.pending > 0 || a.running > 0) min = Math.min(min, a.virtualTime);
    if (min === Infinity) for (const a of this.accounts.values()) min = Math.min(min, a.virtualTime);
    return min === Infinity ? 0 : min;
  }

  /** When `vgpu`'s cool-off ends (ms since the epoch), or null when it may submit. */
  coolingOffUntil(vgpu: string): number | null {
    return this.resets.coolingOffUntil(vgpu);
  }

  /** Time slice, ns (see {@link SchedulerOptions.timeSliceNs}). */
  get timeSliceNs(): number {
    return this.options.timeSliceNs;
  }

  /** Batches may run in parts (see {@link SchedulerOptions.preempt}). */
  get preemptive(): boolean {
    return this.options.preempt !== false;
  }

  /**
   * Switch preemption for the batches submitted from now on (benchmarks compare both modes in
   * one run, in the same conditions). Kernels keep how they were built: switched on, kernels
   * built while it was off run whole.
   */
  set preemptive(on: boolean) {
    this.options.preempt = on;
  }

  /**
   * Queue a batch for `vgpu`; settles when it ran on the device and the device is done with it.
   * `run` runs it whole; a {@link PartedRun} runs it in parts that other vGPUs' work may come
   * between.
   */
  submit(
    vgpu: string,
    priority: number,
    run: ((control: BatchControl) => Promise<BatchResult>) | PartedRun,
    options: SubmitOptions = {},
  ): Promise<BatchResult> {
    const account = this.accounts.get(vgpu);
    if (account === undefined) return Promise.reject(new Error(`Unknown vGPU ${vgpu}`));
    const until = this.resets.coolingOffUntil(vgpu);
    if (until !== null) {
      account.throttled++;
      return Promise.reject(new ThrottledError(`vGPU ${vgpu} caused too many device resets; cooling off until ${new Date(until).toISOString()}`, until));
    }
    if (options.signal?.aborted) return Promise.reject(new CancelledError('Withdrawn before it was queued'));
    if (account.pending + account.running >= account.maxInFlight) {
      return Promise.reject(new TooManyInFlightError(`vGPU ${vgpu} has ${account.maxInFlight} batches in flight`));
    }
    if (account.pending === 0 && account.running === 0) {
      // Waking up: no credit for the time it was idle.
      account.virtualTime = Math.max(account.virtualTime, this.minVirtualTime());
    }
    return new Promise<BatchResult>((resolve, reject) => {
      const job: Job = {
        priority,
        run:
          typeof run === 'function'
            ? (control) => run(control).then((r) => ({ deviceNs: r.deviceNs, done: true }))
            : (control) => run.next(control, control.partBudgetNs ?? this.options.timeSliceNs),
        parted: typeof run !== 'function',
        chargedNs: 0,
        deviceNs: 0,
        partsRun: 0,
        ahead: false,
        closing: null,
        resolve,
        reject,
        queuedAt: this.now(),
        awaitStart: options.awaitStart === true,
        signal: options.signal,
        onAbort: null,
      };
      this.queue(account, job, false);
      this.dispatch();
    });
  }

  /**
   * Put a job in its vGPU's queue: at the tail when it is new, at the head when it was stopped
   * between two parts (it is the oldest of its priority and resumes first). While queued, its
   * signal withdraws it: a new one never runs, a stopped one runs no further part.
   */
  private queue(account: Account, job: Job, resumed: boolean): void {
    if (job.signal !== undefined && job.onAbort === null) {
      job.onAbort = () => {
        if (account.remove(job)) {
          account.cancelled++;
          this.settle(job, new CancelledError(resumed ? 'Withdrawn between two parts' : 'Withdrawn before it ran'));
        }
      };
      job.signal.addEventListener('abort', job.onAbort, { once: true });
    }
    const q = account.queues[Math.min(3, Math.max(0, job.priority))]!;
    if (resumed) q.unshift(job);
    else q.push(job);
  }

  private settle(job: Job, outcome: BatchResult | Error): void {
    if (job.onAbort !== null) job.signal?.removeEventListener('abort', job.onAbort);
    job.onAbort = null;
    if (outcome instanceof Error) job.reject(outcome);
    else job.resolve(outcome);
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
    if (this.committed !== null) {
      const { account, job } = this.committed;
      this.committed = null;
      this.busy = true;
      account.running++;
      this.start(account, job);
      return;
    }
    const account = this.pick();
    if (account === undefined) return;
    if (account !== this.holder) {
      this.holder = account;
      this.holderSliceUsed = 0;
    }
    const job = account.next()!;
    if (job.onAbort !== null) job.signal?.removeEventListener('abort', job.onAbort);
    job.onAbort = null;
    this.busy = true;
    account.running++;
    this.start(account, job);
  }

  /**
   * Whether `account`'s next part may be queued behind the one it runs: no other vGPU has work,
   * or had a part dispatched within QUIET_SLICES time slices. A vGPU that comes with work then
   * waits for two parts, not one; so this is only done while others are quiet, and the first
   * of their batches after a quiet spell is the one that may wait longer.
   */
  private quiet(account: Account): boolean {
    const since = this.now() - QUIET_SLICES * this.options.timeSliceNs;
    for (const a of this.accounts.values()) if (a !== account && (a.pending > 0 || a.running > 0 || a.lastDispatch > since)) return false;
    return true;
  }

  /** Run the job's next part (or all of it), then settle it, or queue it again for the next. */
  private start(account: Account, job: Job): void {
    const dispatched = this.now();
    account.waitNs += dispatched - job.queuedAt;
    account.lastDispatch = dispatched;
    if (job.ahead) account.queuedParts++;
    traceSched(() => `${account.name}: batch dispatched${job.partsRun > 0 ? ` (part ${job.partsRun + 1})` : ''} (vt ${account.virtualTime.toFixed(0)})`);
    const limit = this.options.batchTimeLimitNs;
    let timedOut = false;
    let timer: NodeJS.Timeout | null = null;
    let startedAt = dispatched;
    let clockStarted = false;
    const startClock = () => {
      if (clockStarted) return;
      clockStarted = true;
      startedAt = this.now();
      if (limit <= 0) return;
      // What is left of the limit: the batch's earlier parts used the rest. A part may run a
      // little past it (partGraceNs) and end by itself: the batch is lost all the same, between
      // two parts, and nobody pays for a device reset. A part that does not end by then (a
      // workgroup that hangs) is stopped by one.
      const left = limit - job.chargedNs;
      timer = setTimeout(
        () => {
          timedOut = true;
          account.timeouts++;
          this.strike(account.name);
          this.options.onOverrun?.(account.name);
        },
        Math.max(0, job.parted ? Math.max(left, partGraceNs(this.options.timeSliceNs)) : left) / 1e6,
      );
    };
    const finish = (deviceNs: number, cut: boolean) => {
      if (timer !== null) clearTimeout(timer);
      timer = null;
      // A part is charged its device time: the parts of a long batch must not use up its limit
      // with what happens around them (the worker's round trips, other VMs' waits).
      job.chargedNs += job.parted ? deviceNs : Math.max(0, this.now() - startedAt);
      job.deviceNs += deviceNs;
      job.partsRun++;
      account.running--;
      account.parts++;
      account.deviceNs += deviceNs;
      account.virtualTime += deviceNs / account.weight;
      this.totalDeviceNs += deviceNs;
      // A part cut where its budget ran out was sized to the whole slice: the slice is spent,
      // whatever the estimate missed by, and the device goes to whoever is owed it next.
      this.holderSliceUsed += cut ? Math.max(deviceNs, this.options.timeSliceNs) : deviceNs;
      this.busy = false;
      // Per part: its wait for the device and its device time (the metrics' histograms).
      this.options.onBatch?.(account.name, { waitNs: startedAt - job.queuedAt, deviceNs });
    };
    if (!job.awaitStart) startClock();
    const queueNext =
      job.parted && job.closing === null && this.preemptive && this.accounts.has(account.name) && job.signal?.aborted !== true && this.quiet(account);
    const slice = this.options.timeSliceNs;
    const control: BatchControl = { started: startClock, queueNext, partBudgetNs: queueNext ? QUIET_PART_SLICES * slice : slice };
    let promise: Promise<PartResult>;
    try {
      promise = job.run(control);
    } catch (err) {
      promise = Promise.reject(err as Error);
    }
    // The answer waits for the run to settle even past the limit: until then the device may
    // still be writing into the batch's memory, and its pins must hold.
    const end = (outcome: BatchResult | Error) => {
      account.batches++;
      this.settle(job, outcome);
    };
    promise.then(
      (result) => {
        account.overheadNs += Math.max(0, this.now() - dispatched - result.deviceNs);
        finish(result.deviceNs, job.parted && !result.done);
        job.ahead = result.queuedNext === true;
        let outcome: BatchResult | Error | null = job.closing;
        if (outcome !== null) {
          // Decided before: this was the part that was still queued.
          if (timedOut) outcome = new BatchTimeoutError(limit);
        } else if (timedOut) {
          outcome = new BatchTimeoutError(limit);
        } else if (result.done) {
          outcome = { deviceNs: job.deviceNs };
        } else if (limit > 0 && job.chargedNs >= limit) {
          // Its parts used up the limit: lost, like a batch that ran past it whole.
          account.timeouts++;
          this.strike(account.name);
          outcome = new BatchTimeoutError(limit);
        } else if (!this.accounts.has(account.name)) {
          outcome = new CancelledError(`vGPU ${account.name} is gone`);
        } else if (job.signal?.aborted) {
          account.cancelled++;
          outcome = new CancelledError('Withdrawn between two parts');
        }
        if (job.ahead) {
          // Its next part is on the device: it runs next (and is timed like any part), and a
          // batch decided meanwhile is settled once that part has ended.
          job.closing = outcome;
          job.queuedAt = this.now();
          this.committed = { account, job };
        } else if (outcome !== null) {
          end(outcome);
        } else {
          // Back to the head of its queue: the next part runs at its vGPU's next turn, which is
          // now unless another vGPU is owed the device.
          if (this.holderSliceUsed >= this.options.timeSliceNs && [...this.accounts.values()].some((a) => a !== account && a.pending > 0)) {
            account.preemptions++;
          }
          job.queuedAt = this.now();
          this.queue(account, job, true);
        }
        this.dispatch();
      },
      (err: unknown) => {
        // No device time from a failed part: what it held the device for counts instead. (A
        // PartedRun whose part failed waited for the part it had queued behind: nothing of the
        // batch is on the device any more.)
        finish(Math.max(0, this.now() - startedAt), false);
        job.ahead = false;
        if (job.closing !== null && !timedOut) {
          end(job.closing);
        } else if (timedOut) {
          end(new BatchTimeoutError(limit));
        } else {
          // The device went away under this batch (it crashed, or was reset for it): a strike.
          if (err instanceof ContextLostError) this.strike(account.name);
          end(err as Error);
        }
        this.dispatch();
      },
    );
  }

  private strike(name: string): void {
    if (this.resets.strike(name)) {
      const until = this.resets.coolingOffUntil(name)!;
      traceSched(() => `${name}: cooled off until ${new Date(until).toISOString()} after ${this.resets.policy.strikes} device resets`);
    }
  }

  stats(): VgpuShareStats[] {
    const total = this.totalDeviceNs;
    return [...this.accounts.values()].map((a) => {
      const strikes = this.resets.stats(a.name);
      return {
        name: a.name,
        weight: a.weight,
        batches: a.batches,
        deviceNs: a.deviceNs,
        share: total > 0 ? a.deviceNs / total : 0,
        pending: a.pending,
        inFlight: a.running,
        waitNs: a.waitNs,
        timeouts: a.timeouts,
        parts: a.parts,
        preemptions: a.preemptions,
        queuedParts: a.queuedParts,
        overheadNs: a.overheadNs,
        resets: strikes.strikes,
        coolOffs: strikes.coolOffs,
        coolingOffUntil: strikes.coolingOffUntil,
        throttled: a.throttled,
        cancelled: a.cancelled,
        virtualTime: a.virtualTime,
      };
    });
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
