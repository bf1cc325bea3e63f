/**
 * VFIO_USER_DEVICE_GET_INFO (4), client → server.
 *
 * Request and reply payload (bytes after the 16-byte header), 16 bytes:
 * `argsz u32 @0, flags u32 @4, num_regions u32 @8, num_irqs u32 @12`
 * (`struct vfio_user_device_info`: the kernel's `vfio_device_info` without
 * `cap_offset`/`pad`). In the request only argsz is set; the spec says the
 * other fields must be zero, and QEMU zero-fills them.
 *
 * QEMU accepts a reply of at most 32 bytes in all (16 of payload) and needs
 * flags ⊇ PCI, 8 ≤ num_regions ≤ 100 and 3 ≤ num_irqs ≤ 50.
 *
 * @module
 */

import { DeviceInfoFlag } from '../commands.js';
import { struct, u32 } from '../wire.js';
import { checkArgsz, checkFlags, checkZero, expectLength } from './checks.js';

/** `struct vfio_user_device_info`: 16 bytes. */
export const DeviceInfoLayout = struct('vfio_user_device_info', {
  argsz: u32,
  flags: u32,
  numRegions: u32,
  numIrqs: u32,
});

/** A decoded DEVICE_GET_INFO request or reply. */
export type DeviceInfo = ReturnType<typeof DeviceInfoLayout.decode>;

/** The request: only the client's reply buffer size matters. */
export interface DeviceGetInfoRequest {
  /** Most reply payload bytes the client accepts (QEMU: 16). */
  argsz: number;
}

const KNOWN_FLAGS = DeviceInfoFlag.Reset | DeviceInfoFlag.Pci;

/** Encode a DEVICE_GET_INFO request payload (16 bytes; all but argsz zero). */
export function encodeDeviceGetInfoRequest(request: DeviceGetInfoRequest): Uint8Array {
  return DeviceInfoLayout.encode({ argsz: request.argsz, flags: 0, numRegions: 0, numIrqs: 0 });
}

/**
 * Decode a DEVICE_GET_INFO request payload.
 * Checks: exactly 16 bytes; argsz ≥ 16; flags, num_regions, num_irqs zero.
 * @throws {ProtocolError} EINVAL
 */
export function decodeDeviceGetInfoRequest(payload: Uint8Array): DeviceGetInfoRequest {
  expectLength('DEVICE_GET_INFO', payload, DeviceInfoLayout.size);
  const info = DeviceInfoLayout.decode(payload);
  checkArgsz('DEVICE_GET_INFO', info.argsz, DeviceInfoLayout.size);
  checkFlags('DEVICE_GET_INFO', info.flags, 0);
  checkZero('DEVICE_GET_INFO num_regions', info.numRegions);
  checkZero('DEVICE_GET_INFO num_irqs', info.numIrqs);
  return { argsz: info.argsz };
}

/** Encode a DEVICE_GET_INFO reply payload (16 bytes). `argsz` should be 16. */
export function encodeDeviceGetInfoReply(info: DeviceInfo): Uint8Array {
  return DeviceInfoLayout.encode(info);
}

/**
 * Decode a DEVICE_GET_INFO reply payload.
 * Checks: exactly 16 bytes; argsz ≥ 16; only RESET and PCI flags.
 * @throws {ProtocolError} EINVAL
 */
export function decodeDeviceGetInfoReply(payload: Uint8Array): DeviceInfo {
  expectLength('DEVICE_GET_INFO reply', payload, DeviceInfoLayout.size);
  const info = DeviceInfoLayout.decode(payload);
  checkArgsz('DEVICE_GET_INFO reply', info.argsz, DeviceInfoLayout.size);
  checkFlags('DEVICE_GET_INFO reply', info.flags, KNOWN_FLAGS);
  return info;
}
