/**
 * Validation helpers shared by the codecs. Each throws a {@link ProtocolError}
 * (EINVAL unless stated) with a denoland/std style message.
 *
 * @module
 */

import { ProtocolError, hex, invalid } from '../errors.js';
import { U64_MAX } from '../wire.js';

/** A zero-length payload (header-only messages). */
export const EMPTY: Uint8Array = new Uint8Array(0);

/** Sizes and count of a device's regions, for bounds checks while decoding. */
export interface RegionBounds {
  /** Number of regions the device exposes (`num_regions` of DEVICE_GET_INFO). */
  readonly numRegions: number;
  /** Size in bytes of region `index` (0 ≤ index < numRegions); 0 for an unimplemented region. */
  regionSize(index: number): bigint;
}

/** The payload must be exactly `expected` bytes. */
export function expectLength(what: string, payload: Uint8Array, expected: number): void {
  if (payload.length !== expected) {
    throw invalid(`Invalid ${what} payload size: need ${expected} bytes, have ${payload.length}`);
  }
}

/** The payload must be at least `min` bytes. */
export function expectMinLength(what: string, payload: Uint8Array, min: number): void {
  if (payload.length < min) {
    throw invalid(`Invalid ${what} payload size: need at least ${min} bytes, have ${payload.length}`);
  }
}

/** `argsz` must be at least `min` (and at most `max` if given). */
export function checkArgsz(what: string, argsz: number, min: number, max?: number): void {
  if (argsz < min) {
    throw invalid(`Invalid ${what} argsz: ${argsz} < ${min}`);
  }
  if (max !== undefined && argsz > max) {
    throw invalid(`Invalid ${what} argsz: ${argsz} > ${max}`);
  }
}

/** No bits outside `known` may be set. */
export function checkFlags(what: string, flags: number, known: number): void {
  const unknown = (flags & ~known) >>> 0;
  if (unknown !== 0) {
    throw invalid(`Unknown ${what} flags: ${hex(unknown)} in ${hex(flags >>> 0)}`);
  }
}

/** A field the spec says must be zero. */
export function checkZero(what: string, value: number | bigint): void {
  if (value !== 0 && value !== 0n) {
    throw invalid(`Reserved field must be zero: ${what} is ${hex(value)}`);
  }
}

/** `index` must be below `count` when `count` is known. */
export function checkIndex(what: string, index: number, count: number | undefined): void {
  if (count !== undefined && index >= count) {
    throw invalid(`Invalid ${what} index: ${index} >= ${count}`);
  }
}

/** `start + length` must not pass 2^64 (the end of a 64-bit address space). */
export function checkNoWrap(what: string, start: bigint, length: bigint): void {
  if (start + length > U64_MAX + 1n) {
    throw invalid(`${what} wraps around 2^64: ${hex(start)}+${hex(length)}`);
  }
}

/** A data size (`what`, e.g. `REGION_READ count`) must not exceed the negotiated maximum, bytes. */
export function checkXferSize(what: string, count: number | bigint, max: number, errnoName: 'EINVAL' | 'E2BIG' = 'EINVAL'): void {
  if (BigInt(count) > BigInt(max)) {
    throw new ProtocolError(errnoName, `${what} too large: ${count} > ${max}`);
  }
}

/**
 * Region access bounds in libvfio-user's order: index, then
 * `offset + count <= size` in bigint (no 2^64 wrap-around).
 */
export function checkRegionAccess(region: number, offset: bigint, count: number, regions: RegionBounds | undefined): void {
  checkNoWrap('Region access', offset, BigInt(count));
  if (regions === undefined) return;
  checkIndex('region', region, regions.numRegions);
  const size = regions.regionSize(region);
  if (offset + BigInt(count) > size) {
    throw invalid(`Region access out of bounds: region ${region}, ${hex(offset)}+${count} > ${hex(size)}`);
  }
}

/** True if `value` is a power of two (and not zero). */
export function isPowerOfTwo(value: bigint): boolean {
  return value > 0n && (value & (value - 1n)) === 0n;
}

/** Narrow a u64 that was already range-checked to a safe integer number. */
export function toNumber(value: bigint): number {
  if (value > BigInt(Number.MAX_SAFE_INTEGER)) {
    throw invalid(`Value too large: ${hex(value)}`);
  }
  return Number(value);
}
