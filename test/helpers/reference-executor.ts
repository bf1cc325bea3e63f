/**
 * A reference executor in TypeScript for queue-engine unit tests: COPY, FILL, UPDATE,
 * TIMESTAMP and BARRIER on the aperture, dispatches recorded. The real one is the
 * ApertureExecutor on the Vulkan host driver (test/backend, test/e2e); this one only lets the
 * engine's logic be tested in milliseconds. Its kernels are numbers; a kernel's layout is what the request asked for (a
 * 1.1 kernel's storage buffers), or `layout` when a test sets it.
 */
import type { KernelBinding } from '../../src/device-commands.js';
import { ContextLostError } from '../../src/execution-errors.js';
import { DEFAULT_COMMAND_LIMITS, type CommandLimits } from '../../src/vgpu/commands.js';
import type { BuiltKernel, KernelBuildRequest } from '../../src/vgpu/kernels.js';
import type { ExecutorCommand, BatchMeta, Executor } from '../../src/vgpu/queue-execution.js';

export class ReferenceExecutor implements Executor {
  readonly dispatches: { kernel: number; base: readonly number[]; groups: readonly number[]; descriptors: number }[] = [];
  /** The layout every 1.3 kernel built next declares (reflection stand-in). */
  layout: KernelBinding[] = [];
  /** The requests of every build. */
  readonly requests: KernelBuildRequest[] = [];
  kernels = 0;
  destroyed = 0;
  /** Hold every run until released (to test work in flight). */
  gate: Promise<void> | null = null;
  fail: string | null = null;

  constructor(private readonly aperture: Uint8Array) {}

  readonly metas: BatchMeta[] = [];
  /** Make the next run fail as a batch past the time limit would. */
  loseContext = false;

  /** Signals of the batches run (a withdrawn batch still queued would have been refused). */
  readonly signals: AbortSignal[] = [];
  /** Hold every kernel build until released (to test BUILDING). */
  buildGate: Promise<void> | null = null;

  async run(commands: readonly ExecutorCommand[], meta: BatchMeta, signal: AbortSignal): Promise<{ deviceNs: number }> {
    this.metas.push(meta);
    this.signals.push(signal);
    if (this.gate) await this.gate;
    if (this.fail) throw new Error(this.fail);
    if (this.loseContext) {
      this.loseContext = false;
      throw new ContextLostError('batch past the time limit', 'timeout');
    }
    const view = new DataView(this.aperture.buffer, this.aperture.byteOffset, this.aperture.byteLength);
    for (const c of commands) {
      switch (c.kind) {
        case 'copy':
          this.aperture.copyWithin(c.dst.offset, c.src.offset, c.src.offset + c.src.size);
          break;
        case 'fill':
          for (let i = 0; i < c.dst.size; i += 4) view.setUint32(c.dst.offset + i, c.value, true);
          break;
        case 'timestamp':
          view.setBigUint64(c.dst.offset, process.hrtime.bigint(), true);
          break;
        case 'update':
          this.aperture.set(c.data, c.dst.offset);
          break;
        case 'dispatch':
          this.dispatches.push({ kernel: c.kernel as number, base: c.base, groups: c.groups, descriptors: c.descriptors.length });
          break;
        case 'barrier':
          break;
      }
    }
    return { deviceNs: 1000 };
  }

  async buildKernel(request: KernelBuildRequest): Promise<BuiltKernel> {
    this.requests.push(request);
    if (this.buildGate) await this.buildGate;
    if (request.spirv.length < 5) throw new Error('too short');
    const layout =
      request.bindings !== undefined
        ? Array.from({ length: request.bindings }, (_, i): KernelBinding => ({ set: 0, binding: i, type: 'storage', count: 1 }))
        : this.layout;
    return { handle: ++this.kernels, layout };
  }

  caps(limits: CommandLimits = DEFAULT_COMMAND_LIMITS) {
    return referenceCaps(limits);
  }

  /** The handles destroyed, in order (when the caller passes them). */
  readonly destroyedHandles: unknown[] = [];

  destroyKernel(handle?: unknown): void {
    this.destroyed++;
    if (handle !== undefined) this.destroyedHandles.push(handle);
  }
}

/** A plausible capability record for a device model without the host driver. */
export function referenceCaps(limits: CommandLimits): ReturnType<Executor['caps']> {
  return {
    hostApiVersion: (1 << 22) | (3 << 12),
    hostDriverVersion: 0,
    hostVendorId: 0x10005,
    hostDeviceId: 0,
    hostDeviceType: 4,
    features: 0,
    hostDeviceName: new Uint8Array(256),
    hostDriverName: new Uint8Array(64),
    hostDriverInfo: new Uint8Array(128),
    pipelineCacheUuid: new Uint8Array(16),
    maxComputeSharedMemorySize: 32768,
    maxComputeWorkGroupInvocations: 1024,
    maxComputeWorkGroupCountX: limits.maxWorkgroups[0],
    maxComputeWorkGroupCountY: limits.maxWorkgroups[1],
    maxComputeWorkGroupCountZ: limits.maxWorkgroups[2],
    maxComputeWorkGroupSizeX: 1024,
    maxComputeWorkGroupSizeY: 1024,
    maxComputeWorkGroupSizeZ: 64,
    maxPushConstantsSize: limits.maxPushConstantBytes,
    maxBoundDescriptorSets: 8,
    maxPerStageDescriptorStorageBuffers: limits.maxDescriptors,
    maxPerStageDescriptorUniformBuffers: limits.maxDescriptors,
    maxDescriptorSetStorageBuffers: limits.maxDescriptors,
    maxDescriptorSetUniformBuffers: limits.maxDescriptors,
    maxStorageBufferRange: Math.min(limits.maxBindingBytes, 0xffff_ffff),
    maxUniformBufferRange: limits.maxUniformBytes,
    minStorageBufferOffsetAlignment: limits.bindingAlignment,
    minUniformBufferOffsetAlignment: limits.uniformAlignment,
    maxDispatchDescriptors: limits.maxDescriptors,
    timestampPeriodBits: 0x3f80_0000,
    timestampValidBits: 64,
    subgroupSize: 8,
    subgroupSupportedOperations: 0,
    reserved: new Uint8Array(64),
  };
}
