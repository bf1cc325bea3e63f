/**
 * VFIO_USER_MIG_DATA_WRITE (18), client → server: write migration data in
 * the RESUMING state. Not sent by QEMU 11.1.3.
 *
 * Request payload (bytes after the 16-byte header): `argsz u32 @0,
 * size u32 @4`, then exactly `size` bytes of data. Reply payload: empty.
 *
 * @module
 */

import { concatBytes } from '../wire.js';
import { EMPTY, checkArgsz, checkXferSize, expectLength, expectMinLength } from './checks.js';
import { MigDataLayout, type MigDataLimits } from './mig-data.js';

/** A MIG_DATA_WRITE request. */
export interface MigDataWriteRequest {
  /** libvfio-user requires ≥ 8 + size; set it to that. */
  argsz: number;
  /** Migration data (size = data.length); decoding returns a view into the payload. */
  data: Uint8Array;
}

/** Encode a request payload: 8 bytes + data. */
export function encodeMigDataWriteRequest(request: MigDataWriteRequest): Uint8Array {
  return concatBytes([MigDataLayout.encode({ argsz: request.argsz, size: request.data.length }), request.data]);
}

/**
 * Decode a request payload, in libvfio-user's order: at least 8 bytes;
 * size ≤ maxDataXferSize; argsz ≥ 8 + size; exactly `size` data bytes.
 * @throws {ProtocolError} EINVAL
 */
export function decodeMigDataWriteRequest(payload: Uint8Array, limits: MigDataLimits): MigDataWriteRequest {
  expectMinLength('MIG_DATA_WRITE', payload, MigDataLayout.size);
  const request = MigDataLayout.decode(payload);
  checkXferSize('MIG_DATA_WRITE size', request.size, limits.maxDataXferSize);
  checkArgsz('MIG_DATA_WRITE', request.argsz, MigDataLayout.size + request.size);
  expectLength('MIG_DATA_WRITE', payload, MigDataLayout.size + request.size);
  return { argsz: request.argsz, data: payload.subarray(MigDataLayout.size) };
}

/** Encode the reply payload: empty. */
export function encodeMigDataWriteReply(): Uint8Array {
  return EMPTY;
}

/** Decode the reply payload, which must be empty. @throws {ProtocolError} EINVAL */
export function decodeMigDataWriteReply(payload: Uint8Array): void {
  expectLength('MIG_DATA_WRITE reply', payload, 0);
}
