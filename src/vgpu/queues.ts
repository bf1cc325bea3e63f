/**
 * Mediated queues (contract 1.1): rings in the aperture that the guest fills directly, and the
 * device side that consumes them — validating each submission, running it on the execution
 * backend, writing fences and raising interrupts.
 *
 * Notification protocol (virtio's event suppression, adapted): while a queue has work, and for
 * a grace period after it drains, mdgpu polls the ring's tail in shared memory; only then does it
 * publish `doorbell_needed = 1` and sleep. The guest writes the trapped QUEUE_DOORBELL register
 * only when it sees that flag, so under load a submission costs no VM exit at all. The two sides
 * follow Dekker's pattern (store own flag, full fence, load the other's) so no wakeup is lost; a
 * slow background check (SAFETY_POLL_MS) bounds the damage of a guest that forgets the doorbell.
 */
import { guestError, tracer } from '../log.js';
import { structWith, u32, u64 } from '../layout/struct.js';
import {
  CMD_LAYOUTS,
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

/** GPU-side work, with aperture offsets resolved; what the execution backend runs. */
export type BackendCommand =
  | { kind: 'copy'; src: ApertureRange; dst: ApertureRange }
  | { kind: 'fill'; dst: ApertureRange; value: number }
  | { kind: 'dispatch'; kernel: number; groups: [number, number, number]; bindings: ApertureRange[]; pushConstants: Uint8Array }
  | { kind: 'timestamp'; dst: ApertureRange }
  | { kind: 'barrier' };

/** The host execution engine (the Vulkan host driver in production), injected. */
/** Who a batch is for: the scheduler orders by priority and charges the context's vGPU. */
export interface BatchMeta {
  ctx: number;
  queue: number;
  /** 0 (highest) .. 3 (lowest). */
  priority: number;
}

export interface ExecutionBackend {
  /**
   * Run commands in order against the aperture; resolves with the device time in ns. A
   * rejection whose error has `contextLost: true` (a batch past the time limit) marks the
   * submitting context lost.
   */
  run(commands: BackendCommand[], meta: BatchMeta): Promise<{ deviceNs: number }>;
  /** Validate and compile SPIR-V; returns the backend's kernel id. Throws on invalid SPIR-V. */
  createKernel(spirv: Uint32Array, bindings: number, pushConstantBytes: number): number;
  destroyKernel(id: number): void;
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

/** Polling continues this long after a queue drains before it asks for a doorbell. */
export const DEFAULT_GRACE_MS = 5;
/** Sleeping queues are still looked at this often, in case a guest never rings. */
export const SAFETY_POLL_MS = 50;

interface Kernel {
  ctx: number;
  backendId: number;
  bindings: number;
  pushConstantBytes: number;
}

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
  /** Queues that a device reset took away (their pins and memory went with it). */
  private readonly resetGeneration = new WeakSet<Queue>();
  private readonly kernels = new Map<number, Kernel>();
  /** Contexts whose work overran the time limit: everything they submit fails from now on. */
  private readonly lostContexts = new Set<number>();
  private nextQueue = 1;
  private words64: BigUint64Array | null = null;
  private nextKernel = 1;
  private safetyTimer: NodeJS.Timeout | null = null;
  graceMs = DEFAULT_GRACE_MS;
  limits: CommandLimits = DEFAULT_COMMAND_LIMITS;
  maxQueues = 64;
  maxKernels = 256;
  /** Totals over every queue this device ever had. */
  readonly totals = { submissions: 0, errors: 0, doorbells: 0, sleeps: 0, deviceNs: 0 };
  /** Called after every finished submission (tests, metrics, the scheduler). */
  onSubmissionDone: ((queue: number, error: SubmitErrorName | null, deviceNs: number) => void) | null = null;

  constructor(private readonly host: QueueHost) {}

  private get view(): DataView {
    const a = this.host.aperture;
    return new DataView(a.buffer, a.byteOffset, a.byteLength);
  }

  get queueCount(): number {
    return this.queues.size;
  }
  get kernelCount(): number {
    return this.kernels.size;
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
    if (priority > 3) this.fail('BAD_FLAGS', `queue priority ${priority} (0..3)`);
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
    this.queues.delete(q.id);
    // A submission still in flight keeps its own pins; the ring buffer is released now.
    this.host.memory.unpin(q.buffer);
    if (this.queues.size === 0) this.disarmSafetyPoll();
  }

  createKernel(ctx: number, bufferHandle: number, offset: number, size: number, bindings: number, pushConstantBytes: number): number {
    const buffer = this.host.memory.buffer(ctx, bufferHandle);
    if (this.kernels.size >= this.maxKernels) this.fail('TOO_MANY', `kernel limit ${this.maxKernels} reached`);
    if (size === 0 || size % 4 !== 0 || size > 1 << 20 || offset % 4 !== 0 || offset + size > buffer.size) {
      this.fail('BAD_SIZE', `SPIR-V of ${size} bytes at ${offset} in a buffer of ${buffer.size}`);
    }
    if (bindings > this.limits.maxBindings || pushConstantBytes > this.limits.maxPushConstantBytes || pushConstantBytes % 4 !== 0) {
      this.fail('BAD_FLAGS', `kernel with ${bindings} bindings and ${pushConstantBytes} push-constant bytes`);
    }
    const backend = this.host.backend;
    if (backend === null) this.fail('UNSUPPORTED', 'no execution backend on this device');
    // Copy the words out of guest memory first: the guest may change them at any time.
    const words = new Uint32Array(size / 4);
    new Uint8Array(words.buffer).set(this.host.aperture.subarray(buffer.offset + offset, buffer.offset + offset + size));
    if (words[0] !== 0x0723_0203) this.fail('BAD_KERNEL', 'not SPIR-V (bad magic number)');
    let backendId: number;
    try {
      backendId = backend.createKernel(words, bindings, pushConstantBytes);
    } catch (err) {
      this.fail('BAD_KERNEL', `SPIR-V rejected: ${(err as Error).message}`);
    }
    let id = this.nextKernel;
    while (id === 0 || this.kernels.has(id)) id = (id + 1) >>> 0;
    this.nextKernel = (id + 1) >>> 0;
    this.kernels.set(id, { ctx, backendId, bindings, pushConstantBytes });
    return id;
  }

  destroyKernel(ctx: number, id: number): void {
    const k = this.kernels.get(id);
    if (k === undefined || k.ctx !== ctx) this.fail('BAD_HANDLE', `no kernel ${id} in context ${ctx}`);
    this.kernels.delete(id);
    this.host.backend?.destroyKernel(k.backendId);
  }

  /** A context is going away: its queues stop and its kernels are destroyed. */
  destroyContext(ctx: number): void {
    this.lostContexts.delete(ctx);
    for (const q of [...this.queues.values()]) if (q.ctx === ctx) this.retireQueue(q);
    for (const [id, k] of [...this.kernels]) {
      if (k.ctx !== ctx) continue;
      this.kernels.delete(id);
      this.host.backend?.destroyKernel(k.backendId);
    }
  }

  /**
   * Stop every queue and release every kernel. With `memoryReset` (a device reset) the device's
   * memory state is going too, so in-flight submissions must not touch it when they finish;
   * without it (the VM went away) pins and buffers stay consistent and are released normally.
   */
  reset(memoryReset = true): void {
    for (const q of [...this.queues.values()]) {
      if (memoryReset) {
        q.destroyed = true;
        this.resetGeneration.add(q);
      } else {
        this.retireQueue(q);
      }
    }
    this.queues.clear();
    for (const k of this.kernels.values()) this.host.backend?.destroyKernel(k.backendId);
    this.kernels.clear();
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

  /** Consume the queue until it is empty and the grace period passed, then sleep. */
  private async pump(q: Queue): Promise<void> {
    if (q.running) return;
    q.running = true;
    try {
      for (;;) {
        if (q.destroyed) return;
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

  private async pollDuringGrace(q: Queue): Promise<boolean> {
    const deadline = performance.now() + this.graceMs;
    while (performance.now() < deadline) {
      await new Promise<void>((resolve) => setImmediate(resolve));
      if (q.destroyed) return false;
      if (this.tail(q) !== this.head(q)) return true;
    }
    return false;
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
    const bytes = this.ringBytes(q, head, Math.min(available, this.limits.maxSubmissionBytes));
    const ctx = q.ctx;
    const scope = {
      buffer: (handle: number) => {
        try {
          return this.host.memory.buffer(ctx, handle);
        } catch {
          return undefined;
        }
      },
      kernel: (handle: number) => {
        const k = this.kernels.get(handle);
        return k !== undefined && k.ctx === ctx ? k : undefined;
      },
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
    if ('error' in work) {
      // The fence first, then the record and the ERROR interrupt: a guest woken by the
      // interrupt must find the fence already written.
      if (work.fenceAt !== null && work.fence !== null) this.writeU64(work.fenceAt.offset, errorFenceValue(work.fence));
      this.recordError(q, work.error, work.fence, work.pos);
      this.finish(q, work.error.error, 0);
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
      deviceNs = await this.runCommands(submission.commands, { ctx: q.ctx, queue: q.id, priority: q.priority });
    } catch (err) {
      if ((err as { contextLost?: boolean }).contextLost === true) {
        this.lostContexts.add(q.ctx);
        guestError(`${this.host.name}-lost`, `${this.host.name}: context ${q.ctx} lost: ${(err as Error).message}`);
        error = new CommandError('CONTEXT_LOST', (err as Error).message);
      } else {
        error = err instanceof CommandError ? err : new CommandError('EXEC_FAILED', (err as Error).message);
      }
    } finally {
      // After a device reset the pins are gone with everything else, and so is the queue.
      if (!this.resetGeneration.has(q)) for (const handle of pinned) this.host.memory.unpin(handle);
    }
    // The queue was destroyed while this ran (QUEUE_DESTROY, the VM went away, a device reset,
    // the daemon shutting down): nobody waits for its fence, and its memory may be reset or
    // already unmapped, so no fence and no control-block update.
    if (q.destroyed) return;
    if (error !== null) {
      const fence = submission.fence;
      if (fence !== null) this.writeU64(fence.dst.offset, errorFenceValue(fence.value));
      this.recordError(q, error, fence?.value ?? null, work.pos);
      this.finish(q, error.error, deviceNs);
      return;
    }
    if (submission.fence !== null) {
      this.writeU64(submission.fence.dst.offset, submission.fence.value);
      if (submission.fence.irq) this.host.raiseIrq(1 << IRQ_SOURCE_FENCE);
    }
    this.finish(q, null, deviceNs);
  }

  private finish(q: Queue, error: SubmitErrorName | null, deviceNs: number): void {
    q.stats.submissions++;
    q.stats.deviceNs += deviceNs;
    this.totals.submissions++;
    this.totals.deviceNs += deviceNs;
    if (error !== null) this.totals.errors++;
    const completed = this.readControl(q).completed + 1n;
    this.writeControl(q, { completed });
    this.onSubmissionDone?.(q.id, error, deviceNs);
  }

  /** GPU work goes to the backend in batches; FENCE and WAIT are done here between batches. */
  get lostContextCount(): number {
    return this.lostContexts.size;
  }

  /** Contexts marked lost, for status and tests. */
  isContextLost(ctx: number): boolean {
    return this.lostContexts.has(ctx);
  }

  private async runCommands(commands: ValidCommand[], meta: BatchMeta): Promise<number> {
    let batch: BackendCommand[] = [];
    let deviceNs = 0;
    const flush = async () => {
      if (batch.length === 0) return;
      const backend = this.host.backend;
      if (backend === null) throw new CommandError('EXEC_FAILED', 'no execution backend on this device');
      const run = batch.map((c) => (c.kind === 'dispatch' ? { ...c, kernel: this.kernels.get(c.kernel)!.backendId } : c));
      batch = [];
      deviceNs += (await backend.run(run, meta)).deviceNs;
    };
    for (const c of commands) {
      switch (c.kind) {
        case 'fence':
          await flush();
          this.writeU64(c.dst.offset, c.value);
          if (c.irq) this.host.raiseIrq(1 << IRQ_SOURCE_FENCE);
          break;
        case 'wait':
          await flush();
          await this.waitFor(c.src.offset, c.value, c.timeoutNs);
          break;
        case 'dispatch':
          if (!this.kernels.has(c.kernel)) throw new CommandError('BAD_KERNEL', `kernel ${c.kernel} destroyed before it ran`);
          batch.push(c);
          break;
        default:
          batch.push(c);
      }
    }
    await flush();
    return deviceNs;
  }

  private async waitFor(at: number, value: bigint, timeoutNs: bigint): Promise<void> {
    const deadline = performance.now() + Number(timeoutNs / 1_000_000n);
    while (this.view.getBigUint64(at, true) < value) {
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
      return [c.dst];
    case 'dispatch':
      return c.bindings;
    case 'wait':
      return [c.src];
    case 'barrier':
      return [];
  }
}
