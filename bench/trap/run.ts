/**
 * Trapped access round trips (issue 12): a guest `readl`/`writel` of a trapped register, timed
 * through QEMU 11.1.3 under `-accel qtest`, for three devices in one QEMU, side by side:
 * - mdgpu (`mdgpu serve`, its own process) — BAR2 SCRATCH, a plain read/write register;
 * - a minimal C vfio-user responder (bench/trap/responder.c) — the floor a C server reaches on
 *   the same client;
 * - QEMU's in-process `edu` device — its liveness register (BAR0 + 4): QEMU's own cost of a
 *   trapped MMIO through qtest, with no server at all.
 * A server's *share* is its time minus edu's in the same run and mode. Runs pinned (QEMU, both
 * servers and this driver on CPU 0, so no access waits for an idle vCPU to be woken; with
 * `--driver-cpu other` this driver runs on CPU 1) and unpinned.
 *
 * A second table times the servers alone: bench/trap/client.c stands in for QEMU and sends
 * REGION_READ/WRITE over the socket with nothing else in the way.
 *
 *   npm run bench:trap [-- --rounds 3 --n 5000 --direct-n 5000 --driver-cpu same|other]
 *
 * `--profile` instead runs the profile of mdgpu's REGION_READ/WRITE path (bench/trap/profile.ts).
 * Not a test: nothing here asserts on time (these machines are shared and noisy).
 */
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { ensureKit } from '../../src/kit/kit.js';
import { PciFirmware } from '../../test/helpers/pci-firmware.js';
import { startQtest, type Qtest } from '../../test/helpers/qtest.js';
import { MDGPU_REGS } from '../../src/vgpu/regs.js';
import { REGISTER_BAR } from '../../src/vgpu/device.js';
import { table } from '../guest-bench.js';
import { runProfile } from './profile.js';
import { buildTrapC, CLIENT_BIN, pin, quantile, spawnMdgpu, spawnResponder, stop, waitForSocket } from './common.js';

const arg = (name: string, fallback: string) => {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1]! : fallback;
};

type DeviceName = 'mdgpu' | 'C responder' | 'edu';
type Op = 'readl' | 'writel';
type Mode = 'pinned' | 'unpinned';
const DEVICES: DeviceName[] = ['mdgpu', 'C responder', 'edu'];
const OPS: Op[] = ['readl', 'writel'];

const sortedCopy = (xs: Float64Array[]): Float64Array => {
  const n = xs.reduce((a, x) => a + x.length, 0);
  const out = new Float64Array(n);
  let at = 0;
  for (const x of xs) {
    out.set(x, at);
    at += x.length;
  }
  return out.sort();
};

/** The direct client pauses this long between accesses (untimed): one request per server wakeup, as behind QEMU. */
const DIRECT_GAP_US = 50;

const us = (ns: number) => (ns / 1000).toFixed(1);

interface Target {
  name: DeviceName;
  address: bigint;
  /** What a read returns after writing `v`. */
  expect(v: number): number;
}

/** Time `n` accesses of one register; returns ns per access. */
async function timeAccesses(qt: Qtest, t: Target, op: Op, n: number, seed: number): Promise<Float64Array> {
  const out = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    const t0 = process.hrtime.bigint();
    if (op === 'readl') await qt.readl(t.address);
    else await qt.writel(t.address, (seed + i) >>> 0);
    out[i] = Number(process.hrtime.bigint() - t0);
  }
  return out;
}

async function qemuSection(
  kit: Awaited<ReturnType<typeof ensureKit>>,
  work: string,
  rounds: number,
  n: number,
  cpus: { servers: string; driver: string; all: string },
) {
  const mdgpuSock = path.join(work, 'mdgpu.sock');
  const respSock = path.join(work, 'responder.sock');
  const mdgpu = spawnMdgpu(mdgpuSock, path.join(work, 'control.sock'));
  const responder = spawnResponder(respSock);
  let qt: Qtest | undefined;
  try {
    await waitForSocket(mdgpuSock, mdgpu, 'mdgpu');
    await waitForSocket(respSock, responder, 'the C responder');
    qt = await startQtest(kit, {
      vfioUser: [
        { socket: mdgpuSock, id: 'mdgpu' },
        // No mmapped region, so QEMU would post BAR writes (no reply awaited); mdgpu's mmapped
        // aperture turns posting off for it. Make both round trips.
        { socket: respSock, id: 'responder', props: { 'x-no-posted-writes': true } },
      ],
      devices: [{ driver: 'edu', id: 'edu' }],
      memoryMiB: 128,
      timeoutMs: 600_000,
    });
    const pci = new PciFirmware(qt);
    await pci.init();
    const fns = (await pci.assignBars()).functions;
    const barOf = (vendor: number, device: number, bar: number) => {
      const f = fns.find((x) => x.vendor === vendor && x.device === device);
      const b = f?.bars.find((x) => x.index === bar);
      if (!b) throw new Error(`device ${vendor.toString(16)}:${device.toString(16)} BAR${bar} not found`);
      return b.address;
    };
    const targets: Target[] = [
      { name: 'mdgpu', address: barOf(0x4d44, 0x4750, REGISTER_BAR) + BigInt(MDGPU_REGS.SCRATCH.offset), expect: (v) => v },
      { name: 'C responder', address: barOf(0x1234, 0x7f5e, 2) + 0xcn, expect: (v) => v },
      // edu's card liveness check: reads back the inverse of what was written.
      { name: 'edu', address: barOf(0x1234, 0x11e8, 0) + 0x4n, expect: (v) => ~v >>> 0 },
    ];
    for (const t of targets) {
      await qt.writel(t.address, 0x5a5aa5a5);
      const got = await qt.readl(t.address);
      if (got !== t.expect(0x5a5aa5a5)) throw new Error(`${t.name}: read back 0x${got.toString(16)} after writing 0x5a5aa5a5`);
    }

    const pids = [qt.qemu.child.pid!, mdgpu.pid!, responder.pid!];
    const samples = new Map<string, Float64Array[]>();
    const key = (m: Mode, d: DeviceName, o: Op) => `${m}|${d}|${o}`;
    for (const mode of ['pinned', 'unpinned'] as Mode[]) {
      for (const pid of pids) pin(pid, mode === 'pinned' ? cpus.servers : cpus.all);
      pin(process.pid, mode === 'pinned' ? cpus.driver : cpus.all);
      for (const t of targets) for (const op of OPS) await timeAccesses(qt, t, op, Math.min(n, 500), 0); // warm-up
      for (let r = 0; r < rounds; r++) {
        // Rotate the order each round so no device always runs first (or after the same one).
        const order = targets.map((_, i) => targets[(i + r) % targets.length]!);
        for (const t of order) {
          for (const op of OPS) {
            const k = key(mode, t.name, op);
            if (!samples.has(k)) samples.set(k, []);
            samples.get(k)!.push(await timeAccesses(qt, t, op, n, r * n));
          }
        }
      }
    }
    pin(process.pid, cpus.all);
    for (const t of targets) {
      const got = await qt.readl(t.address);
      const last = (rounds * n - 1) >>> 0;
      if (got !== t.expect(last)) throw new Error(`${t.name}: read back 0x${got.toString(16)} after the run, not the last value written`);
    }

    const rows: string[][] = [];
    const medianOf = (s: Float64Array[]) => quantile(sortedCopy(s), 0.5);
    for (const mode of ['pinned', 'unpinned'] as Mode[]) {
      for (const op of OPS) {
        const edu = samples.get(key(mode, 'edu', op))!;
        const eduMedian = medianOf(edu);
        const shareOf = (d: DeviceName) => medianOf(samples.get(key(mode, d, op))!) - eduMedian;
        for (const d of DEVICES) {
          const s = samples.get(key(mode, d, op))!;
          const all = sortedCopy(s);
          // The same subtraction within each round: how much the share moves from round to round.
          const perRound = s.map((x, r) => medianOf([x]) - medianOf([edu[r]!]));
          rows.push([
            mode,
            op,
            d,
            us(quantile(all, 0.5)),
            us(quantile(all, 0.99)),
            d === 'edu' ? '–' : us(shareOf(d)),
            d === 'edu' ? '' : `${us(Math.min(...perRound))}–${us(Math.max(...perRound))}`,
            d === 'mdgpu' ? `${(shareOf('mdgpu') / shareOf('C responder')).toFixed(2)}×` : '',
          ]);
        }
      }
    }
    return { rows, qemuVersion: kit.qemuVersion };
  } finally {
    if (qt) await qt.close();
    await stop(responder, 'SIGTERM');
    await stop(mdgpu);
  }
}

/** The servers alone: the C client against a fresh mdgpu and a fresh responder, pinned and unpinned. */
async function directSection(work: string, rounds: number, n: number, cpus: { servers: string; all: string }) {
  const rows: string[][] = [];
  const results = new Map<string, number>();
  for (const mode of ['pinned', 'unpinned'] as Mode[]) {
    for (const server of ['mdgpu', 'C responder'] as const) {
      const sock = path.join(work, `direct-${server === 'mdgpu' ? 'mdgpu' : 'c'}-${mode}.sock`);
      const child = server === 'mdgpu' ? spawnMdgpu(sock, path.join(work, `direct-control-${mode}.sock`)) : spawnResponder(sock);
      try {
        await waitForSocket(sock, child, server);
        pin(child.pid!, mode === 'pinned' ? cpus.servers : cpus.all);
        const taskset = mode === 'pinned' ? ['-c', cpus.servers] : ['-c', cpus.all];
        const out = execFileSync(
          'taskset',
          [...taskset, CLIENT_BIN, sock, String(REGISTER_BAR), `0x${MDGPU_REGS.SCRATCH.offset.toString(16)}`, String(n), String(rounds), String(DIRECT_GAP_US)],
          {
            encoding: 'utf8',
            maxBuffer: 256 << 20,
          },
        );
        const byOp = new Map<string, Float64Array[]>();
        for (const line of out.trim().split('\n')) {
          const [op, ...ns] = line.trim().split(' ');
          if (!byOp.has(op!)) byOp.set(op!, []);
          byOp.get(op!)!.push(Float64Array.from(ns.map(Number)));
        }
        for (const [op, s] of byOp) {
          const all = sortedCopy(s);
          results.set(`${mode}|${server}|${op}`, quantile(all, 0.5));
          rows.push([mode, op === 'read' ? 'REGION_READ' : 'REGION_WRITE', server, us(quantile(all, 0.5)), us(quantile(all, 0.99)), '']);
        }
      } finally {
        await stop(child, server === 'mdgpu' ? 'SIGINT' : 'SIGTERM');
      }
    }
  }
  for (const r of rows) {
    if (r[2] !== 'mdgpu') continue;
    const op = r[1] === 'REGION_READ' ? 'read' : 'write';
    const m = results.get(`${r[0]}|mdgpu|${op}`)!;
    const c = results.get(`${r[0]}|C responder|${op}`)!;
    r[5] = `${(m / c).toFixed(2)}× (+${us(m - c)} µs)`;
  }
  // Group as the QEMU table: mode, op, then server.
  rows.sort((a, b) => `${a[0]}|${a[1]}`.localeCompare(`${b[0]}|${b[1]}`));
  return rows;
}

async function main(): Promise<void> {
  if (process.argv.includes('--profile')) {
    await runProfile({ n: Number(arg('n', '20000')) });
    return;
  }
  const rounds = Number(arg('rounds', '3'));
  const n = Number(arg('n', '5000'));
  const directN = Number(arg('direct-n', '5000'));
  const ncpu = os.availableParallelism();
  // Pinned: everything on one CPU by default, so no access pays a cross-CPU wakeup of an idle
  // vCPU; `--driver-cpu other` keeps this driver off the servers' CPU instead.
  const driverOther = arg('driver-cpu', 'same') === 'other' && ncpu > 1;
  const cpus = { servers: '0', driver: driverOther ? '1' : '0', all: `0-${ncpu - 1}` };
  buildTrapC();
  const kit = await ensureKit();
  const work = fs.mkdtempSync(path.join(os.tmpdir(), 'mdgpu-bench-trap-'));
  const t0 = Date.now();
  try {
    const q = await qemuSection(kit, work, rounds, n, cpus);
    const direct = await directSection(work, rounds, directN, cpus);
    console.log(`\ntrapped access round trips — QEMU ${q.qemuVersion}, -accel qtest, ${rounds} rounds of ${n} per row`);
    console.log(
      `pinned: QEMU, the servers and this driver (qtest client) on CPU ${cpus.servers}${driverOther ? `, the driver on CPU ${cpus.driver}` : ''}; unpinned: CPUs ${cpus.all}\n`,
    );
    console.log(table(['mode', 'op', 'device', 'median µs', 'p99 µs', 'share µs', 'share per round', 'mdgpu/C share'], q.rows));
    console.log("\nshare = the device's median minus edu's (QEMU's own cost of a trapped MMIO through qtest), same mode and op.");
    console.log(`\nthe servers alone — bench/trap/client.c sends REGION_READ/WRITE of a 4-byte register, ${rounds} rounds of ${directN}`);
    console.log(`pinned: client and server on CPU ${cpus.servers}\n`);
    console.log(table(['mode', 'message', 'server', 'median µs', 'p99 µs', 'mdgpu/C'], direct));
    console.log(`\nrun ${((Date.now() - t0) / 1000).toFixed(1)} s`);
  } finally {
    fs.rmSync(work, { recursive: true, force: true });
  }
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  main().catch((err: unknown) => {
    console.error(`bench: ${(err as Error).stack ?? String(err)}`);
    process.exitCode = 1;
  });
}
