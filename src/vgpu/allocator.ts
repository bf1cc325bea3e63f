/**
 * The aperture allocator: hands out page-granular ranges of one device's aperture. First fit
 * over a sorted free list, any power-of-two alignment, neighbours coalesced on free. Offsets and
 * sizes are JS numbers (an aperture is far below 2^53 bytes).
 */

export interface Range {
  offset: number;
  size: number;
}

export class ApertureAllocator {
  /** Sorted by offset, non-overlapping, never adjacent (adjacent ranges are merged). */
  private free: Range[];
  private allocatedBytes = 0;

  constructor(
    readonly base: number,
    readonly end: number,
    readonly granule = 4096,
  ) {
    if (base % granule !== 0 || end % granule !== 0 || end <= base) {
      throw new RangeError(`Bad allocator range: 0x${base.toString(16)}..0x${end.toString(16)}`);
    }
    this.free = [{ offset: base, size: end - base }];
  }

  get capacity(): number {
    return this.end - this.base;
  }

  get used(): number {
    return this.allocatedBytes;
  }

  get freeBytes(): number {
    return this.capacity - this.allocatedBytes;
  }

  get largestFree(): number {
    return this.free.reduce((max, r) => Math.max(max, r.size), 0);
  }

  freeRanges(): readonly Range[] {
    return this.free;
  }

  /** Round a request up to the granule; undefined when it cannot be represented. */
  roundSize(size: number): number | undefined {
    if (!Number.isSafeInteger(size) || size <= 0) return undefined;
    const rounded = Math.ceil(size / this.granule) * this.granule;
    return Number.isSafeInteger(rounded) ? rounded : undefined;
  }

  /**
   * Allocate `size` bytes (a multiple of the granule) aligned to `align` (a power of two ≥ the
   * granule). Returns undefined when no free range fits.
   */
  alloc(size: number, align: number): Range | undefined {
    if (size <= 0 || size % this.granule !== 0) throw new RangeError(`Size must be a positive multiple of ${this.granule}: ${size}`);
    if (align < this.granule || !isPow2(align)) throw new RangeError(`Bad alignment: ${align}`);
    for (let i = 0; i < this.free.length; i++) {
      const r = this.free[i]!;
      const start = Math.ceil(r.offset / align) * align;
      if (start + size > r.offset + r.size) continue;
      const pieces: Range[] = [];
      if (start > r.offset) pieces.push({ offset: r.offset, size: start - r.offset });
      if (start + size < r.offset + r.size) pieces.push({ offset: start + size, size: r.offset + r.size - (start + size) });
      this.free.splice(i, 1, ...pieces);
      this.allocatedBytes += size;
      return { offset: start, size };
    }
    return undefined;
  }

  /** Return a range that `alloc` handed out; merges it with free neighbours. */
  release(range: Range): void {
    const { offset, size } = range;
    let i = 0;
    while (i < this.free.length && this.free[i]!.offset < offset) i++;
    const prev = this.free[i - 1];
    const next = this.free[i];
    if (offset < this.base || offset + size > this.end || (prev && prev.offset + prev.size > offset) || (next && offset + size > next.offset)) {
      throw new RangeError(`Release of a range that is not allocated: 0x${offset.toString(16)}+0x${size.toString(16)}`);
    }
    this.allocatedBytes -= size;
    if (prev && prev.offset + prev.size === offset) {
      prev.size += size;
      if (next && prev.offset + prev.size === next.offset) {
        prev.size += next.size;
        this.free.splice(i, 1);
      }
    } else if (next && offset + size === next.offset) {
      next.offset = offset;
      next.size += size;
    } else {
      this.free.splice(i, 0, { offset, size });
    }
  }

  /** Everything back to free (device reset). */
  reset(): void {
    this.free = [{ offset: this.base, size: this.end - this.base }];
    this.allocatedBytes = 0;
  }
}

function isPow2(n: number): boolean {
  return Number.isSafeInteger(n) && n > 0 && (BigInt(n) & (BigInt(n) - 1n)) === 0n;
}
