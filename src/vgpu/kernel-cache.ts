/**
 * A VM's cache of built kernels: a kernel identical to one this VM built before is READY at
 * once, sharing the device kernel, without the builder process or a compile.
 *
 * Why: every KERNEL_CREATE is validated and compiled twice (in the builder, then in the compute
 * worker), 20–200 ms on lavapipe and far more for large modules, and a Vulkan program creates
 * the same pipelines on every run (its VkPipelineCache says so, but the host could not use it).
 * Kernels this VM destroyed stay here, least recently used first out, so the next process of
 * the same VM gets them for the cost of a hash.
 *
 * What identifies a kernel is everything it is built from: the SPIR-V words, the entry point,
 * the specialization map and data, the push-constant size, the flags and (contract 1.1) the
 * binding count. They are hashed (SHA-256) to find a candidate, and a candidate is used only
 * when every byte of its request equals the new one: a hash alone never decides.
 *
 * The guest is hostile, so:
 * - The cache is per VM (one per {@link KernelRegistry}); a built kernel is never shared with
 *   another VM, which could otherwise learn by timing which kernels its neighbour uses.
 * - Every entry is charged to the VM's quota as a live kernel is (its request plus the
 *   pipeline's estimate). Entries no kernel uses any more are given back on demand: when the
 *   VM needs quota (a buffer, a new kernel) they are evicted, oldest first, before anything
 *   is refused; and at most `maxEntries` of them are kept.
 * - A device reset or the VM going away empties it (the registry's reset): whoever uses the
 *   device next — perhaps another VM — starts cold, as with the aperture's contents.
 *
 * A cached entry stays valid across a compute-device reset (the worker replaced after a hung
 * batch): the backend's kernel handle survives it, and the new worker rebuilds the kernel
 * when a batch first needs it, as for any live kernel. The builder's checks are not repeated:
 * the bytes are the ones that passed them.
 */
import { type BuiltKernel, type KernelBuildRequest, sameRequest } from './kernel-request.js';

/** Kernels a VM keeps cached after their last user destroyed them (vGPU setting `kernel-cache`). */
export const DEFAULT_KERNEL_CACHE_ENTRIES = 256;

/** One built (or building) kernel of a VM, shared by every live kernel made from the same bytes. */
export interface CacheEntry {
  readonly digest: string;
  /** What it was built from (the registry's copy): compared in full on every hash hit. */
  readonly request: KernelBuildRequest;
  /** Bytes charged to the VM's quota for it. */
  readonly charge: number;
  /** The build, once it ended well; null while BUILDING. */
  built: BuiltKernel | null;
  /** Live kernels (BUILDING or READY) made from it. */
  users: number;
  /** Dropped from the cache (reset, failure, eviction): nothing may use it any more. */
  dropped: boolean;
}

/** What the cache needs of its owner: give an entry's resources back. */
export interface KernelCacheHost {
  /** The entry leaves the cache: destroy its device kernel (if built) and return its charge. */
  release(entry: CacheEntry): void;
}

/** Counters for status and metrics. */
export interface KernelCacheStats {
  /** Creations answered from the cache (READY at once, or joining a build in progress). */
  hits: number;
  /** Creations that had to be built. */
  misses: number;
  /** Unused entries dropped to make room (quota, or the entry bound). */
  evictions: number;
}

export class KernelCache {
  /** Every entry not dropped: in use, building, or idle. */
  private readonly entries = new Set<CacheEntry>();
  /** The same entries by digest, for lookups (a list: equal digests with different bytes stay apart). */
  private readonly byDigest = new Map<string, CacheEntry[]>();
  /** Built entries no live kernel uses, least recently used first: what may be evicted. */
  private readonly idle = new Set<CacheEntry>();
  private idleBytes = 0;
  private limit = DEFAULT_KERNEL_CACHE_ENTRIES;
  readonly stats: KernelCacheStats = { hits: 0, misses: 0, evictions: 0 };

  constructor(private readonly host: KernelCacheHost) {}

  /** Most idle entries kept; 0 turns the cache off (every creation builds, nothing is shared). */
  get maxEntries(): number {
    return this.limit;
  }
  set maxEntries(n: number) {
    this.limit = n;
    while (this.idle.size > n) this.evictOldest();
    if (n === 0) this.byDigest.clear();
  }

  /** Entries held: in use, building, and idle. */
  get size(): number {
    return this.entries.size;
  }

  /** Entries no kernel uses (evictable). */
  get idleCount(): number {
    return this.idle.size;
  }

  /** Bytes charged for idle entries: given back on demand, so not part of what the VM holds. */
  get reclaimableBytes(): number {
    return this.idleBytes;
  }

  /** The entry built (or being built) from exactly these bytes, `digest` their hash. */
  find(digest: string, request: KernelBuildRequest): CacheEntry | undefined {
    return this.byDigest.get(digest)?.find((e) => sameRequest(e.request, request));
  }

  /** A creation found `entry`: one more user (it is no longer idle, and is the most recently used). */
  use(entry: CacheEntry): void {
    this.stats.hits++;
    entry.users++;
    if (this.idle.delete(entry)) this.idleBytes -= entry.charge;
  }

  /** A creation that must be built: a new entry with one user (its charge already taken). */
  add(digest: string, request: KernelBuildRequest, charge: number): CacheEntry {
    this.stats.misses++;
    const entry: CacheEntry = { digest, request, charge, built: null, users: 1, dropped: false };
    this.entries.add(entry);
    if (this.limit > 0) {
      const list = this.byDigest.get(digest);
      if (list === undefined) this.byDigest.set(digest, [entry]);
      else list.push(entry);
    }
    return entry;
  }

  /** Its build ended well (the caller checked it was not dropped meanwhile): idle at once if nobody waits for it. */
  built(entry: CacheEntry, built: BuiltKernel): void {
    entry.built = built;
    if (entry.users === 0) this.idleOrDrop(entry);
  }

  /** Its build failed; the caller failed its users. Nothing is kept: the same bytes build again next time. */
  failed(entry: CacheEntry): void {
    entry.users = 0;
    if (!entry.dropped) this.drop(entry);
  }

  /** A user went away (KERNEL_DESTROY, its context destroyed, a reset). */
  release(entry: CacheEntry): void {
    entry.users--;
    if (entry.users > 0) return;
    if (entry.dropped) this.host.release(entry);
    else if (entry.built !== null) this.idleOrDrop(entry);
  }

  private idleOrDrop(entry: CacheEntry): void {
    if (this.limit === 0) {
      this.drop(entry);
      return;
    }
    this.idle.add(entry);
    this.idleBytes += entry.charge;
    while (this.idle.size > this.limit) this.evictOldest();
  }

  private evictOldest(): boolean {
    const oldest = this.idle.values().next();
    if (oldest.done) return false;
    this.stats.evictions++;
    this.drop(oldest.value);
    return true;
  }

  /**
   * The VM needs `bytes` of quota back: evict idle entries, oldest first, until that much was
   * returned or none is left. Returns the bytes returned.
   */
  reclaim(bytes: number): number {
    let returned = 0;
    while (returned < bytes && this.idle.size > 0) {
      const before = this.idleBytes;
      this.evictOldest();
      returned += before - this.idleBytes;
    }
    return returned;
  }

  /** Out of the cache for good; its resources go back now if nobody uses it, else with its last user. */
  private drop(entry: CacheEntry): void {
    entry.dropped = true;
    this.entries.delete(entry);
    if (this.idle.delete(entry)) this.idleBytes -= entry.charge;
    const list = this.byDigest.get(entry.digest);
    const at = list?.indexOf(entry) ?? -1;
    if (at >= 0) list!.splice(at, 1);
    if (list?.length === 0) this.byDigest.delete(entry.digest);
    if (entry.users === 0) this.host.release(entry);
  }

  /**
   * Device reset or the VM went away (after the registry let go of every kernel): every entry
   * goes, its charge returned now. A build still running is dropped with it; the registry
   * destroys what it produces.
   */
  clear(): void {
    for (const entry of [...this.entries]) this.drop(entry);
  }
}
