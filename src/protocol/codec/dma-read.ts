/**
 * VFIO_USER_DMA_READ (11), server → client: the server reads client memory
 * that was mapped without an fd.
 *
 * Request payload (bytes after the 16-byte header), 16 bytes:
 * `address u64 @0, count u64 @8`.
 * Reply payload: the same 16 bytes, then `count` bytes of data. A short
 * transfer is an error reply, never a smaller count.
 *
 * @module
 */

import { concatBytes } from '../wire.js';
import { expectLength, expectMinLength } from './checks.js';
import { DmaAccessLayout, decodeDmaAccess, type DmaAccess, type DmaAccessLimits } from './dma-access.js';

/** A DMA_READ request: read `count` bytes at client address `address`. */
export type DmaReadRequest = DmaAccess;

/** A DMA_READ reply: the bytes read (count = data.length). */
export interface DmaReadReply {
  address: bigint;
  /** Decoding returns a view into the payload. */
  data: Uint8Array;
}

/** Encode a request payload (16 bytes). */
export function encodeDmaReadRequest(request: DmaReadRequest): Uint8Array {
  return DmaAccessLayout.encode({ address: request.address, count: BigInt(request.count) });
}

/**
 * Decode a request payload: exactly 16 bytes; count ≤ maxDataXferSize
 * (E2BIG, as QEMU answers); address + count ≤ 2^64.
 * @throws {ProtocolError} EINVAL or E2BIG
 */
export function decodeDmaReadRequest(payload: Uint8Array, limits: DmaAccessLimits): DmaReadRequest {
  expectLength('DMA_READ', payload, DmaAccessLayout.size);
  return decodeDmaAccess('DMA_READ', payload, limits);
}

/** Encode a reply payload: 16 bytes + data. */
export function encodeDmaReadReply(reply: DmaReadReply): Uint8Array {
  return concatBytes([DmaAccessLayout.encode({ address: reply.address, count: BigInt(reply.data.length) }), reply.data]);
}

/**
 * Decode a reply payload: at least 16 bytes; count ≤ maxDataXferSize (E2BIG)
 * and equal to the requested count; exactly `count` data bytes.
 * @throws {ProtocolError} EINVAL or E2BIG
 */
export function decodeDmaReadReply(payload: Uint8Array, limits: DmaAccessLimits): DmaReadReply {
  expectMinLength('DMA_READ reply', payload, DmaAccessLayout.size);
  const access = decodeDmaAccess('DMA_READ reply', payload, limits);
  expectLength('DMA_READ reply', payload, DmaAccessLayout.size + access.count);
  return { address: access.address, data: payload.subarray(DmaAccessLayout.size) };
}
