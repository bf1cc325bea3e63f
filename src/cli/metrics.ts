/**
 * The daemon's Prometheus metrics (prom-client): one registry per daemon, Node's default process
 * metrics, and per vGPU the latency distributions its events feed while it works. The gauges and
 * counters that mirror `mdgpu status` are registered on the same registry by control.ts.
 *
 * | histogram | from | to |
 * | --- | --- | --- |
 * | `mdgpu_vgpu_submission_latency_seconds` | the queue engine took the submission off the ring | its fence (or error) was written |
 * | `mdgpu_vgpu_device_wait_seconds` | a batch was queued with the scheduler | its work started on the device |
 * | `mdgpu_vgpu_batch_device_seconds` | a batch's device time (the device's timestamps) | |
 * | `mdgpu_vgpu_trapped_access_seconds` | a trapped REGION_READ/WRITE was handled | its reply was sent |
 */
import { collectDefaultMetrics, Histogram, Registry } from 'prom-client';

/** Seconds, 50 µs to 10 s: submissions, waits and batches on a CPU device or a GPU. */
export const WORK_BUCKETS = [5e-5, 1e-4, 2.5e-4, 5e-4, 1e-3, 2.5e-3, 5e-3, 1e-2, 2.5e-2, 5e-2, 0.1, 0.25, 0.5, 1, 2.5, 10];
/** Seconds, 2 µs to 50 ms: one trapped register access is served in microseconds. */
export const ACCESS_BUCKETS = [2e-6, 5e-6, 1e-5, 2.5e-5, 5e-5, 1e-4, 2.5e-4, 5e-4, 1e-3, 5e-3, 5e-2];

/** What one vGPU's hooks call; each records into histograms already bound to its label. */
export interface VgpuObservers {
  /** A submission finished `ms` after it was taken off the ring. */
  submission(ms: number): void;
  /** A batch settled: queued → started `waitNs`, `deviceNs` on the device. */
  batch(waitNs: number, deviceNs: number): void;
  /** A trapped access was served in `ms`. */
  access(ms: number): void;
}

export class DaemonMetrics {
  readonly registry = new Registry();
  readonly submissionLatency: Histogram<'vgpu'>;
  readonly deviceWait: Histogram<'vgpu'>;
  readonly batchDevice: Histogram<'vgpu'>;
  readonly trappedAccess: Histogram<'vgpu'>;
  private readonly observers = new Map<string, VgpuObservers>();

  constructor() {
    // process_cpu_seconds_total, process_resident_memory_bytes, nodejs_eventloop_lag_*, …
    collectDefaultMetrics({ register: this.registry });
    const histogram = (name: string, help: string, buckets: number[]) =>
      new Histogram({ name, help, labelNames: ['vgpu'] as const, buckets, registers: [this.registry] });
    this.submissionLatency = histogram(
      'mdgpu_vgpu_submission_latency_seconds',
      'From a submission taken off its ring to its fence written (validation, queueing, device, fence)',
      WORK_BUCKETS,
    );
    this.deviceWait = histogram(
      'mdgpu_vgpu_device_wait_seconds',
      "From a batch queued for the shared device to its work started on it (other VMs' turns, kernel builds)",
      WORK_BUCKETS,
    );
    this.batchDevice = histogram('mdgpu_vgpu_batch_device_seconds', 'Device time of one batch', WORK_BUCKETS);
    this.trappedAccess = histogram(
      'mdgpu_vgpu_trapped_access_seconds',
      'Time to serve one trapped register or BAR access (a VM exit), message handled to reply sent',
      ACCESS_BUCKETS,
    );
  }

  /** The hooks of vGPU `name`, its series created at once (so they read 0 before its first event). */
  vgpu(name: string): VgpuObservers {
    let o = this.observers.get(name);
    if (o === undefined) {
      const submission = this.submissionLatency.labels({ vgpu: name });
      const wait = this.deviceWait.labels({ vgpu: name });
      const device = this.batchDevice.labels({ vgpu: name });
      const access = this.trappedAccess.labels({ vgpu: name });
      for (const h of [this.submissionLatency, this.deviceWait, this.batchDevice, this.trappedAccess]) h.zero({ vgpu: name });
      o = {
        submission: (ms) => submission.observe(ms / 1e3),
        batch: (waitNs, deviceNs) => {
          wait.observe(Math.max(0, waitNs) / 1e9);
          device.observe(Math.max(0, deviceNs) / 1e9);
        },
        access: (ms) => access.observe(ms / 1e3),
      };
      this.observers.set(name, o);
    }
    return o;
  }

  /** The exposition text (Prometheus text format 0.0.4). */
  text(): Promise<string> {
    return this.registry.metrics();
  }

  get contentType(): string {
    return this.registry.contentType;
  }
}
