/**
 * The `struct vfio_user_mig_data` layout shared by VFIO_USER_MIG_DATA_READ
 * (17) and VFIO_USER_MIG_DATA_WRITE (18); see `mig-data-read.ts` and
 * `mig-data-write.ts`. Neither is sent by QEMU 11.1.3.
 *
 * @module
 */

import { struct, u32 } from '../wire.js';

/** `struct vfio_user_mig_data` without its data: 8 bytes. */
export const MigDataLayout = struct('vfio_user_mig_data', {
  argsz: u32,
  /** Data bytes (requested, returned or written). */
  size: u32,
});

/** Limits for decoding MIG_DATA_READ/WRITE. */
export interface MigDataLimits {
  /** Largest `size` in bytes: the peer's max_data_xfer_size. */
  maxDataXferSize: number;
  /** For a MIG_DATA_READ reply: the requested size; the reply may be shorter (end of data), never longer. */
  requestSize?: number;
}
