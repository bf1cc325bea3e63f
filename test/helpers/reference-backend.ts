/**
 * A reference execution backend in TypeScript for queue-engine unit tests: COPY, FILL, TIMESTAMP
 * and BARRIER on the aperture, dispatches recorded. The real backend is the Vulkan host driver
 * (test/backend, test/e2e); this one only lets the engine's logic be tested in milliseconds.
 */
import { ContextLostError } from '../../src/execution-errors.js';
import type { BackendCommand, BatchMeta, ExecutionBackend } from '../../src/vgpu/queues.js';

export class ReferenceBackend implements ExecutionBackend {
  readonly dispatches: { kernel: number; groups: number[] }[] = [];
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

  async run(commands: BackendCommand[], meta: BatchMeta, signal: AbortSignal): Promise<{ deviceNs: number }> {
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
        case 'dispatch':
          this.dispatches.push({ kernel: c.kernel, groups: c.groups });
          break;
        case 'barrier':
          break;
      }
    }
    return { deviceNs: 1000 };
  }

  async buildKernel(spirv: Uint32Array): Promise<number> {
    if (this.buildGate) await this.buildGate;
    if (spirv.length < 5) throw new Error('too short');
    return ++this.kernels;
  }

  destroyKernel(): void {
    this.destroyed++;
  }
}
