/**
 * VFIO_USER_DMA_UNMAP (3), client → server.
 *
 * Request payload (bytes after the 16-byte header), 24 bytes:
 * `argsz u32 @0, flags u32 @4, address u64 @8, size u64 @16`.
 * With flags = GET_DIRTY_BITMAP a 16-byte `vfio_user_bitmap` header follows
 * (`pgsize u64, size u64`), and `argsz` must leave room for the bitmap in the
 * reply. flags = ALL unmaps everything (address and size 0).
 *
 * Reply payload: empty (QEMU accepts header-only) or the request echoed; for
 * the dirty variant, echo + bitmap header + `bitmap.size` bytes of bitmap.
 *
 * QEMU 11.1.3 sends only flags 0 (and ALL with a vIOMMU); libvfio-user
 * implements the dirty variant, and so do we, for completeness.
 *
 * @module
 */

import { DmaUnmapFlag } from '../commands.js';
import { invalid } from '../errors.js';
import { concatBytes, struct, u32, u64 } from '../wire.js';
import { EMPTY, checkArgsz, checkFlags, checkNoWrap, checkXferSize, expectLength, expectMinLength, isPowerOfTwo, toNumber } from './checks.js';

/** `struct vfio_user_dma_unmap` without its bitmap: 24 bytes. */
export const DmaUnmapLayout = struct('vfio_user_dma_unmap', {
  argsz: u32,
  flags: u32,
  address: u64,
  size: u64,
});

/** `struct vfio_user_bitmap` header: 16 bytes, followed by `size` bytes of bitmap in replies. */
export const DmaBitmapLayout = struct('vfio_user_bitmap', {
  /** Bytes of IOVA per bit. */
  pgsize: u64,
  /** Bitmap size in bytes. */
  size: u64,
});

/** Dirty-bitmap request attached to an unmap. */
export interface DmaUnmapBitmap {
  /** Bytes of IOVA per bitmap bit; a power of two. */
  pgsize: bigint;
  /** Bitmap size in bytes. */
  size: number;
}

/** A decoded DMA_UNMAP request. `bitmap` is present iff flags has GET_DIRTY_BITMAP. */
export interface DmaUnmapRequest {
  /** Most reply payload bytes the client accepts. */
  argsz: number;
  flags: number;
  address: bigint;
  /** Bytes. */
  size: bigint;
  bitmap?: DmaUnmapBitmap;
}

/** A DMA_UNMAP reply that echoes the request; dirty replies carry `bitmapData` (`bitmap.size` bytes). */
export interface DmaUnmapReply extends DmaUnmapRequest {
  bitmapData?: Uint8Array;
}

/** Limits for {@link decodeDmaUnmapRequest}. */
export interface DmaUnmapLimits {
  /** Largest acceptable `argsz` in bytes (libvfio-user uses its max data transfer size). */
  maxDataXferSize: number;
}

const KNOWN_FLAGS = DmaUnmapFlag.GetDirtyBitmap | DmaUnmapFlag.All;

/** Bytes of dirty bitmap needed for `size` bytes of IOVA at `pgsize` bytes per bit (u64 words, as the kernel). */
export function dirtyBitmapBytes(size: bigint, pgsize: bigint): bigint {
  const pages = (size + pgsize - 1n) / pgsize;
  return ((pages + 63n) / 64n) * 8n;
}

/** Encode a DMA_UNMAP request payload: 24 bytes, or 40 with a bitmap header. */
export function encodeDmaUnmapRequest(request: DmaUnmapRequest): Uint8Array {
  const head = DmaUnmapLayout.encode(request);
  if (request.bitmap === undefined) return head;
  return concatBytes([head, DmaBitmapLayout.encode({ pgsize: request.bitmap.pgsize, size: BigInt(request.bitmap.size) })]);
}

function checkUnmapFields(unmap: ReturnType<typeof DmaUnmapLayout.decode>): void {
  checkFlags('DMA_UNMAP', unmap.flags, KNOWN_FLAGS);
  if (unmap.flags === KNOWN_FLAGS) {
    throw invalid('Invalid DMA_UNMAP flags: ALL and GET_DIRTY_BITMAP are exclusive');
  }
  if (unmap.flags === DmaUnmapFlag.All) {
    if (unmap.address !== 0n || unmap.size !== 0n) {
      throw invalid('Invalid DMA_UNMAP range: ALL needs address and size 0');
    }
    return;
  }
  if (unmap.size === 0n) {
    throw invalid('Invalid DMA_UNMAP size: 0');
  }
  checkNoWrap('DMA_UNMAP range', unmap.address, unmap.size);
}

/**
 * Decode a DMA_UNMAP request payload.
 *
 * Checks, in order: length (24, or 40 for the dirty variant); flags (no
 * unknown bits, ALL and GET_DIRTY_BITMAP exclusive); ALL has address = size
 * = 0; otherwise size > 0 and no 2^64 wrap; bitmap pgsize a power of two and
 * bitmap size large enough for the range; argsz ≥ 24 (+16+bitmap) and ≤
 * `maxDataXferSize`.
 *
 * @throws {ProtocolError} EINVAL
 */
export function decodeDmaUnmapRequest(payload: Uint8Array, limits: DmaUnmapLimits): DmaUnmapRequest {
  expectMinLength('DMA_UNMAP', payload, DmaUnmapLayout.size);
  const unmap = DmaUnmapLayout.decode(payload);
  checkUnmapFields(unmap);
  if (unmap.flags !== DmaUnmapFlag.GetDirtyBitmap) {
    expectLength('DMA_UNMAP', payload, DmaUnmapLayout.size);
    checkArgsz('DMA_UNMAP', unmap.argsz, DmaUnmapLayout.size, limits.maxDataXferSize);
    return unmap;
  }
  expectLength('DMA_UNMAP', payload, DmaUnmapLayout.size + DmaBitmapLayout.size);
  const bitmap = DmaBitmapLayout.decode(payload, DmaUnmapLayout.size);
  if (!isPowerOfTwo(bitmap.pgsize)) {
    throw invalid(`Invalid DMA_UNMAP bitmap pgsize: ${bitmap.pgsize}`);
  }
  checkXferSize('DMA_UNMAP bitmap size', bitmap.size, limits.maxDataXferSize);
  const needed = dirtyBitmapBytes(unmap.size, bitmap.pgsize);
  if (bitmap.size < needed) {
    throw invalid(`Invalid DMA_UNMAP bitmap size: ${bitmap.size} < ${needed} bytes`);
  }
  const bitmapSize = toNumber(bitmap.size);
  checkArgsz('DMA_UNMAP', unmap.argsz, DmaUnmapLayout.size + DmaBitmapLayout.size + bitmapSize, limits.maxDataXferSize);
  return { ...unmap, bitmap: { pgsize: bitmap.pgsize, size: bitmapSize } };
}

/**
 * Encode the DMA_UNMAP reply payload: the request echoed (as the spec says),
 * and for the dirty variant the bitmap header and `bitmapData`.
 * Pass nothing for QEMU's accepted header-only form.
 */
export function encodeDmaUnmapReply(request?: DmaUnmapRequest, bitmapData?: Uint8Array): Uint8Array {
  if (request === undefined) return EMPTY;
  const head = encodeDmaUnmapRequest(request);
  if (request.bitmap === undefined) return head;
  if (bitmapData === undefined || bitmapData.length !== request.bitmap.size) {
    throw new RangeError(`DMA_UNMAP reply needs ${request.bitmap.size} bytes of bitmap, have ${bitmapData?.length ?? 0}`);
  }
  return concatBytes([head, bitmapData]);
}

/**
 * Decode a DMA_UNMAP reply payload: `null` for the header-only form,
 * otherwise the echoed request (and bitmap data for the dirty variant, a view
 * into `payload`).
 * @throws {ProtocolError} EINVAL
 */
export function decodeDmaUnmapReply(payload: Uint8Array): DmaUnmapReply | null {
  if (payload.length === 0) return null;
  expectMinLength('DMA_UNMAP reply', payload, DmaUnmapLayout.size);
  const unmap = DmaUnmapLayout.decode(payload);
  checkUnmapFields(unmap);
  if (unmap.flags !== DmaUnmapFlag.GetDirtyBitmap) {
    expectLength('DMA_UNMAP reply', payload, DmaUnmapLayout.size);
    return unmap;
  }
  expectMinLength('DMA_UNMAP reply', payload, DmaUnmapLayout.size + DmaBitmapLayout.size);
  const bitmap = DmaBitmapLayout.decode(payload, DmaUnmapLayout.size);
  const dataStart = DmaUnmapLayout.size + DmaBitmapLayout.size;
  if (bitmap.size !== BigInt(payload.length - dataStart)) {
    throw invalid(`Invalid DMA_UNMAP reply bitmap: size ${bitmap.size}, have ${payload.length - dataStart} bytes`);
  }
  const size = payload.length - dataStart;
  return { ...unmap, bitmap: { pgsize: bitmap.pgsize, size }, bitmapData: payload.subarray(dataStart) };
}
