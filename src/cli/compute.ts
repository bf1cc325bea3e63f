/**
 * Wiring: the device model's execution backend (src/vgpu/queues.ts `ExecutionBackend`) on top of
 * the host driver (src/backend, Vulkan through koffi). The whole aperture is imported once, zero
 * copy where the device supports it, so every validated command addresses it by offset.
 */
import type { BackendCommand, BatchMeta, ExecutionBackend } from '../vgpu/queues.js';
import type { FairScheduler } from '../sched/scheduler.js';
import type { CommandLimits } from '../vgpu/commands.js';
import type { BackendKernel, BackendMemory, Command, ComputeBackend } from '../backend/backend.js';
import { IsolatedDevice } from '../backend/isolated.js';
import { info } from '../log.js';

export interface ComputeOptions {
  /** Device selector: index or name substring (default: a GPU if any, else lavapipe). */
  device?: string;
}

export class ApertureExecutor implements ExecutionBackend {
  private readonly memory: BackendMemory;
  private readonly kernels = new Map<number, BackendKernel>();
  /** Batches submitted and not settled: the aperture must stay mapped until they are. */
  private readonly inFlight = new Set<Promise<unknown>>();
  private nextKernel = 1;

  constructor(
    readonly device: ComputeBackend,
    /** The aperture memfd, imported whole (the device maps it itself). */
    aperture: { fd: number; size: number },
    /** Shares the device with other vGPUs; without one, batches go straight to the device. */
    private readonly scheduler: { scheduler: FairScheduler; vgpu: string } | null = null,
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

  async run(commands: BackendCommand[], meta: BatchMeta): Promise<{ deviceNs: number }> {
    const mapped = this.map(commands);
    const submit = async () => {
      const onDevice = this.device.submit(mapped);
      // Track the device's own completion (not the scheduler's answer, which a time limit may
      // give early): the aperture must stay mapped until the device is done writing into it.
      const settled = onDevice.then(
        () => undefined,
        () => undefined,
      );
      this.inFlight.add(settled);
      void settled.then(() => this.inFlight.delete(settled));
      const status = await onDevice;
      return { deviceNs: status.deviceNs ?? Number(status.completeNs - status.submitNs) };
    };
    if (this.scheduler === null) return submit();
    return this.scheduler.scheduler.submit(this.scheduler.vgpu, meta.priority, submit);
  }

  private map(commands: BackendCommand[]): Command[] {
    const mem = this.memory;
    const mapped: Command[] = commands.map((c): Command => {
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
    return mapped;
  }

  createKernel(spirv: Uint32Array, bindings: number, pushConstantBytes: number): number {
    const kernel = this.device.createKernel(spirv, { bindings, pushConstantSize: pushConstantBytes });
    const id = this.nextKernel++;
    this.kernels.set(id, kernel);
    return id;
  }

  destroyKernel(id: number): void {
    this.kernels.get(id)?.destroy();
    this.kernels.delete(id);
  }

  /** Release this vGPU's kernels and memory import (and the device, when it owns it). */
  async close(): Promise<void> {
    // Queued batches of a departing vGPU fail at once; a running one is waited for, because the
    // device writes into the aperture until it completes.
    if (this.scheduler !== null) this.scheduler.scheduler.unregister(this.scheduler.vgpu);
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

/**
 * Open the host compute device (Vulkan; lavapipe when there is no GPU) in a worker process,
 * so that a batch that never ends can be stopped by resetting it (src/backend/isolated.ts).
 */
export function openCompute(options: ComputeOptions): ComputeBackend {
  const device = IsolatedDevice.open(options.device !== undefined ? { device: options.device } : {});
  info(`compute: ${device.info.name} (${device.info.driverInfo}, Vulkan ${device.info.apiVersion})`);
  return device;
}
