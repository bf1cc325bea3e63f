/**
 * Observability: the daemon's state per vGPU, served as JSON on a local control socket (for
 * `mdgpu status`) and as Prometheus text on an optional HTTP listener bound to localhost.
 */
import * as http from 'node:http';
import * as net from 'node:net';
import { Counter, Gauge } from 'prom-client';
import { info, warn } from '../log.js';
import { IsolatedDevice } from '../backend/isolated.js';
import type { KernelBuilderStats } from '../backend/kernel-builder.js';
import { loadNative } from '../native/binding.js';
import { claimSocketPath, createSocketFile, type SocketFileOptions } from '../server/socket-file.js';
import type { RunningDaemon } from './daemon.js';
import type { DaemonMetrics } from './metrics.js';

export interface VgpuStatus {
  name: string;
  socket: string;
  connected: boolean;
  connections: number;
  apertureBytes: number;
  quotaBytes: number;
  usedBytes: number;
  contexts: number;
  buffers: number;
  queues: number;
  kernels: number;
  submissions: number;
  submissionErrors: number;
  mailboxOperations: number;
  mailboxFailures: number;
  lostContexts: number;
  weight: number;
  deviceNs: number;
  deviceShare: number;
  batchesWaitingNs: number;
  timeouts: number;
  /** Device resets this VM's batches caused, and its cool-offs (src/sched/strikes.ts). */
  resets: number;
  coolOffs: number;
  /** ISO time its cool-off ends, while it is cooled off. */
  coolingOffUntil: string | null;
  /** Batches refused because it was cooling off. */
  throttled: number;
  /** Kernel builds in progress, and builds that failed by time or memory. */
  kernelBuilds: number;
  kernelBuildFaults: number;
  /**
   * The VM's kernel cache (src/vgpu/kernel-cache.ts): creations answered from it and built,
   * idle entries evicted, entries held (in use and idle), and the bytes of idle ones — part of
   * `usedBytes`, given back on demand, not counted in what the guest reads as USED.
   */
  kernelCacheHits: number;
  kernelCacheMisses: number;
  kernelCacheEvictions: number;
  kernelCacheEntries: number;
  kernelCacheIdleBytes: number;
  /** Buffers freed (or taken by a reset) that work still on the device keeps out of the allocator. */
  quarantinedBuffers: number;
  trappedAccesses: number;
  msixInterrupts: number;
  dmaMappings: number;
}

export interface DaemonStatus {
  uptimeSeconds: number;
  computeDevice: string | null;
  /** The worker process running the compute device's batches (null: none, or restarting). */
  computeWorkerPid: number | null;
  /** Times the compute device was reset (a batch past the time limit, or a worker that died). */
  computeResets: number;
  /** The kernel builder process and what it did (null without a compute device). */
  kernelBuilder: ({ pid: number | null } & KernelBuilderStats) | null;
  /**
   * How long the daemon's event loop was held, since start or the last `reset-event-loop`:
   * every VM's traps and queues wait while it is (perf_hooks' loop delay, ms).
   */
  eventLoop: { maxMs: number; p99Ms: number; meanMs: number };
  vgpus: VgpuStatus[];
}

export function daemonStatus(daemon: RunningDaemon): DaemonStatus {
  const shares = new Map(daemon.scheduler.stats().map((s) => [s.name, s]));
  return {
    uptimeSeconds: (Date.now() - daemon.startedAt) / 1000,
    computeDevice: daemon.compute?.info.name ?? null,
    computeWorkerPid: daemon.compute?.workerPid ?? null,
    computeResets: daemon.compute?.resets ?? 0,
    kernelBuilder: daemon.compute instanceof IsolatedDevice ? { pid: daemon.compute.builder.pid, ...daemon.compute.builder.stats } : null,
    eventLoop: {
      maxMs: daemon.eventLoop.max / 1e6,
      p99Ms: daemon.eventLoop.percentile(99) / 1e6,
      meanMs: Number.isNaN(daemon.eventLoop.mean) ? 0 : daemon.eventLoop.mean / 1e6,
    },
    vgpus: daemon.vgpus.map(({ config, device, server }) => {
      const s = shares.get(config.name);
      const faults = daemon.scheduler.buildFaults.stats(config.name);
      return {
        name: config.name,
        socket: config.socket,
        connected: server.session !== null,
        connections: server.connections,
        apertureBytes: Number(device.apertureSize),
        quotaBytes: device.memory.quota,
        usedBytes: device.memory.used,
        contexts: device.memory.contextCount,
        buffers: device.memory.bufferCount,
        queues: device.queues.queueCount,
        kernels: device.queues.kernelCount,
        submissions: device.queues.totals.submissions,
        submissionErrors: device.queues.totals.errors,
        mailboxOperations: device.mailboxStats.operations,
        mailboxFailures: device.mailboxStats.failures,
        lostContexts: device.queues.lostContextCount,
        weight: config.weight ?? 1,
        deviceNs: s?.deviceNs ?? 0,
        deviceShare: s?.share ?? 0,
        batchesWaitingNs: s?.waitNs ?? 0,
        timeouts: s?.timeouts ?? 0,
        resets: s?.resets ?? 0,
        coolOffs: (s?.coolOffs ?? 0) + faults.coolOffs,
        coolingOffUntil: isoOrNull(Math.max(s?.coolingOffUntil ?? 0, faults.coolingOffUntil ?? 0)),
        throttled: s?.throttled ?? 0,
        kernelBuilds: device.queues.kernels.buildsInProgress,
        kernelBuildFaults: faults.strikes,
        kernelCacheHits: device.queues.kernels.cache.stats.hits,
        kernelCacheMisses: device.queues.kernels.cache.stats.misses,
        kernelCacheEvictions: device.queues.kernels.cache.stats.evictions,
        kernelCacheEntries: device.queues.kernels.cache.size,
        kernelCacheIdleBytes: device.queues.kernels.cache.reclaimableBytes,
        quarantinedBuffers: device.memory.quarantined,
        trappedAccesses: device.pci.trappedAccesses,
        msixInterrupts: device.pci.irqs.signalled[2] ?? 0,
        dmaMappings: device.pci.dma.count,
      };
    }),
  };
}

function isoOrNull(ms: number): string | null {
  return ms > 0 ? new Date(ms).toISOString() : null;
}

/** A metric that mirrors a field of the status: name, type, help, value per vGPU. */
type StatusMetric = [string, 'gauge' | 'counter', string, (v: VgpuStatus) => number];

/** The status as metrics, under the names they always had. */
export const VGPU_STATUS_METRICS: readonly StatusMetric[] = [
  ['mdgpu_vgpu_connected', 'gauge', '1 while a VM is connected', (v) => (v.connected ? 1 : 0)],
  ['mdgpu_vgpu_aperture_bytes', 'gauge', 'Aperture (device memory) size', (v) => v.apertureBytes],
  ['mdgpu_vgpu_quota_bytes', 'gauge', 'Bytes the VM may allocate', (v) => v.quotaBytes],
  ['mdgpu_vgpu_used_bytes', 'gauge', 'Bytes allocated', (v) => v.usedBytes],
  ['mdgpu_vgpu_contexts', 'gauge', 'Live contexts', (v) => v.contexts],
  ['mdgpu_vgpu_buffers', 'gauge', 'Live buffers', (v) => v.buffers],
  ['mdgpu_vgpu_queues', 'gauge', 'Live queues', (v) => v.queues],
  ['mdgpu_vgpu_submissions_total', 'counter', 'Submissions finished', (v) => v.submissions],
  ['mdgpu_vgpu_submission_errors_total', 'counter', 'Submissions refused or failed', (v) => v.submissionErrors],
  ['mdgpu_vgpu_mailbox_operations_total', 'counter', 'Mailbox operations', (v) => v.mailboxOperations],
  ['mdgpu_vgpu_mailbox_failures_total', 'counter', 'Mailbox operations that failed', (v) => v.mailboxFailures],
  ['mdgpu_vgpu_lost_contexts', 'gauge', 'Contexts marked lost', (v) => v.lostContexts],
  ['mdgpu_vgpu_weight', 'gauge', 'Scheduling weight', (v) => v.weight],
  ['mdgpu_vgpu_device_seconds_total', 'counter', 'Device time used', (v) => v.deviceNs / 1e9],
  ['mdgpu_vgpu_device_share', 'gauge', 'Share of all device time used', (v) => v.deviceShare],
  ['mdgpu_vgpu_batch_timeouts_total', 'counter', 'Batches past the time limit', (v) => v.timeouts],
  ['mdgpu_vgpu_device_resets_caused_total', 'counter', "Device resets this VM's batches caused", (v) => v.resets],
  ['mdgpu_vgpu_cooling_off', 'gauge', '1 while the VM is cooled off (its work refused)', (v) => (v.coolingOffUntil !== null ? 1 : 0)],
  ['mdgpu_vgpu_throttled_total', 'counter', 'Batches refused while cooling off', (v) => v.throttled],
  ['mdgpu_vgpu_kernel_build_faults_total', 'counter', 'Kernel builds that failed by time or memory', (v) => v.kernelBuildFaults],
  ['mdgpu_vgpu_kernel_cache_hits_total', 'counter', "Kernel creations answered from the VM's kernel cache (no build)", (v) => v.kernelCacheHits],
  ['mdgpu_vgpu_kernel_cache_misses_total', 'counter', 'Kernel creations that were built', (v) => v.kernelCacheMisses],
  ['mdgpu_vgpu_kernel_cache_evictions_total', 'counter', 'Idle cached kernels evicted (quota pressure or the entry bound)', (v) => v.kernelCacheEvictions],
  ['mdgpu_vgpu_kernel_cache_entries', 'gauge', "Kernels in the VM's kernel cache (in use and idle)", (v) => v.kernelCacheEntries],
  ['mdgpu_vgpu_kernel_cache_idle_bytes', 'gauge', 'Quota bytes held by idle cached kernels (given back on demand)', (v) => v.kernelCacheIdleBytes],
  ['mdgpu_vgpu_trapped_accesses_total', 'counter', 'Trapped register and BAR accesses (VM exits to mdgpu)', (v) => v.trappedAccesses],
  ['mdgpu_vgpu_msix_interrupts_total', 'counter', 'MSI-X interrupts signalled', (v) => v.msixInterrupts],
];

/**
 * Register the status metrics on the daemon's registry. Each reads the status taken once per
 * scrape (`snapshot`); counters mirror totals the daemon already keeps, so each scrape sets them.
 */
export function registerStatusMetrics(metrics: DaemonMetrics, snapshot: () => DaemonStatus): void {
  const registers = [metrics.registry];
  for (const [name, type, help, get] of VGPU_STATUS_METRICS) {
    if (type === 'gauge') {
      new Gauge({
        name,
        help,
        labelNames: ['vgpu'],
        registers,
        collect() {
          this.reset();
          for (const v of snapshot().vgpus) this.set({ vgpu: v.name }, get(v));
        },
      });
    } else {
      new Counter({
        name,
        help,
        labelNames: ['vgpu'],
        registers,
        collect() {
          this.reset();
          for (const v of snapshot().vgpus) this.inc({ vgpu: v.name }, get(v));
        },
      });
    }
  }
  new Gauge({
    name: 'mdgpu_uptime_seconds',
    help: 'Daemon uptime',
    registers,
    collect() {
      this.set(snapshot().uptimeSeconds);
    },
  });
  new Counter({
    name: 'mdgpu_device_resets_total',
    help: 'Compute device resets (a batch past the time limit, or a worker that died)',
    registers,
    collect() {
      this.reset();
      this.inc(snapshot().computeResets);
    },
  });
  new Gauge({
    name: 'mdgpu_event_loop_max_seconds',
    help: 'Longest the daemon event loop was held (since start or the last reset-event-loop)',
    registers,
    collect() {
      this.set(snapshot().eventLoop.maxMs / 1000);
    },
  });
}

/** Per registry: the status of the scrape in progress, which its status metrics read. */
const scrapes = new WeakMap<DaemonMetrics, { status: DaemonStatus | null }>();

/** The Prometheus exposition of a daemon started with `metrics: true` (one status taken per scrape). */
export async function metricsText(daemon: RunningDaemon): Promise<string> {
  const metrics = daemon.metrics;
  if (metrics === null) throw new Error('The daemon keeps no metrics (start it with metrics: true)');
  let scrape = scrapes.get(metrics);
  if (scrape === undefined) {
    const slot: { status: DaemonStatus | null } = { status: null };
    registerStatusMetrics(metrics, () => (slot.status ??= daemonStatus(daemon)));
    scrapes.set(metrics, slot);
    scrape = slot;
  }
  scrape.status = null;
  try {
    return await metrics.text();
  } finally {
    scrape.status = null;
  }
}

export interface ControlOptions {
  /** Unix socket for `mdgpu status` (null: none); created 0600 unless `socketFile` says otherwise. */
  socket: string | null;
  /** Mode and group of the control socket file. */
  socketFile?: SocketFileOptions;
  /** A listening socket to serve instead of creating `socket` (systemd's, FileDescriptorName=control). */
  socketFd?: number;
  /** Port for Prometheus metrics (null: none; 0: any free port); the daemon must keep metrics. */
  metricsPort: number | null;
  /** Address the metrics listener binds (default 127.0.0.1: the host's own Prometheus or agent). */
  metricsHost?: string;
}

export interface RunningControl {
  metricsPort: number | null;
  close(): Promise<void>;
}

export async function startControl(daemon: RunningDaemon, options: ControlOptions): Promise<RunningControl> {
  const closers: (() => Promise<void>)[] = [];
  if (options.socket !== null || options.socketFd !== undefined) {
    const path = options.socket ?? `fd ${options.socketFd}`;
    // Never take over a running daemon's control socket; replace a stale one.
    if (options.socketFd === undefined) claimSocketPath(path, (p) => loadNative().unixSocketListening(p));
    const server = net.createServer((conn) => {
      let buffered = '';
      conn.setEncoding('utf8');
      conn.on('error', () => conn.destroy());
      conn.on('data', (chunk: string) => {
        buffered += chunk;
        if (buffered.length > 4096) conn.destroy(); // A control request is one short line.
        let nl: number;
        while ((nl = buffered.indexOf('\n')) >= 0) {
          const line = buffered.slice(0, nl).trim();
          buffered = buffered.slice(nl + 1);
          let reply: unknown;
          try {
            const request = JSON.parse(line) as { cmd?: unknown };
            if (request.cmd === 'status') {
              reply = { ok: true, status: daemonStatus(daemon) };
            } else if (request.cmd === 'reset-event-loop') {
              daemon.eventLoop.reset();
              reply = { ok: true };
            } else {
              reply = { ok: false, error: `unknown command ${String(request.cmd)}` };
            }
          } catch {
            reply = { ok: false, error: 'requests are one JSON object per line' };
          }
          conn.write(`${JSON.stringify(reply)}\n`);
        }
      });
    });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      if (options.socketFd !== undefined) server.listen({ fd: options.socketFd }, () => resolve());
      // listen(path) binds synchronously, so the file is created under createSocketFile's umask.
      else createSocketFile(path, options.socketFile ?? {}, () => server.listen(path, () => resolve()));
    });
    info(`control socket ${path}`);
    closers.push(() => new Promise((resolve) => server.close(() => resolve())));
  }
  let metricsPort: number | null = null;
  if (options.metricsPort !== null) {
    const metrics = daemon.metrics;
    if (metrics === null) throw new Error('Metrics were asked for, but the daemon keeps none (start it with metrics: true)');
    const server = http.createServer((req, res) => {
      if (req.url !== '/metrics' || (req.method !== 'GET' && req.method !== 'HEAD')) {
        res.writeHead(404).end('not found\n');
        return;
      }
      metricsText(daemon).then(
        (text) => res.writeHead(200, { 'content-type': metrics.contentType }).end(text),
        (err: unknown) => {
          warn(`metrics: ${(err as Error).message}`);
          res.writeHead(500).end('error\n');
        },
      );
    });
    const host = options.metricsHost ?? '127.0.0.1';
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(options.metricsPort!, host, () => resolve());
    });
    metricsPort = (server.address() as net.AddressInfo).port;
    info(`metrics on http://${host.includes(':') ? `[${host}]` : host}:${metricsPort}/metrics`);
    closers.push(() => new Promise((resolve) => server.close(() => resolve())));
  }
  return {
    metricsPort,
    async close() {
      for (const c of closers) await c().catch((err: unknown) => warn(`control: ${(err as Error).message}`));
    },
  };
}

/** Ask a running daemon for its status over its control socket. */
export function queryStatus(socket: string, timeoutMs = 5000): Promise<DaemonStatus> {
  return new Promise((resolve, reject) => {
    const conn = net.connect(socket);
    let buffered = '';
    const timer = setTimeout(() => {
      conn.destroy();
      reject(new Error(`No answer from ${socket}`));
    }, timeoutMs);
    conn.setEncoding('utf8');
    conn.on('error', (err) => {
      clearTimeout(timer);
      reject(new Error(`Cannot reach the mdgpu daemon at ${socket}: ${err.message}`));
    });
    conn.on('connect', () => conn.write(`${JSON.stringify({ cmd: 'status' })}\n`));
    conn.on('data', (chunk: string) => {
      buffered += chunk;
      const nl = buffered.indexOf('\n');
      if (nl < 0) return;
      clearTimeout(timer);
      conn.end();
      const reply = JSON.parse(buffered.slice(0, nl)) as { ok: boolean; status?: DaemonStatus; error?: string };
      if (reply.ok && reply.status) resolve(reply.status);
      else reject(new Error(reply.error ?? 'bad reply'));
    });
  });
}

/** The table `mdgpu status` prints. */
export function formatStatus(status: DaemonStatus): string {
  const mib = (n: number) => `${(n / 2 ** 20).toFixed(0)} MiB`;
  const rows = status.vgpus.map((v) => [
    v.name,
    v.connected ? 'connected' : 'waiting',
    `${mib(v.usedBytes)}/${mib(v.quotaBytes)}`,
    String(v.contexts),
    String(v.queues),
    String(v.submissions),
    `${(100 * v.deviceShare).toFixed(1)}%`,
    String(v.weight),
    String(v.trappedAccesses),
    String(v.submissionErrors + v.mailboxFailures),
    String(v.lostContexts),
    String(v.resets),
    v.coolingOffUntil !== null ? `until ${v.coolingOffUntil.slice(11, 19)}` : '-',
    `${v.kernelCacheHits}/${v.kernelCacheHits + v.kernelCacheMisses}`,
  ]);
  const header = [
    'vGPU',
    'state',
    'memory',
    'ctx',
    'queues',
    'submissions',
    'device share',
    'weight',
    'VM exits',
    'errors',
    'lost',
    'resets',
    'cooling off',
    'kernels cached',
  ];
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const fmt = (r: string[]) => r.map((c, i) => c.padEnd(widths[i]!)).join('  ');
  return [
    `mdgpu daemon, up ${status.uptimeSeconds.toFixed(0)} s, compute: ${status.computeDevice ?? 'none'}` +
      (status.computeDevice !== null
        ? ` (worker ${status.computeWorkerPid ?? 'restarting'}, ${status.computeResets} reset${status.computeResets === 1 ? '' : 's'})`
        : ''),
    `event loop: longest stall ${status.eventLoop.maxMs.toFixed(1)} ms, p99 ${status.eventLoop.p99Ms.toFixed(1)} ms` +
      (status.kernelBuilder !== null
        ? `; kernel builds: ${status.kernelBuilder.built} built, ${status.kernelBuilder.refused} refused, ${status.kernelBuilder.timeouts} timed out, ${status.kernelBuilder.crashes} crashed`
        : ''),
    fmt(header),
    ...rows.map(fmt),
  ].join('\n');
}
