/**
 * The kernel builder process (src/backend/kernel-builder.ts explains why it exists): opens the
 * host driver's device and, for each request, validates and compiles a kernel exactly as the
 * compute worker later will, then throws the result away. It runs under a data-size limit set
 * by its parent and is killed when a build runs past the time limit; it trusts nothing and keeps
 * nothing.
 */
import { BackendError } from './backend.js';
import { HostDevice } from './host-driver.js';
import type { FromBuilder, ToBuilder } from './kernel-builder-protocol.js';

const send = (m: FromBuilder) => process.send?.(m);
let device: HostDevice | null = null;

process.on('message', (m: ToBuilder) => {
  if (m.t === 'open') {
    try {
      device = HostDevice.open(m.device !== undefined ? { device: m.device } : {});
      send({ t: 'ready' });
    } catch (err) {
      send({ t: 'fatal', message: (err as Error).message });
      process.exitCode = 1;
      process.disconnect();
    }
    return;
  }
  const dev = device;
  if (dev === null) return;
  try {
    const kernel = dev.createKernel(m.spirv, m.options);
    const info = {
      layout: [...kernel.layout],
      localSize: [...kernel.localSize] as [number, number, number],
      pushConstantSize: kernel.pushConstantSize,
      dispatchBase: kernel.dispatchBase,
      splittable: kernel.splittable,
    };
    kernel.destroy();
    send({ t: 'built', id: m.id, info });
  } catch (err) {
    const e = err as Error;
    send({ t: 'refused', id: m.id, code: err instanceof BackendError ? err.code : 'EINVAL', message: e.message });
  }
});
// The daemon is gone: nothing to build for. SIGKILL, as a build may be stuck in the driver.
process.on('disconnect', () => process.kill(process.pid, 'SIGKILL'));
send({ t: 'listening' });
