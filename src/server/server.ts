/**
 * The vfio-user server for one device: listens on a Unix socket, serves one client connection at
 * a time (QEMU connects once per device, at realize), and on disconnect releases the client's DMA
 * mappings and eventfds while keeping the device state, then accepts the next client.
 */
import * as fs from 'node:fs';
import { info, tracer, warn } from '../log.js';
import { isErrno, type NativeBinding, type PollerInstance } from '../native/binding.js';
import { Connection } from '../transport/connection.js';
import type { PciFunction } from '../pci/pci-function.js';
import { DEFAULT_LIMITS, maxMessageSize, Session, type SessionLimits } from './session.js';

const traceServer = tracer('server');

export interface VfioUserServerOptions {
  socketPath: string;
  device: PciFunction;
  native: NativeBinding;
  limits?: SessionLimits;
}

export class VfioUserServer {
  private listenFd = -1;
  private listener: PollerInstance | null = null;
  private active: { conn: Connection; session: Session } | null = null;
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

  /** Start listening. A stale socket file from a previous run is replaced; any other file is not. */
  listen(): void {
    const path = this.options.socketPath;
    try {
      if (fs.lstatSync(path).isSocket()) fs.unlinkSync(path);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    }
    const native = this.options.native;
    this.listenFd = native.listenUnix(path, 4);
    this.listener = new native.Poller(this.listenFd, (err) => {
      if (err === null) this.acceptPending();
    });
    this.listener.start(native.POLL_READABLE);
    info(`${this.options.device.name}: listening on ${path}`);
  }

  private acceptPending(): void {
    const native = this.options.native;
    for (;;) {
      let fd: number;
      try {
        fd = native.accept(this.listenFd);
      } catch (err) {
        if (isErrno(err, 'EAGAIN') || isErrno(err, 'EWOULDBLOCK')) return;
        if (isErrno(err, 'ECONNABORTED') || isErrno(err, 'EINTR')) continue;
        warn(`${this.options.device.name}: accept failed: ${(err as Error).message}`);
        return;
      }
      if (this.active !== null) {
        // One connection serves one device; a second client would fight over its state.
        warn(`${this.options.device.name}: refusing a second client while one is connected`);
        native.close(fd);
        continue;
      }
      this.serve(fd);
    }
  }

  /** Serve an already connected socket (used by `listen`, and by tests over a socketpair). */
  serve(fd: number): Session {
    const native = this.options.native;
    const limits = this.options.limits ?? DEFAULT_LIMITS;
    const device = this.options.device;
    let session: Session | null = null;
    const conn = new Connection(native, fd, {
      maxMessageSize: maxMessageSize(limits),
      maxFds: limits.maxMsgFds,
      onFrame: (frame) => session!.handleFrame(frame),
      onClose: (reason) => {
        session?.closed();
        for (const [name, n] of session?.commandCounts ?? []) this.pastCommandCounts.set(name, (this.pastCommandCounts.get(name) ?? 0) + n);
        this.active = null;
        info(`${device.name}: client disconnected${reason ? `: ${reason.message}` : ''}; DMA mappings and interrupts released`);
        for (const listener of this.closeListeners) listener();
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

  /** Stop listening, drop the client, remove the socket file. */
  close(): void {
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
