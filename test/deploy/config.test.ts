/**
 * The configuration schema: every kind of refusal names the setting, where it came from, the
 * allowed range and the value given; `mdgpu serve --check-config` validates without starting
 * (as a process: no socket, no compute device); sockets from systemd are bound to vGPUs by name.
 */
import t from 'tap';
import { execFile } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import {
  checkServeOptions,
  checkUnique,
  checkVgpuDefaults,
  ConfigError,
  configFrom,
  gatherProblems,
  parseResetBudget,
  parseVgpuSpec,
  readConfig,
  resolveGroup,
} from '../../src/cli/vgpu-config.js';
import { bindActivatedSockets } from '../../src/cli/serve.js';
import { DEFAULT_MAX_KERNELS } from '../../src/vgpu/kernels.js';

const execFileP = promisify(execFile);
const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');
const d = { apertureSize: 256 << 20 };

/** The problems a ConfigError carries (fails if `fn` does not throw one). */
function refused(t: { ok: (v: unknown, m: string) => unknown; fail: (m: string) => unknown }, fn: () => unknown): string[] {
  try {
    fn();
  } catch (err) {
    t.ok(err instanceof ConfigError, `a ConfigError: ${(err as Error).message}`);
    return (err as ConfigError).problems;
  }
  t.fail('accepted');
  return [];
}

t.test('--vgpu: each bad setting is named with its range and the value given', (t) => {
  t.same(
    parseVgpuSpec(
      'socket=/a,name=vm1,aperture=64M,quota=32M,weight=2,max-queues=4,max-kernels=8,max-inflight=16,max-contexts=3,max-buffers=99,kernel-cache=0',
      'v',
      d,
    ),
    {
      name: 'vm1',
      socket: '/a',
      apertureSize: 64 << 20,
      quota: 32 << 20,
      weight: 2,
      maxQueues: 4,
      maxKernels: 8,
      maxInFlight: 16,
      maxContexts: 3,
      maxBuffers: 99,
      kernelCache: 0,
    },
  );
  const cases: [string, RegExp][] = [
    ['socket=/a,weight=0', /^--vgpu socket=\/a,weight=0: weight: must be a number from 0\.01 to 1000, got "0"$/],
    ['socket=/a,weight=lots', /weight: must be a number from 0\.01 to 1000, got "lots"/],
    ['socket=/a,aperture=300M', /aperture: must be a power of two from 64K to 64G \(e\.g\. 256M, 1G\), got "300M"/],
    ['socket=/a,aperture=32K', /aperture: must be a power of two from 64K to 64G/],
    ['socket=/a,aperture=128G', /aperture: must be a power of two from 64K to 64G/],
    ['socket=/a,quota=lots', /quota: must be a size from 0 to 64G/],
    ['socket=/a,aperture=64M,quota=128M', /quota: must be at most the aperture \(64M\), got 128M/],
    ['socket=/a,max-queues=0', /max-queues: must be an integer from 1 to 1024, got "0"/],
    ['socket=/a,max-queues=2.5', /max-queues: must be an integer from 1 to 1024, got "2\.5"/],
    ['socket=/a,max-kernels=100000', new RegExp(`max-kernels: must be an integer from 1 to ${16 * DEFAULT_MAX_KERNELS}`)],
    ['socket=/a,max-inflight=0', /max-inflight: must be an integer from 1 to 4096/],
    ['socket=/a,max-contexts=-1', /max-contexts: must be an integer from 1 to 4096, got "-1"/],
    ['socket=/a,max-buffers=0', /max-buffers: must be an integer from 1 to 1048576/],
    ['socket=/a,kernel-cache=-1', /kernel-cache: must be an integer from 0 to 4096, got "-1"/],
    ['socket=/a,kernel-cache=5000', /kernel-cache: must be an integer from 0 to 4096/],
    ['socket=/a,name=vm 1', /name: must be 1 to 32 of A-Z a-z 0-9 _ \. - \(not "control"\), got "vm 1"/],
    ['socket=/a,name=control', /name: must be .*not "control"/],
    [`socket=/a,name=${'x'.repeat(33)}`, /name: must be 1 to 32/],
    [`socket=/${'s'.repeat(120)}`, /socket: must be a socket path of 1 to 107 bytes/],
    ['socket=/a,colour=red', /unknown vGPU setting "colour" \(allowed: socket, name, aperture, quota, weight, max-queues/],
    ['aperture=1M', /socket: required/],
    ['socket=/a,weight', /expected key=value, got "weight"/],
  ];
  for (const [spec, message] of cases) {
    const problems = refused(t, () => parseVgpuSpec(spec, 'v', d));
    t.match(problems.join('\n'), message, spec);
  }
  // Several mistakes in one spec: all of them at once.
  t.equal(refused(t, () => parseVgpuSpec('socket=/a,weight=0,max-queues=0,colour=red', 'v', d)).length, 3, 'every problem of a spec, not just the first');
  t.end();
});

t.test('config files: the document, each entry, each setting', (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'mdgpu-config-'));
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  const file = path.join(dir, 'mdgpu.json');
  const write = (doc: unknown) => fs.writeFileSync(file, typeof doc === 'string' ? doc : JSON.stringify(doc));

  write({ vgpus: [{ name: 'vm1', socket: '/run/mdgpu/vm1.sock', aperture: '64M', quota: 33554432, weight: 3 }, { name: 'vm2' }] });
  t.same(readConfig(file, d), [
    { name: 'vm1', socket: '/run/mdgpu/vm1.sock', apertureSize: 64 << 20, quota: 32 << 20, weight: 3 },
    { name: 'vm2', socket: '', apertureSize: 256 << 20 },
  ]);

  write('{ "vgpus": [ ');
  t.match(refused(t, () => readConfig(file, d))[0], new RegExp(`^${file}: .*JSON`), 'a syntax error names the file');
  write({ vgpu: [] });
  t.match(refused(t, () => readConfig(file, d))[0], /expected \{ "vgpus": \[/);
  write({ vgpus: [1] });
  t.match(refused(t, () => readConfig(file, d))[0], /expected \{ "vgpus"/);
  t.match(refused(t, () => configFrom('f.json', { vgpus: Array.from({ length: 257 }, () => ({})) }, d))[0], /at most 256/);
  write({ vgpus: [{ name: 'vm1', weight: 0, quota: '1G' }, { name: 'vm2', 'max-queues': 5000, socket: 7 }, { colour: 'red' }] });
  const problems = refused(t, () => readConfig(file, d));
  t.equal(problems.length, 4, 'one line per problem, every entry checked');
  t.match(problems.join('\n'), /vgpus\[0\]\.weight: must be a number from 0\.01 to 1000, got 0/);
  t.match(problems.join('\n'), /vgpus\[1\]\.max-queues: must be an integer from 1 to 1024, got 5000/);
  t.match(problems.join('\n'), /vgpus\[1\]\.socket: must be a socket path of 1 to 107 bytes, got 7/);
  t.match(problems.join('\n'), /vgpus\[2\]: unknown vGPU setting "colour"/);
  write({ vgpus: [{ name: 'vm1', aperture: '256M', quota: '1G' }] });
  t.match(refused(t, () => readConfig(file, d))[0], /vgpus\[0\]\.quota: must be at most the aperture \(256M\), got 1G/);
  t.match(refused(t, () => readConfig(path.join(dir, 'missing.json'), d))[0], /missing\.json: ENOENT/);
  t.end();
});

t.test('daemon-wide options and defaults: ranges named', (t) => {
  t.same(checkServeOptions({ 'time-slice': 2, 'batch-limit': 10000, metrics: 9400, 'socket-mode': '0660', 'kernel-build-memory': '2G' }), {
    'time-slice': 2,
    'batch-limit': 10000,
    metrics: 9400,
    'socket-mode': 0o660,
    'kernel-build-memory': 2 ** 31,
  });
  const all = refused(t, () =>
    checkServeOptions({
      'msix-vectors': 0,
      'time-slice': 0,
      'batch-limit': -5,
      'kernel-build-limit': 10,
      'kernel-build-memory': '1M',
      metrics: 70000,
      'socket-mode': '0066',
    }),
  );
  t.same(all, [
    '--msix-vectors: must be an integer from 1 to 256, got 0',
    '--time-slice: must be a number of ms from 0.05 to 1000, got 0',
    '--batch-limit: must be an integer from 1 to 3600000, got -5',
    '--kernel-build-limit: must be an integer from 100 to 600000, got 10',
    '--kernel-build-memory: must be a size from 64M to 64G (e.g. 256M, 1G), got "1M"',
    '--metrics: must be an integer from 0 to 65535, got 70000',
    '--socket-mode: must be an octal mode from 0600 to 0777 that keeps the owner\'s rw (e.g. 0660), got "0066"',
  ]);
  t.same(checkVgpuDefaults('64M', '32M'), { apertureSize: 64 << 20, quota: 32 << 20 });
  t.same(
    refused(t, () => checkVgpuDefaults('100M', 'x')),
    ['--aperture: must be a power of two from 64K to 64G (e.g. 256M, 1G), got "100M"', '--quota: must be a size from 0 to 64G (e.g. 256M, 1G), got "x"'],
  );
  t.same(parseResetBudget('3/60'), { strikes: 3, windowMs: 60_000, coolOffMs: 60_000 });
  t.match(refused(t, () => parseResetBudget('3'))[0], /--reset-budget: must be N\/SECONDS with N from 0 to 1000 and SECONDS from 1 to 86400/);
  t.match(refused(t, () => parseResetBudget('3/0'))[0], /--reset-budget/);
  const groups = path.join(os.tmpdir(), `mdgpu-group-${process.pid}`);
  fs.writeFileSync(groups, 'root:x:0:\nkvm:x:993:libvirt-qemu\n');
  t.teardown(() => fs.rmSync(groups));
  t.equal(resolveGroup('kvm', groups), 993);
  t.equal(resolveGroup('64055', groups), 64055);
  t.match(refused(t, () => resolveGroup('render', groups))[0], /--socket-group: no group named "render"/);
  t.end();
});

t.test('names and sockets are unique across --vgpu and the config file', (t) => {
  const a = parseVgpuSpec('socket=/a,name=vm1', 'x', d);
  const b = parseVgpuSpec('socket=/b,name=vm1', 'y', d);
  const c = parseVgpuSpec('socket=/a,name=vm3', 'z', d);
  t.same(
    refused(t, () => checkUnique([a, b, c])),
    ['vGPU 2 (vm1): name: vm1 is already used by vGPU 1 (vm1)', 'vGPU 3 (vm3): socket: /a is already used by vGPU 1 (vm1)'],
  );
  t.same(
    refused(t, () => gatherProblems([() => parseVgpuSpec('socket=/a,weight=0', 'v', d), () => parseVgpuSpec('socket=/b,aperture=3M', 'w', d)])).length,
    2,
    'problems of several sources are gathered',
  );
  t.end();
});

t.test('sockets from systemd: bound by name, by path, by template instance; the rest refused', (t) => {
  const vm1 = { name: 'vm1', socket: '', apertureSize: 1 << 20, weight: 2 };
  const vm2 = { name: 'vm2', socket: '/run/mdgpu/other.sock', apertureSize: 1 << 20 };
  const r = bindActivatedSockets(
    [vm1, vm2],
    [
      { fd: 3, name: 'vm1', path: '/run/mdgpu/vm1.sock' },
      { fd: 4, name: 'unknown', path: '/run/mdgpu/other.sock' },
      { fd: 5, name: 'mdgpu-vgpu@vm3.socket', path: '/run/mdgpu/vm3.sock' },
      { fd: 6, name: 'control', path: '/run/mdgpu/control.sock' },
    ],
    d,
  );
  t.equal(r.controlFd, 6, 'the fd named control is the control socket');
  t.same(r.vgpus, [
    { name: 'vm1', socket: '/run/mdgpu/vm1.sock', apertureSize: 1 << 20, weight: 2, listenFd: 3 },
    { name: 'vm2', socket: '/run/mdgpu/other.sock', apertureSize: 1 << 20, listenFd: 4 },
    { name: 'vm3', socket: '/run/mdgpu/vm3.sock', apertureSize: 256 << 20, listenFd: 5 },
  ]);
  t.same(vm1.socket, '', "the caller's configs are not changed");
  t.match(refused(t, () => bindActivatedSockets([], [{ fd: 3, name: 'my socket!', path: '/x' }], d))[0], /fd 3 is named "my socket!": name it after its vGPU/);
  t.match(
    refused(t, () =>
      bindActivatedSockets(
        [{ ...vm1 }],
        [
          { fd: 3, name: 'vm1', path: '/a' },
          { fd: 4, name: 'vm1', path: '/b' },
        ],
        d,
      ),
    )[0],
    /vGPU vm1: systemd passed two sockets for it \(fds 3 and 4\)/,
  );
  t.match(
    refused(t, () => bindActivatedSockets([{ ...vm1 }], [], d))[0],
    /vGPU vm1: socket: required \(socket= in the config, or a socket unit with FileDescriptorName=vm1\)/,
  );
  t.end();
});

t.test('mdgpu serve --check-config: prints the vGPUs, or every problem, and starts nothing', async (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'mdgpu-check-'));
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  const file = path.join(dir, 'mdgpu.json');
  fs.writeFileSync(
    file,
    JSON.stringify({
      vgpus: [
        { name: 'vm1', quota: '128M' },
        { name: 'vm2', socket: path.join(dir, 'vm2.sock'), weight: 2 },
      ],
    }),
  );
  const mdgpu = (...args: string[]) =>
    execFileP(process.execPath, [path.join(root, 'bin/mdgpu.js'), ...args], { encoding: 'utf8' }).then(
      (r) => ({ code: 0, ...r }),
      (e: { code: number; stdout: string; stderr: string }) => ({ code: e.code, stdout: e.stdout, stderr: e.stderr }),
    );
  const ok = await mdgpu('serve', '--check-config', '--config', file, '--control', path.join(dir, 'control.sock'));
  t.equal(ok.code, 0, ok.stderr);
  t.match(ok.stdout, /configuration OK, 2 vGPUs/);
  t.match(ok.stdout, /vm1: socket from systemd \(FileDescriptorName=vm1\), aperture 256 MiB, quota 128 MiB, weight 1/);
  t.match(ok.stdout, /vm2: socket .*vm2\.sock, aperture 256 MiB, quota the whole aperture, weight 2/);
  t.same(fs.readdirSync(dir), ['mdgpu.json'], 'no socket created');

  const bad = await mdgpu(
    'serve',
    '--check-config',
    '--vgpu',
    'socket=/a,weight=0,aperture=3M',
    '--vgpu',
    'socket=/b,colour=red',
    '--config',
    file,
    '--time-slice',
    '2',
  );
  t.equal(bad.code, 1);
  const lines = bad.stderr.trim().split('\n');
  t.same(lines, [
    'error: mdgpu: --vgpu socket=/a,weight=0,aperture=3M: aperture: must be a power of two from 64K to 64G (e.g. 256M, 1G), got "3M"',
    'error: mdgpu: --vgpu socket=/a,weight=0,aperture=3M: weight: must be a number from 0.01 to 1000, got "0"',
    'error: mdgpu: --vgpu socket=/b,colour=red: unknown vGPU setting "colour" (allowed: socket, name, aperture, quota, weight, max-queues, max-kernels, max-inflight, max-contexts, max-buffers, kernel-cache)',
  ]);
  t.notMatch(bad.stderr, /at .*\.js:\d+/, 'no stack trace');
  const json = await mdgpu('--log-format', 'json', 'serve', '--check-config', '--socket', '/a', '--metrics', '99999');
  t.equal(json.code, 1);
  const record = JSON.parse(json.stderr.trim()) as Record<string, string>;
  t.equal(record.level, 'error');
  t.equal(record.msg, 'mdgpu: --metrics: must be an integer from 0 to 65535, got 99999');
  // The example configuration shipped with the systemd units.
  const shipped = await mdgpu('serve', '--check-config', '--config', path.join(root, 'contrib/systemd/mdgpu.json'));
  t.equal(shipped.code, 0, shipped.stderr);
  t.match(
    shipped.stdout,
    /configuration OK, 2 vGPUs\n {2}vm1: socket from systemd \(FileDescriptorName=vm1\), aperture 256 MiB, quota 128 MiB, weight 1\n {2}vm2: .*weight 2/,
  );
  const none = await mdgpu('serve', '--check-config');
  t.equal(none.code, 1);
  t.match(none.stderr, /no vGPU: give --socket, --vgpu or --config/);
});
