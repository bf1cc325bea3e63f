/**
 * The `struct vfio_user_dma_region_access` layout shared by
 * VFIO_USER_DMA_READ (11) and VFIO_USER_DMA_WRITE (12); see
 * `dma-read.ts`/`dma-write.ts`.
 *
 * `count` is 8 bytes in requests and in both replies: QEMU 11.1.3's
 * `VFIOUserDMARW {u64 offset; u64 count; data[]}` and the wire agree, while an
 * older spec text showed a 4-byte count in the DMA_WRITE reply.
 *
 * @module
 */

import { invalid } from '../errors.js';
import { struct, u64 } from '../wire.js';
import { checkNoWrap, checkXferSize, toNumber } from './checks.js';

/** `struct vfio_user_dma_region_access` without its data: 16 bytes. */
export const DmaAccessLayout = struct('vfio_user_dma_region_access', {
  /** Client DMA address (IOVA). */
  address: u64,
  /** Data bytes transferred. */
  count: u64,
});

/** Where and how many bytes, with `count` narrowed to a number after its range check. */
export interface DmaAccess {
  address: bigint;
  /** Bytes, ≤ the max data transfer size. */
  count: number;
}

/** Limits for decoding DMA_READ/DMA_WRITE messages. */
export interface DmaAccessLimits {
  /** Largest `count` in bytes (QEMU uses the server's max_data_xfer_size and answers E2BIG beyond it). */
  maxDataXferSize: number;
  /** For replies: `count` of the request this answers; a short transfer is an error. */
  requestCount?: number;
}

/** Decode and check the fixed part: count ≤ maxDataXferSize (E2BIG), no 2^64 wrap-around (EINVAL). */
export function decodeDmaAccess(what: string, payload: Uint8Array, limits: DmaAccessLimits): DmaAccess {
  const access = DmaAccessLayout.decode(payload);
  checkXferSize(`${what} count`, access.count, limits.maxDataXferSize, 'E2BIG');
  checkNoWrap(`${what} range`, access.address, access.count);
  const count = toNumber(access.count);
  if (limits.requestCount !== undefined && count !== limits.requestCount) {
    throw invalid(`${what} count mismatch: ${count} != ${limits.requestCount}`);
  }
  return { address: access.address, count };
}
