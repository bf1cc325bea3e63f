/**
 * One mdgpu daemon, many vGPUs: each vGPU has its own socket, aperture memfd, contexts and
 * queues, and its own memory import on the one shared host compute device; a fair scheduler
 * shares the device's time among them by weight. A VM's QEMU connecting, resetting,
 * disconnecting or dying affects only its own vGPU.
 */
import { monitorEventLoopDelay, type IntervalHistogram } from 'node:perf_hooks';
import { loadNative } from '../native/binding.js';
import { nativeHostOps } from './host-ops.js';
import { VfioUserServer } from '../server/server.js';
import { MdgpuDevice, type MdgpuDeviceOptions } from '../vgpu/device.js';
import { FairScheduler, type SchedulerOptions } from '../sched/scheduler.js';
import type { ComputeDevice } from '../backend/backend.js';
import { info, setLogVgpus } from '../log.js';
import type { SocketFileOptions } from '../server/socket-file.js';
import { DaemonMetrics } from './metrics.js';
import { ApertureExecutor } from '../exec/aperture-executor.js';
import { openCompute, type ComputeOptions } from '../exec/open-compute.js';
import { DEFAULT_BUILD_TIME_LIMIT_MS } from '../backend/kernel-builder.js';

export interface VgpuConfig {
  name: string;
  socket: string;
  apertureSize: number;
  /** Bytes the VM may allocate (default: the whole allocatable aperture). */
  quota?: number;
  /** Share of device time relative to the other vGPUs (default 1). */
  weight?: number;
  msixVectors?: number;
  identity?: MdgpuDeviceOptions['identity'];
  maxContexts?: number;
  maxBuffers?: number;
  maxQueues?: number;
  maxKernels?: number;
  /** Kernels kept in the VM's kernel cache after their last user destroyed them (default 256; 0: no cache). */
  kernelCache?: number;
  /** Batches this vGPU may have queued or running on the device at once (default 64). */
  maxInFlight?: number;
  /** A listening socket to serve (from systemd) instead of creating one at `socket`. */
  listenFd?: number;
}

export interface DaemonOptions {
  vgpus: VgpuConfig[];
  /** Attach the host compute device so guest queues can run kernels. */
  compute?: ComputeOptions;
  scheduler?: Partial<SchedulerOptions>;
  /** Keep Prometheus metrics: latency histograms fed by every vGPU's events (see metrics.ts). */
  metrics?: boolean;
  /** Mode and group of the vGPU sockets the daemon creates (default 0600, its own group). */
  socketFile?: SocketFileOptions;
}

export interface RunningVgpu {
  config: VgpuConfig;
  device: MdgpuDevice;
  server: VfioUserServer;
  executor: ApertureExecutor | null;
}

export interface RunningDaemon {
  vgpus: RunningVgpu[];
  /** The daemon's event-loop delay: how long anything (a VM's trap, a queue) waited for the loop. */
  eventLoop: IntervalHistogram;
  scheduler: FairScheduler;
  compute: ComputeDevice | null;
  /** The metrics registry and histograms (null unless `metrics` was asked for). */
  metrics: DaemonMetrics | null;
  startedAt: number;
  /** Stop every vGPU and release everything (sockets, memfds, mappings, the compute device). */
  close(): Promise<void>;
}

export function startDaemon(options: DaemonOptions): RunningDaemon {
  const names = new Set<string>();
  const sockets = new Set<string>();
  for (const v of options.vgpus) {
    if (names.has(v.name)) throw new Error(`Two vGPUs are named ${v.name}`);
    if (sockets.has(v.socket)) throw new Error(`Two vGPUs share the socket ${v.socket}`);
    names.add(v.name);
    sockets.add(v.socket);
  }
  const native = loadNative();
  setLogVgpus(names);
  const metrics = options.metrics === true ? new DaemonMetrics() : null;
  const compute = options.compute !== undefined ? openCompute(options.compute) : null;
  // A batch past the time limit has its context lost; resetting the device stops it, so the
  // other vGPUs do not wait for a kernel that may never end.
  const scheduler = new FairScheduler({
    ...options.scheduler,
    onOverrun: (vgpu) => compute?.reset?.(`a batch of ${vgpu} ran past the time limit`),
    ...(metrics !== null ? { onBatch: (vgpu: string, b: { waitNs: number; deviceNs: number }) => metrics.vgpu(vgpu).batch(b.waitNs, b.deviceNs) } : {}),
  });
  const vgpus: RunningVgpu[] = [];
  const closeAll = async () => {
    for (const v of vgpus) v.server.close();
    for (const v of vgpus) v.device.queues.reset();
    // The device may still be writing into apertures: finish before unmapping them.
    await Promise.all(vgpus.map((v) => v.executor?.close()));
    for (const v of vgpus) v.device.close();
    await compute?.destroy();
  };
  try {
    for (const config of options.vgpus) {
      const device = new MdgpuDevice({
        name: config.name,
        apertureSize: config.apertureSize,
        ...(config.quota !== undefined ? { quota: config.quota } : {}),
        ...(config.msixVectors !== undefined ? { msixVectors: config.msixVectors } : {}),
        ...(config.identity !== undefined ? { identity: config.identity } : {}),
        ...(config.maxContexts !== undefined ? { maxContexts: config.maxContexts } : {}),
        ...(config.maxBuffers !== undefined ? { maxBuffers: config.maxBuffers } : {}),
        host: nativeHostOps(native),
        ...(options.compute !== undefined ? { kernelBuildMs: options.compute.kernelBuild?.timeLimitMs ?? DEFAULT_BUILD_TIME_LIMIT_MS } : {}),
      });
      if (config.maxQueues !== undefined) device.queues.maxQueues = config.maxQueues;
      if (config.maxKernels !== undefined) device.queues.maxKernels = config.maxKernels;
      if (config.kernelCache !== undefined) device.queues.kernels.cache.maxEntries = config.kernelCache;
      let executor: ApertureExecutor | null = null;
      const observe = metrics?.vgpu(config.name);
      if (observe !== undefined) device.queues.onSubmissionDone = (_q, _error, _ns, latencyMs) => observe.submission(latencyMs);
      const server = new VfioUserServer({
        socketPath: config.socket,
        device: device.pci,
        native,
        ...options.socketFile,
        ...(config.listenFd !== undefined ? { listenFd: config.listenFd } : {}),
        ...(observe !== undefined ? { onRegionAccess: observe.access } : {}),
      });
      vgpus.push({ config, device, server, executor });
      if (compute !== null) {
        scheduler.register(config.name, config.weight ?? 1, config.maxInFlight ?? 64);
        executor = new ApertureExecutor(compute, { fd: device.apertureFd, size: device.aperture.byteLength }, { scheduler, vgpu: config.name }, false);
        vgpus[vgpus.length - 1]!.executor = executor;
        device.attachExecutor(executor);
        device.queues.limits = executor.limits(device.queues.limits);
      }
      server.listen();
    }
  } catch (err) {
    void closeAll();
    throw err;
  }
  info(`mdgpu: ${vgpus.length} vGPU${vgpus.length === 1 ? '' : 's'}${compute ? ` sharing ${compute.info.name}` : ', no compute device'}`);
  const eventLoop = monitorEventLoopDelay({ resolution: 10 });
  eventLoop.enable();
  let closing: Promise<void> | null = null;
  return {
    vgpus,
    eventLoop,
    scheduler,
    compute,
    metrics,
    startedAt: Date.now(),
    close() {
      eventLoop.disable();
      closing ??= closeAll();
      return closing;
    },
  };
}
