/**
 * Prometheus metrics (prom-client): `/metrics` of a real daemon (compute worker on lavapipe)
 * exposes the per-vGPU latency histograms, and they move when a guest played over the real
 * vfio-user socket works (trapped register accesses, submissions with fences); the status
 * metrics keep their names and types; Node's default process metrics are there.
 */
import t from 'tap';
import * as fs from 'node:fs';
import * as http from 'node:http';
import * as os from 'node:os';
import * as path from 'node:path';
import { startDaemon } from '../../src/cli/daemon.js';
import { startControl } from '../../src/cli/control.js';
import { loadNative } from '../../src/native/binding.js';
import { setLogSink } from '../../src/log.js';
import { SocketGuest } from '../helpers/socket-guest.js';

setLogSink(() => {});
const native = loadNative();

function get(port: number, url = '/metrics'): Promise<{ status: number; type: string; body: string }> {
  return new Promise((resolve, reject) => {
    http
      .get(`http://127.0.0.1:${port}${url}`, (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => (body += c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, type: String(res.headers['content-type']), body }));
      })
      .on('error', reject);
  });
}

/** `name{labels} value` samples of the exposition, keyed by the text before the value. */
function samples(text: string): Map<string, number> {
  const out = new Map<string, number>();
  for (const line of text.split('\n')) {
    if (line.startsWith('#') || line.trim() === '') continue;
    const at = line.lastIndexOf(' ');
    out.set(line.slice(0, at), Number(line.slice(at + 1)));
  }
  return out;
}

const HISTOGRAMS = [
  'mdgpu_vgpu_submission_latency_seconds',
  'mdgpu_vgpu_device_wait_seconds',
  'mdgpu_vgpu_batch_device_seconds',
  'mdgpu_vgpu_trapped_access_seconds',
];

t.test('the histograms move when a guest works; the other metrics keep their names', async (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'mdgpu-metrics-'));
  const daemon = startDaemon({
    vgpus: [
      { name: 'vm1', socket: path.join(dir, 'vm1.sock'), apertureSize: 16 << 20 },
      { name: 'vm2', socket: path.join(dir, 'vm2.sock'), apertureSize: 16 << 20 },
    ],
    compute: {},
    metrics: true,
  });
  const control = await startControl(daemon, { socket: null, metricsPort: 0 });
  t.teardown(async () => {
    await control.close();
    await daemon.close();
    fs.rmSync(dir, { recursive: true, force: true });
  });
  const port = control.metricsPort!;

  const before = await get(port);
  t.equal(before.status, 200);
  t.match(before.type, /^text\/plain; version=0\.0\.4/);
  for (const name of HISTOGRAMS) {
    t.match(before.body, new RegExp(`^# TYPE ${name} histogram$`, 'm'), `${name} is a histogram`);
    t.equal(samples(before.body).get(`${name}_count{vgpu="vm1"}`), 0, `${name}: vm1's series exists before its first event`);
  }
  for (const [name, type] of [
    ['mdgpu_vgpu_connected', 'gauge'],
    ['mdgpu_vgpu_used_bytes', 'gauge'],
    ['mdgpu_vgpu_submissions_total', 'counter'],
    ['mdgpu_vgpu_trapped_accesses_total', 'counter'],
    ['mdgpu_vgpu_device_seconds_total', 'counter'],
    ['mdgpu_vgpu_kernel_cache_hits_total', 'counter'],
    ['mdgpu_vgpu_kernel_cache_misses_total', 'counter'],
    ['mdgpu_vgpu_kernel_cache_evictions_total', 'counter'],
    ['mdgpu_vgpu_kernel_cache_idle_bytes', 'gauge'],
    ['mdgpu_device_resets_total', 'counter'],
    ['mdgpu_event_loop_max_seconds', 'gauge'],
    ['mdgpu_uptime_seconds', 'gauge'],
    ['process_cpu_seconds_total', 'counter'],
    ['process_resident_memory_bytes', 'gauge'],
    ['nodejs_eventloop_lag_seconds', 'gauge'],
    ['nodejs_heap_size_used_bytes', 'gauge'],
  ]) {
    t.match(before.body, new RegExp(`^# TYPE ${name} ${type}$`, 'm'), `${name} (${type})`);
  }
  t.equal(samples(before.body).get('mdgpu_vgpu_connected{vgpu="vm1"}'), 0);

  // A guest on vm1, over the real socket: mailbox operations (trapped), then work on a queue.
  const guest = await SocketGuest.connect(native, path.join(dir, 'vm1.sock'));
  t.teardown(() => guest.close());
  const target = await guest.alloc(0x1000);
  const fence = await guest.alloc(0x1000);
  const queue = await guest.queue();
  const submissions = 20;
  for (let i = 1; i <= submissions; i++) await queue.publish(SocketGuest.fillWithFence(target, fence, BigInt(i)));
  await guest.waitCompleted(queue.completed, BigInt(submissions));
  t.equal(guest.view.getBigUint64(fence.offset, true), BigInt(submissions), 'the last fence was written');

  const after = await get(port);
  const a = samples(after.body);
  const b = samples(before.body);
  const count = (m: Map<string, number>, name: string, vgpu = 'vm1') => m.get(`${name}_count{vgpu="${vgpu}"}`) ?? Number.NaN;
  t.equal(count(a, 'mdgpu_vgpu_submission_latency_seconds'), submissions, 'one submission latency per submission');
  t.equal(count(a, 'mdgpu_vgpu_batch_device_seconds'), submissions, 'one batch device time per batch');
  t.equal(count(a, 'mdgpu_vgpu_device_wait_seconds'), submissions, 'one device wait per batch');
  t.ok(
    count(a, 'mdgpu_vgpu_trapped_access_seconds') >= a.get('mdgpu_vgpu_trapped_accesses_total{vgpu="vm1"}')! - 1 &&
      count(a, 'mdgpu_vgpu_trapped_access_seconds') > count(b, 'mdgpu_vgpu_trapped_access_seconds'),
    `trapped accesses timed: ${count(a, 'mdgpu_vgpu_trapped_access_seconds')} (counter: ${a.get('mdgpu_vgpu_trapped_accesses_total{vgpu="vm1"}')})`,
  );
  for (const name of HISTOGRAMS) {
    t.ok(a.get(`${name}_sum{vgpu="vm1"}`)! > 0, `${name}: time was recorded`);
    t.equal(a.get(`${name}_bucket{le="+Inf",vgpu="vm1"}`), count(a, name), `${name}: +Inf bucket = count`);
    const buckets = [...a.entries()].filter(([k]) => k.startsWith(`${name}_bucket{`) && k.includes('vgpu="vm1"')).map(([, v]) => v);
    t.ok(
      buckets.every((v, i) => i === 0 || v >= buckets[i - 1]!),
      `${name}: buckets are cumulative`,
    );
    t.equal(count(a, name, 'vm2'), 0, `${name}: vm2 did nothing`);
  }
  t.equal(a.get('mdgpu_vgpu_connected{vgpu="vm1"}'), 1);
  t.equal(a.get('mdgpu_vgpu_submissions_total{vgpu="vm1"}'), submissions);
  t.ok(a.get('process_cpu_seconds_total')! > 0);

  t.equal((await get(port, '/other')).status, 404);
});

t.test('metrics need a daemon that keeps them', async (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'mdgpu-nometrics-'));
  const daemon = startDaemon({ vgpus: [{ name: 'vm1', socket: path.join(dir, 'vm1.sock'), apertureSize: 1 << 20 }] });
  t.teardown(async () => {
    await daemon.close();
    fs.rmSync(dir, { recursive: true, force: true });
  });
  t.equal(daemon.metrics, null, 'no histograms, no hooks');
  await t.rejects(startControl(daemon, { socket: null, metricsPort: 0 }), /keeps none/);
});
