/**
 * Aperture benchmark: guest reads and writes of a buffer through the direct mapping (no exits)
 * against the same bytes through the trapped window (one exit per access), mdgpu's count of
 * trapped accesses for each, and the same loops on the host over a memfd as the physical limit.
 *
 *   npm run build && node build/bench/aperture/run.js [--size 64M] [--trapped 1M] [--accel tcg]
 *
 * Prints a table; docs/benchmarks.md keeps the numbers of a run. Not a test: no assertions on
 * time (these machines are shared and noisy).
 */
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { startServer } from '../../src/cli/serve.js';
import { parseSize, formatSize } from '../../src/cli/sizes.js';
import { ensureKit } from '../../src/kit/kit.js';
import { runGuest, type AccelChoice } from '../../src/kit/qemu.js';
import { buildGuestDriver } from '../../src/guest/build.js';
import { guestImage, GUEST_MODULE_PATH } from '../../src/guest/image.js';
import { setLogSink } from '../../src/log.js';
import { APERTURE_BAR, REGISTER_BAR } from '../../src/vgpu/device.js';

interface Row {
  path: string;
  op: string;
  bytes: number;
  ns: number;
}

function parseArgs(argv: string[]): { size: number; trapped: number; accel: AccelChoice } {
  const get = (name: string) => {
    const i = argv.indexOf(`--${name}`);
    return i >= 0 ? argv[i + 1] : undefined;
  };
  return {
    size: parseSize(get('size') ?? '64M'),
    trapped: parseSize(get('trapped') ?? '1M'),
    accel: (get('accel') ?? 'tcg') as AccelChoice,
  };
}

function benchLines(output: string): Row[] {
  return output
    .split('\n')
    .filter((l) => l.startsWith('MDGPU-BENCH '))
    .map((l) =>
      Object.fromEntries(
        l
          .trim()
          .split(/\s+/)
          .slice(1)
          .map((kv) => kv.split('=')),
      ),
    )
    .map((f) => ({ path: f.path!, op: f.op!, bytes: Number(f.bytes), ns: Number(f.ns) }));
}

async function main(): Promise<void> {
  const { size, trapped, accel } = parseArgs(process.argv.slice(2));
  setLogSink(() => {});
  const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');
  const work = fs.mkdtempSync(path.join(os.tmpdir(), 'mdgpu-bench-'));

  // The host's physical limit: the same loops over a memfd mapping.
  const hostBin = path.join(work, 'host-memfd');
  execFileSync('cc', ['-O2', '-Wall', '-o', hostBin, path.join(root, 'bench/aperture/host-memfd.c')]);
  const hostRows = benchLines(execFileSync(hostBin, [String(size)], { encoding: 'utf8' }));

  const kit = await ensureKit();
  const build = await buildGuestDriver(kit);
  const socket = path.join(work, 'vgpu0.sock');
  const running = startServer({ socket, apertureSize: Math.max(256 << 20, 2 ** Math.ceil(Math.log2(size * 2))), name: 'bench' });
  const pci = running.device.pci;
  const init = `insmod ${GUEST_MODULE_PATH} && mdgpu-bench -s ${size} -t ${trapped}; rmmod mdgpu`;
  const before = {
    bar0: pci.trappedReads[APERTURE_BAR]! + pci.trappedWrites[APERTURE_BAR]!,
    bar2: pci.trappedReads[REGISTER_BAR]! + pci.trappedWrites[REGISTER_BAR]!,
  };
  const r = await runGuest(kit, { accel, initrd: await guestImage(kit, build, init), vfioUser: [{ socket }], memoryMiB: 512, timeoutMs: 900_000 });
  const bar0 = pci.trappedReads[APERTURE_BAR]! + pci.trappedWrites[APERTURE_BAR]! - before.bar0;
  const bar2 = pci.trappedReads[REGISTER_BAR]! + pci.trappedWrites[REGISTER_BAR]! - before.bar2;
  await running.close();
  fs.rmSync(work, { recursive: true, force: true });
  const guestRows = benchLines(r.output);
  if (guestRows.length === 0) {
    console.error(r.output.split('\n').slice(-30).join('\n'));
    throw new Error('the guest benchmark printed no results');
  }

  // Attribution: every access to the trapped window is one BAR0 trap; the direct phase touches
  // only mapped pages. So BAR0 traps == window accesses exactly means the direct phase had none.
  const windowAccesses = (2 * trapped) / 8;
  const directTraps = bar0 - windowAccesses;
  const mbps = (row: Row) => row.bytes / (row.ns / 1e9) / 1e6;
  const find = (p: string, op: string) => guestRows.find((x) => x.path === p && x.op === op);
  const label = r.accel.toUpperCase();

  console.log(`\naperture benchmark — guest under ${label}, mdgpu over vfio-user, QEMU ${kit.qemuVersion}`);
  console.log(`buffer ${formatSize(size)} through the direct mapping, ${formatSize(trapped)} through the trapped window\n`);
  console.log(
    `${'path'.padEnd(14)} ${'op'.padEnd(13)} ${'bytes'.padStart(10)} ${'MB/s'.padStart(10)} ${'ns per 8 B'.padStart(11)} ${'trapped accesses'.padStart(17)}`,
  );
  const line = (where: string, row: Row, traps: string) =>
    console.log(
      `${where.padEnd(14)} ${row.op.padEnd(13)} ${formatSize(row.bytes).padStart(10)} ${mbps(row).toFixed(1).padStart(10)} ${(row.ns / (row.bytes / 8)).toFixed(1).padStart(11)} ${traps.padStart(17)}`,
    );
  for (const row of guestRows.filter((x) => x.path === 'direct')) line(`guest direct`, row, row.op === 'write' ? String(Math.max(0, directTraps)) : '');
  for (const row of guestRows.filter((x) => x.path === 'trapped')) line(`guest trapped`, row, String(row.bytes / 8));
  for (const row of hostRows) line('host memfd', row, '0');
  const dw = find('direct', 'write');
  const tw = find('trapped', 'write');
  const dr = find('direct', 'read');
  const tr = find('trapped', 'read');
  const hw = hostRows.find((x) => x.op === 'write');
  const hr = hostRows.find((x) => x.op === 'read');
  console.log('');
  if (dw && tw) console.log(`direct / trapped, write: ${(mbps(dw) / mbps(tw)).toFixed(0)}x`);
  if (dr && tr) console.log(`direct / trapped, read:  ${(mbps(dr) / mbps(tr)).toFixed(0)}x`);
  if (dw && hw)
    console.log(
      `guest direct / host, write: ${((100 * mbps(dw)) / mbps(hw)).toFixed(1)}% (${label}: the guest's loop is emulated, so this is not a virtualization overhead figure)`,
    );
  if (dr && hr) console.log(`guest direct / host, read:  ${((100 * mbps(dr)) / mbps(hr)).toFixed(1)}%`);
  console.log(
    `mdgpu trapped accesses during the run: aperture BAR ${bar0} (window accesses ${windowAccesses}, direct-phase ${directTraps}), register BAR ${bar2} (mailbox and window moves)`,
  );
  console.log(`guest run ${(r.durationMs / 1000).toFixed(1)} s`);
}

main().catch((err: unknown) => {
  console.error(`bench: ${(err as Error).message}`);
  process.exitCode = 1;
});
