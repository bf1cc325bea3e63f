/**
 * VFIO_USER_DEVICE_GET_REGION_INFO (5), client → server.
 *
 * Request payload (bytes after the 16-byte header), 32 bytes: a
 * `struct vfio_region_info` with only `argsz` (the most reply payload bytes
 * the client accepts) and `index` set.
 *
 * Reply payload: the 32-byte `struct vfio_region_info`, then (with the CAPS
 * flag) a capability chain of `vfio_info_cap_header`s linked by `next`
 * offsets counted from the start of the struct; plus at most one fd, sent by
 * the server with the reply that carries the caps.
 *
 * Two rounds (QEMU `vfio_device_get_region_info`, libvfio-user): QEMU first
 * asks with argsz = 32. If the caps do not fit, the server answers with only
 * the 32 bytes, `argsz` = the size needed and no CAPS flag; QEMU then asks
 * again with that argsz. A reply larger than the request's argsz is fatal for
 * QEMU, so {@link encodeRegionInfoReply} takes the request's argsz.
 *
 * @module
 */

import { RegionCapId, RegionInfoFlag } from '../commands.js';
import { hex, invalid } from '../errors.js';
import { concatBytes, struct, u16, u32, u64 } from '../wire.js';
import { checkArgsz, checkFlags, checkIndex, checkNoWrap, checkZero, expectLength, expectMinLength } from './checks.js';

/** `struct vfio_region_info` (linux vfio.h): 32 bytes. */
export const RegionInfoLayout = struct('vfio_region_info', {
  argsz: u32,
  flags: u32,
  index: u32,
  /** Offset of the first capability from the start of this struct, bytes; 0 = none. */
  capOffset: u32,
  /** Region size in bytes; 0 = unimplemented (e.g. the upper half of a 64-bit BAR). */
  size: u64,
  /** mmap offset of the region within the fd, bytes; base for sparse areas. */
  offset: u64,
});

/** `struct vfio_info_cap_header`: 8 bytes. */
export const CapHeaderLayout = struct('vfio_info_cap_header', {
  id: u16,
  version: u16,
  /** Offset of the next capability from the start of the region info struct; 0 ends the chain. */
  next: u32,
});

/** Body of `struct vfio_region_info_cap_sparse_mmap` after its cap header: 8 bytes, then the areas. */
export const SparseMmapLayout = struct('vfio_region_info_cap_sparse_mmap', {
  nrAreas: u32,
  reserved: u32,
});

/** `struct vfio_region_sparse_mmap_area`: 16 bytes. */
export const SparseMmapAreaLayout = struct('vfio_region_sparse_mmap_area', {
  /** Offset within the region, bytes (mmap at region.offset + this). */
  offset: u64,
  /** Bytes. */
  size: u64,
});

/** Body of `struct vfio_region_info_cap_type` after its cap header: 8 bytes. */
export const RegionTypeLayout = struct('vfio_region_info_cap_type', {
  type: u32,
  subtype: u32,
});

/** Version every capability defined here carries. */
const CAP_VERSION = 1;

/** A mmappable area of a region. */
export type SparseMmapArea = ReturnType<typeof SparseMmapAreaLayout.decode>;

/** A region capability the server can send. */
export type RegionCap =
  /** VFIO_REGION_INFO_CAP_SPARSE_MMAP: only these areas may be mmapped */
  | { kind: 'sparse-mmap'; areas: SparseMmapArea[] }
  /** VFIO_REGION_INFO_CAP_TYPE: device-specific region type */
  | { kind: 'type'; type: number; subtype: number }
  /** VFIO_REGION_INFO_CAP_MSIX_MAPPABLE: the MSI-X table may stay inside a full-BAR mmap */
  | { kind: 'msix-mappable' };

/** A decoded region capability: a known one, or an unknown id the client should skip (as QEMU does). */
export type DecodedRegionCap = RegionCap | { kind: 'unknown'; id: number; version: number };

/** What the server reports for a region. */
export interface RegionInfo {
  index: number;
  /** READ/WRITE/MMAP bits; CAPS is set by the encoder when caps are included. */
  flags: number;
  /** Bytes. */
  size: bigint;
  /** mmap offset within the region's fd, bytes. */
  offset: bigint;
  /** Capabilities in chain order. */
  caps: RegionCap[];
}

/** A decoded reply. `complete` is false for the first-round reply that only announces the size needed. */
export interface RegionInfoReply {
  index: number;
  /** READ/WRITE/MMAP bits; CAPS is reflected by `caps`/`complete` instead. */
  flags: number;
  size: bigint;
  offset: bigint;
  /** Capabilities in chain order; empty when none or not included. */
  caps: DecodedRegionCap[];
  /** Payload bytes needed for the full reply. */
  argsz: number;
  /** True if the reply holds everything (argsz ≤ what was sent). */
  complete: boolean;
}

/** A DEVICE_GET_REGION_INFO request. */
export interface RegionInfoRequest {
  /** Most reply payload bytes the client accepts; ≥ 32. */
  argsz: number;
  index: number;
}

/** Options for {@link decodeRegionInfoRequest}. */
export interface RegionInfoRequestLimits {
  /** Number of regions of the device; index must be below it. */
  numRegions?: number;
}

/** Options for {@link decodeRegionInfoReply}. */
export interface RegionInfoReplyLimits {
  /** argsz of the request this answers: the reply must fit in it. */
  requestArgsz?: number;
  /** Largest acceptable reply argsz in bytes (QEMU: its max_data_xfer_size). */
  maxDataXferSize?: number;
}

const KNOWN_FLAGS = RegionInfoFlag.Read | RegionInfoFlag.Write | RegionInfoFlag.Mmap | RegionInfoFlag.Caps;

/** Encode a request payload (32 bytes; all but argsz and index zero). */
export function encodeRegionInfoRequest(request: RegionInfoRequest): Uint8Array {
  return RegionInfoLayout.encode({
    argsz: request.argsz,
    flags: 0,
    index: request.index,
    capOffset: 0,
    size: 0n,
    offset: 0n,
  });
}

/**
 * Decode a request payload.
 * Checks, in order: exactly 32 bytes; argsz ≥ 32; flags 0; index <
 * numRegions; cap_offset, size and offset zero (the spec says "must be zero").
 * @throws {ProtocolError} EINVAL
 */
export function decodeRegionInfoRequest(payload: Uint8Array, limits: RegionInfoRequestLimits = {}): RegionInfoRequest {
  expectLength('DEVICE_GET_REGION_INFO', payload, RegionInfoLayout.size);
  const request = RegionInfoLayout.decode(payload);
  checkArgsz('DEVICE_GET_REGION_INFO', request.argsz, RegionInfoLayout.size);
  checkFlags('DEVICE_GET_REGION_INFO', request.flags, 0);
  checkIndex('region', request.index, limits.numRegions);
  checkZero('DEVICE_GET_REGION_INFO cap_offset', request.capOffset);
  checkZero('DEVICE_GET_REGION_INFO size', request.size);
  checkZero('DEVICE_GET_REGION_INFO offset', request.offset);
  return { argsz: request.argsz, index: request.index };
}

function capSize(cap: RegionCap): number {
  switch (cap.kind) {
    case 'sparse-mmap':
      return CapHeaderLayout.size + SparseMmapLayout.size + cap.areas.length * SparseMmapAreaLayout.size;
    case 'type':
      return CapHeaderLayout.size + RegionTypeLayout.size;
    case 'msix-mappable':
      return CapHeaderLayout.size;
  }
}

/** Payload bytes of the full reply for `info`: 32 plus its capabilities. */
export function regionInfoReplySize(info: Pick<RegionInfo, 'caps'>): number {
  return info.caps.reduce((total, cap) => total + capSize(cap), RegionInfoLayout.size);
}

function encodeCap(cap: RegionCap, next: number): Uint8Array {
  switch (cap.kind) {
    case 'sparse-mmap':
      return concatBytes([
        CapHeaderLayout.encode({ id: RegionCapId.SparseMmap, version: CAP_VERSION, next }),
        SparseMmapLayout.encode({ nrAreas: cap.areas.length, reserved: 0 }),
        ...cap.areas.map((area) => SparseMmapAreaLayout.encode(area)),
      ]);
    case 'type':
      return concatBytes([
        CapHeaderLayout.encode({ id: RegionCapId.Type, version: CAP_VERSION, next }),
        RegionTypeLayout.encode({ type: cap.type, subtype: cap.subtype }),
      ]);
    case 'msix-mappable':
      return CapHeaderLayout.encode({ id: RegionCapId.MsixMappable, version: CAP_VERSION, next });
  }
}

/**
 * Encode a reply payload for a request whose argsz was `requestArgsz`.
 *
 * If the full reply (32 bytes + caps) fits in `requestArgsz`, it is returned
 * with the CAPS flag (when there are caps) and cap_offset 32. Otherwise only
 * the 32-byte struct is returned, with argsz = the size needed, no CAPS flag
 * and cap_offset 0, so the client can ask again. Send the region's fd only
 * with a complete reply (`regionInfoReplySize(info) <= requestArgsz`).
 *
 * The encoder does not validate areas or flags: decoders are the validators.
 */
export function encodeRegionInfoReply(info: RegionInfo, requestArgsz: number): Uint8Array {
  const needed = regionInfoReplySize(info);
  const withCaps = info.caps.length > 0 && needed <= requestArgsz;
  const head = RegionInfoLayout.encode({
    argsz: needed,
    flags: (info.flags & ~RegionInfoFlag.Caps) | (withCaps ? RegionInfoFlag.Caps : 0),
    index: info.index,
    capOffset: withCaps ? RegionInfoLayout.size : 0,
    size: info.size,
    offset: info.offset,
  });
  if (!withCaps) return head;
  const parts = [head];
  let at = RegionInfoLayout.size;
  info.caps.forEach((cap, i) => {
    const end = at + capSize(cap);
    parts.push(encodeCap(cap, i === info.caps.length - 1 ? 0 : end));
    at = end;
  });
  return concatBytes(parts);
}

function decodeSparseMmap(payload: Uint8Array, at: number, argsz: number, regionSize: bigint): SparseMmapArea[] {
  const body = at + CapHeaderLayout.size;
  if (body + SparseMmapLayout.size > argsz) {
    throw invalid(`Region info capability out of range: sparse mmap at ${at}, argsz ${argsz}`);
  }
  const { nrAreas, reserved } = SparseMmapLayout.decode(payload, body);
  checkZero('sparse mmap reserved', reserved);
  const first = body + SparseMmapLayout.size;
  if (first + nrAreas * SparseMmapAreaLayout.size > argsz) {
    throw invalid(`Region info capability out of range: ${nrAreas} sparse areas at ${at}, argsz ${argsz}`);
  }
  const areas: SparseMmapArea[] = [];
  for (let i = 0; i < nrAreas; i++) {
    const area = SparseMmapAreaLayout.decode(payload, first + i * SparseMmapAreaLayout.size);
    checkNoWrap('Sparse mmap area', area.offset, area.size);
    if (area.offset + area.size > regionSize) {
      throw invalid(`Sparse mmap area out of bounds: ${hex(area.offset)}+${hex(area.size)} > ${hex(regionSize)}`);
    }
    const previous = areas[areas.length - 1];
    if (previous !== undefined && previous.offset + previous.size > area.offset) {
      throw invalid(`Sparse mmap areas unsorted or overlapping: ${hex(previous.offset)}+${hex(previous.size)} > ${hex(area.offset)}`);
    }
    areas.push(area);
  }
  return areas;
}

function decodeCapChain(payload: Uint8Array, capOffset: number, argsz: number, regionSize: bigint): DecodedRegionCap[] {
  const caps: DecodedRegionCap[] = [];
  const visited = new Set<number>();
  const knownSeen = new Set<number>();
  for (let at = capOffset; at !== 0; ) {
    if (at < RegionInfoLayout.size || at + CapHeaderLayout.size > argsz) {
      throw invalid(`Region info capability out of range: offset ${at}, argsz ${argsz}`);
    }
    if (visited.has(at)) {
      throw invalid(`Region info capability chain loops: offset ${at} seen twice`);
    }
    visited.add(at);
    const header = CapHeaderLayout.decode(payload, at);
    const known = header.id === RegionCapId.SparseMmap || header.id === RegionCapId.Type || header.id === RegionCapId.MsixMappable;
    if (known) {
      if (header.version !== CAP_VERSION) {
        throw invalid(`Unsupported region capability version: id ${header.id}, version ${header.version}`);
      }
      if (knownSeen.has(header.id)) {
        throw invalid(`Duplicate region capability: id ${header.id}`);
      }
      knownSeen.add(header.id);
    }
    switch (header.id) {
      case RegionCapId.SparseMmap:
        caps.push({ kind: 'sparse-mmap', areas: decodeSparseMmap(payload, at, argsz, regionSize) });
        break;
      case RegionCapId.Type: {
        const body = at + CapHeaderLayout.size;
        if (body + RegionTypeLayout.size > argsz) {
          throw invalid(`Region info capability out of range: type at ${at}, argsz ${argsz}`);
        }
        const { type, subtype } = RegionTypeLayout.decode(payload, body);
        caps.push({ kind: 'type', type, subtype });
        break;
      }
      case RegionCapId.MsixMappable:
        caps.push({ kind: 'msix-mappable' });
        break;
      default:
        caps.push({ kind: 'unknown', id: header.id, version: header.version });
    }
    at = header.next;
  }
  return caps;
}

/**
 * Decode a reply payload.
 *
 * Checks, in order: at least 32 bytes; argsz ≥ 32 (and ≤ maxDataXferSize);
 * the reply fits the request's argsz; known flags only. With CAPS: the
 * payload is exactly argsz bytes, cap_offset ≥ 32, every capability lies
 * inside argsz, the chain has no loops or duplicate known caps, sparse areas
 * are inside the region, sorted and non-overlapping. Without CAPS:
 * cap_offset 0, and if argsz > 32 the reply is the first round (complete =
 * false), which is only valid if the request's argsz was too small.
 *
 * @throws {ProtocolError} EINVAL
 */
export function decodeRegionInfoReply(payload: Uint8Array, limits: RegionInfoReplyLimits = {}): RegionInfoReply {
  expectMinLength('DEVICE_GET_REGION_INFO reply', payload, RegionInfoLayout.size);
  const info = RegionInfoLayout.decode(payload);
  checkArgsz('DEVICE_GET_REGION_INFO reply', info.argsz, RegionInfoLayout.size, limits.maxDataXferSize);
  if (limits.requestArgsz !== undefined && payload.length > limits.requestArgsz) {
    throw invalid(`DEVICE_GET_REGION_INFO reply larger than requested: ${payload.length} > ${limits.requestArgsz} bytes`);
  }
  checkFlags('DEVICE_GET_REGION_INFO reply', info.flags, KNOWN_FLAGS);
  const base = {
    index: info.index,
    flags: info.flags & ~RegionInfoFlag.Caps,
    size: info.size,
    offset: info.offset,
    argsz: info.argsz,
  };

  if ((info.flags & RegionInfoFlag.Caps) === 0) {
    checkZero('DEVICE_GET_REGION_INFO reply cap_offset', info.capOffset);
    // libvfio-user may send min(needed, request argsz) bytes here; the tail carries nothing.
    if (payload.length > Math.max(info.argsz, RegionInfoLayout.size)) {
      throw invalid(`Invalid DEVICE_GET_REGION_INFO reply size: ${payload.length} > argsz ${info.argsz}`);
    }
    const complete = info.argsz === RegionInfoLayout.size;
    if (!complete && limits.requestArgsz !== undefined && limits.requestArgsz >= info.argsz) {
      throw invalid(`DEVICE_GET_REGION_INFO reply without caps although they fit: argsz ${info.argsz} <= ${limits.requestArgsz}`);
    }
    return { ...base, caps: [], complete };
  }

  expectLength('DEVICE_GET_REGION_INFO reply', payload, info.argsz);
  if (info.capOffset < RegionInfoLayout.size) {
    throw invalid(`Region info capability out of range: cap_offset ${info.capOffset} < ${RegionInfoLayout.size}`);
  }
  return { ...base, caps: decodeCapChain(payload, info.capOffset, info.argsz, info.size), complete: true };
}
