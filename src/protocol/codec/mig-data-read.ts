/**
 * VFIO_USER_MIG_DATA_READ (17), client → server: read migration data in a
 * saving state (PRE_COPY/STOP_COPY). Not sent by QEMU 11.1.3.
 *
 * Request payload (bytes after the 16-byte header), 8 bytes:
 * `argsz u32 @0 (most reply payload bytes), size u32 @4 (bytes wanted)`.
 * Reply payload: `argsz u32 @0 (= 8 + size), size u32 @4`, then `size` bytes
 * of data; a reply shorter than requested means "no more data for now".
 *
 * @module
 */

import { invalid } from '../errors.js';
import { concatBytes } from '../wire.js';
import { checkArgsz, checkXferSize, expectLength, expectMinLength } from './checks.js';
import { MigDataLayout, type MigDataLimits } from './mig-data.js';

/** A MIG_DATA_READ request. */
export interface MigDataReadRequest {
  /** Most reply payload bytes the client accepts; ≥ 8 + size. */
  argsz: number;
  /** Bytes of migration data wanted. */
  size: number;
}

/** A MIG_DATA_READ reply. */
export interface MigDataReadReply {
  /** Migration data (size = data.length); decoding returns a view into the payload. */
  data: Uint8Array;
}

/** Encode a request payload (8 bytes). */
export function encodeMigDataReadRequest(request: MigDataReadRequest): Uint8Array {
  return MigDataLayout.encode(request);
}

/**
 * Decode a request payload: exactly 8 bytes; size ≤ maxDataXferSize;
 * argsz ≥ 8 + size (libvfio-user's order).
 * @throws {ProtocolError} EINVAL
 */
export function decodeMigDataReadRequest(payload: Uint8Array, limits: MigDataLimits): MigDataReadRequest {
  expectLength('MIG_DATA_READ', payload, MigDataLayout.size);
  const request = MigDataLayout.decode(payload);
  checkXferSize('MIG_DATA_READ size', request.size, limits.maxDataXferSize);
  checkArgsz('MIG_DATA_READ', request.argsz, MigDataLayout.size + request.size);
  return request;
}

/** Encode a reply payload: 8 bytes + data, argsz = 8 + data.length. */
export function encodeMigDataReadReply(reply: MigDataReadReply): Uint8Array {
  return concatBytes([MigDataLayout.encode({ argsz: MigDataLayout.size + reply.data.length, size: reply.data.length }), reply.data]);
}

/**
 * Decode a reply payload: at least 8 bytes; size ≤ maxDataXferSize and ≤ the
 * requested size; argsz = 8 + size; exactly `size` data bytes.
 * @throws {ProtocolError} EINVAL
 */
export function decodeMigDataReadReply(payload: Uint8Array, limits: MigDataLimits): MigDataReadReply {
  expectMinLength('MIG_DATA_READ reply', payload, MigDataLayout.size);
  const reply = MigDataLayout.decode(payload);
  checkXferSize('MIG_DATA_READ reply size', reply.size, limits.maxDataXferSize);
  if (limits.requestSize !== undefined && reply.size > limits.requestSize) {
    throw invalid(`MIG_DATA_READ reply larger than requested: ${reply.size} > ${limits.requestSize} bytes`);
  }
  if (reply.argsz !== MigDataLayout.size + reply.size) {
    throw invalid(`Invalid MIG_DATA_READ reply argsz: ${reply.argsz} != ${MigDataLayout.size + reply.size}`);
  }
  expectLength('MIG_DATA_READ reply', payload, MigDataLayout.size + reply.size);
  return { data: payload.subarray(MigDataLayout.size) };
}
