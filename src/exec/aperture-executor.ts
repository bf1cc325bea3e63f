/**
 * The executor: where a vGPU's validated work meets the shared compute device. It is the
 * device model's execution backend (src/vgpu/queues.ts `ExecutionBackend`), it queues each batch
 * with the fair scheduler (src/sched), and it runs it on the compute device (src/backend: the
 * host driver, in its worker process). The vGPU's whole aperture is imported once, zero copy
 * where the device supports it, so every validated command addresses it by offset.
 *
 *   vGPU (queues.ts) ──run/buildKernel──► ApertureExecutor ──submit──► FairScheduler ──► ComputeBackend
 *
 * It also keeps the books the vGPU layer must not: which device kernel a guest kernel is, which
 * batches are still on the device (the aperture stays mapped until they are), and who pays when
 * a kernel build fails by time or memory.
 */
import type { BackendKernel, BackendMemory, Command, ComputeBackend } from '../backend/backend.js';
import { KernelBuildError } from '../backend/backend.js';
import { info } from '../log.js';
import type { FairScheduler } from '../sched/scheduler.js';
import type { CommandLimits } from '../vgpu/commands.js';
import { MailboxFailure } from '../vgpu/memory-mediator.js';
import type { BackendCommand, BatchMeta, ExecutionBackend } from '../vgpu/queues.js';

/** The vGPU's place on a shared device: the scheduler it queues with, under which name. */
export interface SharedDevice {
  scheduler: FairScheduler;
  vgpu: string;
}

export class ApertureExecutor implements ExecutionBackend {
  private readonly memory: BackendMemory;
  private readonly kernels = new Map<number, BackendKernel>();
  /** Batches submitted and not settled: the aperture must stay mapped until they are. */
  private readonly inFlight = new Set<Promise<unknown>>();
  private nextKernel = 1;
  private closed = false;

  constructor(
    readonly device: ComputeBackend,
    /** The aperture memfd, imported whole (the device maps it itself). */
    aperture: { fd: number; size: number },
    /** Shares the device with other vGPUs; without one, batches go straight to the device. */
    private readonly share: SharedDevice | null = null,
    /** Whether this executor owns the device (and destroys it on close). */
    private readonly ownsDevice = true,
  ) {
    // Each vGPU imports its own aperture: a batch of one vGPU can only name its own memory.
    this.memory = device.importFd(aperture.fd, 0, aperture.size);
    if (!this.memory.zeroCopy) info(`compute: ${device.info.name} cannot import the aperture directly; using staging copies`);
  }

  /** Host-driver kernels this vGPU holds now (for status and leak checks). */
  get kernelCount(): number {
    return this.kernels.size;
  }

  /** Batches of this vGPU still on the device. */
  get batchesOnDevice(): number {
    return this.inFlight.size;
  }

  /** Limits the validator must enforce so that nothing valid is refused by the device. */
  limits(base: CommandLimits): CommandLimits {
    const i = this.device.info;
    return {
      ...base,
      maxBindings: Math.min(base.maxBindings, i.maxBindings),
      maxPushConstantBytes: Math.min(base.maxPushConstantBytes, i.maxPushConstantSize),
      maxWorkgroups: [
        Math.min(base.maxWorkgroups[0], i.maxWorkgroupCount[0]),
        Math.min(base.maxWorkgroups[1], i.maxWorkgroupCount[1]),
        Math.min(base.maxWorkgroups[2], i.maxWorkgroupCount[2]),
      ],
      bindingAlignment: Math.max(base.bindingAlignment, i.minBindingAlignment),
      maxBindingBytes: Math.min(base.maxBindingBytes, i.maxBindingSize),
    };
  }

  run(commands: BackendCommand[], meta: BatchMeta, signal: AbortSignal): Promise<{ deviceNs: number }> {
    let mapped: Command[];
    try {
      mapped = this.map(commands);
    } catch (err) {
      return Promise.reject(err as Error);
    }
    const submit = async (started?: () => void) => {
      const onDevice = this.device.submit(mapped, started !== undefined ? { started } : {});
      // Track the device's own completion: the aperture must stay mapped until the device is
      // done writing into it.
      const settled = onDevice.then(
        () => undefined,
        () => undefined,
      );
      this.inFlight.add(settled);
      void settled.then(() => this.inFlight.delete(settled));
      const status = await onDevice;
      return { deviceNs: status.deviceNs ?? Number(status.completeNs - status.submitNs) };
    };
    if (this.share === null) return submit();
    return this.share.scheduler.submit(this.share.vgpu, meta.priority, ({ started }) => submit(started), { signal, awaitStart: true });
  }

  private map(commands: BackendCommand[]): Command[] {
    const mem = this.memory;
    return commands.map((c): Command => {
      switch (c.kind) {
        case 'copy':
          return { op: 'copy', src: mem, srcOffset: c.src.offset, dst: mem, dstOffset: c.dst.offset, size: c.src.size };
        case 'fill':
          return { op: 'fill', mem, offset: c.dst.offset, size: c.dst.size, value: c.value };
        case 'dispatch': {
          const kernel = this.kernels.get(c.kernel);
          if (kernel === undefined) throw new Error(`kernel ${c.kernel} is gone`);
          return {
            op: 'dispatch',
            kernel,
            groups: c.groups,
            bindings: c.bindings.map((b) => ({ mem, offset: b.offset, size: b.size })),
            ...(c.pushConstants.length > 0 ? { push: c.pushConstants } : {}),
          };
        }
        case 'timestamp':
          return { op: 'timestamp', mem, offset: c.dst.offset };
        case 'barrier':
          return { op: 'barrier' };
      }
    });
  }

  async buildKernel(spirv: Uint32Array, bindings: number, pushConstantBytes: number): Promise<number> {
    let kernel: BackendKernel;
    try {
      kernel = await this.device.buildKernel(spirv, { bindings, pushConstantSize: pushConstantBytes }, this.share?.vgpu);
    } catch (err) {
      const message = (err as Error)?.message ?? String(err);
      if (err instanceof KernelBuildError && (err.fault === 'timeout' || err.fault === 'crash') && this.share !== null) {
        // It held the shared builder for a whole time limit, or brought it down: a strike.
        this.share.scheduler.buildFaults.strike(this.share.vgpu);
      }
      if (err instanceof KernelBuildError && err.fault === 'busy') throw new MailboxFailure('THROTTLED', message);
      throw new MailboxFailure('BAD_KERNEL', message);
    }
    if (this.closed) {
      kernel.destroy();
      throw new MailboxFailure('UNSUPPORTED', 'the execution backend was closed');
    }
    const id = this.nextKernel++;
    this.kernels.set(id, kernel);
    return id;
  }

  destroyKernel(id: number): void {
    this.kernels.get(id)?.destroy();
    this.kernels.delete(id);
  }

  buildsThrottledUntil(): number | null {
    return this.share === null ? null : this.share.scheduler.buildFaults.coolingOffUntil(this.share.vgpu);
  }

  /** Release this vGPU's kernels and memory import (and the device, when it owns it). */
  async close(): Promise<void> {
    this.closed = true;
    // Queued batches of a departing vGPU fail at once; a running one is waited for, because the
    // device writes into the aperture until it completes.
    if (this.share !== null) this.share.scheduler.unregister(this.share.vgpu);
    await Promise.all(this.inFlight);
    for (const k of this.kernels.values()) k.destroy();
    this.kernels.clear();
    if (this.ownsDevice) {
      await this.device.destroy();
    } else {
      // Batches already submitted with this memory still complete (the backend's contract).
      this.memory.destroy();
    }
  }
}
