/**
 * Kernel builds in a process of their own, under a time and a memory limit.
 *
 * A guest hands mdgpu SPIR-V, and checking it is not cheap: SPIRV-Tools' validator and the
 * driver's compiler can be driven into exponential work by a few kilobytes (a push-constant
 * block of structs nested 16 deep took 50 s), and a driver may crash on input its validator
 * let through. Done in the daemon, that would stop every VM's traps and queues; done in the
 * compute worker, a crash would cost the batch of whichever VM was running. So every build is
 * tried here first: this process opens the same device, validates and compiles the kernel
 * exactly as the compute worker will, and throws the result away. A build that runs past the
 * time limit gets the process killed; one that exceeds the data-size limit (RLIMIT_DATA, set
 * by the shell that starts the process) or crashes the driver kills it by itself; either way
 * the build fails, a new process takes the next one, and the VM that asked is told why (the
 * caller counts such failures against it, see src/sched/strikes.ts).
 *
 * Builds run one at a time, taken round-robin across owners (vGPUs), so one VM's stream of
 * slow builds delays another VM's build by at most one time limit; each owner may have only
 * a few builds waiting.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { constants } from 'node:os';
import { fileURLToPath } from 'node:url';
import { CancelledError } from '../execution-errors.js';
import { info, warn } from '../log.js';
import { KernelBuildError, type KernelOptions } from './backend.js';
import type { BuiltKernelInfo, FromBuilder, ToBuilder } from './kernel-builder-protocol.js';
import { lowerPriority } from './priority.js';

const BUILDER = fileURLToPath(new URL('./kernel-builder-worker.js', import.meta.url));
/** A builder that dies this many times in a row before it is ready means the device is unusable. */
const MAX_FAILED_STARTS = 3;

export const DEFAULT_BUILD_TIME_LIMIT_MS = 10_000;
/** RLIMIT_DATA of the builder: heap, anonymous mappings, the driver's compiler. */
export const DEFAULT_BUILD_MEMORY_LIMIT = 2 * 1024 ** 3;
export const DEFAULT_MAX_PENDING_BUILDS = 8;
const BUILDER_NICE = 10;

export interface KernelBuilderOptions {
  /** Which device (see HostDevice.open): the same one batches run on. */
  device?: string;
  /** Longest one build may take, ms. */
  timeLimitMs?: number;
  /** Data-size limit of the builder process, bytes. */
  memoryLimitBytes?: number;
  /** Builds one owner may have waiting or running at once. */
  maxPendingPerOwner?: number;
}

interface Build {
  id: number;
  owner: string;
  spirv: Uint32Array;
  options: KernelOptions;
  resolve: (info: BuiltKernelInfo) => void;
  reject: (err: Error) => void;
}

export interface KernelBuilderStats {
  built: number;
  refused: number;
  timeouts: number;
  crashes: number;
  /** Builder processes started after the first. */
  restarts: number;
}

export class KernelBuilder {
  readonly stats: KernelBuilderStats = { built: 0, refused: 0, timeouts: 0, crashes: 0, restarts: 0 };
  readonly timeLimitMs: number;
  readonly memoryLimitBytes: number;
  readonly maxPendingPerOwner: number;
  readonly #device: string | undefined;
  #child: ChildProcess | null = null;
  #listening = false;
  #ready = false;
  #current: Build | null = null;
  #timer: NodeJS.Timeout | null = null;
  /** Waiting builds by owner; owners in the order they are served (round robin). */
  readonly #queues = new Map<string, Build[]>();
  #nextId = 1;
  #failedStarts = 0;
  #broken: string | null = null;
  #destroyed = false;

  constructor(options: KernelBuilderOptions = {}) {
    this.#device = options.device;
    this.timeLimitMs = options.timeLimitMs ?? DEFAULT_BUILD_TIME_LIMIT_MS;
    this.memoryLimitBytes = options.memoryLimitBytes ?? DEFAULT_BUILD_MEMORY_LIMIT;
    this.maxPendingPerOwner = options.maxPendingPerOwner ?? DEFAULT_MAX_PENDING_BUILDS;
  }

  /** The builder's process id, while one runs. */
  get pid(): number | null {
    return this.#child?.pid ?? null;
  }

  /** Builds waiting or running for `owner`. */
  pending(owner: string): number {
    return (this.#queues.get(owner)?.length ?? 0) + (this.#current?.owner === owner ? 1 : 0);
  }

  /** Validate and compile `spirv` in the builder; resolves, with what it declares, when it would build on the device. */
  build(owner: string, spirv: Uint32Array, options: KernelOptions): Promise<BuiltKernelInfo> {
    if (this.#destroyed || this.#broken !== null) {
      return Promise.reject(new KernelBuildError('unavailable', 'EIO', -constants.errno.EIO, `Kernel builder unavailable: ${this.#broken ?? 'destroyed'}`));
    }
    if (this.pending(owner) >= this.maxPendingPerOwner) {
      return Promise.reject(
        new KernelBuildError('busy', 'EBUSY', -constants.errno.EBUSY, `${owner} already has ${this.maxPendingPerOwner} kernel builds in progress`),
      );
    }
    return new Promise<BuiltKernelInfo>((resolve, reject) => {
      const queue = this.#queues.get(owner) ?? [];
      if (queue.length === 0) this.#queues.set(owner, queue);
      queue.push({ id: this.#nextId++, owner, spirv: spirv.slice(), options: structuredClone(options), resolve, reject });
      this.#pump();
    });
  }

  /** Start the builder process now rather than at the first build (it takes a moment to open the device). */
  start(): void {
    if (this.#child === null && !this.#destroyed && this.#broken === null) this.#start();
  }

  /** Withdraw the builds `owner` has waiting (its VM went away or was reset); a running one finishes. */
  cancel(owner: string): void {
    const queue = this.#queues.get(owner);
    if (queue === undefined) return;
    this.#queues.delete(owner);
    for (const b of queue) b.reject(new CancelledError('Kernel build withdrawn'));
  }

  #start(): void {
    const limitKiB = Math.ceil(this.memoryLimitBytes / 1024);
    // The shell sets the limit and becomes the builder (exec), keeping the IPC descriptor.
    const child = spawn('/bin/sh', ['-c', `ulimit -d ${limitKiB} && exec "$0" "$@"`, process.execPath, BUILDER], {
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
      serialization: 'advanced',
      env: { ...process.env, MDGPU_HOST_LOG: 'quiet' },
    });
    this.#child = child;
    this.#listening = false;
    this.#ready = false;
    // Builds are background work: below the daemon and the compute worker.
    lowerPriority(child, BUILDER_NICE);
    child.on('message', (m: FromBuilder) => this.#onMessage(child, m));
    child.on('error', (err) => warn(`kernel builder: ${err.message}`));
    child.on('exit', (code, signal) => this.#onExit(child, code, signal));
  }

  #onMessage(child: ChildProcess, m: FromBuilder): void {
    if (child !== this.#child) return;
    switch (m.t) {
      case 'listening':
        this.#listening = true;
        child.send({ t: 'open', ...(this.#device !== undefined ? { device: this.#device } : {}) } satisfies ToBuilder);
        return;
      case 'ready':
        this.#ready = true;
        this.#failedStarts = 0;
        this.#pump();
        return;
      case 'fatal':
        this.#broken = `cannot open the device: ${m.message}`;
        return;
      case 'built':
      case 'refused': {
        const b = this.#current;
        if (b === null || b.id !== m.id) return;
        this.#finish();
        if (m.t === 'built') {
          this.stats.built++;
          b.resolve(m.info);
        } else {
          this.stats.refused++;
          const errno = -(constants.errno[m.code as keyof typeof constants.errno] ?? constants.errno.EINVAL);
          b.reject(new KernelBuildError('invalid', m.code, errno, m.message));
        }
        this.#pump();
      }
    }
  }

  #finish(): void {
    if (this.#timer !== null) clearTimeout(this.#timer);
    this.#timer = null;
    this.#current = null;
  }

  #onExit(child: ChildProcess, code: number | null, signal: NodeJS.Signals | null): void {
    if (child !== this.#child) return;
    this.#child = null;
    const how = signal !== null ? `killed by ${signal}` : `exit code ${code}`;
    const b = this.#current;
    if (b !== null) {
      // It died while building this kernel: the kernel's fault (a driver crash, or the memory
      // limit reached). A timeout has already failed the build before killing the process.
      this.#finish();
      this.stats.crashes++;
      b.reject(new KernelBuildError('crash', 'EIO', -constants.errno.EIO, `Kernel build crashed the builder process (${how})`));
    }
    if (this.#destroyed) return;
    if (!this.#ready && ++this.#failedStarts >= MAX_FAILED_STARTS)
      this.#broken ??= `the builder process failed ${MAX_FAILED_STARTS} times before it was ready (${how})`;
    if (this.#broken !== null) {
      warn(`kernel builder: ${this.#broken}; kernels cannot be built`);
      for (const queue of this.#queues.values()) {
        for (const q of queue) q.reject(new KernelBuildError('unavailable', 'EIO', -constants.errno.EIO, `Kernel builder unavailable: ${this.#broken}`));
      }
      this.#queues.clear();
      return;
    }
    this.stats.restarts++;
    info(`kernel builder ${child.pid} ${how}; starting a new one`);
    this.#pump();
  }

  /** Take the next owner's next build, round robin, when the builder is free. */
  #pump(): void {
    if (this.#destroyed || this.#current !== null || this.#queues.size === 0) return;
    if (this.#child === null) {
      this.#start();
      return;
    }
    if (!this.#ready || !this.#listening) return;
    const [owner, queue] = this.#queues.entries().next().value as [string, Build[]];
    const b = queue.shift()!;
    // Served: this owner goes to the back of the line.
    this.#queues.delete(owner);
    if (queue.length > 0) this.#queues.set(owner, queue);
    this.#current = b;
    const child = this.#child;
    this.#timer = setTimeout(() => {
      // Timers run before the poll phase: a reply that arrived while the event loop was busy
      // would be read only after this callback. Look once more after it (setImmediate runs
      // after the poll phase) so a build that finished in time is never counted as a timeout.
      setImmediate(() => this.#timeOut(b, child));
    }, this.timeLimitMs);
    child.send({ t: 'build', id: b.id, spirv: b.spirv, options: b.options } satisfies ToBuilder);
  }

  #timeOut(b: Build, child: ChildProcess): void {
    if (this.#current !== b) return;
    this.#finish();
    this.stats.timeouts++;
    b.reject(new KernelBuildError('timeout', 'ETIMEDOUT', -constants.errno.ETIMEDOUT, `Kernel build took longer than ${this.timeLimitMs} ms`));
    // Forget the process now (its exit is no news) so the next build goes to a new one.
    this.#child = null;
    child.kill('SIGKILL');
    this.stats.restarts++;
    this.#pump();
  }

  /** Stop the builder; waiting builds fail. */
  async destroy(): Promise<void> {
    if (this.#destroyed) return;
    this.#destroyed = true;
    const b = this.#current;
    this.#finish();
    b?.reject(new CancelledError('Kernel builder destroyed'));
    for (const queue of this.#queues.values()) for (const q of queue) q.reject(new CancelledError('Kernel builder destroyed'));
    this.#queues.clear();
    const child = this.#child;
    this.#child = null;
    if (child !== null && child.exitCode === null && child.signalCode === null) {
      const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
      child.kill('SIGKILL');
      await exited;
    }
  }
}
