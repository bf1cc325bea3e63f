/**
 * VFIO_USER_REGION_READ (9), client → server.
 *
 * Request payload (bytes after the 16-byte header), 16 bytes:
 * `offset u64 @0, region u32 @8, count u32 @12`.
 * Reply payload: the same 16 bytes, then `count` bytes of data (device byte
 * order, i.e. little-endian for PCI).
 *
 * @module
 */

import { ProtocolError } from '../errors.js';
import { concatBytes } from '../wire.js';
import { checkRegionAccess, checkXferSize, expectLength, expectMinLength } from './checks.js';
import { RegionAccessLayout, type RegionAccess, type RegionAccessLimits, type RegionAccessReplyLimits } from './region-access.js';

/** A REGION_READ request: read `count` bytes at `offset` of region `region`. */
export type RegionReadRequest = RegionAccess;

/** A REGION_READ reply: the data read (count = data.length). */
export interface RegionReadReply {
  offset: bigint;
  region: number;
  /** The bytes read; decoding returns a view into the payload. */
  data: Uint8Array;
}

/** Encode a request payload (16 bytes). */
export function encodeRegionReadRequest(request: RegionReadRequest): Uint8Array {
  return RegionAccessLayout.encode(request);
}

/**
 * Decode a request payload, in libvfio-user's order: exactly 16 bytes;
 * count ≤ maxDataXferSize; region < numRegions; offset + count ≤ region size
 * (bigint, no 2^64 wrap-around).
 * @throws {ProtocolError} EINVAL
 */
export function decodeRegionReadRequest(payload: Uint8Array, limits: RegionAccessLimits): RegionReadRequest {
  expectLength('REGION_READ', payload, RegionAccessLayout.size);
  const request = RegionAccessLayout.decode(payload);
  checkXferSize('REGION_READ count', request.count, limits.maxDataXferSize);
  checkRegionAccess(request.region, request.offset, request.count, limits.regions);
  return request;
}

/** Encode a reply payload: 16 bytes + data. */
export function encodeRegionReadReply(reply: RegionReadReply): Uint8Array {
  return concatBytes([RegionAccessLayout.encode({ offset: reply.offset, region: reply.region, count: reply.data.length }), reply.data]);
}

/**
 * Decode a reply payload: at least 16 bytes; count ≤ maxDataXferSize and ≤
 * the requested count (E2BIG, as QEMU); exactly `count` data bytes follow.
 * @throws {ProtocolError} EINVAL, or E2BIG for more data than requested
 */
export function decodeRegionReadReply(payload: Uint8Array, limits: RegionAccessReplyLimits): RegionReadReply {
  expectMinLength('REGION_READ reply', payload, RegionAccessLayout.size);
  const reply = RegionAccessLayout.decode(payload);
  checkXferSize('REGION_READ reply count', reply.count, limits.maxDataXferSize);
  if (limits.requestCount !== undefined && reply.count > limits.requestCount) {
    throw new ProtocolError('E2BIG', `REGION_READ reply larger than requested: ${reply.count} > ${limits.requestCount} bytes`);
  }
  expectLength('REGION_READ reply', payload, RegionAccessLayout.size + reply.count);
  return { offset: reply.offset, region: reply.region, data: payload.subarray(RegionAccessLayout.size) };
}
