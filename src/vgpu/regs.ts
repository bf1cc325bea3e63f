/**
 * The mdgpu register page (BAR2 offset 0), declared once. The device model reads it, the guest
 * driver's C header is generated from it (`npm run gen-header`), docs/device.md is checked
 * against it, and the tests walk it.
 *
 * Contract version 1.2 (docs/device.md says what each minor version added): identification, a
 * scratch register, the trapped aperture window, interrupt status/enable/raise, the mediation
 * mailbox and the queue doorbell.
 */
import { defineRegs } from '../pci/reg-file.js';

/** What register hooks may touch on the device. */
export interface RegContext {
  readonly apertureSize: bigint;
  /** WINDOW_BASE_LO/HI changed: re-validate the trapped window. */
  windowChanged(): void;
  /** IRQ_RAISE: set these IRQ_STATUS bits as if the device had. */
  raiseIrqBits(bits: number): void;
  /** IRQ_STATUS or IRQ_ENABLE changed: recompute the interrupt line. */
  updateInterrupts(): void;
  /** MBOX_DOORBELL written: execute the operation in MBOX_OPCODE with MBOX_ARG0..7. */
  mailboxDoorbell(): void;
  /** SCRATCH written (benchmarks use it as a phase marker the host can observe). */
  scratchWritten(value: number): void;
  /** QUEUE_DOORBELL written with a queue id: that queue has work and was asleep. */
  queueDoorbell(queue: number): void;
}

/** "MDGP" in ASCII, so a dump of the page identifies the device. */
export const MDGPU_ID = 0x4d44_4750;
export const MDGPU_CONTRACT_MAJOR = 1;
export const MDGPU_CONTRACT_MINOR = 3;
/** Interrupt sources; source n is delivered on MSI-X vector n. */
export const MDGPU_IRQ_SOURCES = 8;
const IRQ_BITS = (1 << MDGPU_IRQ_SOURCES) - 1;
/** Interrupt source raised when a mailbox operation completes. */
export const IRQ_SOURCE_MAILBOX = 0;
/** Raised by fences that ask for an interrupt. */
export const IRQ_SOURCE_FENCE = 1;
/** Raised when a submission fails. */
export const IRQ_SOURCE_ERROR = 2;
/** Raised when a kernel build ends, successfully or not (contract 1.2). */
export const IRQ_SOURCE_KERNEL = 3;
export const MAILBOX_ARGS = 8;
export const MAILBOX_RETS = 4;

const mailboxArgs = Object.fromEntries(
  Array.from({ length: MAILBOX_ARGS }, (_, i) => [`MBOX_ARG${i}`, { offset: 0x044 + 4 * i, doc: `Mailbox argument ${i}` }]),
) as Record<`MBOX_ARG${0 | 1 | 2 | 3 | 4 | 5 | 6 | 7}`, { offset: number; doc: string }>;
const mailboxRets = Object.fromEntries(
  Array.from({ length: MAILBOX_RETS }, (_, i) => [`MBOX_RET${i}`, { offset: 0x06c + 4 * i, ro: 0xffff_ffff, doc: `Mailbox result ${i}` }]),
) as Record<`MBOX_RET${0 | 1 | 2 | 3}`, { offset: number; ro: number; doc: string }>;

export const MDGPU_REGS = defineRegs<RegContext>()({
  ID: { offset: 0x000, reset: MDGPU_ID, ro: 0xffff_ffff, doc: 'Device signature, "MDGP"' },
  VERSION: {
    offset: 0x004,
    reset: (MDGPU_CONTRACT_MAJOR << 16) | MDGPU_CONTRACT_MINOR,
    ro: 0xffff_ffff,
    fields: { MINOR: [0, 16], MAJOR: [16, 16] },
    doc: 'Device contract version',
  },
  STATUS: { offset: 0x008, reset: 0x1, ro: 0xffff_ffff, fields: { READY: [0, 1] }, doc: 'Device status' },
  SCRATCH: {
    offset: 0x00c,
    postWrite: (ctx, value) => ctx.scratchWritten(value),
    doc: 'Free for the driver; proves trapped reads and writes work',
  },
  APERTURE_SIZE_LO: {
    offset: 0x010,
    ro: 0xffff_ffff,
    read: (ctx) => Number(ctx.apertureSize & 0xffff_ffffn),
    doc: 'Aperture (BAR0) size in bytes, low 32 bits',
  },
  APERTURE_SIZE_HI: {
    offset: 0x014,
    ro: 0xffff_ffff,
    read: (ctx) => Number(ctx.apertureSize >> 32n),
    doc: 'Aperture (BAR0) size in bytes, high 32 bits',
  },
  WINDOW_BASE_LO: {
    offset: 0x018,
    rsvd: 0xfff,
    postWrite: (ctx) => ctx.windowChanged(),
    doc: 'Aperture offset shown through the trapped page BAR0[0, 4 KiB), low 32 bits (page aligned)',
  },
  WINDOW_BASE_HI: {
    offset: 0x01c,
    postWrite: (ctx) => ctx.windowChanged(),
    doc: 'Aperture offset of the trapped window, high 32 bits',
  },
  IRQ_STATUS: {
    offset: 0x020,
    w1c: IRQ_BITS,
    rsvd: ~IRQ_BITS >>> 0,
    fields: {
      SOURCES: [0, MDGPU_IRQ_SOURCES],
      MAILBOX: [IRQ_SOURCE_MAILBOX, 1],
      FENCE: [IRQ_SOURCE_FENCE, 1],
      ERROR: [IRQ_SOURCE_ERROR, 1],
      KERNEL: [IRQ_SOURCE_KERNEL, 1],
    },
    postWrite: (ctx) => ctx.updateInterrupts(),
    doc: 'Pending interrupt sources; write 1 to clear',
  },
  IRQ_ENABLE: {
    offset: 0x024,
    rsvd: ~IRQ_BITS >>> 0,
    fields: {
      SOURCES: [0, MDGPU_IRQ_SOURCES],
      MAILBOX: [IRQ_SOURCE_MAILBOX, 1],
      FENCE: [IRQ_SOURCE_FENCE, 1],
      ERROR: [IRQ_SOURCE_ERROR, 1],
      KERNEL: [IRQ_SOURCE_KERNEL, 1],
    },
    postWrite: (ctx) => ctx.updateInterrupts(),
    doc: 'Interrupt sources allowed to interrupt',
  },
  IRQ_RAISE: {
    offset: 0x028,
    rsvd: ~IRQ_BITS >>> 0,
    read: () => 0,
    postWrite: (ctx, value) => ctx.raiseIrqBits(value),
    doc: 'Write a bit mask to raise those sources (self-test); reads 0',
  },
  MBOX_OPCODE: { offset: 0x040, rsvd: 0xffff_0000, fields: { OP: [0, 16] }, doc: 'Mailbox operation code (see the operation table)' },
  ...mailboxArgs,
  MBOX_DOORBELL: {
    offset: 0x064,
    read: () => 0,
    postWrite: (ctx) => ctx.mailboxDoorbell(),
    doc: 'Any write executes the mailbox operation; reads 0',
  },
  MBOX_STATUS: {
    offset: 0x068,
    ro: 0xffff_ffff,
    fields: { RESULT: [0, 16], SEQ: [16, 16] },
    doc: 'Result of the last operation (0 = OK) and a completion sequence number',
  },
  ...mailboxRets,
  QUEUE_DOORBELL: {
    offset: 0x080,
    read: () => 0,
    postWrite: (ctx, value) => ctx.queueDoorbell(value),
    doc: 'Write a queue id after publishing work to a queue whose doorbell_needed is 1; reads 0',
  },
});

export type MdgpuRegName = keyof typeof MDGPU_REGS;
