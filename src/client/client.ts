/**
 * A vfio-user client in TypeScript, for tests and tools: it speaks to mdgpu the way QEMU's
 * vfio-user-pci does (the region-info two-round protocol, eventfds with SET_IRQS, fds with
 * DMA_MAP) and serves the server's DMA_READ/DMA_WRITE from memory the caller provides.
 */
import type { NativeBinding } from '../native/binding.js';
import { Connection } from '../transport/connection.js';
import type { Frame } from '../transport/framer.js';
import { Command, commandName, HeaderFlag, MessageType } from '../protocol/commands.js';
import { ProtocolError, errnoName } from '../protocol/errors.js';
import { encodeMessage, errorReply, replyMessage } from '../protocol/message.js';
import { decodeVersionReply, encodeVersionRequest, type Version, type VersionCapabilities } from '../protocol/codec/version.js';
import { encodeDmaMapRequest } from '../protocol/codec/dma-map.js';
import { encodeDmaUnmapRequest } from '../protocol/codec/dma-unmap.js';
import { decodeDeviceGetInfoReply, encodeDeviceGetInfoRequest, type DeviceInfo } from '../protocol/codec/device-get-info.js';
import { decodeRegionInfoReply, encodeRegionInfoRequest, type RegionInfoReply } from '../protocol/codec/device-get-region-info.js';
import { decodeIrqInfoReply, encodeIrqInfoRequest, type IrqInfo } from '../protocol/codec/device-get-irq-info.js';
import { encodeSetIrqsRequest, type SetIrqsRequest } from '../protocol/codec/device-set-irqs.js';
import { decodeRegionReadReply, encodeRegionReadRequest } from '../protocol/codec/region-read.js';
import { encodeRegionWriteRequest } from '../protocol/codec/region-write.js';
import { decodeDmaReadRequest, encodeDmaReadReply } from '../protocol/codec/dma-read.js';
import { decodeDmaWriteRequest, encodeDmaWriteReply } from '../protocol/codec/dma-write.js';

/** An error reply from the server. */
export class ErrorReply extends Error {
  constructor(
    readonly command: number,
    readonly errno: number,
  ) {
    super(`${commandName(command)} failed: ${errnoName(errno)}`);
  }
  get code(): string {
    return errnoName(this.errno);
  }
}

/** Guest memory the client serves to the server's DMA_READ/DMA_WRITE (message-based DMA). */
export interface ClientMemory {
  read(address: bigint, count: number): Uint8Array;
  write(address: bigint, data: Uint8Array): void;
}

export interface ClientOptions {
  maxDataXferSize?: number;
  memory?: ClientMemory;
  /** Milliseconds before a request without reply fails (default 5000, as QEMU's x-msg-timeout). */
  timeoutMs?: number;
}

interface Waiter {
  resolve(frame: Frame): void;
  reject(err: Error): void;
  timer: NodeJS.Timeout;
}

export class VfioUserClient {
  private readonly conn: Connection;
  private nextId = 1;
  private readonly waiting = new Map<number, Waiter>();
  private closedWith: Error | null | undefined = undefined;
  private readonly closeWaiters: ((reason: Error | null) => void)[] = [];
  maxDataXferSize: number;
  /** Requests the server sent us (DMA_READ/WRITE), for tests. */
  readonly serverRequests: string[] = [];

  constructor(
    private readonly native: NativeBinding,
    fd: number,
    private readonly options: ClientOptions = {},
  ) {
    this.maxDataXferSize = options.maxDataXferSize ?? 1024 * 1024;
    this.conn = new Connection(native, fd, {
      maxMessageSize: this.maxDataXferSize + 64,
      maxFds: 4,
      onFrame: (frame) => this.onFrame(frame),
      onClose: (reason) => {
        this.closedWith = reason;
        for (const [, w] of this.waiting) {
          clearTimeout(w.timer);
          w.reject(reason ?? new Error('Connection closed'));
        }
        this.waiting.clear();
        for (const waiter of this.closeWaiters.splice(0)) waiter(reason);
      },
    });
  }

  static connect(native: NativeBinding, socketPath: string, options?: ClientOptions): VfioUserClient {
    return new VfioUserClient(native, native.connectUnix(socketPath), options);
  }

  get isClosed(): boolean {
    return this.closedWith !== undefined;
  }

  /** Resolves when the server closes the connection (or we do). */
  waitClosed(): Promise<Error | null> {
    if (this.closedWith !== undefined) return Promise.resolve(this.closedWith);
    return new Promise((resolve) => this.closeWaiters.push(resolve));
  }

  private onFrame(frame: Frame): void {
    const { header } = frame;
    if ((header.flags & HeaderFlag.TypeMask) === MessageType.Command) {
      this.serveRequest(frame);
      return;
    }
    const waiter = this.waiting.get(header.msgId);
    if (waiter === undefined) {
      for (const fd of frame.fds) this.native.close(fd);
      return;
    }
    this.waiting.delete(header.msgId);
    clearTimeout(waiter.timer);
    if ((header.flags & HeaderFlag.Error) !== 0) {
      for (const fd of frame.fds) this.native.close(fd);
      waiter.reject(new ErrorReply(header.command, header.error));
    } else {
      waiter.resolve(frame);
    }
  }

  private serveRequest(frame: Frame): void {
    const { header } = frame;
    this.serverRequests.push(commandName(header.command));
    const memory = this.options.memory;
    try {
      if (memory === undefined) throw new ProtocolError('EFAULT', 'No client memory');
      if (header.command === Command.DmaRead) {
        const req = decodeDmaReadRequest(frame.payload, { maxDataXferSize: this.maxDataXferSize });
        const data = memory.read(req.address, req.count);
        this.conn.send(replyMessage(header, encodeDmaReadReply({ address: req.address, data })));
      } else if (header.command === Command.DmaWrite) {
        const req = decodeDmaWriteRequest(frame.payload, { maxDataXferSize: this.maxDataXferSize });
        memory.write(req.address, req.data);
        this.conn.send(replyMessage(header, encodeDmaWriteReply({ address: req.address, count: req.data.length })));
      } else {
        throw new ProtocolError('EINVAL', `Unexpected ${commandName(header.command)} from the server`);
      }
    } catch (err) {
      const errno = err instanceof ProtocolError ? err.errno : 14; /* EFAULT */
      this.conn.send(errorReply(header, errno));
    }
  }

  /** Send a raw, already encoded message (for malformed-input tests). */
  sendRaw(message: Uint8Array, fds: number[] = []): void {
    this.conn.send(message, fds);
  }

  /** Send a command and wait for its reply; rejects with ErrorReply on an error reply. */
  request(command: number, payload: Uint8Array, fds: number[] = [], msgId?: number): Promise<Frame> {
    if (this.closedWith !== undefined) return Promise.reject(this.closedWith ?? new Error('Connection closed'));
    const id = msgId ?? this.allocId();
    return new Promise<Frame>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiting.delete(id);
        reject(new Error(`${commandName(command)} timed out waiting for a reply`));
      }, this.options.timeoutMs ?? 5000);
      this.waiting.set(id, { resolve, reject, timer });
      this.conn.send(encodeMessage({ msgId: id, command, flags: MessageType.Command }, payload), fds);
    });
  }

  /** Send a command with NO_REPLY (a posted write). */
  post(command: number, payload: Uint8Array): void {
    this.conn.send(encodeMessage({ msgId: this.allocId(), command, flags: MessageType.Command | HeaderFlag.NoReply }, payload));
  }

  allocId(): number {
    const id = this.nextId;
    this.nextId = (this.nextId + 1) & 0xffff;
    return id;
  }

  async version(
    capabilities: VersionCapabilities = { maxMsgFds: 16, maxDataXferSize: this.maxDataXferSize, pgsizes: 4096, maxDmaMaps: 65535 },
  ): Promise<Version> {
    const frame = await this.request(Command.Version, encodeVersionRequest({ major: 0, minor: 0, capabilities }));
    const reply = decodeVersionReply(frame.payload);
    if (reply.capabilities?.maxDataXferSize !== undefined) this.maxDataXferSize = reply.capabilities.maxDataXferSize;
    return reply;
  }

  async dmaMap(map: { address: bigint; size: bigint; offset?: bigint; flags?: number; fd?: number }): Promise<void> {
    await this.request(
      Command.DmaMap,
      encodeDmaMapRequest({ argsz: 32, flags: map.flags ?? 3, offset: map.offset ?? 0n, address: map.address, size: map.size }),
      map.fd === undefined ? [] : [map.fd],
    );
  }

  async dmaUnmap(address: bigint, size: bigint, flags = 0): Promise<void> {
    await this.request(Command.DmaUnmap, encodeDmaUnmapRequest({ argsz: 24, flags, address, size }));
  }

  async deviceInfo(): Promise<DeviceInfo> {
    const frame = await this.request(Command.DeviceGetInfo, encodeDeviceGetInfoRequest({ argsz: 16 }));
    return decodeDeviceGetInfoReply(frame.payload);
  }

  /** GET_REGION_INFO with QEMU's two rounds: argsz 32 first, then the size the server asked for. */
  async regionInfo(index: number): Promise<{ info: RegionInfoReply; fd: number | null; rounds: number }> {
    let argsz = 32;
    for (let round = 1; round <= 2; round++) {
      const frame = await this.request(Command.DeviceGetRegionInfo, encodeRegionInfoRequest({ argsz, index }));
      const info = decodeRegionInfoReply(frame.payload, { requestArgsz: argsz, maxDataXferSize: this.maxDataXferSize });
      if (info.complete || round === 2) {
        const [fd, ...extra] = frame.fds;
        for (const e of extra) this.native.close(e);
        return { info, fd: fd ?? null, rounds: round };
      }
      for (const fd of frame.fds) this.native.close(fd);
      argsz = info.argsz;
    }
    throw new Error('unreachable');
  }

  async irqInfo(index: number): Promise<IrqInfo> {
    const frame = await this.request(Command.DeviceGetIrqInfo, encodeIrqInfoRequest({ argsz: 16, index }));
    return decodeIrqInfoReply(frame.payload);
  }

  async setIrqs(request: SetIrqsRequest, fds: number[] = []): Promise<void> {
    await this.request(Command.DeviceSetIrqs, encodeSetIrqsRequest(request), fds);
  }

  async regionRead(region: number, offset: bigint | number, count: number): Promise<Uint8Array> {
    const frame = await this.request(Command.RegionRead, encodeRegionReadRequest({ offset: BigInt(offset), region, count }));
    return decodeRegionReadReply(frame.payload, { maxDataXferSize: this.maxDataXferSize, requestCount: count }).data;
  }

  async regionWrite(region: number, offset: bigint | number, data: Uint8Array): Promise<void> {
    await this.request(Command.RegionWrite, encodeRegionWriteRequest({ offset: BigInt(offset), region, data }));
  }

  /** A posted REGION_WRITE (NO_REPLY), as QEMU sends MMIO writes when no region is mmappable. */
  postRegionWrite(region: number, offset: bigint | number, data: Uint8Array): void {
    this.post(Command.RegionWrite, encodeRegionWriteRequest({ offset: BigInt(offset), region, data }));
  }

  async reset(): Promise<void> {
    await this.request(Command.DeviceReset, new Uint8Array(0));
  }

  close(): void {
    this.conn.close();
  }
}
