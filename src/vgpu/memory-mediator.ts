/**
 * Mediated memory: contexts (one per open file of the guest driver) own buffers carved from the
 * aperture. Every allocation is zeroed before the guest can see it; every request from the guest
 * is checked before it changes anything. Failures are mailbox result codes, never exceptions
 * that escape to the transport.
 */
import { guestError, tracer } from '../log.js';
import type { ApertureAllocator } from './allocator.js';
import { BO_FLAGS_KNOWN, MAX_ALIGN_LOG2, MIN_ALIGN_LOG2, type MailboxResult } from './mailbox-ops.js';

const traceMem = tracer('mem');

/** A request the device refuses, with the result code the guest gets. */
export class MailboxFailure extends Error {
  constructor(
    readonly result: Exclude<MailboxResult, 'OK'>,
    message: string,
  ) {
    super(message);
  }
}

export interface DeviceBuffer {
  readonly handle: number;
  readonly ctx: number;
  readonly offset: number;
  readonly size: number;
}

/**
 * Charges that can be given back on demand (the VM's idle cached kernels): they count against
 * the quota, but are evicted before the VM is refused anything.
 */
export interface QuotaReclaimer {
  readonly reclaimableBytes: number;
  /** Give back at least `bytes` if possible (oldest first); returns the bytes given back. */
  reclaim(bytes: number): number;
}

export interface MemoryMediatorOptions {
  name: string;
  allocator: ApertureAllocator;
  /** Bytes this VM may have allocated at once. */
  quota: number;
  maxContexts: number;
  maxBuffers: number;
  /** Zero an aperture range (and release its pages) before a guest sees it. */
  zero(offset: number, size: number): void;
}

export class MemoryMediator {
  private readonly contexts = new Map<number, Set<number>>();
  private readonly buffers = new Map<number, DeviceBuffer>();
  /**
   * Buffers in use by the device (a queue's ring, a submission in flight): freeing one only
   * detaches it from its context; its range goes back to the allocator when the last pin drops,
   * so the device never writes into memory that was handed to someone else.
   */
  private readonly pins = new Map<number, number>();
  private readonly detached = new Set<number>();
  private nextContext = 1;
  private nextHandle = 1;
  /** Bytes charged to the quota for things that are not buffers (kernels and their pipelines). */
  private charged = 0;
  /**
   * Called with each buffer just before it is freed and zeroed (BO_FREE, context destruction):
   * lets tests and tools see what the guest left in it without racing the guest.
   */
  onRelease: ((buffer: DeviceBuffer) => void) | null = null;
  /** Where charges that can be given back come from (the kernel cache), if anywhere. */
  reclaimer: QuotaReclaimer | null = null;

  constructor(private readonly options: MemoryMediatorOptions) {}

  /** Bytes counted against the quota: buffers (including freed ones the device still uses) and charges. */
  get used(): number {
    return this.options.allocator.used + this.charged;
  }

  /** Bytes charged for things that are not buffers (kernels), part of {@link used}. */
  get chargedBytes(): number {
    return this.charged;
  }

  /** Bytes of {@link used} that are given back on demand (idle cached kernels). */
  get reclaimable(): number {
    return this.reclaimer?.reclaimableBytes ?? 0;
  }

  /**
   * Bytes the VM holds: {@link used} without what is given back on demand. What the guest is
   * told (`QUERY USED`): the quota minus this is what it can still allocate.
   */
  get inUse(): number {
    return this.used - this.reclaimable;
  }

  /**
   * Whether `bytes` more fit in the quota, after evicting reclaimable charges (oldest first) if
   * that is what it takes; nothing is evicted when even evicting all of them would not do.
   */
  private makeRoom(bytes: number): boolean {
    const quota = this.options.quota;
    if (this.used + bytes <= quota) return true;
    if (this.inUse + bytes > quota) return false;
    this.reclaimer!.reclaim(this.used + bytes - quota);
    return this.used + bytes <= quota;
  }

  /** Count `bytes` against the quota; false (and nothing counted) when that would exceed it. */
  charge(bytes: number): boolean {
    if (!this.makeRoom(bytes)) return false;
    this.charged += bytes;
    return true;
  }

  uncharge(bytes: number): void {
    this.charged = Math.max(0, this.charged - bytes);
  }
  get quota(): number {
    return this.options.quota;
  }
  get contextCount(): number {
    return this.contexts.size;
  }
  /** Buffers alive, including freed ones the device still uses. */
  get bufferCount(): number {
    return this.buffers.size;
  }
  get allocator(): ApertureAllocator {
    return this.options.allocator;
  }

  /** Live buffers, for tests, metrics and the host-side view of what the guest allocated. */
  liveBuffers(): DeviceBuffer[] {
    return [...this.buffers.values()];
  }

  private fail(result: Exclude<MailboxResult, 'OK'>, message: string): never {
    guestError(`${this.options.name}-mem-${result}`, `${this.options.name}: ${message}`);
    throw new MailboxFailure(result, message);
  }

  hasContext(ctx: number): boolean {
    return this.contexts.has(ctx);
  }

  createContext(): number {
    if (this.contexts.size >= this.options.maxContexts) this.fail('TOO_MANY', `context limit ${this.options.maxContexts} reached`);
    // Ids are never reused within a device lifetime (u32, wrapping past 0), so a stale id from a
    // closed file cannot name a newer context by accident.
    let id = this.nextContext;
    while (id === 0 || this.contexts.has(id)) id = (id + 1) >>> 0;
    this.nextContext = (id + 1) >>> 0;
    this.contexts.set(id, new Set());
    traceMem(() => `${this.options.name}: context ${id} created`);
    return id;
  }

  private context(ctx: number): Set<number> {
    const owned = this.contexts.get(ctx);
    if (owned === undefined) this.fail('BAD_CONTEXT', `no context ${ctx}`);
    return owned;
  }

  destroyContext(ctx: number): number {
    const owned = this.context(ctx);
    let freed = 0;
    for (const handle of owned) {
      this.retire(this.buffers.get(handle)!);
      freed++;
    }
    this.contexts.delete(ctx);
    traceMem(() => `${this.options.name}: context ${ctx} destroyed, ${freed} buffers freed`);
    return freed;
  }

  alloc(ctx: number, size: bigint, alignLog2: number, flags: number): DeviceBuffer {
    const owned = this.context(ctx);
    const allocator = this.options.allocator;
    if ((flags & ~BO_FLAGS_KNOWN) !== 0) this.fail('BAD_FLAGS', `unknown buffer flags 0x${flags.toString(16)}`);
    if (alignLog2 !== 0 && (alignLog2 < MIN_ALIGN_LOG2 || alignLog2 > MAX_ALIGN_LOG2)) this.fail('BAD_FLAGS', `alignment 2^${alignLog2} out of range`);
    if (size <= 0n || size > BigInt(allocator.capacity)) this.fail('BAD_SIZE', `buffer size ${size} (allocatable: ${allocator.capacity})`);
    const rounded = allocator.roundSize(Number(size))!;
    if (this.buffers.size >= this.options.maxBuffers) this.fail('TOO_MANY', `buffer limit ${this.options.maxBuffers} reached`);
    if (!this.makeRoom(rounded)) {
      this.fail('OVER_QUOTA', `allocation of ${rounded} bytes would exceed the quota (${this.inUse} of ${this.options.quota} used)`);
    }
    const range = allocator.alloc(rounded, alignLog2 === 0 ? allocator.granule : 2 ** alignLog2);
    if (range === undefined) this.fail('NO_MEMORY', `no free range of ${rounded} bytes (largest free: ${allocator.largestFree})`);
    // Nothing of a previous owner may be visible: zero before the offset is handed out.
    this.options.zero(range.offset, range.size);
    let handle = this.nextHandle;
    while (handle === 0 || this.buffers.has(handle)) handle = (handle + 1) >>> 0;
    this.nextHandle = (handle + 1) >>> 0;
    const buffer: DeviceBuffer = { handle, ctx, offset: range.offset, size: range.size };
    this.buffers.set(handle, buffer);
    owned.add(handle);
    traceMem(() => `${this.options.name}: ctx ${ctx} buffer ${handle} at 0x${range.offset.toString(16)}+0x${range.size.toString(16)}`);
    return buffer;
  }

  /** A buffer of this context, or BAD_HANDLE (also for other contexts' buffers: no probing). */
  buffer(ctx: number, handle: number): DeviceBuffer {
    const owned = this.context(ctx);
    const buffer = this.buffers.get(handle);
    if (buffer === undefined || !owned.has(handle)) {
      this.fail(
        'BAD_HANDLE',
        buffer === undefined ? `no buffer ${handle} (never allocated or already freed)` : `buffer ${handle} belongs to context ${buffer.ctx}, not ${ctx}`,
      );
    }
    return buffer;
  }

  free(ctx: number, handle: number): void {
    const buffer = this.buffer(ctx, handle);
    this.contexts.get(ctx)!.delete(handle);
    this.retire(buffer);
  }

  /** Keep a buffer's range allocated while the device uses it, even if the guest frees it. */
  pin(handle: number): void {
    if (!this.buffers.has(handle)) throw new Error(`pin of unknown buffer ${handle}`);
    this.pins.set(handle, (this.pins.get(handle) ?? 0) + 1);
  }

  unpin(handle: number): void {
    const count = this.pins.get(handle);
    if (count === undefined) throw new Error(`unpin of unpinned buffer ${handle}`);
    if (count > 1) {
      this.pins.set(handle, count - 1);
      return;
    }
    this.pins.delete(handle);
    if (this.detached.delete(handle)) this.releaseBuffer(this.buffers.get(handle)!);
  }

  isPinned(handle: number): boolean {
    return this.pins.has(handle);
  }

  /** Freed by its owner: release now, or when the device stops using it. */
  private retire(buffer: DeviceBuffer): void {
    if (this.pins.has(buffer.handle)) this.detached.add(buffer.handle);
    else this.releaseBuffer(buffer);
  }

  private releaseBuffer(buffer: DeviceBuffer): void {
    this.onRelease?.(buffer);
    this.buffers.delete(buffer.handle);
    this.options.allocator.release(buffer);
    // Release the pages now rather than at the next allocation: a freed buffer costs no memory.
    this.options.zero(buffer.offset, buffer.size);
  }

  /**
   * Device reset: every context and buffer is gone; the caller zeroes the whole aperture. A
   * buffer the device still uses (pinned by work already on it, which a reset cannot take
   * back) keeps its range out of the allocator until that work has let go of it: it is
   * released — and zeroed again — when its last pin drops, so nothing written by work from
   * before the reset lands in memory handed out after it.
   */
  reset(): void {
    this.contexts.clear();
    for (const buffer of [...this.buffers.values()]) {
      if (this.pins.has(buffer.handle)) {
        this.detached.add(buffer.handle);
      } else {
        this.buffers.delete(buffer.handle);
        this.options.allocator.release(buffer);
      }
    }
    if (this.buffers.size === 0) this.options.allocator.reset();
  }

  /** Buffers whose owner freed them (or that a reset took away) but the device still uses. */
  get quarantined(): number {
    return this.detached.size;
  }
}
