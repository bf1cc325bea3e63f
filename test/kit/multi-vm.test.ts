/**
 * qemu-configs/multi-vm.sh as users run it: one mdgpu daemon with two vGPUs, two QEMUs from the
 * kit, each guest seeing its own mdgpu device; the daemon goes away with the script.
 */
import t from 'tap';
import { spawn } from 'node:child_process';
import * as fsp from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { ensureKit } from '../../src/kit/kit.js';
import { guestInitramfs, initScript } from '../../src/kit/initramfs.js';

const kit = await ensureKit();
const script = fileURLToPath(new URL('../../../qemu-configs/multi-vm.sh', import.meta.url));

t.test('multi-vm.sh: two guests, each with its own vGPU on one daemon', async (t) => {
  const dir = await fsp.mkdtemp(path.join(os.tmpdir(), 'mdgpu-multi-vm-'));
  t.teardown(() => fsp.rm(dir, { recursive: true, force: true }));
  const initrd = path.join(dir, 'initrd.img');
  const body = 'for d in /sys/bus/pci/devices/*; do [ "$(cat $d/vendor)" = 0x4d44 ] && echo "MDGPU-SEEN $(basename $d) $(cat $d/device)"; done';
  await fsp.writeFile(initrd, await guestInitramfs(kit, { init: initScript(body) }));
  const child = spawn('/bin/sh', [script], {
    env: { ...process.env, KIT: kit.root, INITRD: initrd, N: '2', WEIGHTS: '1,2', RUNDIR: dir, MEM: '256', SMP: '1' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  child.stdout.setEncoding('utf8').on('data', (c: string) => (out += c));
  child.stderr.setEncoding('utf8').on('data', (c: string) => (out += c));
  const timer = setTimeout(() => child.kill('SIGKILL'), 180_000);
  const code = await new Promise<number | null>((resolve) => child.on('exit', resolve));
  clearTimeout(timer);
  t.equal(code, 0, out.slice(-2000));
  for (const vm of ['vm1', 'vm2']) {
    const log = await fsp.readFile(path.join(dir, `${vm}.log`), 'utf8');
    t.match(log, /MDGPU-SEEN 0000:01:00\.0 0x4750/, `${vm} sees its mdgpu device`);
    t.match(log, /MDGPU-INIT-END rc=0/, `${vm} finished`);
  }
  t.match(out, /2 guests running/);
  const left = await fsp.readdir(dir);
  t.notOk(
    left.some((f) => f.endsWith('.sock')),
    `the daemon removed its sockets on exit (${left.join(' ')})`,
  );
});
