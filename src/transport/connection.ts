/**
 * One vfio-user connection over a non-blocking Unix stream socket: framing in (through the pure
 * Framer, reading never past the current message so every fd belongs to exactly one message)
 * and whole messages out (header + body + fds in one sendmsg, as QEMU reads fds with the header).
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
  onFrame(frame: Frame): void;
  /** Called once, after the socket and every fd held for a partial message were closed. */
  onClose(reason: Error | null): void;
}

/** Reads are bounded by this scratch buffer; the framer owns the message buffers. */
const READ_CHUNK = 64 * 1024;

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
  private closed = false;
  /** Bytes and messages moved, for metrics. */
  readonly stats = { messagesIn: 0, messagesOut: 0, bytesIn: 0, bytesOut: 0 };

  constructor(
    private readonly ops: SocketOps,
    readonly fd: number,
    private readonly options: ConnectionOptions,
  ) {
    this.framer = new Framer({ maxMessageSize: options.maxMessageSize });
    this.poller = new ops.Poller(fd, (err, events) => this.onPoll(err, events));
    this.poller.start(ops.POLL_READABLE);
  }

  get isClosed(): boolean {
    return this.closed;
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
    while (!this.closed) {
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
    this.writeQueue.push({ data: message, fds });
    if (this.writeQueue.length === 1) this.flush();
  }

  private flush(): void {
    while (this.writeQueue.length > 0 && !this.closed) {
      const head = this.writeQueue[0]!;
      let sent: number;
      try {
        sent = this.ops.sendmsg(this.fd, head.data, head.fds);
      } catch (err) {
        if (errCode(err) === 'EAGAIN' || errCode(err) === 'EWOULDBLOCK') {
          this.poller.start(this.ops.POLL_READABLE | this.ops.POLL_WRITABLE);
          return;
        }
        if (errCode(err) === 'EINTR') continue;
        this.close(err as Error);
        return;
      }
      this.stats.bytesOut += sent;
      if (sent < head.data.length) {
        // Fds went with the first byte; the rest is plain data.
        head.data = head.data.subarray(sent);
        head.fds = [];
        continue;
      }
      this.writeQueue.shift();
    }
    if (!this.closed) this.poller.start(this.ops.POLL_READABLE);
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
    this.safeClose(this.fd);
    this.options.onClose(reason);
  }
}
