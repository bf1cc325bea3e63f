/**
 * Read-only virtio-blk disks on the QEMU command line (the Debian guest image boots from two):
 * a `-blockdev` opened read-only at both layers, a virtio-blk-pci device with the serial the
 * guest finds it by, on its own root port after the vfio-user devices and the other devices; and
 * the cache entries of the Debian image are pruned like kits.
 */
import t from 'tap';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { qemuArgs, rootPortId } from '../../src/kit/qemu.js';
import { CACHE_ENTRY, pruneCache } from '../../src/kit/prune.js';

function values(args: string[], opt: string): string[] {
  const out: string[] = [];
  args.forEach((a, i) => {
    if (a === opt) out.push(args[i + 1]!);
  });
  return out;
}

t.test('drives: read-only blockdevs and virtio-blk-pci devices behind their own root ports', async (t) => {
  const a = qemuArgs({
    vfioUser: [{ socket: '/run/a.sock' }],
    devices: [{ driver: 'edu' }],
    drives: [
      { file: '/cache/base, with a comma.img', serial: 'mdgpu-base', id: 'base' },
      { file: '/cache/layer.img', serial: 'mdgpu-layer' },
    ],
  });
  const blockdevs = values(a, '-blockdev').map((j) => JSON.parse(j) as Record<string, unknown>);
  t.same(blockdevs, [
    { driver: 'raw', 'node-name': 'base-node', 'read-only': true, file: { driver: 'file', filename: '/cache/base, with a comma.img', 'read-only': true } },
    { driver: 'raw', 'node-name': 'disk1-node', 'read-only': true, file: { driver: 'file', filename: '/cache/layer.img', 'read-only': true } },
  ]);
  const devices = values(a, '-device');
  const ports = devices.filter((d) => d.startsWith('pcie-root-port'));
  t.equal(ports.length, 4, 'one root port per device: vfio-user, edu, two disks');
  const json = devices.filter((d) => d.startsWith('{')).map((d) => JSON.parse(d) as Record<string, unknown>);
  t.same(
    json.map((d) => [d.driver, d.bus]),
    [
      ['vfio-user-pci', rootPortId(0)],
      ['edu', rootPortId(1)],
      ['virtio-blk-pci', rootPortId(2)],
      ['virtio-blk-pci', rootPortId(3)],
    ],
    'disks come last, so the vfio-user devices keep their addresses',
  );
  t.same(json[2], { driver: 'virtio-blk-pci', bus: rootPortId(2), addr: '0', id: 'base', drive: 'base-node', serial: 'mdgpu-base' });
  t.equal(json[3]!.serial, 'mdgpu-layer');
  t.ok(a.indexOf(values(a, '-blockdev')[0]!) < a.indexOf(devices.find((d) => d.includes('virtio-blk-pci'))!), 'the block node exists before its device');
});

t.test('no drives: the command line is as before', async (t) => {
  t.same(qemuArgs({ kernel: '/k', initrd: '/i', drives: [] }), qemuArgs({ kernel: '/k', initrd: '/i' }));
  t.same(values(qemuArgs({}), '-blockdev'), []);
});

t.test('prune: Debian image parts are cache entries, pruned unless in use', async (t) => {
  for (const n of ['guestroot-0123456789ab', 'guestdebs-0123456789abcdef', 'guestlayer-0123456789abcdef.tmp-12', 'guestroot-0123456789ab.lock']) {
    t.match(n, CACHE_ENTRY, n);
  }
  for (const n of ['guestroots-0123', 'notes.txt', 'guestdebs-xyz']) t.notMatch(n, CACHE_ENTRY, n);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'mdgpu-prune-debian-'));
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  for (const n of [
    'guestroot-aaaaaaaaaaaa',
    'guestroot-bbbbbbbbbbbb',
    'guestdebs-1111111111111111',
    'guestdebs-2222222222222222',
    'guestlayer-3333333333333333',
    'guestlayer-4444444444444444',
  ]) {
    fs.mkdirSync(path.join(dir, n, 'root'), { recursive: true });
    fs.writeFileSync(path.join(dir, n, 'root', 'f'), 'x');
  }
  const r = await pruneCache(dir, ['guestroot-bbbbbbbbbbbb', 'guestdebs-2222222222222222', 'guestlayer-4444444444444444']);
  t.same(r.removed, ['guestdebs-1111111111111111', 'guestlayer-3333333333333333', 'guestroot-aaaaaaaaaaaa']);
  t.same(fs.readdirSync(dir).sort(), ['guestdebs-2222222222222222', 'guestlayer-4444444444444444', 'guestroot-bbbbbbbbbbbb']);
});
