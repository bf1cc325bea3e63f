/**
 * Messages between the daemon and its kernel builder process (kernel-builder.ts and
 * kernel-builder-worker.ts), over Node's IPC channel with the "advanced" serialization.
 */
import type { KernelOptions } from './backend.js';
import type { KernelBinding } from '../device-commands.js';

/** What a built kernel declares, as the builder found it. */
export interface BuiltKernelInfo {
  layout: KernelBinding[];
  localSize: [number, number, number];
  pushConstantSize: number;
  dispatchBase: boolean;
  splittable: boolean;
}

/** Daemon → builder. */
export type ToBuilder = { t: 'open'; device?: string } | { t: 'build'; id: number; spirv: Uint32Array; options: KernelOptions };

/** Builder → daemon. */
export type FromBuilder =
  /** The builder listens: messages sent before this could be lost. */
  | { t: 'listening' }
  | { t: 'ready' }
  /** The device could not be opened: the builder exits. */
  | { t: 'fatal'; message: string }
  | { t: 'built'; id: number; info: BuiltKernelInfo }
  /** Refused by validation or by the driver: `code` is the errno name. */
  | { t: 'refused'; id: number; code: string; message: string };
