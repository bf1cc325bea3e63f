/**
 * The submission ring, from the submitter's side: how batches reach the host driver's ring
 * service (`mdgpu_host_ring_create`, ABI 2.2, host-driver/src/ring.c) and how their outcomes
 * come back. One data path for the compute device in this process (host-driver.ts) and in the
 * daemon's compute worker (isolated.ts).
 *
 * The memory is a memfd this side creates and maps; the service maps it too (in the worker, from
 * the descriptor the worker inherits). A header page, then the submission area (SUBMIT and
 * RELEASE records: a batch as the host driver's own records, encoded straight into the mapping
 * by {@link BatchEncoder}), then the completion area (STARTED, DONE, FAILED, BROKEN). Each area
 * is a byte ring with one writer and one reader; positions count bytes modulo 2^32 (see the
 * header's comment in mdgpu_host.h). Doorbells are eventfds: this side writes `submitEvent`
 * after publishing, the service writes `completeEvent`, which this side watches on Node's event
 * loop (a uv_poll through the addon) — nothing blocks, nothing is serialized, nothing is
 * allocated per batch but the Promise, the request and the status the caller gets.
 *
 * Bounds: a batch larger than the submission area is refused up front (E2BIG); one larger than
 * its free space waits in a queue here, in order, until the service has taken enough
 * (backpressure); at most {@link MAX_OUTSTANDING} batches are written and unsettled at a time,
 * which is what the completion area is sized for. The area sizes hold every batch the
 * validator accepts (see {@link SUBMIT_AREA_SIZE}).
 *
 * What the service writes is checked too (positions, record sizes): a ring that does not add
 * up is reported through `onBroken`, never read past.
 */
import { constants } from 'node:os';
import type { DeviceCommand } from '../device-commands.js';
import { errnoName } from '../errno.js';
import { warn } from '../log.js';
import type { NativeBinding, PollerInstance } from '../native/binding.js';
import { BackendError, type SubmissionStatus, type SubmitHooks } from './backend.js';
import { type BatchEncoder, STATUS, STATUS_DEVICE_TIME } from './host-records.js';

/** `struct mdgpu_host_ring_header` and the memory's layout. */
export const RING = {
  magic: 0x4752444d, // MDGPU_HOST_RING_MAGIC
  version: 1, // MDGPU_HOST_RING_VERSION
  headerSize: 4096, // MDGPU_HOST_RING_HEADER_SIZE: the areas start here
  minArea: 4096,
  magicAt: 0,
  versionAt: 4,
  submitSizeAt: 8,
  completeSizeAt: 12,
  submitTail: 64,
  submitHead: 128,
  completeTail: 192,
  completeHead: 256,
} as const;

/** `enum mdgpu_host_ring_type`. */
export enum RecordType {
  Pad = 0,
  Submit = 1,
  Release = 2,
  Started = 16,
  Done = 17,
  Failed = 18,
  Broken = 19,
}

/** `enum mdgpu_host_ring_kind`: what an id bound to a ring names. */
export enum RingKind {
  Memory = 1,
  Kernel = 2,
}

/** `enum mdgpu_host_ring_stage`: where a FAILED batch failed. */
export enum Stage {
  Record = 1,
  Submit = 2,
  Wait = 3,
  Device = 4,
}

/** Bytes of a SUBMIT record's header (`struct mdgpu_host_ring_submit`), before the batch's records. */
export const SUBMIT_HEADER = 32;
/** Bytes of a RELEASE record (`struct mdgpu_host_ring_release`). */
export const RELEASE_SIZE = 16;
/** Bytes of a FAILED record before its message (`struct mdgpu_host_ring_failed`). */
export const FAILED_HEADER = 24;
/** Where a DONE record's status starts (`struct mdgpu_host_ring_done`). */
export const DONE_STATUS_AT = 16;

/**
 * Bytes of the submission area: a batch must fit in it whole. The validator (src/vgpu/commands.ts)
 * accepts submissions of at most 1 MiB and 4096 commands; each guest command becomes one 64-byte
 * `mdgpu_host_cmd2`, each 24-byte guest binding one 40-byte descriptor (5/3 of its bytes; a
 * 40-byte guest descriptor stays 40), data stays data: at most 64 × 4096 + 5/3 × 1 MiB + 32
 * ≈ 2 MiB (test/backend/ring.test.ts keeps this sum against the validator's limits). The pages
 * are touched only as batches pass through them.
 */
export const SUBMIT_AREA_SIZE = 4 << 20;
/** Bytes of the completion area: {@link MAX_OUTSTANDING} batches' STARTED and longest FAILED (24 + 24 + 1024 bytes each) fit twice. */
export const COMPLETE_AREA_SIZE = 1 << 20;
/** Batches written to the ring and not yet settled, at most; more wait in order. */
export const MAX_OUTSTANDING = 256;

/** The ring's memory and doorbells, made on the submitter's side. */
export class RingMemory {
  readonly view: DataView;
  readonly bytes: Uint8Array;
  #closed = false;

  private constructor(
    private readonly native: NativeBinding,
    /** The memfd: header, submission area, completion area. */
    readonly fd: number,
    /** eventfd: this side adds to it after publishing records. */
    readonly submitEvent: number,
    /** eventfd: the service adds 1 after publishing completions. */
    readonly completeEvent: number,
    readonly buffer: ArrayBuffer,
    readonly submitSize: number,
    readonly completeSize: number,
  ) {
    this.view = new DataView(buffer);
    this.bytes = new Uint8Array(buffer);
  }

  /** A fresh ring: areas of the given sizes (powers of two, at least 4 KiB), header written. */
  static create(native: NativeBinding, submitSize = SUBMIT_AREA_SIZE, completeSize = COMPLETE_AREA_SIZE): RingMemory {
    for (const size of [submitSize, completeSize]) {
      if (!Number.isInteger(size) || size < RING.minArea || size > 1 << 30 || (size & (size - 1)) !== 0) {
        throw Object.assign(new RangeError(`ring areas must be powers of two from 4 KiB to 1 GiB, got ${size}`), { code: 'ERR_OUT_OF_RANGE' });
      }
    }
    const total = RING.headerSize + submitSize + completeSize;
    const fds: number[] = [];
    try {
      const fd = native.memfdCreate('mdgpu-ring', 0);
      fds.push(fd);
      native.ftruncate(fd, total);
      const submitEvent = native.eventfd(0, 0);
      fds.push(submitEvent);
      const completeEvent = native.eventfd(0, 0);
      fds.push(completeEvent);
      const buffer = native.mmap(fd, 0, total, native.PROT_READ | native.PROT_WRITE);
      const ring = new RingMemory(native, fd, submitEvent, completeEvent, buffer, submitSize, completeSize);
      ring.view.setUint32(RING.magicAt, RING.magic, true);
      ring.view.setUint32(RING.versionAt, RING.version, true);
      ring.view.setUint32(RING.submitSizeAt, submitSize, true);
      ring.view.setUint32(RING.completeSizeAt, completeSize, true);
      return ring;
    } catch (err) {
      for (const fd of fds) native.close(fd);
      throw err;
    }
  }

  /** Unmap and close everything (the service keeps its own mapping and descriptors). Idempotent. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.native.munmap(this.buffer);
    this.native.close(this.fd);
    this.native.close(this.submitEvent);
    this.native.close(this.completeEvent);
  }
}

/** A batch on its way through a ring. */
export interface RingRequest {
  /** The batch's name in its records (nonzero, unique among those unsettled). */
  readonly tag: number;
  /** The id its memory is bound to. */
  readonly memory: number;
  readonly commands: readonly DeviceCommand<unknown>[];
  readonly hooks: SubmitHooks | undefined;
  readonly resolve: (status: SubmissionStatus) => void;
  readonly reject: (err: Error) => void;
  readonly promise: Promise<SubmissionStatus>;
  /** Bytes of its SUBMIT record. */
  readonly bytes: number;
  /** Its STARTED came. */
  started: boolean;
  /** The owner's watchdog, if it keeps one (isolated.ts). */
  watchdog: NodeJS.Timeout | null;
}

/** A request for `commands` on memory id `memory` (its size measured by `encoder`, which checks the shapes: TypeError). */
export function ringRequest(
  tag: number,
  memory: number,
  commands: readonly DeviceCommand<unknown>[],
  hooks: SubmitHooks | undefined,
  encoder: BatchEncoder<unknown>,
  submitAreaSize: number,
): RingRequest {
  const bytes = (SUBMIT_HEADER + encoder.measure(commands) + 7) & ~7;
  if (bytes > submitAreaSize) {
    throw new BackendError(
      'E2BIG',
      -constants.errno.E2BIG,
      'mdgpu_host_submit2',
      `Host driver mdgpu_host_submit2 failed with E2BIG: the batch takes ${bytes} bytes of the submission ring, which has ${submitAreaSize}`,
    );
  }
  let resolve!: (s: SubmissionStatus) => void;
  let reject!: (e: Error) => void;
  const promise = new Promise<SubmissionStatus>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { tag, memory, commands, hooks, resolve, reject, promise, bytes, started: false, watchdog: null };
}

/** Something waiting its turn to be written: a batch, or the release of an id. */
type Entry = RingRequest | { readonly release: RingKind; readonly id: number };

export interface RingClientOptions {
  /** Publishes have been made: wake the service (default: its eventfd), or take the records on this thread (in process). */
  kick?: () => void;
  /** Whether a batch may be written now: true; false to wait ({@link RingClient.flush} again later); an Error to fail it with. */
  gate?: (r: RingRequest) => boolean | Error;
  /** A batch's STARTED came (after its `started` hook). */
  onStarted?: (r: RingRequest) => void;
  /** A batch settled (before its promise's reactions run). */
  onSettled?: (r: RingRequest) => void;
  /** The ring cannot be used any more: the service said BROKEN, or what it wrote does not add up. */
  onBroken: (message: string) => void;
}

/** The call a FAILED record's stage stands for, as a BackendError names it. */
function callOf(stage: number): string {
  return stage === Stage.Wait || stage === Stage.Device ? 'mdgpu_host_wait' : 'mdgpu_host_submit2';
}

/**
 * Writes batches into a ring and settles them from its completions: the submitter's half of
 * the protocol, with backpressure. Completions are read when the completion doorbell fires
 * (a Poller on the event loop, referenced only while something is outstanding) or when the
 * owner calls {@link drain}.
 */
export class RingClient {
  readonly #native: NativeBinding;
  readonly #ring: RingMemory;
  readonly #encoder: BatchEncoder<unknown>;
  readonly #options: RingClientOptions;
  /** Written, not settled, by tag. */
  readonly #written = new Map<number, RingRequest>();
  /** Waiting to be written, in order (from #first on). */
  #backlog: Entry[] = [];
  #first = 0;
  #tail: number;
  #cqHead: number;
  readonly #poller: PollerInstance;
  #referenced = false;
  #retry: NodeJS.Timeout | null = null;
  #broken = false;
  #closed = false;
  readonly #decoder = new TextDecoder();

  constructor(native: NativeBinding, ring: RingMemory, encoder: BatchEncoder<unknown>, options: RingClientOptions) {
    this.#native = native;
    this.#ring = ring;
    this.#encoder = encoder;
    this.#options = options;
    this.#tail = ring.view.getUint32(RING.submitTail, true);
    this.#cqHead = ring.view.getUint32(RING.completeHead, true);
    this.#poller = new native.Poller(ring.completeEvent, (err) => {
      if (err !== null) {
        this.#fail(`the completion doorbell failed: ${err.message}`);
        return;
      }
      try {
        native.eventfdRead(ring.completeEvent);
      } catch {
        // EAGAIN: another read took it; the records are there all the same.
      }
      this.drain();
    });
    this.#poller.start(native.POLL_READABLE);
    this.#poller.unref();
  }

  /** Batches handed to {@link submit} and not yet settled. */
  get pending(): number {
    return this.#written.size + this.#waitingRequests();
  }

  /** Batches written into the ring and not yet settled. */
  get outstanding(): number {
    return this.#written.size;
  }

  /** Whether a batch written with `tag` is still unsettled. */
  inUse(tag: number): boolean {
    return this.#written.has(tag);
  }

  /** Bytes of the submission area: no batch can be larger. */
  get ringSubmitSize(): number {
    return this.#ring.submitSize;
  }

  /** Settles when every batch submitted so far has. */
  async idle(): Promise<void> {
    await Promise.allSettled(this.#unsettled().map((r) => r.promise));
  }

  #unsettled(): RingRequest[] {
    const out: RingRequest[] = [...this.#written.values()];
    for (let i = this.#first; i < this.#backlog.length; i++) {
      const e = this.#backlog[i]!;
      if (!('release' in e)) out.push(e);
    }
    return out;
  }

  #waitingRequests(): number {
    let n = 0;
    for (let i = this.#first; i < this.#backlog.length; i++) if (!('release' in this.#backlog[i]!)) n++;
    return n;
  }

  /** Queue a batch (see {@link ringRequest}); written now if it can be. */
  submit(r: RingRequest): void {
    this.#push(r);
  }

  /** Forget an id once every batch queued before has been taken (a RELEASE record). */
  release(kind: RingKind, id: number): void {
    this.#push({ release: kind, id });
  }

  #push(e: Entry): void {
    if (this.#closed) throw new Error('the ring is closed');
    this.#backlog.push(e);
    this.flush();
  }

  /**
   * Room for `bytes` at the tail: its offset in the submission area (after a PAD where it would
   * not fit before the end), or -1 while the area is too full.
   */
  #reserve(bytes: number): number {
    const v = this.#ring.view;
    const size = this.#ring.submitSize;
    const head = v.getUint32(RING.submitHead, true);
    let used = (this.#tail - head) >>> 0;
    if (used > size) {
      this.#fail(`the service's submission position ${head} is ${used} bytes behind ours (area of ${size})`);
      return -1;
    }
    let off = this.#tail & (size - 1);
    const rest = size - off;
    if (bytes > rest) {
      if (used + rest > size) return -1;
      const at = RING.headerSize + off;
      v.setUint32(at, RecordType.Pad, true);
      v.setUint32(at + 4, rest, true);
      this.#tail = (this.#tail + rest) >>> 0;
      v.setUint32(RING.submitTail, this.#tail, true);
      used += rest;
      off = 0;
    }
    return used + bytes <= size ? off : -1;
  }

  /** Write what waits, in order, as far as gates and room allow; then kick the service once. */
  flush(): void {
    if (this.#closed || this.#broken) return;
    const v = this.#ring.view;
    const bytes = this.#ring.bytes;
    let wrote = false;
    let stuck = false;
    while (this.#first < this.#backlog.length) {
      const e = this.#backlog[this.#first]!;
      if ('release' in e) {
        const off = this.#reserve(RELEASE_SIZE);
        if (off < 0) {
          stuck = true;
          break;
        }
        const at = RING.headerSize + off;
        v.setUint32(at, RecordType.Release, true);
        v.setUint32(at + 4, RELEASE_SIZE, true);
        v.setUint32(at + 8, e.release, true);
        v.setUint32(at + 12, e.id, true);
        this.#tail = (this.#tail + RELEASE_SIZE) >>> 0;
        v.setUint32(RING.submitTail, this.#tail, true);
        this.#first++;
        wrote = true;
        continue;
      }
      if (this.#written.size >= MAX_OUTSTANDING) break;
      const gate = this.#options.gate?.(e) ?? true;
      if (gate === false) break;
      if (gate instanceof Error) {
        this.#first++;
        this.#settle(e);
        e.reject(gate);
        continue;
      }
      const off = this.#reserve(e.bytes);
      if (off < 0) {
        stuck = true;
        break;
      }
      const at = RING.headerSize + off;
      try {
        const n = this.#encoder.measure(e.commands);
        if (((SUBMIT_HEADER + n + 7) & ~7) !== e.bytes) throw new Error('submit: the commands changed after they were submitted');
        bytes.fill(0, at, at + e.bytes);
        v.setUint32(at, RecordType.Submit, true);
        v.setUint32(at + 4, e.bytes, true);
        v.setUint32(at + 8, e.tag, true);
        v.setUint32(at + 12, this.#encoder.cmdCount, true);
        v.setUint32(at + 16, this.#encoder.descriptorCount, true);
        v.setUint32(at + 20, this.#encoder.dataBytes, true);
        this.#encoder.encode(v, bytes, at + SUBMIT_HEADER, e.commands, e.memory);
      } catch (err) {
        // A value of the wrong type: the batch is refused, nothing is published.
        this.#first++;
        this.#settle(e);
        e.reject(err as Error);
        continue;
      }
      this.#tail = (this.#tail + e.bytes) >>> 0;
      v.setUint32(RING.submitTail, this.#tail, true);
      this.#written.set(e.tag, e);
      this.#first++;
      wrote = true;
    }
    if (this.#first === this.#backlog.length) {
      this.#backlog.length = 0;
      this.#first = 0;
    } else if (this.#first > 1024 && this.#first * 2 > this.#backlog.length) {
      this.#backlog = this.#backlog.slice(this.#first);
      this.#first = 0;
    }
    if (wrote) {
      if (this.#options.kick !== undefined) this.#options.kick();
      else this.#native.eventfdWrite(this.#ring.submitEvent, 1);
    }
    // Room comes back as the service takes records; most of them answer (and so flush again),
    // RELEASE and PAD do not: look again shortly.
    if (stuck && this.#retry === null) {
      this.#retry = setTimeout(() => {
        this.#retry = null;
        this.flush();
      }, 1);
    }
    this.#reference();
  }

  /** Keep the event loop alive while anything is outstanding, not longer. */
  #reference(): void {
    const busy = this.#written.size > 0 || this.#first < this.#backlog.length;
    if (busy === this.#referenced || this.#closed) return;
    this.#referenced = busy;
    if (busy) this.#poller.ref();
    else this.#poller.unref();
  }

  #settle(r: RingRequest): void {
    this.#written.delete(r.tag);
    this.#options.onSettled?.(r);
  }

  #fail(message: string): void {
    if (this.#broken) return;
    this.#broken = true;
    this.#options.onBroken(message);
  }

  /** Read every completion published so far and settle what they say; then write what waits. */
  drain(): void {
    if (this.#closed || this.#broken) return;
    const v = this.#ring.view;
    const size = this.#ring.completeSize;
    const base = RING.headerSize + this.#ring.submitSize;
    for (;;) {
      const tail = v.getUint32(RING.completeTail, true);
      const avail = (tail - this.#cqHead) >>> 0;
      if (avail === 0) break;
      const off = this.#cqHead & (size - 1);
      const at = base + off;
      const type = avail >= 8 ? v.getUint32(at, true) : -1;
      const bytes = avail >= 8 ? v.getUint32(at + 4, true) : 0;
      if (avail > size || bytes < 8 || bytes % 8 !== 0 || bytes > avail || bytes > size - off || (type === RecordType.Pad && bytes !== size - off)) {
        this.#fail(`completion record of type ${type} and ${bytes} bytes at ${off} (${avail} published)`);
        return;
      }
      this.#record(type, at, bytes);
      this.#cqHead = (this.#cqHead + bytes) >>> 0;
      v.setUint32(RING.completeHead, this.#cqHead, true);
      if (this.#broken || this.#closed) return;
    }
    if (this.#first < this.#backlog.length) this.flush();
    else this.#reference();
  }

  #message(at: number, bytes: number): string {
    const text = this.#ring.bytes.subarray(at + FAILED_HEADER, at + bytes);
    const end = text.indexOf(0);
    return this.#decoder.decode(end < 0 ? text : text.subarray(0, end));
  }

  #record(type: number, at: number, bytes: number): void {
    const v = this.#ring.view;
    if (type === RecordType.Pad) return;
    const tag = bytes >= 12 ? v.getUint32(at + 8, true) : 0;
    if (type === RecordType.Broken) {
      this.#fail(`the ring service stopped: ${bytes >= FAILED_HEADER ? this.#message(at, bytes) : 'no reason given'}`);
      return;
    }
    const r = this.#written.get(tag);
    switch (type) {
      case RecordType.Started:
        if (r === undefined || r.started) return;
        r.started = true;
        r.hooks?.started?.();
        this.#options.onStarted?.(r);
        return;
      case RecordType.Done: {
        if (r === undefined || bytes < DONE_STATUS_AT + STATUS.size) return;
        const s = at + DONE_STATUS_AT;
        const timed = (v.getUint32(s + STATUS.flags, true) & STATUS_DEVICE_TIME) !== 0;
        const status: SubmissionStatus = {
          id: v.getBigUint64(s + STATUS.submission, true),
          deviceNs: timed ? v.getUint32(s + STATUS.deviceNs, true) + v.getUint32(s + STATUS.deviceNs + 4, true) * 0x1_0000_0000 : undefined,
          deviceBeginNs: timed ? v.getBigUint64(s + STATUS.deviceBeginNs, true) : undefined,
          deviceEndNs: timed ? v.getBigUint64(s + STATUS.deviceEndNs, true) : undefined,
          submitNs: v.getBigUint64(s + STATUS.submitNs, true),
          completeNs: v.getBigUint64(s + STATUS.completeNs, true),
        };
        this.#settle(r);
        r.resolve(status);
        return;
      }
      case RecordType.Failed: {
        if (bytes < FAILED_HEADER) return;
        const error = v.getInt32(at + 12, true);
        const stage = v.getUint32(at + 16, true);
        const why = this.#message(at, bytes);
        if (r === undefined) {
          // Not a batch's (tag 0): a record the service could not use. Ours are never like that.
          warn(`ring service: ${why}`);
          return;
        }
        const code = errnoName(-error);
        const call = callOf(stage);
        this.#settle(r);
        r.reject(new BackendError(code, error, call, `Host driver ${call} failed with ${code}: ${why}`));
        return;
      }
      default:
        this.#fail(`a completion record of unknown type ${type}`);
    }
  }

  /**
   * Stop: read what has completed, then hand back every batch not settled (written or
   * waiting), for the owner to fail or send elsewhere. Closes the ring's memory. Idempotent.
   */
  close(): RingRequest[] {
    if (this.#closed) return [];
    if (!this.#broken) this.drain();
    this.#closed = true;
    if (this.#retry !== null) clearTimeout(this.#retry);
    this.#poller.close();
    const left = this.#unsettled();
    this.#written.clear();
    this.#backlog = [];
    this.#first = 0;
    this.#ring.close();
    return left;
  }
}
