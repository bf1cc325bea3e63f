/**
 * The executor: where a vGPU's validated work meets the shared compute device. It is the
 * device model's executor (src/vgpu/queues.ts `Executor`), it queues each batch
 * with the fair scheduler (src/sched), and it runs it on the compute device (src/backend: the
 * host driver, in its worker process). The vGPU's whole aperture is imported once, zero copy
 * where the device supports it, so every validated command addresses it by offset.
 *
 *   vGPU (queues.ts) ──run/buildKernel──► ApertureExecutor ──submit──► FairScheduler ──► ComputeDevice
 *
 * On a shared device whose scheduler preempts, a batch runs in parts of about one time slice
 * each (batch-parts.ts: between commands, and long dispatches in ranges of their workgroups),
 * sized from the device time this vGPU's earlier parts took; the guest still sees one batch.
 *
 * It also keeps the books the vGPU layer must not: which device kernel a guest kernel is, which
 * batches are still on the device (the aperture stays mapped until they are), and who pays when
 * a kernel build fails by time or memory.
 */
import * as os from 'node:os';
import type { BackendKernel, BackendMemory, Command, ComputeDevice, DeviceInfo, KernelOptions } from '../backend/backend.js';
import { DeviceType, KernelBuildError } from '../backend/backend.js';
import { info } from '../log.js';
import type { FairScheduler } from '../sched/scheduler.js';
import { CAPS_FEATURES, type CapsRecord, float32Bits, textField } from '../vgpu/caps.js';
import type { CommandLimits } from '../vgpu/commands.js';
import type { BuiltKernel, KernelBuildRequest } from '../vgpu/kernels.js';
import { MailboxFailure } from '../vgpu/memory-mediator.js';
import type { ExecutorCommand, BatchMeta, Executor } from '../vgpu/queue-execution.js';
import { BatchParts, DeviceTimeModel } from './batch-parts.js';

/** The vGPU's place on a shared device: the scheduler it queues with, under which name. */
export interface SharedDevice {
  scheduler: FairScheduler;
  vgpu: string;
}

export class ApertureExecutor implements Executor {
  private readonly memory: BackendMemory;
  /** Kernels built for this vGPU and not yet destroyed (released with it). */
  private readonly kernels = new Set<BackendKernel>();
  /** Batches submitted and not settled: the aperture must stay mapped until they are. */
  private readonly inFlight = new Set<Promise<unknown>>();
  /** Device time of this vGPU's kernels and transfers, for sizing the parts of its batches. */
  readonly timeModel: DeviceTimeModel;
  private closed = false;

  constructor(
    readonly device: ComputeDevice,
    /** The aperture memfd, imported whole (the device maps it itself). */
    aperture: { fd: number; size: number },
    /** Shares the device with other vGPUs; without one, batches go straight to the device. */
    private readonly share: SharedDevice | null = null,
    /** Whether this executor owns the device (and destroys it on close). */
    private readonly ownsDevice = true,
  ) {
    // Each vGPU imports its own aperture: a batch of one vGPU can only name its own memory.
    this.memory = device.importFd(aperture.fd, 0, aperture.size);
    this.timeModel = new DeviceTimeModel(parallelWorkgroups(device.info));
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
    const c = i.caps;
    return {
      ...base,
      maxBindings: Math.min(base.maxBindings, i.maxBindings),
      maxPushConstantBytes: Math.min(base.maxPushConstantBytes, i.maxPushConstantSize),
      maxWorkgroups: [
        Math.min(base.maxWorkgroups[0], i.maxWorkgroupCount[0]),
        Math.min(base.maxWorkgroups[1], i.maxWorkgroupCount[1]),
        Math.min(base.maxWorkgroups[2], i.maxWorkgroupCount[2]),
      ],
      bindingAlignment: Math.max(base.bindingAlignment, i.minBindingAlignment, c.minStorageBufferOffsetAlignment),
      maxBindingBytes: Math.min(base.maxBindingBytes, i.maxBindingSize, c.maxStorageBufferRange),
      uniformAlignment: Math.max(base.uniformAlignment, c.minUniformBufferOffsetAlignment),
      maxUniformBytes: Math.min(base.maxUniformBytes, c.maxUniformBufferRange),
    };
  }

  /** The capability record's device part: the host device's, within what the validator allows. */
  caps(limits: CommandLimits): Omit<CapsRecord, 'maxMemoryAllocationSize'> {
    const i = this.device.info;
    const c = i.caps;
    const f = c.features;
    const has: Record<keyof typeof CAPS_FEATURES, boolean> = {
      SHADER_INT64: f.shaderInt64,
      SHADER_FLOAT64: f.shaderFloat64,
      SHADER_INT16: f.shaderInt16,
      SHADER_INT8: f.shaderInt8,
      SHADER_FLOAT16: f.shaderFloat16,
      STORAGE_BUFFER_16BIT: f.storageBuffer16BitAccess,
      UNIFORM_16BIT: f.uniformAndStorageBuffer16BitAccess,
      PUSH_CONSTANT_16BIT: f.storagePushConstant16,
      STORAGE_BUFFER_8BIT: f.storageBuffer8BitAccess,
      UNIFORM_8BIT: f.uniformAndStorageBuffer8BitAccess,
      PUSH_CONSTANT_8BIT: f.storagePushConstant8,
      ROBUST_BUFFER_ACCESS_2: i.robustness === 'robustBufferAccess2',
      VARIABLE_POINTERS: f.variablePointersStorageBuffer,
    };
    let features = 0;
    for (const [name, def] of Object.entries(CAPS_FEATURES)) if (has[name as keyof typeof CAPS_FEATURES]) features |= 1 << def.bit;
    const [major = 0, minor = 0, patch = 0] = i.apiVersion.split('.').map(Number);
    const uuid = new Uint8Array(16);
    for (let b = 0; b < 16; b++) uuid[b] = Number.parseInt(c.pipelineCacheUuid.slice(2 * b, 2 * b + 2), 16) || 0;
    const storage = Math.min(c.maxPerStageDescriptorStorageBuffers, limits.maxDescriptors);
    const uniform = Math.min(c.maxPerStageDescriptorUniformBuffers, limits.maxDescriptors);
    return {
      hostApiVersion: ((major << 22) | (minor << 12) | patch) >>> 0,
      hostDriverVersion: c.driverVersion >>> 0,
      hostVendorId: i.vendorId,
      hostDeviceId: i.deviceId,
      hostDeviceType: i.deviceType,
      features: features >>> 0,
      hostDeviceName: textField(i.name, 256),
      hostDriverName: textField(i.driverName, 64),
      hostDriverInfo: textField(i.driverInfo, 128),
      pipelineCacheUuid: uuid,
      maxComputeSharedMemorySize: i.maxComputeSharedMemorySize,
      maxComputeWorkGroupInvocations: i.maxComputeWorkGroupInvocations,
      maxComputeWorkGroupCountX: limits.maxWorkgroups[0],
      maxComputeWorkGroupCountY: limits.maxWorkgroups[1],
      maxComputeWorkGroupCountZ: limits.maxWorkgroups[2],
      maxComputeWorkGroupSizeX: i.maxComputeWorkGroupSize[0],
      maxComputeWorkGroupSizeY: i.maxComputeWorkGroupSize[1],
      maxComputeWorkGroupSizeZ: i.maxComputeWorkGroupSize[2],
      maxPushConstantsSize: limits.maxPushConstantBytes,
      maxBoundDescriptorSets: c.maxBoundDescriptorSets,
      maxPerStageDescriptorStorageBuffers: storage,
      maxPerStageDescriptorUniformBuffers: uniform,
      maxDescriptorSetStorageBuffers: Math.min(c.maxDescriptorSetStorageBuffers, storage),
      maxDescriptorSetUniformBuffers: Math.min(c.maxDescriptorSetUniformBuffers, uniform),
      maxStorageBufferRange: Math.min(limits.maxBindingBytes, 0xffff_ffff),
      maxUniformBufferRange: limits.maxUniformBytes,
      minStorageBufferOffsetAlignment: limits.bindingAlignment,
      minUniformBufferOffsetAlignment: limits.uniformAlignment,
      maxDispatchDescriptors: limits.maxDescriptors,
      // TIMESTAMP writes nanoseconds whatever the host device's tick.
      timestampPeriodBits: float32Bits(1),
      timestampValidBits: i.timestamps ? 64 : 0,
      subgroupSize: c.subgroupSize,
      subgroupSupportedOperations: c.subgroupSupportedOperations >>> 0,
      reserved: new Uint8Array(64),
    };
  }

  /** Batches run in parts the scheduler may preempt between (and kernels are built for it). */
  get preemptive(): boolean {
    return this.share?.scheduler.preemptive === true;
  }

  run(commands: readonly ExecutorCommand[], meta: BatchMeta, signal: AbortSignal): Promise<{ deviceNs: number }> {
    // The validator's commands go to the device as they are: ranges of this vGPU's aperture
    // (the one memory this executor imported), kernels the device's own objects.
    const batch = commands as readonly Command[];
    if (this.share === null) return this.submit(batch).then((deviceNs) => ({ deviceNs }));
    const { scheduler, vgpu } = this.share;
    if (!scheduler.preemptive) {
      return scheduler.submit(vgpu, meta.priority, ({ started }) => this.submit(batch, started).then((deviceNs) => ({ deviceNs })), {
        signal,
        awaitStart: true,
      });
    }
    const parts = new BatchParts(batch, this.timeModel, (part, started) => this.submit(part, started));
    return scheduler.submit(vgpu, meta.priority, parts, { signal, awaitStart: true });
  }

  /** One device submission; resolves with its device time, ns. */
  private async submit(commands: readonly Command[], started?: () => void): Promise<number> {
    const onDevice = this.device.submit(this.memory, commands, started !== undefined ? { started } : {});
    // Track the device's own completion: the aperture must stay mapped until the device is
    // done writing into it.
    const settled = onDevice.then(
      () => undefined,
      () => undefined,
    );
    this.inFlight.add(settled);
    void settled.then(() => this.inFlight.delete(settled));
    const status = await onDevice;
    return status.deviceNs ?? Number(status.completeNs - status.submitNs);
  }

  async buildKernel(request: KernelBuildRequest): Promise<BuiltKernel> {
    const options: KernelOptions = {
      pushConstantSize: request.pushConstantBytes,
      // Split dispatches run with a base: every kernel may be given one. The guest's own
      // DISPATCH2 still needs its kernel made with DISPATCH_BASE (the validator checks).
      dispatchBase: request.dispatchBase || this.preemptive,
      ...(request.bindings !== undefined ? { bindings: request.bindings } : {}),
      ...(request.entryPoint !== undefined ? { entryPoint: request.entryPoint } : {}),
      ...(request.specialization !== undefined ? { specialization: request.specialization } : {}),
    };
    let kernel: BackendKernel;
    try {
      kernel = await this.device.buildKernel(request.spirv, options, this.share?.vgpu);
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
      throw new MailboxFailure('UNSUPPORTED', 'the executor was closed');
    }
    this.kernels.add(kernel);
    return { handle: kernel, layout: kernel.layout };
  }

  destroyKernel(handle: unknown): void {
    const kernel = handle as BackendKernel;
    if (!this.kernels.delete(kernel)) return;
    kernel.destroy();
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

/**
 * Workgroups the device runs at once, as far as cutting dispatches into ranges is concerned:
 * lavapipe (a CPU device) runs one per thread, a thread per CPU (LP_NUM_THREADS if set, as
 * Mesa reads it); a GPU runs far more than any range leaves over, so there 1.
 */
function parallelWorkgroups(info: DeviceInfo): number {
  if (info.deviceType !== DeviceType.Cpu) return 1;
  const threads = Number(process.env.LP_NUM_THREADS);
  return Number.isInteger(threads) && threads > 0 ? threads : os.availableParallelism();
}
