/**
 * VFIO_USER_VERSION (1): request and reply share one format.
 *
 * Payload (bytes after the 16-byte header):
 * `major u16 @0, minor u16 @2`, then optionally UTF-8 JSON terminated by NUL:
 * `{"capabilities": {"max_msg_fds": 16, "max_data_xfer_size": 1048576, ...}}`.
 *
 * QEMU 11.1.3 reads the reply into its request buffer, so the reply payload
 * must not be larger than the request payload (198 bytes for QEMU's own
 * request): see {@link checkVersionReplyFits}.
 *
 * @module
 */

import { Command } from '../commands.js';
import { type ProtocolError, invalid } from '../errors.js';
import { QEMU_LIMITS } from '../limits.js';
import { checkReplyFits } from '../message.js';
import { concatBytes, struct, u16 } from '../wire.js';
import { expectMinLength } from './checks.js';

/** `struct vfio_user_version` without its variable JSON tail: 4 bytes. */
export const VersionLayout = struct('vfio_user_version', { major: u16, minor: u16 });

/** `migration` capability (legacy; QEMU only checks it). */
export interface MigrationCapability {
  /** Dirty-page granularity in bytes; a multiple of 4096. */
  pgsize?: number;
  /** Largest dirty bitmap in bytes. */
  maxBitmapSize?: number;
}

/** `twin_socket` capability. QEMU 11.1.3 does not support it: a server must not enable it. */
export interface TwinSocketCapability {
  supported?: boolean;
  /** Index of the twin socket in the reply's fd array. */
  fdIndex?: number;
}

/** The `capabilities` object of VERSION, with spec names in camelCase. Absent keys take the spec defaults. */
export interface VersionCapabilities {
  /** `max_msg_fds`: most fds the sender can receive in one message. */
  maxMsgFds?: number;
  /** `max_data_xfer_size`: largest `count` of a data transfer, bytes. */
  maxDataXferSize?: number;
  /** `pgsizes`: supported DMA page sizes OR'ed together, bytes. */
  pgsizes?: number;
  /** `max_dma_maps`: most simultaneous DMA mappings. */
  maxDmaMaps?: number;
  migration?: MigrationCapability;
  /** `write_multiple`: REGION_WRITE_MULTI is supported. */
  writeMultiple?: boolean;
  twinSocket?: TwinSocketCapability;
  /** Capability keys this code does not know, kept as parsed and otherwise ignored (QEMU warns "spurious capabilities"). */
  unknown?: Record<string, unknown>;
}

/** A VERSION message. Without `capabilities` the payload carries no JSON at all. */
export interface Version {
  major: number;
  minor: number;
  capabilities?: VersionCapabilities;
}

/** Upper bounds for capability values while decoding; defaults are QEMU 11.1.3's ({@link QEMU_LIMITS}). */
export interface VersionLimits {
  /** Largest acceptable `max_msg_fds` (default 16). */
  maxMsgFds?: number;
  /** Largest acceptable `max_data_xfer_size` in bytes (default 64 MiB). */
  maxDataXferSize?: number;
  /** Largest acceptable `max_dma_maps` (default 65535). */
  maxDmaMaps?: number;
  /** Largest acceptable `migration.max_bitmap_size` in bytes (default 256 MiB). */
  maxBitmapSize?: number;
  /** `pgsizes` and `migration.pgsize` must be non-zero multiples of this, bytes (default 4096). */
  pageSize?: number;
}

const utf8Encoder = new TextEncoder();
const utf8Decoder = new TextDecoder('utf-8', { fatal: true });

const KNOWN_CAPS = new Set(['max_msg_fds', 'max_data_xfer_size', 'pgsizes', 'max_dma_maps', 'migration', 'write_multiple', 'twin_socket']);

function capabilitiesToJson(caps: VersionCapabilities): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  if (caps.maxMsgFds !== undefined) out['max_msg_fds'] = caps.maxMsgFds;
  if (caps.maxDataXferSize !== undefined) out['max_data_xfer_size'] = caps.maxDataXferSize;
  if (caps.pgsizes !== undefined) out['pgsizes'] = caps.pgsizes;
  if (caps.maxDmaMaps !== undefined) out['max_dma_maps'] = caps.maxDmaMaps;
  if (caps.migration !== undefined) {
    const migration: Record<string, unknown> = {};
    if (caps.migration.pgsize !== undefined) migration['pgsize'] = caps.migration.pgsize;
    if (caps.migration.maxBitmapSize !== undefined) migration['max_bitmap_size'] = caps.migration.maxBitmapSize;
    out['migration'] = migration;
  }
  if (caps.writeMultiple !== undefined) out['write_multiple'] = caps.writeMultiple;
  if (caps.twinSocket !== undefined) {
    const twin: Record<string, unknown> = {};
    if (caps.twinSocket.supported !== undefined) twin['supported'] = caps.twinSocket.supported;
    if (caps.twinSocket.fdIndex !== undefined) twin['fd_index'] = caps.twinSocket.fdIndex;
    out['twin_socket'] = twin;
  }
  // Object.entries + fromEntries-style copying: a "__proto__" key stays a plain key.
  return Object.fromEntries([...Object.entries(out), ...Object.entries(caps.unknown ?? {})]);
}

/**
 * Encode a VERSION payload (request or reply).
 * @returns 4 bytes, plus JSON and its NUL terminator if `capabilities` is given
 */
export function encodeVersion(version: Version): Uint8Array {
  const head = VersionLayout.encode({ major: version.major, minor: version.minor });
  if (version.capabilities === undefined) return head;
  const json = JSON.stringify({ capabilities: capabilitiesToJson(version.capabilities) });
  return concatBytes([head, utf8Encoder.encode(json), new Uint8Array(1)]);
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function malformed(path: string, why: string): ProtocolError {
  return invalid(`Malformed version capability: ${path} ${why}`);
}

function readUint(object: Record<string, unknown>, key: string, path: string, rule: { max?: number; multipleOf?: number }): number | undefined {
  if (!Object.hasOwn(object, key)) return undefined;
  const value = object[key];
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 0) {
    throw malformed(path, `is not an unsigned integer: ${JSON.stringify(value)}`);
  }
  if (rule.max !== undefined && value > rule.max) {
    throw malformed(path, `is too large: ${value} > ${rule.max}`);
  }
  if (rule.multipleOf !== undefined && (value === 0 || value % rule.multipleOf !== 0)) {
    throw malformed(path, `is not a non-zero multiple of ${rule.multipleOf}: ${value}`);
  }
  return value;
}

function readBool(object: Record<string, unknown>, key: string, path: string): boolean | undefined {
  if (!Object.hasOwn(object, key)) return undefined;
  const value = object[key];
  if (typeof value !== 'boolean') {
    throw malformed(path, `is not a boolean: ${JSON.stringify(value)}`);
  }
  return value;
}

function readObject(object: Record<string, unknown>, key: string, path: string): Record<string, unknown> | undefined {
  if (!Object.hasOwn(object, key)) return undefined;
  const value = object[key];
  if (!isPlainObject(value)) {
    throw malformed(path, 'is not an object');
  }
  return value;
}

/**
 * Validate a parsed `capabilities` object. Known keys with malformed values
 * throw EINVAL (QEMU treats them as fatal); unknown keys are kept in `unknown`.
 */
export function parseCapabilities(caps: Record<string, unknown>, limits: VersionLimits = {}): VersionCapabilities {
  const pageSize = limits.pageSize ?? QEMU_LIMITS.defaultPgsize;
  const out: VersionCapabilities = {};

  const maxMsgFds = readUint(caps, 'max_msg_fds', 'max_msg_fds', { max: limits.maxMsgFds ?? QEMU_LIMITS.maxMsgFds });
  if (maxMsgFds !== undefined) out.maxMsgFds = maxMsgFds;
  const maxDataXferSize = readUint(caps, 'max_data_xfer_size', 'max_data_xfer_size', {
    max: limits.maxDataXferSize ?? QEMU_LIMITS.maxDataXferSize,
  });
  if (maxDataXferSize !== undefined) out.maxDataXferSize = maxDataXferSize;
  const pgsizes = readUint(caps, 'pgsizes', 'pgsizes', { multipleOf: pageSize });
  if (pgsizes !== undefined) out.pgsizes = pgsizes;
  const maxDmaMaps = readUint(caps, 'max_dma_maps', 'max_dma_maps', { max: limits.maxDmaMaps ?? QEMU_LIMITS.maxDmaMaps });
  if (maxDmaMaps !== undefined) out.maxDmaMaps = maxDmaMaps;

  const migration = readObject(caps, 'migration', 'migration');
  if (migration !== undefined) {
    const parsed: MigrationCapability = {};
    const pgsize = readUint(migration, 'pgsize', 'migration.pgsize', { multipleOf: pageSize });
    if (pgsize !== undefined) parsed.pgsize = pgsize;
    const maxBitmapSize = readUint(migration, 'max_bitmap_size', 'migration.max_bitmap_size', {
      max: limits.maxBitmapSize ?? QEMU_LIMITS.maxBitmapSize,
    });
    if (maxBitmapSize !== undefined) parsed.maxBitmapSize = maxBitmapSize;
    out.migration = parsed;
  }

  const writeMultiple = readBool(caps, 'write_multiple', 'write_multiple');
  if (writeMultiple !== undefined) out.writeMultiple = writeMultiple;

  const twin = readObject(caps, 'twin_socket', 'twin_socket');
  if (twin !== undefined) {
    const parsed: TwinSocketCapability = {};
    const supported = readBool(twin, 'supported', 'twin_socket.supported');
    if (supported !== undefined) parsed.supported = supported;
    const fdIndex = readUint(twin, 'fd_index', 'twin_socket.fd_index', {});
    if (fdIndex !== undefined) parsed.fdIndex = fdIndex;
    out.twinSocket = parsed;
  }

  const unknown = Object.entries(caps).filter(([key]) => !KNOWN_CAPS.has(key));
  if (unknown.length > 0) out.unknown = Object.fromEntries(unknown);
  return out;
}

/**
 * Decode a VERSION payload (request or reply) and validate its capabilities.
 *
 * Checks, in order: at least 4 bytes; if JSON follows, it ends with its only
 * NUL, is UTF-8, parses, and is an object; `capabilities` (optional) is an
 * object whose known keys are well-formed ({@link parseCapabilities}).
 * Top-level keys other than `capabilities` are ignored.
 *
 * @throws {ProtocolError} EINVAL
 */
export function decodeVersion(payload: Uint8Array, limits?: VersionLimits): Version {
  expectMinLength('VERSION', payload, VersionLayout.size);
  const { major, minor } = VersionLayout.decode(payload);
  if (payload.length === VersionLayout.size) return { major, minor };

  const text = payload.subarray(VersionLayout.size);
  const nul = text.indexOf(0);
  if (nul !== text.length - 1) {
    throw invalid(nul < 0 ? 'Malformed version data: JSON is not NUL-terminated' : `Malformed version data: NUL at byte ${nul} of ${text.length}`);
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(utf8Decoder.decode(text.subarray(0, nul)));
  } catch (cause) {
    const error = invalid(`Malformed version data: ${cause instanceof Error ? cause.message : String(cause)}`);
    throw Object.assign(error, { cause });
  }
  if (!isPlainObject(parsed)) {
    throw invalid('Malformed version data: JSON is not an object');
  }
  const caps = readObject(parsed, 'capabilities', 'capabilities');
  if (caps === undefined) return { major, minor };
  return { major, minor, capabilities: parseCapabilities(caps, limits) };
}

/** Encode the client's VERSION request payload. */
export const encodeVersionRequest: (version: Version) => Uint8Array = encodeVersion;
/** Decode the client's VERSION request payload. @throws {ProtocolError} EINVAL */
export const decodeVersionRequest: (payload: Uint8Array, limits?: VersionLimits) => Version = decodeVersion;
/** Encode the server's VERSION reply payload. Check it with {@link checkVersionReplyFits} before sending. */
export const encodeVersionReply: (version: Version) => Uint8Array = encodeVersion;
/** Decode the server's VERSION reply payload. @throws {ProtocolError} EINVAL */
export const decodeVersionReply: (payload: Uint8Array, limits?: VersionLimits) => Version = decodeVersion;

/**
 * QEMU 11.1.3 receives the VERSION reply into its request buffer: a reply
 * payload longer than the request payload is fatal for the device
 * (VFIO-USER.md §2 VERSION). QEMU's request payload is 198 bytes, so JSON
 * plus NUL must stay within 194 bytes.
 *
 * @param reply the encoded reply payload (or its length in bytes)
 * @param requestPayloadLength payload bytes of the client's request (default: QEMU's 198)
 * @throws {ProtocolError} EMSGSIZE if the reply does not fit
 */
export function checkVersionReplyFits(reply: Uint8Array | number, requestPayloadLength: number = QEMU_LIMITS.versionRequestPayload): void {
  checkReplyFits(Command.Version, typeof reply === 'number' ? reply : reply.length, requestPayloadLength);
}
