/**
 * The vfio-user server for one device: listens on a Unix socket, serves one client connection at
 * a time (QEMU connects once per device, at realize), and on disconnect releases the client's DMA
 * mappings and eventfds while keeping the device state, then accepts the next client.
 *
 * A client that connects while another is still being served waits (at most `reconnectGraceMs`)
 * instead of being refused at once: a client that closes and reconnects at once is often seen
 * connecting before its old connection's end has been read (the old one may still have requests
 * to finish, one read budget per loop turn). If the old connection is still up when the grace
 * period ends, the new one is refused; a third client meanwhile is refused at once.
 */
import * as fs from 'node:fs';
import { clientInfo, clientWarning, info, tracer } from '../log.js';
import { isErrno, type NativeBinding, type PollerInstance } from '../native/binding.js';
import { Connection, type ConnectionOptions } from '../transport/connection.js';
import type { PciFunction } from '../pci/pci-function.js';
import { DEFAULT_LIMITS, maxMessageSize, Session, type SessionLimits } from './session.js';
import { claimSocketPath, createSocketFile, type SocketFileOptions } from './socket-file.js';

const traceServer = tracer('server');

/** How long a client that connects while another is served may wait for that one to end. */
export const RECONNECT_GRACE_MS = 1000;

/**
 * Connections accepted per wakeup of the listener. Only one is served at a time, so more are
 * only refusals; a local process that connects in a loop gets its turn like every other socket
 * (the listener's poller is level-triggered: the rest are accepted on the next loop turn).
 */
export const ACCEPT_BUDGET = 16;

/** After a failed accept (out of fds), how long the listener rests before trying again. */
const ACCEPT_RETRY_MS = 100;

export interface VfioUserServerOptions extends SocketFileOptions {
  socketPath: string;
  device: PciFunction;
  native: NativeBinding;
  limits?: SessionLimits;
  /** Backpressure and read budget of each client connection (defaults: the transport's). */
  connection?: Pick<ConnectionOptions, 'maxQueuedSendBytes' | 'readBudget'>;
  /** Milliseconds a second client may wait for the current one to end (default {@link RECONNECT_GRACE_MS}). */
  reconnectGraceMs?: number;
}

export class VfioUserServer {
  private listenFd = -1;
  private listener: PollerInstance | null = null;
  private active: { conn: Connection; session: Session } | null = null;
  /** A client that connected while `active` was still served, and its refusal timer. */
  private waiting: { fd: number; timer: NodeJS.Timeout } | null = null;
  private readonly closeListeners: (() => void)[] = [];
  /** Connections served since start, for metrics and tests. */
  connections = 0;
  /** Messages handled per command over all sessions so far (the live one included). */
  private readonly pastCommandCounts = new Map<string, number>();

  constructor(private readonly options: VfioUserServerOptions) {}

  get socketPath(): string {
    return this.options.socketPath;
  }

  get session(): Session | null {
    return this.active?.session ?? null;
  }

  get connection(): Connection | null {
    return this.active?.conn ?? null;
  }

  /**
   * Start listening, on a socket file with the configured mode (default 0600) and group. Refuses
   * to start if another server listens on the path; a stale socket file from a previous run is
   * replaced; any other file is not.
   */
  listen(): void {
    const path = this.options.socketPath;
    const native = this.options.native;
    claimSocketPath(path, (p) => native.unixSocketListening(p));
    try {
      createSocketFile(path, this.options, () => {
        this.listenFd = native.listenUnix(path, 4);
      });
    } catch (err) {
      this.close();
      throw err;
    }
    this.listener = new native.Poller(this.listenFd, (err) => {
      if (err === null) this.acceptPending();
    });
    this.listener.start(native.POLL_READABLE);
    info(`${this.options.device.name}: listening on ${path}`);
  }

  private acceptPending(): void {
    const native = this.options.native;
    for (let accepted = 0; accepted < ACCEPT_BUDGET; accepted++) {
      let fd: number;
      try {
        fd = native.accept(this.listenFd);
      } catch (err) {
        if (isErrno(err, 'EAGAIN') || isErrno(err, 'EWOULDBLOCK')) return;
        if (isErrno(err, 'ECONNABORTED') || isErrno(err, 'EINTR')) continue;
        // EMFILE and the like: the pending connection stays, and a level-triggered listener would
        // spin on it; look again a little later, and say so at a bounded rate.
        clientWarning(`${this.options.device.name}-connection`, `${this.options.device.name}: accept failed: ${(err as Error).message}`);
        this.pauseListener(ACCEPT_RETRY_MS);
        return;
      }
      if (this.active === null) {
        this.serve(fd);
      } else if (this.waiting === null) {
        // Probably the same client reconnecting before we read the end of its old connection.
        const timer = setTimeout(() => this.refuseWaiting(), this.options.reconnectGraceMs ?? RECONNECT_GRACE_MS);
        this.waiting = { fd, timer };
      } else {
        // One connection serves one device; a second client would fight over its state.
        this.refuse(fd);
      }
    }
  }

  private pauseListener(ms: number): void {
    const listener = this.listener;
    if (listener === null) return;
    listener.stop();
    setTimeout(() => {
      if (this.listener === listener) listener.start(this.options.native.POLL_READABLE);
    }, ms).unref();
  }

  private refuse(fd: number): void {
    const name = this.options.device.name;
    clientWarning(`${name}-connection`, `${name}: refusing a second client while one is connected`);
    this.options.native.close(fd);
  }

  private refuseWaiting(): void {
    if (this.waiting === null) return;
    const { fd } = this.waiting;
    this.waiting = null;
    this.refuse(fd);
  }

  /** The active client is gone: serve the one that waited, if any. */
  private serveWaiting(): void {
    if (this.waiting === null) return;
    const { fd, timer } = this.waiting;
    this.waiting = null;
    clearTimeout(timer);
    this.serve(fd);
  }

  /** Serve an already connected socket (used by `listen`, and by tests over a socketpair). */
  serve(fd: number): Session {
    const native = this.options.native;
    const limits = this.options.limits ?? DEFAULT_LIMITS;
    const device = this.options.device;
    let session: Session | null = null;
    const conn = new Connection(native, fd, {
      ...this.options.connection,
      maxMessageSize: maxMessageSize(limits),
      maxFds: limits.maxMsgFds,
      onFrame: (frame) => session!.handleFrame(frame),
      // Register accesses (the guest's VM exits) skip the framer and the codecs.
      fastPath: (bytes, view, at, size) => session!.handleFast(bytes, view, at, size),
      onClose: (reason) => {
        session?.closed();
        for (const [name, n] of session?.commandCounts ?? []) this.pastCommandCounts.set(name, (this.pastCommandCounts.get(name) ?? 0) + n);
        this.active = null;
        clientInfo(
          `${device.name}-connection`,
          `${device.name}: client disconnected${reason ? `: ${reason.message}` : ''}; DMA mappings and interrupts released`,
        );
        for (const listener of this.closeListeners) listener();
        this.serveWaiting();
      },
    });
    session = new Session(conn, device, (closeFd) => native.close(closeFd), limits);
    this.active = { conn, session };
    this.connections++;
    traceServer(() => `${device.name}: client connected on fd ${fd}`);
    return session;
  }

  /** Messages handled per command since the server started. */
  commandCounts(): Map<string, number> {
    const all = new Map(this.pastCommandCounts);
    for (const [name, n] of this.active?.session.commandCounts ?? []) all.set(name, (all.get(name) ?? 0) + n);
    return all;
  }

  /** Called whenever a client connection ends. */
  onClientClosed(listener: () => void): void {
    this.closeListeners.push(listener);
  }

  /** Stop listening, drop the client (and one waiting), remove the socket file. */
  close(): void {
    if (this.waiting !== null) {
      clearTimeout(this.waiting.timer);
      this.options.native.close(this.waiting.fd);
      this.waiting = null;
    }
    this.active?.conn.close();
    if (this.listener !== null) {
      this.listener.stop();
      this.listener.close();
      this.listener = null;
    }
    if (this.listenFd >= 0) {
      this.options.native.close(this.listenFd);
      this.listenFd = -1;
      try {
        fs.unlinkSync(this.options.socketPath);
      } catch {
        // Already gone.
      }
    }
  }
}
