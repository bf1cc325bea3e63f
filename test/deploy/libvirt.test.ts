/**
 * libvirt: the domain of qemu-configs/libvirt/mdgpu-vm1.xml, run by libvirt's own QEMU driver
 * (libvirt 12.9 from trixie-backports, `virt-qemu-run`: the embedded driver, no daemon) against
 * `mdgpu serve`, boots the guest and the guest job runs: the driver loads, mdgpu-smoke passes,
 * compute results check in the guest. libvirt runs as it does on a Debian host, in a chroot of
 * the kit (an overlay, so the shared kit is never written): QEMU as libvirt-qemu under its
 * seccomp sandbox, guest RAM in a shared memfd, the vfio-user device from <qemu:commandline>.
 * mdgpu runs on the host; its socket directory is bind-mounted at /run/mdgpu.
 */
import t from 'tap';
import { execFile, spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as http from 'node:http';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { ensureKit } from '../../src/kit/kit.js';
import { CHROOT_ENV, withMounts } from '../../src/kit/chroot.js';
import { buildGuestDriver } from '../../src/guest/build.js';
import { guestImage } from '../../src/guest/image.js';
import { deviceProbeScript, driverScript, GUEST_MARKER, jobSteps } from '../../src/cli/guest-script.js';
import { parseGuestView } from '../../src/cli/guest-output.js';
import { queryStatus } from '../../src/cli/control.js';
import { resolveGroup } from '../../src/cli/vgpu-config.js';

const execFileP = promisify(execFile);
const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');
const DOMAIN = path.join(root, 'qemu-configs/libvirt/mdgpu-vm1.xml');
const APERTURE = 256 << 20;
/** Where the domain XML expects things, inside the chroot. */
const GUEST_DIR = '/var/lib/mdgpu/guest';
const LIBVIRT_ROOT = '/var/lib/mdgpu/libvirt';

async function waitFor(cond: () => boolean, what: string, ms: number): Promise<void> {
  const deadline = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`Timed out after ${ms / 1000} s waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

const read = (file: string) => {
  try {
    return fs.readFileSync(file, 'utf8');
  } catch {
    return '';
  }
};

t.test('libvirt boots the mdgpu domain against mdgpu serve and the guest job runs', async (t) => {
  const kit = await ensureKit();
  t.ok(
    fs.existsSync(path.join(kit.root, 'usr/bin/virt-qemu-run')),
    `the kit has libvirt's QEMU driver (${kit.info.packages['libvirt-daemon-driver-qemu'] ?? 'virt-qemu-run'})`,
  );
  const build = await buildGuestDriver(kit);
  const initrd = await guestImage(kit, build, deviceProbeScript(APERTURE) + driverScript(true), { marker: GUEST_MARKER });

  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'mdgpu-libvirt-'));
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  const sockets = path.join(dir, 'run-mdgpu');
  fs.mkdirSync(sockets, { mode: 0o755 });
  fs.chmodSync(sockets, 0o755);

  // mdgpu serve, its socket in QEMU's group: libvirt runs QEMU as libvirt-qemu, not as root.
  const qemuGid = resolveGroup('libvirt-qemu', path.join(kit.root, 'etc/group'));
  const control = path.join(dir, 'control.sock');
  const serve = spawn(
    process.execPath,
    [
      path.join(root, 'bin/mdgpu.js'),
      'serve',
      '--vgpu',
      `socket=${path.join(sockets, 'vm1.sock')},name=vm1,aperture=256M,quota=128M`,
      '--socket-group',
      String(qemuGid),
      '--socket-mode',
      '0660',
      '--control',
      control,
      '--metrics',
      '0',
    ],
    { stdio: ['ignore', 'ignore', 'pipe'] },
  );
  let serveLog = '';
  serve.stderr!.setEncoding('utf8').on('data', (c: string) => (serveLog += c));
  const serveExit = new Promise<number | null>((resolve) => serve.on('exit', (code) => resolve(code)));
  t.teardown(() => serve.kill('SIGKILL'));
  await waitFor(() => fs.existsSync(control) && /metrics on http:\/\/127\.0\.0\.1:(\d+)/.test(serveLog), 'mdgpu serve', 60_000);
  const metricsPort = Number(/metrics on http:\/\/127\.0\.0\.1:(\d+)/.exec(serveLog)![1]);
  const st = fs.statSync(path.join(sockets, 'vm1.sock'));
  t.same([st.mode & 0o777, st.gid], [0o660, qemuGid], 'the vfio-user socket: 0660, group libvirt-qemu');

  // The chroot: the kit as the lower layer of an overlay; a /dev without /dev/kvm (KVM is not
  // usable here, and libvirt would probe it over and over); mdgpu's socket directory at /run/mdgpu.
  const chroot = path.join(dir, 'root');
  for (const d of ['upper', 'work', 'root']) fs.mkdirSync(path.join(dir, d));
  const mounts = [
    {
      target: chroot,
      args: [
        '-t',
        'overlay',
        'overlay',
        '-o',
        `lowerdir=${kit.root},upperdir=${dir}/upper,workdir=${dir}/work,index=off,redirect_dir=off,metacopy=off,xino=off`,
      ],
    },
    { target: path.join(chroot, 'proc'), args: ['-t', 'proc', 'proc'] },
    { target: path.join(chroot, 'sys'), args: ['-t', 'sysfs', 'sysfs'] },
    { target: path.join(chroot, 'dev'), args: ['-t', 'tmpfs', '-o', 'mode=755,size=1m', 'devtmp'] },
    { target: path.join(chroot, 'run/mdgpu'), args: ['--bind', sockets] },
  ];
  // The overlay must exist before the mount points inside it are made.
  const prepare = (at: string) => fs.mkdirSync(at, { recursive: true });
  await withMounts(mounts.slice(0, 1), async () => {
    prepare(path.join(chroot, 'run/mdgpu'));
    prepare(path.join(chroot, GUEST_DIR));
    prepare(path.join(chroot, LIBVIRT_ROOT, 'etc'));
    prepare(path.join(chroot, 'etc/mdgpu'));
    fs.copyFileSync(kit.kernel, path.join(chroot, GUEST_DIR, 'vmlinuz'));
    fs.writeFileSync(path.join(chroot, GUEST_DIR, 'initrd.img'), initrd);
    // The file as shipped, but TCG: these hosts have no usable KVM.
    const xml = fs.readFileSync(DOMAIN, 'utf8');
    t.match(xml, /<domain type='kvm'/);
    fs.writeFileSync(path.join(chroot, 'etc/mdgpu/mdgpu-vm1.xml'), xml.replace("<domain type='kvm'", "<domain type='qemu'"));
    // The embedded driver's qemu.conf: QEMU's output to files, as there is no virtlogd to hand it to.
    fs.writeFileSync(path.join(chroot, LIBVIRT_ROOT, 'etc/qemu.conf'), 'stdio_handler = "file"\n');
  });
  const consoleFile = path.join(chroot, GUEST_DIR, 'mdgpu-vm1.console');
  const qemuLog = path.join(chroot, LIBVIRT_ROOT, 'log/qemu/mdgpu-vm1.log');
  const pidFile = path.join(chroot, LIBVIRT_ROOT, 'run/qemu/mdgpu-vm1.pid');

  const started = Date.now();
  let qemuUid: string | null = null;
  let libvirtOut = '';
  let consoleText = '';
  let log = '';
  await withMounts(mounts, async () => {
    for (const [name, major, minor] of [
      ['null', 1, 3],
      ['zero', 1, 5],
      ['full', 1, 7],
      ['random', 1, 8],
      ['urandom', 1, 9],
      ['tty', 5, 0],
    ] as const) {
      await execFileP('mknod', ['-m', '666', path.join(chroot, 'dev', name), 'c', String(major), String(minor)]);
    }
    const run = spawn('chroot', [chroot, '/usr/bin/virt-qemu-run', '--verbose', '--root', LIBVIRT_ROOT, '/etc/mdgpu/mdgpu-vm1.xml'], {
      env: { ...CHROOT_ENV },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    run.stdout.setEncoding('utf8').on('data', (c: string) => (libvirtOut += c));
    run.stderr.setEncoding('utf8').on('data', (c: string) => (libvirtOut += c));
    const runExit = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
      run.on('exit', (code, signal) => resolve({ code, signal })),
    );
    try {
      await waitFor(
        () => {
          // Read on every poll while QEMU lives, the last reading kept: libvirt's child writes
          // the pid file before it drops to libvirt-qemu and execs QEMU, so an early reading
          // can still say root.
          const pid = read(pidFile).trim();
          const uid = pid === '' ? undefined : /^Uid:\s+(\d+)/m.exec(read(`/proc/${pid}/status`))?.[1];
          if (uid !== undefined) qemuUid = uid;
          return /shutting down, reason=/.test(read(qemuLog)) || run.exitCode !== null;
        },
        `the guest job and QEMU's end (virt-qemu-run: ${libvirtOut.trim()})`,
        300_000,
      );
    } finally {
      // virt-qemu-run 12.9 does not return once the guest has powered off (its STOPPED event is
      // dropped: "Domain not found"): end it as its Ctrl-C does, once QEMU is gone.
      // And it can hang in its own cleanup (seen once: a futex wait after QEMU was gone), which
      // would hold the test and the mounts forever: SIGKILL after 15 s.
      if (run.exitCode === null) run.kill('SIGTERM');
      const killer = setTimeout(() => run.kill('SIGKILL'), 15_000);
      await runExit;
      clearTimeout(killer);
    }
    consoleText = read(consoleFile);
    log = read(qemuLog);
  });
  t.comment(`libvirt: domain started and the guest job done in ${((Date.now() - started) / 1000).toFixed(1)} s`);
  t.match(libvirtOut, /guest running/, `virt-qemu-run started the domain (${libvirtOut.trim().split('\n').at(-1)})`);

  // What libvirt made of the XML: the shared memfd, the sandbox, the vfio-user device as given.
  t.match(log, /"qom-type":"memory-backend-memfd","id":"pc\.ram","share":true/, 'guest RAM in a shared memfd (<memoryBacking>)');
  t.match(log, /-sandbox on/, "QEMU under libvirt's seccomp sandbox");
  t.match(
    log,
    /-device '\{"driver":"vfio-user-pci","socket":\{"path":"\/run\/mdgpu\/vm1\.sock","type":"unix"\},"bus":"mdgpu-rp0"/,
    'the vfio-user device from <qemu:commandline>',
  );
  const qemuUser = /^libvirt-qemu:[^:]*:(\d+):/m.exec(read(path.join(kit.root, 'etc/passwd')))?.[1];
  t.equal(qemuUid, qemuUser, `QEMU ran as libvirt-qemu (uid ${qemuUser}), not root`);

  // The guest: the device, the driver, the tools, compute checked in the guest.
  const view = parseGuestView(consoleText);
  t.equal(view.vendor, '0x4d44', `the guest found the vGPU at ${view.bdf}`);
  for (const step of jobSteps(true)) t.match(consoleText, new RegExp(`MDGPU-STEP ${step} ok`), `guest step ${step}`);
  t.match(consoleText, /MDGPU-RUN-RESULT pass=[1-9]\d* fail=0/, 'compute results verified in the guest');
  t.match(consoleText, new RegExp(`${GUEST_MARKER}-END rc=0`));

  // mdgpu's side: one client served, the work seen, the histograms moved.
  const status = await queryStatus(control);
  const vm1 = status.vgpus.find((v) => v.name === 'vm1')!;
  t.equal(vm1.connections, 1, 'QEMU connected once');
  t.ok(vm1.submissions > 0 && vm1.trappedAccesses > 0, `${vm1.submissions} submissions, ${vm1.trappedAccesses} trapped accesses`);
  const metrics = await new Promise<string>((resolve, reject) =>
    http
      .get(`http://127.0.0.1:${metricsPort}/metrics`, (res) => {
        let body = '';
        res.setEncoding('utf8').on('data', (c: string) => (body += c));
        res.on('end', () => resolve(body));
      })
      .on('error', reject),
  );
  const count = (name: string) => Number(new RegExp(`^${name}_count\\{vgpu="vm1"\\} (\\d+)$`, 'm').exec(metrics)?.[1] ?? 0);
  t.equal(count('mdgpu_vgpu_submission_latency_seconds'), vm1.submissions, 'a submission latency per submission');
  t.ok(count('mdgpu_vgpu_trapped_access_seconds') > 0 && count('mdgpu_vgpu_batch_device_seconds') > 0, 'trapped accesses and batches timed');

  serve.kill('SIGTERM');
  t.equal(await serveExit, 0, 'mdgpu serve ends cleanly');
  t.notMatch(serveLog, /warning: vm1: internal error/, 'no internal error');
});
