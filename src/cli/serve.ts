/**
 * `mdgpu serve`: run the vfio-user server for one vGPU until SIGINT/SIGTERM.
 */
import { loadNative } from '../native/binding.js';
import { nativeHostOps } from '../native/host-ops.js';
import { VfioUserServer } from '../server/server.js';
import { MdgpuDevice, type MdgpuDeviceOptions } from '../vgpu/device.js';
import { info } from '../log.js';

export interface ServeOptions {
  socket: string;
  apertureSize: number;
  /** Bytes the VM may allocate (default: the whole allocatable aperture). */
  quota?: number;
  msixVectors?: number;
  identity?: MdgpuDeviceOptions['identity'];
  name?: string;
}

export interface RunningServer {
  device: MdgpuDevice;
  server: VfioUserServer;
  /** Stop serving and release everything (socket file, memfd, mappings). */
  close(): void;
}

/** Start serving one vGPU; returns once the socket is listening (QEMU may connect from then on). */
export function startServer(options: ServeOptions): RunningServer {
  const native = loadNative();
  const device = new MdgpuDevice({
    name: options.name ?? 'vgpu0',
    apertureSize: options.apertureSize,
    ...(options.quota !== undefined ? { quota: options.quota } : {}),
    ...(options.msixVectors !== undefined ? { msixVectors: options.msixVectors } : {}),
    ...(options.identity !== undefined ? { identity: options.identity } : {}),
    host: nativeHostOps(native),
  });
  const server = new VfioUserServer({ socketPath: options.socket, device: device.pci, native });
  try {
    server.listen();
  } catch (err) {
    device.close();
    throw err;
  }
  let closed = false;
  return {
    device,
    server,
    close() {
      if (closed) return;
      closed = true;
      server.close();
      device.close();
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
      running.close();
      resolve(0);
    };
    process.on('SIGINT', stop);
    process.on('SIGTERM', stop);
  });
}
