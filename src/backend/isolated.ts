/**
 * The host compute device in child processes, so that it can be reset and so that nothing a
 * guest sends is ever checked or compiled in the daemon.
 *
 * A kernel that never ends cannot be stopped where it runs: Vulkan has no way to cancel a
 * dispatch, and on lavapipe the dispatch is a loop on the driver's CPU threads. In the daemon's
 * own process such a kernel would hold the one device forever, and every VM would wait behind
 * it. So the daemon runs the device in a worker process (isolated-worker.ts, the same
 * {@link HostDevice} it would use in process), and when a batch overruns the scheduler's time
 * limit it kills that process and starts a new one — what a GPU driver's timeout-and-reset does
 * to a hung engine. The overrunning batch fails with a {@link ContextLostError}; memories are
 * imported again in the new worker under the same ids, and kernels are rebuilt there when a
 * batch next needs them, so every other VM carries on without noticing more than the pause.
 *
 * Kernels are validated and compiled first in a second child, the kernel builder
 * (kernel-builder.ts), under a time and a memory limit: a kernel reaches the compute worker only
 * once it has been shown to build there without hanging or crashing. The daemon never loads the
 * driver at all: it learns what the device can do from a probe run of the worker.
 *
 * Memory reaches the worker as the daemon's `/proc/<pid>/fd/<n>` of a descriptor reopened here,
 * and the worker maps it itself, so batches still write straight into the aperture the guest
 * has mapped.
 */
import { type ChildProcess, fork, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import { constants } from 'node:os';
import { fileURLToPath } from 'node:url';
import { ContextLostError } from '../execution-errors.js';
import { info, warn } from '../log.js';
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
  type SubmitHooks,
} from './backend.js';
import type { FromWorker, ToWorker, WireCommand, WireError } from './isolated-protocol.js';
import { KernelBuilder, type KernelBuilderOptions } from './kernel-builder.js';
import type { BuiltKernelInfo } from './kernel-builder-protocol.js';
import type { KernelBinding } from '../device-commands.js';
import { lowerPriority } from './priority.js';

const WORKER = fileURLToPath(new URL('./isolated-worker.js', import.meta.url));
/** A worker that dies this many times in a row before it is ready means the device is unusable. */
const MAX_FAILED_STARTS = 3;
/**
 * The compute worker runs below the daemon's CPU priority: on a CPU device (lavapipe) a batch
 * keeps every core busy, and the daemon must still answer every VM's trapped accesses and feed
 * the queues promptly. The device's throughput does not suffer: the daemon is mostly idle.
 */
const WORKER_NICE = 5;

/** How long a delivered batch may wait in the worker for its kernels before the worker is reset. */
export const DEFAULT_START_LIMIT_MS = 60_000;

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
  readonly layout: readonly KernelBinding[];
  readonly localSize: readonly [number, number, number];
  readonly pushConstantSize: number;
  readonly dispatchBase: boolean;
  readonly splittable: boolean;
  /** @internal */
  constructor(
    readonly device: IsolatedDevice,
    readonly id: number,
    info: BuiltKernelInfo,
  ) {
    this.layout = info.layout;
    this.localSize = info.localSize;
    this.pushConstantSize = info.pushConstantSize;
    this.dispatchBase = info.dispatchBase;
    this.splittable = info.splittable;
  }

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
  hooks: SubmitHooks | undefined;
  /** The worker has the batch (a worker dying now took it down with it). */
  delivered: boolean;
  /** Fires when a delivered batch has not started within the start limit. */
  watchdog: NodeJS.Timeout | null;
}

export interface IsolatedOptions {
  /** Which device (see {@link HostDevice.open}). */
  device?: string;
  /** TIMESTAMP values from the CPU at completion (tests). */
  cpuTimestamps?: boolean;
  /** Limits of the kernel builder process. */
  kernelBuild?: Omit<KernelBuilderOptions, 'device'>;
  /** How long a delivered batch may wait for its kernels to be built in the worker, ms. */
  startLimitMs?: number;
  /** The device's info, if the caller has it (skips the probe). */
  info?: DeviceInfo;
}

function backendError(e: WireError): BackendError {
  return new BackendError(e.code, e.errno, e.call, e.message);
}

/**
 * What the device can do, from a short-lived run of the worker (`--probe`): the daemon itself
 * never loads the Vulkan driver.
 */
export function probeDevice(device?: string): DeviceInfo {
  const r = spawnSync(process.execPath, [WORKER, '--probe', ...(device !== undefined ? [device] : [])], {
    encoding: 'utf8',
    env: { ...process.env, MDGPU_HOST_LOG: 'quiet' },
    timeout: 120_000,
  });
  if (r.status !== 0 || r.stdout.length === 0) {
    const why = (r.stderr ?? '').trim().split('\n').slice(-3).join(' ') || (r.error?.message ?? `exit ${r.status ?? r.signal}`);
    throw new BackendError('ENODEV', -constants.errno.ENODEV, 'mdgpu_host_device_open', `No compute device: ${why}`);
  }
  return JSON.parse(r.stdout) as DeviceInfo;
}

export class IsolatedDevice implements ComputeBackend {
  readonly info: DeviceInfo;
  /** Times the worker was replaced: resets asked for, and workers that died on their own. */
  resets = 0;
  readonly builder: KernelBuilder;
  readonly #options: IsolatedOptions;
  readonly #startLimitMs: number;
  #worker: ChildProcess | null = null;
  /** The worker listens for messages (before that, they wait in the outbox). */
  #listening = false;
  #ready = false;
  /** Messages for a worker that is not listening yet (the replay first, then new work). */
  #outbox: ToWorker[] = [];
  readonly #memories = new Map<number, { message: ToWorker; fd: number }>();
  /** Kernels to replay into a new worker (lazily: built when a batch needs them). */
  readonly #kernels = new Map<number, ToWorker>();
  readonly #requests = new Map<number, Request>();
  #nextId = 1;
  #failedStarts = 0;
  /** Settles when the current worker is ready (or gone); null while it is. */
  #readyWait: { promise: Promise<void>; resolve: () => void } | null = null;
  #broken: BackendError | null = null;
  #destroyed = false;
  #destroying: Promise<void> | undefined;

  private constructor(deviceInfo: DeviceInfo, options: IsolatedOptions) {
    this.info = deviceInfo;
    this.#options = options;
    this.#startLimitMs = options.startLimitMs ?? DEFAULT_START_LIMIT_MS;
    this.builder = new KernelBuilder({ ...options.kernelBuild, ...(options.device !== undefined ? { device: options.device } : {}) });
    this.builder.start();
    this.#start();
  }

  /** Probe the device (unless its info is given) and start the worker that runs batches. */
  static open(options: IsolatedOptions = {}): IsolatedDevice {
    return new IsolatedDevice(options.info ?? probeDevice(options.device), options);
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
    lowerPriority(worker, WORKER_NICE);
    this.#listening = false;
    this.#ready = false;
    if (this.#readyWait === null) {
      let resolve!: () => void;
      const promise = new Promise<void>((r) => (resolve = r));
      this.#readyWait = { promise, resolve };
    }
    // The worker must know the device and everything made on it before any new work.
    const o = this.#options;
    const replay: ToWorker[] = [{ t: 'open', ...(o.device !== undefined ? { device: o.device } : {}), ...(o.cpuTimestamps ? { cpuTimestamps: true } : {}) }];
    for (const m of this.#memories.values()) replay.push(m.message);
    for (const k of this.#kernels.values()) replay.push(k);
    this.#outbox = [...replay, ...this.#outbox];
    worker.on('message', (m: FromWorker) => this.#onMessage(worker, m));
    worker.on('error', (err) => warn(`compute worker: ${err.message}`));
    worker.on('exit', (code, signal) => this.#onExit(worker, code, signal));
  }

  /** Hand a message to the worker now; true if it was delivered. */
  #deliver(m: ToWorker): boolean {
    const w = this.#worker;
    if (w === null || !this.#listening || !w.connected) return false;
    w.send(m);
    if (m.t === 'submit') this.#delivered(m.req);
    return true;
  }

  #delivered(req: number): void {
    const r = this.#requests.get(req);
    if (r === undefined) return;
    r.delivered = true;
    // A batch waits in the worker only for its kernels to be built (each already built once in
    // the builder, within its time limit): if it does not start, the worker is stuck.
    r.watchdog = setTimeout(() => {
      r.watchdog = null;
      this.reset(`a batch did not start within ${this.#startLimitMs} ms`);
    }, this.#startLimitMs);
  }

  #flush(): void {
    const pending = this.#outbox.splice(0);
    for (const [i, m] of pending.entries()) {
      if (!this.#deliver(m)) {
        this.#outbox = [...pending.slice(i), ...this.#outbox];
        return;
      }
    }
  }

  #send(m: ToWorker): void {
    // Straight to a listening worker (the outbox is empty then); queued otherwise.
    if (this.#outbox.length > 0 || !this.#deliver(m)) this.#outbox.push(m);
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
      case 'started': {
        const r = this.#requests.get(m.req);
        if (r === undefined) return;
        if (r.watchdog !== null) clearTimeout(r.watchdog);
        r.watchdog = null;
        r.hooks?.started?.();
        return;
      }
      case 'done':
      case 'failed': {
        const r = this.#requests.get(m.req);
        if (r === undefined) return;
        this.#requests.delete(m.req);
        if (r.watchdog !== null) clearTimeout(r.watchdog);
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
    // its context is lost, as for a batch past the time limit, so that one VM cannot crash the
    // device over and over with the same work. Batches the worker never received are not
    // touched: they go to the next worker.
    const lost = new ContextLostError(`The compute device was reset (worker ${how}); the batch did not complete`, 'device-reset');
    for (const [req, r] of [...this.#requests]) {
      if (!r.delivered && !this.#destroyed) continue;
      this.#requests.delete(req);
      if (r.watchdog !== null) clearTimeout(r.watchdog);
      r.reject(lost);
    }
    const undelivered = this.#outbox.filter((m) => m.t === 'submit');
    if (this.#destroyed) {
      this.#settleReady();
      return;
    }
    if (!this.#ready && ++this.#failedStarts >= MAX_FAILED_STARTS) {
      this.#broken ??= new BackendError(
        'EIO',
        -constants.errno.EIO,
        'mdgpu_host_device_open',
        `the compute worker failed ${MAX_FAILED_STARTS} times before it was ready (${how})`,
      );
    }
    if (this.#broken !== null) {
      warn(`compute worker: ${this.#broken.message}; no more batches will run`);
      for (const r of this.#requests.values()) r.reject(this.#broken);
      this.#requests.clear();
      this.#outbox = [];
      this.#settleReady();
      return;
    }
    this.resets++;
    info(`compute worker ${worker.pid} ${how}; starting a new one (reset ${this.resets})`);
    // What the dead worker had made is replayed; batches it never saw wait for the new one.
    this.#outbox = undelivered;
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
    if (!Number.isSafeInteger(offset) || !Number.isSafeInteger(size) || offset < 0 || size <= 0) {
      throw new BackendError('EINVAL', -constants.errno.EINVAL, 'mdgpu_host_memory_import_fd', `Bad import range: ${offset}+${size}`);
    }
    // A descriptor of our own, so the worker (and any later one) can open the file even
    // after the caller closes its descriptor.
    const own = fs.openSync(`/proc/self/fd/${fd}`, 'r+');
    const id = this.#nextId++;
    const message: ToWorker = { t: 'import', id, path: `/proc/${process.pid}/fd/${own}`, offset, size, staged: options.staged === true };
    this.#memories.set(id, { message, fd: own });
    this.#send(message);
    // The host driver imports without copies when the device has VK_EXT_external_memory_host
    // and the range is aligned as it requires (it stages copies otherwise, and says so).
    const align = this.info.minImportAlignment;
    const zeroCopy = options.staged !== true && this.info.hostImport && align > 0 && offset % align === 0 && size % align === 0;
    return new IsolatedMemory(this, id, size, zeroCopy);
  }

  /** Build a kernel: first in the builder process (checked, bounded), then in the worker. */
  async buildKernel(spirv: Uint32Array, options: KernelOptions, owner = 'device'): Promise<BackendKernel> {
    this.#alive('mdgpu_host_kernel_create');
    const built = await this.builder.build(owner, spirv, options);
    this.#alive('mdgpu_host_kernel_create');
    const id = this.#nextId++;
    const define = { t: 'kernel', id, spirv: spirv.slice(), options: structuredClone(options) } as const;
    this.#kernels.set(id, { ...define, eager: false });
    this.#send({ ...define, eager: true });
    return new IsolatedKernel(this, id, built);
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

  /** The batch as the worker gets it: the same commands, each kernel named by its id. */
  #wire(c: Command, i: number): WireCommand {
    if (c?.kind !== 'dispatch') {
      if (c?.kind === 'copy' || c?.kind === 'fill' || c?.kind === 'update' || c?.kind === 'timestamp' || c?.kind === 'barrier') return c;
      throw new TypeError(`submit: command ${i}: unknown kind ${String((c as { kind?: unknown })?.kind)}`);
    }
    if (!(c.kernel instanceof IsolatedKernel) || c.kernel.device !== this)
      throw new TypeError(`submit: command ${i}: the kernel is not a kernel of this device`);
    return { ...c, kernel: c.kernel.id };
  }

  submit(memory: BackendMemory, commands: readonly Command[], hooks?: SubmitHooks): Promise<SubmissionStatus> {
    try {
      this.#alive('mdgpu_host_submit');
      if (!(memory instanceof IsolatedMemory) || memory.device !== this) throw new TypeError('submit: the memory is not memory of this device');
      if (!Array.isArray(commands)) throw new TypeError('submit: commands must be an array');
      const wire = commands.map((c, i) => this.#wire(c, i));
      const req = this.#nextId++;
      let resolve!: (s: SubmissionStatus) => void;
      let reject!: (e: Error) => void;
      const promise = new Promise<SubmissionStatus>((res, rej) => {
        resolve = res;
        reject = rej;
      });
      this.#requests.set(req, { resolve, reject, promise, hooks, delivered: false, watchdog: null });
      this.#send({ t: 'submit', req, memory: memory.id, commands: wire });
      return promise;
    } catch (err) {
      return Promise.reject(err as Error);
    }
  }

  /** Wait for pending batches, then end the worker and builder and release everything. Idempotent. */
  destroy(): Promise<void> {
    this.#destroying ??= (async () => {
      this.#destroyed = true;
      await Promise.allSettled([...this.#requests.values()].map((r) => r.promise));
      await this.builder.destroy();
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
    })();
    return this.#destroying;
  }
}
