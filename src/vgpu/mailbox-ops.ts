/**
 * The mediation mailbox's operations, result codes and query parameters, declared once as data:
 * the device model dispatches on them, the C header is generated from them and docs/device.md
 * is checked against them.
 *
 * 64-bit values travel as two 32-bit registers, low word first.
 */

export interface MailboxOpDef {
  readonly code: number;
  readonly args: readonly string[];
  readonly rets: readonly string[];
  readonly doc: string;
}

export const MAILBOX_OPS = {
  NOP: { code: 0x0000, args: [], rets: [], doc: 'Does nothing; completes with OK' },
  QUERY: { code: 0x0001, args: ['param'], rets: ['value_lo', 'value_hi'], doc: 'Read a device parameter (see the query table)' },
  CTX_CREATE: { code: 0x0002, args: [], rets: ['ctx'], doc: 'Create a context (one per open file in the guest driver); ids are never 0' },
  CTX_DESTROY: { code: 0x0003, args: ['ctx'], rets: ['freed_buffers'], doc: 'Destroy a context and free every buffer it owns' },
  CAPS_READ: {
    code: 0x0004,
    args: ['ctx', 'buffer', 'offset'],
    rets: ['size'],
    doc: 'Write the capability record (struct mdgpu_caps) at offset in a buffer of this context; returns its size (contract 1.3)',
  },
  BO_ALLOC: {
    code: 0x0010,
    args: ['ctx', 'size_lo', 'size_hi', 'align_log2', 'flags'],
    rets: ['handle', 'offset_lo', 'offset_hi'],
    doc: 'Allocate a zeroed buffer of size bytes (rounded up to 4 KiB) aligned to 2^align_log2 (0 = 4 KiB); offset is its aperture (BAR0) offset',
  },
  BO_FREE: { code: 0x0011, args: ['ctx', 'handle'], rets: [], doc: 'Free a buffer of this context' },
  BO_INFO: {
    code: 0x0012,
    args: ['ctx', 'handle'],
    rets: ['offset_lo', 'offset_hi', 'size_lo', 'size_hi'],
    doc: 'Offset and size of a buffer of this context',
  },
  QUEUE_CREATE: {
    code: 0x0100,
    args: ['ctx', 'buffer', 'priority'],
    rets: ['queue'],
    doc: 'Make a buffer of this context a queue: a 4 KiB control page, then a power-of-two ring (4 KiB..16 MiB); priority 0..3',
  },
  QUEUE_DESTROY: { code: 0x0101, args: ['ctx', 'queue'], rets: [], doc: "Stop a queue; its buffer is released from the device's use" },
  KERNEL_CREATE: {
    code: 0x0200,
    args: ['ctx', 'buffer', 'offset', 'size', 'bindings', 'push_bytes'],
    rets: ['kernel'],
    doc: "Start building a compute kernel from SPIR-V placed in a buffer (copied out at once, then validated and compiled off the device's control path); the kernel is BUILDING until KERNEL_STATUS says otherwise (contract 1.2: the KERNEL interrupt source fires when a build ends); bindings storage buffers in set 0, push_bytes of push constants",
  },
  KERNEL_DESTROY: { code: 0x0201, args: ['ctx', 'kernel'], rets: [], doc: 'Destroy a kernel of this context (a build in progress is abandoned)' },
  KERNEL_CREATE2: {
    code: 0x0203,
    args: ['ctx', 'buffer', 'offset', 'size'],
    rets: ['kernel'],
    doc: 'Start building a kernel described by a struct mdgpu_kernel_desc at offset in a buffer (its SPIR-V, entry point and specialization in the same buffer); the layout is what the SPIR-V declares (contract 1.3)',
  },
  KERNEL_STATUS: {
    code: 0x0202,
    args: ['ctx', 'kernel'],
    rets: ['state', 'result'],
    doc: 'State of a kernel of this context (see the kernel state table) and, when FAILED, the result code that says why (contract 1.2)',
  },
} as const satisfies Record<string, MailboxOpDef>;

/** Operation codes kept for later contract versions; they complete with UNKNOWN_OPCODE today. */
export const MAILBOX_RESERVED = [
  { from: 0x0102, to: 0x01ff, use: 'more queue operations' },
  { from: 0x0204, to: 0x02ff, use: 'more kernel operations' },
] as const;

export const MAILBOX_RESULTS = {
  OK: { code: 0, doc: 'Success' },
  UNKNOWN_OPCODE: { code: 1, doc: 'No such operation' },
  BAD_CONTEXT: { code: 2, doc: 'The context does not exist' },
  BAD_SIZE: { code: 3, doc: 'Size is 0, not representable, or larger than the allocatable aperture' },
  BAD_FLAGS: { code: 4, doc: 'Unknown flag bits or alignment out of range' },
  NO_MEMORY: { code: 5, doc: 'No free aperture range of that size and alignment' },
  OVER_QUOTA: { code: 6, doc: "The allocation would exceed this VM's quota" },
  BAD_HANDLE: { code: 7, doc: "No such buffer in this context (never allocated, already freed, or another context's)" },
  TOO_MANY: { code: 8, doc: 'Too many contexts or buffers' },
  BAD_PARAM: { code: 9, doc: 'Unknown query parameter' },
  BUSY: { code: 10, doc: 'The object is in use (a buffer that already holds a queue)' },
  BAD_KERNEL: { code: 11, doc: 'SPIR-V refused: bad magic, or rejected by validation' },
  UNSUPPORTED: { code: 12, doc: 'The device has no execution backend' },
  THROTTLED: {
    code: 13,
    doc: "Refused for a cool-off period: this VM's work caused too many device resets or kernel builds that failed by time or memory (contract 1.2)",
  },
} as const;

/** The states of a kernel (KERNEL_STATUS.state, contract 1.2). */
export const KERNEL_STATES = {
  BUILDING: { code: 0, doc: 'Being validated and compiled; DISPATCH refuses it (BAD_KERNEL)' },
  READY: { code: 1, doc: 'Built: DISPATCH may use it' },
  FAILED: { code: 2, doc: 'Refused; KERNEL_STATUS.result says why (BAD_KERNEL, THROTTLED, OVER_QUOTA); only KERNEL_DESTROY is left to do' },
} as const;

export type MailboxResult = keyof typeof MAILBOX_RESULTS;

export const QUERY_PARAMS = {
  VERSION: { code: 0, doc: 'Contract version (major << 16 | minor)' },
  APERTURE_SIZE: { code: 1, doc: 'Aperture (BAR0) size in bytes' },
  ALLOC_BASE: { code: 2, doc: 'First aperture offset buffers are allocated from' },
  QUOTA: { code: 3, doc: 'Bytes this VM may allocate' },
  USED: { code: 4, doc: 'Bytes allocated now' },
  MAX_CONTEXTS: { code: 5, doc: 'Most contexts at once' },
  MAX_BUFFERS: { code: 6, doc: 'Most buffers at once' },
  MIN_ALIGN: { code: 7, doc: 'Allocation granule in bytes (4096)' },
  LARGEST_FREE: { code: 8, doc: 'Largest free range in bytes' },
  CONTEXTS: { code: 9, doc: 'Contexts alive now' },
  BUFFERS: { code: 10, doc: 'Buffers alive now' },
  MAX_QUEUES: { code: 11, doc: 'Most queues at once' },
  MAX_KERNELS: { code: 12, doc: 'Most kernels at once' },
  MAX_SUBMISSION: { code: 13, doc: 'Largest submission in bytes' },
  GRACE_US: { code: 14, doc: 'Microseconds a drained queue is still polled before it asks for a doorbell' },
  HAS_BACKEND: { code: 15, doc: '1 when queues can execute (an execution backend is attached)' },
  BINDING_ALIGN: { code: 16, doc: 'DISPATCH binding offsets must be multiples of this' },
  MAX_BINDING: { code: 17, doc: 'Largest DISPATCH binding in bytes' },
  KERNEL_BUILD_MS: { code: 18, doc: 'Longest a kernel build may take before it fails with BAD_KERNEL, in ms (contract 1.2)' },
  MAX_KERNEL_BUILDS: { code: 19, doc: 'Most kernel builds a VM may have in progress at once; more are THROTTLED (contract 1.2)' },
  CAPS_SIZE: { code: 20, doc: 'Bytes CAPS_READ writes (contract 1.3)' },
} as const;

/** BO_ALLOC flags; none are defined yet, so any bit set is BAD_FLAGS. */
export const BO_FLAGS = {
  CACHED: { bit: 0, doc: 'Map it write-back in the guest rather than write-combined (contract 1.3: the aperture is RAM on the host)' },
} as const;
export const BO_FLAGS_KNOWN = 0x1;
/** Smallest explicit alignment a buffer may ask for: 2^12 bytes (0 asks for the granule). */
export const MIN_ALIGN_LOG2 = 12;
/** Largest alignment a buffer may ask for: 2^30 bytes. */
export const MAX_ALIGN_LOG2 = 30;
