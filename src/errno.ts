/**
 * errno numbers and their names, shared by every layer: vfio-user replies carry a positive errno
 * (src/protocol), the host driver's C ABI returns a negative one (src/backend/host-library.ts
 * negates it first). One convention: the functions here take and give positive values.
 */
import { constants } from 'node:os';

/** Symbolic errno names known to Node on this platform (`EINVAL`, `E2BIG`, ...). */
export type ErrnoName = keyof typeof constants.errno;

/** Aliases share a number (EAGAIN/EWOULDBLOCK, ENOTSUP/EOPNOTSUPP): keep the first name, as libuv's err.code does. */
const nameByErrno: ReadonlyMap<number, string> = new Map(
  Object.entries(constants.errno)
    .reverse()
    .map(([name, value]) => [value, name]),
);

/** Positive errno value for `name`, from `node:os` `constants.errno`. */
export function errno(name: ErrnoName): number {
  return constants.errno[name];
}

/** Symbolic name of a positive errno value (`22` → `EINVAL`), or `E<n>` if unknown. */
export function errnoName(value: number): string {
  return nameByErrno.get(value) ?? `E${value}`;
}
