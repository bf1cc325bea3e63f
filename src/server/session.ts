/**
 * One vfio-user session: the state machine (AwaitVersion → Ready → Closed) and the dispatcher
 * that turns client commands into calls on the PCI function, and the function's DMA needs into
 * server → client DMA_READ/DMA_WRITE requests.
 *
 * Error classes (STYLE.md §5.5): a malformed or unsupported request gets an error reply with a
 * positive errno and the session continues; a stream that cannot be trusted (bad header,
 * oversized message, fds where none are allowed) closes the session. The dispatcher is the only
 * place that turns errors into replies.
 *
 * Replies go out in arrival order because every handler completes synchronously; nothing a
 * client waits for ever waits on a server → client request (VFIO-USER.md §5 deadlock).
 */
import { constants } from 'node:os';
import { clientInfo, clientWarning, guestError, traceEnabled, tracer, warn } from '../log.js';
import type { Frame } from '../transport/framer.js';
import type { Connection } from '../transport/connection.js';
import {
  Command,
  commandName,
  DeviceInfoFlag,
  HEADER_SIZE,
  HeaderFlag,
  HeaderLayout,
  IrqInfoFlag,
  MessageType,
  RegionInfoFlag,
  DmaMapFlag,
  DmaUnmapFlag,
} from '../protocol/commands.js';
import { FatalProtocolError, ProtocolError, errnoName } from '../protocol/errors.js';
import { encodeMessage, errorReply, replyMessage } from '../protocol/message.js';
import { QEMU_LIMITS } from '../protocol/limits.js';
import { checkVersionReplyFits, decodeVersionRequest, encodeVersionReply, type VersionCapabilities } from '../protocol/codec/version.js';
import { decodeDmaMapRequest, encodeDmaMapReply } from '../protocol/codec/dma-map.js';
import { decodeDmaUnmapRequest, encodeDmaUnmapReply } from '../protocol/codec/dma-unmap.js';
import { decodeDeviceGetInfoRequest, encodeDeviceGetInfoReply } from '../protocol/codec/device-get-info.js';
import { decodeRegionInfoRequest, encodeRegionInfoReply, type RegionCap } from '../protocol/codec/device-get-region-info.js';
import { decodeRegionIoFdsRequest, encodeRegionIoFdsReply } from '../protocol/codec/device-get-region-io-fds.js';
import { decodeIrqInfoRequest, encodeIrqInfoReply } from '../protocol/codec/device-get-irq-info.js';
import { decodeSetIrqsRequest, encodeSetIrqsReply } from '../protocol/codec/device-set-irqs.js';
import { RegionAccessLayout } from '../protocol/codec/region-access.js';
import { decodeRegionReadRequest, encodeRegionReadReply } from '../protocol/codec/region-read.js';
import { decodeRegionWriteRequest, encodeRegionWriteReply } from '../protocol/codec/region-write.js';
import { decodeRegionWriteMultiRequest, encodeRegionWriteMultiReply } from '../protocol/codec/region-write-multi.js';
import { decodeDeviceResetRequest, encodeDeviceResetReply } from '../protocol/codec/device-reset.js';
import { decodeDeviceFeatureRequest } from '../protocol/codec/device-feature.js';
import { encodeDmaReadRequest, decodeDmaReadReply } from '../protocol/codec/dma-read.js';
import { encodeDmaWriteRequest, decodeDmaWriteReply } from '../protocol/codec/dma-write.js';
import { RegionError, RegionIndex, type PciFunction } from '../pci/pci-function.js';
import { IrqError, IRQ_INDEX_COUNT, IrqIndex } from '../pci/irqs.js';
import { DEFAULT_DMA_LIMITS, DmaError, type DmaLimits, type MessageDma } from '../pci/dma-space.js';

const traceProtocol = tracer('protocol');

/**
 * What we advertise in VERSION and enforce. No write_multiple (QEMU would send NO_REPLY batches),
 * no twin_socket.
 */
export interface SessionLimits {
  /** Most fds the client may send with one message (QEMU splits SET_IRQS by it); ≤ 16. */
  maxMsgFds: number;
  /** Largest REGION_READ/WRITE and DMA_READ/WRITE data in bytes; ≥ 4096 (the config read). */
  maxDataXferSize: number;
  /** Milliseconds to wait for the client's reply to our DMA_READ/WRITE. */
  dmaReplyTimeoutMs: number;
  /** Bounds on the client's DMA mappings; `maxMappings` is advertised as `max_dma_maps`. */
  dma: DmaLimits;
}

export const DEFAULT_LIMITS: SessionLimits = {
  maxMsgFds: 16,
  maxDataXferSize: 1024 * 1024,
  dmaReplyTimeoutMs: 5000,
  dma: DEFAULT_DMA_LIMITS,
};

/** Largest message we accept: a REGION_WRITE of maxDataXferSize plus its header and access struct. */
export function maxMessageSize(limits: SessionLimits): number {
  return limits.maxDataXferSize + 16 + 16 + 64;
}

export const NUM_REGIONS = RegionIndex.COUNT;
export const NUM_IRQS = IRQ_INDEX_COUNT;

type State = 'await-version' | 'ready' | 'closed';

interface PendingRequest {
  resolve(frame: Frame): void;
  reject(err: Error): void;
  timer: NodeJS.Timeout;
}

/** Commands that may carry fds, and how many at most. Any other command with fds is fatal. */
function fdsAllowed(command: number, limits: SessionLimits): number {
  if (command === Command.DmaMap) return 1;
  if (command === Command.DeviceSetIrqs) return limits.maxMsgFds;
  return 0;
}

const ERRNO = constants.errno;

// The REGION_READ/WRITE fast path reads and writes the declared layouts' own offsets.
const MSG_ID = HeaderLayout.fields.msgId.offset;
const COMMAND = HeaderLayout.fields.command.offset;
const SIZE = HeaderLayout.fields.size.offset;
const FLAGS = HeaderLayout.fields.flags.offset;
const ERROR = HeaderLayout.fields.error.offset;
const ACCESS_OFFSET = HEADER_SIZE + RegionAccessLayout.fields.offset.offset;
const ACCESS_REGION = HEADER_SIZE + RegionAccessLayout.fields.region.offset;
const ACCESS_COUNT = HEADER_SIZE + RegionAccessLayout.fields.count.offset;
/** Header and access struct: a REGION_READ request, a REGION_WRITE reply, where data starts. */
const ACCESS_END = HEADER_SIZE + RegionAccessLayout.size;
/** Largest access the fast path takes: a register (QEMU splits wider accesses to 8 bytes). */
export const FAST_ACCESS_MAX = 8;

/** Command numbers the per-command counters have a slot for; others share a map. */
const COUNTED_COMMANDS = 32;

export class Session {
  private state: State = 'await-version';
  private nextMsgId = 0;
  private readonly pending = new Map<number, PendingRequest>();
  /** What the client said it can take (VERSION capabilities). */
  clientCaps: VersionCapabilities = {};
  /** Messages handled per command number below {@link COUNTED_COMMANDS}, and the others. */
  private readonly counts = new Float64Array(COUNTED_COMMANDS);
  private readonly otherCounts = new Map<number, number>();
  errorReplies = 0;
  /** The fast path's replies are encoded here, then sent (or copied into the queue) at once. */
  private readonly replyBytes = new Uint8Array(new ArrayBuffer(ACCESS_END + FAST_ACCESS_MAX));
  private readonly replyView = new DataView(this.replyBytes.buffer);

  constructor(
    private readonly conn: Pick<Connection, 'send' | 'sendCopy' | 'close' | 'isClosed'>,
    private readonly device: PciFunction,
    /** Closes fds a command may not keep (the native addon's close). */
    private readonly closeFd: (fd: number) => void,
    private readonly limits: SessionLimits = DEFAULT_LIMITS,
  ) {
    const messageDma: MessageDma = {
      read: (address, count) => this.dmaRead(address, count),
      write: (address, data) => this.dmaWrite(address, data),
    };
    device.dma.setMessageDma(messageDma);
    // What VERSION advertises is what DMA_MAP enforces.
    device.dma.setLimits(limits.dma);
  }

  get isReady(): boolean {
    return this.state === 'ready';
  }

  /** Messages handled per command name, for metrics and tests. */
  get commandCounts(): Map<string, number> {
    const out = new Map<string, number>();
    this.counts.forEach((n, command) => {
      if (n > 0) out.set(commandName(command), n);
    });
    for (const [command, n] of this.otherCounts) out.set(commandName(command), n);
    return out;
  }

  private countCommand(command: number): void {
    if (command < COUNTED_COMMANDS) this.counts[command]!++;
    else this.otherCounts.set(command, (this.otherCounts.get(command) ?? 0) + 1);
  }

  /**
   * The transport's fast path (Connection `fastPath`) for the messages a guest's trapped register
   * accesses become: REGION_READ/WRITE of 1 to 8 bytes, as plain commands expecting a reply. Reads
   * the header and the access struct in place at the layouts' offsets (no objects, no bigints),
   * does the access through the allocation-free PCI calls, and encodes the reply into one reused
   * buffer. Anything else (another command, NO_REPLY, a size that does not match, an offset past
   * 4 GiB, protocol tracing on) returns false before acting, and the message takes the general
   * path through `handleFrame`. An access the device refuses gets the same error reply, counted
   * and logged the same way, as in `handleFrame`.
   */
  handleFast(bytes: Uint8Array, view: DataView, at: number, size: number): boolean {
    if (this.state !== 'ready' || size < ACCESS_END) return false;
    if (view.getUint32(at + FLAGS, true) !== MessageType.Command) return false;
    const command = view.getUint16(at + COMMAND, true);
    const count = view.getUint32(at + ACCESS_COUNT, true);
    if (count === 0 || count > FAST_ACCESS_MAX || view.getUint32(at + ACCESS_OFFSET + 4, true) !== 0) return false;
    if (command === Command.RegionRead) {
      if (size !== ACCESS_END) return false;
    } else if (command !== Command.RegionWrite || size !== ACCESS_END + count) {
      return false;
    }
    if (traceEnabled('protocol')) return false;
    const msgId = view.getUint16(at + MSG_ID, true);
    const offset = view.getUint32(at + ACCESS_OFFSET, true);
    const region = view.getUint32(at + ACCESS_REGION, true);
    this.countCommand(command);
    const reply = this.replyBytes;
    let replySize = ACCESS_END;
    try {
      if (command === Command.RegionRead) {
        this.device.regionReadInto(region, offset, count, reply, ACCESS_END);
        replySize += count;
      } else {
        this.device.regionWriteFrom(region, offset, bytes, at + ACCESS_END, count);
      }
    } catch (err) {
      this.refuse({ msgId, command }, err, false);
      return true;
    }
    const out = this.replyView;
    out.setUint16(MSG_ID, msgId, true);
    out.setUint16(COMMAND, command, true);
    out.setUint32(SIZE, replySize, true);
    out.setUint32(FLAGS, MessageType.Reply, true);
    out.setUint32(ERROR, 0, true);
    out.setUint32(ACCESS_OFFSET, offset, true);
    out.setUint32(ACCESS_OFFSET + 4, 0, true);
    out.setUint32(ACCESS_REGION, region, true);
    out.setUint32(ACCESS_COUNT, count, true);
    this.conn.sendCopy(reply, replySize);
    return true;
  }

  /** Handle one frame from the client. Never throws: errors become replies or a close. */
  handleFrame(frame: Frame): void {
    const { header } = frame;
    if (this.state === 'closed') {
      this.closeFds(frame.fds);
      return;
    }
    if ((header.flags & HeaderFlag.TypeMask) === MessageType.Reply) {
      this.handleReply(frame);
      return;
    }
    const noReply = (header.flags & HeaderFlag.NoReply) !== 0;
    this.countCommand(header.command);
    traceProtocol(
      () =>
        `<- ${commandName(header.command)} id=${header.msgId} size=${header.size}${frame.fds.length ? ` fds=${frame.fds.length}` : ''}${noReply ? ' (no reply)' : ''}`,
    );

    if (frame.fds.length > fdsAllowed(header.command, this.limits)) {
      this.closeFds(frame.fds);
      this.fatal(new FatalProtocolError('EINVAL', `Unexpected fds: ${frame.fds.length} with ${commandName(header.command)}`));
      return;
    }
    let reply: { payload: Uint8Array; fds?: number[] };
    try {
      reply = this.dispatch(frame);
    } catch (err) {
      this.refuse(header, err, noReply);
      return;
    }
    if (!noReply) this.conn.send(replyMessage(header, reply.payload), reply.fds ?? []);
  }

  /** A request failed: close the session if the stream cannot be trusted, else log and reply with an errno. */
  private refuse(request: { msgId: number; command: number }, err: unknown, noReply: boolean): void {
    if (err instanceof FatalProtocolError) {
      this.fatal(err);
      return;
    }
    const name = commandName(request.command);
    const errno = errnoOf(err);
    if (errno === undefined) {
      // A bug in mdgpu, not the client's fault: keep serving, say so loudly.
      warn(`${this.device.name}: internal error handling ${name}: ${(err as Error).stack ?? String(err)}`);
    } else if ((err as { routine?: boolean }).routine === true) {
      traceProtocol(() => `${name} refused (${errnoName(errno)}): ${(err as Error).message}`);
    } else {
      guestError(`${this.device.name}-proto`, `${this.device.name}: ${name} failed (${errnoName(errno)}): ${(err as Error).message}`);
    }
    this.errorReplies++;
    if (!noReply) this.conn.send(errorReply(request, errno ?? ERRNO.EIO));
  }

  private dispatch(frame: Frame): { payload: Uint8Array; fds?: number[] } {
    const { header, payload, fds } = frame;
    if (this.state === 'await-version' && header.command !== Command.Version) {
      this.closeFds(fds);
      throw new ProtocolError('EINVAL', `${commandName(header.command)} before VERSION`);
    }
    const limits = { maxDataXferSize: this.limits.maxDataXferSize };
    const device = this.device;
    switch (header.command) {
      case Command.Version:
        return { payload: this.handleVersion(payload) };

      case Command.DmaMap: {
        let request: ReturnType<typeof decodeDmaMapRequest>;
        try {
          request = decodeDmaMapRequest(payload, { fdCount: fds.length });
        } catch (err) {
          this.closeFds(fds);
          throw err;
        }
        device.dma.map({
          iova: request.address,
          size: request.size,
          fdOffset: request.offset,
          readable: (request.flags & DmaMapFlag.Read) !== 0,
          writable: (request.flags & DmaMapFlag.Write) !== 0,
          fd: fds[0] ?? null,
        });
        return { payload: encodeDmaMapReply() };
      }

      case Command.DmaUnmap: {
        const request = decodeDmaUnmapRequest(payload, limits);
        if (request.bitmap !== undefined) throw new ProtocolError('ENOTSUP', 'DMA_UNMAP dirty bitmaps are not supported');
        if ((request.flags & DmaUnmapFlag.All) !== 0) device.dma.unmapAll();
        else device.dma.unmap(request.address, request.size);
        return { payload: encodeDmaUnmapReply() };
      }

      case Command.DeviceGetInfo: {
        const request = decodeDeviceGetInfoRequest(payload);
        return {
          payload: encodeDeviceGetInfoReply({
            argsz: Math.min(request.argsz, 16),
            flags: DeviceInfoFlag.Pci | DeviceInfoFlag.Reset,
            numRegions: NUM_REGIONS,
            numIrqs: NUM_IRQS,
          }),
        };
      }

      case Command.DeviceGetRegionInfo:
        return this.handleRegionInfo(payload);

      case Command.DeviceGetRegionIoFds: {
        // QEMU never asks; we have no ioeventfd-backed registers, so the list is empty.
        const request = decodeRegionIoFdsRequest(payload, { numRegions: NUM_REGIONS, maxDataXferSize: this.limits.maxDataXferSize });
        if (device.regionInfo(request.index).size === 0) throw new ProtocolError('EINVAL', `Region ${request.index} is not implemented`);
        return { payload: encodeRegionIoFdsReply({ index: request.index, subRegions: [] }, request.argsz) };
      }

      case Command.DeviceGetIrqInfo: {
        const request = decodeIrqInfoRequest(payload, { numIrqs: NUM_IRQS });
        return { payload: encodeIrqInfoReply(this.irqInfo(request.index)) };
      }

      case Command.DeviceSetIrqs: {
        let request: ReturnType<typeof decodeSetIrqsRequest>;
        try {
          request = decodeSetIrqsRequest(payload, {
            maxDataXferSize: this.limits.maxDataXferSize,
            numIrqs: NUM_IRQS,
            irqCount: (index) => device.irqs.count(index),
            fdCount: fds.length,
          });
        } catch (err) {
          this.closeFds(fds);
          throw err;
        }
        device.irqs.set({
          index: request.index,
          action: request.action,
          start: request.start,
          count: request.count,
          data: request.data.kind === 'eventfd' ? { kind: 'eventfd', fds } : request.data,
        });
        return { payload: encodeSetIrqsReply() };
      }

      case Command.RegionRead: {
        const request = decodeRegionReadRequest(payload, limits);
        const data = device.regionRead(request.region, request.offset, request.count);
        return { payload: encodeRegionReadReply({ offset: request.offset, region: request.region, data }) };
      }

      case Command.RegionWrite: {
        const request = decodeRegionWriteRequest(payload, limits);
        device.regionWrite(request.region, request.offset, request.data);
        return { payload: encodeRegionWriteReply({ offset: request.offset, region: request.region, count: request.data.length }) };
      }

      case Command.RegionWriteMulti: {
        // Not advertised (no write_multiple), but decoded and applied if a client sends it anyway.
        const writes = decodeRegionWriteMultiRequest(payload, {});
        for (const write of writes) device.regionWrite(write.region, write.offset, write.data);
        return { payload: encodeRegionWriteMultiReply(writes.length) };
      }

      case Command.DeviceReset:
        decodeDeviceResetRequest(payload);
        device.reset();
        // Rate-limited: a client can send DEVICE_RESET in a loop.
        clientInfo(`${device.name}-reset`, `${device.name}: device reset`);
        return { payload: encodeDeviceResetReply() };

      case Command.DeviceFeature: {
        const request = decodeDeviceFeatureRequest(payload, limits);
        // No migration, no dirty logging, no DMA-BUF. QEMU 11.1.3 does not migrate vfio-user
        // devices (and does not block it either): see docs/ for why mdgpu refuses.
        throw new ProtocolError('EINVAL', `Device feature ${request.feature} is not supported`);
      }

      case Command.MigDataRead:
      case Command.MigDataWrite:
        throw new ProtocolError('ENOTSUP', 'Migration is not supported');

      case Command.DmaRead:
      case Command.DmaWrite:
        throw new ProtocolError('EINVAL', `${commandName(header.command)} is a server-to-client command`);

      default:
        throw new ProtocolError('ENOSYS', `Unknown command ${header.command}`);
    }
  }

  private handleVersion(payload: Uint8Array): Uint8Array {
    if (this.state !== 'await-version') throw new ProtocolError('EINVAL', 'VERSION already negotiated');
    const request = decodeVersionRequest(payload);
    if (request.major !== 0) throw new ProtocolError('ENOTSUP', `Unsupported protocol version ${request.major}.${request.minor}`);
    this.clientCaps = request.capabilities ?? {};
    let reply = encodeVersionReply({
      major: 0,
      minor: 0,
      capabilities: {
        maxMsgFds: this.limits.maxMsgFds,
        maxDataXferSize: this.limits.maxDataXferSize,
        pgsizes: 4096,
        maxDmaMaps: Math.min(this.limits.dma.maxMappings, QEMU_LIMITS.maxDmaMaps),
      },
    });
    // QEMU reads the reply into a buffer the size of its request: a longer reply kills the device.
    // A client whose request is too short for our JSON gets none, and with it the defaults
    // (1 MiB transfers, 4 KiB pages), which our limits accept.
    try {
      checkVersionReplyFits(reply, payload.length);
    } catch {
      if (this.limits.maxDataXferSize < QEMU_LIMITS.defaultMaxDataXferSize) throw new ProtocolError('EINVAL', 'VERSION request too short for our capabilities');
      reply = encodeVersionReply({ major: 0, minor: 0 });
    }
    this.state = 'ready';
    clientInfo(
      `${this.device.name}-connection`,
      `${this.device.name}: client connected (protocol 0.0, client max_data_xfer_size ${this.clientCaps.maxDataXferSize ?? 'default'})`,
    );
    return reply;
  }

  private handleRegionInfo(payload: Uint8Array): { payload: Uint8Array; fds?: number[] } {
    const request = decodeRegionInfoRequest(payload, { numRegions: NUM_REGIONS });
    const region = this.device.regionInfo(request.index);
    const caps: RegionCap[] = [];
    let flags = 0;
    if (region.readable) flags |= RegionInfoFlag.Read;
    if (region.writable) flags |= RegionInfoFlag.Write;
    if (region.mmap !== undefined) {
      flags |= RegionInfoFlag.Mmap;
      caps.push({ kind: 'sparse-mmap', areas: region.mmap.areas.map((a) => ({ offset: BigInt(a.offset), size: BigInt(a.size) })) });
    }
    const reply = encodeRegionInfoReply(
      { index: request.index, flags, size: BigInt(region.size), offset: BigInt(region.mmap?.fdOffset ?? 0), caps },
      request.argsz,
    );
    // The fd goes only with the reply that carries the caps: QEMU closes fds of the first round.
    const complete = reply.length > 32 || caps.length === 0;
    const fds = complete && region.mmap !== undefined ? [region.mmap.fd] : [];
    return { payload: reply, fds };
  }

  private irqInfo(index: number): { argsz: number; flags: number; index: number; count: number } {
    switch (index) {
      case IrqIndex.INTX:
        return { argsz: 16, flags: IrqInfoFlag.Eventfd | IrqInfoFlag.Maskable | IrqInfoFlag.Automasked, index, count: 1 };
      case IrqIndex.MSIX:
        // No NORESIZE: QEMU then adds vectors one at a time instead of re-sending them all.
        return { argsz: 16, flags: IrqInfoFlag.Eventfd, index, count: this.device.irqs.count(index) };
      case IrqIndex.ERR:
        // Signalling ERR stops the VM; answering with an error makes QEMU skip it silently.
        // QEMU asks at every realize, so this refusal is routine, not a guest error.
        throw Object.assign(new ProtocolError('EINVAL', 'No error interrupt'), { routine: true });
      default:
        return { argsz: 16, flags: IrqInfoFlag.Eventfd, index, count: 0 };
    }
  }

  // ---- server → client DMA (only for guest memory that came without an fd) ----

  private request(command: Command, payload: Uint8Array): Promise<Frame> {
    if (this.state !== 'ready' || this.conn.isClosed) return Promise.reject(new DmaError('No client connected', 'ENODEV'));
    const msgId = this.nextMsgId;
    this.nextMsgId = (this.nextMsgId + 1) & 0xffff;
    return new Promise<Frame>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(msgId);
        reject(new DmaError(`${commandName(command)} timed out`, 'EFAULT'));
      }, this.limits.dmaReplyTimeoutMs);
      this.pending.set(msgId, { resolve, reject, timer });
      this.conn.send(encodeMessage({ msgId, command, flags: MessageType.Command }, payload));
    });
  }

  private async dmaRead(address: bigint, count: number): Promise<Uint8Array> {
    const chunks: Uint8Array[] = [];
    for (let done = 0; done < count; ) {
      const n = Math.min(count - done, this.limits.maxDataXferSize);
      const frame = await this.request(Command.DmaRead, encodeDmaReadRequest({ address: address + BigInt(done), count: n }));
      const reply = decodeDmaReadReply(frame.payload, { maxDataXferSize: this.limits.maxDataXferSize });
      if (reply.data.length !== n) throw new DmaError(`Short DMA_READ reply: ${reply.data.length} of ${n} bytes`, 'EFAULT');
      chunks.push(reply.data);
      done += n;
    }
    const out = new Uint8Array(count);
    let at = 0;
    for (const c of chunks) {
      out.set(c, at);
      at += c.length;
    }
    return out;
  }

  private async dmaWrite(address: bigint, data: Uint8Array): Promise<void> {
    for (let done = 0; done < data.length; ) {
      const n = Math.min(data.length - done, this.limits.maxDataXferSize);
      const frame = await this.request(Command.DmaWrite, encodeDmaWriteRequest({ address: address + BigInt(done), data: data.subarray(done, done + n) }));
      decodeDmaWriteReply(frame.payload, { maxDataXferSize: this.limits.maxDataXferSize });
      done += n;
    }
  }

  private handleReply(frame: Frame): void {
    this.closeFds(frame.fds);
    const pending = this.pending.get(frame.header.msgId);
    if (pending === undefined) {
      this.fatal(new FatalProtocolError('EPROTO', `Unexpected reply: id ${frame.header.msgId} ${commandName(frame.header.command)}`));
      return;
    }
    this.pending.delete(frame.header.msgId);
    clearTimeout(pending.timer);
    if ((frame.header.flags & HeaderFlag.Error) !== 0) {
      const errno = frame.header.error;
      const name = errnoName(errno);
      pending.reject(
        new DmaError(
          `Client refused ${commandName(frame.header.command)}: ${name}`,
          (['ENODEV', 'EFAULT', 'EPERM', 'EINVAL'].includes(name) ? name : 'EFAULT') as 'EFAULT',
        ),
      );
      return;
    }
    pending.resolve(frame);
  }

  private closeFds(fds: number[]): void {
    for (const fd of fds) {
      try {
        this.closeFd(fd);
      } catch {
        // Already closed.
      }
    }
  }

  private fatal(err: FatalProtocolError): void {
    clientWarning(`${this.device.name}-connection`, `${this.device.name}: closing connection: ${err.message}`);
    this.conn.close(err);
  }

  /** The connection is gone: fail our outstanding requests, release the client's resources. */
  closed(): void {
    if (this.state === 'closed') return;
    this.state = 'closed';
    for (const [, p] of this.pending) {
      clearTimeout(p.timer);
      p.reject(new DmaError('Client disconnected', 'ENODEV'));
    }
    this.pending.clear();
    this.device.detachClient();
  }
}

/** The errno of an error the client caused, or undefined for anything else (a bug). */
function errnoOf(err: unknown): number | undefined {
  if (err instanceof ProtocolError) return err.errno;
  if (err instanceof RegionError || err instanceof IrqError || err instanceof DmaError) {
    return ERRNO[err.errno as keyof typeof ERRNO];
  }
  return undefined;
}
