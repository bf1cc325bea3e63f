/**
 * Messages between the daemon and its kernel builder process (kernel-builder.ts and
 * kernel-builder-worker.ts), over Node's IPC channel with the "advanced" serialization.
 */

/** Daemon → builder. */
export type ToBuilder = { t: 'open'; device?: string } | { t: 'build'; id: number; spirv: Uint32Array; bindings: number; pushConstantSize: number };

/** Builder → daemon. */
export type FromBuilder =
  /** The builder listens: messages sent before this could be lost. */
  | { t: 'listening' }
  | { t: 'ready' }
  /** The device could not be opened: the builder exits. */
  | { t: 'fatal'; message: string }
  | { t: 'built'; id: number }
  /** Refused by validation or by the driver: `code` is the errno name. */
  | { t: 'refused'; id: number; code: string; message: string };
