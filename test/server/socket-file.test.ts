/**
 * Who may connect to the daemon's sockets: files created 0600 whatever the umask (or the mode and
 * group the operator chose), never a second server on a live socket, a stale one replaced.
 */
import t from 'tap';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { nativeHostOps } from '../../src/cli/host-ops.js';
import { VfioUserServer } from '../../src/server/server.js';
import { claimSocketPath, createSocketFile, DEFAULT_SOCKET_MODE } from '../../src/server/socket-file.js';
import { MdgpuDevice } from '../../src/vgpu/device.js';
import { VfioUserClient } from '../../src/client/client.js';
import { startControl } from '../../src/cli/control.js';
import type { RunningDaemon } from '../../src/cli/daemon.js';
import { native } from '../helpers/served-device.js';

function scratchDir(t: { teardown(fn: () => void): void }): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'mdgpu-sockfile-'));
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  return dir;
}

function modeOf(file: string): number {
  return fs.statSync(file).mode & 0o777;
}

t.test('a vGPU socket is 0600 even under umask 0', (t) => {
  const dir = scratchDir(t);
  const device = new MdgpuDevice({ name: 'perm', apertureSize: 1 << 20, host: nativeHostOps(native) });
  const server = new VfioUserServer({ socketPath: path.join(dir, 'v.sock'), device: device.pci, native });
  const old = process.umask(0);
  try {
    server.listen();
  } finally {
    process.umask(old);
  }
  t.teardown(() => {
    server.close();
    device.close();
  });
  t.equal(modeOf(path.join(dir, 'v.sock')), DEFAULT_SOCKET_MODE);
  t.equal(process.umask(), old, 'the umask is restored');
  t.end();
});

t.test('mode and group are settable: 0660 for the group QEMU runs in', (t) => {
  const dir = scratchDir(t);
  const socket = path.join(dir, 'g.sock');
  const group = os.userInfo().gid;
  const fd = createSocketFile(socket, { mode: 0o660, group }, () => native.listenUnix(socket, 1));
  t.teardown(() => native.close(fd));
  t.equal(modeOf(socket), 0o660);
  t.equal(fs.statSync(socket).gid, group);
  t.throws(() => createSocketFile(path.join(dir, 'x.sock'), { mode: 0o1777 }, () => 0), RangeError);
  t.end();
});

t.test('a live socket is never taken over; a stale one is replaced; other files are left alone', (t) => {
  const dir = scratchDir(t);
  const socket = path.join(dir, 'live.sock');
  const device = new MdgpuDevice({ name: 'live', apertureSize: 1 << 20, host: nativeHostOps(native) });
  const first = new VfioUserServer({ socketPath: socket, device: device.pci, native });
  first.listen();
  t.teardown(() => device.close());
  const second = new VfioUserServer({ socketPath: socket, device: device.pci, native });
  t.throws(() => second.listen(), /already listening/, 'a second server on a live socket is refused');
  t.ok(fs.existsSync(socket), "and the first server's socket is still there");
  const client = VfioUserClient.connect(native, socket);
  client.close();

  // A server that died without cleaning up leaves a socket nobody listens on.
  const staleFd = native.listenUnix(path.join(dir, 'stale.sock'), 1);
  native.close(staleFd);
  t.doesNotThrow(() => claimSocketPath(path.join(dir, 'stale.sock'), native.unixSocketListening));
  t.notOk(fs.existsSync(path.join(dir, 'stale.sock')), 'stale socket removed');
  fs.writeFileSync(path.join(dir, 'file'), 'keep');
  t.throws(() => claimSocketPath(path.join(dir, 'file'), native.unixSocketListening), /not a socket/);
  t.equal(fs.readFileSync(path.join(dir, 'file'), 'utf8'), 'keep');
  t.doesNotThrow(() => claimSocketPath(path.join(dir, 'absent'), native.unixSocketListening));
  first.close();
  t.end();
});

t.test('unixSocketListening: live, stale, absent', (t) => {
  const dir = scratchDir(t);
  const socket = path.join(dir, 'p.sock');
  const fd = native.listenUnix(socket, 1);
  t.equal(native.unixSocketListening(socket), true);
  native.close(fd);
  t.equal(native.unixSocketListening(socket), false);
  t.throws(() => native.unixSocketListening(path.join(dir, 'none')), { code: 'ENOENT' });
  t.end();
});

t.test('the control socket: 0600 whatever the umask, never two daemons on one', async (t) => {
  const dir = scratchDir(t);
  const socket = path.join(dir, 'control.sock');
  // Listening needs no daemon state; status requests are tested in test/e2e/daemon.test.ts.
  const daemon = {} as RunningDaemon;
  const old = process.umask(0);
  let control: Awaited<ReturnType<typeof startControl>>;
  try {
    control = await startControl(daemon, { socket, metricsPort: null });
  } finally {
    process.umask(old);
  }
  t.teardown(() => control.close());
  t.equal(modeOf(socket), 0o600);
  await t.rejects(startControl(daemon, { socket, metricsPort: null }), /already listening/);
  t.ok(fs.existsSync(socket), "the running daemon's control socket is left alone");
});
