/**
 * `mdgpu serve`: run the daemon (one or many vGPUs) until SIGINT/SIGTERM, with its control
 * socket for `mdgpu status` and an optional Prometheus listener.
 */
import type { MdgpuDevice, MdgpuDeviceOptions } from '../vgpu/device.js';
import type { VfioUserServer } from '../server/server.js';
import { info } from '../log.js';
import type { ApertureExecutor } from '../exec/aperture-executor.js';
import type { ComputeOptions } from '../exec/open-compute.js';
import { startDaemon, type DaemonOptions, type RunningDaemon } from './daemon.js';
import { startControl, type ControlOptions } from './control.js';

export interface ServeOptions {
  socket: string;
  apertureSize: number;
  /** Bytes the VM may allocate (default: the whole allocatable aperture). */
  quota?: number;
  msixVectors?: number;
  identity?: MdgpuDeviceOptions['identity'];
  name?: string;
  /** Attach the host compute device (Vulkan) so queues can run kernels. */
  compute?: ComputeOptions;
}

export interface RunningServer {
  device: MdgpuDevice;
  server: VfioUserServer;
  executor: ApertureExecutor | null;
  daemon: RunningDaemon;
  /** Stop serving and release everything (socket file, memfd, mappings, the compute device). */
  close(): Promise<void>;
}

/** Serve one vGPU; returns once its socket is listening (QEMU may connect from then on). */
export function startServer(options: ServeOptions): RunningServer {
  const daemon = startDaemon({
    vgpus: [
      {
        name: options.name ?? 'vgpu0',
        socket: options.socket,
        apertureSize: options.apertureSize,
        ...(options.quota !== undefined ? { quota: options.quota } : {}),
        ...(options.msixVectors !== undefined ? { msixVectors: options.msixVectors } : {}),
        ...(options.identity !== undefined ? { identity: options.identity } : {}),
      },
    ],
    ...(options.compute !== undefined ? { compute: options.compute } : {}),
  });
  const vgpu = daemon.vgpus[0]!;
  return { device: vgpu.device, server: vgpu.server, executor: vgpu.executor, daemon, close: () => daemon.close() };
}

/** Serve until a signal arrives; resolves with the exit code. */
export async function serveUntilSignal(options: DaemonOptions, control: ControlOptions): Promise<number> {
  const daemon = startDaemon(options);
  const ctl = await startControl(daemon, control);
  return new Promise((resolve) => {
    const stop = (signal: NodeJS.Signals) => {
      const exits = daemon.vgpus.reduce((n, v) => n + v.device.pci.trappedAccesses, 0);
      info(`${signal}: shutting down (trapped accesses served: ${exits})`);
      process.off('SIGINT', stop);
      process.off('SIGTERM', stop);
      void ctl
        .close()
        .then(() => daemon.close())
        .then(() => resolve(0));
    };
    process.on('SIGINT', stop);
    process.on('SIGTERM', stop);
  });
}
