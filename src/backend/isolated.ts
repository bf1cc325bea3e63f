/**
 * The host compute device in a child process, so that it can be reset.
 *
 * A kernel that never ends cannot be stopped where it runs: Vulkan has no way to cancel a
 * dispatch, and on lavapipe the dispatch is a loop on the driver's CPU threads. In the daemon's
 * own process such a kernel would hold the one device forever, and every VM would wait behind
 * it. So the daemon runs the device in a worker process (isolated-worker.ts, the same
 * {@link HostDevice} it would use in process), and when a batch overruns the scheduler's time
 * limit it kills that process and starts a new one — what a GPU driver's timeout-and-reset does
 * to a hung engine. The overrunning batch fails (its context is marked lost by the device
 * model); memories and kernels are imported and built again in the new worker under the same
 * ids, so every other VM carries on without noticing more than the pause.
 *
 * Calls that must answer at once (import, kernel creation: the guest's mailbox waits for them)
 * are checked synchronously on a second {@link HostDevice} in this process, which never runs a
 * batch; the worker then repeats them. Memory reaches the worker as the daemon's
 * `/proc/<pid>/fd/<n>` of a descriptor reopened here, and the worker maps it itself, so batches
 * still write straight into the aperture the guest has mapped.
 */
import { fork, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import { constants } from 'node:os';
import { fileURLToPath } from 'node:url';
import {
  BackendError,
  type BackendKernel,
  type BackendMemory,
  type Command,
  type ComputeBackend,
  type DeviceInfo,
  type ImportOptions,
  type KernelOptions,
  type SubmissionStatus,
} from './backend.js';
import { HostDevice } from './host-driver.js';
import type { FromWorker, ToWorker, WireCommand, WireError } from './isolated-protocol.js';
import { info, warn } from '../log.js';

const WORKER = fileURLToPath(new URL('./isolated-worker.js', import.meta.url));
/** A worker that dies this many times in a row before it is ready means the device is unusable. */
const MAX_FAILED_STARTS = 3;

/** Memory imported into an {@link IsolatedDevice}. */
export class IsolatedMemory implements BackendMemory {
  #destroyed = false;
  /** @internal */
  constructor(
    readonly device: IsolatedDevice,
    readonly id: number,
    readonly size: number,
    readonly zeroCopy: boolean,
  ) {}

  get destroyed(): boolean {
    return this.#destroyed;
  }

  destroy(): void {
    if (this.#destroyed) return;
    this.#destroyed = true;
    this.device.release('memory', this.id);
  }
}

/** A kernel built on an {@link IsolatedDevice}. */
export class IsolatedKernel implements BackendKernel {
  #destroyed = false;
  /** @internal */
  constructor(
    readonly device: IsolatedDevice,
    readonly id: number,
    readonly bindings: number,
    readonly pushConstantSize: number,
  ) {}

  get destroyed(): boolean {
    return this.#destroyed;
  }

  destroy(): void {
    if (this.#destroyed) return;
    this.#destroyed = true;
    this.device.release('kernel', this.id);
  }
}

interface Request {
  resolve: (s: SubmissionStatus) => void;
  reject: (e: Error) => void;
  promise: Promise<SubmissionStatus>;
}

export interface IsolatedOptions {
  /** Which device (see {@link HostDevice.open}). */
  device?: string;
  /** TIMESTAMP values from the CPU at completion (tests). */
  cpuTimestamps?: boolean;
}

function backendError(e: WireError): BackendError {
  return new BackendError(e.code, e.errno, e.call, e.message);
}

export class IsolatedDevice implements ComputeBackend {
  readonly info: DeviceInfo;
  /** Times the worker was replaced: resets asked for, and workers that died on their own. */
  resets = 0;
  readonly #checker: HostDevice;
  readonly #options: IsolatedOptions;
  #worker: ChildProcess | null = null;
  /** The worker listens for messages (before that, they wait in the outbox). */
  #listening = false;
  #ready = false;
  /** Messages for a worker that is not ready yet (the replay first, then new work). */
  #outbox: ToWorker[] = [];
  readonly #memories = new Map<number, { message: ToWorker; fd: number }>();
  readonly #kernels = new Map<number, ToWorker>();
  readonly #requests = new Map<number, Request>();
  #nextId = 1;
  #failedStarts = 0;
  /** Settles when the current worker is ready (or gone); null while it is. */
  #readyWait: { promise: Promise<void>; resolve: () => void } | null = null;
  #broken: BackendError | null = null;
  #destroyed = false;
  #destroying: Promise<void> | undefined;

  private constructor(checker: HostDevice, options: IsolatedOptions) {
    this.#checker = checker;
    this.#options = options;
    this.info = checker.info;
    this.#start();
  }

  /** Open the device here (to check calls) and in a new worker process (to run batches). */
  static open(options: IsolatedOptions = {}): IsolatedDevice {
    const checker = HostDevice.open({
      ...(options.device !== undefined ? { device: options.device } : {}),
      ...(options.cpuTimestamps ? { cpuTimestamps: true } : {}),
    });
    return new IsolatedDevice(checker, options);
  }

  /** Batches submitted and not yet settled. */
  get pending(): number {
    return this.#requests.size;
  }

  /** The worker's process id (null between a reset and the new worker). */
  get workerPid(): number | null {
    return this.#worker?.pid ?? null;
  }

  #start(): void {
    const worker = fork(WORKER, [], { serialization: 'advanced', stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
    this.#worker = worker;
    this.#listening = false;
    this.#ready = false;
    if (this.#readyWait === null) {
      let resolve!: () => void;
      const promise = new Promise<void>((r) => (resolve = r));
      this.#readyWait = { promise, resolve };
    }
    // The worker must know the device and everything made on it before any new work.
    const replay: ToWorker[] = [
      {
        t: 'open',
        ...(this.#options.device !== undefined ? { device: this.#options.device } : {}),
        ...(this.#options.cpuTimestamps ? { cpuTimestamps: true } : {}),
      },
    ];
    for (const m of this.#memories.values()) replay.push(m.message);
    for (const k of this.#kernels.values()) replay.push(k);
    this.#outbox = [...replay, ...this.#outbox];
    worker.on('message', (m: FromWorker) => this.#onMessage(worker, m));
    worker.on('error', (err) => warn(`compute worker: ${err.message}`));
    worker.on('exit', (code, signal) => this.#onExit(worker, code, signal));
  }

  #flush(): void {
    const w = this.#worker;
    if (w === null || !this.#listening || !w.connected) return;
    for (const m of this.#outbox.splice(0)) w.send(m);
  }

  #send(m: ToWorker): void {
    const w = this.#worker;
    // Straight to a listening worker (the outbox is empty then); queued otherwise.
    if (w !== null && this.#listening && w.connected) w.send(m);
    else this.#outbox.push(m);
  }

  #onMessage(worker: ChildProcess, m: FromWorker): void {
    if (worker !== this.#worker) return;
    switch (m.t) {
      case 'listening':
        this.#listening = true;
        this.#flush();
        return;
      case 'ready':
        this.#ready = true;
        this.#failedStarts = 0;
        this.#settleReady();
        return;
      case 'fatal':
        warn(`compute worker: cannot open the device: ${m.error.message}`);
        this.#broken = backendError(m.error);
        return;
      case 'problem':
        warn(`compute worker: ${m.message}`);
        return;
      case 'done':
      case 'failed': {
        const r = this.#requests.get(m.req);
        if (r === undefined) return;
        this.#requests.delete(m.req);
        if (m.t === 'done') r.resolve(m.status);
        else r.reject(backendError(m.error));
      }
    }
  }

  #onExit(worker: ChildProcess, code: number | null, signal: NodeJS.Signals | null): void {
    if (worker !== this.#worker) return;
    this.#worker = null;
    const how = signal !== null ? `killed by ${signal}` : `exit code ${code}`;
    // Whatever ran there is gone, and nobody will say how it ended. Batches run one at a time,
    // so a batch in flight when a worker dies on its own (a driver crash) is what killed it:
    // its context is marked lost, as for a batch past the time limit, so that one VM cannot
    // crash the device over and over with the same work.
    const failed = Object.assign(
      new BackendError('EIO', -constants.errno.EIO, 'mdgpu_host_wait', `the compute device was reset (worker ${how}); the batch did not complete`),
      { contextLost: true },
    );
    for (const r of this.#requests.values()) r.reject(failed);
    this.#requests.clear();
    if (this.#destroyed) {
      this.#settleReady();
      return;
    }
    if (!this.#ready && ++this.#failedStarts >= MAX_FAILED_STARTS)
      this.#broken ??= new BackendError(
        'EIO',
        -constants.errno.EIO,
        'mdgpu_host_device_open',
        `the compute worker failed ${MAX_FAILED_STARTS} times before it was ready (${how})`,
      );
    if (this.#broken !== null) {
      warn(`compute worker: ${this.#broken.message}; no more batches will run`);
      this.#outbox = [];
      this.#settleReady();
      return;
    }
    this.resets++;
    info(`compute worker ${worker.pid} ${how}; starting a new one (reset ${this.resets})`);
    // Work queued for the dead worker was failed above; what it had made is replayed.
    this.#outbox = [];
    this.#start();
  }

  #settleReady(): void {
    this.#readyWait?.resolve();
    this.#readyWait = null;
  }

  /** A promise while the worker is starting (first start, or after a reset), else null. */
  whenReady(): Promise<void> | null {
    return this.#readyWait?.promise ?? null;
  }

  /**
   * Kill the worker, failing the batches it had, and start a new one with every memory and
   * kernel made again. For a batch that will not end (the scheduler's time limit).
   */
  reset(reason: string): void {
    const w = this.#worker;
    if (w === null || this.#destroyed) return;
    warn(`compute: resetting the device: ${reason}`);
    w.kill('SIGKILL');
  }

  importMemory(): BackendMemory {
    throw new BackendError(
      'ENOTSUP',
      -constants.errno.ENOTSUP,
      'mdgpu_host_memory_import',
      'An isolated device runs in another process: import a file descriptor (importFd), not memory of this one',
    );
  }

  importFd(fd: number, offset: number, size: number, options: ImportOptions = {}): BackendMemory {
    this.#alive('mdgpu_host_memory_import_fd');
    // The same call here first: the caller learns at once whether it works, and how.
    const probe = this.#checker.importFd(fd, offset, size, options);
    const zeroCopy = probe.zeroCopy;
    probe.destroy();
    // A descriptor of our own, so the worker (and any later one) can open the file even
    // after the caller closes its descriptor.
    const own = fs.openSync(`/proc/self/fd/${fd}`, 'r+');
    const id = this.#nextId++;
    const message: ToWorker = { t: 'import', id, path: `/proc/${process.pid}/fd/${own}`, offset, size, staged: options.staged === true };
    this.#memories.set(id, { message, fd: own });
    this.#send(message);
    return new IsolatedMemory(this, id, size, zeroCopy);
  }

  createKernel(spirv: Uint32Array, options: KernelOptions): BackendKernel {
    this.#alive('mdgpu_host_kernel_create');
    // Validation and the driver's own refusal come from this call, synchronously.
    this.#checker.createKernel(spirv, options).destroy();
    const id = this.#nextId++;
    const message: ToWorker = { t: 'kernel', id, spirv: spirv.slice(), bindings: options.bindings, pushConstantSize: options.pushConstantSize };
    this.#kernels.set(id, message);
    this.#send(message);
    return new IsolatedKernel(this, id, options.bindings, options.pushConstantSize);
  }

  /** @internal Forget a memory or kernel (IsolatedMemory/IsolatedKernel.destroy). */
  release(kind: 'memory' | 'kernel', id: number): void {
    if (kind === 'memory') {
      const m = this.#memories.get(id);
      if (m === undefined) return;
      this.#memories.delete(id);
      fs.closeSync(m.fd);
      this.#send({ t: 'destroyMemory', id });
    } else if (this.#kernels.delete(id)) {
      this.#send({ t: 'destroyKernel', id });
    }
  }

  #alive(call: string): void {
    if (this.#destroyed) throw new BackendError('ENOENT', -constants.errno.ENOENT, call, `Host driver ${call}: the device is destroyed`);
    if (this.#broken !== null) throw this.#broken;
  }

  #wire(c: Command, i: number): WireCommand {
    const mem = (m: BackendMemory, what: string) => {
      if (!(m instanceof IsolatedMemory) || m.device !== this) throw new TypeError(`submit: command ${i}: ${what} is not memory of this device`);
      return m.id;
    };
    switch (c?.op) {
      case 'copy':
        return { op: 'copy', src: mem(c.src, 'src'), srcOffset: c.srcOffset, dst: mem(c.dst, 'dst'), dstOffset: c.dstOffset, size: c.size };
      case 'fill':
        return { op: 'fill', mem: mem(c.mem, 'mem'), offset: c.offset, size: c.size, value: c.value };
      case 'dispatch': {
        if (!(c.kernel instanceof IsolatedKernel) || c.kernel.device !== this)
          throw new TypeError(`submit: command ${i}: the kernel is not a kernel of this device`);
        const push = c.push === undefined ? undefined : new Uint8Array(c.push.buffer, c.push.byteOffset, c.push.byteLength).slice();
        return {
          op: 'dispatch',
          kernel: c.kernel.id,
          groups: c.groups,
          bindings: c.bindings.map((b) => ({ mem: mem(b.mem, 'binding'), offset: b.offset, size: b.size })),
          ...(push ? { push } : {}),
        };
      }
      case 'timestamp':
        return { op: 'timestamp', mem: mem(c.mem, 'mem'), offset: c.offset };
      case 'barrier':
        return { op: 'barrier' };
      default:
        throw new TypeError(`submit: command ${i}: unknown op ${String((c as { op?: unknown })?.op)}`);
    }
  }

  submit(commands: readonly Command[]): Promise<SubmissionStatus> {
    try {
      this.#alive('mdgpu_host_submit');
      if (!Array.isArray(commands)) throw new TypeError('submit: commands must be an array');
      const wire = commands.map((c, i) => this.#wire(c, i));
      const req = this.#nextId++;
      let resolve!: (s: SubmissionStatus) => void;
      let reject!: (e: Error) => void;
      const promise = new Promise<SubmissionStatus>((res, rej) => {
        resolve = res;
        reject = rej;
      });
      this.#requests.set(req, { resolve, reject, promise });
      this.#send({ t: 'submit', req, commands: wire });
      return promise;
    } catch (err) {
      return Promise.reject(err as Error);
    }
  }

  /** Wait for pending batches, then end the worker and release everything. Idempotent. */
  destroy(): Promise<void> {
    this.#destroying ??= (async () => {
      this.#destroyed = true;
      await Promise.allSettled([...this.#requests.values()].map((r) => r.promise));
      const w = this.#worker;
      if (w !== null && w.exitCode === null && w.signalCode === null) {
        const exited = new Promise<void>((resolve) => w.once('exit', () => resolve()));
        // A worker that is not listening yet would never read the request: it has nothing to
        // finish either.
        if (this.#listening && w.connected) w.send({ t: 'exit' } satisfies ToWorker);
        else w.kill('SIGKILL');
        // An orderly exit takes milliseconds; do not wait for one forever.
        const timer = setTimeout(() => w.kill('SIGKILL'), 5000);
        await exited;
        clearTimeout(timer);
      }
      this.#worker = null;
      for (const m of this.#memories.values()) fs.closeSync(m.fd);
      this.#memories.clear();
      this.#kernels.clear();
      await this.#checker.destroy();
    })();
    return this.#destroying;
  }
}
