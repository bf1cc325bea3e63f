/**
 * One vfio-user connection over a non-blocking Unix stream socket: framing in (through the pure
 * Framer, or a caller's fast path for small messages that arrived whole) and whole messages out
 * (header + body + fds in one sendmsg, as QEMU reads fds with the header).
 *
 * Reading, in syscalls: at a message boundary one recvmsg of up to {@link BOUNDARY_READ} bytes,
 * which holds a whole small request (a REGION_READ/WRITE of a register is 32-40 bytes); inside a
 * message, exactly the bytes that finish it, so a read never takes more than the current message
 * plus a few dozen bytes. A read that came back short and without fds emptied the socket, so the
 * connection returns to the event loop instead of asking again for an EAGAIN; the poller is
 * level-triggered, so anything that arrives later wakes it again. The fds of a read belong to the
 * message that holds the read's last byte (Linux ends a read right after the part of the stream
 * that carried fds); every fd belongs to exactly one message and is closed on every error path.
 *
 * The peer is not trusted to be polite (issue 9, F4):
 * - Backpressure: while more than `maxQueuedSendBytes` wait to be sent, the connection stops
 *   reading, so a peer that sends requests and never reads the replies holds at most that much
 *   (plus one reply) of the daemon's memory, and its unread requests wait in its own socket.
 * - A budget per wakeup: at most `readBudget.messages` messages and `readBudget.bytes` bytes (input
 *   consumed plus replies produced) per readiness callback. Then the callback returns; the poller is
 *   level-triggered, so the rest is read on the next event-loop turn, after timers, immediates
 *   and every other socket had theirs. A peer that keeps the socket full cannot hold the loop.
 * - Both limits are checked before every message, also between messages that came in one read:
 *   those wait in the connection's input buffer (at most {@link BOUNDARY_READ} bytes), and while
 *   they wait the poller also watches for WRITABLE, so the next loop turn serves them even when
 *   the socket itself has nothing more to read.
 * - The same budget bounds the sending of queued replies in one wakeup: at most
 *   `readBudget.messages` sendmsg calls and `readBudget.bytes` bytes, the rest on a later
 *   WRITABLE. Without it a peer that reads exactly as fast as the daemon writes keeps one flush
 *   going through the whole queue (4 MiB of 36-byte config-read replies are 116,000 sendmsg
 *   calls: 100s of ms under the F4(c) flood).
 * - Queued replies without fds are copied back to back into output chunks the connection owns,
 *   so replies that piled up leave in one sendmsg per chunk instead of one each, and a queued
 *   reply costs no object of its own. A reply with fds, or too large to copy, waits as it is.
 *
 * Node's `net` module hides the fd and drops SCM_RIGHTS, hence the native addon.
 */
import type { NativeBinding } from '../native/binding.js';
import { Framer, type Frame } from './framer.js';
import { FatalProtocolError } from '../protocol/errors.js';
import { HEADER_SIZE, HeaderLayout } from '../protocol/commands.js';
import { tracer } from '../log.js';

const traceTransport = tracer('transport');

/** The syscalls a connection needs (a subset of the native addon, injectable for tests). */
export type SocketOps = Pick<NativeBinding, 'recvmsgInto' | 'sendmsgFrom' | 'WOULD_BLOCK' | 'close' | 'Poller' | 'POLL_READABLE' | 'POLL_WRITABLE'>;

/**
 * A handler for whole messages that skips the Framer: `size` bytes at `bytes[at]` (header
 * included, `size` being the header's own claim, ≥ 16, not validated further), with a DataView
 * over the same buffer. Only for messages that arrived whole and without fds. Returns true if it
 * handled the message, false to have it framed and passed to `onFrame` as usual; it must decide
 * that before acting on the message. The bytes are valid during the call only.
 */
export type FastPath = (bytes: Uint8Array, view: DataView, at: number, size: number) => boolean;

export interface ConnectionOptions {
  /** Largest message accepted, header included; larger ones close the connection. */
  maxMessageSize: number;
  /** Most fds accepted with one message; more (MSG_CTRUNC) closes the connection. */
  maxFds: number;
  /**
   * Stop reading while more bytes than this wait to be sent (default {@link MAX_QUEUED_SEND_BYTES});
   * resume once the peer has read enough of them.
   */
  maxQueuedSendBytes?: number;
  /** Work per readiness wakeup before yielding the event loop (default {@link READ_BUDGET}). */
  readBudget?: ReadBudget;
  onFrame(frame: Frame): void;
  /** Tried first for every message that arrived whole and without fds; see {@link FastPath}. */
  fastPath?: FastPath;
  /** Called once, after the socket and every fd held for a partial message were closed. */
  onClose(reason: Error | null): void;
}

/** Reads are bounded by this scratch buffer; the framer owns the message buffers. */
const READ_CHUNK = 64 * 1024;

/**
 * Bytes asked for by a read at a message boundary: a whole REGION_READ (32 bytes) or a
 * REGION_WRITE of up to 32 bytes of data in one recvmsg, and at most four messages (a message
 * is ≥ 16 bytes) to keep for later if a limit stops the wakeup between them.
 */
export const BOUNDARY_READ = 64;

const SIZE_OFFSET = HeaderLayout.fields.size.offset;
const NO_FDS: readonly number[] = Object.freeze([]);

/** How much one readiness wakeup may do before the connection yields the event loop. */
export interface ReadBudget {
  /** Messages handed to `onFrame`. */
  messages: number;
  /** Bytes read plus bytes of the replies they produced. */
  bytes: number;
}

/**
 * 4 MiB: four of the largest replies (1 MiB REGION_READ at the default `max_data_xfer_size`), so a
 * client that reads normally never waits on it, and one that never reads costs the daemon at most
 * this plus one message.
 */
export const MAX_QUEUED_SEND_BYTES = 4 * 1024 * 1024;

/**
 * 16 messages or 1 MiB per wakeup. A 4-byte config read costs 20-30 µs on a loaded machine, so a
 * flood of them holds the loop for well under a millisecond per turn: with 64, a victim's trapped
 * read waited 2.3 ms (median) behind a config-read flood, with 16, 0.9 ms (0.2-0.4 ms alone).
 * QEMU pipelines a few requests at most (DMA_MAP bursts), so it never notices. One maximal
 * (1 MiB) request or reply fills the byte budget alone.
 */
export const READ_BUDGET: Readonly<ReadBudget> = Object.freeze({ messages: 16, bytes: 1024 * 1024 });

/**
 * Replies without fds up to this size are copied into output chunks when they must wait; larger
 * ones (a 1 MiB REGION_READ reply) wait in their own buffer.
 */
const COALESCE_MAX = 4096;
/** An output chunk starts this small (a peer may interleave small replies with fd replies)... */
const CHUNK_START = 256;
/** ...and doubles while replies are appended, up to this; then the next chunk begins. */
const CHUNK_MAX = 64 * 1024;

/** Bytes `data[at, end)` wait to be sent, with `fds` on their first byte. */
interface PendingWrite {
  data: Uint8Array;
  at: number;
  end: number;
  fds: readonly number[];
  /** An output chunk of the connection's own: more fd-less replies may be appended. */
  chunk: boolean;
}

export class Connection {
  private readonly framer: Framer;
  private readonly poller: InstanceType<SocketOps['Poller']>;
  private readonly scratch = new Uint8Array(READ_CHUNK);
  private readonly scratchView = new DataView(this.scratch.buffer);
  /** recvmsgInto's fd results: count, MSG_CTRUNC, then the fds (allocated once, off V8's heap). */
  private readonly recvFds: Int32Array;
  /** Read but not yet consumed: `scratch[inStart, inEnd)`. */
  private inStart = 0;
  private inEnd = 0;
  /** Fds of the last read, owned by the message that holds its last byte; null once handed on. */
  private inFds: number[] | null = null;
  private readonly fastPath: FastPath | undefined;
  private readonly writeQueue: PendingWrite[] = [];
  /** Bytes in `writeQueue` not yet accepted by the kernel. */
  private queuedBytes = 0;
  private readonly maxQueuedSendBytes: number;
  private readonly readBudget: ReadBudget;
  /** The events the poller watches now (0: stopped). */
  private watching = 0;
  /** Bytes queued by `send` during the current wakeup, charged to its budget. */
  private sentThisWakeup = 0;
  /** Bytes of input consumed during the current wakeup (read now or kept from an earlier read). */
  private takenThisWakeup = 0;
  private closed = false;
  /**
   * Bytes and messages moved, for metrics; `backpressurePauses` counts the times reading stopped
   * because replies piled up, `budgetYields` the wakeups that ended with data still waiting,
   * `sendYields` the wakeups whose sending stopped at the budget with replies still queued,
   * `fastPathMessages` the messages the fast path took (included in `messagesIn`).
   */
  readonly stats = {
    messagesIn: 0,
    messagesOut: 0,
    bytesIn: 0,
    bytesOut: 0,
    backpressurePauses: 0,
    budgetYields: 0,
    sendYields: 0,
    fastPathMessages: 0,
  };

  constructor(
    private readonly ops: SocketOps,
    readonly fd: number,
    private readonly options: ConnectionOptions,
  ) {
    this.framer = new Framer({ maxMessageSize: options.maxMessageSize });
    this.maxQueuedSendBytes = options.maxQueuedSendBytes ?? MAX_QUEUED_SEND_BYTES;
    this.readBudget = options.readBudget ?? READ_BUDGET;
    if (!(this.maxQueuedSendBytes >= 0) || !(this.readBudget.messages >= 1) || !(this.readBudget.bytes >= 1)) {
      throw new RangeError('Connection limits must be positive');
    }
    if (!Number.isInteger(options.maxFds) || options.maxFds < 0 || options.maxFds > 253) {
      throw new RangeError(`maxFds must be an integer in [0, 253]: ${options.maxFds}`);
    }
    this.recvFds = new Int32Array(new ArrayBuffer(4 * (2 + options.maxFds)));
    this.fastPath = options.fastPath;
    this.poller = new ops.Poller(fd, (err, events) => this.onPoll(err, events));
    this.watch();
  }

  get isClosed(): boolean {
    return this.closed;
  }

  /** Bytes waiting to be sent (replies the peer has not read yet). */
  get pendingSendBytes(): number {
    return this.queuedBytes;
  }

  /** Whether reading is stopped until the peer reads its replies. */
  get readPaused(): boolean {
    return this.queuedBytes > this.maxQueuedSendBytes;
  }

  /** Whether messages that came in an earlier read still wait in the input buffer. */
  private get holdingInput(): boolean {
    return this.inStart < this.inEnd;
  }

  /**
   * Watch for what we can act on: input unless replies piled up, output while any wait, and
   * WRITABLE also while read messages wait (a writable socket wakes the next loop turn for them).
   */
  private watch(): void {
    if (this.closed) return;
    const events = (this.readPaused ? 0 : this.ops.POLL_READABLE) | (this.writeQueue.length > 0 || this.holdingInput ? this.ops.POLL_WRITABLE : 0);
    if (events === this.watching) return;
    this.watching = events;
    if (events === 0) this.poller.stop();
    else this.poller.start(events);
  }

  private onPoll(err: Error | null, events: number): void {
    if (this.closed) return;
    if (err !== null) {
      this.close(err);
      return;
    }
    if (events & this.ops.POLL_WRITABLE) this.flush(true);
    if (events & this.ops.POLL_READABLE || (this.holdingInput && !this.readPaused)) this.readAvailable();
  }

  private readAvailable(): void {
    this.readMessages();
    this.watch();
  }

  private readMessages(): void {
    let messages = 0;
    /** The last read emptied the socket: once its bytes are used up, wait for the next wakeup. */
    let drained = false;
    this.sentThisWakeup = 0;
    this.takenThisWakeup = 0;
    while (!this.closed) {
      if (this.readPaused) {
        this.stats.backpressurePauses++;
        return;
      }
      if (messages >= this.readBudget.messages || this.takenThisWakeup + this.sentThisWakeup >= this.readBudget.bytes) {
        // Level-triggered (and WRITABLE while input waits): the rest on the next loop turn.
        this.stats.budgetYields++;
        return;
      }
      if (!this.holdingInput) {
        if (drained) return;
        // At a boundary, a small read that may hold several messages, never more than the
        // message budget has room for; inside a message, exactly what finishes it.
        const room = this.framer.atMessageStart
          ? Math.min(BOUNDARY_READ, HEADER_SIZE * (this.readBudget.messages - messages))
          : Math.min(this.framer.wanted(), READ_CHUNK);
        const got = this.read(room);
        if (got <= 0) return;
        drained = got < room && this.inFds === null;
      }
      messages += this.takeMessage();
    }
  }

  /** One recvmsg into the input buffer; the bytes read, or ≤ 0 when there is nothing (more) to do. */
  private read(room: number): number {
    let n: number;
    try {
      n = this.ops.recvmsgInto(this.fd, this.scratch, 0, room, this.recvFds);
    } catch (err) {
      // recvmsgInto retries EINTR itself and returns WOULD_BLOCK for EAGAIN: this is a real error.
      this.close(err as Error);
      return -1;
    }
    if (n === this.ops.WOULD_BLOCK) return 0;
    const count = this.recvFds[0]!;
    let fds: number[] | null = null;
    if (count > 0) {
      fds = new Array<number>(count);
      for (let i = 0; i < count; i++) fds[i] = this.recvFds[2 + i]!;
    }
    if (this.recvFds[1] !== 0) {
      for (const fd of fds ?? NO_FDS) this.safeClose(fd);
      this.close(new FatalProtocolError('EMSGSIZE', `Too many fds with one message: more than ${this.options.maxFds}`));
      return -1;
    }
    if (n === 0) {
      for (const fd of fds ?? NO_FDS) this.safeClose(fd);
      this.close(null);
      return -1;
    }
    this.stats.bytesIn += n;
    this.inStart = 0;
    this.inEnd = n;
    this.inFds = fds;
    return n;
  }

  /**
   * Consume one message from the input buffer, or as much of the current one as it holds: to
   * the fast path if it is whole and carries no fds, else through the framer to `onFrame`.
   * Returns the number of messages completed (0 or 1).
   */
  private takeMessage(): number {
    const start = this.inStart;
    const available = this.inEnd - start;
    let take: number;
    if (this.framer.atMessageStart && available >= HEADER_SIZE) {
      const size = this.scratchView.getUint32(start + SIZE_OFFSET, true);
      const whole = size >= HEADER_SIZE && size <= available;
      // The read's fds belong to the message holding its last byte.
      if (whole && this.fastPath !== undefined && (this.inFds === null || start + size < this.inEnd)) {
        // Consumed before the call: a reply that fails to send closes (and empties) the connection.
        this.inStart = start + size;
        if (this.fastPath(this.scratch, this.scratchView, start, size)) {
          this.stats.messagesIn++;
          this.stats.fastPathMessages++;
          this.takenThisWakeup += size;
          return 1;
        }
        this.inStart = start;
      }
      // A size below 16 still takes the header, which the framer then refuses.
      take = Math.min(Math.max(size, HEADER_SIZE), available);
    } else {
      take = Math.min(this.framer.wanted(), available);
    }
    this.inStart = start + take;
    this.takenThisWakeup += take;
    let fds: readonly number[] = NO_FDS;
    if (this.inStart === this.inEnd && this.inFds !== null) {
      fds = this.inFds;
      this.inFds = null;
    }
    let frames: Frame[];
    try {
      frames = this.framer.push(this.scratch.subarray(start, start + take), fds);
    } catch (err) {
      // push() took ownership of the fds too; close() gets them all back from reset().
      this.close(err as Error);
      return 0;
    }
    // At most one: a push never passes the end of the current message.
    for (const frame of frames) {
      this.stats.messagesIn++;
      if (this.closed) {
        for (const fd of frame.fds) this.safeClose(fd);
        continue;
      }
      this.options.onFrame(frame);
    }
    return frames.length;
  }

  /**
   * Send one whole message with its fds (the fds stay owned by the caller: the kernel duplicates
   * them into the peer). Queued if the socket is full; order is preserved. The connection keeps
   * `message` until it is sent: do not reuse it (see {@link sendCopy}).
   */
  send(message: Uint8Array, fds: readonly number[] = NO_FDS): void {
    if (this.closed) return;
    this.stats.messagesOut++;
    this.sentThisWakeup += message.length;
    this.write(message, message.length, fds, true);
  }

  /**
   * Send `bytes[0, length)` as one whole message without fds, from a buffer the caller reuses:
   * sent at once when nothing waits before it, and whatever must wait is copied, so the caller
   * may overwrite `bytes` as soon as this returns. No allocation when the socket takes it all.
   */
  sendCopy(bytes: Uint8Array, length: number): void {
    if (this.closed) return;
    this.stats.messagesOut++;
    this.sentThisWakeup += length;
    this.write(bytes, length, NO_FDS, false);
  }

  /**
   * One message out: straight to the socket when nothing waits before it, else (and whatever
   * the socket did not take) into the queue. `owned`: the connection may keep `bytes`.
   */
  private write(bytes: Uint8Array, length: number, fds: readonly number[], owned: boolean): void {
    let at = 0;
    if (this.writeQueue.length === 0) {
      let n: number;
      try {
        n = this.ops.sendmsgFrom(this.fd, bytes, 0, length, fds);
      } catch (err) {
        // sendmsgFrom retries EINTR itself and returns WOULD_BLOCK for EAGAIN: this is a real error.
        this.close(err as Error);
        return;
      }
      if (n === length) {
        this.stats.bytesOut += n;
        return;
      }
      if (n > 0) {
        // Fds went with the first byte; the rest is plain data.
        at = n;
        fds = NO_FDS;
        this.stats.bytesOut += n;
      }
    }
    this.enqueue(bytes, at, length, fds, owned);
    this.watch();
  }

  /** Queue `bytes[at, end)`: appended to the last output chunk when small and fd-less, else as it is. */
  private enqueue(bytes: Uint8Array, at: number, end: number, fds: readonly number[], owned: boolean): void {
    const size = end - at;
    this.queuedBytes += size;
    if (fds.length > 0 || size > COALESCE_MAX) {
      this.writeQueue.push(owned ? { data: bytes, at, end, fds, chunk: false } : { data: bytes.slice(at, end), at: 0, end: size, fds, chunk: false });
      return;
    }
    let tail = this.writeQueue.at(-1);
    if (tail === undefined || !tail.chunk || (tail.data.length === CHUNK_MAX && tail.end + size > CHUNK_MAX)) {
      // Chunk sizes are powers of two, so a chunk that may still grow has room for one more reply.
      let capacity = tail?.chunk === true ? CHUNK_MAX : CHUNK_START;
      while (capacity < size) capacity *= 2;
      tail = { data: new Uint8Array(capacity), at: 0, end: 0, fds: NO_FDS, chunk: true };
      this.writeQueue.push(tail);
    } else if (tail.end + size > tail.data.length) {
      // Grow by doubling (copying only what is still unsent): at most twice the bytes queued.
      const waiting = tail.end - tail.at;
      let capacity = tail.data.length;
      while (capacity < waiting + size) capacity *= 2;
      const grown = new Uint8Array(capacity);
      grown.set(tail.data.subarray(tail.at, tail.end));
      tail.data = grown;
      tail.at = 0;
      tail.end = waiting;
    }
    tail.data.set(bytes.subarray(at, end), tail.end);
    tail.end += size;
  }

  /**
   * Send what the queue holds until the socket is full. From a WRITABLE wakeup (`budgeted`), at
   * most one budget's worth: `readBudget.messages` sendmsg calls and `readBudget.bytes` bytes;
   * WRITABLE stays watched, so the rest goes on a later loop turn.
   */
  private flush(budgeted: boolean): void {
    let calls = 0;
    let bytes = 0;
    while (this.writeQueue.length > 0 && !this.closed) {
      if (budgeted && (calls >= this.readBudget.messages || bytes >= this.readBudget.bytes)) {
        this.stats.sendYields++;
        break;
      }
      const head = this.writeQueue[0]!;
      const length = budgeted ? Math.min(head.end - head.at, this.readBudget.bytes - bytes) : head.end - head.at;
      let sent: number;
      try {
        sent = this.ops.sendmsgFrom(this.fd, head.data, head.at, length, head.fds);
      } catch (err) {
        // sendmsgFrom retries EINTR itself and returns WOULD_BLOCK for EAGAIN: this is a real error.
        this.close(err as Error);
        return;
      }
      calls++;
      if (sent === this.ops.WOULD_BLOCK) break;
      bytes += sent;
      this.stats.bytesOut += sent;
      this.queuedBytes -= sent;
      head.at += sent;
      // Fds went with the first byte; the rest is plain data.
      head.fds = NO_FDS;
      if (head.at === head.end) this.writeQueue.shift();
      // A short send filled the socket: WRITABLE says when it has room again.
      else if (sent < length) break;
    }
    this.watch();
  }

  private safeClose(fd: number): void {
    try {
      this.ops.close(fd);
    } catch {
      // Already closed: nothing to release.
    }
  }

  /** Close the socket and every fd held for a partial message. Idempotent. */
  close(reason: Error | null = null): void {
    if (this.closed) return;
    this.closed = true;
    traceTransport(() => `fd ${this.fd} closed${reason ? `: ${reason.message}` : ''}`);
    this.poller.stop();
    this.poller.close();
    for (const fd of this.framer.reset()) this.safeClose(fd);
    for (const fd of this.inFds ?? NO_FDS) this.safeClose(fd);
    this.inFds = null;
    this.inStart = this.inEnd = 0;
    this.writeQueue.length = 0;
    this.queuedBytes = 0;
    this.safeClose(this.fd);
    this.options.onClose(reason);
  }
}
