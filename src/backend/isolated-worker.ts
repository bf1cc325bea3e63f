/**
 * The compute worker: a child process of the daemon that owns the host driver's device and
 * runs every batch (src/backend/isolated.ts explains why). It does what the messages say and
 * nothing else; the daemon has checked the arguments already, with its own copy of the driver.
 */
import * as fs from 'node:fs';
import { BackendError, type BackendKernel, type BackendMemory, type Command } from './backend.js';
import { HostDevice } from './host-driver.js';
import type { FromWorker, ToWorker, WireCommand, WireError } from './isolated-protocol.js';

const send = (m: FromWorker) => process.send?.(m);

function wireError(err: unknown): WireError {
  if (err instanceof BackendError) return { code: err.code, errno: err.errno, call: err.call, message: err.message };
  return { code: 'EINVAL', errno: -22, call: 'worker', message: (err as Error)?.message ?? String(err) };
}

let device: HostDevice | null = null;
/** Exiting on the daemon's word (or after a failed open), not because the daemon vanished. */
let leaving = false;
const memories = new Map<number, BackendMemory>();
const kernels = new Map<number, BackendKernel>();

/** Ids back to objects; an unknown id is a stale handle, as the library would say (ENOENT). */
function commandOf(c: WireCommand, i: number): Command {
  const mem = (id: number) => {
    const m = memories.get(id);
    if (m === undefined) throw new BackendError('ENOENT', -2, 'mdgpu_host_submit', `command ${i}: no memory ${id} in the worker`);
    return m;
  };
  switch (c.op) {
    case 'copy':
      return { op: 'copy', src: mem(c.src), srcOffset: c.srcOffset, dst: mem(c.dst), dstOffset: c.dstOffset, size: c.size };
    case 'fill':
      return { op: 'fill', mem: mem(c.mem), offset: c.offset, size: c.size, value: c.value };
    case 'dispatch': {
      const kernel = kernels.get(c.kernel);
      if (kernel === undefined) throw new BackendError('ENOENT', -2, 'mdgpu_host_submit', `command ${i}: no kernel ${c.kernel} in the worker`);
      return {
        op: 'dispatch',
        kernel,
        groups: c.groups,
        bindings: c.bindings.map((b) => ({ mem: mem(b.mem), offset: b.offset, size: b.size })),
        ...(c.push ? { push: c.push } : {}),
      };
    }
    case 'timestamp':
      return { op: 'timestamp', mem: mem(c.mem), offset: c.offset };
    case 'barrier':
      return { op: 'barrier' };
  }
}

function handle(m: ToWorker): void {
  if (m.t === 'open') {
    try {
      device = HostDevice.open({ ...(m.device !== undefined ? { device: m.device } : {}), ...(m.cpuTimestamps ? { cpuTimestamps: true } : {}) });
      send({ t: 'ready', info: device.info });
    } catch (err) {
      send({ t: 'fatal', error: wireError(err) });
      leaving = true;
      process.exitCode = 1;
      process.disconnect();
    }
    return;
  }
  if (m.t === 'exit') {
    // An orderly end: every batch has settled (the daemon waited), so the driver's threads
    // are idle and a normal exit is safe.
    leaving = true;
    void (async () => {
      await device?.destroy();
      process.exit(0);
    })();
    return;
  }
  const dev = device;
  if (dev === null) return;
  switch (m.t) {
    case 'import': {
      let fd = -1;
      try {
        fd = fs.openSync(m.path, 'r+');
        memories.set(m.id, dev.importFd(fd, m.offset, m.size, { staged: m.staged }));
      } catch (err) {
        send({ t: 'problem', message: `memory ${m.id}: ${(err as Error).message}` });
      } finally {
        if (fd >= 0) fs.closeSync(fd);
      }
      return;
    }
    case 'kernel':
      try {
        kernels.set(m.id, dev.createKernel(m.spirv, { bindings: m.bindings, pushConstantSize: m.pushConstantSize }));
      } catch (err) {
        send({ t: 'problem', message: `kernel ${m.id}: ${(err as Error).message}` });
      }
      return;
    case 'destroyMemory':
      memories.get(m.id)?.destroy();
      memories.delete(m.id);
      return;
    case 'destroyKernel':
      kernels.get(m.id)?.destroy();
      kernels.delete(m.id);
      return;
    case 'submit': {
      let commands: Command[];
      try {
        commands = m.commands.map(commandOf);
      } catch (err) {
        send({ t: 'failed', req: m.req, error: wireError(err) });
        return;
      }
      dev.submit(commands).then(
        (status) => send({ t: 'done', req: m.req, status }),
        (err: unknown) => send({ t: 'failed', req: m.req, error: wireError(err) }),
      );
      return;
    }
  }
}

process.on('message', (m: ToWorker) => handle(m));
send({ t: 'listening' });
// The daemon is gone (it exited, crashed or was killed): nobody needs the device any more, and a
// batch that never ends must not keep this process alive. SIGKILL, because a plain exit would
// wait on the driver's threads, which may be the ones stuck in that batch.
process.on('disconnect', () => {
  if (!leaving) process.kill(process.pid, 'SIGKILL');
});
