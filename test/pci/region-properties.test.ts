/**
 * Property-based checks of region access bounds (fast-check): for any region index, any u64-ish
 * offset and any count a client can put in a REGION_READ/WRITE, the PCI function either performs
 * exactly the access inside the region or refuses it with RegionError, and a handler never sees
 * an access that is not entirely inside its BAR.
 */
import t from 'tap';
import fc from 'fast-check';
import { PciFunction, RegionError, RegionIndex, type RegionHandler } from '../../src/pci/pci-function.js';
import { FakeHost } from '../helpers/fake-host.js';

const BAR_SIZES = [0x1_0000, 0, 0x4000];

function device() {
  const seen: { bar: number; offset: number; count: number }[] = [];
  const handler = (bar: number): RegionHandler => ({
    read(offset, count) {
      seen.push({ bar, offset, count });
      return new Uint8Array(count).fill(bar + 1);
    },
    write(offset, data) {
      seen.push({ bar, offset, count: data.length });
    },
  });
  const host = new FakeHost();
  const pci = new PciFunction({
    name: 'prop',
    identity: { vendorId: 0x1234, deviceId: 0x5678, subsystemVendorId: 0, subsystemId: 0, revision: 0, classCode: 0x030200 },
    bars: [
      { size: BAR_SIZES[0]!, is64: true, prefetchable: true, handler: handler(0) },
      undefined,
      { size: BAR_SIZES[2]!, is64: false, prefetchable: false, handler: handler(2) },
    ],
    msix: { vectors: 4, bar: 2, tableOffset: 0x2000, pbaOffset: 0x3000 },
    eventfds: host,
    memory: host,
  });
  return { pci, seen };
}

function regionSize(index: number): bigint {
  if (index === RegionIndex.CONFIG) return 4096n;
  return BigInt(BAR_SIZES[index] ?? 0);
}

const access = fc.record({
  index: fc.oneof(fc.integer({ min: 0, max: RegionIndex.COUNT - 1 }), fc.integer({ min: -2, max: 1000 })),
  offset: fc.oneof(
    fc.bigInt({ min: 0n, max: 0x2_0000n }),
    fc.bigInt({ min: 0n, max: (1n << 64n) - 1n }),
    fc.constantFrom((1n << 64n) - 1n, (1n << 64n) - 4n, 0xfffn, 0x3ffcn, 0xfffcn),
  ),
  count: fc.oneof(fc.constantFrom(1, 2, 4, 8, 4096), fc.integer({ min: 0, max: 0x2_0000 })),
  write: fc.boolean(),
});

t.test('any access: done exactly inside the region, or refused with RegionError', (t) => {
  fc.assert(
    fc.property(access, ({ index, offset, count, write }) => {
      const { pci, seen } = device();
      const inside = index >= 0 && index < RegionIndex.COUNT && count > 0 && offset + BigInt(count) <= regionSize(index);
      let result: Uint8Array | undefined;
      try {
        if (write) pci.regionWrite(index, offset, new Uint8Array(count));
        else result = pci.regionRead(index, offset, count);
      } catch (err) {
        if (!(err instanceof RegionError)) throw new Error(`threw ${(err as Error).constructor.name}: ${(err as Error).message}`);
        if (inside) throw new Error(`refused an access inside region ${index}: ${err.message}`);
        if (seen.length > 0) throw new Error('a refused access reached a handler');
        return;
      }
      if (!inside) throw new Error(`accepted ${index} 0x${offset.toString(16)}+${count}`);
      if (!write && result!.length !== count) throw new Error(`read ${result!.length} of ${count} bytes`);
      for (const s of seen) {
        if (s.offset < 0 || s.offset + s.count > BAR_SIZES[s.bar]!) throw new Error(`handler saw BAR${s.bar} 0x${s.offset.toString(16)}+${s.count}`);
      }
    }),
    { numRuns: 2000 },
  );
  t.pass('2000 random accesses');
  t.end();
});

t.test('regionReadInto / regionWriteFrom: the same access as regionRead / regionWrite, into and from shared buffers', (t) => {
  fc.assert(
    fc.property(
      access.filter((a) => a.offset <= BigInt(Number.MAX_SAFE_INTEGER) && a.count <= 0x1_0000),
      fc.integer({ min: 0, max: 64 }),
      ({ index, offset, count, write }, pad) => {
        const a = device();
        const b = device();
        const at = Number(offset);
        if (write) {
          const data = Uint8Array.from({ length: count }, (_, i) => i * 7);
          const src = new Uint8Array(pad + count + 8);
          src.set(data, pad);
          const refusedA = refusal(() => a.pci.regionWrite(index, offset, data));
          const refusedB = refusal(() => b.pci.regionWriteFrom(index, at, src, pad, count));
          if (refusedA !== refusedB) throw new Error(`regionWrite ${refusedA} but regionWriteFrom ${refusedB}`);
        } else {
          let expected: Uint8Array | undefined;
          const out = new Uint8Array(pad + count + 8).fill(0xee);
          const refusedA = refusal(() => {
            expected = a.pci.regionRead(index, offset, count);
          });
          const refusedB = refusal(() => b.pci.regionReadInto(index, at, count, out, pad));
          if (refusedA !== refusedB) throw new Error(`regionRead ${refusedA} but regionReadInto ${refusedB}`);
          if (expected !== undefined && Buffer.compare(out.subarray(pad, pad + count), expected) !== 0) throw new Error('different bytes');
          if (out.subarray(0, pad).some((x) => x !== 0xee) || out.subarray(pad + count).some((x) => x !== 0xee)) {
            throw new Error('wrote outside [outAt, outAt + count)');
          }
        }
        if (JSON.stringify(a.seen) !== JSON.stringify(b.seen)) throw new Error('the handlers saw different accesses');
        if (a.pci.trappedAccesses !== b.pci.trappedAccesses) throw new Error('counted differently');
      },
    ),
    { numRuns: 2000 },
  );
  t.pass('2000 random accesses');
  t.end();
});

/** The RegionError message of `fn`, or '' if it did not throw. */
function refusal(fn: () => void): string {
  try {
    fn();
    return '';
  } catch (err) {
    if (!(err instanceof RegionError)) throw err;
    return err.message;
  }
}

t.test('handlers without readInto / writeFrom: a short read leaves no old bytes, a write gets its own copy', (t) => {
  const kept: Uint8Array[] = [];
  const host = new FakeHost();
  const pci = new PciFunction({
    name: 'fallback',
    identity: { vendorId: 0x1234, deviceId: 0x5678, subsystemVendorId: 0, subsystemId: 0, revision: 0, classCode: 0x030200 },
    bars: [
      {
        size: 0x1000,
        is64: false,
        prefetchable: false,
        handler: {
          read: () => Uint8Array.of(1, 2),
          write: (_offset, data) => void kept.push(data),
        },
      },
    ],
    eventfds: host,
    memory: host,
  });
  const out = new Uint8Array(8).fill(0xee);
  pci.regionReadInto(0, 0, 4, out, 2);
  t.same([...out], [0xee, 0xee, 1, 2, 0, 0, 0xee, 0xee], 'the two missing bytes read as 0');
  const src = Uint8Array.of(9, 8, 7, 6, 5);
  pci.regionWriteFrom(0, 0x10, src, 1, 3);
  src.fill(0);
  t.same([...kept[0]!], [8, 7, 6], 'the handler kept a copy, not a view of the caller’s buffer');
  t.end();
});
