/**
 * Messages between the daemon and its compute worker process (src/backend/isolated.ts and
 * isolated-worker.ts), over Node's IPC channel with the "advanced" serialization (structured
 * clone: typed arrays and bigints pass as they are). Memories and kernels are named by ids the
 * daemon chooses, so the same ids stay valid when a new worker replaces a killed one.
 */
import type { DeviceCommand } from '../device-commands.js';
import type { DeviceInfo, KernelOptions, SubmissionStatus } from './backend.js';

/** A command of a batch, its kernel named by id (the batch's memory is named once per batch). */
export type WireCommand = DeviceCommand<number>;

/** Daemon → worker. */
export type ToWorker =
  | { t: 'open'; device?: string; cpuTimestamps?: boolean }
  /** Import `size` bytes at `offset` of the file at `path` (the daemon's /proc/<pid>/fd/<n>). */
  | { t: 'import'; id: number; path: string; offset: number; size: number; staged: boolean }
  /**
   * A kernel the builder process has already validated and compiled. `eager`: build it now, in
   * the background; otherwise (a replay after a reset) only when a batch needs it, so a reset
   * does not make every VM wait for every other VM's kernels.
   */
  | { t: 'kernel'; id: number; spirv: Uint32Array; options: KernelOptions; eager: boolean }
  | { t: 'destroyMemory'; id: number }
  | { t: 'destroyKernel'; id: number }
  | { t: 'submit'; req: number; memory: number; commands: WireCommand[] }
  | { t: 'exit' };

/** A failure as the worker saw it (a BackendError's fields, or a plain message). */
export interface WireError {
  code: string;
  errno: number;
  call: string;
  message: string;
}

/** Worker → daemon. */
export type FromWorker =
  /** The worker listens: messages sent before this could be lost. */
  | { t: 'listening' }
  /** The device is open and the memories replayed before it are imported. */
  | { t: 'ready'; info: DeviceInfo }
  /** The device could not be opened: the worker exits. */
  | { t: 'fatal'; error: WireError }
  /** A batch's kernels are built and its work is on the device now: its time limit starts. */
  | { t: 'started'; req: number }
  | { t: 'done'; req: number; status: SubmissionStatus }
  | { t: 'failed'; req: number; error: WireError }
  /**
   * An import or kernel the daemon had already checked failed in the worker. `memory`: the
   * import's id (an import the daemon released meanwhile fails harmlessly: its file is closed).
   */
  | { t: 'problem'; message: string; memory?: number };
