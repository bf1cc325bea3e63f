/**
 * One vfio-user connection over a non-blocking Unix stream socket: framing in (through the pure
 * Framer, reading never past the current message so every fd belongs to exactly one message)
 * and whole messages out (header + body + fds in one sendmsg, as QEMU reads fds with the header).
 *
 * The peer is not trusted to be polite (issue 9, F4):
 * - Backpressure: while more than `maxQueuedSendBytes` wait to be sent, the connection stops
 *   reading, so a peer that sends requests and never reads the replies holds at most that much
 *   (plus one reply) of the daemon's memory, and its unread requests wait in its own socket.
 * - A budget per wakeup: at most `readBudget.messages` messages and `readBudget.bytes` bytes (read
 *   plus replies produced) per readiness callback. Then the callback returns; the poller is
 *   level-triggered, so the rest is read on the next event-loop turn, after timers, immediates
 *   and every other socket had theirs. A peer that keeps the socket full cannot hold the loop.
 *
 * Node's `net` module hides the fd and drops SCM_RIGHTS, hence the native addon.
 */
import type { NativeBinding } from '../native/binding.js';
import { Framer, type Frame } from './framer.js';
import { FatalProtocolError } from '../protocol/errors.js';
import { tracer } from '../log.js';

const traceTransport = tracer('transport');

/** The syscalls a connection needs (a subset of the native addon, injectable for tests). */
export type SocketOps = Pick<NativeBinding, 'recvmsg' | 'sendmsg' | 'close' | 'Poller' | 'POLL_READABLE' | 'POLL_WRITABLE'>;

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
  /** Called once, after the socket and every fd held for a partial message were closed. */
  onClose(reason: Error | null): void;
}

/** Reads are bounded by this scratch buffer; the framer owns the message buffers. */
const READ_CHUNK = 64 * 1024;

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

interface PendingWrite {
  data: Uint8Array;
  fds: number[];
}

function errCode(err: unknown): string | undefined {
  return (err as { code?: string } | null)?.code;
}

export class Connection {
  private readonly framer: Framer;
  private readonly poller: InstanceType<SocketOps['Poller']>;
  private readonly scratch = new Uint8Array(READ_CHUNK);
  private readonly writeQueue: PendingWrite[] = [];
  /** Bytes in `writeQueue` not yet accepted by the kernel. */
  private queuedBytes = 0;
  private readonly maxQueuedSendBytes: number;
  private readonly readBudget: ReadBudget;
  /** The events the poller watches now (0: stopped). */
  private watching = 0;
  /** Bytes queued by `send` during the current wakeup, charged to its budget. */
  private sentThisWakeup = 0;
  private closed = false;
  /**
   * Bytes and messages moved, for metrics; `backpressurePauses` counts the times reading stopped
   * because replies piled up, `budgetYields` the wakeups that ended with data still waiting.
   */
  readonly stats = { messagesIn: 0, messagesOut: 0, bytesIn: 0, bytesOut: 0, backpressurePauses: 0, budgetYields: 0 };

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

  /** Watch for what we can act on: input unless replies piled up, output while any wait. */
  private watch(): void {
    if (this.closed) return;
    const events = (this.readPaused ? 0 : this.ops.POLL_READABLE) | (this.writeQueue.length > 0 ? this.ops.POLL_WRITABLE : 0);
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
    if (events & this.ops.POLL_WRITABLE) this.flush();
    if (events & this.ops.POLL_READABLE) this.readAvailable();
  }

  private readAvailable(): void {
    let messages = 0;
    let bytes = 0;
    this.sentThisWakeup = 0;
    while (!this.closed) {
      if (this.readPaused) {
        this.stats.backpressurePauses++;
        this.watch();
        return;
      }
      if (messages >= this.readBudget.messages || bytes + this.sentThisWakeup >= this.readBudget.bytes) {
        // Level-triggered: whatever is left is read on the next loop turn.
        this.stats.budgetYields++;
        return;
      }
      const wanted = Math.min(this.framer.wanted(), READ_CHUNK);
      let got: { bytes: number; fds: number[]; truncated: boolean };
      try {
        got = this.ops.recvmsg(this.fd, this.scratch, 0, wanted, this.options.maxFds);
      } catch (err) {
        if (errCode(err) === 'EAGAIN' || errCode(err) === 'EWOULDBLOCK') return;
        if (errCode(err) === 'EINTR') continue;
        this.close(err as Error);
        return;
      }
      if (got.truncated) {
        for (const fd of got.fds) this.safeClose(fd);
        this.close(new FatalProtocolError('EMSGSIZE', `Too many fds with one message: more than ${this.options.maxFds}`));
        return;
      }
      if (got.bytes === 0) {
        for (const fd of got.fds) this.safeClose(fd);
        this.close(null);
        return;
      }
      this.stats.bytesIn += got.bytes;
      bytes += got.bytes;
      let frames: Frame[];
      try {
        frames = this.framer.push(this.scratch.subarray(0, got.bytes), got.fds);
      } catch (err) {
        // push() took ownership of this read's fds too; close() gets them all back from reset().
        this.close(err as Error);
        return;
      }
      for (const frame of frames) {
        this.stats.messagesIn++;
        messages++;
        if (this.closed) {
          for (const fd of frame.fds) this.safeClose(fd);
          continue;
        }
        this.options.onFrame(frame);
      }
    }
  }

  /**
   * Send one whole message with its fds (the fds stay owned by the caller: the kernel duplicates
   * them into the peer). Queued if the socket is full; order is preserved.
   */
  send(message: Uint8Array, fds: number[] = []): void {
    if (this.closed) return;
    this.stats.messagesOut++;
    this.sentThisWakeup += message.length;
    this.writeQueue.push({ data: message, fds });
    this.queuedBytes += message.length;
    if (this.writeQueue.length === 1) this.flush();
  }

  private flush(): void {
    while (this.writeQueue.length > 0 && !this.closed) {
      const head = this.writeQueue[0]!;
      let sent: number;
      try {
        sent = this.ops.sendmsg(this.fd, head.data, head.fds);
      } catch (err) {
        if (errCode(err) === 'EAGAIN' || errCode(err) === 'EWOULDBLOCK') break;
        if (errCode(err) === 'EINTR') continue;
        this.close(err as Error);
        return;
      }
      this.stats.bytesOut += sent;
      this.queuedBytes -= sent;
      if (sent < head.data.length) {
        // Fds went with the first byte; the rest is plain data.
        head.data = head.data.subarray(sent);
        head.fds = [];
        continue;
      }
      this.writeQueue.shift();
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
    this.writeQueue.length = 0;
    this.queuedBytes = 0;
    this.safeClose(this.fd);
    this.options.onClose(reason);
  }
}
