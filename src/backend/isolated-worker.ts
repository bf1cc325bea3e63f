/**
 * The compute worker: a child process of the daemon that owns the host driver's device and
 * runs every batch (src/backend/isolated.ts explains why). It does what the messages say and
 * nothing else; the daemon has checked the arguments already, and every kernel was built once
 * in the kernel builder process before it reaches this one.
 *
 * Kernels are compiled here in the background, one at a time: eagerly when they are new, and
 * only when a batch needs them when they are replayed after a reset (so a reset costs each VM
 * the rebuild of its own kernels, not of everyone's). A batch's kernels jump the queue; the
 * batch is reported `started` — its time limit starts — only once they are built and the batch
 * is on the device.
 *
 * `node isolated-worker.js --probe [device]` prints the device's info as JSON and exits: the
 * daemon learns what the device can do without loading the driver itself.
 */
import * as fs from 'node:fs';
import { BackendError, type BackendKernel, type BackendMemory, type Command, type KernelOptions } from './backend.js';
import { HostDevice } from './host-driver.js';
import type { FromWorker, ToWorker, WireCommand, WireError } from './isolated-protocol.js';

if (process.argv[2] === '--probe') {
  const device = HostDevice.open(process.argv[3] !== undefined ? { device: process.argv[3] } : {});
  process.stdout.write(JSON.stringify(device.info));
  await device.destroy();
  process.exit(0);
}

const send = (m: FromWorker) => process.send?.(m);

function wireError(err: unknown): WireError {
  if (err instanceof BackendError) return { code: err.code, errno: err.errno, call: err.call, message: err.message };
  return { code: 'EINVAL', errno: -22, call: 'worker', message: (err as Error)?.message ?? String(err) };
}

interface KernelEntry {
  spirv: Uint32Array;
  options: KernelOptions;
  kernel: BackendKernel | null;
  failed: Error | null;
  building: boolean;
  destroyed: boolean;
  /** Settles when the entry is built or has failed; made when a batch first waits for it. */
  settled: { promise: Promise<void>; resolve: () => void } | null;
}

let device: HostDevice | null = null;
/** Exiting on the daemon's word (or after a failed open), not because the daemon vanished. */
let leaving = false;
const memories = new Map<number, BackendMemory>();
const kernels = new Map<number, KernelEntry>();
/** Kernels to build in the background, and those a waiting batch needs (served first). */
const backgroundBuilds: number[] = [];
const urgentBuilds: number[] = [];
let buildLoopRunning = false;
/** Batches start on the device in the order the daemon sent them. */
let lastStart: Promise<void> = Promise.resolve();

function needsBuild(k: KernelEntry | undefined): k is KernelEntry {
  return k !== undefined && !k.destroyed && k.kernel === null && k.failed === null && !k.building;
}

function buildNext(): number | undefined {
  for (;;) {
    const id = urgentBuilds.shift() ?? backgroundBuilds.shift();
    if (id === undefined || needsBuild(kernels.get(id))) return id;
  }
}

/** Build queued kernels one at a time (compiles are CPU-heavy; batches run meanwhile). */
async function buildLoop(): Promise<void> {
  if (buildLoopRunning) return;
  buildLoopRunning = true;
  try {
    for (let id = buildNext(); id !== undefined; id = buildNext()) {
      const k = kernels.get(id)!;
      k.building = true;
      try {
        const built = await device!.buildKernel(k.spirv, k.options);
        if (k.destroyed) built.destroy();
        else k.kernel = built;
      } catch (err) {
        k.failed = err as Error;
        send({ t: 'problem', message: `kernel ${id}: ${(err as Error).message}` });
      } finally {
        k.building = false;
        k.settled?.resolve();
      }
    }
  } finally {
    buildLoopRunning = false;
  }
}

/** The kernel, built now if it is not yet (ahead of background builds). */
async function ensureBuilt(id: number, i: number): Promise<BackendKernel> {
  const k = kernels.get(id);
  if (k === undefined || k.destroyed) throw new BackendError('ENOENT', -2, 'mdgpu_host_submit', `command ${i}: no kernel ${id} in the worker`);
  if (k.kernel === null && k.failed === null) {
    if (k.settled === null) {
      let resolve!: () => void;
      const promise = new Promise<void>((r) => (resolve = r));
      k.settled = { promise, resolve };
    }
    if (!k.building) {
      urgentBuilds.unshift(id);
      void buildLoop();
    }
    await k.settled.promise;
  }
  if (k.failed !== null)
    throw new BackendError('EIO', -5, 'mdgpu_host_kernel_create', `command ${i}: kernel ${id} failed to build in the compute worker: ${k.failed.message}`);
  if (k.kernel === null) throw new BackendError('ENOENT', -2, 'mdgpu_host_submit', `command ${i}: kernel ${id} was destroyed`);
  return k.kernel;
}

/** Kernel ids back to kernels (built now if they are not yet); the commands stay as they are. */
async function commandsOf(wire: WireCommand[]): Promise<Command[]> {
  const out: Command[] = [];
  for (const [i, c] of wire.entries()) out.push(c.kind === 'dispatch' ? { ...c, kernel: await ensureBuilt(c.kernel, i) } : c);
  return out;
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
        send({ t: 'problem', message: `memory ${m.id}: ${(err as Error).message}`, memory: m.id });
      } finally {
        if (fd >= 0) fs.closeSync(fd);
      }
      return;
    }
    case 'kernel':
      kernels.set(m.id, {
        spirv: m.spirv,
        options: m.options,
        kernel: null,
        failed: null,
        building: false,
        destroyed: false,
        settled: null,
      });
      if (m.eager) {
        backgroundBuilds.push(m.id);
        void buildLoop();
      }
      return;
    case 'destroyMemory':
      memories.get(m.id)?.destroy();
      memories.delete(m.id);
      return;
    case 'destroyKernel': {
      const k = kernels.get(m.id);
      kernels.delete(m.id);
      if (k !== undefined) {
        k.destroyed = true;
        k.kernel?.destroy();
        k.kernel = null;
        k.settled?.resolve();
      }
      return;
    }
    case 'submit': {
      const previous = lastStart;
      lastStart = (async () => {
        await previous;
        let commands: Command[];
        const memory = memories.get(m.memory);
        try {
          if (memory === undefined) throw new BackendError('ENOENT', -2, 'mdgpu_host_submit', `no memory ${m.memory} in the worker`);
          commands = await commandsOf(m.commands);
        } catch (err) {
          send({ t: 'failed', req: m.req, error: wireError(err) });
          return;
        }
        dev.submit(memory, commands, { started: () => send({ t: 'started', req: m.req }) }).then(
          (status) => send({ t: 'done', req: m.req, status }),
          (err: unknown) => send({ t: 'failed', req: m.req, error: wireError(err) }),
        );
      })();
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
