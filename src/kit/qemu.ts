/**
 * Building QEMU command lines for mdgpu guests and running the kit's QEMU under a timeout.
 *
 * Why the command line looks the way it does (see qemu-configs/README.md):
 * - q35 with a `pcie-root-port` per device: the GPU is a PCIe endpoint.
 * - Guest RAM is `memory-backend-memfd,share=on`: QEMU passes the memfd to the vfio-user
 *   server in DMA_MAP, so the device reads and writes guest memory with no messages.
 * - `vfio-user-pci` only accepts its `socket` property in the JSON form of `-device`.
 * - `-nodefaults` (no VGA, no NIC option ROM) boots fastest but moves default addresses,
 *   so every root port gets an explicit `bus`/`addr`/`chassis`.
 * - TCG is the default. KVM on these machines (kvm_pvm) can fail with an internal error
 *   and then QEMU *pauses* instead of exiting, so QEMU always runs under a timeout that
 *   ends with SIGKILL.
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as fsp from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import { promisify } from 'node:util';
import { guestInitramfs, initScript } from './initramfs.js';
import type { Kit } from './kit-tree.js';

const execFileP = promisify(execFile);

/** Accelerators a caller may ask for; `auto` means KVM if it is present and a probe boot passes, else TCG. */
export type AccelChoice = 'tcg' | 'kvm' | 'auto';
/** Accelerators that end up on a command line. */
export type Accel = 'tcg' | 'kvm' | 'qtest';

/** A PCIe endpoint placed behind its own root port. */
export interface PcieDevice {
  /** QEMU device type, e.g. `vfio-user-pci`, `edu`, `virtio-rng-pci`. */
  driver: string;
  /** QEMU id (default `dev<i>`). */
  id?: string;
  /** Further properties, emitted as JSON (nested objects allowed). */
  props?: Record<string, unknown>;
}

/** A vfio-user device: QEMU connects to the server's socket at startup (it must be listening). */
export interface VfioUserDevice {
  /** The server's Unix socket path. */
  socket: string;
  /** QEMU id (default `mdgpu<i>`). */
  id?: string;
  /** Further vfio-user-pci properties, e.g. `{"x-msg-timeout": 10000}`. */
  props?: Record<string, unknown>;
}

/**
 * A raw disk image as a virtio-blk PCIe device (after the other devices, one root port each).
 * It is opened read-only (`-blockdev` with `read-only`), so any number of guests can share it
 * and none can change it; the guest sees a read-only disk (`/sys/block/vdX/ro` = 1).
 */
export interface VirtioDisk {
  /** The raw image file. */
  file: string;
  /** The device's serial number: the guest finds the disk by it (`/sys/block/vdX/serial`). */
  serial: string;
  /** QEMU id (default `disk<i>`); the block node is `<id>-node`. */
  id?: string;
}

export interface QemuArgsOptions {
  /** Default `tcg`. */
  accel?: Accel;
  /** Guest RAM in MiB (default 512). The memfd backend gets the same size. */
  memoryMiB?: number;
  /** vCPUs (default 1). */
  smp?: number;
  /** `-cpu` (default: QEMU's for TCG, `host` for KVM). */
  cpu?: string;
  kernel?: string;
  initrd?: string;
  /** Kernel command line (default {@link DEFAULT_APPEND}). */
  append?: string;
  /** Serial port 0: `stdio` (default), `none`, or any `-serial` value such as `file:/path`, `chardev:ser0`. */
  serial?: string;
  /** vfio-user devices, one root port each (they come first: root ports rp0, rp1, …). */
  vfioUser?: VfioUserDevice[];
  /** Other PCIe devices, one root port each, after the vfio-user ones. */
  devices?: PcieDevice[];
  /** Read-only virtio-blk disks, one root port each, after `devices`. */
  drives?: VirtioDisk[];
  /** Extra empty root ports (e.g. for hotplug). */
  spareRootPorts?: number;
  /** PCI slot of the first root port on pcie.0 (default 0x10); port i gets slot first+i, function 0. */
  rootPortSlot?: number;
  /** Appended verbatim. */
  extraArgs?: string[];
}

/**
 * Kernel command line used unless the caller gives one. `panic=-1` + `-no-reboot`: a panic ends QEMU.
 * `no_timer_check`: under TCG on a loaded host the guest's IO-APIC timer self-test can miss its window
 * and the kernel panics with "IO-APIC + timer doesn't work"; the check proves nothing about a virtual timer.
 */
export const DEFAULT_APPEND = 'console=ttyS0 panic=-1 no_timer_check quiet loglevel=4';

/** The JSON `-device` value for a vfio-user device on `bus`. */
export function vfioUserDeviceJson(dev: VfioUserDevice, bus: string, id: string): string {
  return JSON.stringify({
    driver: 'vfio-user-pci',
    socket: { path: dev.socket, type: 'unix' },
    bus,
    addr: '0',
    id,
    ...dev.props,
  });
}

/** Root port id for position `i`. */
export const rootPortId = (i: number) => `rp${i}`;

/**
 * The QEMU options (no binary) for a guest: machine, memory backend, root ports and
 * devices with pinned addresses, kernel, initrd, serial.
 */
export function qemuArgs(opts: QemuArgsOptions = {}): string[] {
  const accel = opts.accel ?? 'tcg';
  const mem = opts.memoryMiB ?? 512;
  if (!Number.isInteger(mem) || mem <= 0) throw new RangeError(`memoryMiB must be a positive integer: ${mem}`);
  const smp = opts.smp ?? 1;
  const args = [
    '-machine',
    'q35,memory-backend=mem',
    '-accel',
    accel,
    '-m',
    `${mem}M`,
    '-object',
    `memory-backend-memfd,id=mem,size=${mem}M,share=on`,
    '-smp',
    String(smp),
    '-nodefaults',
    '-display',
    'none',
    '-no-reboot',
    '-nic',
    'none',
  ];
  const cpu = opts.cpu ?? (accel === 'kvm' ? 'host' : undefined);
  if (cpu) args.push('-cpu', cpu);
  if (accel !== 'qtest') args.push('-serial', opts.serial ?? 'stdio');
  const first = opts.rootPortSlot ?? 0x10;
  const devs: string[] = [];
  (opts.vfioUser ?? []).forEach((d, i) => devs.push(vfioUserDeviceJson(d, rootPortId(i), d.id ?? `mdgpu${i}`)));
  const base = devs.length;
  (opts.devices ?? []).forEach((d, j) => {
    const i = base + j;
    devs.push(JSON.stringify({ driver: d.driver, bus: rootPortId(i), addr: '0', id: d.id ?? `dev${i}`, ...d.props }));
  });
  const blockdevs: string[] = [];
  (opts.drives ?? []).forEach((d, k) => {
    const i = devs.length;
    const id = d.id ?? `disk${k}`;
    blockdevs.push(
      JSON.stringify({ driver: 'raw', 'node-name': `${id}-node`, 'read-only': true, file: { driver: 'file', filename: d.file, 'read-only': true } }),
    );
    devs.push(JSON.stringify({ driver: 'virtio-blk-pci', bus: rootPortId(i), addr: '0', id, drive: `${id}-node`, serial: d.serial }));
  });
  const ports = devs.length + (opts.spareRootPorts ?? 0);
  if (first + ports > 0x1f) throw new RangeError(`Too many root ports (${ports}) from slot 0x${first.toString(16)}`);
  for (let i = 0; i < ports; i++) {
    args.push('-device', `pcie-root-port,id=${rootPortId(i)},bus=pcie.0,chassis=${i + 1},addr=0x${(first + i).toString(16)}.0`);
  }
  for (const b of blockdevs) args.push('-blockdev', b);
  for (const d of devs) args.push('-device', d);
  if (opts.kernel) args.push('-kernel', opts.kernel);
  if (opts.initrd) args.push('-initrd', opts.initrd);
  if (opts.kernel) args.push('-append', opts.append ?? DEFAULT_APPEND);
  args.push(...(opts.extraArgs ?? []));
  return args;
}

/** Whether the host CPU advertises hardware virtualisation and /dev/kvm is usable. */
export function kvmPresent(cpuinfo?: string): boolean {
  let text = cpuinfo;
  if (text === undefined) {
    try {
      text = fs.readFileSync('/proc/cpuinfo', 'utf8');
    } catch {
      return false;
    }
  }
  if (!/^flags\s*:.*\b(vmx|svm)\b/m.test(text)) return false;
  if (cpuinfo !== undefined) return true;
  try {
    fs.accessSync('/dev/kvm', fs.constants.R_OK | fs.constants.W_OK);
    return true;
  } catch {
    return false;
  }
}

/** Run the kit's QEMU with `args` (`--version`, `-device help`) and return its stdout; throws on failure. */
export async function qemuOutput(kit: Pick<Kit, 'qemu'>, args: string[], timeoutMs = 30_000): Promise<string> {
  const { stdout } = await execFileP(kit.qemu.command, [...kit.qemu.args, ...args], {
    env: { ...process.env, ...kit.qemu.env },
    timeout: timeoutMs,
    killSignal: 'SIGKILL',
    maxBuffer: 16 << 20,
  });
  return stdout;
}

/** Parse `qemu-system-x86_64 --version` output into `11.1.3 (Debian …)`. */
export function parseQemuVersion(text: string): string {
  const m = /QEMU emulator version (\S+(?: \([^)]*\))?)/.exec(text);
  if (!m) throw new Error(`Unrecognised QEMU version output: ${text.trim().split('\n')[0] ?? ''}`);
  return m[1]!;
}

/** Whether `version` (e.g. `11.1.3 (Debian …)`) is at least `major.minor`. */
export function qemuAtLeast(version: string, major: number, minor: number): boolean {
  const m = /^(\d+)\.(\d+)/.exec(version);
  if (!m) return false;
  const [a, b] = [Number(m[1]), Number(m[2])];
  return a > major || (a === major && b >= minor);
}

/** A running QEMU under a deadline. */
export interface QemuProcess {
  child: ChildProcess;
  /** Resolves when QEMU has exited (never rejects). */
  exited: Promise<QemuExit>;
  /** SIGTERM, then SIGKILL after `graceMs` (default 2000). Resolves on exit. */
  kill(graceMs?: number): Promise<QemuExit>;
}

export interface QemuExit {
  code: number | null;
  signal: NodeJS.Signals | null;
  timedOut: boolean;
  /** Set when QEMU was killed because its stderr matched `killOnStderr` (e.g. a KVM internal error). */
  killedFor?: string;
  durationMs: number;
  /** QEMU's own stderr (errors, warnings); the serial console is stdout. */
  stderr: string;
}

export interface SpawnQemuOptions {
  /** Kill QEMU (SIGTERM, then SIGKILL) after this long. Required: QEMU may pause instead of exiting. */
  timeoutMs: number;
  /** Called with each chunk of stdout (the serial console with `-serial stdio`). */
  onStdout?: (chunk: string) => void;
  onStderr?: (chunk: string) => void;
  /**
   * Kill QEMU as soon as its stderr matches (default {@link KVM_INTERNAL_ERROR}): after a
   * KVM internal error QEMU stops the VM and waits forever instead of exiting.
   */
  killOnStderr?: RegExp | null;
}

/** What QEMU prints before it pauses on a KVM emulation failure. */
export const KVM_INTERNAL_ERROR = /KVM internal error/;

/** Spawn the kit's QEMU with `args` under a deadline. */
export function spawnQemu(kit: Pick<Kit, 'qemu'>, args: string[], opts: SpawnQemuOptions): QemuProcess {
  const t0 = Date.now();
  const child = spawn(kit.qemu.command, [...kit.qemu.args, ...args], {
    env: { ...process.env, ...kit.qemu.env },
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  let stderr = '';
  let timedOut = false;
  let killedFor: string | undefined;
  const killOn = opts.killOnStderr === undefined ? KVM_INTERNAL_ERROR : opts.killOnStderr;
  child.stdout!.setEncoding('utf8');
  child.stderr!.setEncoding('utf8');
  child.stdout!.on('data', (c: string) => opts.onStdout?.(c));
  child.stderr!.on('data', (c: string) => {
    stderr += c;
    if (stderr.length > 1 << 20) stderr = stderr.slice(-(1 << 19));
    opts.onStderr?.(c);
    if (killOn && killedFor === undefined) {
      const m = killOn.exec(stderr);
      if (m) {
        killedFor = m[0];
        // Let QEMU finish printing the register dump first.
        setTimeout(() => void kill(), 200);
      }
    }
  });
  child.stdin!.on('error', () => undefined);
  let killTimer: NodeJS.Timeout | undefined;
  const exited = new Promise<QemuExit>((resolve) => {
    let done = false;
    const finish = (code: number | null, signal: NodeJS.Signals | null) => {
      if (done) return;
      done = true;
      clearTimeout(deadline);
      clearTimeout(killTimer);
      resolve({ code, signal, timedOut, killedFor, durationMs: Date.now() - t0, stderr });
    };
    child.on('error', (e) => {
      stderr += `spawn failed: ${e.message}\n`;
      finish(null, null);
    });
    child.on('close', finish);
  });
  const kill = (graceMs = 2000): Promise<QemuExit> => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGTERM');
      clearTimeout(killTimer);
      killTimer = setTimeout(() => child.kill('SIGKILL'), graceMs);
    }
    return exited;
  };
  const deadline = setTimeout(() => {
    timedOut = true;
    void kill();
  }, opts.timeoutMs);
  return { child, exited, kill };
}

export interface RunGuestOptions extends Omit<QemuArgsOptions, 'accel' | 'kernel' | 'initrd' | 'serial'> {
  /** Default `tcg`. `auto` probes KVM (see {@link resolveAccel}). */
  accel?: AccelChoice;
  /** Kernel image (default: the kit's). */
  kernel?: string;
  /** The initramfs: a path or the image itself (written to a temporary file). */
  initrd: string | Buffer;
  /** Deadline (default 120 s); QEMU is then killed and `timedOut` is set. */
  timeoutMs?: number;
  /** Serial console output as it arrives. */
  onOutput?: (chunk: string) => void;
  /** Each complete console line. */
  onLine?: (line: string) => void;
}

export interface GuestResult {
  /** QEMU's exit code. Note that QEMU exits 0 when it is terminated by SIGTERM. */
  code: number | null;
  signal: NodeJS.Signals | null;
  /** Why QEMU was killed early, if it was (see {@link SpawnQemuOptions.killOnStderr}). */
  killedFor?: string;
  /** The whole serial console, `\r\n` turned into `\n`. */
  output: string;
  /** QEMU's stderr. */
  stderr: string;
  timedOut: boolean;
  durationMs: number;
  accel: 'tcg' | 'kvm';
}

/** Boot a guest with the kit's QEMU and collect its serial console until QEMU exits or the deadline passes. */
export async function runGuest(kit: Kit, opts: RunGuestOptions): Promise<GuestResult> {
  const accel = await resolveAccel(kit, opts.accel ?? 'tcg');
  let initrd: string;
  let tmpDir: string | undefined;
  if (typeof opts.initrd === 'string') {
    initrd = opts.initrd;
  } else {
    tmpDir = await fsp.mkdtemp(path.join(os.tmpdir(), 'mdgpu-guest-'));
    initrd = path.join(tmpDir, 'initrd.img');
    await fsp.writeFile(initrd, opts.initrd);
  }
  try {
    const { timeoutMs, onOutput, onLine, accel: _a, initrd: _i, kernel, ...rest } = opts;
    const args = qemuArgs({ ...rest, accel, kernel: kernel ?? kit.kernel, initrd, serial: 'stdio' });
    let output = '';
    let partial = '';
    const q = spawnQemu(kit, args, {
      timeoutMs: timeoutMs ?? 120_000,
      onStdout: (c) => {
        const text = c.replace(/\r\n/g, '\n');
        output += text;
        onOutput?.(text);
        if (onLine) {
          const lines = (partial + text).split('\n');
          partial = lines.pop() ?? '';
          for (const l of lines) onLine(l.replace(/\r$/, ''));
        }
      },
    });
    const r = await q.exited;
    if (onLine && partial) onLine(partial);
    return {
      code: r.code,
      signal: r.signal,
      killedFor: r.killedFor,
      output,
      stderr: r.stderr,
      timedOut: r.timedOut,
      durationMs: r.durationMs,
      accel,
    };
  } finally {
    if (tmpDir) await fsp.rm(tmpDir, { recursive: true, force: true });
  }
}

/** The marker a KVM probe guest prints. */
export const PROBE_MARKER = 'MDGPU-KVM-PROBE-OK';

export interface KvmProbeResult {
  ok: boolean;
  reason: string;
  durationMs: number;
  /** Host identity the result holds for (kernel release and boot id). */
  host: string;
  at: string;
}

const probeMemo = new Map<string, Promise<KvmProbeResult>>();

function hostId(): string {
  let boot = '';
  try {
    boot = fs.readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim();
  } catch {
    /* not Linux */
  }
  return `${os.release()} ${boot}`;
}

/** Where a kit's KVM probe result is cached (next to the kit, not in it). */
export const probeCachePath = (kit: Pick<Kit, 'root'>) => `${kit.root}.kvm-probe.json`;

/**
 * Boot the kit's kernel under KVM with an initramfs that prints a marker and powers off.
 * The result is cached per kit and host boot (in memory and in {@link probeCachePath}).
 */
export async function probeKvm(kit: Kit, opts: { timeoutMs?: number; fresh?: boolean } = {}): Promise<KvmProbeResult> {
  const key = kit.root;
  if (!opts.fresh) {
    const m = probeMemo.get(key);
    if (m) return m;
    try {
      const cached = JSON.parse(await fsp.readFile(probeCachePath(kit), 'utf8')) as KvmProbeResult;
      if (cached.host === hostId()) return cached;
    } catch {
      /* no cache */
    }
  }
  const p = (async (): Promise<KvmProbeResult> => {
    const host = hostId();
    const at = new Date().toISOString();
    if (!kvmPresent()) return { ok: false, reason: 'no vmx/svm in /proc/cpuinfo or /dev/kvm not usable', durationMs: 0, host, at };
    const initrd = await guestInitramfs(kit, {
      init: initScript(`echo ${PROBE_MARKER}`),
      applets: ['sh', 'mount', 'mkdir', 'echo', 'sync', 'poweroff'],
    });
    const r = await runGuest(kit, { accel: 'kvm', initrd, timeoutMs: opts.timeoutMs ?? 30_000, memoryMiB: 256 });
    const ok = r.output.includes(PROBE_MARKER) && r.code === 0 && !r.timedOut && !r.killedFor;
    const reason = ok
      ? 'probe boot printed its marker and powered off'
      : r.killedFor
        ? `probe boot hit "${r.killedFor}" (QEMU pauses then; it was killed)`
        : r.timedOut
          ? `probe boot timed out (QEMU may have paused on a KVM internal error): ${r.stderr.trim().split('\n').slice(-2).join(' | ')}`
          : `probe boot failed (exit ${r.code ?? r.signal}): ${r.stderr.trim().split('\n').slice(-2).join(' | ')}`;
    return { ok, reason, durationMs: r.durationMs, host, at };
  })();
  probeMemo.set(key, p);
  const result = await p;
  await fsp.writeFile(probeCachePath(kit), `${JSON.stringify(result, null, 2)}\n`).catch(() => undefined);
  return result;
}

/**
 * Turn a choice into the accelerator to use: `tcg` and `kvm` are taken as given; `auto`
 * is `kvm` only if {@link probeKvm} passes.
 */
export async function resolveAccel(kit: Kit, choice: AccelChoice): Promise<'tcg' | 'kvm'> {
  if (choice === 'tcg' || choice === 'kvm') return choice;
  return (await probeKvm(kit)).ok ? 'kvm' : 'tcg';
}
