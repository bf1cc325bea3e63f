/**
 * VFIO_USER_DEVICE_SET_IRQS (8), client → server.
 *
 * Request payload (bytes after the 16-byte header): `struct vfio_irq_set`,
 * `argsz u32 @0, flags u32 @4, index u32 @8, start u32 @12, count u32 @16`,
 * then data @20: nothing for DATA_NONE, `count` bool bytes for DATA_BOOL,
 * nothing for DATA_EVENTFD (the eventfds travel as SCM_RIGHTS, one per
 * sub-index, or none to de-assign). argsz is the payload size, data included.
 * Reply payload: empty.
 *
 * @module
 */

import { IrqSetFlag } from '../commands.js';
import { hex, invalid } from '../errors.js';
import { U32_MAX, concatBytes, struct, u32 } from '../wire.js';
import { EMPTY, checkArgsz, checkFlags, checkIndex, expectLength, expectMinLength } from './checks.js';

/** `struct vfio_irq_set` without its data: 20 bytes. */
export const IrqSetLayout = struct('vfio_irq_set', {
  argsz: u32,
  flags: u32,
  index: u32,
  start: u32,
  count: u32,
});

/** The ACTION_ of a SET_IRQS request. */
export type IrqAction = 'mask' | 'unmask' | 'trigger';

/** The DATA_ of a SET_IRQS request. */
export type IrqData =
  /** DATA_NONE: act on every sub-index in [start, start+count) */
  | { kind: 'none' }
  /** DATA_BOOL: act on sub-index start+i where values[i] is true */
  | { kind: 'bool'; values: boolean[] }
  /** DATA_EVENTFD: the fds that came with the message, one per sub-index; none de-assigns */
  | { kind: 'eventfd' };

/** A decoded DEVICE_SET_IRQS request. */
export interface SetIrqsRequest {
  /** IRQ index (PciIrq). */
  index: number;
  /** First sub-index. */
  start: number;
  /** Number of sub-indices; 0 (with start 0, TRIGGER, DATA_NONE) disables the whole index. */
  count: number;
  action: IrqAction;
  data: IrqData;
}

/** Limits for {@link decodeSetIrqsRequest}. */
export interface SetIrqsLimits {
  /** Largest acceptable argsz in bytes (QEMU: its max_data_xfer_size). */
  maxDataXferSize: number;
  /** Number of IRQ indices of the device (num_irqs); index must be below it. */
  numIrqs?: number;
  /** Number of sub-indices of IRQ index `index` (its IRQ_INFO count); start+count must not pass it. */
  irqCount?: (index: number) => number;
  /** Number of fds that came with the message: only with DATA_EVENTFD, and 0 or `count`. */
  fdCount?: number;
}

const ACTION_FLAGS: Readonly<Record<IrqAction, number>> = {
  mask: IrqSetFlag.ActionMask,
  unmask: IrqSetFlag.ActionUnmask,
  trigger: IrqSetFlag.ActionTrigger,
};

const DATA_FLAGS: Readonly<Record<IrqData['kind'], number>> = {
  none: IrqSetFlag.DataNone,
  bool: IrqSetFlag.DataBool,
  eventfd: IrqSetFlag.DataEventfd,
};

/** Encode a request payload: 20 bytes, plus `count` bool bytes for DATA_BOOL. */
export function encodeSetIrqsRequest(request: SetIrqsRequest): Uint8Array {
  const data = request.data.kind === 'bool' ? Uint8Array.from(request.data.values, (v) => (v ? 1 : 0)) : EMPTY;
  if (request.data.kind === 'bool' && data.length !== request.count) {
    throw new RangeError(`SET_IRQS bool data needs ${request.count} values, have ${data.length}`);
  }
  const head = IrqSetLayout.encode({
    argsz: IrqSetLayout.size + data.length,
    flags: ACTION_FLAGS[request.action] | DATA_FLAGS[request.data.kind],
    index: request.index,
    start: request.start,
    count: request.count,
  });
  return data.length === 0 ? head : concatBytes([head, data]);
}

function actionOf(flags: number): IrqAction {
  switch (flags & IrqSetFlag.ActionTypeMask) {
    case IrqSetFlag.ActionMask:
      return 'mask';
    case IrqSetFlag.ActionUnmask:
      return 'unmask';
    case IrqSetFlag.ActionTrigger:
      return 'trigger';
    default:
      throw invalid(`Invalid DEVICE_SET_IRQS flags: need exactly one ACTION_ bit in ${hex(flags)}`);
  }
}

function dataKindOf(flags: number): IrqData['kind'] {
  switch (flags & IrqSetFlag.DataTypeMask) {
    case IrqSetFlag.DataNone:
      return 'none';
    case IrqSetFlag.DataBool:
      return 'bool';
    case IrqSetFlag.DataEventfd:
      return 'eventfd';
    default:
      throw invalid(`Invalid DEVICE_SET_IRQS flags: need exactly one DATA_ bit in ${hex(flags)}`);
  }
}

/**
 * Decode a request payload.
 *
 * Checks, in order: at least 20 bytes; argsz ≥ 20, = payload size, ≤
 * maxDataXferSize; no unknown flags, exactly one DATA_ and one ACTION_ bit;
 * index < numIrqs; start + count ≤ 2^32-1; count 0 only as the "disable
 * index" form (start 0, TRIGGER, DATA_NONE); start + count ≤ irqCount(index);
 * DATA_BOOL carries exactly `count` bytes, the others none; fds only with
 * DATA_EVENTFD and either none or one per sub-index.
 *
 * @throws {ProtocolError} EINVAL
 */
export function decodeSetIrqsRequest(payload: Uint8Array, limits: SetIrqsLimits): SetIrqsRequest {
  expectMinLength('DEVICE_SET_IRQS', payload, IrqSetLayout.size);
  const head = IrqSetLayout.decode(payload);
  checkArgsz('DEVICE_SET_IRQS', head.argsz, IrqSetLayout.size, limits.maxDataXferSize);
  if (head.argsz !== payload.length) {
    throw invalid(`Invalid DEVICE_SET_IRQS argsz: ${head.argsz} for a payload of ${payload.length} bytes`);
  }
  checkFlags('DEVICE_SET_IRQS', head.flags, IrqSetFlag.DataTypeMask | IrqSetFlag.ActionTypeMask);
  const kind = dataKindOf(head.flags);
  const action = actionOf(head.flags);
  checkIndex('IRQ', head.index, limits.numIrqs);
  if (head.start + head.count > U32_MAX) {
    throw invalid(`DEVICE_SET_IRQS range wraps around 2^32: ${head.start}+${head.count}`);
  }
  if (head.count === 0 && (head.start !== 0 || action !== 'trigger' || kind !== 'none')) {
    throw invalid('Invalid DEVICE_SET_IRQS: count 0 needs start 0, ACTION_TRIGGER and DATA_NONE');
  }
  if (head.count > 0 && limits.irqCount !== undefined) {
    const available = limits.irqCount(head.index);
    if (head.start + head.count > available) {
      throw invalid(`DEVICE_SET_IRQS range out of bounds: index ${head.index}, ${head.start}+${head.count} > ${available}`);
    }
  }
  const dataBytes = kind === 'bool' ? head.count : 0;
  expectLength('DEVICE_SET_IRQS', payload, IrqSetLayout.size + dataBytes);
  if (limits.fdCount !== undefined && limits.fdCount !== 0) {
    if (kind !== 'eventfd') {
      throw invalid(`Invalid DEVICE_SET_IRQS fds: ${limits.fdCount} fds without DATA_EVENTFD`);
    }
    if (limits.fdCount !== head.count) {
      throw invalid(`Invalid DEVICE_SET_IRQS fds: ${limits.fdCount} fds for count ${head.count}`);
    }
  }
  const base = { index: head.index, start: head.start, count: head.count, action };
  if (kind === 'bool') {
    const values = Array.from(payload.subarray(IrqSetLayout.size), (byte) => byte !== 0);
    return { ...base, data: { kind, values } };
  }
  return { ...base, data: { kind } };
}

/** Encode the reply payload: empty. */
export function encodeSetIrqsReply(): Uint8Array {
  return EMPTY;
}

/** Decode the reply payload, which must be empty. @throws {ProtocolError} EINVAL */
export function decodeSetIrqsReply(payload: Uint8Array): void {
  expectLength('DEVICE_SET_IRQS reply', payload, 0);
}
