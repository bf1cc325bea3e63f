/**
 * One queue's ring as the device reads it (contract 1.2): the control block at the start of the
 * queue buffer (declared once here; the guest header is generated from it), the ring pointers
 * read and written as single 8-byte atomics, and taking one submission off the ring — exactly
 * its bytes, validated, with head advanced past it at once. No scheduling and no execution:
 * those are the queue engine's (queues.ts) and the submission runner's (queue-execution.ts).
 */
import { structWith, u32, u64 } from '../layout/struct.js';
import {
  CMD_LAYOUTS,
  CommandError,
  validateSubmission,
  type ApertureRange,
  type CommandLimits,
  type SubmissionScope,
  type ValidSubmission,
} from './commands.js';

/** The control block at the start of a queue buffer (one page); the ring follows it. */
export const QueueControl = structWith((m) => new Error(m))('mdgpu_queue_control', {
  tail: u64,
  head: u64,
  doorbellNeeded: u32,
  state: u32,
  completed: u64,
  errors: u64,
  errorFence: u64,
  errorCode: u32,
  errorAt: u32,
  errorHead: u64,
});
/** What each control-block field means; also the kernel-doc of the generated mdgpu_cmd.h. */
export const QUEUE_CONTROL_DOCS: { readonly [K in keyof typeof QueueControl.fields]: string } = {
  tail: 'guest: bytes published into the ring so far (monotonic, a multiple of 8)',
  head: 'device: bytes consumed so far; ring space before it may be reused',
  doorbellNeeded: 'device: 1 while it sleeps: ring QUEUE_DOORBELL after publishing',
  state: 'device: 0, or MDGPU_SUBMIT_BAD_RING while the ring pointers are out of range',
  completed: 'device: submissions finished, successfully or not',
  errors: 'device: submissions that failed',
  errorFence: 'device: the error fence value of the last failure (bit 63 set)',
  errorCode: 'device: its MDGPU_SUBMIT_* code',
  errorAt: 'device: byte offset of the offending command in its submission',
  errorHead: 'device: ring position of the failed submission',
};
export const QUEUE_CONTROL_SIZE = 4096;
export const QUEUE_MIN_RING = 4096;
export const QUEUE_MAX_RING = 16 << 20;

/** What {@link QueueRing.take} found at the ring's head. */
export type Taken =
  | { submission: ValidSubmission; pos: bigint }
  /** A refused submission: its error, and its error fence when its header names one safely. */
  | { error: CommandError; fence: bigint | null; pos: bigint; fenceAt: ApertureRange | null }
  | 'empty'
  /**
   * The ring pointers make no sense: nothing can be consumed until the guest fixes them.
   * `stalled`: the BAD_RING error to report, or null when this tail was reported already.
   */
  | { stalled: CommandError | null; pos: bigint };

/** The device's view of one queue's control block and ring in the aperture. */
export class QueueRing {
  private words64: BigUint64Array | null = null;
  /** The last bad tail reported, so a stuck guest is reported once, not on every poll. */
  private badTail: bigint | null = null;

  /**
   * @param aperture the aperture as it is now (it is re-mapped when the device is reset)
   * @param control  aperture offset of the control block (8-byte aligned)
   */
  constructor(
    private readonly aperture: () => Uint8Array,
    readonly control: number,
    readonly ringSize: number,
  ) {}

  /** Aperture offset of the ring's first byte. */
  get ring(): number {
    return this.control + QUEUE_CONTROL_SIZE;
  }

  readControl() {
    return QueueControl.decode(this.aperture(), this.control);
  }

  writeControl(fields: Partial<ReturnType<typeof QueueControl.decode>>): void {
    const a = this.aperture();
    const v = new DataView(a.buffer, a.byteOffset, a.byteLength);
    const f = QueueControl.fields;
    for (const [name, value] of Object.entries(fields)) {
      const info = f[name as keyof typeof f];
      if (info.size === 8) v.setBigUint64(this.control + info.offset, value as bigint, true);
      else v.setUint32(this.control + info.offset, value as number, true);
    }
  }

  /**
   * The ring pointers are read and written as single 8-byte atomic accesses (Atomics on a
   * BigUint64Array over the aperture; the control block is 8-byte aligned), so a pointer the
   * guest is updating is never seen half old, half new. x86 is little-endian, as the format is.
   */
  private words(): BigUint64Array {
    const a = this.aperture();
    if (this.words64 === null || this.words64.buffer !== a.buffer) this.words64 = new BigUint64Array(a.buffer, a.byteOffset, Math.floor(a.byteLength / 8));
    return this.words64;
  }

  tail(): bigint {
    return Atomics.load(this.words(), (this.control + QueueControl.fields.tail.offset) / 8);
  }

  head(): bigint {
    return Atomics.load(this.words(), (this.control + QueueControl.fields.head.offset) / 8);
  }

  /** Work is published and not yet taken. */
  get pending(): boolean {
    return this.tail() !== this.head();
  }

  private setHead(value: bigint): void {
    Atomics.store(this.words(), (this.control + QueueControl.fields.head.offset) / 8, value);
  }

  /** Copy `length` ring bytes starting at ring position `pos` (wrapping at the ring's end). */
  private bytes(pos: bigint, length: number): Uint8Array {
    const a = this.aperture();
    const out = new Uint8Array(length);
    const start = Number(pos % BigInt(this.ringSize));
    const first = Math.min(length, this.ringSize - start);
    out.set(a.subarray(this.ring + start, this.ring + start + first));
    if (first < length) out.set(a.subarray(this.ring, this.ring + (length - first)), first);
    return out;
  }

  /**
   * Take the next submission off the ring: validated, or failed with its error. Advances head
   * past it at once (the bytes were copied), so the guest can reuse the space while it runs.
   * `lost`: the context was lost, so the submission fails without being validated.
   */
  take(scope: SubmissionScope, limits: CommandLimits, lost: string | null): Taken {
    const head = this.head();
    const tail = this.tail();
    if (tail === head) return 'empty';
    if (tail < head || tail - head > BigInt(this.ringSize) || tail % 8n !== 0n) {
      // Nothing sane can be consumed; report once per bad tail value and wait for a good one.
      if (this.badTail === tail) return { stalled: null, pos: head };
      this.badTail = tail;
      return { stalled: new CommandError('BAD_RING', `tail ${tail} with head ${head} and a ring of ${this.ringSize}`), pos: head };
    }
    this.badTail = null;
    const available = Number(tail - head);
    // Copy exactly one submission: its header first, then as many bytes as it says it has (at
    // most what was published and what a submission may be), not everything published.
    const headerBytes = this.bytes(head, Math.min(available, CMD_LAYOUTS.SUBMIT.size));
    let length = headerBytes.length;
    if (headerBytes.length === CMD_LAYOUTS.SUBMIT.size) {
      const claimed = new DataView(headerBytes.buffer).getUint32(CMD_LAYOUTS.SUBMIT.fields.length.offset, true);
      length = Math.min(available, limits.maxSubmissionBytes, Math.max(CMD_LAYOUTS.SUBMIT.size, claimed));
    }
    const bytes = length === headerBytes.length ? headerBytes : this.bytes(head, length);
    try {
      if (lost !== null) throw new CommandError('CONTEXT_LOST', lost);
      const submission = validateSubmission(bytes, scope, limits);
      this.setHead(head + BigInt(submission.length));
      return { submission, pos: head };
    } catch (err) {
      if (!(err instanceof CommandError)) throw err;
      // Skip exactly the failed submission when its length is trustworthy, else everything
      // published: a garbled length gives no safe place to resume. A lost context's
      // submissions are not validated at all, but their SUBMIT header still names the fence a
      // waiter sleeps on: it gets its error fence too, instead of waiting for its timeout.
      let skip = BigInt(available);
      let fence: bigint | null = null;
      let fenceAt: ApertureRange | null = null;
      if (bytes.length >= CMD_LAYOUTS.SUBMIT.size && err.error !== 'BAD_LENGTH' && err.error !== 'TRUNCATED' && err.error !== 'TOO_LARGE') {
        // Read the SUBMIT header's fields by their declared offsets: only to place the error fence.
        const v = new DataView(bytes.buffer);
        const f = CMD_LAYOUTS.SUBMIT.fields;
        const length = v.getUint32(f.length.offset, true);
        if (length % 8 === 0 && length >= CMD_LAYOUTS.SUBMIT.size && length <= available) skip = BigInt(length);
        const fenceBuffer = v.getUint32(f.fenceBuffer.offset, true);
        if (fenceBuffer !== 0) {
          const value = v.getBigUint64(f.fenceValue.offset, true);
          const offset = v.getBigUint64(f.fenceOffset.offset, true);
          const b = scope.buffer(fenceBuffer);
          if (b !== undefined && offset % 8n === 0n && offset + 8n <= BigInt(b.size)) {
            fence = value;
            fenceAt = { buffer: fenceBuffer, offset: b.offset + Number(offset), size: 8 };
          }
        }
      }
      this.setHead(head + skip);
      return { error: err, fence, pos: head, fenceAt };
    }
  }
}
