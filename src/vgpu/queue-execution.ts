/**
 * Running one validated submission (contract 1.2): its buffers pinned while it runs, its GPU
 * commands handed to the executor in batches, FENCE and WAIT done here between
 * batches, DISPATCH_INDIRECT's arguments read and checked only once the commands before it
 * completed, and what a failure means for the guest — a lost context is remembered, and
 * everything it submits afterwards fails. The ring and the notification protocol are
 * queue-ring.ts and queues.ts.
 */
import type { DeviceCommand } from '../device-commands.js';
import { CancelledError, ContextLostError, ThrottledError } from '../execution-errors.js';
import { guestError } from '../log.js';
import type { CapsRecord } from './caps.js';
import { checkGroups, CommandError, type ApertureRange, type CommandLimits, type ValidCommand, type ValidSubmission } from './commands.js';
import type { KernelBuilderPort, KernelRegistry } from './kernels.js';
import type { MemoryMediator } from './memory-mediator.js';
import { IRQ_SOURCE_FENCE } from './regs.js';

/**
 * GPU-side work as the executor gets it: the validator's commands (aperture offsets
 * resolved) with each dispatch's kernel the backend's own handle (what it returned when the
 * kernel was built), carried through unchanged.
 */
export type ExecutorCommand = DeviceCommand<unknown, ApertureRange>;

/** Who a batch is for: the scheduler orders by priority and charges the context's vGPU. */
export interface BatchMeta {
  ctx: number;
  queue: number;
  /** 0 (highest) .. 3 (lowest). */
  priority: number;
}

/** The host execution engine (the Vulkan host driver in production, src/exec), injected. */
export interface Executor extends KernelBuilderPort {
  /**
   * Run commands in order against the aperture; resolves with the device time in ns. Rejects
   * with a ContextLostError when the batch ran past its time limit or the device was reset
   * under it (the context is then lost), a ThrottledError when the vGPU is cooling off, a
   * CancelledError when `signal` withdrew it before it ran.
   */
  run(commands: readonly ExecutorCommand[], meta: BatchMeta, signal: AbortSignal): Promise<{ deviceNs: number }>;
  /**
   * The capability record's device part (contract 1.3, src/vgpu/caps.ts) for a device that
   * validates with `limits`; the device adds the VM's memory limits.
   */
  caps(limits: CommandLimits): Omit<CapsRecord, 'maxMemoryAllocationSize'>;
}

/** What running a submission needs of the device. */
export interface ExecutionHost {
  readonly name: string;
  readonly aperture: Uint8Array;
  readonly memory: MemoryMediator;
  readonly executor: Executor | null;
  /** Raise interrupt sources (IRQ_STATUS bits). */
  raiseIrq(bits: number): void;
}

/** The queue a submission came from, as the runner needs it. */
export interface RunningQueue {
  readonly id: number;
  readonly ctx: number;
  readonly priority: number;
  /** Withdraws the queue's queued and parked work when it is destroyed. */
  readonly abort: AbortController;
  readonly destroyed: boolean;
}

/** Runs validated submissions for one vGPU and remembers which of its contexts were lost. */
export class SubmissionRunner {
  /** Contexts whose work overran the time limit: everything they submit fails from now on. */
  private readonly lostContexts = new Set<number>();

  constructor(
    private readonly host: ExecutionHost,
    private readonly kernels: KernelRegistry,
    private readonly limits: () => CommandLimits,
  ) {}

  private get view(): DataView {
    const a = this.host.aperture;
    return new DataView(a.buffer, a.byteOffset, a.byteLength);
  }

  private writeU64(at: number, value: bigint): void {
    this.view.setBigUint64(at, value, true);
  }

  /** Why `ctx`'s submissions fail without being run, or null when it was not lost. */
  lostReason(ctx: number): string | null {
    return this.lostContexts.has(ctx) ? `context ${ctx} was lost` : null;
  }

  get lostContextCount(): number {
    return this.lostContexts.size;
  }

  isContextLost(ctx: number): boolean {
    return this.lostContexts.has(ctx);
  }

  /** The context is gone (destroyed, or every context with a device reset when `ctx` is null). */
  forget(ctx: number | null): void {
    if (ctx === null) this.lostContexts.clear();
    else this.lostContexts.delete(ctx);
  }

  /**
   * Run `submission`'s commands with every buffer it touches pinned (a BO_FREE while it runs
   * must not hand the range to someone else before the device is done with it). Resolves with
   * the device time and the error the guest is told, if any; never rejects.
   */
  async run(q: RunningQueue, submission: ValidSubmission): Promise<{ deviceNs: number; error: CommandError | null }> {
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
    return { deviceNs, error };
  }

  /** What a failed run means for the guest; a lost context is remembered. */
  private commandErrorOf(q: RunningQueue, err: unknown): CommandError {
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

  /** GPU work goes to the backend in batches; FENCE and WAIT are done here between batches. */
  private async runCommands(q: RunningQueue, commands: ValidCommand[]): Promise<number> {
    const meta: BatchMeta = { ctx: q.ctx, queue: q.id, priority: q.priority };
    const signal = q.abort.signal;
    let batch: ExecutorCommand[] = [];
    let deviceNs = 0;
    const withdrawn = () => {
      if (q.destroyed) throw new CancelledError(`queue ${q.id} was destroyed`);
    };
    const flush = async () => {
      if (batch.length === 0) return;
      withdrawn();
      const backend = this.host.executor;
      if (backend === null) throw new CommandError('EXEC_FAILED', 'no executor on this device');
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
          const bad = checkGroups(groups, this.limits(), true);
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
  private async waitFor(at: number, value: bigint, timeoutNs: bigint, q: RunningQueue): Promise<void> {
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
