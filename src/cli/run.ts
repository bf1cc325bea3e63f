/**
 * `mdgpu run`, the main job: build or reuse the guest kit, serve a vGPU, boot a Linux guest
 * against it under QEMU, and report what the guest sees of the device, checked against what
 * mdgpu itself observed.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { ensureKit } from '../kit/kit.js';
import { guestInitramfs, initScript } from '../kit/initramfs.js';
import { runGuest, type AccelChoice, type GuestResult } from '../kit/qemu.js';
import { startServer } from './serve.js';
import { formatSize } from './sizes.js';
import { DEFAULT_IDENTITY, TRAPPED_WINDOW_SIZE } from '../vgpu/device.js';
import { MDGPU_REGS } from '../vgpu/regs.js';
import { setLogSink } from '../log.js';

export const GUEST_MARKER = 'MDGPU-RUN';
/** A pattern the guest writes into the directly mapped part of the aperture. */
export const GUEST_PATTERN = 0x6d646770; // "pgdm" little-endian
export const GUEST_PATTERN_OFFSET = 2 * TRAPPED_WINDOW_SIZE;
export const GUEST_SCRATCH_VALUE = 0x5eed_1234;

/**
 * The guest side of the job, a busybox shell script. It finds the device in sysfs, prints its
 * identity and BARs in machine-readable lines, enables it, reads the ID register through the
 * trapped register BAR, and writes/reads the directly mapped aperture with devmem.
 */
export function deviceProbeScript(vendorId = DEFAULT_IDENTITY.vendorId, deviceId = DEFAULT_IDENTITY.deviceId): string {
  const hex4 = (n: number) => `0x${n.toString(16).padStart(4, '0')}`;
  return `
found=0
for d in /sys/bus/pci/devices/*; do
  [ "$(cat $d/vendor)" = "${hex4(vendorId)}" ] && [ "$(cat $d/device)" = "${hex4(deviceId)}" ] || continue
  found=1
  echo "MDGPU-DEVICE bdf=$(basename $d) vendor=$(cat $d/vendor) device=$(cat $d/device) class=$(cat $d/class) subsystem=$(cat $d/subsystem_vendor):$(cat $d/subsystem_device) revision=$(cat $d/revision)"
  i=0
  while read start end flags; do
    if [ $((start)) -ne 0 ]; then echo "MDGPU-BAR index=$i start=$start size=$((end - start + 1)) flags=$flags"; fi
    i=$((i + 1))
  done < $d/resource
  caps=""
  echo 1 > $d/enable
  aperture=$(sed -n 1p $d/resource | cut -d' ' -f1)
  regs=$(sed -n 3p $d/resource | cut -d' ' -f1)
  echo "MDGPU-REG ID=$(devmem $((regs + ${MDGPU_REGS.ID.offset})) 32) VERSION=$(devmem $((regs + ${MDGPU_REGS.VERSION.offset})) 32) APERTURE_SIZE_LO=$(devmem $((regs + ${MDGPU_REGS.APERTURE_SIZE_LO.offset})) 32)"
  devmem $((regs + ${MDGPU_REGS.SCRATCH.offset})) 32 ${GUEST_SCRATCH_VALUE}
  echo "MDGPU-SCRATCH $(devmem $((regs + ${MDGPU_REGS.SCRATCH.offset})) 32)"
  devmem $((aperture + ${GUEST_PATTERN_OFFSET})) 32 ${GUEST_PATTERN}
  echo "MDGPU-APERTURE readback=$(devmem $((aperture + ${GUEST_PATTERN_OFFSET})) 32)"
done
[ $found = 1 ] || echo "MDGPU-DEVICE none"
`;
}

export interface GuestView {
  bdf?: string;
  vendor?: string;
  device?: string;
  class?: string;
  bars: { index: number; start: bigint; size: bigint; flags: number }[];
  regs: Record<string, number>;
  scratch?: number;
  apertureReadback?: number;
  /** `rc=` of the init body, when it finished. */
  initStatus?: number;
}

/** Parse the machine-readable lines of {@link deviceProbeScript}. */
export function parseGuestView(output: string): GuestView {
  const view: GuestView = { bars: [], regs: {} };
  const fields = (line: string) => Object.fromEntries(line.split(/\s+/).slice(1).map((kv) => kv.split('=') as [string, string]));
  for (const raw of output.split('\n')) {
    const line = raw.trim();
    if (line.startsWith('MDGPU-DEVICE ')) {
      const f = fields(line);
      Object.assign(view, { bdf: f.bdf, vendor: f.vendor, device: f.device, class: f.class });
    } else if (line.startsWith('MDGPU-BAR ')) {
      const f = fields(line);
      view.bars.push({ index: Number(f.index), start: BigInt(f.start ?? 0), size: BigInt(f.size ?? 0), flags: Number(f.flags) });
    } else if (line.startsWith('MDGPU-REG ')) {
      for (const [k, v] of Object.entries(fields(line))) view.regs[k] = Number(v);
    } else if (line.startsWith('MDGPU-SCRATCH ')) {
      view.scratch = Number(line.split(/\s+/)[1]);
    } else if (line.startsWith('MDGPU-APERTURE ')) {
      view.apertureReadback = Number(fields(line).readback);
    } else {
      const m = new RegExp(`${GUEST_MARKER}-END rc=(\\d+)`).exec(line);
      if (m) view.initStatus = Number(m[1]);
    }
  }
  return view;
}

export interface RunJobOptions {
  accel: AccelChoice;
  apertureSize: number;
  memoryMiB: number;
  timeoutMs: number;
  /** Print the guest console as it arrives (default: only with --log-level debug). */
  echoConsole?: boolean;
  print?: (line: string) => void;
}

export interface RunJobResult {
  ok: boolean;
  view: GuestView;
  guest: GuestResult;
  /** mdgpu's own observations during the boot. */
  host: {
    trappedAccesses: number;
    trappedWrites: number;
    patternInMemfd: number;
    scratchRegister: number;
    messages: Record<string, number>;
  };
  problems: string[];
}

/** Boot a guest against a fresh vGPU and compare what the guest saw with what mdgpu saw. */
export async function bootAndProbe(options: RunJobOptions): Promise<RunJobResult> {
  const print = options.print ?? ((line: string) => console.log(line));
  const kit = await ensureKit({ log: (line) => print(`kit: ${line}`) });
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'mdgpu-run-'));
  const socket = path.join(dir, 'vgpu0.sock');
  const running = startServer({ socket, apertureSize: options.apertureSize, name: 'vgpu0' });
  const messages: Record<string, number> = {};
  try {
    const initrd = await guestInitramfs(kit, { init: initScript(deviceProbeScript(), { marker: GUEST_MARKER }) });
    const guest = await runGuest(kit, {
      accel: options.accel,
      memoryMiB: options.memoryMiB,
      initrd,
      timeoutMs: options.timeoutMs,
      vfioUser: [{ socket, id: 'mdgpu0' }],
      ...(options.echoConsole ? { onLine: (line: string) => print(`guest: ${line}`) } : {}),
    });
    const pci = running.device.pci;
    const view = parseGuestView(guest.output);
    const patternInMemfd = new DataView(running.device.aperture.buffer).getUint32(GUEST_PATTERN_OFFSET, true);
    for (const [name, count] of running.server.commandCounts()) messages[name] = count;
    const result: RunJobResult = {
      ok: false,
      view,
      guest,
      host: {
        trappedAccesses: pci.trappedAccesses,
        trappedWrites: pci.trappedWrites.reduce((a, b) => a + b, 0),
        patternInMemfd,
        scratchRegister: running.device.regs.get('SCRATCH'),
        messages,
      },
      problems: [],
    };
    result.problems = checkRun(result, options.apertureSize);
    result.ok = result.problems.length === 0;
    return result;
  } finally {
    await running.close();
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

function checkRun(r: RunJobResult, apertureSize: number): string[] {
  const problems: string[] = [];
  const v = r.view;
  const expect = (ok: boolean, what: string) => {
    if (!ok) problems.push(what);
  };
  expect(!r.guest.timedOut, `the guest did not finish within the timeout`);
  expect(v.initStatus === 0, `the guest's init did not finish cleanly (rc=${v.initStatus ?? 'none'})`);
  expect(v.vendor === `0x${DEFAULT_IDENTITY.vendorId.toString(16)}`, `vendor seen by the guest: ${v.vendor ?? 'no device'}`);
  expect(v.device === `0x${DEFAULT_IDENTITY.deviceId.toString(16)}`, `device seen by the guest: ${v.device ?? 'no device'}`);
  expect(v.class === '0x030200', `class seen by the guest: ${v.class ?? 'none'}`);
  const bar0 = v.bars.find((b) => b.index === 0);
  expect(bar0?.size === BigInt(apertureSize), `BAR0 size seen by the guest: ${bar0?.size ?? 'none'}`);
  const bar2 = v.bars.find((b) => b.index === 2);
  expect(bar2 !== undefined && bar2.size === 0x4000n, `BAR2 size seen by the guest: ${bar2?.size ?? 'none'}`);
  expect(v.regs.ID === MDGPU_REGS.ID.reset, `ID register read by the guest: ${v.regs.ID}`);
  expect(v.scratch === GUEST_SCRATCH_VALUE && r.host.scratchRegister === GUEST_SCRATCH_VALUE, 'SCRATCH written by the guest did not reach mdgpu');
  expect(v.apertureReadback === GUEST_PATTERN, 'the guest did not read back its aperture pattern');
  expect(r.host.patternInMemfd === GUEST_PATTERN, "the guest's aperture store is not in mdgpu's memfd");
  return problems;
}

/** The CLI job: print the table, return the exit code. */
export async function runJob(options: RunJobOptions): Promise<number> {
  const print = options.print ?? ((line: string) => console.log(line));
  const logs: string[] = [];
  const restore = setLogSink((line) => logs.push(line));
  let r: RunJobResult;
  try {
    r = await bootAndProbe(options);
  } finally {
    setLogSink(restore);
  }
  const v = r.view;
  print(`mdgpu run: guest booted under ${r.guest.accel.toUpperCase()} in ${(r.guest.durationMs / 1000).toFixed(1)} s`);
  print('');
  print('what the guest sees');
  print(`  PCI device   ${v.bdf ?? '-'}  vendor ${v.vendor ?? '-'}  device ${v.device ?? '-'}  class ${v.class ?? '-'}`);
  for (const bar of v.bars) {
    const kind = (bar.flags & 0x4) !== 0 ? '64-bit' : '32-bit';
    const pf = (bar.flags & 0x8) !== 0 ? ', prefetchable' : '';
    print(`  BAR${bar.index}         ${formatSize(Number(bar.size)).padEnd(8)} at 0x${bar.start.toString(16)} (${kind}${pf})`);
  }
  print(`  ID register  0x${(v.regs.ID ?? 0).toString(16)} (trapped read)`);
  print(`  aperture     wrote 0x${GUEST_PATTERN.toString(16)} at +0x${GUEST_PATTERN_OFFSET.toString(16)}, read back 0x${(v.apertureReadback ?? 0).toString(16)} (direct mapping)`);
  print('');
  print('what mdgpu saw');
  print(`  pattern in its memfd at +0x${GUEST_PATTERN_OFFSET.toString(16)}: 0x${r.host.patternInMemfd.toString(16)}`);
  print(`  trapped accesses (VM exits to mdgpu): ${r.host.trappedAccesses}`);
  print('');
  if (r.ok) {
    print('result: OK');
    return 0;
  }
  print('result: FAILED');
  for (const p of r.problems) print(`  - ${p}`);
  print('');
  print('guest console (last 40 lines):');
  for (const line of r.guest.output.split('\n').slice(-40)) print(`  | ${line}`);
  if (r.guest.stderr.trim()) print(`qemu stderr:\n${r.guest.stderr}`);
  if (logs.length) print(`mdgpu log:\n${logs.slice(-40).join('\n')}`);
  return 1;
}
