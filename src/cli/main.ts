/**
 * The mdgpu command line (yargs): serve, run, kit.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import yargs from 'yargs';
import { hideBin } from 'yargs/helpers';
import { error, LOG_FORMATS, setLogFormat, setLogLevel, setTrace } from '../log.js';
import { parseSize } from './sizes.js';
import { bindActivatedSockets, describeVgpus, serveUntilSignal } from './serve.js';
import { stderrIsJournal, SYSTEMD_CONTROL_SOCKET, takeListenFds } from './systemd.js';
import type { VgpuConfig } from './daemon.js';
import {
  checkServeOptions,
  checkUnique,
  checkVgpuDefaults,
  ConfigError,
  defaultControlSocket,
  gatherProblems,
  parseResetBudget,
  parseVgpuSpec,
  readConfig,
  resolveGroup,
} from './vgpu-config.js';

function parseId(text: string): number {
  const value = Number(text);
  if (!Number.isInteger(value) || value < 0 || value > 0xffff) throw new Error(`Not a 16-bit PCI id: ${text}`);
  return value;
}

async function main(argv: string[]): Promise<number> {
  let exitCode = 0;
  await yargs(argv)
    .scriptName('mdgpu')
    .usage('$0 <command> [options]\n\nmdgpu: a userspace vGPU backend for QEMU (vfio-user server)')
    .option('log-level', { choices: ['quiet', 'info', 'debug'] as const, default: 'info' as const, describe: 'debug also logs every vfio-user message' })
    .option('trace', { type: 'string', describe: 'tracers to enable: protocol,regs,config,irq,dma,transport,server or all' })
    .option('log-format', { choices: LOG_FORMATS, default: 'text' as const, describe: 'one line per event on stderr: text, or json for log shippers' })
    .middleware((args) => {
      setLogFormat(args['log-format'], { journal: stderrIsJournal() });
      setLogLevel(args['log-level']);
      if (args.trace !== undefined) setTrace(args.trace);
    })
    .command(
      'serve',
      'serve vGPUs on vfio-user sockets until SIGINT/SIGTERM (one --socket, several --vgpu, a --config file, or sockets from systemd)',
      (y) =>
        y
          .option('socket', { type: 'string', describe: 'Unix socket path QEMU connects to (one vGPU)' })
          .option('vgpu', {
            type: 'string',
            array: true,
            describe: `a vGPU: socket=PATH[,name=N][,aperture=SIZE][,quota=SIZE][,weight=N][,max-queues=N][,max-kernels=N][,max-inflight=N][,max-contexts=N][,max-buffers=N][,kernel-cache=N] (repeatable; ranges: docs/deploying.md)`,
          })
          .option('config', {
            type: 'string',
            describe: 'JSON file: { "vgpus": [ { "name": "vm1", "socket": ..., "aperture": "256M", "quota": ..., "weight": 1 } ] }',
          })
          .option('check-config', { type: 'boolean', default: false, describe: 'validate the vGPUs and options, print them, and exit without serving' })
          .option('aperture', { type: 'string', default: '256M', describe: 'device memory (BAR0) size per vGPU, a power of two' })
          .option('quota', { type: 'string', describe: 'memory a VM may allocate (default: the whole aperture)' })
          .option('msix-vectors', { type: 'number', default: 4 })
          .option('compute', { type: 'boolean', default: true, describe: 'attach the host Vulkan device so guest queues can run kernels' })
          .option('device', { type: 'string', describe: 'Vulkan device: index or name substring (default: a GPU, else lavapipe)' })
          .option('time-slice', {
            type: 'number',
            default: 8,
            describe: 'ms of device time a vGPU may use in a row while others wait; long batches run in parts of about this much',
          })
          .option('preempt', {
            type: 'boolean',
            default: true,
            describe: 'run long batches in parts (splitting long dispatches) so other VMs run between them',
          })
          .option('batch-limit', { type: 'number', default: 10000, describe: 'ms a batch may run before its context is marked lost and the device is reset' })
          .option('kernel-build-limit', { type: 'number', default: 10000, describe: 'ms one kernel build may take before it fails (BAD_KERNEL)' })
          .option('kernel-build-memory', { type: 'string', default: '2G', describe: 'data-size limit of the kernel builder process' })
          .option('reset-budget', {
            type: 'string',
            default: '3/60',
            describe: 'device resets a VM may cause per window before it is cooled off for the window: N/SECONDS (0 = never)',
          })
          .option('control', {
            type: 'string',
            default: defaultControlSocket(),
            describe: 'control socket for mdgpu status (systemd may pass it instead: FileDescriptorName=control)',
          })
          .option('socket-mode', { type: 'string', describe: 'mode of the sockets mdgpu creates, e.g. 0660 (default 0600)' })
          .option('socket-group', { type: 'string', describe: "group of the sockets mdgpu creates: a name or a gid (e.g. QEMU's)" })
          .option('metrics', { type: 'number', describe: 'serve Prometheus metrics on http://HOST:PORT/metrics' })
          .option('metrics-host', { type: 'string', default: '127.0.0.1', describe: 'address the metrics listener binds' })
          .option('vendor-id', { type: 'string', describe: 'PCI vendor id (default 0x4d44, not PCI-SIG assigned)' })
          .option('device-id', { type: 'string', describe: 'PCI device id (default 0x4750)' }),
      async (args) => {
        const [ranges, perVgpu, resetPolicy, socketGroup] = gatherProblems<unknown>([
          () =>
            checkServeOptions({
              'msix-vectors': args['msix-vectors'],
              'time-slice': args['time-slice'],
              'batch-limit': args['batch-limit'],
              'kernel-build-limit': args['kernel-build-limit'],
              'kernel-build-memory': args['kernel-build-memory'],
              ...(args.metrics !== undefined ? { metrics: args.metrics } : {}),
              ...(args['socket-mode'] !== undefined ? { 'socket-mode': args['socket-mode'] } : {}),
            }),
          () => checkVgpuDefaults(args.aperture, args.quota),
          () => parseResetBudget(args['reset-budget']),
          () => (args['socket-group'] !== undefined ? resolveGroup(args['socket-group']) : undefined),
        ]) as [ReturnType<typeof checkServeOptions>, ReturnType<typeof checkVgpuDefaults>, ReturnType<typeof parseResetBudget>, number | undefined];
        const identity = {
          ...(args['vendor-id'] !== undefined ? { vendorId: parseId(args['vendor-id']) } : {}),
          ...(args['device-id'] !== undefined ? { deviceId: parseId(args['device-id']) } : {}),
        };
        const defaults = { ...perVgpu, msixVectors: ranges['msix-vectors']!, identity };
        let vgpus: VgpuConfig[] = gatherProblems<VgpuConfig[]>([
          () => (args.socket !== undefined ? [parseVgpuSpec(`socket=${args.socket}`, 'vgpu0', defaults, '--socket')] : []),
          ...(args.vgpu ?? []).map((spec, i) => () => [parseVgpuSpec(spec, `vgpu${i + (args.socket !== undefined ? 1 : 0)}`, defaults)]),
          () => (args.config !== undefined ? readConfig(args.config, defaults) : []),
        ]).flat();
        checkUnique(vgpus);
        if (args['check-config']) {
          if (vgpus.length === 0) throw new ConfigError(['no vGPU: give --socket, --vgpu or --config (or sockets from systemd)']);
          console.log(`mdgpu serve: configuration OK, ${vgpus.length} vGPU${vgpus.length === 1 ? '' : 's'}`);
          for (const line of describeVgpus(vgpus)) console.log(`  ${line}`);
          return;
        }
        const { loadNative } = await import('../native/binding.js');
        const activated = bindActivatedSockets(vgpus, takeListenFds(loadNative()), defaults);
        vgpus = activated.vgpus;
        if (vgpus.length === 0) throw new ConfigError(['no vGPU: give --socket, --vgpu or --config (or sockets from systemd)']);
        checkUnique(vgpus);
        exitCode = await serveUntilSignal(
          {
            vgpus,
            ...(args.compute
              ? {
                  compute: {
                    ...(args.device !== undefined ? { device: args.device } : {}),
                    kernelBuild: { timeLimitMs: ranges['kernel-build-limit']!, memoryLimitBytes: ranges['kernel-build-memory']! },
                  },
                }
              : {}),
            scheduler: {
              timeSliceNs: ranges['time-slice']! * 1e6,
              preempt: args.preempt,
              batchTimeLimitNs: ranges['batch-limit']! * 1e6,
              resetPolicy,
            },
            metrics: args.metrics !== undefined,
            socketFile: {
              ...(ranges['socket-mode'] !== undefined ? { mode: ranges['socket-mode'] } : {}),
              ...(socketGroup !== undefined ? { group: socketGroup } : {}),
            },
          },
          {
            socket: activated.controlFd !== undefined ? null : args.control,
            ...(activated.controlFd !== undefined ? { socketFd: activated.controlFd } : {}),
            socketFile: {
              ...(ranges['socket-mode'] !== undefined ? { mode: ranges['socket-mode'] } : {}),
              ...(socketGroup !== undefined ? { group: socketGroup } : {}),
            },
            metricsPort: ranges.metrics ?? null,
            metricsHost: args['metrics-host'],
          },
        );
      },
    )
    .command(
      'status',
      "show the running daemon's vGPUs: memory, submissions, device share, VM exits, errors",
      (y) =>
        y
          .option('control', {
            type: 'string',
            describe: `the daemon's control socket (default ${defaultControlSocket()}, else systemd's ${SYSTEMD_CONTROL_SOCKET})`,
          })
          .option('json', { type: 'boolean', default: false }),
      async (args) => {
        const { queryStatus, formatStatus } = await import('./control.js');
        const fallback = fs.existsSync(defaultControlSocket()) || !fs.existsSync(SYSTEMD_CONTROL_SOCKET) ? defaultControlSocket() : SYSTEMD_CONTROL_SOCKET;
        const status = await queryStatus(args.control ?? fallback);
        console.log(args.json ? JSON.stringify(status, null, 2) : formatStatus(status));
      },
    )
    .command(
      'kit',
      'build (or reuse) the cached guest kit: QEMU with vfio-user-pci, a guest kernel, busybox',
      (y) =>
        y
          .option('prune', { type: 'boolean', default: false, describe: 'then remove older kits and guest-driver builds from the cache' })
          .option('root', { type: 'boolean', describe: "print only the kit's directory (for shell scripts)" })
          .option('json', { type: 'boolean', describe: "print the kit's kit.json" })
          .conflicts('root', 'json'),
      async (args) => {
        const { ensureKit } = await import('../kit/kit.js');
        const { describeKit } = await import('../kit/kit-tree.js');
        const { cacheDir } = await import('../kit/cache.js');
        const kit = await ensureKit();
        console.log(args.root ? kit.root : args.json ? JSON.stringify(kit.info, null, 2) : describeKit(kit));
        if (args.prune) {
          const { buildGuestDriver } = await import('../guest/build.js');
          const { pruneCache } = await import('../kit/prune.js');
          const { debianImageEntries } = await import('../guest/rootfs.js');
          const guest = await buildGuestDriver(kit);
          const r = await pruneCache(cacheDir(), [path.basename(kit.root), path.basename(guest.dir), ...(await debianImageEntries(kit))]);
          console.log(
            `pruned ${r.removed.length} entr${r.removed.length === 1 ? 'y' : 'ies'} (${(r.freedBytes / 2 ** 20).toFixed(0)} MiB) from ${cacheDir()}; kept ${r.kept.join(', ') || 'nothing'}`,
          );
        }
      },
    )
    .command(
      'run',
      'boot a Linux guest against mdgpu and show what it sees of the device',
      (y) =>
        y
          .option('accel', { choices: ['tcg', 'kvm', 'auto'] as const, default: 'auto' as const })
          .option('root', {
            choices: ['initramfs', 'debian'] as const,
            default: 'debian' as const,
            describe:
              "what the guest boots: Debian with the driver and its Vulkan ICD from their packages (built and cached on first use; shows vulkaninfo and runs a Vulkan program), or the kit's busybox initramfs",
          })
          .option('aperture', { type: 'string', default: '256M' })
          .option('quota', { type: 'string', describe: 'memory the guest may allocate (default: half the aperture)' })
          .option('memory', { type: 'string', default: '512M', describe: 'guest RAM' })
          .option('compute', { type: 'boolean', default: true, describe: 'run the compute workload on the host Vulkan device (--no-compute to skip)' })
          .option('device', { type: 'string', describe: 'Vulkan device: index or name substring (default: a GPU, else lavapipe)' })
          .option('console', { type: 'boolean', default: false, describe: 'echo the guest console' })
          .option('vms', { type: 'number', default: 1, describe: 'boot this many guests at once on one daemon' })
          .option('weights', { type: 'string', describe: 'scheduling weights per VM, e.g. 1,2' })
          .option('timeout', { type: 'number', default: 300, describe: 'seconds before QEMU is killed' }),
      async (args) => {
        const { runJob, runVmsJob } = await import('./run.js');
        if (!Number.isInteger(args.vms) || args.vms < 1 || args.vms > 8) throw new Error('--vms must be 1..8');
        const weights = (args.weights ?? '').split(',').filter(Boolean).map(Number);
        const job = args.vms > 1 || weights.length > 0 ? (o: Parameters<typeof runJob>[0]) => runVmsJob(o, args.vms, weights) : runJob;
        exitCode = await job({
          accel: args.accel,
          root: args.root,
          apertureSize: parseSize(args.aperture),
          ...(args.quota !== undefined ? { quota: parseSize(args.quota) } : {}),
          memoryMiB: parseSize(args.memory) / 2 ** 20,
          timeoutMs: args.timeout * 1000,
          compute: args.compute,
          ...(args.device !== undefined ? { device: args.device } : {}),
          echoConsole: args.console,
        });
      },
    )
    .demandCommand(1)
    .strict()
    // Usage mistakes get the help; a refused configuration or a failed start gets its own message.
    .fail((message, err, y) => {
      if (err !== undefined && err !== null) throw err;
      y.showHelp();
      throw new Error(message);
    })
    .help()
    .parseAsync();
  return exitCode;
}

main(hideBin(process.argv)).then(
  (code) => {
    process.exitCode = code;
  },
  (err: unknown) => {
    for (const line of err instanceof ConfigError ? err.problems : [(err as Error).message]) error(`mdgpu: ${line}`);
    process.exitCode = 1;
  },
);
