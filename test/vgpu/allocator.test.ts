import t from 'tap';
import { ApertureAllocator, type Range } from '../../src/vgpu/allocator.js';

/** A tiny deterministic PRNG so failures reproduce. */
function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let x = s;
    x = Math.imul(x ^ (x >>> 15), x | 1);
    x ^= x + Math.imul(x ^ (x >>> 7), x | 61);
    return ((x ^ (x >>> 14)) >>> 0) / 2 ** 32;
  };
}

t.test('basic alloc, alignment, release and coalescing', (t) => {
  const a = new ApertureAllocator(0x1000, 0x100000);
  const x = a.alloc(0x1000, 0x1000)!;
  t.same(x, { offset: 0x1000, size: 0x1000 });
  const y = a.alloc(0x2000, 0x10000)!;
  t.equal(y.offset, 0x10000, 'aligned to 64 KiB');
  t.same(
    a.freeRanges(),
    [
      { offset: 0x2000, size: 0xe000 },
      { offset: 0x12000, size: 0xee000 },
    ],
    'alignment gap stays free',
  );
  const z = a.alloc(0x3000, 0x1000)!;
  t.equal(z.offset, 0x2000, 'first fit reuses the gap');
  a.release(x);
  a.release(z);
  a.release(y);
  t.same(a.freeRanges(), [{ offset: 0x1000, size: 0xff000 }], 'everything coalesced back into one range');
  t.equal(a.used, 0);
  t.equal(a.alloc(0x100000, 0x1000), undefined, 'larger than the space');
  t.throws(() => a.alloc(100, 0x1000), /multiple/);
  t.throws(() => a.alloc(0x1000, 0x3000), /alignment/);
  t.throws(() => a.release({ offset: 0x1000, size: 0x1000 }), /not allocated/, 'double release');
  t.throws(() => new ApertureAllocator(0x1001, 0x2000), /Bad allocator range/);
  t.equal(a.roundSize(1), 0x1000);
  t.equal(a.roundSize(0), undefined);
  t.equal(a.roundSize(2 ** 60), undefined);
  t.end();
});

t.test('random alloc/free sequences match a reference model', (t) => {
  const PAGES = 256;
  const GRANULE = 0x1000;
  for (let seed = 1; seed <= 40; seed++) {
    const random = rng(seed);
    const a = new ApertureAllocator(GRANULE, GRANULE * (PAGES + 1));
    // Reference: one owner slot per page.
    const pages = new Array<number>(PAGES).fill(0);
    const live: (Range & { id: number })[] = [];
    let id = 0;
    for (let step = 0; step < 400; step++) {
      if (random() < 0.55 || live.length === 0) {
        const size = GRANULE * (1 + Math.floor(random() * 16));
        const align = GRANULE * 2 ** Math.floor(random() * 4);
        const got = a.alloc(size, align);
        // The reference says whether any aligned fit exists.
        let fits = false;
        for (let p = 0; p + size / GRANULE <= PAGES && !fits; p++) {
          const offset = GRANULE * (p + 1);
          if (offset % align !== 0) continue;
          fits = pages.slice(p, p + size / GRANULE).every((o) => o === 0);
        }
        if (got === undefined) {
          if (fits) t.fail(`seed ${seed} step ${step}: allocator refused ${size}@${align} but a fit exists`);
          continue;
        }
        if (got.offset % align !== 0) t.fail(`seed ${seed}: misaligned ${got.offset}`);
        id++;
        for (let p = (got.offset - GRANULE) / GRANULE; p < (got.offset - GRANULE + got.size) / GRANULE; p++) {
          if (pages[p] !== 0) t.fail(`seed ${seed} step ${step}: overlap at page ${p}`);
          pages[p] = id;
        }
        live.push({ ...got, id });
      } else {
        const [victim] = live.splice(Math.floor(random() * live.length), 1);
        a.release(victim!);
        for (let p = 0; p < PAGES; p++) if (pages[p] === victim!.id) pages[p] = 0;
      }
      const usedPages = pages.filter((o) => o !== 0).length;
      if (a.used !== usedPages * GRANULE) t.fail(`seed ${seed} step ${step}: used ${a.used} != ${usedPages * GRANULE}`);
      const ranges = a.freeRanges();
      for (let i = 1; i < ranges.length; i++) {
        if (ranges[i - 1]!.offset + ranges[i - 1]!.size >= ranges[i]!.offset) t.fail(`seed ${seed}: free ranges not coalesced/sorted`);
      }
    }
    for (const r of live) a.release(r);
    if (a.freeRanges().length !== 1 || a.used !== 0) t.fail(`seed ${seed}: not fully coalesced at the end`);
  }
  t.pass('40 random sequences of 400 steps agree with the page-map model');
  t.end();
});
