/**
 * VFIO_USER_DMA_WRITE (12), server → client: the server writes client memory
 * that was mapped without an fd.
 *
 * Request payload (bytes after the 16-byte header): `address u64 @0,
 * count u64 @8`, then exactly `count` bytes of data.
 * Reply payload: `address u64 @0, count u64 @8` (8-byte count, as QEMU
 * 11.1.3 sends it), no data.
 *
 * @module
 */

import { concatBytes } from '../wire.js';
import { expectLength, expectMinLength } from './checks.js';
import { DmaAccessLayout, decodeDmaAccess, type DmaAccess, type DmaAccessLimits } from './dma-access.js';

/** A DMA_WRITE request: write `data` at client address `address` (count = data.length). */
export interface DmaWriteRequest {
  address: bigint;
  /** Decoding returns a view into the payload. */
  data: Uint8Array;
}

/** A DMA_WRITE reply: where and how many bytes were written. */
export type DmaWriteReply = DmaAccess;

/** Encode a request payload: 16 bytes + data. */
export function encodeDmaWriteRequest(request: DmaWriteRequest): Uint8Array {
  return concatBytes([DmaAccessLayout.encode({ address: request.address, count: BigInt(request.data.length) }), request.data]);
}

/**
 * Decode a request payload: at least 16 bytes; count ≤ maxDataXferSize
 * (E2BIG, as QEMU answers); address + count ≤ 2^64; exactly `count` data bytes.
 * @throws {ProtocolError} EINVAL or E2BIG
 */
export function decodeDmaWriteRequest(payload: Uint8Array, limits: DmaAccessLimits): DmaWriteRequest {
  expectMinLength('DMA_WRITE', payload, DmaAccessLayout.size);
  const access = decodeDmaAccess('DMA_WRITE', payload, limits);
  expectLength('DMA_WRITE', payload, DmaAccessLayout.size + access.count);
  return { address: access.address, data: payload.subarray(DmaAccessLayout.size) };
}

/** Encode a reply payload (16 bytes). */
export function encodeDmaWriteReply(reply: DmaWriteReply): Uint8Array {
  return DmaAccessLayout.encode({ address: reply.address, count: BigInt(reply.count) });
}

/**
 * Decode a reply payload: exactly 16 bytes; count ≤ maxDataXferSize (E2BIG)
 * and equal to the requested count.
 * @throws {ProtocolError} EINVAL or E2BIG
 */
export function decodeDmaWriteReply(payload: Uint8Array, limits: DmaAccessLimits): DmaWriteReply {
  expectLength('DMA_WRITE reply', payload, DmaAccessLayout.size);
  return decodeDmaAccess('DMA_WRITE reply', payload, limits);
}
