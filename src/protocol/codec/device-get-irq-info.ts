/**
 * VFIO_USER_DEVICE_GET_IRQ_INFO (7), client → server.
 *
 * Request and reply payload (bytes after the 16-byte header), 16 bytes
 * (`struct vfio_irq_info`): `argsz u32 @0, flags u32 @4, index u32 @8, count u32 @12`.
 * In the request only argsz and index are set (the spec: all other fields
 * must be zero). QEMU accepts a reply of at most 32 bytes in all.
 *
 * @module
 */

import { IrqInfoFlag } from '../commands.js';
import { struct, u32 } from '../wire.js';
import { checkArgsz, checkFlags, checkIndex, checkZero, expectLength } from './checks.js';

/** `struct vfio_irq_info`: 16 bytes. */
export const IrqInfoLayout = struct('vfio_irq_info', {
  argsz: u32,
  flags: u32,
  index: u32,
  /** Number of interrupts (sub-indices) of this type. */
  count: u32,
});

/** A decoded DEVICE_GET_IRQ_INFO reply. */
export type IrqInfo = ReturnType<typeof IrqInfoLayout.decode>;

/** A DEVICE_GET_IRQ_INFO request. */
export interface IrqInfoRequest {
  /** Most reply payload bytes the client accepts (QEMU: 16). */
  argsz: number;
  index: number;
}

/** Options for the decoders. */
export interface IrqInfoLimits {
  /** Number of IRQ indices of the device (num_irqs); index must be below it. */
  numIrqs?: number;
}

const KNOWN_FLAGS = IrqInfoFlag.Eventfd | IrqInfoFlag.Maskable | IrqInfoFlag.Automasked | IrqInfoFlag.NoResize;

/** Encode a request payload (16 bytes; flags and count zero). */
export function encodeIrqInfoRequest(request: IrqInfoRequest): Uint8Array {
  return IrqInfoLayout.encode({ argsz: request.argsz, flags: 0, index: request.index, count: 0 });
}

/**
 * Decode a request payload.
 * Checks, in order: exactly 16 bytes; argsz ≥ 16; flags 0; index < numIrqs; count 0.
 * @throws {ProtocolError} EINVAL
 */
export function decodeIrqInfoRequest(payload: Uint8Array, limits: IrqInfoLimits = {}): IrqInfoRequest {
  expectLength('DEVICE_GET_IRQ_INFO', payload, IrqInfoLayout.size);
  const request = IrqInfoLayout.decode(payload);
  checkArgsz('DEVICE_GET_IRQ_INFO', request.argsz, IrqInfoLayout.size);
  checkFlags('DEVICE_GET_IRQ_INFO', request.flags, 0);
  checkIndex('IRQ', request.index, limits.numIrqs);
  checkZero('DEVICE_GET_IRQ_INFO count', request.count);
  return { argsz: request.argsz, index: request.index };
}

/** Encode a reply payload (16 bytes). `argsz` should be 16. */
export function encodeIrqInfoReply(info: IrqInfo): Uint8Array {
  return IrqInfoLayout.encode(info);
}

/**
 * Decode a reply payload.
 * Checks, in order: exactly 16 bytes; argsz ≥ 16; known flags only; index < numIrqs.
 * @throws {ProtocolError} EINVAL
 */
export function decodeIrqInfoReply(payload: Uint8Array, limits: IrqInfoLimits = {}): IrqInfo {
  expectLength('DEVICE_GET_IRQ_INFO reply', payload, IrqInfoLayout.size);
  const info = IrqInfoLayout.decode(payload);
  checkArgsz('DEVICE_GET_IRQ_INFO reply', info.argsz, IrqInfoLayout.size);
  checkFlags('DEVICE_GET_IRQ_INFO reply', info.flags, KNOWN_FLAGS);
  checkIndex('IRQ', info.index, limits.numIrqs);
  return info;
}
