/**
 * The `struct vfio_user_region_access` layout shared by VFIO_USER_REGION_READ
 * (9) and VFIO_USER_REGION_WRITE (10); see `region-read.ts`/`region-write.ts`.
 *
 * @module
 */

import { struct, u32, u64 } from '../wire.js';
import type { RegionBounds } from './checks.js';

/** `struct vfio_user_region_access` without its data: 16 bytes. */
export const RegionAccessLayout = struct('vfio_user_region_access', {
  /** Offset within the region, bytes. */
  offset: u64,
  /** Region index. */
  region: u32,
  /** Data bytes transferred. */
  count: u32,
});

/** The fixed part of a region access: where and how many bytes. */
export type RegionAccess = ReturnType<typeof RegionAccessLayout.decode>;

/** Limits for decoding region access requests (server side). */
export interface RegionAccessLimits {
  /** Largest `count` in bytes: our advertised max_data_xfer_size. */
  maxDataXferSize: number;
  /** The device's regions; when given, index and `offset + count` are checked against them. */
  regions?: RegionBounds;
}

/** Limits for decoding region access replies (client side). */
export interface RegionAccessReplyLimits {
  /** Largest `count` in bytes. */
  maxDataXferSize: number;
  /** `count` of the request this answers; the reply may not carry more (QEMU: E2BIG). */
  requestCount?: number;
}
