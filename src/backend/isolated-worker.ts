/**
 * The compute worker: a child process of the daemon that owns the host driver's device
 * (src/backend/isolated.ts explains why). Its JavaScript is the control path only: it opens
 * the device, imports memory, builds kernels and binds each to the daemon's id in the
 * submission ring. Batches never pass through it: the daemon writes them into the ring, whose
 * memory and doorbells this process inherits as descriptors 4, 5 and 6, and the host driver's
 * ring service thread takes them, runs them, waits for them and reports their completion (see
 * ring.ts and host-driver/src/ring.c). The daemon has checked every argument already, and every
 * kernel was built once in the kernel builder process before it reaches this one; the ring
 * service still checks every record.
 *
 * Kernels are compiled here in the background, one at a time: eagerly when they are new, and
 * only when the daemon asks (`build`: a batch waits for it) when they are replayed after a
 * reset, so a reset costs each VM the rebuild of its own kernels, not of everyone's. The daemon
 * writes a batch into the ring only once its memory and kernels are bound here, so a batch is
 * reported `started` — its time limit starts — only once they are built and it is on the device.
 *
 * It dies with the daemon: the kernel sends it SIGKILL when its parent dies (PR_SET_PDEATHSIG,
 * however the daemon died and whatever this process is doing), and it kills itself when the IPC
 * channel closes.
 *
 * `node isolated-worker.js --probe [device]` prints the device's info as JSON and exits: the
 * daemon learns what the device can do without loading the driver itself.
 */
import * as fs from 'node:fs';
import { constants } from 'node:os';
import { loadNative } from '../native/binding.js';
import { BackendError, type KernelOptions } from './backend.js';
import { HostDevice } from './host-driver.js';
import { type FromWorker, type ToWorker, WORKER_RING_FDS, type WireError } from './isolated-protocol.js';

if (process.argv[2] === '--probe') {
  const device = HostDevice.open(process.argv[3] !== undefined ? { device: process.argv[3] } : {});
  process.stdout.write(JSON.stringify(device.info));
  await device.destroy();
  process.exit(0);
}

// Die with the daemon, even if it is SIGKILLed while this process is inside a long call into
// the driver. A daemon that died before the signal was armed has already left us to another
// parent: then go now.
{
  const parent = Number(process.argv[process.argv.indexOf('--parent') + 1]);
  if (loadNative().parentDeathSignal(constants.signals.SIGKILL) !== parent) process.kill(process.pid, 'SIGKILL');
}

const send = (m: FromWorker) => process.send?.(m);

function wireError(err: unknown): WireError {
  if (err instanceof BackendError) return { code: err.code, errno: err.errno, call: err.call, message: err.message };
  return { code: 'EINVAL', errno: -22, call: 'worker', message: (err as Error)?.message ?? String(err) };
}

/** A kernel defined and not bound yet. */
interface KernelEntry {
  spirv: Uint32Array;
  options: KernelOptions;
  building: boolean;
  /** The daemon forgot it while it was being built: destroy what the build makes. */
  forgotten: boolean;
}

let device: HostDevice | null = null;
/** Exiting on the daemon's word (or after a failed open), not because the daemon vanished. */
let leaving = false;
const kernels = new Map<number, KernelEntry>();
/** Kernels to build in the background, and those a waiting batch needs (served first). */
const backgroundBuilds: number[] = [];
const urgentBuilds: number[] = [];
let buildLoopRunning = false;

function buildNext(): number | undefined {
  for (;;) {
    const id = urgentBuilds.shift() ?? backgroundBuilds.shift();
    const k = id === undefined ? undefined : kernels.get(id);
    if (id === undefined || (k !== undefined && !k.building && !k.forgotten)) return id;
  }
}

/** Build queued kernels one at a time (compiles are CPU-heavy; batches run meanwhile), binding each. */
async function buildLoop(): Promise<void> {
  if (buildLoopRunning) return;
  buildLoopRunning = true;
  try {
    for (let id = buildNext(); id !== undefined; id = buildNext()) {
      const k = kernels.get(id)!;
      k.building = true;
      try {
        const built = await device!.buildKernel(k.spirv, k.options);
        if (k.forgotten) {
          built.destroy();
          continue;
        }
        device!.bind(id, built);
        kernels.delete(id);
        send({ t: 'bound', kind: 'kernel', id });
      } catch (err) {
        kernels.delete(id);
        if (!k.forgotten) send({ t: 'bound', kind: 'kernel', id, error: wireError(err) });
      }
    }
  } finally {
    buildLoopRunning = false;
  }
}

function handle(m: ToWorker): void {
  if (m.t === 'open') {
    try {
      device = HostDevice.open({
        ...(m.device !== undefined ? { device: m.device } : {}),
        ...(m.cpuTimestamps ? { cpuTimestamps: true } : {}),
        ...(m.waitSliceNs ? { waitSliceNs: BigInt(m.waitSliceNs) } : {}),
        ring: WORKER_RING_FDS,
      });
      // The ring service keeps its own duplicates.
      for (const fd of Object.values(WORKER_RING_FDS)) fs.closeSync(fd);
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
        const memory = dev.importFd(fd, m.offset, m.size, { staged: m.staged });
        dev.bind(m.id, memory);
        send({ t: 'bound', kind: 'memory', id: m.id });
      } catch (err) {
        send({ t: 'bound', kind: 'memory', id: m.id, error: wireError(err) });
      } finally {
        if (fd >= 0) fs.closeSync(fd);
      }
      return;
    }
    case 'kernel':
      kernels.set(m.id, { spirv: m.spirv, options: m.options, building: false, forgotten: false });
      if (m.eager) {
        backgroundBuilds.push(m.id);
        void buildLoop();
      }
      return;
    case 'build':
      if (kernels.has(m.id)) {
        urgentBuilds.unshift(m.id);
        void buildLoop();
      }
      return;
    case 'forget': {
      const k = m.kind === 'kernel' ? kernels.get(m.id) : undefined;
      if (k !== undefined) {
        // Not bound yet: drop it (a build under way destroys what it makes).
        k.forgotten = true;
        kernels.delete(m.id);
        return;
      }
      // Bound, and the daemon had not heard so yet: no batch names it, release it now.
      dev.unbind(m.kind === 'memory' ? 'memory' : 'kernel', m.id);
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
