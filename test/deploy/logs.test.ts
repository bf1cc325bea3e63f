/**
 * Logs an operator's tools read: one line per event with its level and vGPU, `--log-format json`
 * for shippers, syslog priorities when stderr is journald's, and the rate limit on what a guest
 * can cause kept in every format. In process, and from `mdgpu serve` as a process.
 */
import t from 'tap';
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { clientInfo, error, formatRecord, guestError, info, setLogFormat, setLogSink, setLogVgpus, setTrace, tracer, warn } from '../../src/log.js';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');

t.test('text and json lines: level, vGPU, message; journald priorities', (t) => {
  const lines: string[] = [];
  const previous = setLogSink((l) => lines.push(l));
  t.teardown(() => {
    setLogSink(previous);
    setLogFormat('text');
    setLogVgpus([]);
    setTrace('');
  });
  setLogVgpus(['vm1', 'vm-2']);
  info('vm1: listening on /run/mdgpu/vm1.sock');
  warn('vm-2: accept failed: EMFILE');
  info('mdgpu: 2 vGPUs sharing llvmpipe');
  info('vm3: not a vGPU of this daemon: the text stays as it is');
  error('mdgpu: --metrics: must be an integer from 0 to 65535, got 99999');
  warn('vm1: internal error handling RegionRead: Error: boom\n    at x (y.js:1:1)');
  t.same(lines, [
    'info: vm1: listening on /run/mdgpu/vm1.sock',
    'warning: vm-2: accept failed: EMFILE',
    'info: mdgpu: 2 vGPUs sharing llvmpipe',
    'info: vm3: not a vGPU of this daemon: the text stays as it is',
    'error: mdgpu: --metrics: must be an integer from 0 to 65535, got 99999',
    'warning: vm1: internal error handling RegionRead: Error: boom\\n    at x (y.js:1:1)',
  ]);

  lines.length = 0;
  setLogFormat('json');
  info('vm1: client connected');
  guestError('vm1-test-json', 'vm1: MMIO write to unknown register 0x40');
  setTrace('regs');
  tracer('regs')(() => 'vm1: read ID');
  const records = lines.map((l) => JSON.parse(l) as Record<string, unknown>);
  t.equal(records.length, 3, 'one JSON object per line');
  t.match(records[0], { level: 'info', vgpu: 'vm1', msg: 'client connected' });
  t.match(records[1], { level: 'warning', vgpu: 'vm1', msg: 'guest error: MMIO write to unknown register 0x40' });
  t.match(records[2], { level: 'debug', vgpu: 'vm1', tracer: 'regs', msg: 'read ID' });
  t.ok(
    records.every((r) => typeof r.time === 'string' && !Number.isNaN(Date.parse(r.time as string))),
    'each has an ISO time (shippers read files, not only the journal)',
  );

  t.equal(formatRecord({ level: 'warning', vgpu: 'vm1', msg: 'x' }, 'text', true), '<4>warning: vm1: x', 'journald: priority 4 for a warning');
  t.equal(formatRecord({ level: 'error', msg: 'x' }, 'text', true), '<3>error: x');
  t.equal(formatRecord({ level: 'info', msg: 'x' }, 'text', true), '<6>info: x');
  t.match(formatRecord({ level: 'debug', msg: 'x' }, 'json', true), /^<7>\{"time":/, 'json lines too');
  t.end();
});

t.test('what a guest can cause stays rate-limited, in json too', async (t) => {
  const lines: string[] = [];
  const previous = setLogSink((l) => lines.push(l));
  t.teardown(() => {
    setLogSink(previous);
    setLogFormat('text');
    setLogVgpus([]);
  });
  setLogVgpus(['vm1']);
  setLogFormat('json');
  const rate = { burst: 3, windowMs: 100 };
  for (let i = 0; i < 50; i++) guestError('vm1-flood', `vm1: bad submission ${i}`, rate);
  t.equal(lines.length, 3, '3 lines of 50 in the window');
  await new Promise((r) => setTimeout(r, 150));
  guestError('vm1-flood', 'vm1: bad submission 50', rate);
  const records = lines.map((l) => JSON.parse(l) as Record<string, unknown>);
  t.match(records[3], { level: 'warning', vgpu: 'vm1', suppressed: 47, msg: 'guest error: vm1-flood: 47 similar messages suppressed' });
  t.match(records[4], { vgpu: 'vm1', msg: 'guest error: bad submission 50' });
  lines.length = 0;
  for (let i = 0; i < 20; i++) clientInfo('vm1-conn', 'vm1: client connected', rate);
  t.equal(lines.length, 3, 'connection lines too');
});

t.test('mdgpu serve as a process: json lines on stderr; journald priorities when stderr is the journal', async (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'mdgpu-logs-'));
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  const run = async (args: string[], journal: boolean, compute: boolean): Promise<string[]> => {
    const logFile = path.join(dir, `stderr-${journal}.log`);
    const fd = fs.openSync(logFile, 'w');
    const st = fs.fstatSync(fd);
    const control = path.join(dir, `control-${journal}.sock`);
    const child = spawn(
      process.execPath,
      [
        path.join(root, 'bin/mdgpu.js'),
        ...args,
        'serve',
        '--vgpu',
        `socket=${path.join(dir, `vm-${journal}.sock`)},name=vm1`,
        ...(compute ? [] : ['--no-compute']),
        '--control',
        control,
      ],
      { stdio: ['ignore', 'ignore', fd], env: { ...process.env, ...(journal ? { JOURNAL_STREAM: `${st.dev}:${st.ino}` } : {}) } },
    );
    fs.closeSync(fd);
    const exit = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
    const deadline = Date.now() + 60_000;
    while (!fs.existsSync(control) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    // The compute worker logs its device once it has opened it.
    while (compute && !/compute worker: mdgpu-host: device:/.test(fs.readFileSync(logFile, 'utf8')) && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 20));
    }
    child.kill('SIGTERM');
    t.equal(await exit, 0, 'exit 0 on SIGTERM');
    return fs.readFileSync(logFile, 'utf8').trim().split('\n');
  };
  // With the compute device: the worker's host-driver lines come through the daemon's log too.
  const json = await run(['--log-format', 'json'], false, true);
  const records = json.map((l) => JSON.parse(l) as Record<string, unknown>);
  t.ok(records.length >= 3, `${records.length} lines, each a JSON object`);
  t.match(
    records.find((r) => /listening on/.test(String(r.msg))),
    { level: 'info', vgpu: 'vm1' },
    'the vGPU in its own field',
  );
  t.match(records.at(-1), { level: 'info', msg: /^SIGTERM: shutting down/ });
  t.match(
    records.find((r) => /mdgpu-host: device:/.test(String(r.msg))),
    { level: 'info', msg: /^compute worker: mdgpu-host: device: / },
    "the compute worker's host driver line, as JSON",
  );
  const journal = await run([], true, false);
  t.ok(
    journal.every((l) => /^<[3-7]>(debug|info|warning|error): /.test(l)),
    `every line starts with its priority for journald: ${journal[0]}`,
  );
  t.ok(journal.some((l) => l.startsWith('<6>info: vm1: listening on')));
});
