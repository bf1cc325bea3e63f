/**
 * The vfio-user wire structs' layout DSL: the generic one from src/layout/struct.ts, with short
 * input reported as a {@link ProtocolError} (EINVAL), because short input always comes from the
 * peer. See src/layout/struct.ts for how layouts are declared.
 *
 * @module
 */

import { ProtocolError } from './errors.js';
import { structWith } from '../layout/struct.js';

export {
  bytes,
  concatBytes,
  u8,
  u16,
  u32,
  u64,
  U32_MAX,
  U64_MAX,
  type FieldInfo,
  type Fields,
  type FieldType,
  type Layout,
  type ValueOf,
} from '../layout/struct.js';

/**
 * Declare a packed little-endian vfio-user struct; `decode` of a short buffer throws
 * ProtocolError EINVAL with a message like `vfio_user_region_access: need 16 bytes, have 9`.
 */
export const struct = structWith((message) => new ProtocolError('EINVAL', message));
