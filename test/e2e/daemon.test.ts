/**
 * One daemon, several vGPUs: separate sockets and memory, one shared Vulkan device with a fair
 * scheduler, status over the control socket and Prometheus text; `mdgpu serve` as a real
 * process: `mdgpu status` talks to it and SIGTERM shuts it down cleanly.
 */
import t from 'tap';
import { spawn, execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as http from 'node:http';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { startDaemon } from '../../src/cli/daemon.js';
import { metricsText, queryStatus, startControl } from '../../src/cli/control.js';
import { parseVgpuSpec, readConfig } from '../../src/cli/vgpu-config.js';
import { VfioUserClient } from '../../src/client/client.js';
import { loadNative } from '../../src/native/binding.js';
import { REGISTER_BAR } from '../../src/vgpu/device.js';
import { MDGPU_REGS } from '../../src/vgpu/regs.js';
import { MAILBOX_OPS } from '../../src/vgpu/mailbox-ops.js';
import { setLogSink } from '../../src/log.js';

setLogSink(() => {});
const native = loadNative();
const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');

t.test('vGPU specs and config files', (t) => {
  const d = { apertureSize: 1 << 20 };
  t.same(parseVgpuSpec('socket=/a,aperture=64M,quota=32M,weight=2,max-queues=4', 'v', d), {
    name: 'v',
    socket: '/a',
    apertureSize: 64 << 20,
    quota: 32 << 20,
    weight: 2,
    maxQueues: 4,
  });
  t.throws(() => parseVgpuSpec('aperture=1M', 'v', d), /socket/);
  t.throws(() => parseVgpuSpec('socket=/a,colour=red', 'v', d), /unknown vGPU setting/);
  t.throws(() => parseVgpuSpec('socket=/a,weight=0', 'v', d), /weight/);
  const file = path.join(os.tmpdir(), `mdgpu-config-${process.pid}.json`);
  fs.writeFileSync(file, JSON.stringify({ vgpus: [{ socket: '/x', name: 'vm1', weight: 3 }] }));
  t.teardown(() => fs.rmSync(file));
  t.same(readConfig(file, d), [{ name: 'vm1', socket: '/x', apertureSize: 1 << 20, weight: 3 }]);
  t.end();
});

t.test('two vGPUs on one daemon: own memory, own handles, one compute device, status and metrics', async (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'mdgpu-daemon-'));
  const daemon = startDaemon({
    vgpus: [
      { name: 'vm-a', socket: path.join(dir, 'a.sock'), apertureSize: 4 << 20, quota: 2 << 20, weight: 1 },
      { name: 'vm-b', socket: path.join(dir, 'b.sock'), apertureSize: 4 << 20, weight: 2 },
    ],
    compute: {},
    metrics: true,
  });
  const control = await startControl(daemon, { socket: path.join(dir, 'control.sock'), metricsPort: 0 });
  t.teardown(async () => {
    await control.close();
    await daemon.close();
    fs.rmSync(dir, { recursive: true, force: true });
  });
  const [a, b] = daemon.vgpus;
  t.not(a!.device.apertureFd, b!.device.apertureFd, 'separate memfds');
  t.not(a!.executor, b!.executor, 'separate memory imports on the shared device');

  // Each VM allocates through its own mailbox; a handle of one means nothing to the other.
  const op = (dev: typeof a, code: number, ...args: number[]) => {
    const w = (name: string, v: number) => {
      const buf = new Uint8Array(4);
      new DataView(buf.buffer).setUint32(0, v >>> 0, true);
      dev!.device.pci.regionWrite(REGISTER_BAR, MDGPU_REGS[name as keyof typeof MDGPU_REGS].offset, buf);
    };
    const r = (name: string) =>
      new DataView(dev!.device.pci.regionRead(REGISTER_BAR, MDGPU_REGS[name as keyof typeof MDGPU_REGS].offset, 4).buffer).getUint32(0, true);
    args.forEach((v, i) => w(`MBOX_ARG${i}`, v));
    w('MBOX_OPCODE', code);
    w('MBOX_DOORBELL', 1);
    return { result: r('MBOX_STATUS') & 0xffff, ret: r('MBOX_RET0'), ret1: r('MBOX_RET1') };
  };
  const ctxA = op(a, MAILBOX_OPS.CTX_CREATE.code).ret;
  const ctxB = op(b, MAILBOX_OPS.CTX_CREATE.code).ret;
  const boA = op(a, MAILBOX_OPS.BO_ALLOC.code, ctxA, 0x10000, 0, 0, 0);
  t.equal(boA.result, 0);
  t.equal(op(b, MAILBOX_OPS.BO_INFO.code, ctxB, boA.ret).result, 7, "vm-b cannot name vm-a's buffer (BAD_HANDLE)");
  t.equal(op(a, MAILBOX_OPS.BO_ALLOC.code, ctxA, 3 << 20, 0, 0, 0).result, 6, "vm-a's quota holds (OVER_QUOTA) while vm-b has room");
  t.equal(op(b, MAILBOX_OPS.BO_ALLOC.code, ctxB, 3 << 20, 0, 0, 0).result, 0);
  a!.device.aperture[boA.ret1 + 5] = 0x77;
  t.equal(b!.device.aperture[boA.ret1 + 5], 0, 'the same offset in vm-b is a different page');

  // A client connects to vm-a only.
  const client = VfioUserClient.connect(native, a!.config.socket);
  t.teardown(() => client.close());
  await client.version();

  const status = await queryStatus(path.join(dir, 'control.sock'));
  t.equal(status.computeDevice, daemon.compute?.info.name);
  t.equal(status.computeResets, 0, 'no device reset');
  const sa = status.vgpus.find((v) => v.name === 'vm-a')!;
  const sb = status.vgpus.find((v) => v.name === 'vm-b')!;
  t.equal(sa.connected, true);
  t.equal(sb.connected, false);
  t.equal(sa.usedBytes, 0x10000);
  t.equal(sa.quotaBytes, 2 << 20);
  t.equal(sb.weight, 2);
  t.equal(sa.mailboxFailures, 1);
  t.ok(sa.trappedAccesses > 0);
  t.same([sa.resets, sa.coolOffs, sa.coolingOffUntil, sa.throttled, sa.quarantinedBuffers], [0, 0, null, 0, 0], 'no resets, no cool-off');
  t.ok(status.kernelBuilder !== null && status.kernelBuilder.pid !== null && status.kernelBuilder.pid !== process.pid, 'a kernel builder process');
  t.ok(status.eventLoop.maxMs >= 0 && status.eventLoop.p99Ms >= 0, `event loop: longest stall ${status.eventLoop.maxMs.toFixed(1)} ms`);
  const reset = await new Promise<string>((resolve, reject) => {
    const conn = net.connect(path.join(dir, 'control.sock'));
    conn.setEncoding('utf8');
    conn.on('data', (d: string) => {
      resolve(d);
      conn.end();
    });
    conn.on('error', reject);
    conn.write('{"cmd":"reset-event-loop"}\n');
  });
  t.same(JSON.parse(reset), { ok: true }, 'reset-event-loop answers ok');
  const metrics = await new Promise<string>((resolve, reject) => {
    http
      .get(`http://127.0.0.1:${control.metricsPort}/metrics`, (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => (body += c));
        res.on('end', () => resolve(body));
      })
      .on('error', reject);
  });
  t.match(metrics, /mdgpu_vgpu_used_bytes\{vgpu="vm-a"\} 65536/);
  t.match(metrics, /mdgpu_vgpu_connected\{vgpu="vm-b"\} 0/);
  t.match(metrics, /# TYPE mdgpu_vgpu_trapped_accesses_total counter/);
  t.match(metrics, /^mdgpu_device_resets_total 0$/m);
  t.match(metrics, /^mdgpu_event_loop_max_seconds [0-9.e-]+$/m);
  t.match(metrics, /mdgpu_vgpu_cooling_off\{vgpu="vm-a"\} 0/);
  t.equal((await metricsText(daemon)).split('\n').filter((l) => l.startsWith('mdgpu_vgpu_weight')).length, 2);
  t.throws(
    () =>
      startDaemon({
        vgpus: [
          { name: 'x', socket: '/tmp/x', apertureSize: 1 << 20 },
          { name: 'x', socket: '/tmp/y', apertureSize: 1 << 20 },
        ],
      }),
    /named x/,
  );
});

t.test('mdgpu serve as a process: status over the control socket, clean SIGTERM shutdown', async (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'mdgpu-serve-'));
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  const control = path.join(dir, 'control.sock');
  const sockets = [path.join(dir, 'vm1.sock'), path.join(dir, 'vm2.sock')];
  const child = spawn(
    process.execPath,
    [
      path.join(root, 'bin/mdgpu.js'),
      'serve',
      '--vgpu',
      `socket=${sockets[0]},name=vm1,aperture=16M,weight=1`,
      '--vgpu',
      `socket=${sockets[1]},name=vm2,aperture=16M,weight=3`,
      '--control',
      control,
      '--no-compute',
    ],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let stderr = '';
  child.stderr.setEncoding('utf8').on('data', (c: string) => (stderr += c));
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  const deadline = Date.now() + 20_000;
  while (!fs.existsSync(control) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
  t.ok(fs.existsSync(control), 'control socket up');
  t.ok(
    sockets.every((s) => fs.existsSync(s)),
    'both vGPU sockets listening',
  );
  const out = execFileSync(process.execPath, [path.join(root, 'bin/mdgpu.js'), 'status', '--control', control], { encoding: 'utf8' });
  t.match(out, /vm1\s+waiting/);
  t.match(out, /vm2\s+waiting/);
  t.match(out, /device share/);
  child.kill('SIGTERM');
  t.equal(await exited, 0, `exit 0 on SIGTERM (${stderr.trim().split('\n').pop()})`);
  t.ok(
    sockets.every((s) => !fs.existsSync(s)),
    'vGPU sockets removed',
  );
});

t.test('the compute worker process: shown by status, gone when the daemon is killed', async (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'mdgpu-worker-'));
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  const control = path.join(dir, 'control.sock');
  const child = spawn(process.execPath, [path.join(root, 'bin/mdgpu.js'), 'serve', '--socket', path.join(dir, 'vm.sock'), '--control', control], {
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  const exited = new Promise<NodeJS.Signals | null>((resolve) => child.on('exit', (_code, signal) => resolve(signal)));
  t.teardown(() => child.kill('SIGKILL'));
  // Running, not a zombie: once the daemon is gone the worker's parent is whatever reaps orphans here.
  const alive = (pid: number) => {
    try {
      return !/^\d+ \(.*\) Z/.test(fs.readFileSync(`/proc/${pid}/stat`, 'utf8'));
    } catch {
      return false;
    }
  };
  const deadline = Date.now() + 30_000;
  let worker: number | null = null;
  while (worker === null && Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, 100));
    if (fs.existsSync(control)) worker = (await queryStatus(control)).computeWorkerPid;
  }
  t.ok(worker !== null && worker !== child.pid && alive(worker), `the device runs in worker process ${worker}`);
  const out = execFileSync(process.execPath, [path.join(root, 'bin/mdgpu.js'), 'status', '--control', control], { encoding: 'utf8' });
  t.match(out, new RegExp(`compute: .*\\(worker ${worker}, 0 resets\\)`), 'mdgpu status names the worker and its resets');
  // A daemon that dies without cleaning up must not leave a device (and perhaps a batch) running.
  child.kill('SIGKILL');
  t.equal(await exited, 'SIGKILL');
  while (worker !== null && alive(worker) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
  t.notOk(worker !== null && alive(worker), 'the worker ends when the daemon is killed');
});
