/**
 * What a hostile tenant can cost another (issue 9): each attack runs against a real daemon
 * (`mdgpu serve` in its own process, with its compute worker and kernel builder) from the
 * attacker's vGPU, while a victim VM on the other vGPU of the same daemon keeps doing trapped
 * register reads and small submissions — both played over real vfio-user sockets with the
 * aperture mapped from its fd (test/helpers/victim.ts, socket-guest.ts). Per attack: the victim's read and
 * submission latency (p50/p99) during the attack next to alone, the daemon's longest event-loop
 * stall (its own perf_hooks histogram, reset before each attack), its RSS growth, device resets,
 * and the victim's failed submissions and lost contexts.
 *
 * The F4 attacks are a hostile vfio-user client (a compromised QEMU) on the attacker's socket
 * instead of a guest: test/helpers/hostile-client.ts, in a process of its own.
 *
 *   npm run bench:hostile [-- --resets 100 --only F2,F3,F3w,F4a]
 *
 * Targets: longest stall ≤ 20 ms under every attack; victim p99 ≤ 2× alone; RSS growth
 * ≤ 64 MiB under the reply flood; zero victim contexts lost across 100 attacker-caused resets.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { queryStatus, type DaemonStatus } from '../../src/cli/control.js';
import { loadNative, type NativeBinding } from '../../src/native/binding.js';
import { encodeSubmission } from '../../src/vgpu/command-builder.js';
import { MAILBOX_OPS } from '../../src/vgpu/mailbox-ops.js';
import { QUEUE_CONTROL_SIZE, QueueControl } from '../../src/vgpu/queue-ring.js';
import { arrayVariable, nestedModule, unrollBomb } from '../../test/fixtures/spirv.js';
import type { AttackSummary } from '../../test/helpers/hostile-client.js';
import { SocketGuest } from '../../test/helpers/socket-guest.js';
import { percentile, Victim } from '../../test/helpers/victim.js';
import { table } from '../guest-bench.js';

const arg = (name: string, fallback: string) => {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1]! : fallback;
};
const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
const SPIN = fs.readFileSync(path.join(ROOT, 'guest-driver/kernels/build/spin.spv'));
const RESETS = Number(arg('resets', '100'));
const ONLY = arg('only', '')
  .split(',')
  .filter((s) => s.length > 0);

/** A daemon process with an attacker and a victim vGPU. */
class Daemon {
  readonly dir = fs.mkdtempSync(path.join(os.tmpdir(), 'mdgpu-hostile-bench-'));
  readonly attacker = path.join(this.dir, 'attacker.sock');
  readonly victim = path.join(this.dir, 'victim.sock');
  readonly control = path.join(this.dir, 'control.sock');
  readonly proc: ChildProcess;

  constructor(extra: string[]) {
    this.proc = spawn(
      process.execPath,
      [
        ...(process.env.MDGPU_BENCH_DAEMON_NODE_ARGS ?? '').split(' ').filter((a) => a.length > 0),
        path.join(ROOT, 'bin/mdgpu.js'),
        '--log-level',
        'quiet',
        'serve',
        '--vgpu',
        `socket=${this.attacker},aperture=64M`,
        '--vgpu',
        `socket=${this.victim},aperture=16M`,
        '--control',
        this.control,
        ...extra,
      ],
      { stdio: ['ignore', 'ignore', 'inherit'] },
    );
  }

  async ready(): Promise<void> {
    const deadline = Date.now() + 60_000;
    for (;;) {
      try {
        await queryStatus(this.control, 1000);
        return;
      } catch (err) {
        if (Date.now() > deadline || this.proc.exitCode !== null) throw err;
        await new Promise((r) => setTimeout(r, 100));
      }
    }
  }

  status(): Promise<DaemonStatus> {
    return queryStatus(this.control);
  }

  async resetEventLoop(): Promise<void> {
    const net = await import('node:net');
    await new Promise<void>((resolve, reject) => {
      const conn = net.connect(this.control);
      conn.on('data', () => {
        conn.end();
        resolve();
      });
      conn.on('error', reject);
      conn.write('{"cmd":"reset-event-loop"}\n');
    });
  }

  rssMiB(): number {
    const m = /VmRSS:\s+(\d+) kB/.exec(fs.readFileSync(`/proc/${this.proc.pid}/status`, 'utf8'));
    return m === null ? 0 : Number(m[1]) / 1024;
  }

  alive(): boolean {
    return this.proc.exitCode === null && this.proc.signalCode === null;
  }

  async stop(): Promise<void> {
    if (this.alive()) {
      const exited = new Promise((r) => this.proc.once('exit', r));
      this.proc.kill('SIGTERM');
      await exited;
    }
    fs.rmSync(this.dir, { recursive: true, force: true });
  }
}

interface AttackContext {
  native: NativeBinding;
  daemon: Daemon;
  /** The attacker's vGPU as a guest sees it (null for a raw-client attack, which has the socket to itself). */
  attacker: SocketGuest | null;
}

interface Attack {
  id: string;
  what: string;
  /** Extra `mdgpu serve` options for this attack's daemon. */
  serve?: string[];
  /** A hostile vfio-user client (a compromised QEMU) on the attacker's socket, instead of a guest. */
  rawClient?: boolean;
  run(ctx: AttackContext): Promise<string>;
}

const HOSTILE_CLIENT = path.join(ROOT, 'build/test/helpers/hostile-client.js');

/** Run test/helpers/hostile-client.ts's `attack` against the attacker's socket, in its own process. */
function rawClient(daemon: Daemon, attack: string, seconds = 3): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [HOSTILE_CLIENT, daemon.attacker, attack, String(seconds)], { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    child.stdout!.setEncoding('utf8').on('data', (c: string) => (out += c));
    child.on('error', reject);
    child.on('exit', (code) => {
      if (code !== 0) return reject(new Error(`hostile client ${attack} exited ${code}`));
      const s = JSON.parse(out.trim().split('\n').pop()!) as AttackSummary;
      const errors = Object.entries(s.errors)
        .map(([errno, n]) => `${n} ${errno}`)
        .join(', ');
      resolve(`${s.sent} sent, ${s.replies} answered, errors: ${errors || 'none'}, ${s.disconnects} disconnects`);
    });
  });
}

const guest = (ctx: AttackContext) => ctx.attacker!;
const words = (w: Uint32Array) => new Uint8Array(w.buffer, w.byteOffset, w.byteLength);

/** Build `spirv` through the attacker's mailbox `n` times; how many were refused. */
async function refusals(attacker: SocketGuest, spirv: Uint8Array, bindings: number, push: number, n: number): Promise<number> {
  let refused = 0;
  for (let i = 0; i < n; i++) {
    try {
      await attacker.kernel(spirv, bindings, push);
    } catch {
      refused++;
    }
  }
  return refused;
}

const ATTACKS: Attack[] = [
  {
    id: 'F1',
    what: 'SPIR-V bomb (structs nested 16 deep) x20',
    async run(ctx) {
      const attacker = guest(ctx);
      return `${await refusals(attacker, words(nestedModule(16, 3, { push: true })), 0, 128, 20)} of 20 refused`;
    },
  },
  {
    id: 'F1b',
    what: 'compile bomb (1.7 KB, minutes to compile), past a 2 s build limit x6',
    serve: ['--kernel-build-limit', '2000'],
    async run(ctx) {
      const attacker = guest(ctx);
      return `${await refusals(attacker, words(unrollBomb(64)), 1, 0, 6)} of 6 refused (3 timed out, then THROTTLED)`;
    },
  },
  {
    id: 'F6',
    what: 'kernel with 2 GiB of shared memory x5',
    async run(ctx) {
      const attacker = guest(ctx);
      return `${await refusals(attacker, words(arrayVariable(1 << 29, 'Workgroup')), 1, 0, 5)} of 5 refused`;
    },
  },
  {
    id: 'F2',
    what: 'ring flood: 65,536 empty submissions, one doorbell',
    async run(ctx) {
      const attacker = guest(ctx);
      const RING = 2 << 20;
      const ring = await attacker.alloc(QUEUE_CONTROL_SIZE + RING);
      const q = await attacker.op(MAILBOX_OPS.QUEUE_CREATE.code, attacker.ctx, ring.handle, 0);
      const one = encodeSubmission([]);
      const n = RING / one.length;
      for (let i = 0; i < n; i++) attacker.aperture.set(one, ring.offset + QUEUE_CONTROL_SIZE + i * one.length);
      attacker.view.setBigUint64(ring.offset + QueueControl.fields.tail.offset, BigInt(RING), true);
      await attacker.write('QUEUE_DOORBELL', q.ret);
      const completed = () => attacker.view.getBigUint64(ring.offset + QueueControl.fields.completed.offset, true);
      await attacker.waitCompleted(completed, BigInt(n));
      return `${n} consumed`;
    },
  },
  {
    id: 'F4a',
    what: 'reply flood: 400 one-MiB REGION_READs, replies never read',
    rawClient: true,
    run: ({ daemon }) => rawClient(daemon, 'reply-flood'),
  },
  {
    id: 'F4b',
    what: 'DMA_MAP flood: 4 KiB memfd maps at fresh IOVAs',
    rawClient: true,
    run: ({ daemon }) => rawClient(daemon, 'dma-maps'),
  },
  {
    id: 'F4c',
    what: 'config-read flood: socket kept full of 4-byte reads',
    rawClient: true,
    run: ({ daemon }) => rawClient(daemon, 'config-flood'),
  },
  ...(['parts', 'whole'] as const).map(
    (mode): Attack => ({
      // In parts (the default) a batch past its limit is lost between two parts, without a
      // device reset; run whole (--no-preempt) every one of them is a real reset of the device.
      id: mode === 'parts' ? 'F3' : 'F3w',
      what:
        mode === 'parts'
          ? `${RESETS} batches past a 200 ms limit (spin kernel, run in parts: lost between parts)`
          : `${RESETS} device resets (spin kernel past a 200 ms limit, --no-preempt: run whole)`,
      serve: ['--batch-limit', '200', '--reset-budget', '0/60', ...(mode === 'whole' ? ['--no-preempt'] : [])],
      async run(ctx: AttackContext) {
        const attacker = guest(ctx);
        const want = new Uint8Array(4);
        new DataView(want.buffer).setUint32(0, 1, true);
        let lost = 0;
        for (let i = 0; i < RESETS; i++) {
          // A new context each time: a lost context cannot reach the device again.
          attacker.ctx = (await attacker.op(MAILBOX_OPS.CTX_CREATE.code)).ret;
          const spin = await attacker.kernel(SPIN, 1, 4);
          const flag = await attacker.alloc(0x1000);
          const q = await attacker.queue();
          await q.publish(
            encodeSubmission([
              { op: 'dispatch', kernel: spin, groups: [4096, 4096, 1], bindings: [{ buffer: flag.handle, offset: 0, size: 4096 }], push: want },
            ]),
          );
          await attacker.waitCompleted(q.completed, 1n);
          if (attacker.view.getBigUint64(q.ring.offset + QueueControl.fields.errors.offset, true) === 1n) lost++;
          await attacker.op(MAILBOX_OPS.CTX_DESTROY.code, attacker.ctx);
        }
        return `${lost} attacker contexts lost`;
      },
    }),
  ),
];

async function main(): Promise<void> {
  const native = loadNative();
  const rows: string[][] = [];
  const attacks = ATTACKS.filter((a) => ONLY.length === 0 || ONLY.includes(a.id));
  for (const attack of attacks) {
    const daemon = new Daemon(attack.serve ?? []);
    try {
      await daemon.ready();
      const victim = await Victim.connect(native, daemon.victim);
      const attacker = attack.rawClient ? null : await SocketGuest.connect(native, daemon.attacker);
      // Alone: the victim's own latencies on this daemon.
      for (let i = 0; i < 20; i++) await victim.submit();
      victim.start();
      await new Promise((r) => setTimeout(r, 1500));
      const alone = await victim.stop();
      const before = await daemon.status();
      const rssBefore = daemon.rssMiB();
      let rssPeak = rssBefore;
      const sampler = setInterval(() => (rssPeak = Math.max(rssPeak, daemon.rssMiB())), 50);
      await daemon.resetEventLoop();
      victim.start();
      const t0 = performance.now();
      let note: string;
      try {
        note = await attack.run({ native, daemon, attacker });
      } catch (err) {
        note = `attack failed: ${(err as Error).message}`;
      }
      const seconds = (performance.now() - t0) / 1000;
      const during = await victim.stop();
      clearInterval(sampler);
      const after = await daemon.status();
      const vb = before.vgpus.find((v) => v.name === 'vgpu1')!;
      const va = after.vgpus.find((v) => v.name === 'vgpu1')!;
      const ms = (v: number) => v.toFixed(2);
      rows.push([
        `${attack.id} ${attack.what}`,
        `${ms(percentile(alone.reads, 50))}/${ms(percentile(alone.reads, 99))}`,
        `${ms(percentile(during.reads, 50))}/${ms(percentile(during.reads, 99))}`,
        `${ms(percentile(alone.submissions, 50))}/${ms(percentile(alone.submissions, 99))}`,
        `${ms(percentile(during.submissions, 50))}/${ms(percentile(during.submissions, 99))}`,
        after.eventLoop.maxMs.toFixed(1),
        (rssPeak - rssBefore).toFixed(0),
        String(after.computeResets - before.computeResets),
        String(va.lostContexts - vb.lostContexts),
        String(during.failures.length + during.readFailures),
        `${seconds.toFixed(1)} s; ${note}${daemon.alive() ? '' : '; DAEMON DIED'}`,
      ]);
      attacker?.close();
      victim.close();
    } finally {
      await daemon.stop();
    }
  }
  console.log('\nhostile tenant vs. victim on one daemon (victim: trapped SCRATCH reads and 4 KiB FILL+fence submissions; ms p50/p99)\n');
  console.log(
    table(
      [
        'attack',
        'reads alone',
        'reads attacked',
        'submits alone',
        'submits attacked',
        'max stall ms',
        'RSS +MiB',
        'resets',
        'victim lost',
        'victim failed',
        'notes',
      ],
      rows,
    ),
  );
}

await main();
