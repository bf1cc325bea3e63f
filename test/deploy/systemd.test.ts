/**
 * systemd: the unit files of contrib/systemd/ pass `systemd-analyze verify` (and keep their
 * hardening, `systemd-analyze security`); `mdgpu serve` started by systemd's own
 * `systemd-socket-activate` takes its vfio-user and control sockets from LISTEN_FDS, a real QEMU
 * (the kit's, under qtest) attaches through the activated socket, readiness and stopping reach
 * NOTIFY_SOCKET, and SIGTERM ends it cleanly; a real Linux guest boots through an activated
 * socket and runs the driver job. No running systemd is needed for any of it.
 */
import t from 'tap';
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { ensureKit } from '../../src/kit/kit.js';
import { runGuest } from '../../src/kit/qemu.js';
import { buildGuestDriver } from '../../src/guest/build.js';
import { guestImage } from '../../src/guest/image.js';
import { deviceProbeScript, driverScript, GUEST_MARKER, jobSteps } from '../../src/cli/guest-script.js';
import { PciCommand, PciReg } from '../../src/pci/config-space.js';
import { PciFirmware } from '../helpers/pci-firmware.js';
import { startQtest } from '../helpers/qtest.js';
import { loadNative, isErrno } from '../../src/native/binding.js';
import { queryStatus } from '../../src/cli/control.js';
import { notifySocket, sdNotify, stderrIsJournal, takeListenFds } from '../../src/cli/systemd.js';
import { MDGPU_ID, MDGPU_REGS } from '../../src/vgpu/regs.js';

const execFileP = promisify(execFile);
const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');
const units = path.join(root, 'contrib/systemd');
const native = loadNative();

/** A datagram receiver for sd_notify (Node has no datagram Unix sockets; Python's socket module does). */
async function notifyReceiver(address: string): Promise<{ messages: string[]; next: (pattern: RegExp, ms?: number) => Promise<string>; close: () => void }> {
  const script = [
    'import socket, sys',
    's = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)',
    'a = sys.argv[1]',
    "s.bind('\\0' + a[1:] if a.startswith('@') else a)",
    "print('bound', flush=True)",
    'while True:',
    "    print(s.recv(4096).decode().replace('\\n', '|'), flush=True)",
  ].join('\n');
  const child = spawn('python3', ['-c', script, address], { stdio: ['ignore', 'pipe', 'inherit'] });
  const messages: string[] = [];
  const waiters: (() => void)[] = [];
  let buffered = '';
  child.stdout.setEncoding('utf8').on('data', (chunk: string) => {
    buffered += chunk;
    let nl: number;
    while ((nl = buffered.indexOf('\n')) >= 0) {
      messages.push(buffered.slice(0, nl));
      buffered = buffered.slice(nl + 1);
      for (const w of waiters.splice(0)) w();
    }
  });
  const next = (pattern: RegExp, ms = 60_000) =>
    new Promise<string>((resolve, reject) => {
      const deadline = setTimeout(() => reject(new Error(`no notification matching ${pattern} (got ${JSON.stringify(messages)})`)), ms);
      const look = () => {
        const found = messages.find((m) => pattern.test(m));
        if (found !== undefined) {
          clearTimeout(deadline);
          resolve(found);
        } else waiters.push(look);
      };
      look();
    });
  await next(/^bound$/, 20_000);
  return { messages, next, close: () => child.kill() };
}

/** The exit of a child process: code and signal. */
function exited(child: ChildProcess): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
  return new Promise((resolve) => child.on('exit', (code, signal) => resolve({ code, signal })));
}

async function waitFor(cond: () => boolean, what: string, ms = 30_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`Timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** A root for `systemd-analyze --root`: the host's own units, ours in /etc, and an executable where ExecStart points. */
function analyzeRoot(dir: string, edit: (name: string, text: string) => string = (_n, s) => s): string {
  const r = path.join(dir, 'root');
  fs.mkdirSync(path.join(r, 'etc/systemd/system'), { recursive: true });
  fs.mkdirSync(path.join(r, 'usr/lib/systemd'), { recursive: true });
  fs.mkdirSync(path.join(r, 'usr/local/bin'), { recursive: true });
  fs.cpSync(fs.realpathSync('/lib/systemd/system'), path.join(r, 'usr/lib/systemd/system'), { recursive: true, verbatimSymlinks: true });
  for (const name of fs.readdirSync(units).filter((n) => /\.(service|socket)$/.test(n))) {
    fs.writeFileSync(path.join(r, 'etc/systemd/system', name), edit(name, fs.readFileSync(path.join(units, name), 'utf8')));
  }
  fs.writeFileSync(path.join(r, 'usr/local/bin/mdgpu'), `#!/bin/sh\nexec ${process.execPath} ${path.join(root, 'bin/mdgpu.js')} "$@"\n`, { mode: 0o755 });
  return r;
}

t.test('the unit files: systemd-analyze verify finds nothing, the hardening holds', async (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'mdgpu-units-'));
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  const r = analyzeRoot(dir);
  const toCheck = ['mdgpu.service', 'mdgpu-control.socket', 'mdgpu-vgpu@vm1.socket', 'mdgpu-vgpu@vm2.socket'];
  const ok = await execFileP('systemd-analyze', ['verify', `--root=${r}`, ...toCheck]);
  t.equal(ok.stderr + ok.stdout, '', `systemd-analyze verify: nothing to say about ${toCheck.join(', ')}`);

  const security = await execFileP('systemd-analyze', ['security', '--offline=yes', `--root=${r}`, '--no-pager', 'mdgpu.service']);
  const level = Number(/Overall exposure level for mdgpu\.service: ([0-9.]+)/.exec(security.stdout)?.[1]);
  t.ok(level <= 4, `exposure level ${level} (systemd-analyze security; 10 is an unprotected root service)`);
  for (const setting of ['User=/DynamicUser=', 'NoNewPrivileges=', 'ProtectSystem=', 'PrivateTmp=', 'ProtectHome=', 'RestrictNamespaces=~user']) {
    t.match(security.stdout, new RegExp(`✓ ${setting.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}`), `${setting} in effect`);
  }

  // The check can fail: a mistake in a unit is reported.
  const broken = analyzeRoot(path.join(dir, 'broken'), (name, text) =>
    name === 'mdgpu-vgpu@.socket' ? text.replace('SocketMode=0660', 'SocketMode=0660\nListenStreem=/x') : text,
  );
  const bad = await execFileP('systemd-analyze', ['verify', `--root=${broken}`, 'mdgpu-vgpu@vm1.socket']);
  t.match(bad.stderr, /Unknown key 'ListenStreem'/, 'a misspelt key is reported');
});

t.test('socket activation: QEMU connects, systemd-socket-activate starts mdgpu serve with the sockets, READY=1, SIGTERM', async (t) => {
  const kit = await ensureKit();
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'mdgpu-activate-'));
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  const sock = (name: string) => path.join(dir, `${name}.sock`);
  const config = path.join(dir, 'mdgpu.json');
  // vm1's settings come from the config file; vm2 is only a socket unit: the defaults apply.
  fs.writeFileSync(config, JSON.stringify({ vgpus: [{ name: 'vm1', aperture: '16M', quota: '8M', weight: 2 }] }));
  const notify = await notifyReceiver(path.join(dir, 'notify'));
  t.teardown(() => notify.close());

  // As the units say: one fd per vGPU named after it, and the control socket.
  const activate = spawn(
    'systemd-socket-activate',
    [
      '-l',
      sock('vm1'),
      '-l',
      sock('vm2'),
      '-l',
      sock('control'),
      '--fdname=vm1:vm2:control',
      '-E',
      `NOTIFY_SOCKET=${path.join(dir, 'notify')}`,
      process.execPath,
      path.join(root, 'bin/mdgpu.js'),
      'serve',
      '--config',
      config,
      '--aperture',
      '32M',
    ],
    { stdio: ['ignore', 'ignore', 'pipe'] },
  );
  let stderr = '';
  activate.stderr!.setEncoding('utf8').on('data', (c: string) => (stderr += c));
  const done = exited(activate);
  t.teardown(() => activate.kill('SIGKILL'));
  await waitFor(() => ['vm1', 'vm2', 'control'].every((n) => fs.existsSync(sock(n))), 'systemd-socket-activate to listen');
  t.notMatch(stderr, /Execing/, 'nothing started before a client connects');

  // QEMU realizes vfio-user-pci: its connection starts mdgpu, which answers on the passed socket.
  // Its first request waits for the daemon to start (with the compute device): a longer timeout.
  const qt = await startQtest(kit, { vfioUser: [{ socket: sock('vm1'), props: { 'x-msg-timeout': 60_000 } }], memoryMiB: 128, timeoutMs: 180_000 });
  t.teardown(() => qt.close());
  t.match(stderr, /Execing .*mdgpu\.js serve/, 'QEMU connecting started mdgpu');
  const ready = await notify.next(/READY=1/);
  t.equal(ready, 'READY=1|STATUS=serving 2 vGPUs: vm1, vm2', 'READY=1 once every vGPU is served');

  const pci = new PciFirmware(qt);
  await pci.init();
  const fn = (await pci.findDevice(0x4d44, 0x4750))!;
  t.ok(fn, 'QEMU shows the vGPU behind its root port');
  const assigned = (await pci.assignBars()).functions.find((f) => f.vendor === 0x4d44)!;
  const bar2 = assigned.bars.find((b) => b.index === 2)!.address;
  t.ok((await pci.cfgRead(fn.bdf, PciReg.COMMAND, 2)) & PciCommand.MEMORY);
  t.equal(await qt.readl(bar2 + BigInt(MDGPU_REGS.ID.offset)), MDGPU_ID, 'ID register read through the activated socket (a trapped access)');
  t.equal(Number(assigned.bars.find((b) => b.index === 0)!.size), 16 << 20, "vm1's aperture from the config file");

  const status = await queryStatus(sock('control'));
  const vm1 = status.vgpus.find((v) => v.name === 'vm1')!;
  const vm2 = status.vgpus.find((v) => v.name === 'vm2')!;
  t.same([vm1.socket, vm1.connected, vm1.weight, vm1.quotaBytes], [sock('vm1'), true, 2, 8 << 20], 'vm1: its socket, connected, its settings');
  t.same([vm2.socket, vm2.connected, vm2.apertureBytes], [sock('vm2'), false, 32 << 20], 'vm2 made from its socket with the defaults');
  t.ok(status.computeDevice !== null, `compute device ${status.computeDevice}`);

  // The passed sockets are close-on-exec: the compute worker and the kernel builder hold none.
  const inode = (pid: number, fd: number) => fs.readlinkSync(`/proc/${pid}/fd/${fd}`);
  const listening = [3, 4, 5].map((fd) => inode(activate.pid!, fd));
  t.ok(
    listening.every((l) => l.startsWith('socket:')),
    `fds 3-5 are the sockets (${listening.join(' ')})`,
  );
  for (const pid of [status.computeWorkerPid, status.kernelBuilder?.pid]) {
    if (pid === null || pid === undefined) continue;
    const held = fs.readdirSync(`/proc/${pid}/fd`).map((fd) => inode(pid, Number(fd)));
    t.notOk(
      held.some((l) => listening.includes(l)),
      `process ${pid} holds none of the listening sockets`,
    );
    t.notMatch(fs.readFileSync(`/proc/${pid}/environ`, 'utf8'), /LISTEN_FDS=/, `process ${pid} was not handed LISTEN_FDS`);
  }

  await qt.close();
  activate.kill('SIGTERM');
  const end = await done;
  t.same(end, { code: 0, signal: null }, `exit 0 on SIGTERM (${stderr.trim().split('\n').pop()})`);
  t.match(await notify.next(/STOPPING=1/), /^STOPPING=1\|STATUS=stopping on SIGTERM$/, 'STOPPING=1 on SIGTERM');
  t.ok(
    ['vm1', 'vm2', 'control'].every((n) => fs.existsSync(sock(n))),
    "the socket files are systemd's: mdgpu leaves them in place",
  );
  t.match(stderr, /info: vm1: listening on /, 'log lines carry their level and vGPU');
});

t.test('socket activation with a real guest: a Linux guest boots, its QEMU starts mdgpu serve, the driver job runs through the activated socket', async (t) => {
  const kit = await ensureKit();
  const build = await buildGuestDriver(kit, { log: (l) => t.comment(l) });
  const APERTURE = 64 << 20;
  const initrd = await guestImage(kit, build, deviceProbeScript(APERTURE) + driverScript(true), { marker: GUEST_MARKER });
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'mdgpu-activate-guest-'));
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  const sock = (name: string) => path.join(dir, `${name}.sock`);
  const notify = await notifyReceiver(path.join(dir, 'notify'));
  t.teardown(() => notify.close());
  const activate = spawn(
    'systemd-socket-activate',
    [
      '-l',
      sock('vm1'),
      '-l',
      sock('control'),
      '--fdname=vm1:control',
      '-E',
      `NOTIFY_SOCKET=${path.join(dir, 'notify')}`,
      process.execPath,
      path.join(root, 'bin/mdgpu.js'),
      'serve',
      '--aperture',
      '64M',
    ],
    { stdio: ['ignore', 'ignore', 'pipe'] },
  );
  let stderr = '';
  activate.stderr!.setEncoding('utf8').on('data', (c: string) => (stderr += c));
  const done = exited(activate);
  t.teardown(() => activate.kill('SIGKILL'));
  await waitFor(() => ['vm1', 'control'].every((n) => fs.existsSync(sock(n))), 'systemd-socket-activate to listen');

  // The guest's QEMU realizing vfio-user-pci is what starts mdgpu: its first request waits for
  // the daemon and its compute device, hence the longer reply timeout.
  const r = await runGuest(kit, {
    accel: 'tcg',
    initrd,
    vfioUser: [{ socket: sock('vm1'), props: { 'x-msg-timeout': 60_000 } }],
    memoryMiB: 256,
    timeoutMs: 300_000,
  });
  const consoleText = r.output;
  t.comment(`guest boot to poweroff through the activated socket: ${(r.durationMs / 1000).toFixed(1)} s under TCG`);
  t.match(stderr, /Execing .*mdgpu\.js serve/, "the guest's QEMU connecting started mdgpu");
  t.equal(await notify.next(/READY=1/), 'READY=1|STATUS=serving 1 vGPU: vm1', 'READY=1');
  t.notOk(r.timedOut, 'the guest finished before the deadline');
  t.equal(r.code, 0, 'QEMU exited cleanly (the guest powered off)');
  t.match(consoleText, /MDGPU-DEVICE bdf=\S+ vendor=0x4d44 device=0x4750/, 'the guest found the vGPU on its PCI bus');
  for (const step of jobSteps(true))
    t.match(
      consoleText,
      new RegExp(`MDGPU-STEP ${step} ok`),
      `guest step ${step} (${consoleText.match(new RegExp(`MDGPU-STEP ${step} \\S+`))?.[0] ?? 'missing'})`,
    );
  activate.kill('SIGTERM');
  t.same(await done, { code: 0, signal: null }, 'exit 0 on SIGTERM');
});

t.test('a socket unit with Accept=yes is refused, naming the fd', async (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'mdgpu-accept-'));
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  const sock = path.join(dir, 'vm1.sock');
  const activate = spawn(
    'systemd-socket-activate',
    ['--accept', '-l', sock, '--fdname=vm1', process.execPath, path.join(root, 'bin/mdgpu.js'), 'serve', '--no-compute'],
    {
      stdio: ['ignore', 'ignore', 'pipe'],
    },
  );
  let stderr = '';
  activate.stderr!.setEncoding('utf8').on('data', (c: string) => (stderr += c));
  t.teardown(() => activate.kill('SIGKILL'));
  await waitFor(() => fs.existsSync(sock), 'the socket');
  const fd = native.connectUnix(sock);
  t.teardown(() => native.close(fd));
  // With --accept, each connection gets its own child; ours ends with an error.
  await waitFor(() => /error: mdgpu: /.test(stderr), 'the refusal');
  t.match(stderr, /error: mdgpu: socket-activated fd 3 \(vm1\) is a non-listening unix stream socket; mdgpu takes listening Unix stream sockets/);
});

t.test('the protocols in process: LISTEN_PID of another process, sd_notify to an abstract socket, journald detection', async (t) => {
  const env: NodeJS.ProcessEnv = { LISTEN_FDS: '2', LISTEN_PID: String(process.pid + 1), LISTEN_FDNAMES: 'a:b' };
  t.same(takeListenFds(native, env), [], 'variables meant for another process are ignored');
  t.same(env, {}, '...and removed, so no child takes them');
  t.throws(() => takeListenFds(native, { LISTEN_FDS: 'x', LISTEN_PID: String(process.pid) }), /LISTEN_FDS=x/);
  const file = fs.openSync(fileURLToPath(import.meta.url), 'r');
  t.teardown(() => fs.closeSync(file));
  let refusal: unknown = null;
  try {
    native.adoptSocket(file);
  } catch (err) {
    refusal = err;
  }
  t.ok(isErrno(refusal, 'ENOTSOCK'), `adoptSocket refuses a file (${String(refusal)})`);

  const abstract = `@mdgpu-test-notify-${process.pid}`;
  const notify = await notifyReceiver(abstract);
  t.teardown(() => notify.close());
  t.equal(notifySocket({ NOTIFY_SOCKET: abstract }), abstract);
  t.equal(notifySocket({ NOTIFY_SOCKET: 'vsock:2:1' }), null, 'an address mdgpu cannot use is no socket');
  t.equal(sdNotify(native, { STATUS: 'line one\nline two', READY: 1 }, { NOTIFY_SOCKET: abstract }), null);
  t.equal(await notify.next(/STATUS=/), 'STATUS=line one line two|READY=1', 'one datagram; a value cannot break the key=value lines');
  t.equal(sdNotify(native, { READY: 1 }, {}), null, 'no NOTIFY_SOCKET: nothing sent, no error');
  const gone = sdNotify(native, { READY: 1 }, { NOTIFY_SOCKET: path.join(os.tmpdir(), `mdgpu-no-such-${process.pid}`) });
  t.ok(gone !== null && isErrno(gone, 'ENOENT'), 'a manager that went away is an error returned, not thrown');

  const st = fs.fstatSync(2);
  t.equal(stderrIsJournal({ JOURNAL_STREAM: `${st.dev}:${st.ino}` }), true, "stderr is journald's stream when JOURNAL_STREAM names it");
  t.equal(stderrIsJournal({ JOURNAL_STREAM: `${st.dev}:${st.ino + 1}` }), false, 'inherited from a parent whose stderr it was: not ours');
  t.equal(stderrIsJournal({}), false);
});
