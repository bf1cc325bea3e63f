/**
 * VFIO_USER_DEVICE_RESET (13), client → server. Header only in both
 * directions: request and reply payloads are empty.
 *
 * @module
 */

import { EMPTY, expectLength } from './checks.js';

/** Encode the request payload: empty. */
export function encodeDeviceResetRequest(): Uint8Array {
  return EMPTY;
}

/** Decode the request payload, which must be empty. @throws {ProtocolError} EINVAL */
export function decodeDeviceResetRequest(payload: Uint8Array): void {
  expectLength('DEVICE_RESET', payload, 0);
}

/** Encode the reply payload: empty. */
export function encodeDeviceResetReply(): Uint8Array {
  return EMPTY;
}

/** Decode the reply payload, which must be empty. @throws {ProtocolError} EINVAL */
export function decodeDeviceResetReply(payload: Uint8Array): void {
  expectLength('DEVICE_RESET reply', payload, 0);
}
