/**
 * Guest memory as the device sees it: the DMA mappings the client announced (DMA_MAP), each
 * either backed by a file descriptor (zero-copy; QEMU's `memory-backend-memfd,share=on`) or
 * message-only (no fd: ROMs, the device's own BAR window, or guest RAM that is not shareable),
 * which is reached through server-initiated DMA_READ/DMA_WRITE messages.
 *
 * The client is not trusted with the daemon's resources (issue 9, F4b):
 * - At most `limits.maxMappings` mappings (advertised as `max_dma_maps`), `limits.maxBytes` bytes
 *   of guest memory described by all of them together, and `limits.maxFiles` distinct backing
 *   files; beyond, DMA_MAP fails with ENOSPC (ENOMEM for bytes) and nothing is kept.
 * - DMA_MAP itself maps nothing: the fd is kept (one per backing file, however many DMA_MAPs name
 *   it) and the range is `mmap`ped the first time the device touches it. Most mappings are never
 *   touched (mdgpu's device model keeps its data in the aperture, not in guest RAM), so a flood
 *   of maps costs neither `vm.max_map_count` entries nor address space.
 * - An fd-backed range must lie inside its file when it is mapped: touching pages past the end
 *   of a file is SIGBUS, which would kill the daemon.
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
  /** The file's size in bytes (fstat); without it, ranges are not checked against the file. */
  fileSize?(fd: number): number;
  /**
   * A name for the open file behind `fd` (device and inode), equal for two fds of one file; lets
   * the DMA space keep one fd per file instead of one per DMA_MAP. Without it, every fd is kept.
   */
  fileId?(fd: number): string;
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
    readonly errno: 'EINVAL' | 'EEXIST' | 'ENOENT' | 'EFAULT' | 'EPERM' | 'ENOMEM' | 'ENODEV' | 'ENOSPC',
  ) {
    super(message);
  }
}

/** Bounds on what one client may map. */
export interface DmaLimits {
  /** Most mappings at once; the server advertises it as `max_dma_maps`. */
  maxMappings: number;
  /** Most bytes of guest memory all mappings may describe together. */
  maxBytes: bigint;
  /**
   * Most distinct files (fds kept for lazy mapping) at once. QEMU sends one per memory backend
   * (guest RAM, maybe a few ROM or hotplugged blocks), however many DMA_MAPs name it.
   */
  maxFiles: number;
}

/**
 * 1024 mappings: a q35 guest under QEMU 11.1.3 keeps a few dozen at once (RAM split around the
 * legacy VGA hole and the PAM-controlled BIOS areas, the ROMs, device BAR windows; see
 * docs/vfio-user.md), so this leaves a wide margin while keeping a flood's bookkeeping small.
 * 1 TiB: more guest RAM than a VM on one daemon plausibly has, and 64 such clients still fit in a
 * process's 128 TiB of address space if every byte were touched.
 */
export const DEFAULT_DMA_LIMITS: Readonly<DmaLimits> = Object.freeze({ maxMappings: 1024, maxBytes: 1n << 40n, maxFiles: 64 });

export interface DmaMapRequest {
  iova: bigint;
  size: bigint;
  /** Offset of `iova` inside `fd`. */
  fdOffset: bigint;
  readable: boolean;
  writable: boolean;
  /** Owned by the DmaSpace from the call on: kept for a later mmap, or closed. */
  fd: number | null;
}

/** One open file that backs guest memory, shared by every mapping of it. */
interface Backing {
  fd: number;
  id: string | null;
  refs: number;
}

export interface DmaMapping {
  readonly iova: bigint;
  readonly size: bigint;
  readonly readable: boolean;
  readonly writable: boolean;
  /** Backed by a file the device can map (zero copy), else message-only. */
  readonly fileBacked: boolean;
  /** Whether the range is mmapped now (it is on first use). */
  readonly mapped: boolean;
}

interface Mapping extends DmaMapping {
  readonly fdOffset: bigint;
  readonly backing: Backing | null;
  buffer: ArrayBuffer | null;
  memory: Uint8Array | null;
}

const U64_LIMIT = 1n << 64n;
/** Largest mapping we mmap into one ArrayBuffer (4 GiB keeps typed-array views addressable). */
export const MAX_MMAP_MAPPING = 1n << 32n;
const PAGE = 4096n;

export class DmaSpace {
  /** Sorted by iova; non-overlapping. */
  private mappings: Mapping[] = [];
  /** Open backing files by id (only when the ops can name files). */
  private readonly backings = new Map<string, Backing>();
  private mappedBytes = 0n;
  /** Distinct backing files held (each one open fd). */
  private files = 0;
  private messageDma: MessageDma | null = null;
  private limitsNow: DmaLimits = DEFAULT_DMA_LIMITS;

  constructor(
    private readonly ops: MemoryOps,
    /** Whether the guest has Bus Master Enable set; DMA is refused otherwise, like real PCI. */
    private readonly busMasterEnabled: () => boolean,
  ) {}

  /** Attach the message path of the connected client (null when disconnected). */
  setMessageDma(messageDma: MessageDma | null): void {
    this.messageDma = messageDma;
  }

  get limits(): Readonly<DmaLimits> {
    return this.limitsNow;
  }

  /** Set the bounds for the next DMA_MAPs (existing mappings stay). */
  setLimits(limits: DmaLimits): void {
    if (
      !Number.isSafeInteger(limits.maxMappings) ||
      limits.maxMappings < 1 ||
      limits.maxBytes < 1n ||
      !Number.isSafeInteger(limits.maxFiles) ||
      limits.maxFiles < 1
    ) {
      throw new RangeError(`Invalid DMA limits: ${limits.maxMappings} mappings, ${limits.maxBytes} bytes, ${limits.maxFiles} files`);
    }
    this.limitsNow = { ...limits };
  }

  get count(): number {
    return this.mappings.length;
  }

  /** Bytes of guest memory all mappings describe together. */
  get totalBytes(): bigint {
    return this.mappedBytes;
  }

  /** Mappings that are mmapped now (touched by the device). */
  get mmappedCount(): number {
    return this.mappings.filter((m) => m.buffer !== null).length;
  }

  /** File descriptors held for fd-backed mappings (one per backing file). */
  get heldFds(): number {
    return this.files;
  }

  list(): readonly DmaMapping[] {
    return this.mappings;
  }

  map(req: DmaMapRequest): void {
    let kept = false;
    try {
      kept = this.insert(req);
    } finally {
      if (req.fd !== null && !kept) this.ops.close(req.fd);
    }
  }

  /** Record the mapping; true if it keeps `req.fd` (then the fd is the mapping's, not the caller's). */
  private insert(req: DmaMapRequest): boolean {
    const { iova, size } = req;
    if (size === 0n || iova < 0n || size < 0n || iova + size > U64_LIMIT || req.fdOffset < 0n || req.fdOffset >= U64_LIMIT) {
      throw new DmaError(`Invalid DMA region: iova 0x${iova.toString(16)} size 0x${size.toString(16)}`, 'EINVAL');
    }
    if (!req.readable && !req.writable) throw new DmaError('DMA region with neither READ nor WRITE', 'EINVAL');
    const at = this.insertionPoint(iova);
    const before = this.mappings[at - 1];
    const after = this.mappings[at];
    if ((before !== undefined && before.iova + before.size > iova) || (after !== undefined && iova + size > after.iova)) {
      throw new DmaError(`DMA region overlaps an existing one: iova 0x${iova.toString(16)} size 0x${size.toString(16)}`, 'EEXIST');
    }
    if (this.mappings.length >= this.limitsNow.maxMappings) {
      throw new DmaError(`Too many DMA regions: the limit is ${this.limitsNow.maxMappings}`, 'ENOSPC');
    }
    if (this.mappedBytes + size > this.limitsNow.maxBytes) {
      throw new DmaError(`DMA regions would describe more than ${this.limitsNow.maxBytes} bytes of guest memory`, 'ENOMEM');
    }
    let backing: Backing | null = null;
    let keptFd = false;
    if (req.fd !== null) {
      // Page alignment is mmap's rule; the 4 GiB bound is checked on first use, so a VM with more
      // RAM above 4 GiB than that still connects (the device never touches that RAM today).
      if (iova % PAGE !== 0n || size % PAGE !== 0n || req.fdOffset % PAGE !== 0n) {
        throw new DmaError(`DMA region not mappable: iova 0x${iova.toString(16)} size 0x${size.toString(16)} offset 0x${req.fdOffset.toString(16)}`, 'EINVAL');
      }
      this.checkInsideFile(req.fd, req.fdOffset, size);
      const id = this.ops.fileId?.(req.fd) ?? null;
      backing = id === null ? null : (this.backings.get(id) ?? null);
      if (backing === null) {
        if (this.files >= this.limitsNow.maxFiles) {
          throw new DmaError(`Too many files backing DMA regions: the limit is ${this.limitsNow.maxFiles}`, 'ENOSPC');
        }
        backing = { fd: req.fd, id, refs: 0 };
        this.files++;
        if (id !== null) this.backings.set(id, backing);
        keptFd = true;
      }
      backing.refs++;
    }
    const mapping: Mapping = {
      iova,
      size,
      fdOffset: req.fdOffset,
      readable: req.readable,
      writable: req.writable,
      backing,
      fileBacked: backing !== null,
      buffer: null,
      memory: null,
      get mapped() {
        return this.buffer !== null;
      },
    };
    this.mappings.splice(at, 0, mapping);
    this.mappedBytes += size;
    traceDma(() => `map iova=0x${iova.toString(16)} size=0x${size.toString(16)} ${backing ? 'fd-backed (mapped on first use)' : 'message-only'}`);
    return keptFd;
  }

  /** Refuse a range that ends past its file: touching those pages would be SIGBUS. */
  private checkInsideFile(fd: number, offset: bigint, size: bigint): void {
    if (this.ops.fileSize === undefined) return;
    let fileSize: number;
    try {
      fileSize = this.ops.fileSize(fd);
    } catch (err) {
      throw new DmaError(`DMA region fd unusable: ${(err as Error).message}`, 'EINVAL');
    }
    if (offset + size > BigInt(fileSize)) {
      throw new DmaError(`DMA region 0x${offset.toString(16)}+0x${size.toString(16)} is past the end of its file (0x${fileSize.toString(16)} bytes)`, 'EINVAL');
    }
  }

  /** Remove the mapping that exactly matches (iova, size), as the spec requires. */
  unmap(iova: bigint, size: bigint): void {
    const at = this.insertionPoint(iova);
    const mapping = this.mappings[at];
    if (mapping === undefined || mapping.iova !== iova || mapping.size !== size) {
      throw new DmaError(`No DMA region at iova 0x${iova.toString(16)} size 0x${size.toString(16)}`, 'ENOENT');
    }
    this.mappings.splice(at, 1);
    this.release(mapping);
    traceDma(() => `unmap iova=0x${iova.toString(16)} size=0x${size.toString(16)}`);
  }

  /** Drop every mapping (VFIO_DMA_UNMAP_FLAG_ALL, client disconnect). */
  unmapAll(): void {
    const all = this.mappings;
    this.mappings = [];
    for (const mapping of all) this.release(mapping);
  }

  private release(mapping: Mapping): void {
    this.mappedBytes -= mapping.size;
    if (mapping.buffer !== null) {
      this.ops.munmap(mapping.buffer);
      mapping.buffer = null;
      mapping.memory = null;
    }
    const backing = mapping.backing;
    if (backing !== null && --backing.refs === 0) {
      if (backing.id !== null) this.backings.delete(backing.id);
      this.files--;
      this.ops.close(backing.fd);
    }
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
    return this.findMapping(address, length);
  }

  private findMapping(address: bigint, length: number): Mapping | undefined {
    const at = this.insertionPoint(address + 1n) - 1;
    const mapping = this.mappings[at];
    if (mapping === undefined || address < mapping.iova) return undefined;
    if (address + BigInt(length) > mapping.iova + mapping.size) return undefined;
    return mapping;
  }

  /**
   * A view of guest memory for zero-copy access, or null when the range is message-only. The
   * first access to an fd-backed mapping mmaps it.
   * Throws when the range is not mapped, not permitted, or Bus Master Enable is off.
   */
  view(address: bigint, length: number, access: 'read' | 'write'): Uint8Array | null {
    if (!this.busMasterEnabled()) throw new DmaError('DMA with Bus Master Enable off', 'ENODEV');
    const mapping = this.findMapping(address, length);
    if (mapping === undefined) {
      throw new DmaError(`DMA outside guest memory: 0x${address.toString(16)}+${length}`, 'EFAULT');
    }
    if ((access === 'read' && !mapping.readable) || (access === 'write' && !mapping.writable)) {
      throw new DmaError(`DMA ${access} not permitted at 0x${address.toString(16)}`, 'EPERM');
    }
    const memory = this.materialize(mapping);
    if (memory === null) return null;
    const start = Number(address - mapping.iova);
    return memory.subarray(start, start + length);
  }

  /** mmap an fd-backed mapping on its first use; null for a message-only one. */
  private materialize(mapping: Mapping): Uint8Array | null {
    if (mapping.memory !== null || mapping.backing === null) return mapping.memory;
    if (mapping.size > MAX_MMAP_MAPPING) {
      throw new DmaError(`DMA region too large to map: 0x${mapping.size.toString(16)} bytes at iova 0x${mapping.iova.toString(16)}`, 'EFAULT');
    }
    // The client may have shrunk the file since DMA_MAP: check again right before mapping.
    this.checkInsideFile(mapping.backing.fd, mapping.fdOffset, mapping.size);
    let buffer: ArrayBuffer;
    try {
      buffer = this.ops.mmap(mapping.backing.fd, Number(mapping.fdOffset), Number(mapping.size), mapping.writable);
    } catch (err) {
      throw new DmaError(`mmap of DMA region failed: ${(err as Error).message}`, 'EFAULT');
    }
    mapping.buffer = buffer;
    mapping.memory = new Uint8Array(buffer);
    traceDma(() => `mmapped iova=0x${mapping.iova.toString(16)} size=0x${mapping.size.toString(16)} on first use`);
    return mapping.memory;
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
