/**
 * Guest memory as the device sees it: the DMA mappings the client announced (DMA_MAP), each
 * either backed by a file descriptor we mmap (zero-copy; QEMU's `memory-backend-memfd,share=on`)
 * or message-only (no fd: ROMs, the device's own BAR window, or guest RAM that is not shareable),
 * which is reached through server-initiated DMA_READ/DMA_WRITE messages.
 *
 * Addresses are IOVAs (guest-physical without a vIOMMU), kept as bigint because the client may
 * send any u64; they are range-checked before any arithmetic that could overflow.
 */
import { tracer } from '../log.js';

const traceDma = tracer('dma');

/** The memory syscalls DMA needs, injected so the model runs without the native addon. */
export interface MemoryOps {
  /** MAP_SHARED mapping of `length` bytes at `offset` in `fd`. */
  mmap(fd: number, offset: number, length: number, writable: boolean): ArrayBuffer;
  munmap(buffer: ArrayBuffer): void;
  close(fd: number): void;
}

/** DMA through messages to the client, used for mappings without an fd. */
export interface MessageDma {
  read(address: bigint, count: number): Promise<Uint8Array>;
  write(address: bigint, data: Uint8Array): Promise<void>;
}

export class DmaError extends Error {
  constructor(
    message: string,
    /** The errno name a transport should reply with. */
    readonly errno: 'EINVAL' | 'EEXIST' | 'ENOENT' | 'EFAULT' | 'EPERM' | 'ENOMEM' | 'ENODEV',
  ) {
    super(message);
  }
}

export interface DmaMapRequest {
  iova: bigint;
  size: bigint;
  /** Offset of `iova` inside `fd`. */
  fdOffset: bigint;
  readable: boolean;
  writable: boolean;
  /** Owned by the DmaSpace from the call on: mapped then closed, or closed on error. */
  fd: number | null;
}

export interface DmaMapping {
  readonly iova: bigint;
  readonly size: bigint;
  readonly readable: boolean;
  readonly writable: boolean;
  /** The mmapped guest memory, or null for a message-only mapping. */
  readonly memory: Uint8Array | null;
  readonly buffer: ArrayBuffer | null;
}

const U64_LIMIT = 1n << 64n;
/** Largest mapping we mmap into one ArrayBuffer (4 GiB keeps typed-array views addressable). */
export const MAX_MMAP_MAPPING = 1n << 32n;
const PAGE = 4096n;

export class DmaSpace {
  /** Sorted by iova; non-overlapping. */
  private mappings: DmaMapping[] = [];
  private messageDma: MessageDma | null = null;

  constructor(
    private readonly ops: MemoryOps,
    /** Whether the guest has Bus Master Enable set; DMA is refused otherwise, like real PCI. */
    private readonly busMasterEnabled: () => boolean,
  ) {}

  /** Attach the message path of the connected client (null when disconnected). */
  setMessageDma(messageDma: MessageDma | null): void {
    this.messageDma = messageDma;
  }

  get count(): number {
    return this.mappings.length;
  }

  list(): readonly DmaMapping[] {
    return this.mappings;
  }

  map(req: DmaMapRequest): void {
    try {
      this.insert(req);
    } finally {
      // The fd is only needed for mmap(2); keeping it would leak one fd per DMA_MAP, since QEMU
      // sends a fresh descriptor every time.
      if (req.fd !== null) this.ops.close(req.fd);
    }
  }

  private insert(req: DmaMapRequest): void {
    const { iova, size } = req;
    if (size === 0n || iova < 0n || size < 0n || iova + size > U64_LIMIT || req.fdOffset < 0n) {
      throw new DmaError(`Invalid DMA region: iova 0x${iova.toString(16)} size 0x${size.toString(16)}`, 'EINVAL');
    }
    if (!req.readable && !req.writable) throw new DmaError('DMA region with neither READ nor WRITE', 'EINVAL');
    const at = this.insertionPoint(iova);
    const before = this.mappings[at - 1];
    const after = this.mappings[at];
    if ((before !== undefined && before.iova + before.size > iova) || (after !== undefined && iova + size > after.iova)) {
      throw new DmaError(`DMA region overlaps an existing one: iova 0x${iova.toString(16)} size 0x${size.toString(16)}`, 'EEXIST');
    }
    let buffer: ArrayBuffer | null = null;
    if (req.fd !== null) {
      if (size > MAX_MMAP_MAPPING || iova % PAGE !== 0n || size % PAGE !== 0n || req.fdOffset % PAGE !== 0n) {
        throw new DmaError(`DMA region not mappable: iova 0x${iova.toString(16)} size 0x${size.toString(16)} offset 0x${req.fdOffset.toString(16)}`, 'EINVAL');
      }
      try {
        buffer = this.ops.mmap(req.fd, Number(req.fdOffset), Number(size), req.writable);
      } catch (err) {
        throw new DmaError(`mmap of DMA region failed: ${(err as Error).message}`, 'EFAULT');
      }
    }
    const mapping: DmaMapping = {
      iova,
      size,
      readable: req.readable,
      writable: req.writable,
      buffer,
      memory: buffer === null ? null : new Uint8Array(buffer),
    };
    this.mappings.splice(at, 0, mapping);
    traceDma(() => `map iova=0x${iova.toString(16)} size=0x${size.toString(16)} ${buffer ? 'mmapped' : 'message-only'}`);
  }

  /** Remove the mapping that exactly matches (iova, size), as the spec requires. */
  unmap(iova: bigint, size: bigint): void {
    const index = this.mappings.findIndex((m) => m.iova === iova && m.size === size);
    if (index < 0) throw new DmaError(`No DMA region at iova 0x${iova.toString(16)} size 0x${size.toString(16)}`, 'ENOENT');
    const [mapping] = this.mappings.splice(index, 1);
    this.release(mapping!);
    traceDma(() => `unmap iova=0x${iova.toString(16)} size=0x${size.toString(16)}`);
  }

  /** Drop every mapping (VFIO_DMA_UNMAP_FLAG_ALL, client disconnect). */
  unmapAll(): void {
    const all = this.mappings;
    this.mappings = [];
    for (const mapping of all) this.release(mapping);
  }

  private release(mapping: DmaMapping): void {
    if (mapping.buffer !== null) this.ops.munmap(mapping.buffer);
  }

  private insertionPoint(iova: bigint): number {
    let lo = 0;
    let hi = this.mappings.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (this.mappings[mid]!.iova < iova) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }

  /** The mapping that contains all of [address, address + length), or undefined. */
  find(address: bigint, length: number): DmaMapping | undefined {
    const at = this.insertionPoint(address + 1n) - 1;
    const mapping = this.mappings[at];
    if (mapping === undefined || address < mapping.iova) return undefined;
    if (address + BigInt(length) > mapping.iova + mapping.size) return undefined;
    return mapping;
  }

  /**
   * A view of guest memory for zero-copy access, or null when the range is message-only.
   * Throws when the range is not mapped, not permitted, or Bus Master Enable is off.
   */
  view(address: bigint, length: number, access: 'read' | 'write'): Uint8Array | null {
    if (!this.busMasterEnabled()) throw new DmaError('DMA with Bus Master Enable off', 'ENODEV');
    const mapping = this.find(address, length);
    if (mapping === undefined) {
      throw new DmaError(`DMA outside guest memory: 0x${address.toString(16)}+${length}`, 'EFAULT');
    }
    if ((access === 'read' && !mapping.readable) || (access === 'write' && !mapping.writable)) {
      throw new DmaError(`DMA ${access} not permitted at 0x${address.toString(16)}`, 'EPERM');
    }
    if (mapping.memory === null) return null;
    const start = Number(address - mapping.iova);
    return mapping.memory.subarray(start, start + length);
  }

  /** Read guest memory: directly when mapped with an fd, else by DMA_READ messages. */
  async read(address: bigint, length: number): Promise<Uint8Array> {
    const view = this.view(address, length, 'read');
    if (view !== null) return view.slice();
    if (this.messageDma === null) throw new DmaError('No client connected for message DMA', 'ENODEV');
    return this.messageDma.read(address, length);
  }

  /** Write guest memory: directly when mapped with an fd, else by DMA_WRITE messages. */
  async write(address: bigint, data: Uint8Array): Promise<void> {
    const view = this.view(address, data.length, 'write');
    if (view !== null) {
      view.set(data);
      return;
    }
    if (this.messageDma === null) throw new DmaError('No client connected for message DMA', 'ENODEV');
    await this.messageDma.write(address, data);
  }
}
