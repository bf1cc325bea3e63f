/**
 * `mdgpu serve`: run the daemon (one or many vGPUs) until SIGINT/SIGTERM, with its control
 * socket for `mdgpu status` and an optional Prometheus listener. Under systemd it takes its
 * sockets from socket activation and reports readiness (src/cli/systemd.ts,
 * contrib/systemd/, docs/deploying.md).
 */
import type { MdgpuDevice, MdgpuDeviceOptions } from '../vgpu/device.js';
import type { VfioUserServer } from '../server/server.js';
import { info, warn } from '../log.js';
import { loadNative } from '../native/binding.js';
import type { ApertureExecutor } from '../exec/aperture-executor.js';
import type { ComputeOptions } from '../exec/open-compute.js';
import { startDaemon, type DaemonOptions, type RunningDaemon, type VgpuConfig } from './daemon.js';
import { startControl, type ControlOptions } from './control.js';
import { CONTROL_FD_NAME, sdNotify, type ListenFd } from './systemd.js';
import { ConfigError } from './vgpu-config.js';
import { formatSize } from './sizes.js';

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

/** The vGPU a socket unit's fd belongs to: its `FileDescriptorName=`, else a template instance (`mdgpu-vgpu@vm1.socket`). */
function fdVgpuName(fd: ListenFd): string {
  return /@([^@]+)\.socket$/.exec(fd.name)?.[1] ?? fd.name;
}

/**
 * Give the configured vGPUs the sockets systemd passed: each fd goes to the vGPU of its name (or,
 * unnamed, of its path); an fd named after no configured vGPU makes a vGPU of that name with the
 * `defaults`; the fd named `control` is the control socket. Every vGPU must end up with a socket.
 */
export function bindActivatedSockets(
  vgpus: VgpuConfig[],
  fds: ListenFd[],
  defaults: Omit<VgpuConfig, 'name' | 'socket'>,
): { vgpus: VgpuConfig[]; controlFd: number | undefined } {
  const out = vgpus.map((v) => ({ ...v }));
  let controlFd: number | undefined;
  const errors: string[] = [];
  for (const fd of fds) {
    if (fd.name === CONTROL_FD_NAME) {
      controlFd = fd.fd;
      continue;
    }
    const name = fdVgpuName(fd);
    const vgpu = out.find((v) => v.name === name) ?? out.find((v) => v.socket !== '' && v.socket === fd.path);
    if (vgpu !== undefined) {
      if (vgpu.listenFd !== undefined) errors.push(`vGPU ${vgpu.name}: systemd passed two sockets for it (fds ${vgpu.listenFd} and ${fd.fd})`);
      vgpu.listenFd = fd.fd;
      vgpu.socket = fd.path !== '' ? fd.path : `fd ${fd.fd}`;
    } else if (/^[A-Za-z0-9_.-]{1,32}$/.test(name)) {
      out.push({ name, socket: fd.path !== '' ? fd.path : `fd ${fd.fd}`, ...defaults, listenFd: fd.fd });
    } else {
      errors.push(`socket-activated fd ${fd.fd} is named "${fd.name}": name it after its vGPU (FileDescriptorName=vm1: 1 to 32 of A-Z a-z 0-9 _ . -)`);
    }
  }
  for (const v of out) {
    if (v.socket === '') errors.push(`vGPU ${v.name}: socket: required (socket= in the config, or a socket unit with FileDescriptorName=${v.name})`);
  }
  if (errors.length > 0) throw new ConfigError(errors);
  return { vgpus: out, controlFd };
}

/** One line per vGPU: what `--check-config` and the start log say. */
export function describeVgpus(vgpus: VgpuConfig[]): string[] {
  return vgpus.map(
    (v) =>
      `${v.name}: socket ${v.socket === '' ? `from systemd (FileDescriptorName=${v.name})` : v.socket}, aperture ${formatSize(v.apertureSize)}` +
      `, quota ${v.quota !== undefined ? formatSize(v.quota) : 'the whole aperture'}, weight ${v.weight ?? 1}` +
      (v.maxQueues !== undefined ? `, max-queues ${v.maxQueues}` : '') +
      (v.maxKernels !== undefined ? `, max-kernels ${v.maxKernels}` : '') +
      (v.maxInFlight !== undefined ? `, max-inflight ${v.maxInFlight}` : '') +
      (v.maxContexts !== undefined ? `, max-contexts ${v.maxContexts}` : '') +
      (v.maxBuffers !== undefined ? `, max-buffers ${v.maxBuffers}` : '') +
      (v.kernelCache !== undefined ? `, kernel-cache ${v.kernelCache}` : ''),
  );
}

/**
 * Serve until SIGINT/SIGTERM; resolves with the exit code. Tells systemd `READY=1` once every
 * vGPU and the control socket accept connections, and `STOPPING=1` when a signal arrives.
 */
export async function serveUntilSignal(options: DaemonOptions, control: ControlOptions): Promise<number> {
  const daemon = startDaemon(options);
  let ctl: Awaited<ReturnType<typeof startControl>>;
  try {
    ctl = await startControl(daemon, control);
  } catch (err) {
    await daemon.close();
    throw err;
  }
  const native = loadNative();
  const names = daemon.vgpus.map((v) => v.config.name);
  const notified = sdNotify(native, { READY: 1, STATUS: `serving ${names.length} vGPU${names.length === 1 ? '' : 's'}: ${names.join(', ')}` });
  if (notified !== null) warn(`sd_notify: ${notified.message}`);
  return new Promise((resolve) => {
    const stop = (signal: NodeJS.Signals) => {
      sdNotify(native, { STOPPING: 1, STATUS: `stopping on ${signal}` });
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
