import t from 'tap';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { VfioUserClient } from '../../src/client/client.js';
import { nativeHostOps } from '../../src/cli/host-ops.js';
import { IrqIndex } from '../../src/pci/irqs.js';
import { VfioUserServer } from '../../src/server/server.js';
import { MdgpuDevice, REGISTER_BAR } from '../../src/vgpu/device.js';
import { MDGPU_REGS } from '../../src/vgpu/regs.js';
import { native, openFds, readU32, tick, u32le } from '../helpers/served-device.js';

function waitFor(cond: () => boolean, what: string, ms = 2000): Promise<void> {
  const start = Date.now();
  return new Promise((resolve, reject) => {
    const poll = () => {
      if (cond()) resolve();
      else if (Date.now() - start > ms) reject(new Error(`Timed out waiting for ${what}`));
      else setTimeout(poll, 1);
    };
    poll();
  });
}

t.test('100 connect/disconnect cycles over a listening socket leak no fd and no mapping; device state survives', async (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'mdgpu-'));
  const socketPath = path.join(dir, 'vgpu.sock');
  const device = new MdgpuDevice({ name: 'reconnect', apertureSize: 1 << 20, host: nativeHostOps(native) });
  const server = new VfioUserServer({ socketPath, device: device.pci, native });
  server.listen();
  t.teardown(() => {
    server.close();
    device.close();
    fs.rmSync(dir, { recursive: true, force: true });
  });
  const ram = native.memfdCreate('guest-ram', 0);
  native.ftruncate(ram, 1 << 20);
  t.teardown(() => native.close(ram));

  const cycle = async (i: number) => {
    const client = VfioUserClient.connect(native, socketPath);
    await client.version();
    await client.dmaMap({ address: 0n, size: 1n << 20n, fd: ram });
    const efd = native.eventfd(0, 0);
    await client.setIrqs({ index: IrqIndex.MSIX, action: 'trigger', start: 0, count: 1, data: { kind: 'eventfd' } }, [efd]);
    native.close(efd);
    const { fd } = await client.regionInfo(0);
    if (fd !== null) native.close(fd);
    await client.regionWrite(REGISTER_BAR, MDGPU_REGS.SCRATCH.offset, u32le(i));
    client.close();
    await waitFor(() => server.session === null, 'the server to see the disconnect');
  };

  await cycle(0); // warm-up: lazily created fds (libuv, timers) are not leaks
  const fdsBefore = openFds();
  const mappingsBefore = native.liveMappings();
  for (let i = 1; i <= 100; i++) await cycle(i);
  await tick(10);
  t.equal(server.connections, 101);
  t.equal(openFds(), fdsBefore, 'no fd leaked');
  t.equal(native.liveMappings(), mappingsBefore, 'no mapping leaked');
  t.equal(device.pci.dma.count, 0, 'DMA mappings released on disconnect');
  t.same(device.pci.irqs.heldFds(), [], 'eventfds released on disconnect');

  const client = VfioUserClient.connect(native, socketPath);
  t.teardown(() => client.close());
  await client.version();
  t.equal(readU32(await client.regionRead(REGISTER_BAR, MDGPU_REGS.SCRATCH.offset, 4)), 100, 'device state kept across clients');
});

t.test('a second client is refused while one is connected (after a grace period), a third at once', async (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'mdgpu-'));
  const socketPath = path.join(dir, 'vgpu.sock');
  fs.writeFileSync(path.join(dir, 'not-a-socket'), '');
  const device = new MdgpuDevice({ name: 'second', apertureSize: 1 << 20, host: nativeHostOps(native) });
  const server = new VfioUserServer({ socketPath, device: device.pci, native, reconnectGraceMs: 100 });
  t.throws(
    () => new VfioUserServer({ socketPath: path.join(dir, 'not-a-socket'), device: device.pci, native }).listen(),
    'a regular file in the way is not removed',
  );
  server.listen();
  t.teardown(() => {
    server.close();
    device.close();
    fs.rmSync(dir, { recursive: true, force: true });
  });
  const first = VfioUserClient.connect(native, socketPath);
  await first.version();
  const second = VfioUserClient.connect(native, socketPath);
  const third = VfioUserClient.connect(native, socketPath);
  await third.waitClosed();
  t.notOk(second.isClosed, 'the second client waits for the first to end...');
  await second.waitClosed();
  t.ok(second.isClosed, '...and is closed by the server when it does not');
  t.ok(await first.deviceInfo(), 'first client unaffected');
  first.close();
});

t.test('a client that reconnects right after closing is served, not refused (the close may not be seen yet)', async (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'mdgpu-'));
  const socketPath = path.join(dir, 'vgpu.sock');
  const device = new MdgpuDevice({ name: 'quick', apertureSize: 1 << 20, host: nativeHostOps(native) });
  const server = new VfioUserServer({ socketPath, device: device.pci, native });
  server.listen();
  t.teardown(() => {
    server.close();
    device.close();
    fs.rmSync(dir, { recursive: true, force: true });
  });
  let client = VfioUserClient.connect(native, socketPath);
  await client.version();
  let refused = 0;
  for (let i = 0; i < 50; i++) {
    // Posted writes still in the socket when it closes: the server has work left for the old client.
    for (let j = 0; j < 200; j++) client.postRegionWrite(REGISTER_BAR, MDGPU_REGS.SCRATCH.offset, u32le(i));
    client.close();
    client = VfioUserClient.connect(native, socketPath);
    try {
      await client.version();
    } catch {
      refused++;
      client.close();
      await waitFor(() => server.session === null, 'the refused client to be gone');
      client = VfioUserClient.connect(native, socketPath);
      await client.version();
    }
  }
  t.equal(refused, 0, 'no reconnect refused');
  t.equal(readU32(await client.regionRead(REGISTER_BAR, MDGPU_REGS.SCRATCH.offset, 4)), 49, "every departed client's posted writes were applied, in order");
  client.close();
});

t.test('accept failing (out of fds) backs off instead of spinning, then serves the client', async (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'mdgpu-'));
  const socketPath = path.join(dir, 'vgpu.sock');
  const device = new MdgpuDevice({ name: 'emfile', apertureSize: 1 << 20, host: nativeHostOps(native) });
  let failures = 3;
  let attempts = 0;
  const flaky = Object.create(native) as typeof native;
  flaky.accept = (fd: number) => {
    attempts++;
    if (failures > 0 && failures--) throw Object.assign(new Error('EMFILE: too many open files, accept4'), { code: 'EMFILE', errno: -24, syscall: 'accept4' });
    return native.accept(fd);
  };
  const server = new VfioUserServer({ socketPath, device: device.pci, native: flaky });
  server.listen();
  t.teardown(() => {
    server.close();
    device.close();
    fs.rmSync(dir, { recursive: true, force: true });
  });
  const client = VfioUserClient.connect(native, socketPath);
  t.teardown(() => client.close());
  await client.version();
  t.ok(attempts < 10, `the listener rested after each failure instead of spinning on it (${attempts} accept calls)`);
  t.equal(failures, 0, 'three failed accepts, then the client was served');

  // More clients while one is served (no more than the backlog: connectUnix blocks beyond it, and
  // this thread is also the server): one waits and is refused, the others at once.
  const others = Array.from({ length: 3 }, () => VfioUserClient.connect(native, socketPath));
  await Promise.all(others.map((c) => c.waitClosed()));
  t.ok(await client.deviceInfo(), 'the served client is unaffected');
  for (const c of others) c.close();
});
