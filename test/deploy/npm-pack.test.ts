/**
 * The host package: `npm pack` gives a tarball that `npm install -g` (into a temporary prefix,
 * from a clean directory, with no npm configuration of the user's) turns into a working `mdgpu`:
 * the native addon built against this machine's Node headers and the host driver built at install,
 * `mdgpu serve --check-config`, then `mdgpu serve` with the compute device and `mdgpu status`.
 */
import t from 'tap';
import { execFile, spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

const execFileP = promisify(execFile);
const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');

t.test('npm pack, npm install -g into a prefix, mdgpu serve and status from it', async (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'mdgpu-pack-'));
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  // No user npm configuration (no nodedir from ~/.npmrc): what a fresh machine has.
  const npmrc = path.join(dir, 'empty-npmrc');
  fs.writeFileSync(npmrc, '');
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    npm_config_userconfig: npmrc,
    npm_config_update_notifier: 'false',
    npm_config_fund: 'false',
    npm_config_audit: 'false',
  };
  for (const key of Object.keys(env)) if (/^npm_(config_nodedir|package_|lifecycle_)/.test(key) && key !== 'npm_config_userconfig') delete env[key];

  // The TypeScript build is npm test's pretest (and `npm pack`'s prepack): pack what it built.
  t.ok(fs.existsSync(path.join(root, 'build/src/cli/main.js')), 'the TypeScript build exists');
  const packed = await execFileP('npm', ['pack', '--ignore-scripts', '--json', '--pack-destination', dir], { cwd: root, env, maxBuffer: 16 << 20 });
  const pack = (JSON.parse(packed.stdout) as { filename: string; files: { path: string }[] }[])[0]!;
  const files = pack.files.map((f) => f.path);
  for (const f of [
    'bin/mdgpu.js',
    'build/src/cli/main.js',
    'scripts/build-addon.js',
    'native/binding.gyp',
    'native/src/systemd.cc',
    'host-driver/Makefile',
    'host-driver/src/vulkan.c',
    'guest-driver/kmod/Makefile',
    'contrib/systemd/mdgpu.service',
    'contrib/systemd/mdgpu-vgpu@.socket',
    'qemu-configs/libvirt/mdgpu-vm1.xml',
  ]) {
    t.ok(files.includes(f), `the tarball has ${f}`);
  }
  t.notOk(
    files.some((f) => /^(build\/test|test|native\/build|host-driver\/build|node_modules)\//.test(f) || /\/build\/.*\.spv$/.test(f)),
    'no tests, no build outputs, no dependencies in the tarball',
  );

  const prefix = path.join(dir, 'prefix');
  const work = path.join(dir, 'clean');
  fs.mkdirSync(work);
  const install = await execFileP('npm', ['install', '--global', '--prefix', prefix, path.join(dir, pack.filename)], {
    cwd: work,
    env,
    maxBuffer: 64 << 20,
  }).catch((err: { stdout: string; stderr: string; message: string }) => {
    throw new Error(`npm install -g failed: ${err.message}\n${err.stdout}\n${err.stderr}`);
  });
  t.comment(install.stdout.trim().split('\n').at(-1) ?? '');
  const pkg = path.join(prefix, 'lib/node_modules/mdgpu');
  t.ok(fs.existsSync(path.join(pkg, 'native/build/Release/mdgpu_native.node')), 'the native addon was built at install');
  t.ok(fs.existsSync(path.join(pkg, 'host-driver/build/libmdgpu-host.so')), 'the host driver was built at install');
  const mdgpu = path.join(prefix, 'bin/mdgpu');
  t.ok(fs.existsSync(mdgpu), `${mdgpu} on the prefix's PATH`);

  const check = await execFileP(mdgpu, ['serve', '--check-config', '--vgpu', `socket=${path.join(work, 'vm1.sock')},name=vm1,quota=64M`], { cwd: work, env });
  t.match(check.stdout, /configuration OK, 1 vGPU\n {2}vm1: socket .*vm1\.sock, aperture 256 MiB, quota 64 MiB, weight 1/);

  const control = path.join(work, 'control.sock');
  const serve = spawn(mdgpu, ['serve', '--vgpu', `socket=${path.join(work, 'vm1.sock')},name=vm1`, '--control', control], {
    cwd: work,
    env,
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let stderr = '';
  serve.stderr.setEncoding('utf8').on('data', (c: string) => (stderr += c));
  const exit = new Promise<number | null>((resolve) => serve.on('exit', (code) => resolve(code)));
  t.teardown(() => serve.kill('SIGKILL'));
  const deadline = Date.now() + 60_000;
  while (!fs.existsSync(control) && serve.exitCode === null && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
  const status = await execFileP(mdgpu, ['status', '--control', control], { cwd: work, env });
  t.match(status.stdout, /compute: \S+.*\(worker \d+, 0 resets\)/, `the installed host driver runs the compute device: ${status.stdout.split('\n')[0]}`);
  t.match(status.stdout, /vm1\s+waiting/);
  serve.kill('SIGTERM');
  t.equal(await exit, 0, `mdgpu serve ends cleanly (${stderr.trim().split('\n').at(-1)})`);
});
