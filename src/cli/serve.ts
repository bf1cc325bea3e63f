/**
 * `mdgpu serve`: run the vfio-user server for one vGPU until SIGINT/SIGTERM.
 */
import { loadNative } from '../native/binding.js';
import { nativeHostOps } from '../native/host-ops.js';
import { VfioUserServer } from '../server/server.js';
import { MdgpuDevice, type MdgpuDeviceOptions } from '../vgpu/device.js';
import { info } from '../log.js';
import { ApertureExecutor, openCompute, type ComputeOptions } from './compute.js';

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
  /** Stop serving and release everything (socket file, memfd, mappings, the compute device). */
  close(): Promise<void>;
}

/** Start serving one vGPU; returns once the socket is listening (QEMU may connect from then on). */
export function startServer(options: ServeOptions): RunningServer {
  const native = loadNative();
  let executor: ApertureExecutor | null = null;
  const device = new MdgpuDevice({
    name: options.name ?? 'vgpu0',
    apertureSize: options.apertureSize,
    ...(options.quota !== undefined ? { quota: options.quota } : {}),
    ...(options.msixVectors !== undefined ? { msixVectors: options.msixVectors } : {}),
    ...(options.identity !== undefined ? { identity: options.identity } : {}),
    host: nativeHostOps(native),
  });
  if (options.compute !== undefined) {
    try {
      // The executor imports the device's aperture, so it is attached after construction.
      executor = new ApertureExecutor(openCompute(options.compute), device.aperture);
      device.attachBackend(executor);
      device.queues.limits = executor.limits(device.queues.limits);
    } catch (err) {
      device.close();
      throw err;
    }
  }
  const server = new VfioUserServer({ socketPath: options.socket, device: device.pci, native });
  try {
    server.listen();
  } catch (err) {
    device.close();
    void executor?.close();
    throw err;
  }
  let closed: Promise<void> | null = null;
  return {
    device,
    server,
    executor,
    close() {
      closed ??= (async () => {
        server.close();
        device.queues.reset();
        // The compute device may still be writing into the aperture: finish before unmapping.
        await executor?.close();
        device.close();
      })();
      return closed;
    },
  };
}

/** Serve until a signal arrives; resolves with the exit code. */
export function serveUntilSignal(options: ServeOptions): Promise<number> {
  const running = startServer(options);
  return new Promise((resolve) => {
    const stop = (signal: NodeJS.Signals) => {
      info(`${signal}: shutting down (trapped accesses served: ${running.device.pci.trappedAccesses})`);
      process.off('SIGINT', stop);
      process.off('SIGTERM', stop);
      void running.close().then(() => resolve(0));
    };
    process.on('SIGINT', stop);
    process.on('SIGTERM', stop);
  });
}
