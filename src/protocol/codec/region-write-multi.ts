/**
 * VFIO_USER_REGION_WRITE_MULTI (15), client → server.
 *
 * Request payload (bytes after the 16-byte header): `wr_cnt u64 @0`, then
 * `wr_cnt` 24-byte entries `{offset u64, region u32, count u32, data u8[8]}`;
 * only the first `count` (≤ 8) data bytes of an entry are meaningful.
 * QEMU sends at most 200 entries, only if the server advertised
 * `write_multiple: true`, and always with NO_REPLY: do not answer it.
 *
 * Reply payload (spec only; QEMU never expects one): `wr_cnt u64`, the number
 * of writes completed.
 *
 * @module
 */

import { invalid } from '../errors.js';
import { QEMU_LIMITS } from '../limits.js';
import { bytes, struct, u32, u64 } from '../wire.js';
import { checkRegionAccess, expectLength, expectMinLength, toNumber, type RegionBounds } from './checks.js';

/** Bytes of data an entry can carry. */
export const WRITE_MULTI_DATA_SIZE = 8;

/** The `wr_cnt` head of the request and the whole reply: 8 bytes. */
export const WriteMultiCountLayout = struct('vfio_user_write_multi', { wrCnt: u64 });

/** One write entry (QEMU `VFIOUserWROne`): 24 bytes. */
export const WriteMultiEntryLayout = struct('vfio_user_write_one', {
  offset: u64,
  region: u32,
  count: u32,
  data: bytes(WRITE_MULTI_DATA_SIZE),
});

/** One coalesced write: `data` (1 to 8 bytes) at `offset` of region `region`. */
export interface WriteMultiEntry {
  offset: bigint;
  region: number;
  data: Uint8Array;
}

/** Limits for {@link decodeRegionWriteMultiRequest}. */
export interface RegionWriteMultiLimits {
  /** Most entries per message (default: QEMU's 200). */
  maxEntries?: number;
  /** The device's regions; when given, every entry is bounds-checked. */
  regions?: RegionBounds;
}

/** Encode a request payload: 8 + 24 bytes per entry. */
export function encodeRegionWriteMultiRequest(entries: readonly WriteMultiEntry[]): Uint8Array {
  const out = new Uint8Array(WriteMultiCountLayout.size + entries.length * WriteMultiEntryLayout.size);
  WriteMultiCountLayout.encode({ wrCnt: BigInt(entries.length) }, out);
  entries.forEach((entry, i) => {
    if (entry.data.length > WRITE_MULTI_DATA_SIZE) {
      throw new RangeError(`REGION_WRITE_MULTI entry ${i} has ${entry.data.length} bytes > ${WRITE_MULTI_DATA_SIZE}`);
    }
    const data = new Uint8Array(WRITE_MULTI_DATA_SIZE);
    data.set(entry.data);
    WriteMultiEntryLayout.encode(
      { offset: entry.offset, region: entry.region, count: entry.data.length, data },
      out,
      WriteMultiCountLayout.size + i * WriteMultiEntryLayout.size,
    );
  });
  return out;
}

/**
 * Decode a request payload.
 * Checks, in order: at least 8 bytes; 1 ≤ wr_cnt ≤ maxEntries; exactly
 * 8 + 24 × wr_cnt bytes; per entry 1 ≤ count ≤ 8, then the region bounds
 * (index, offset + count ≤ size, no 2^64 wrap-around).
 * @throws {ProtocolError} EINVAL
 */
export function decodeRegionWriteMultiRequest(payload: Uint8Array, limits: RegionWriteMultiLimits = {}): WriteMultiEntry[] {
  expectMinLength('REGION_WRITE_MULTI', payload, WriteMultiCountLayout.size);
  const { wrCnt } = WriteMultiCountLayout.decode(payload);
  const maxEntries = limits.maxEntries ?? QEMU_LIMITS.writeMultiMax;
  if (wrCnt === 0n || wrCnt > BigInt(maxEntries)) {
    throw invalid(`Invalid REGION_WRITE_MULTI wr_cnt: ${wrCnt} not in 1..${maxEntries}`);
  }
  const count = toNumber(wrCnt);
  expectLength('REGION_WRITE_MULTI', payload, WriteMultiCountLayout.size + count * WriteMultiEntryLayout.size);
  const entries: WriteMultiEntry[] = [];
  for (let i = 0; i < count; i++) {
    const at = WriteMultiCountLayout.size + i * WriteMultiEntryLayout.size;
    const entry = WriteMultiEntryLayout.decode(payload, at);
    if (entry.count === 0 || entry.count > WRITE_MULTI_DATA_SIZE) {
      throw invalid(`Invalid REGION_WRITE_MULTI count: entry ${i} has ${entry.count} not in 1..${WRITE_MULTI_DATA_SIZE}`);
    }
    checkRegionAccess(entry.region, entry.offset, entry.count, limits.regions);
    entries.push({ offset: entry.offset, region: entry.region, data: entry.data.subarray(0, entry.count) });
  }
  return entries;
}

/** Encode a reply payload: the number of writes completed (8 bytes). */
export function encodeRegionWriteMultiReply(completed: number): Uint8Array {
  return WriteMultiCountLayout.encode({ wrCnt: BigInt(completed) });
}

/**
 * Decode a reply payload: exactly 8 bytes; wr_cnt ≤ maxEntries.
 * @returns the number of writes completed
 * @throws {ProtocolError} EINVAL
 */
export function decodeRegionWriteMultiReply(payload: Uint8Array, limits: Pick<RegionWriteMultiLimits, 'maxEntries'> = {}): number {
  expectLength('REGION_WRITE_MULTI reply', payload, WriteMultiCountLayout.size);
  const { wrCnt } = WriteMultiCountLayout.decode(payload);
  const maxEntries = limits.maxEntries ?? QEMU_LIMITS.writeMultiMax;
  if (wrCnt > BigInt(maxEntries)) {
    throw invalid(`Invalid REGION_WRITE_MULTI reply wr_cnt: ${wrCnt} > ${maxEntries}`);
  }
  return Number(wrCnt);
}
