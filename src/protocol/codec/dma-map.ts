/**
 * VFIO_USER_DMA_MAP (2), client → server.
 *
 * Request payload (bytes after the 16-byte header), 32 bytes:
 * `argsz u32 @0 (=32), flags u32 @4, offset u64 @8, address u64 @16, size u64 @24`,
 * plus 0 or 1 fd (SCM_RIGHTS) backing the range at file offset `offset`.
 * Reply payload: empty.
 *
 * @module
 */

import { DmaMapFlag } from '../commands.js';
import { invalid } from '../errors.js';
import { struct, u32, u64 } from '../wire.js';
import { EMPTY, checkArgsz, checkFlags, checkNoWrap, expectLength } from './checks.js';

/** `struct vfio_user_dma_map`: 32 bytes. */
export const DmaMapLayout = struct('vfio_user_dma_map', {
  argsz: u32,
  flags: u32,
  /** File offset of the range within the fd, bytes (0 without fd). */
  offset: u64,
  /** IOVA of the range (guest-physical without a vIOMMU). */
  address: u64,
  /** Length of the range, bytes. */
  size: u64,
});

/** A decoded DMA_MAP request. */
export type DmaMapRequest = ReturnType<typeof DmaMapLayout.decode>;

const KNOWN_FLAGS = DmaMapFlag.Read | DmaMapFlag.Write | DmaMapFlag.ModeMmap | DmaMapFlag.ModeFileIo;

/** Options for {@link decodeDmaMapRequest}. */
export interface DmaMapDecodeOptions {
  /** Number of fds that arrived with the message; when given, 0 or 1 is allowed and the mode bits need one. */
  fdCount?: number;
}

/** Encode a DMA_MAP request payload (32 bytes). */
export function encodeDmaMapRequest(request: DmaMapRequest): Uint8Array {
  return DmaMapLayout.encode(request);
}

/**
 * Decode a DMA_MAP request payload.
 *
 * Checks, in order: exactly 32 bytes; argsz ≥ 32; no unknown flag bits and
 * at most one access-mode bit; a mode bit only with an fd; at most one fd;
 * size > 0; address + size ≤ 2^64.
 *
 * @throws {ProtocolError} EINVAL
 */
export function decodeDmaMapRequest(payload: Uint8Array, options: DmaMapDecodeOptions = {}): DmaMapRequest {
  expectLength('DMA_MAP', payload, DmaMapLayout.size);
  const request = DmaMapLayout.decode(payload);
  checkArgsz('DMA_MAP', request.argsz, DmaMapLayout.size);
  checkFlags('DMA_MAP', request.flags, KNOWN_FLAGS);
  const modes = request.flags & (DmaMapFlag.ModeMmap | DmaMapFlag.ModeFileIo);
  if (modes === (DmaMapFlag.ModeMmap | DmaMapFlag.ModeFileIo)) {
    throw invalid('Invalid DMA_MAP flags: both access modes set');
  }
  if (options.fdCount !== undefined) {
    if (options.fdCount > 1) {
      throw invalid(`Invalid DMA_MAP fds: ${options.fdCount} > 1`);
    }
    if (modes !== 0 && options.fdCount === 0) {
      throw invalid('Invalid DMA_MAP flags: access mode needs an fd');
    }
  }
  if (request.size === 0n) {
    throw invalid('Invalid DMA_MAP size: 0');
  }
  checkNoWrap('DMA_MAP range', request.address, request.size);
  return request;
}

/** Encode the DMA_MAP reply payload: empty. */
export function encodeDmaMapReply(): Uint8Array {
  return EMPTY;
}

/** Decode the DMA_MAP reply payload, which must be empty. @throws {ProtocolError} EINVAL */
export function decodeDmaMapReply(payload: Uint8Array): void {
  expectLength('DMA_MAP reply', payload, 0);
}
