/**
 * Mediated queues (contract 1.2): rings in the aperture that the guest fills directly, and the
 * device side that consumes them — validating each submission, running it on the execution
 * backend, writing fences and raising interrupts.
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
import { CancelledError, ContextLostError, ThrottledError } from '../execution-errors.js';
import { guestError, tracer } from '../log.js';
import { structWith, u32, u64 } from '../layout/struct.js';
import type { DeviceCommand } from '../device-commands.js';
import {
  CMD_LAYOUTS,
  checkGroups,
  CommandError,
  DEFAULT_COMMAND_LIMITS,
  errorFenceValue,
  SUBMIT_ERRORS,
  validateSubmission,
  type ApertureRange,
  type CommandLimits,
  type SubmitErrorName,
  type ValidCommand,
  type ValidSubmission,
} from './commands.js';
import type { CapsRecord } from './caps.js';
import { KernelRegistry, type KernelBuilderPort } from './kernels.js';
import { MailboxFailure, type MemoryMediator } from './memory-mediator.js';
import { IRQ_SOURCE_ERROR, IRQ_SOURCE_FENCE } from './regs.js';

const traceQueue = tracer('queue');

/** The control block at the start of a queue buffer (one page); the ring follows it. */
export const QueueControl = structWith((m) => new Error(m))('mdgpu_queue_control', {
  tail: u64,
  head: u64,
  doorbellNeeded: u32,
  state: u32,
  completed: u64,
  errors: u64,
  errorFence: u64,
  errorCode: u32,
  errorAt: u32,
  errorHead: u64,
});
/** What each control-block field means; also the kernel-doc of the generated mdgpu_cmd.h. */
export const QUEUE_CONTROL_DOCS: { readonly [K in keyof typeof QueueControl.fields]: string } = {
  tail: 'guest: bytes published into the ring so far (monotonic, a multiple of 8)',
  head: 'device: bytes consumed so far; ring space before it may be reused',
  doorbellNeeded: 'device: 1 while it sleeps: ring QUEUE_DOORBELL after publishing',
  state: 'device: 0, or MDGPU_SUBMIT_BAD_RING while the ring pointers are out of range',
  completed: 'device: submissions finished, successfully or not',
  errors: 'device: submissions that failed',
  errorFence: 'device: the error fence value of the last failure (bit 63 set)',
  errorCode: 'device: its MDGPU_SUBMIT_* code',
  errorAt: 'device: byte offset of the offending command in its submission',
  errorHead: 'device: ring position of the failed submission',
};
export const QUEUE_CONTROL_SIZE = 4096;
export const QUEUE_MIN_RING = 4096;
export const QUEUE_MAX_RING = 16 << 20;

/**
 * GPU-side work as the execution backend gets it: the validator's commands (aperture offsets
 * resolved) with each dispatch's kernel the backend's own handle (what it returned when the
 * kernel was built), carried through unchanged.
 */
export type BackendCommand = DeviceCommand<unknown, ApertureRange>;

/** Who a batch is for: the scheduler orders by priority and charges the context's vGPU. */
export interface BatchMeta {
  ctx: number;
  queue: number;
  /** 0 (highest) .. 3 (lowest). */
  priority: number;
}

/** The host execution engine (the Vulkan host driver in production, src/exec), injected. */
export interface ExecutionBackend extends KernelBuilderPort {
  /**
   * Run commands in order against the aperture; resolves with the device time in ns. Rejects
   * with a ContextLostError when the batch ran past its time limit or the device was reset
   * under it (the context is then lost), a ThrottledError when the vGPU is cooling off, a
   * CancelledError when `signal` withdrew it before it ran.
   */
  run(commands: readonly BackendCommand[], meta: BatchMeta, signal: AbortSignal): Promise<{ deviceNs: number }>;
  /**
   * The capability record's device part (contract 1.3, src/vgpu/caps.ts) for a device that
   * validates with `limits`; the device adds the VM's memory limits.
   */
  caps(limits: CommandLimits): Omit<CapsRecord, 'maxMemoryAllocationSize'>;
}

/** How the queue engine talks to the rest of the device. */
export interface QueueHost {
  readonly name: string;
  readonly aperture: Uint8Array;
  readonly memory: MemoryMediator;
  readonly backend: ExecutionBackend | null;
  /** Raise interrupt sources (IRQ_STATUS bits). */
  raiseIrq(bits: number): void;
}

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
  /** The last bad tail reported, so a stuck guest is logged once, not on every poll. */
  badTail: bigint | null = null;
  readonly stats: QueueStats = { submissions: 0, errors: 0, doorbells: 0, sleeps: 0, deviceNs: 0 };
  constructor(
    readonly id: number,
    readonly ctx: number,
    readonly buffer: number,
    readonly control: number,
    readonly ring: number,
    readonly ringSize: number,
    readonly priority: number,
  ) {}
}

export class QueueEngine {
  private readonly queues = new Map<number, Queue>();
  /** Contexts whose work overran the time limit: everything they submit fails from now on. */
  private readonly lostContexts = new Set<number>();
  private nextQueue = 1;
  private words64: BigUint64Array | null = null;
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
  }

  private get view(): DataView {
    const a = this.host.aperture;
    return new DataView(a.buffer, a.byteOffset, a.byteLength);
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
    // Queues work without an execution backend too: FENCE, WAIT and NOP need none, and a
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
    const q = new Queue(id, ctx, bufferHandle, buffer.offset, buffer.offset + QUEUE_CONTROL_SIZE, ringSize, priority);
    // A fresh control block: the allocation was zeroed, so tail = head = 0. Start asleep.
    this.writeControl(q, { doorbellNeeded: 1 });
    q.sleeping = true;
    this.queues.set(id, q);
    this.armSafetyPoll();
    traceQueue(() => `${this.host.name}: queue ${id} ctx ${ctx} ring ${ringSize} bytes at 0x${q.ring.toString(16)}`);
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
    this.lostContexts.delete(ctx);
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
    this.lostContexts.clear();
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

  // ---- ring access ----

  private readControl(q: Queue) {
    return QueueControl.decode(this.host.aperture, q.control);
  }

  private writeControl(q: Queue, fields: Partial<ReturnType<typeof QueueControl.decode>>): void {
    const v = this.view;
    const f = QueueControl.fields;
    for (const [name, value] of Object.entries(fields)) {
      const info = f[name as keyof typeof f];
      if (info.size === 8) v.setBigUint64(q.control + info.offset, value as bigint, true);
      else v.setUint32(q.control + info.offset, value as number, true);
    }
  }

  /**
   * The ring pointers are read and written as single 8-byte atomic accesses (Atomics on a
   * BigUint64Array over the aperture; the control block is 8-byte aligned), so a pointer the
   * guest is updating is never seen half old, half new. x86 is little-endian, as the format is.
   */
  private words(): BigUint64Array {
    const a = this.host.aperture;
    if (this.words64 === null || this.words64.buffer !== a.buffer) this.words64 = new BigUint64Array(a.buffer, a.byteOffset, Math.floor(a.byteLength / 8));
    return this.words64;
  }

  private tail(q: Queue): bigint {
    return Atomics.load(this.words(), (q.control + QueueControl.fields.tail.offset) / 8);
  }

  private head(q: Queue): bigint {
    return Atomics.load(this.words(), (q.control + QueueControl.fields.head.offset) / 8);
  }

  private setHead(q: Queue, value: bigint): void {
    Atomics.store(this.words(), (q.control + QueueControl.fields.head.offset) / 8, value);
  }

  /** Copy `length` ring bytes starting at ring position `pos` (wrapping at the ring's end). */
  private ringBytes(q: Queue, pos: bigint, length: number): Uint8Array {
    const out = new Uint8Array(length);
    const start = Number(pos % BigInt(q.ringSize));
    const first = Math.min(length, q.ringSize - start);
    out.set(this.host.aperture.subarray(q.ring + start, q.ring + start + first));
    if (first < length) out.set(this.host.aperture.subarray(q.ring, q.ring + (length - first)), first);
    return out;
  }

  private wake(q: Queue): void {
    if (q.destroyed) return;
    q.sleeping = false;
    this.writeControl(q, { doorbellNeeded: 0 });
    void this.pump(q);
  }

  private armSafetyPoll(): void {
    if (this.safetyTimer !== null) return;
    this.safetyTimer = setInterval(() => {
      for (const q of this.queues.values()) {
        if (q.sleeping && !q.running && this.tail(q) !== this.head(q)) this.wake(q);
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
          this.writeControl(q, { doorbellNeeded: 1 });
          if (this.tail(q) !== this.head(q)) {
            this.writeControl(q, { doorbellNeeded: 0 });
            continue;
          }
          q.sleeping = true;
          q.stats.sleeps++;
          this.totals.sleeps++;
          return;
        }
        if (next === 'stalled') return;
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
        if (this.tail(q) !== this.head(q)) return true;
      }
      return false;
    } finally {
      this.pollBudgetMs -= performance.now() - start;
    }
  }

  /**
   * Take the next submission off the ring: validated, or failed with its error. Advances head
   * past it at once (the bytes were copied), so the guest can reuse the space while it runs.
   */
  private take(
    q: Queue,
  ):
    | { submission: ValidSubmission; pos: bigint }
    | { error: CommandError; fence: bigint | null; pos: bigint; fenceAt: ApertureRange | null }
    | 'empty'
    | 'stalled' {
    const head = this.head(q);
    const tail = this.tail(q);
    if (tail === head) return 'empty';
    if (tail < head || tail - head > BigInt(q.ringSize) || tail % 8n !== 0n) {
      // Nothing sane can be consumed; report once per bad tail value and wait for a good one.
      if (q.badTail !== tail) {
        q.badTail = tail;
        this.recordError(q, new CommandError('BAD_RING', `tail ${tail} with head ${head} and a ring of ${q.ringSize}`), null, head);
      }
      return 'stalled';
    }
    q.badTail = null;
    const available = Number(tail - head);
    // Copy exactly one submission: its header first, then as many bytes as it says it has (at
    // most what was published and what a submission may be), not everything published.
    const headerBytes = this.ringBytes(q, head, Math.min(available, CMD_LAYOUTS.SUBMIT.size));
    let length = headerBytes.length;
    if (headerBytes.length === CMD_LAYOUTS.SUBMIT.size) {
      const claimed = new DataView(headerBytes.buffer).getUint32(CMD_LAYOUTS.SUBMIT.fields.length.offset, true);
      length = Math.min(available, this.limits.maxSubmissionBytes, Math.max(CMD_LAYOUTS.SUBMIT.size, claimed));
    }
    const bytes = length === headerBytes.length ? headerBytes : this.ringBytes(q, head, length);
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
    try {
      if (this.lostContexts.has(ctx)) throw new CommandError('CONTEXT_LOST', `context ${ctx} was lost`);
      const submission = validateSubmission(bytes, scope, this.limits);
      this.setHead(q, head + BigInt(submission.length));
      return { submission, pos: head };
    } catch (err) {
      if (!(err instanceof CommandError)) throw err;
      // Skip exactly the failed submission when its length is trustworthy, else everything
      // published: a garbled length gives no safe place to resume. A lost context's
      // submissions are not validated at all, but their SUBMIT header still names the fence a
      // waiter sleeps on: it gets its error fence too, instead of waiting for its timeout.
      let skip = BigInt(available);
      let fence: bigint | null = null;
      let fenceAt: ApertureRange | null = null;
      if (bytes.length >= CMD_LAYOUTS.SUBMIT.size && err.error !== 'BAD_LENGTH' && err.error !== 'TRUNCATED' && err.error !== 'TOO_LARGE') {
        // Read the SUBMIT header's fields by their declared offsets: only to place the error fence.
        const v = new DataView(bytes.buffer);
        const f = CMD_LAYOUTS.SUBMIT.fields;
        const length = v.getUint32(f.length.offset, true);
        if (length % 8 === 0 && length >= CMD_LAYOUTS.SUBMIT.size && length <= available) skip = BigInt(length);
        const fenceBuffer = v.getUint32(f.fenceBuffer.offset, true);
        if (fenceBuffer !== 0) {
          const value = v.getBigUint64(f.fenceValue.offset, true);
          const offset = v.getBigUint64(f.fenceOffset.offset, true);
          const b = scope.buffer(fenceBuffer);
          if (b !== undefined && offset % 8n === 0n && offset + 8n <= BigInt(b.size)) {
            fence = value;
            fenceAt = { buffer: fenceBuffer, offset: b.offset + Number(offset), size: 8 };
          }
        }
      }
      this.setHead(q, head + skip);
      return { error: err, fence, pos: head, fenceAt };
    }
  }

  private recordError(q: Queue, err: CommandError, fence: bigint | null, pos: bigint): void {
    const control = this.readControl(q);
    this.writeControl(q, {
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
    this.view.setBigUint64(at, value, true);
  }

  private async execute(q: Queue, work: Exclude<ReturnType<QueueEngine['take']>, 'empty' | 'stalled'>): Promise<void> {
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
    // Pin every buffer the submission touches: a BO_FREE while it runs must not hand the range
    // to someone else before the device is done with it.
    const pinned = new Set<number>();
    const pinRange = (r: ApertureRange) => {
      if (!pinned.has(r.buffer)) {
        this.host.memory.pin(r.buffer);
        pinned.add(r.buffer);
      }
    };
    if (submission.fence !== null) pinRange(submission.fence.dst);
    for (const c of submission.commands) for (const r of rangesOf(c)) pinRange(r);
    let deviceNs = 0;
    let error: CommandError | null = null;
    try {
      deviceNs = await this.runCommands(q, submission.commands);
    } catch (err) {
      error = this.commandErrorOf(q, err);
    } finally {
      // Settled means the device is done with every buffer of this submission (a batch past
      // its time limit settles only once the device process that ran it is gone).
      for (const handle of pinned) this.host.memory.unpin(handle);
    }
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
    const completed = this.readControl(q).completed + 1n;
    this.writeControl(q, { completed });
    this.onSubmissionDone?.(q.id, error, deviceNs, performance.now() - takenAt);
  }

  /** What a failed run means for the guest; a lost context is remembered. */
  private commandErrorOf(q: Queue, err: unknown): CommandError {
    if (err instanceof CommandError) return err;
    if (err instanceof ContextLostError) {
      this.lostContexts.add(q.ctx);
      guestError(`${this.host.name}-lost`, `${this.host.name}: context ${q.ctx} lost: ${err.message}`);
      return new CommandError('CONTEXT_LOST', err.message);
    }
    if (err instanceof ThrottledError) return new CommandError('THROTTLED', err.message);
    // A withdrawn submission: its queue is gone, and nobody reads what it would have said.
    if (err instanceof CancelledError) return new CommandError('EXEC_FAILED', err.message);
    return new CommandError('EXEC_FAILED', (err as Error)?.message ?? String(err));
  }

  get lostContextCount(): number {
    return this.lostContexts.size;
  }

  /** Contexts marked lost, for status and tests. */
  isContextLost(ctx: number): boolean {
    return this.lostContexts.has(ctx);
  }

  /** GPU work goes to the backend in batches; FENCE and WAIT are done here between batches. */
  private async runCommands(q: Queue, commands: ValidCommand[]): Promise<number> {
    const meta: BatchMeta = { ctx: q.ctx, queue: q.id, priority: q.priority };
    const signal = q.abort.signal;
    let batch: BackendCommand[] = [];
    let deviceNs = 0;
    const withdrawn = () => {
      if (q.destroyed) throw new CancelledError(`queue ${q.id} was destroyed`);
    };
    const flush = async () => {
      if (batch.length === 0) return;
      withdrawn();
      const backend = this.host.backend;
      if (backend === null) throw new CommandError('EXEC_FAILED', 'no execution backend on this device');
      const run = batch;
      batch = [];
      deviceNs += (await backend.run(run, meta, signal)).deviceNs;
    };
    for (const c of commands) {
      switch (c.kind) {
        case 'fence':
          await flush();
          withdrawn();
          this.writeU64(c.dst.offset, c.value);
          if (c.irq) this.host.raiseIrq(1 << IRQ_SOURCE_FENCE);
          break;
        case 'wait':
          await flush();
          await this.waitFor(c.src.offset, c.value, c.timeoutNs, q);
          break;
        case 'dispatch': {
          const kernel = this.kernels.ready(q.ctx, c.kernel);
          if (kernel === undefined) throw new CommandError('BAD_KERNEL', `kernel ${c.kernel} destroyed before it ran`);
          batch.push({ ...c, kernel: kernel.handle });
          break;
        }
        case 'dispatchIndirect': {
          const kernel = this.kernels.ready(q.ctx, c.kernel);
          if (kernel === undefined) throw new CommandError('BAD_KERNEL', `kernel ${c.kernel} destroyed before it ran`);
          // The arguments may be written by the commands before this one: read them only once
          // those have completed, and check them then, as the guest could not be trusted with
          // handing the host device indirect arguments itself.
          await flush();
          withdrawn();
          const groups: [number, number, number] = [0, 4, 8].map((at) => this.view.getUint32(c.args.offset + at, true)) as [number, number, number];
          const bad = checkGroups(groups, this.limits, true);
          if (bad !== null) throw new CommandError('BAD_INDIRECT', `DISPATCH_INDIRECT read ${bad}`);
          if (groups.every((g) => g > 0)) {
            batch.push({ kind: 'dispatch', kernel: kernel.handle, base: [0, 0, 0], groups, descriptors: c.descriptors, pushConstants: c.pushConstants });
          }
          break;
        }
        default:
          batch.push(c);
      }
    }
    await flush();
    return deviceNs;
  }

  /** WAIT: poll a u64 until it reaches `value`, the timeout passes, or the queue is destroyed. */
  private async waitFor(at: number, value: bigint, timeoutNs: bigint, q: Queue): Promise<void> {
    const deadline = performance.now() + Number(timeoutNs / 1_000_000n);
    while (this.view.getBigUint64(at, true) < value) {
      if (q.destroyed) throw new CancelledError(`queue ${q.id} was destroyed during a WAIT`);
      if (performance.now() >= deadline) throw new CommandError('WAIT_TIMEOUT', `value at 0x${at.toString(16)} did not reach ${value}`);
      await new Promise<void>((resolve) => setTimeout(resolve, 1));
    }
  }
}

function rangesOf(c: ValidCommand): ApertureRange[] {
  switch (c.kind) {
    case 'copy':
      return [c.src, c.dst];
    case 'fill':
    case 'fence':
    case 'timestamp':
    case 'update':
      return [c.dst];
    case 'dispatch':
      return c.descriptors.map((d) => d.range);
    case 'dispatchIndirect':
      return [c.args, ...c.descriptors.map((d) => d.range)];
    case 'wait':
      return [c.src];
    case 'barrier':
      return [];
  }
}
