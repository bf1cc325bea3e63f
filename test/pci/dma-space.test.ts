import t from 'tap';
import { type DmaError, DmaSpace } from '../../src/pci/dma-space.js';
import { FakeHost } from '../helpers/fake-host.js';

function setup(master = true) {
  const host = new FakeHost();
  let bme = master;
  const dma = new DmaSpace({ mmap: (fd, o, l) => host.mmap(fd, o, l), munmap: () => host.munmap(), close: (fd) => host.close(fd) }, () => bme);
  return { host, dma, setMaster: (v: boolean) => (bme = v) };
}

t.test('map with fd: mmapped, fd closed, reads and writes go to the file', async (t) => {
  const { host, dma } = setup();
  const fd = host.clientFile(0x4000);
  const file = host.files.get(fd)!;
  dma.map({ iova: 0x10000n, size: 0x4000n, fdOffset: 0n, readable: true, writable: true, fd });
  t.notOk(host.open.has(fd), 'fd closed after mmap');
  await dma.write(0x10010n, Uint8Array.of(1, 2, 3));
  t.same([...file.subarray(0x10, 0x13)], [1, 2, 3]);
  t.same([...(await dma.read(0x10011n, 2))], [2, 3]);
  t.equal(dma.count, 1);
  dma.unmap(0x10000n, 0x4000n);
  t.equal(host.mapped, 0);
  t.end();
});

t.test('overlaps, exact-match unmaps, bad ranges', (t) => {
  const { host, dma } = setup();
  dma.map({ iova: 0x1000n, size: 0x2000n, fdOffset: 0n, readable: true, writable: false, fd: null });
  const errno = (fn: () => void) => {
    try {
      fn();
    } catch (err) {
      return (err as DmaError).errno;
    }
    return 'none';
  };
  t.equal(
    errno(() => dma.map({ iova: 0x2000n, size: 0x1000n, fdOffset: 0n, readable: true, writable: true, fd: null })),
    'EEXIST',
  );
  t.equal(
    errno(() => dma.map({ iova: 0n, size: 0x1001n, fdOffset: 0n, readable: true, writable: true, fd: null })),
    'EEXIST',
  );
  t.equal(
    errno(() => dma.map({ iova: 0xffff_ffff_ffff_f000n, size: 0x2000n, fdOffset: 0n, readable: true, writable: true, fd: null })),
    'EINVAL',
  );
  t.equal(
    errno(() => dma.map({ iova: 0x8000n, size: 0n, fdOffset: 0n, readable: true, writable: true, fd: null })),
    'EINVAL',
  );
  t.equal(
    errno(() => dma.map({ iova: 0x8000n, size: 0x1000n, fdOffset: 0n, readable: false, writable: false, fd: null })),
    'EINVAL',
  );
  const fd = host.clientFile(0x1000);
  t.equal(
    errno(() => dma.map({ iova: 0x8800n, size: 0x1000n, fdOffset: 0n, readable: true, writable: true, fd })),
    'EINVAL',
    'unaligned fd map',
  );
  t.notOk(host.open.has(fd), 'fd closed on error too');
  t.equal(
    errno(() => dma.unmap(0x1000n, 0x1000n)),
    'ENOENT',
    'partial unmap refused',
  );
  t.equal(
    errno(() => dma.view(0x1000n, 4, 'write')),
    'EPERM',
    'read-only mapping',
  );
  t.equal(
    errno(() => dma.view(0x2ffen, 4, 'read')),
    'EFAULT',
    'crosses the end',
  );
  t.equal(dma.view(0x1000n, 4, 'read'), null, 'message-only mapping has no view');
  dma.unmapAll();
  t.equal(dma.count, 0);
  t.end();
});

t.test('DMA needs bus mastering; message DMA is used without an fd', async (t) => {
  const { dma, setMaster } = setup(false);
  dma.map({ iova: 0n, size: 0x1000n, fdOffset: 0n, readable: true, writable: true, fd: null });
  const errnoOf = (p: Promise<unknown>) =>
    p.then(
      () => 'none',
      (err: DmaError) => err.errno,
    );
  t.equal(await errnoOf(dma.read(0n, 4)), 'ENODEV', 'bus master off');
  setMaster(true);
  t.equal(await errnoOf(dma.read(0n, 4)), 'ENODEV', 'no client attached');
  const calls: string[] = [];
  dma.setMessageDma({
    read: async (a, n) => {
      calls.push(`r ${a} ${n}`);
      return new Uint8Array(n).fill(7);
    },
    write: async (a, d) => {
      calls.push(`w ${a} ${d.length}`);
    },
  });
  t.same([...(await dma.read(0x10n, 2))], [7, 7]);
  await dma.write(0x20n, Uint8Array.of(1));
  t.same(calls, ['r 16 2', 'w 32 1']);
  t.end();
});
