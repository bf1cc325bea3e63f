/**
 * Pure, push-driven vfio-user framing (the pg-protocol / grpc-js
 * StreamDecoder style): bytes and SCM_RIGHTS fds in, whole messages out.
 * No I/O, no timers.
 *
 * {@link Framer.wanted} says how many bytes finish the current message (or
 * its header). A chunk may also hold more than one message: the connection
 * reads a few dozen bytes at a message boundary, a whole small request in one
 * recvmsg. The fds of a chunk go to the message that holds the chunk's LAST
 * byte, which is what Linux delivers: a read stops right after the part of
 * the stream that carried fds (unix_stream_read_generic), and QEMU sends
 * each message, fds included, in one sendmsg, so a read that brings fds ends
 * inside (or at the end of) their message. Every fd belongs to exactly one
 * message either way.
 *
 * The header is validated the moment its 16th byte arrives, and the body is
 * allocated only after its size passed that check.
 *
 * @module
 */

import { HEADER_SIZE, HeaderLayout, type Header } from '../protocol/commands.js';
import { FatalProtocolError } from '../protocol/errors.js';
import { checkHeader } from '../protocol/message.js';

/** One complete message. */
export interface Frame {
  header: Header;
  /** The `header.size - 16` bytes after the header; owned by the frame (a copy, not a view of the input). */
  payload: Uint8Array;
  /** Fds that arrived with the message; the receiver owns them and must close the ones it does not keep. */
  fds: number[];
}

/** Options for {@link Framer}. */
export interface FramerOptions {
  /** Largest acceptable message in bytes, header included; larger is a {@link FatalProtocolError}. */
  maxMessageSize: number;
  /** Allocates message bodies of `size` bytes (tests inject a spy; default `new Uint8Array(size)`). */
  allocate?: (size: number) => Uint8Array;
}

const EMPTY = new Uint8Array(0);
const NO_FDS: readonly number[] = Object.freeze([]);

/** Splits a vfio-user byte stream into {@link Frame}s. */
export class Framer {
  private readonly maxMessageSize: number;
  private readonly allocate: (size: number) => Uint8Array;
  /** Header bytes of the current message; fixed size, so safe to allocate up front. */
  private readonly headerBytes = new Uint8Array(HEADER_SIZE);
  private headerHave = 0;
  /** Set once the header is complete and valid. */
  private header: Header | undefined;
  private body: Uint8Array = EMPTY;
  private bodyHave = 0;
  /** Fds of the message being read. */
  private fds: number[] = [];
  /** Set after a fatal error: the stream is dead, only reset() helps. */
  private failure: FatalProtocolError | undefined;
  /** Fds of frames completed in a push that then failed; never delivered, so still ours to hand back. */
  private undelivered: number[] = [];

  constructor(options: FramerOptions) {
    if (!Number.isInteger(options.maxMessageSize) || options.maxMessageSize < HEADER_SIZE) {
      throw new RangeError(`Invalid maxMessageSize: ${options.maxMessageSize} (need an integer >= ${HEADER_SIZE})`);
    }
    this.maxMessageSize = options.maxMessageSize;
    this.allocate = options.allocate ?? ((size) => new Uint8Array(size));
  }

  /**
   * Bytes to read next so a read never passes the end of the current message:
   * 16 − (header bytes so far) while in the header, then body bytes still
   * missing. Always ≥ 1.
   */
  wanted(): number {
    if (this.header === undefined) return HEADER_SIZE - this.headerHave;
    return this.body.length - this.bodyHave;
  }

  /** True between messages: no byte of the next message has been pushed yet. */
  get atMessageStart(): boolean {
    return this.headerHave === 0;
  }

  /**
   * Feed bytes read from the stream, and the fds that came with them.
   *
   * The framer takes ownership of `fds` in every case. They attach to the
   * message that holds the chunk's last byte (for an empty chunk: the message
   * being read). `bytes` is copied, so the caller may reuse its buffer.
   *
   * @returns the messages completed by this chunk, in stream order
   * @throws {FatalProtocolError} on a bad header (type bits, unknown flags,
   *   size < 16 or > maxMessageSize); then, and after any later push, call
   *   {@link reset} to get back every fd not delivered in a frame.
   */
  push(bytes: Uint8Array, fds: readonly number[] = []): Frame[] {
    if (this.failure !== undefined) {
      // Ours to hand back in reset().
      this.fds.push(...fds);
      throw this.failure;
    }
    let chunkFds = fds;
    const frames: Frame[] = [];
    try {
      let at = 0;
      while (at < bytes.length) {
        at += this.header === undefined ? this.takeHeader(bytes, at) : this.takeBody(bytes, at);
        if (at === bytes.length && chunkFds.length > 0) {
          // The message being read holds the chunk's last byte: the fds are its own.
          this.fds.push(...chunkFds);
          chunkFds = NO_FDS;
        }
        const frame = this.completeFrame();
        if (frame !== undefined) frames.push(frame);
      }
      // An empty chunk: its fds go to the message being read.
      if (chunkFds.length > 0) this.fds.push(...chunkFds);
      // A header-only message completes with its 16th byte, so this also covers an empty push.
      return frames;
    } catch (error) {
      // Not attached yet: even if this push fails, they are ours to hand back in reset().
      if (chunkFds.length > 0) this.fds.push(...chunkFds);
      if (error instanceof FatalProtocolError) {
        this.failure = error;
        for (const frame of frames) this.undelivered.push(...frame.fds);
      }
      throw error;
    }
  }

  /** Fds held for the message being read (not yet delivered in a frame). */
  pendingFds(): number[] {
    return [...this.undelivered, ...this.fds];
  }

  /**
   * Forget the partial message and any failure, for teardown or a new stream.
   * @returns the fds the framer held (partial message, frames lost to a
   *   failed push); the caller must close them
   */
  reset(): number[] {
    const held = this.pendingFds();
    this.headerHave = 0;
    this.header = undefined;
    this.body = EMPTY;
    this.bodyHave = 0;
    this.fds = [];
    this.undelivered = [];
    this.failure = undefined;
    return held;
  }

  private takeHeader(bytes: Uint8Array, at: number): number {
    const n = Math.min(HEADER_SIZE - this.headerHave, bytes.length - at);
    this.headerBytes.set(bytes.subarray(at, at + n), this.headerHave);
    this.headerHave += n;
    if (this.headerHave === HEADER_SIZE) {
      const header = HeaderLayout.decode(this.headerBytes);
      // Validate before allocating: the size is the peer's claim, not a fact.
      checkHeader(header, { maxMessageSize: this.maxMessageSize });
      this.header = header;
      this.body = header.size === HEADER_SIZE ? EMPTY : this.allocate(header.size - HEADER_SIZE);
      this.bodyHave = 0;
    }
    return n;
  }

  private takeBody(bytes: Uint8Array, at: number): number {
    const n = Math.min(this.body.length - this.bodyHave, bytes.length - at);
    this.body.set(bytes.subarray(at, at + n), this.bodyHave);
    this.bodyHave += n;
    return n;
  }

  private completeFrame(): Frame | undefined {
    if (this.header === undefined || this.bodyHave < this.body.length) return undefined;
    const frame: Frame = { header: this.header, payload: this.body, fds: this.fds };
    this.headerHave = 0;
    this.header = undefined;
    this.body = EMPTY;
    this.bodyHave = 0;
    this.fds = [];
    return frame;
  }
}
