/**
 * Protocol errors and their two fixed responses (STYLE §5.5):
 *
 * - {@link ProtocolError}: this message is malformed or unsupported. The
 *   session replies with `VFIO_USER_F_ERROR` and `errno`, then carries on
 *   (libvfio-user `handle_request`).
 * - {@link FatalProtocolError}: the byte stream itself cannot be trusted any
 *   more (bad header, oversized message). The session closes the received fds
 *   and the socket (QEMU proxy `fatal:`).
 *
 * Messages follow denoland/std: capitalised, no trailing period, context
 * after a colon, e.g. `Region access out of bounds: region 2, 0x1000+8 > 0x1000`.
 *
 * @module
 */

import { constants } from 'node:os';
import { type ErrnoName, errno, errnoName } from '../errno.js';

export { type ErrnoName, errno, errnoName };

const errnoByName: Readonly<Record<string, number>> = constants.errno;

/** A message the peer sent is invalid or unsupported; answer it with an error reply carrying {@link errno}. */
export class ProtocolError extends Error {
  override readonly name: string = 'ProtocolError';
  /** Positive errno to put in the reply header's error field. */
  readonly errno: number;
  /** Symbolic errno name, like Node's `err.code` (`EINVAL`). */
  readonly code: string;

  /**
   * @param errno positive errno value or its name (`'EINVAL'`)
   * @param message denoland/std style: capitalised, no trailing period
   */
  constructor(errno: number | ErrnoName, message: string, options?: ErrorOptions) {
    super(message, options);
    const value = typeof errno === 'number' ? errno : errnoByName[errno];
    if (value === undefined || !Number.isInteger(value) || value <= 0) {
      throw new RangeError(`Invalid errno: ${String(errno)}`);
    }
    this.errno = value;
    this.code = errnoName(value);
  }

  /** True if the stream can no longer be trusted and the session must close. */
  get fatal(): boolean {
    return false;
  }
}

/** The stream cannot be trusted any more (bad header, oversized message): close the session. */
export class FatalProtocolError extends ProtocolError {
  override readonly name: string = 'FatalProtocolError';

  override get fatal(): boolean {
    return true;
  }
}

/** True if `error` is a {@link ProtocolError} (fatal or not). */
export function isProtocolError(error: unknown): error is ProtocolError {
  return error instanceof ProtocolError;
}

/** A {@link ProtocolError} with errno EINVAL, the answer to almost every malformed field. */
export function invalid(message: string): ProtocolError {
  return new ProtocolError('EINVAL', message);
}

/** Format a number or bigint as `0x…` for messages. */
export function hex(value: number | bigint): string {
  return `0x${value.toString(16)}`;
}
