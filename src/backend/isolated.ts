/**
 * The host compute device in child processes, so that it can be reset and so that nothing a
 * guest sends is ever checked or compiled in the daemon.
 *
 * A kernel that never ends cannot be stopped where it runs: Vulkan has no way to cancel a
 * dispatch, and on lavapipe the dispatch is a loop on the driver's CPU threads. In the daemon's
 * own process such a kernel would hold the one device forever, and every VM would wait behind
 * it. So the daemon runs the device in a worker process (isolated-worker.ts), and when a batch
 * overruns the scheduler's time limit it kills that process and starts a new one — what a GPU
 * driver's timeout-and-reset does to a hung engine. The overrunning batch fails with a
 * {@link ContextLostError}; memories are imported again in the new worker under the same ids,
 * and kernels are rebuilt there when a batch next needs them, so every other VM carries on
 * without noticing more than the pause.
 *
 * The data path is shared memory, not messages: each worker gets a submission ring (ring.ts)
 * that the daemon creates and the worker inherits (a memfd and two eventfds). The daemon encodes
 * each batch straight into it as the host driver's own records (host-records.ts), memory and
 * kernels named by the daemon's ids, and rings a doorbell; the host driver's ring service thread
 * in the worker takes it, submits it, waits for its fence and posts STARTED and DONE (or FAILED)
 * to the completion ring, whose doorbell the daemon watches on its event loop. No JavaScript runs
 * in the worker per batch. The IPC channel carries the control path: opening the device,
 * imports, kernel builds, forgetting them, exiting.
 *
 * A batch is written into the ring only once its memory and kernels are bound in the current
 * worker (the worker says so over IPC); until then it waits here, in order, and its kernels are
 * built first. Its `started` hook fires when its STARTED comes back: it is on the device then,
 * and its time limit starts. A batch handed to a worker that is ready is that worker's: if the
 * worker dies (killed by a reset, or crashed), every batch it had and has not finished fails
 * with a ContextLostError; batches submitted while no worker was ready wait for the next one.
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
import type { KernelBinding } from '../device-commands.js';
import { ContextLostError } from '../execution-errors.js';
import { info, relayLines, warn } from '../log.js';
import { loadNative, type NativeBinding } from '../native/binding.js';
import {
  BackendError,
  type BackendKernel,
  type BackendMemory,
  type Command,
  type ComputeDevice,
  type DeviceInfo,
  type ImportOptions,
  type KernelOptions,
  type SubmissionStatus,
  type SubmitHooks,
} from './backend.js';
import { BatchEncoder } from './host-records.js';
import type { FromWorker, ToWorker, WireError } from './isolated-protocol.js';
import { KernelBuilder, type KernelBuilderOptions } from './kernel-builder.js';
import type { BuiltKernelInfo } from './kernel-builder-protocol.js';
import { lowerPriority } from './priority.js';
import { RingClient, RingKind, RingMemory, type RingRequest, ringRequest, SUBMIT_AREA_SIZE } from './ring.js';

const WORKER = fileURLToPath(new URL('./isolated-worker.js', import.meta.url));
/** A worker that dies this many times in a row before it is ready means the device is unusable. */
const MAX_FAILED_STARTS = 3;
/**
 * The compute worker runs below the daemon's CPU priority: on a CPU device (lavapipe) a batch
 * keeps every core busy, and the daemon must still answer every VM's trapped accesses and feed
 * the queues promptly. The device's throughput does not suffer: the daemon is mostly idle. The
 * ring service thread and the driver's threads start after the worker's priority is lowered,
 * and inherit it.
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
  /** Bytes of each worker ring's submission area (a power of two; default ring.ts's `SUBMIT_AREA_SIZE`). */
  submitAreaSize?: number;
}

/** What one worker process has: its ring, and which ids are bound in it. */
interface Worker {
  process: ChildProcess;
  ring: RingMemory;
  client: RingClient;
  /** It listens for messages (before that, they wait in the outbox). */
  listening: boolean;
  /** Its device is open and its ring served. */
  ready: boolean;
  /** Memory ids bound in its ring, or why they could not be. */
  memories: Map<number, 'bound' | BackendError>;
  /** Kernel ids bound in its ring, asked to be built for a waiting batch, or why they could not be. */
  kernels: Map<number, 'requested' | 'bound' | BackendError>;
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

export class IsolatedDevice implements ComputeDevice {
  readonly info: DeviceInfo;
  /** Times the worker was replaced: resets asked for, and workers that died on their own. */
  resets = 0;
  readonly builder: KernelBuilder;
  readonly #options: IsolatedOptions;
  readonly #startLimitMs: number;
  readonly #submitAreaSize: number;
  readonly #native: NativeBinding;
  #worker: Worker | null = null;
  /** Messages for a worker that is not listening yet (the replay first, then new work). */
  #outbox: ToWorker[] = [];
  readonly #memories = new Map<number, { message: ToWorker; fd: number }>();
  /** Kernels to replay into a new worker (lazily: built when a batch needs them). */
  readonly #kernels = new Map<number, ToWorker>();
  /** Every batch submitted and not settled, by tag. */
  readonly #requests = new Map<number, RingRequest>();
  /** Batches submitted while no worker was ready: they go to the next one. */
  #waiting: RingRequest[] = [];
  /** Ids of memories and kernels (the ring's names for them: never reused). */
  #nextId = 1;
  /** Tags of batches (their names in the ring: 32 bits, wrapping; never one still in use). */
  #nextTag = 1;
  /** Kernels are named in the ring by their ids (checked in {@link submit}). */
  readonly #encoder = new BatchEncoder<unknown>((kernel) => (kernel as IsolatedKernel).id);
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
    this.#submitAreaSize = options.submitAreaSize ?? SUBMIT_AREA_SIZE;
    this.#native = loadNative();
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
    return this.#worker?.process.pid ?? null;
  }

  /** @internal The current worker's ring (tests corrupt it on purpose). */
  get ringMemory(): RingMemory | null {
    return this.#worker?.ring ?? null;
  }

  /** Memories and kernels bound in the current worker's ring (kernels are bound when built there). */
  get workerObjects(): { memories: number; kernels: number } {
    const w = this.#worker;
    let memories = 0;
    let kernels = 0;
    for (const [id, s] of w?.memories ?? []) if (s === 'bound' && this.#memories.has(id)) memories++;
    for (const [id, s] of w?.kernels ?? []) if (s === 'bound' && this.#kernels.has(id)) kernels++;
    return { memories, kernels };
  }

  #start(): void {
    const ring = RingMemory.create(this.#native, this.#submitAreaSize);
    // The ring's memfd and doorbells become the worker's descriptors 4, 5 and 6 (WORKER_RING_FDS).
    let child: ChildProcess;
    try {
      child = fork(WORKER, ['--parent', String(process.pid)], {
        serialization: 'advanced',
        stdio: ['ignore', 'inherit', 'pipe', 'ipc', ring.fd, ring.submitEvent, ring.completeEvent],
      });
    } catch (err) {
      ring.close();
      throw err;
    }
    // Its stderr (the host driver's lines) goes through the daemon's log, in its format.
    relayLines(child.stderr!, 'compute-worker', 'compute worker: ');
    lowerPriority(child, WORKER_NICE);
    let worker!: Worker;
    const client = new RingClient(this.#native, ring, this.#encoder, {
      gate: (r) => this.#gate(worker, r),
      onStarted: (r) => this.#clearWatchdog(r),
      onSettled: (r) => {
        this.#clearWatchdog(r);
        this.#requests.delete(r.tag);
      },
      onBroken: (message) => {
        warn(`compute worker ${child.pid}: ${message}`);
        this.reset('its submission ring broke');
      },
    });
    worker = { process: child, ring, client, listening: false, ready: false, memories: new Map(), kernels: new Map() };
    this.#worker = worker;
    if (this.#readyWait === null) {
      let resolve!: () => void;
      const promise = new Promise<void>((r) => (resolve = r));
      this.#readyWait = { promise, resolve };
    }
    // The worker must know the device and everything made on it before any new work.
    const o = this.#options;
    this.#outbox = [
      {
        t: 'open',
        ...(o.device !== undefined ? { device: o.device } : {}),
        ...(o.cpuTimestamps ? { cpuTimestamps: true } : {}),
      },
      ...[...this.#memories.values()].map((m) => m.message),
      ...this.#kernels.values(),
    ];
    child.on('message', (m: FromWorker) => this.#onMessage(worker, m));
    child.on('error', (err) => warn(`compute worker: ${err.message}`));
    child.on('exit', (code, signal) => this.#onExit(worker, code, signal));
  }

  /** Hand a control message to the worker now, or queue it until it listens. */
  #send(m: ToWorker): void {
    const w = this.#worker;
    if (w?.listening && w.process.connected && this.#outbox.length === 0) w.process.send(m);
    else this.#outbox.push(m);
  }

  #flushOutbox(w: Worker): void {
    for (const m of this.#outbox.splice(0)) w.process.send(m);
  }

  /** A batch for `w` to run: its watchdog starts (it must start within the start limit). */
  #deliver(w: Worker, r: RingRequest): void {
    // A batch waits in the worker only for its kernels to be built (each already built once in
    // the builder, within its time limit) and for the batches ahead of it: if it does not
    // start, the worker is stuck.
    r.watchdog = setTimeout(() => {
      r.watchdog = null;
      this.reset(`a batch did not start within ${this.#startLimitMs} ms`);
    }, this.#startLimitMs);
    w.client.submit(r);
  }

  #clearWatchdog(r: RingRequest): void {
    if (r.watchdog !== null) clearTimeout(r.watchdog);
    r.watchdog = null;
  }

  /**
   * Whether `r` may be written into `w`'s ring now: its memory and kernels must be bound there.
   * Kernels that are not are asked for (once), ahead of the worker's background builds.
   */
  #gate(w: Worker, r: RingRequest): boolean | Error {
    if (w !== this.#worker) return false;
    const m = w.memories.get(r.memory);
    if (m instanceof Error) return m;
    if (m === undefined && !this.#memories.has(r.memory)) {
      return new BackendError('ENOENT', -constants.errno.ENOENT, 'mdgpu_host_submit2', `memory ${r.memory} was destroyed`);
    }
    let wait = m !== 'bound';
    for (let i = 0; i < r.commands.length; i++) {
      const c = r.commands[i]!;
      if (c.kind !== 'dispatch') continue;
      const id = (c.kernel as IsolatedKernel).id;
      const k = w.kernels.get(id);
      if (k === 'bound') continue;
      if (k instanceof Error) return k;
      if (k === undefined) {
        if (!this.#kernels.has(id)) {
          // Destroyed after the batch was submitted, before it could be built here.
          return new BackendError('ENOENT', -constants.errno.ENOENT, 'mdgpu_host_submit2', `command ${i}: kernel ${id} was destroyed`);
        }
        w.kernels.set(id, 'requested');
        this.#send({ t: 'build', id });
      }
      wait = true;
    }
    return !wait;
  }

  #onMessage(w: Worker, m: FromWorker): void {
    if (w !== this.#worker) return;
    switch (m.t) {
      case 'listening':
        w.listening = true;
        this.#flushOutbox(w);
        return;
      case 'ready': {
        w.ready = true;
        this.#failedStarts = 0;
        this.#settleReady();
        // Batches that waited for a worker are this one's now, in order.
        const waiting = this.#waiting;
        this.#waiting = [];
        for (const r of waiting) this.#deliver(w, r);
        return;
      }
      case 'fatal':
        warn(`compute worker: cannot open the device: ${m.error.message}`);
        this.#broken = backendError(m.error);
        return;
      case 'problem':
        warn(`compute worker: ${m.message}`);
        return;
      case 'bound': {
        // An id forgotten meanwhile was released by the worker (forget) or will be: not ours. (The
        // daemon closes a released memory's file at once, so a worker that reaches the import only
        // after that fails to open it, and nobody needs it any more.)
        const known = m.kind === 'memory' ? this.#memories.has(m.id) : this.#kernels.has(m.id);
        if (!known) return;
        let state: 'bound' | BackendError = 'bound';
        if (m.error !== undefined) {
          warn(`compute worker: ${m.kind} ${m.id}: ${m.error.message}`);
          state = new BackendError(
            'EIO',
            -constants.errno.EIO,
            m.kind === 'memory' ? 'mdgpu_host_memory_import_fd' : 'mdgpu_host_kernel_create',
            `${m.kind} ${m.id} could not be made in the compute worker: ${m.error.message}`,
          );
        }
        if (m.kind === 'memory') w.memories.set(m.id, state);
        else w.kernels.set(m.id, state);
        w.client.flush();
        return;
      }
    }
  }

  #onExit(w: Worker, code: number | null, signal: NodeJS.Signals | null): void {
    if (w !== this.#worker) return;
    this.#worker = null;
    const how = signal !== null ? `killed by ${signal}` : `exit code ${code}`;
    // What completed before it died still counts (close reads the completions first). Whatever
    // else it had is gone, and nobody will say how it ended. A batch running when a worker dies
    // on its own (a driver crash) may be what killed it: its context is lost, as for a batch
    // past the time limit, so that one VM cannot crash the device over and over with the same
    // work. Batches submitted while no worker was ready are not touched: they go to the next.
    const lost = new ContextLostError(`The compute device was reset (worker ${how}); the batch did not complete`, 'device-reset');
    for (const r of w.client.close()) {
      this.#clearWatchdog(r);
      this.#requests.delete(r.tag);
      r.reject(lost);
    }
    if (this.#destroyed) {
      this.#settleReady();
      return;
    }
    if (!w.ready && ++this.#failedStarts >= MAX_FAILED_STARTS) {
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
      this.#waiting = [];
      this.#outbox = [];
      this.#settleReady();
      return;
    }
    this.resets++;
    info(`compute worker ${w.process.pid} ${how}; starting a new one (reset ${this.resets})`);
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
    w.process.kill('SIGKILL');
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
    const id = this.#newId();
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
    const id = this.#newId();
    const define = { t: 'kernel', id, spirv: spirv.slice(), options: structuredClone(options) } as const;
    this.#kernels.set(id, { ...define, eager: false });
    this.#send({ ...define, eager: true });
    return new IsolatedKernel(this, id, built);
  }

  /**
   * @internal Forget a memory or kernel (IsolatedMemory/IsolatedKernel.destroy). Bound in the
   * worker's ring, it is released there after the batches written before it; otherwise the
   * worker drops it (or what its build makes).
   */
  release(kind: 'memory' | 'kernel', id: number): void {
    if (kind === 'memory') {
      const m = this.#memories.get(id);
      if (m === undefined) return;
      this.#memories.delete(id);
      fs.closeSync(m.fd);
    } else if (!this.#kernels.delete(id)) {
      return;
    }
    // Batches submitted before and still waiting here were checked against the id's state: a
    // bound one stays marked bound for them (ids are never reused), and its RELEASE goes behind.
    const w = this.#worker;
    const states = kind === 'memory' ? w?.memories : w?.kernels;
    if (w !== null && states?.get(id) === 'bound') {
      w.client.release(kind === 'memory' ? RingKind.Memory : RingKind.Kernel, id);
    } else {
      states?.delete(id);
      this.#send({ t: 'forget', kind, id });
    }
  }

  /** A new memory or kernel id. They are 32 bits in the ring and must never name two objects. */
  #newId(): number {
    if (this.#nextId > 0xffff_ffff) throw new BackendError('ENOSPC', -constants.errno.ENOSPC, 'mdgpu_host_ring_bind', 'no memory or kernel ids left');
    return this.#nextId++;
  }

  #alive(call: string): void {
    if (this.#destroyed) throw new BackendError('ENOENT', -constants.errno.ENOENT, call, `Host driver ${call}: the device is destroyed`);
    if (this.#broken !== null) throw this.#broken;
  }

  submit(memory: BackendMemory, commands: readonly Command[], hooks?: SubmitHooks): Promise<SubmissionStatus> {
    try {
      this.#alive('mdgpu_host_submit');
      if (!(memory instanceof IsolatedMemory) || memory.device !== this) throw new TypeError('submit: the memory is not memory of this device');
      if (!Array.isArray(commands)) throw new TypeError('submit: commands must be an array');
      if (memory.destroyed) throw new BackendError('ENOENT', -constants.errno.ENOENT, 'mdgpu_host_submit2', `memory ${memory.id} is destroyed`);
      for (let i = 0; i < commands.length; i++) {
        const c = commands[i];
        if (c?.kind !== 'dispatch') continue;
        if (!(c.kernel instanceof IsolatedKernel) || c.kernel.device !== this)
          throw new TypeError(`submit: command ${i}: the kernel is not a kernel of this device`);
        if (c.kernel.destroyed)
          throw new BackendError('ENOENT', -constants.errno.ENOENT, 'mdgpu_host_submit2', `command ${i}: kernel ${c.kernel.id} is destroyed`);
      }
      const r = ringRequest(this.#tag(), memory.id, commands, hooks, this.#encoder, this.#submitAreaSize);
      this.#requests.set(r.tag, r);
      const w = this.#worker;
      if (w?.ready === true) this.#deliver(w, r);
      else this.#waiting.push(r);
      return r.promise;
    } catch (err) {
      return Promise.reject(err as Error);
    }
  }

  /** The next free batch tag. */
  #tag(): number {
    do this.#nextTag = this.#nextTag >= 0xffff_ffff ? 1 : this.#nextTag + 1;
    while (this.#requests.has(this.#nextTag));
    return this.#nextTag;
  }

  /** Wait for pending batches, then end the worker and builder and release everything. Idempotent. */
  destroy(): Promise<void> {
    this.#destroying ??= (async () => {
      this.#destroyed = true;
      await Promise.allSettled([...this.#requests.values()].map((r) => r.promise));
      await this.builder.destroy();
      const w = this.#worker;
      const p = w?.process;
      if (p !== undefined && p.exitCode === null && p.signalCode === null) {
        const exited = new Promise<void>((resolve) => p.once('exit', () => resolve()));
        // A worker that is not listening yet would never read the request: it has nothing to
        // finish either.
        if (w!.listening && p.connected) p.send({ t: 'exit' } satisfies ToWorker);
        else p.kill('SIGKILL');
        // An orderly exit takes milliseconds; do not wait for one forever.
        const timer = setTimeout(() => p.kill('SIGKILL'), 5000);
        await exited;
        clearTimeout(timer);
      }
      w?.client.close();
      this.#worker = null;
      for (const m of this.#memories.values()) fs.closeSync(m.fd);
      this.#memories.clear();
      this.#kernels.clear();
    })();
    return this.#destroying;
  }
}
