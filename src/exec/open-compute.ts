/**
 * Opening the shared compute device the daemon's vGPUs run on: the host driver (Vulkan;
 * lavapipe when there is no GPU) in a worker process that can be reset, with kernel builds in a
 * builder process under a time and a memory limit (src/backend/isolated.ts).
 */
import type { ComputeDevice } from '../backend/backend.js';
import { IsolatedDevice } from '../backend/isolated.js';
import type { KernelBuilderOptions } from '../backend/kernel-builder.js';
import { info } from '../log.js';

export interface ComputeOptions {
  /** Device selector: index or name substring (default: a GPU if any, else lavapipe). */
  device?: string;
  /** Limits of one kernel build (time, memory) and builds waiting per vGPU. */
  kernelBuild?: Omit<KernelBuilderOptions, 'device'>;
}

export function openCompute(options: ComputeOptions): ComputeDevice {
  const device = IsolatedDevice.open({
    ...(options.device !== undefined ? { device: options.device } : {}),
    ...(options.kernelBuild !== undefined ? { kernelBuild: options.kernelBuild } : {}),
  });
  const i = device.info;
  info(`compute: ${i.name} (${i.driverInfo}, Vulkan ${i.apiVersion})`);
  return device;
}
