/**
 * VFIO_USER_DEVICE_GET_REGION_IO_FDS (6), client → server. QEMU 11.1.3 has
 * no client code for it; it is here for completeness and for our own client.
 *
 * Request payload (bytes after the 16-byte header), 16 bytes:
 * `argsz u32 @0, flags u32 @4 (0), index u32 @8, count u32 @12 (0)`.
 *
 * Reply payload: the same 16 bytes (count = number of sub-regions, argsz =
 * 16 + 40 × count), then `count` 40-byte sub-region entries if they fit in
 * the request's argsz, plus the fds the entries index (SCM_RIGHTS). If they
 * do not fit, only the 16 bytes are sent, as for region info.
 *
 * Entries follow the spec's 40-byte layouts (ioeventfd: datamatch, ioregionfd:
 * user_data). libvfio-user's 48-byte "shadow ioeventfd" variant (type 2) is
 * not part of the spec and is rejected.
 *
 * @module
 */

import { IoFdType, IoeventfdFlag, IoregionfdFlag } from '../commands.js';
import { invalid } from '../errors.js';
import { concatBytes, struct, u32, u64 } from '../wire.js';
import { checkArgsz, checkFlags, checkIndex, checkNoWrap, checkZero, expectLength, expectMinLength } from './checks.js';

/** `struct vfio_user_region_io_fds_request` (and the reply's fixed part): 16 bytes. */
export const RegionIoFdsLayout = struct('vfio_user_region_io_fds', {
  argsz: u32,
  flags: u32,
  index: u32,
  count: u32,
});

/** One sub-region entry (spec layout, both types): 40 bytes. */
export const SubRegionIoFdLayout = struct('vfio_user_sub_region_io_fd', {
  /** Offset within the region, bytes. */
  offset: u64,
  /** Bytes; 0 = any access size. */
  size: u64,
  /** Index into the reply's fd array. */
  fdIndex: u32,
  type: u32,
  flags: u32,
  padding: u32,
  /** ioeventfd: datamatch; ioregionfd: user_data. */
  data: u64,
});

/** A sub-region whose writes signal an ioeventfd (KVM_IOEVENTFD). */
export interface IoeventfdSubRegion {
  type: 'ioeventfd';
  offset: bigint;
  size: bigint;
  fdIndex: number;
  /** KVM_IOEVENTFD_FLAG_* bits ({@link IoeventfdFlag}). */
  flags: number;
  datamatch: bigint;
}

/** A sub-region served over an ioregionfd. */
export interface IoregionfdSubRegion {
  type: 'ioregionfd';
  offset: bigint;
  size: bigint;
  fdIndex: number;
  /** KVM_IOREGION_* bits ({@link IoregionfdFlag}). */
  flags: number;
  userData: bigint;
}

/** A sub-region entry of the reply. */
export type SubRegionIoFd = IoeventfdSubRegion | IoregionfdSubRegion;

/** A DEVICE_GET_REGION_IO_FDS request. */
export interface RegionIoFdsRequest {
  /** Most reply payload bytes the client accepts; ≥ 16. */
  argsz: number;
  index: number;
}

/** What the server reports for a region. */
export interface RegionIoFds {
  index: number;
  subRegions: SubRegionIoFd[];
}

/** A decoded reply; `complete` is false when only the size needed was sent. */
export interface RegionIoFdsReply extends RegionIoFds {
  /** Payload bytes needed for the full reply. */
  argsz: number;
  /** Number of sub-regions the region has (also when they were not sent). */
  count: number;
  complete: boolean;
}

/** Options for {@link decodeRegionIoFdsRequest}. */
export interface RegionIoFdsRequestLimits {
  /** Largest acceptable argsz in bytes (libvfio-user: its max data transfer size). */
  maxDataXferSize: number;
  /** Number of regions of the device; index must be below it. */
  numRegions?: number;
}

/** Options for {@link decodeRegionIoFdsReply}. */
export interface RegionIoFdsReplyLimits {
  /** argsz of the request this answers: the reply must fit in it. */
  requestArgsz?: number;
  /** Number of fds that came with the reply; every fd_index must be below it. */
  fdCount?: number;
}

/** Encode a request payload (16 bytes). */
export function encodeRegionIoFdsRequest(request: RegionIoFdsRequest): Uint8Array {
  return RegionIoFdsLayout.encode({ argsz: request.argsz, flags: 0, index: request.index, count: 0 });
}

/**
 * Decode a request payload.
 * Checks, in order: exactly 16 bytes; argsz ≥ 16 and ≤ maxDataXferSize;
 * flags 0; count 0; index < numRegions.
 * @throws {ProtocolError} EINVAL
 */
export function decodeRegionIoFdsRequest(payload: Uint8Array, limits: RegionIoFdsRequestLimits): RegionIoFdsRequest {
  expectLength('DEVICE_GET_REGION_IO_FDS', payload, RegionIoFdsLayout.size);
  const request = RegionIoFdsLayout.decode(payload);
  checkArgsz('DEVICE_GET_REGION_IO_FDS', request.argsz, RegionIoFdsLayout.size, limits.maxDataXferSize);
  checkFlags('DEVICE_GET_REGION_IO_FDS', request.flags, 0);
  checkZero('DEVICE_GET_REGION_IO_FDS count', request.count);
  checkIndex('region', request.index, limits.numRegions);
  return { argsz: request.argsz, index: request.index };
}

/** Payload bytes of the full reply: 16 + 40 per sub-region. */
export function regionIoFdsReplySize(info: Pick<RegionIoFds, 'subRegions'>): number {
  return RegionIoFdsLayout.size + info.subRegions.length * SubRegionIoFdLayout.size;
}

/**
 * Encode a reply payload for a request whose argsz was `requestArgsz`: the
 * entries are included only if the full reply fits (send the fds only then).
 */
export function encodeRegionIoFdsReply(info: RegionIoFds, requestArgsz: number): Uint8Array {
  const needed = regionIoFdsReplySize(info);
  const head = RegionIoFdsLayout.encode({ argsz: needed, flags: 0, index: info.index, count: info.subRegions.length });
  if (needed > requestArgsz) return head;
  return concatBytes([
    head,
    ...info.subRegions.map((sub) =>
      SubRegionIoFdLayout.encode({
        offset: sub.offset,
        size: sub.size,
        fdIndex: sub.fdIndex,
        type: sub.type === 'ioeventfd' ? IoFdType.Ioeventfd : IoFdType.Ioregionfd,
        flags: sub.flags,
        padding: 0,
        data: sub.type === 'ioeventfd' ? sub.datamatch : sub.userData,
      }),
    ),
  ]);
}

const IOEVENTFD_FLAGS = IoeventfdFlag.Datamatch | IoeventfdFlag.Pio | IoeventfdFlag.Deassign | IoeventfdFlag.VirtioCcwNotify;
const IOREGIONFD_FLAGS = IoregionfdFlag.Pio | IoregionfdFlag.PostedWrites;

function decodeSubRegion(payload: Uint8Array, at: number, fdCount: number | undefined): SubRegionIoFd {
  const entry = SubRegionIoFdLayout.decode(payload, at);
  checkZero('sub-region padding', entry.padding);
  checkNoWrap('Sub-region', entry.offset, entry.size);
  checkIndex('sub-region fd', entry.fdIndex, fdCount);
  switch (entry.type) {
    case IoFdType.Ioeventfd:
      checkFlags('ioeventfd sub-region', entry.flags, IOEVENTFD_FLAGS);
      return { type: 'ioeventfd', offset: entry.offset, size: entry.size, fdIndex: entry.fdIndex, flags: entry.flags, datamatch: entry.data };
    case IoFdType.Ioregionfd:
      checkFlags('ioregionfd sub-region', entry.flags, IOREGIONFD_FLAGS);
      return { type: 'ioregionfd', offset: entry.offset, size: entry.size, fdIndex: entry.fdIndex, flags: entry.flags, userData: entry.data };
    default:
      throw invalid(`Unknown sub-region type: ${entry.type}`);
  }
}

/**
 * Decode a reply payload.
 * Checks, in order: at least 16 bytes; flags 0; argsz = 16 + 40 × count; the
 * reply fits the request's argsz; then either the 16-byte first-round form
 * (only valid if the request's argsz was too small) or exactly argsz bytes of
 * entries, each with a known type and flags, zero padding, no 2^64 wrap and
 * fd_index < fdCount.
 * @throws {ProtocolError} EINVAL
 */
export function decodeRegionIoFdsReply(payload: Uint8Array, limits: RegionIoFdsReplyLimits = {}): RegionIoFdsReply {
  expectMinLength('DEVICE_GET_REGION_IO_FDS reply', payload, RegionIoFdsLayout.size);
  const head = RegionIoFdsLayout.decode(payload);
  checkFlags('DEVICE_GET_REGION_IO_FDS reply', head.flags, 0);
  const needed = RegionIoFdsLayout.size + head.count * SubRegionIoFdLayout.size;
  if (head.argsz !== needed) {
    throw invalid(`Invalid DEVICE_GET_REGION_IO_FDS reply argsz: ${head.argsz} for ${head.count} sub-regions, need ${needed}`);
  }
  if (limits.requestArgsz !== undefined && payload.length > limits.requestArgsz) {
    throw invalid(`DEVICE_GET_REGION_IO_FDS reply larger than requested: ${payload.length} > ${limits.requestArgsz} bytes`);
  }
  const base = { index: head.index, argsz: head.argsz, count: head.count };
  if (payload.length === RegionIoFdsLayout.size && head.count > 0) {
    if (limits.requestArgsz !== undefined && limits.requestArgsz >= needed) {
      throw invalid(`DEVICE_GET_REGION_IO_FDS reply without sub-regions although they fit: ${needed} <= ${limits.requestArgsz}`);
    }
    return { ...base, subRegions: [], complete: false };
  }
  expectLength('DEVICE_GET_REGION_IO_FDS reply', payload, needed);
  const subRegions: SubRegionIoFd[] = [];
  for (let i = 0; i < head.count; i++) {
    subRegions.push(decodeSubRegion(payload, RegionIoFdsLayout.size + i * SubRegionIoFdLayout.size, limits.fdCount));
  }
  return { ...base, subRegions, complete: true };
}
