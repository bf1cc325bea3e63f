/**
 * Whole messages: the 16-byte header plus a command payload.
 *
 * The codecs in `codec/` work on the payload only (the bytes after the
 * header); this module puts headers on and takes them off.
 *
 * @module
 */

import { commandSpecName, HEADER_FLAGS_KNOWN, HEADER_SIZE, HeaderFlag, HeaderLayout, MessageType, type Header } from './commands.js';
import { FatalProtocolError, ProtocolError, hex } from './errors.js';
import { U32_MAX } from './wire.js';

/** Header fields the sender chooses; `size` is computed. `error` defaults to 0. */
export interface HeaderInit {
  msgId: number;
  command: number;
  /** Full flags word, type bits included (e.g. `MessageType.Reply | HeaderFlag.Error`). */
  flags: number;
  /** Positive errno; only meaningful with {@link HeaderFlag.Error}. */
  error?: number;
}

const EMPTY = new Uint8Array(0);

/**
 * Build a message: header with `size` = 16 + payload bytes, followed by `payload`.
 * @returns a new buffer of 16 + `payload.length` bytes
 */
export function encodeMessage(header: HeaderInit, payload: Uint8Array = EMPTY): Uint8Array {
  const size = HEADER_SIZE + payload.length;
  if (size > U32_MAX) {
    throw new RangeError(`Message too large: ${size} bytes`);
  }
  const message = new Uint8Array(size);
  HeaderLayout.encode({ msgId: header.msgId, command: header.command, size, flags: header.flags, error: header.error ?? 0 }, message);
  message.set(payload, HEADER_SIZE);
  return message;
}

/**
 * A successful reply to `request`: same id and command, type REPLY.
 * @returns a new buffer of 16 + `payload.length` bytes
 */
export function replyMessage(request: Pick<Header, 'msgId' | 'command'>, payload: Uint8Array = EMPTY): Uint8Array {
  return encodeMessage({ msgId: request.msgId, command: request.command, flags: MessageType.Reply }, payload);
}

/**
 * An error reply to `request`: header only (the spec forbids a payload), flags
 * REPLY|ERROR, size 16, as QEMU builds them (`vfio_user_send_error`).
 * @param errno positive errno value
 * @returns a new 16-byte buffer
 */
export function errorReply(request: Pick<Header, 'msgId' | 'command'>, errno: number): Uint8Array {
  if (!Number.isInteger(errno) || errno <= 0 || errno > U32_MAX) {
    throw new RangeError(`Invalid errno: ${errno}`);
  }
  return encodeMessage({
    msgId: request.msgId,
    command: request.command,
    flags: MessageType.Reply | HeaderFlag.Error,
    error: errno,
  });
}

/** Type bits of a header's flags (0 = command, 1 = reply; others are invalid). */
export function messageType(flags: number): number {
  return flags & HeaderFlag.TypeMask;
}

/** True if the header is a reply with the ERROR flag set. */
export function isErrorReply(header: Pick<Header, 'flags'>): boolean {
  return messageType(header.flags) === MessageType.Reply && (header.flags & HeaderFlag.Error) !== 0;
}

/** Limits for {@link checkHeader}. */
export interface HeaderLimits {
  /** Largest acceptable message in bytes, header included. */
  maxMessageSize: number;
}

/**
 * Validate a header as soon as its 16 bytes are in, before the body is read
 * or allocated. Every failure means the stream cannot be trusted: a wrong
 * size desynchronises framing for good.
 *
 * @throws {FatalProtocolError} EPROTO for bad type or unknown flag bits,
 *   EINVAL for size < 16, EMSGSIZE for size > `maxMessageSize`.
 */
export function checkHeader(header: Header, limits: HeaderLimits): void {
  const type = messageType(header.flags);
  if (type !== MessageType.Command && type !== MessageType.Reply) {
    throw new FatalProtocolError('EPROTO', `Invalid message type: ${type} in message ${header.msgId}`);
  }
  const unknown = header.flags & ~HEADER_FLAGS_KNOWN;
  if (unknown !== 0) {
    throw new FatalProtocolError('EPROTO', `Unknown header flags: ${hex(unknown >>> 0)} in message ${header.msgId}`);
  }
  if (header.size < HEADER_SIZE) {
    throw new FatalProtocolError('EINVAL', `Message size too small: ${header.size} < ${HEADER_SIZE}`);
  }
  if (header.size > limits.maxMessageSize) {
    throw new FatalProtocolError('EMSGSIZE', `Message too large: ${commandSpecName(header.command)} of ${header.size} bytes > ${limits.maxMessageSize}`);
  }
}

/** A message split into its header and payload. */
export interface DecodedMessage {
  header: Header;
  /** The bytes after the header; a view into the input. */
  payload: Uint8Array;
}

/**
 * Split one complete message (as `encodeMessage` produces) into header and payload.
 * @throws {FatalProtocolError} as {@link checkHeader}, or EINVAL if `size` differs from the buffer length
 */
export function decodeMessage(message: Uint8Array, limits: HeaderLimits): DecodedMessage {
  if (message.length < HEADER_SIZE) {
    throw new FatalProtocolError('EINVAL', `Message too short: ${message.length} < ${HEADER_SIZE} bytes`);
  }
  const header = HeaderLayout.decode(message);
  checkHeader(header, limits);
  if (header.size !== message.length) {
    throw new FatalProtocolError('EINVAL', `Message size mismatch: header says ${header.size}, have ${message.length}`);
  }
  return { header, payload: message.subarray(HEADER_SIZE) };
}

/**
 * Check that a reply payload fits the peer's receive buffer. QEMU reads a
 * reply into a buffer sized from its request; a larger reply is not read,
 * the stream desynchronises and the device dies (VFIO-USER.md §1 "Reply size").
 *
 * @param replyPayloadLength reply bytes after the header
 * @param maxPayloadLength most payload bytes the peer accepts
 * @throws {ProtocolError} EMSGSIZE if the reply is too large
 */
export function checkReplyFits(command: number, replyPayloadLength: number, maxPayloadLength: number): void {
  if (replyPayloadLength > maxPayloadLength) {
    throw new ProtocolError(
      'EMSGSIZE',
      `Reply too large for the client: ${commandSpecName(command)} payload of ${replyPayloadLength} bytes > ${maxPayloadLength}`,
    );
  }
}
