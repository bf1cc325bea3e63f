/**
 * Mediated queues (contract 1.2): rings in the aperture that the guest fills directly, and the
 * device side that consumes them — the queue registry and the loop that takes each submission
 * (queue-ring.ts), has it run (queue-execution.ts), writes its fence and raises interrupts.
 *
 * Notification protocol (virtio's event suppression, adapted): while a queue has work, and for
 * a grace period after it drains, mdgpu polls the ring's tail in shared memory; only then does it
 * publish `doorbell_needed = 1` and sleep. The guest writes the trapped QUEUE_DOORBELL register
 * only when it sees that flag, so under load a submission costs no VM exit at all. The two sides
 * follow Dekker's pattern (store own flag, full fence, load the other's) so no wakeup is lost; a
 * slow background check (SAFETY_POLL_MS) bounds the damage of a guest that forgets the doorbell.
 *
 * The guest controls how much work it publishes, so nothing here may hold the daemon's event
 * loop for long: a queue yields after a bounded slice of work (TURN_BUDGET_*), copies exactly
 * one submission's bytes at a time, and polls during grace periods only within a CPU budget per
 * vGPU (POLL_BUDGET_*). Destroying a queue or its context, or resetting the device, withdraws its
 * queued and parked work (an AbortSignal per queue): nothing from before runs after it.
 */
import { guestError, tracer } from '../log.js';
import { DEFAULT_COMMAND_LIMITS, errorFenceValue, SUBMIT_ERRORS, type CommandError, type CommandLimits, type SubmitErrorName } from './commands.js';
import { KernelRegistry } from './kernels.js';
import { MailboxFailure } from './memory-mediator.js';
import { type ExecutionHost, SubmissionRunner } from './queue-execution.js';
import { QUEUE_CONTROL_SIZE, QUEUE_MAX_RING, QUEUE_MIN_RING, QueueRing, type Taken } from './queue-ring.js';
import { IRQ_SOURCE_ERROR, IRQ_SOURCE_FENCE } from './regs.js';

const traceQueue = tracer('queue');

/** How the queue engine talks to the rest of the device. */
export type QueueHost = ExecutionHost;

/** Ring priorities: 0 (highest) .. QUEUE_MAX_PRIORITY (lowest). */
export const QUEUE_MAX_PRIORITY = 3;
/** Submissions a queue handles in one turn of the event loop before it lets others run. */
export const TURN_BUDGET_SUBMISSIONS = 64;
/** Milliseconds of synchronous queue work in one turn before it lets others run. */
export const TURN_BUDGET_MS = 2;
/** Grace-period polling one vGPU may do, in ms of polling per second of wall time (25% of a core). */
export const POLL_BUDGET_MS_PER_S = 250;
/** The most polling time a vGPU can bank while its queues are quiet, ms. */
export const POLL_BUDGET_BURST_MS = 250;

/** Polling continues this long after a queue drains before it asks for a doorbell. */
export const DEFAULT_GRACE_MS = 5;
/** Sleeping queues are still looked at this often, in case a guest never rings. */
export const SAFETY_POLL_MS = 50;

export interface QueueStats {
  submissions: number;
  errors: number;
  doorbells: number;
  /** Times the queue went to sleep and asked for a doorbell. */
  sleeps: number;
  deviceNs: number;
}

class Queue {
  running = false;
  sleeping = false;
  destroyed = false;
  /** Withdraws this queue's queued and parked work when it is destroyed. */
  readonly abort = new AbortController();
  readonly stats: QueueStats = { submissions: 0, errors: 0, doorbells: 0, sleeps: 0, deviceNs: 0 };
  constructor(
    readonly id: number,
    readonly ctx: number,
    readonly buffer: number,
    readonly ring: QueueRing,
    readonly priority: number,
  ) {}
}

export class QueueEngine {
  private readonly queues = new Map<number, Queue>();
  private readonly runner: SubmissionRunner;
  private nextQueue = 1;
  private safetyTimer: NodeJS.Timeout | null = null;
  /** Grace-period polling time this vGPU may still spend, ms, and when it was last topped up. */
  private pollBudgetMs = POLL_BUDGET_BURST_MS;
  private pollBudgetAt = performance.now();
  graceMs = DEFAULT_GRACE_MS;
  /** Grace-period polling allowed per second of wall time, and the most that can be banked, ms. */
  pollBudgetMsPerS = POLL_BUDGET_MS_PER_S;
  pollBudgetBurstMs = POLL_BUDGET_BURST_MS;
  limits: CommandLimits = DEFAULT_COMMAND_LIMITS;
  maxQueues = 64;
  readonly kernels: KernelRegistry;
  /** Totals over every queue this device ever had. */
  readonly totals = { submissions: 0, errors: 0, doorbells: 0, sleeps: 0, deviceNs: 0, yields: 0, pollBudgetExhausted: 0 };
  /**
   * Called after every finished submission (tests, metrics, the scheduler); `latencyMs`: from
   * when it was taken off the ring to when its fence (or error) was written.
   */
  onSubmissionDone: ((queue: number, error: SubmitErrorName | null, deviceNs: number, latencyMs: number) => void) | null = null;

  constructor(private readonly host: QueueHost) {
    this.kernels = new KernelRegistry(host);
    this.runner = new SubmissionRunner(host, this.kernels, () => this.limits);
  }

  get queueCount(): number {
    return this.queues.size;
  }
  get kernelCount(): number {
    return this.kernels.count;
  }
  get maxKernels(): number {
    return this.kernels.maxKernels;
  }
  set maxKernels(n: number) {
    this.kernels.maxKernels = n;
  }

  queueStats(id: number): QueueStats | undefined {
    return this.queues.get(id)?.stats;
  }

  private fail(result: ConstructorParameters<typeof MailboxFailure>[0], message: string): never {
    guestError(`${this.host.name}-queue-${result}`, `${this.host.name}: ${message}`);
    throw new MailboxFailure(result, message);
  }

  // ---- mailbox operations ----

  createQueue(ctx: number, bufferHandle: number, priority: number): number {
    const buffer = this.host.memory.buffer(ctx, bufferHandle);
    // Queues work without an executor too: FENCE, WAIT and NOP need none, and a
    // submission with GPU commands then fails with EXEC_FAILED (QUERY HAS_BACKEND tells).
    if (this.queues.size >= this.maxQueues) this.fail('TOO_MANY', `queue limit ${this.maxQueues} reached`);
    if (priority > QUEUE_MAX_PRIORITY) this.fail('BAD_FLAGS', `queue priority ${priority} (0..${QUEUE_MAX_PRIORITY})`);
    const ringSize = buffer.size - QUEUE_CONTROL_SIZE;
    if (ringSize < QUEUE_MIN_RING || ringSize > QUEUE_MAX_RING || (ringSize & (ringSize - 1)) !== 0) {
      this.fail('BAD_SIZE', `queue buffer of ${buffer.size} bytes: the ring after the 4 KiB control page must be a power of two from 4 KiB to 16 MiB`);
    }
    for (const q of this.queues.values()) {
      if (q.buffer === bufferHandle) this.fail('BUSY', `buffer ${bufferHandle} already holds queue ${q.id}`);
    }
    let id = this.nextQueue;
    while (id === 0 || this.queues.has(id)) id = (id + 1) >>> 0;
    this.nextQueue = (id + 1) >>> 0;
    this.host.memory.pin(bufferHandle);
    const q = new Queue(id, ctx, bufferHandle, new QueueRing(() => this.host.aperture, buffer.offset, ringSize), priority);
    // A fresh control block: the allocation was zeroed, so tail = head = 0. Start asleep.
    q.ring.writeControl({ doorbellNeeded: 1 });
    q.sleeping = true;
    this.queues.set(id, q);
    this.armSafetyPoll();
    traceQueue(() => `${this.host.name}: queue ${id} ctx ${ctx} ring ${ringSize} bytes at 0x${q.ring.ring.toString(16)}`);
    return id;
  }

  private queue(ctx: number, id: number): Queue {
    const q = this.queues.get(id);
    if (q === undefined || q.ctx !== ctx) this.fail('BAD_HANDLE', `no queue ${id} in context ${ctx}`);
    return q;
  }

  destroyQueue(ctx: number, id: number): void {
    const q = this.queue(ctx, id);
    this.retireQueue(q);
  }

  private retireQueue(q: Queue): void {
    q.destroyed = true;
    // Queued batches are withdrawn and parked WAITs end; a batch already on the device runs to
    // its end and keeps the buffers it uses pinned until then.
    q.abort.abort();
    this.queues.delete(q.id);
    this.host.memory.unpin(q.buffer);
    if (this.queues.size === 0) this.disarmSafetyPoll();
  }

  /** KERNEL_CREATE (the build goes on after this returns; see kernels.ts). */
  createKernel(ctx: number, bufferHandle: number, offset: number, size: number, bindings: number, pushConstantBytes: number): number {
    return this.kernels.create(ctx, bufferHandle, offset, size, bindings, pushConstantBytes, this.limits);
  }

  /** KERNEL_CREATE2 (contract 1.3): a kernel record in a buffer. */
  createKernelFromDesc(ctx: number, bufferHandle: number, offset: number, size: number): number {
    return this.kernels.createFromDesc(ctx, bufferHandle, offset, size, this.limits);
  }

  destroyKernel(ctx: number, id: number): void {
    this.kernels.destroy(ctx, id);
  }

  /** A context is going away: its queues stop, their work is withdrawn, its kernels are destroyed. */
  destroyContext(ctx: number): void {
    this.runner.forget(ctx);
    for (const q of [...this.queues.values()]) if (q.ctx === ctx) this.retireQueue(q);
    this.kernels.destroyContext(ctx);
  }

  /**
   * Stop every queue, withdraw their work and release every kernel: a device reset, or the VM
   * went away. Work already on the device keeps its buffers pinned until it ends (the memory
   * mediator keeps pinned ranges out of new allocations across a reset).
   */
  reset(): void {
    for (const q of [...this.queues.values()]) this.retireQueue(q);
    this.queues.clear();
    this.kernels.reset();
    this.runner.forget(null);
    this.disarmSafetyPoll();
  }

  /** QUEUE_DOORBELL: the guest saw doorbell_needed and published work. */
  doorbell(id: number): void {
    const q = this.queues.get(id);
    if (q === undefined) {
      guestError(`${this.host.name}-doorbell`, `${this.host.name}: doorbell for unknown queue ${id}`);
      return;
    }
    q.stats.doorbells++;
    this.totals.doorbells++;
    this.wake(q);
  }

  private wake(q: Queue): void {
    if (q.destroyed) return;
    q.sleeping = false;
    q.ring.writeControl({ doorbellNeeded: 0 });
    void this.pump(q);
  }

  private armSafetyPoll(): void {
    if (this.safetyTimer !== null) return;
    this.safetyTimer = setInterval(() => {
      for (const q of this.queues.values()) {
        if (q.sleeping && !q.running && q.ring.pending) this.wake(q);
      }
    }, SAFETY_POLL_MS);
    this.safetyTimer.unref();
  }

  private disarmSafetyPoll(): void {
    if (this.safetyTimer !== null) clearInterval(this.safetyTimer);
    this.safetyTimer = null;
  }

  /**
   * Consume the queue until it is empty and the grace period passed, then sleep. Yields to the
   * event loop after a bounded slice of work: submissions that need no device work (empty,
   * FENCE-only, refused) complete without a real wait, and a guest that keeps its ring full
   * would otherwise keep every other VM's traps and queues from running.
   */
  private async pump(q: Queue): Promise<void> {
    if (q.running) return;
    q.running = true;
    try {
      let turnStart = performance.now();
      let turnCount = 0;
      for (;;) {
        if (q.destroyed) return;
        if (++turnCount > TURN_BUDGET_SUBMISSIONS || performance.now() - turnStart > TURN_BUDGET_MS) {
          this.totals.yields++;
          await new Promise<void>((resolve) => setImmediate(resolve));
          if (q.destroyed) return;
          turnStart = performance.now();
          turnCount = 1;
        }
        const next = this.take(q);
        if (next === 'empty') {
          if (await this.pollDuringGrace(q)) continue;
          if (q.destroyed) return;
          // Dekker: publish "ring me", then look at the tail once more. A submission published
          // between our last look and the flag would otherwise wait for the safety poll.
          q.ring.writeControl({ doorbellNeeded: 1 });
          if (q.ring.pending) {
            q.ring.writeControl({ doorbellNeeded: 0 });
            continue;
          }
          q.sleeping = true;
          q.stats.sleeps++;
          this.totals.sleeps++;
          return;
        }
        if ('stalled' in next) return;
        await this.execute(q, next);
        if (q.destroyed) return;
      }
    } finally {
      q.running = false;
    }
  }

  /** Top up and read the vGPU's polling budget (ms). */
  private pollBudget(): number {
    const now = performance.now();
    this.pollBudgetMs = Math.min(this.pollBudgetBurstMs, this.pollBudgetMs + ((now - this.pollBudgetAt) * this.pollBudgetMsPerS) / 1000);
    this.pollBudgetAt = now;
    return this.pollBudgetMs;
  }

  /**
   * Poll the tail for the grace period, within the vGPU's polling budget: a guest that submits
   * a little every few ms would otherwise keep a host core busy polling for it. Out of budget,
   * the queue asks for a doorbell at once (a trapped write per submission, no lost work).
   */
  private async pollDuringGrace(q: Queue): Promise<boolean> {
    if (this.pollBudget() <= 0) {
      this.totals.pollBudgetExhausted++;
      return false;
    }
    const start = performance.now();
    const deadline = start + Math.min(this.graceMs, this.pollBudgetMs);
    try {
      while (performance.now() < deadline) {
        await new Promise<void>((resolve) => setImmediate(resolve));
        if (q.destroyed) return false;
        if (q.ring.pending) return true;
      }
      return false;
    } finally {
      this.pollBudgetMs -= performance.now() - start;
    }
  }

  /** The next submission of `q`'s ring (queue-ring.ts), with its kernels and buffers looked up in its context. */
  private take(q: Queue): Taken {
    const ctx = q.ctx;
    const scope = {
      buffer: (handle: number) => {
        try {
          return this.host.memory.buffer(ctx, handle);
        } catch {
          return undefined;
        }
      },
      kernel: (handle: number) => this.kernels.ready(ctx, handle),
    };
    const next = q.ring.take(scope, this.limits, this.runner.lostReason(ctx));
    if (next !== 'empty' && 'stalled' in next && next.stalled !== null) this.recordError(q, next.stalled, null, next.pos);
    return next;
  }

  private recordError(q: Queue, err: CommandError, fence: bigint | null, pos: bigint): void {
    const control = q.ring.readControl();
    q.ring.writeControl({
      errors: control.errors + 1n,
      errorFence: fence === null ? 0n : errorFenceValue(fence),
      errorCode: SUBMIT_ERRORS[err.error].code,
      errorAt: err.at,
      errorHead: pos,
      ...(err.error === 'BAD_RING' ? { state: SUBMIT_ERRORS.BAD_RING.code } : {}),
    });
    q.stats.errors++;
    guestError(`${this.host.name}-submit-${err.error}`, `${this.host.name}: queue ${q.id} submission at ${pos} refused (${err.error}): ${err.message}`);
    this.host.raiseIrq(1 << IRQ_SOURCE_ERROR);
  }

  private writeU64(at: number, value: bigint): void {
    const a = this.host.aperture;
    new DataView(a.buffer, a.byteOffset, a.byteLength).setBigUint64(at, value, true);
  }

  private async execute(q: Queue, work: Exclude<Taken, 'empty' | { stalled: unknown }>): Promise<void> {
    const takenAt = performance.now();
    if ('error' in work) {
      // The fence first, then the record and the ERROR interrupt: a guest woken by the
      // interrupt must find the fence already written.
      if (work.fenceAt !== null && work.fence !== null) this.writeU64(work.fenceAt.offset, errorFenceValue(work.fence));
      this.recordError(q, work.error, work.fence, work.pos);
      this.finish(q, work.error.error, 0, takenAt);
      return;
    }
    const { submission } = work;
    const { deviceNs, error } = await this.runner.run(q, submission);
    // The queue was destroyed while this ran (QUEUE_DESTROY, the VM went away, a device reset,
    // the daemon shutting down): nobody waits for its fence, and its memory may be reset or
    // already unmapped, so no fence and no control-block update.
    if (q.destroyed) return;
    if (error !== null) {
      const fence = submission.fence;
      if (fence !== null) this.writeU64(fence.dst.offset, errorFenceValue(fence.value));
      this.recordError(q, error, fence?.value ?? null, work.pos);
      this.finish(q, error.error, deviceNs, takenAt);
      return;
    }
    if (submission.fence !== null) {
      this.writeU64(submission.fence.dst.offset, submission.fence.value);
      if (submission.fence.irq) this.host.raiseIrq(1 << IRQ_SOURCE_FENCE);
    }
    this.finish(q, null, deviceNs, takenAt);
  }

  private finish(q: Queue, error: SubmitErrorName | null, deviceNs: number, takenAt: number): void {
    q.stats.submissions++;
    q.stats.deviceNs += deviceNs;
    this.totals.submissions++;
    this.totals.deviceNs += deviceNs;
    if (error !== null) this.totals.errors++;
    const completed = q.ring.readControl().completed + 1n;
    q.ring.writeControl({ completed });
    this.onSubmissionDone?.(q.id, error, deviceNs, performance.now() - takenAt);
  }

  get lostContextCount(): number {
    return this.runner.lostContextCount;
  }

  /** Contexts marked lost, for status and tests. */
  isContextLost(ctx: number): boolean {
    return this.runner.isContextLost(ctx);
  }
}
