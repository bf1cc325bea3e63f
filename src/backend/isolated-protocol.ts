/**
 * The control path between the daemon and its compute worker process (src/backend/isolated.ts
 * and isolated-worker.ts), over Node's IPC channel with the "advanced" serialization
 * (structured clone: typed arrays pass as they are). Batches do not travel here: they go
 * through the submission ring (ring.ts), straight to the host driver's ring service in the
 * worker. What travels here is rare and large or slow: opening the device, importing memory,
 * building kernels, forgetting them, exiting.
 *
 * Memories and kernels are named by ids the daemon chooses, the same ids the ring's records
 * carry, so that they stay valid when a new worker replaces a killed one (the new one imports
 * and builds again under the same ids).
 */
import type { DeviceInfo, KernelOptions } from './backend.js';

/** The worker's descriptors of the ring (its stdio slots 4, 5 and 6, inherited at fork). */
export const WORKER_RING_FDS = { fd: 4, submitEvent: 5, completeEvent: 6 } as const;

/** Daemon → worker. */
export type ToWorker =
  /** Open the device and serve the ring: `waitSliceNs` as the ring service's (ns, 0: its default). */
  | { t: 'open'; device?: string; cpuTimestamps?: boolean; waitSliceNs?: number }
  /** Import `size` bytes at `offset` of the file at `path` (the daemon's /proc/<pid>/fd/<n>) and bind it to `id`. */
  | { t: 'import'; id: number; path: string; offset: number; size: number; staged: boolean }
  /**
   * A kernel the builder process has already validated and compiled. `eager`: build it now, in
   * the background; otherwise (a replay after a reset) only when asked to (`build`), so a reset
   * does not make every VM wait for every other VM's kernels.
   */
  | { t: 'kernel'; id: number; spirv: Uint32Array; options: KernelOptions; eager: boolean }
  /** A batch needs this kernel: build it before any other. */
  | { t: 'build'; id: number }
  /**
   * Forget an id the daemon has not seen bound (see `bound`): drop its definition, destroy
   * what it is bound to, or what its build will make. An id the daemon has seen bound is
   * released through the ring instead, after the batches written before.
   */
  | { t: 'forget'; kind: 'memory' | 'kernel'; id: number }
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
  /** The device is open and its ring service runs. */
  | { t: 'ready'; info: DeviceInfo }
  /** The device could not be opened: the worker exits. */
  | { t: 'fatal'; error: WireError }
  /** `id` is bound in the ring now (batches may name it), or could not be made (`error`). */
  | { t: 'bound'; kind: 'memory' | 'kernel'; id: number; error?: WireError }
  /** Something the daemon should log. */
  | { t: 'problem'; message: string };
