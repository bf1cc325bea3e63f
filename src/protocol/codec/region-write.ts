/**
 * VFIO_USER_REGION_WRITE (10), client → server.
 *
 * Request payload (bytes after the 16-byte header): `offset u64 @0,
 * region u32 @8, count u32 @12`, then exactly `count` bytes of data.
 * Reply payload: the same 16 bytes without data. A request with NO_REPLY
 * (posted write) must not be answered.
 *
 * @module
 */

import { invalid } from '../errors.js';
import { concatBytes } from '../wire.js';
import { checkRegionAccess, checkXferSize, expectLength, expectMinLength } from './checks.js';
import { RegionAccessLayout, type RegionAccess, type RegionAccessLimits, type RegionAccessReplyLimits } from './region-access.js';

/** A REGION_WRITE request: write `data` at `offset` of region `region` (count = data.length). */
export interface RegionWriteRequest {
  offset: bigint;
  region: number;
  /** The bytes to write; decoding returns a view into the payload. */
  data: Uint8Array;
}

/** A REGION_WRITE reply: where and how many bytes were written. */
export type RegionWriteReply = RegionAccess;

/** Encode a request payload: 16 bytes + data. */
export function encodeRegionWriteRequest(request: RegionWriteRequest): Uint8Array {
  return concatBytes([RegionAccessLayout.encode({ offset: request.offset, region: request.region, count: request.data.length }), request.data]);
}

/**
 * Decode a request payload, in libvfio-user's order: at least 16 bytes;
 * count ≤ maxDataXferSize; exactly `count` data bytes; region <
 * numRegions; offset + count ≤ region size (bigint, no 2^64 wrap-around).
 * @throws {ProtocolError} EINVAL
 */
export function decodeRegionWriteRequest(payload: Uint8Array, limits: RegionAccessLimits): RegionWriteRequest {
  expectMinLength('REGION_WRITE', payload, RegionAccessLayout.size);
  const request = RegionAccessLayout.decode(payload);
  checkXferSize('REGION_WRITE count', request.count, limits.maxDataXferSize);
  expectLength('REGION_WRITE', payload, RegionAccessLayout.size + request.count);
  checkRegionAccess(request.region, request.offset, request.count, limits.regions);
  return { offset: request.offset, region: request.region, data: payload.subarray(RegionAccessLayout.size) };
}

/** Encode a reply payload (16 bytes, no data). */
export function encodeRegionWriteReply(reply: RegionWriteReply): Uint8Array {
  return RegionAccessLayout.encode(reply);
}

/**
 * Decode a reply payload: exactly 16 bytes; count ≤ maxDataXferSize and, if
 * known, equal to the requested count (a short write is an error).
 * @throws {ProtocolError} EINVAL
 */
export function decodeRegionWriteReply(payload: Uint8Array, limits: RegionAccessReplyLimits): RegionWriteReply {
  expectLength('REGION_WRITE reply', payload, RegionAccessLayout.size);
  const reply = RegionAccessLayout.decode(payload);
  checkXferSize('REGION_WRITE reply count', reply.count, limits.maxDataXferSize);
  if (limits.requestCount !== undefined && reply.count !== limits.requestCount) {
    throw invalid(`REGION_WRITE reply count mismatch: ${reply.count} != ${limits.requestCount}`);
  }
  return reply;
}
