/**
 * The command line users copy (qemu-configs/single-vm.sh) really boots the kit's kernel,
 * and its JSON vfio-user-pci argument is accepted (QEMU gets as far as connecting).
 */
import t from 'tap';
import * as fsp from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { ensureKit } from '../../src/kit/kit.js';
import { guestInitramfs, initScript } from '../../src/kit/initramfs.js';
import { spawnQemu } from '../../src/kit/qemu.js';

const kit = await ensureKit();
// build/test/kit/ → repository root
const script = fileURLToPath(new URL('../../../qemu-configs/single-vm.sh', import.meta.url));

async function runScript(env: Record<string, string>, timeoutMs: number) {
  let out = '';
  const p = spawnQemu({ qemu: { command: '/bin/sh', args: [script], env: { KIT: kit.root, ...env } } }, [], {
    timeoutMs,
    onStdout: (c) => (out += c),
  });
  const r = await p.exited;
  return { ...r, output: out.replace(/\r\n/g, '\n') };
}

t.test('single-vm.sh boots the kit guest under TCG', async (t) => {
  const dir = await fsp.mkdtemp(path.join(os.tmpdir(), 'mdgpu-single-vm-'));
  t.teardown(() => fsp.rm(dir, { recursive: true, force: true }));
  const initrd = path.join(dir, 'initrd.img');
  await fsp.writeFile(initrd, await guestInitramfs(kit, { init: initScript('echo "MDGPU-GUEST-OK $(uname -r)"; ls /sys/bus/pci/devices') }));
  const r = await runScript({ SOCKET: '', INITRD: initrd, MEM: '512', SMP: '1' }, 120_000);
  t.equal(r.timedOut, false);
  t.equal(r.code, 0, r.stderr);
  t.match(r.output, `MDGPU-GUEST-OK ${kit.kernelVersion}`);
  t.match(r.output, /0000:00:10\.0/, 'the pinned root port is there');

  const bad = await runScript({ SOCKET: path.join(dir, 'nobody-listens.sock'), INITRD: initrd }, 60_000);
  t.equal(bad.code, 1, 'QEMU refuses to start without a listening server');
  t.match(bad.stderr, /vfio-user-pci.*Failed to connect to '.*nobody-listens\.sock'/, 'the JSON -device was parsed and realized up to the connect');

  const accel = await runScript({ SOCKET: '', INITRD: initrd, ACCEL: 'hvf' }, 10_000);
  t.equal(accel.code, 2);
  t.match(accel.stderr, /ACCEL must be tcg or kvm/);
});
