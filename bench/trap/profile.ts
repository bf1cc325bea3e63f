/**
 * Where the microseconds of mdgpu's REGION_READ/REGION_WRITE path go (issue 12), for the engineer
 * who makes it fast, each view next to the C responder (bench/trap/responder.c). The servers run
 * as deployed (`mdgpu serve`, its own process) and bench/trap/client.c drives them: REGION_READ
 * and REGION_WRITE of BAR2 SCRATCH, one request per server wakeup, client and server pinned to
 * one CPU (on this virtual machine, waking a task on the other, idle vCPU costs more than the
 * whole server path: that is measured by `npm run bench:trap`, not here).
 *
 * 1. CPU per message: the server's CPU time (schedstat of every thread; user/system from stat).
 * 2. Syscalls per message: `strace -f -c` attached to the server.
 * 3. Where mdgpu's CPU goes: `perf record -e cpu-clock -g` of the server (Node runs with
 *    `--perf-basic-prof`, so JIT-compiled JavaScript has names), inclusive shares of the call
 *    graph turned into µs per message with the CPU time of 1. Kernel time is included. Small
 *    functions TurboFan inlines are counted in their caller.
 * 4. Microbenchmarks of the native calls and pure functions on the path, warm, in this process.
 *
 *   npm run bench:trap -- --profile [--n 20000]
 *
 * valgrind --tool=callgrind was tried as a repeatable instruction count: on Node the count of two
 * consecutive windows differed by 30% (JIT tiering and background compiles land at different
 * times), so perf sampling of CPU time it is.
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { performance } from 'node:perf_hooks';
import { loadNative } from '../../src/native/binding.js';
import { MdgpuDevice, REGISTER_BAR } from '../../src/vgpu/device.js';
import { FakeHost } from '../../test/helpers/fake-host.js';
import { setLogSink } from '../../src/log.js';
import { Session } from '../../src/server/session.js';
import { encodeMessage } from '../../src/protocol/message.js';
import { encodeVersion } from '../../src/protocol/codec/version.js';
import { encodeRegionReadRequest } from '../../src/protocol/codec/region-read.js';
import { encodeRegionWriteRequest } from '../../src/protocol/codec/region-write.js';
import { MDGPU_REGS } from '../../src/vgpu/regs.js';
import { HeaderLayout, Command, MessageType } from '../../src/protocol/commands.js';
import { checkHeader, replyMessage } from '../../src/protocol/message.js';
import { decodeRegionReadRequest, encodeRegionReadReply } from '../../src/protocol/codec/region-read.js';
import { decodeRegionWriteRequest, encodeRegionWriteReply } from '../../src/protocol/codec/region-write.js';
import { RegionAccessLayout } from '../../src/protocol/codec/region-access.js';
import { table } from '../guest-bench.js';
import { buildTrapC, CLIENT_BIN, pin, spawnMdgpu, spawnResponder, stop, waitForSocket } from './common.js';

const SCRATCH = `0x${MDGPU_REGS.SCRATCH.offset.toString(16)}`;
/** Untimed pause between the client's accesses: one request per server wakeup, as behind QEMU. */
const GAP_US = 50;
const ns = () => performance.now() * 1e6;
const us = (v: number) => (v / 1000).toFixed(2);

const arg = (name: string, fallback: string) => {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1]! : fallback;
};

/** CPU time of a process so far: every thread's run time (schedstat), and user/system (stat, clock ticks). */
function cpuOf(pid: number): { runNs: number; userMs: number; sysMs: number; switches: number } {
  let runNs = 0;
  let switches = 0;
  for (const tid of fs.readdirSync(`/proc/${pid}/task`)) {
    runNs += Number(fs.readFileSync(`/proc/${pid}/task/${tid}/schedstat`, 'utf8').split(' ')[0]);
    const status = fs.readFileSync(`/proc/${pid}/task/${tid}/status`, 'utf8');
    for (const m of status.matchAll(/^(?:non)?voluntary_ctxt_switches:\s+(\d+)$/gm)) switches += Number(m[1]);
  }
  // Fields after the command name (which may hold spaces): utime is field 14, stime 15.
  const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
  const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  const tick = 1000 / 100; // USER_HZ is 100 on Linux
  return { runNs, userMs: Number(rest[11]) * tick, sysMs: Number(rest[12]) * tick, switches };
}

/** Run the C client (n reads, then n writes); returns per-op samples (ns). */
function runClient(sock: string, n: number, cpus: string): Map<string, Float64Array> {
  const out = execFileSync('taskset', ['-c', cpus, CLIENT_BIN, sock, String(REGISTER_BAR), SCRATCH, String(n), '1', String(GAP_US)], {
    encoding: 'utf8',
    maxBuffer: 256 << 20,
  });
  const res = new Map<string, Float64Array>();
  for (const line of out.trim().split('\n')) {
    const [op, ...v] = line.trim().split(' ');
    res.set(op!, Float64Array.from(v.map(Number)));
  }
  return res;
}

const median = (xs: Float64Array) => {
  const s = Float64Array.from(xs).sort();
  return s[Math.floor(s.length / 2)]!;
};

/** `strace -c` summary → calls per message, by syscall. */
function parseStraceSummary(text: string, messages: number): Map<string, number> {
  const out = new Map<string, number>();
  for (const line of text.split('\n')) {
    const cols = line.trim().split(/\s+/);
    if (cols.length < 5 || !/^\d/.test(cols[0]!) || cols[cols.length - 1] === 'total') continue;
    // % time, seconds, usecs/call, calls, [errors], syscall
    out.set(cols[cols.length - 1]!, Number(cols[3]) / messages);
  }
  return out;
}

/** `perf report --children` → inclusive and self share (0–1) by symbol, JIT tiers of a JS function summed. */
function perfShares(file: string): { incl: Map<string, number>; self: Map<string, number> } {
  const text = execFileSync('perf', ['report', '-i', file, '--children', '--sort', 'symbol', '-g', 'none', '--stdio'], {
    encoding: 'utf8',
    maxBuffer: 256 << 20,
    stdio: ['ignore', 'pipe', 'ignore'],
  });
  const incl = new Map<string, number>();
  const self = new Map<string, number>();
  for (const line of text.split('\n')) {
    const m = /^\s*([\d.]+)%\s+([\d.]+)%\s+\[[.k]\]\s+(.*?)(\s+-\s+-)?\s*$/.exec(line);
    if (!m) continue;
    // JIT names are `JS:*name file:line:col` (`*` optimized, `^` baseline, `~` interpreted, `+` Maglev): one key per function.
    const name = m[3]!.replace(/^JS:[*^~+]?/, 'JS:');
    incl.set(name, (incl.get(name) ?? 0) + Number(m[1]) / 100);
    self.set(name, (self.get(name) ?? 0) + Number(m[2]) / 100);
  }
  return { incl, self };
}

interface ServerRun {
  cpu: { total: number; user: number; sys: number; switches: number };
  rtt: { read: number; write: number };
  syscalls: Map<string, number>;
  perf: { incl: Map<string, number>; self: Map<string, number> };
}

/**
 * One server through the three windows: CPU and round trips, strace, perf. mdgpu is one process
 * warmed up first (it accepts the next client after each disconnect); the C responder serves one
 * client, so each window gets a fresh one.
 */
async function measureServer(server: 'mdgpu' | 'C responder', work: string, n: number, cpus: { client: string; server: string }): Promise<ServerRun> {
  const tag = server === 'mdgpu' ? 'mdgpu' : 'c';
  let instance = 0;
  const start = async (): Promise<{ child: ChildProcess; sock: string }> => {
    const sock = path.join(work, `${tag}-${instance++}.sock`);
    const child = server === 'mdgpu' ? spawnMdgpu(sock, path.join(work, `${tag}-control.sock`), ['--perf-basic-prof']) : spawnResponder(sock);
    await waitForSocket(sock, child, server);
    pin(child.pid!, cpus.server);
    return { child, sock };
  };
  const children: ChildProcess[] = [];
  let current: { child: ChildProcess; sock: string } | undefined;
  const next = async () => {
    if (server === 'mdgpu' && current) return current;
    current = await start();
    children.push(current.child);
    return current;
  };
  try {
    if (server === 'mdgpu') runClient((await next()).sock, 3000, cpus.client); // warm-up: JIT tiers

    let s = await next();
    const before = cpuOf(s.child.pid!);
    const samples = runClient(s.sock, n, cpus.client);
    const after = cpuOf(s.child.pid!);
    const messages = 2 * n + 1;
    const cpu = {
      total: (after.runNs - before.runNs) / messages,
      user: ((after.userMs - before.userMs) * 1e6) / messages,
      sys: ((after.sysMs - before.sysMs) * 1e6) / messages,
      switches: (after.switches - before.switches) / messages,
    };

    s = await next();
    const straceFile = path.join(work, `strace-${tag}.txt`);
    const strace = spawn('strace', ['-f', '-c', '-o', straceFile, '-p', String(s.child.pid)], { stdio: 'ignore' });
    await new Promise((r) => setTimeout(r, 1000));
    const m = 2000;
    runClient(s.sock, m, cpus.client);
    await new Promise((r) => setTimeout(r, 200));
    await stop(strace, 'SIGINT');
    const syscalls = parseStraceSummary(fs.readFileSync(straceFile, 'utf8'), 2 * m + 1);

    s = await next();
    const perfFile = path.join(work, `perf-${tag}.data`);
    const perf = spawn('perf', ['record', '-e', 'cpu-clock', '-F', '10000', '-g', '-p', String(s.child.pid), '-o', perfFile], { stdio: 'ignore' });
    await new Promise((r) => setTimeout(r, 500));
    runClient(s.sock, n, cpus.client);
    await stop(perf, 'SIGINT');
    return { cpu, rtt: { read: median(samples.get('read')!), write: median(samples.get('write')!) }, syscalls, perf: perfShares(perfFile) };
  } finally {
    for (const child of children) {
      await stop(child, server === 'mdgpu' ? 'SIGINT' : 'SIGTERM');
      fs.rmSync(`/tmp/perf-${child.pid}.map`, { force: true });
    }
  }
}

/** Inclusive share of the first (largest) symbol containing `part`; `=name` matches exactly. */
function share(perf: Map<string, number>, part: string): number {
  if (part.startsWith('=')) return perf.get(part.slice(1)) ?? 0;
  for (const [sym, v] of perf) if (sym.includes(part)) return v;
  return 0;
}

/**
 * The call graph of mdgpu's path as rows of µs per message (inclusive; indented rows are parts of
 * the row above). perf unwinds with frame pointers, which libc's syscall wrappers do not set up:
 * a sample inside a syscall loses the wrapper's caller (RecvMsg, SendMsg), so a syscall is added
 * to its caller's row here rather than found under it.
 */
function mdgpuBreakdown(perf: Map<string, number>, cpuPerMessageNs: number): string[][] {
  const s = (part: string) => share(perf, part);
  const onPoll = s('Poller::OnPoll');
  const js = s('=Builtins_JSEntry');
  const recvSyscall = s('=__libc_recvmsg');
  // recvmsgInto; the old recvmsg (header, body, then EAGAIN) is what the same row measured before.
  const recv = s('::RecvMsgInto') + s('::RecvMsg(') + recvSyscall;
  const eagain = s('mdgpu::ThrowErrno') + s('Napi::Error::ThrowAsJavaScriptException');
  const sendSyscall = s('=__libc_sendmsg');
  const send = s('::SendMsgFrom') + s('::SendMsg(') + sendSyscall;
  const pollerStart = s('Poller::Start>') + s('=__fcntl64_nocancel_adjusted') + s('=__libc_fcntl64');
  const gc = s('v8::internal::Heap::CollectGarbage');
  const rows: [string, number][] = [
    ['mdgpu, all CPU per message (every thread, kernel included)', 1],
    ['  libuv loop outside our callback (epoll_pwait: sleep, wakeup)', s('=uv__io_poll') - onPoll],
    ['  Node: napi_make_callback into JS (callback scope, async context)', onPoll - js],
    ['  JavaScript, inclusive (the poll callback: connection, fast path, session)', js],
    ['    recvmsg (recvmsgInto): addon and syscalls', recv],
    ['      the syscalls', recvSyscall],
    ['      EAGAIN thrown as a JS Error (none: recvmsgInto returns WOULD_BLOCK)', eagain],
    ['    sendmsg (sendmsgFrom): addon and syscall (the syscall wakes the client)', send],
    ['    Poller.start (only when the event mask changes)', pollerStart],
    ['    garbage collection', gc],
    ['    the JavaScript itself: connection, fast path, PCI, registers, reply', js - recv - send - pollerStart - gc],
    ['  epoll_ctl, wherever called (Poller.start, libuv)', s('=epoll_ctl')],
    ['  context switches (inside the syscalls above)', s('=__schedule')],
    ['  V8 background threads (JIT compiles, GC helpers)', s('PlatformWorkerThread')],
  ];
  return rows.map(([name, v]) => [name, us(v * cpuPerMessageNs), `${(100 * v).toFixed(1)}%`]);
}

function cBreakdown(perf: Map<string, number>, self: Map<string, number>, cpuPerMessageNs: number): string[][] {
  const s = (part: string) => share(perf, part);
  const own = [...self]
    .filter(([sym]) => /^(main|reply|read_full|read_header|handle|serve|send_all|config_write|region_size|close_fds)\b/.test(sym))
    .reduce((a, [, v]) => a + v, 0);
  const rows: [string, number][] = [
    ['C responder, all CPU per message (kernel included)', 1],
    ['  recvmsg (header; it blocks here between requests) and recv (body)', s('=__libc_recvmsg') + s('=__libc_recv')],
    ['  send (wakes the client)', s('=__send') + s('=__libc_send')],
    ['  its own code (decode, registers, reply; self time)', own],
    ['  context switches (inside the syscalls above)', s('=__schedule')],
  ];
  return rows.map(([name, v]) => [name, us(v * cpuPerMessageNs), `${(100 * v).toFixed(1)}%`]);
}

/** The symbols with the most self time (where the samples land), µs per message. */
function hottest(self: Map<string, number>, cpuPerMessageNs: number, k: number): string[][] {
  return [...self]
    .sort((a, b) => b[1] - a[1])
    .slice(0, k)
    .map(([sym, v]) => [sym.replace(/ file:\/\/\/.*\/build\//, ' '), us(v * cpuPerMessageNs), `${(100 * v).toFixed(1)}%`]);
}

/** Per-call cost of the native calls and pure functions on the path, warm. */
function microbench(): string[][] {
  const bench = (name: string, f: () => unknown, k = 300_000): string[] => {
    for (let i = 0; i < Math.min(k, 20_000); i++) f();
    const t0 = ns();
    for (let i = 0; i < k; i++) f();
    return [name, ((ns() - t0) / k).toFixed(0)];
  };
  const header = HeaderLayout.encode({ msgId: 1, command: Command.RegionRead, size: 32, flags: 0, error: 0 });
  const read = RegionAccessLayout.encode({ offset: 0xcn, region: 2, count: 4 });
  const write = new Uint8Array(20);
  write.set(RegionAccessLayout.encode({ offset: 0xcn, region: 2, count: 4 }));
  const data = new Uint8Array(4);
  const limits = { maxDataXferSize: 1 << 20 };
  const h = HeaderLayout.decode(header);
  const scratch = new Uint8Array(64);
  const native = loadNative();
  const [a, b] = native.socketpair();
  const buf = new Uint8Array(64);
  const msg = new Uint8Array(16);
  const eagain = () => {
    try {
      native.recvmsg(a!, buf, 0, 16, 16);
    } catch (err) {
      if ((err as { code?: string }).code !== 'EAGAIN') throw err;
    }
  };
  const fds = new Int32Array(new ArrayBuffer(4 * 18));
  const out = new Uint8Array(new ArrayBuffer(64));
  const noFds: readonly number[] = [];
  const fast = fastSession();
  const rows = [
    bench('recvmsgInto on an empty socket: WOULD_BLOCK', () => native.recvmsgInto(a!, buf, 0, 16, fds)),
    bench(
      'sendmsgFrom 32 B + recvmsgInto 32 B (a socketpair, no wakeup)',
      () => {
        native.sendmsgFrom(b!, out, 0, 32, noFds);
        native.recvmsgInto(a!, buf, 0, 64, fds);
      },
      50_000,
    ),
    bench('Session.handleFast: REGION_READ of SCRATCH, reply encoded', () => fast.read()),
    bench('Session.handleFast: REGION_WRITE of SCRATCH, reply encoded', () => fast.write()),
    bench('the general path, for comparison: recvmsg on an empty socket, EAGAIN thrown and caught', eagain, 20_000),
    bench(
      'sendmsg 16 B + recvmsg 16 B (a socketpair, no wakeup)',
      () => {
        native.sendmsg(b!, msg, []);
        native.recvmsg(a!, buf, 0, 16, 16);
      },
      50_000,
    ),
    bench('HeaderLayout.decode (header → object)', () => HeaderLayout.decode(header)),
    bench('checkHeader', () => checkHeader(h, { maxMessageSize: 1 << 21 })),
    bench('decodeRegionReadRequest', () => decodeRegionReadRequest(read, limits)),
    bench('decodeRegionWriteRequest', () => decodeRegionWriteRequest(write, limits)),
    bench('encodeRegionReadReply (16 B + 4 B data)', () => encodeRegionReadReply({ offset: 0xcn, region: 2, data })),
    bench('encodeRegionWriteReply', () => encodeRegionWriteReply({ offset: 0xcn, region: 2, count: 4 })),
    bench('replyMessage (header + payload copy)', () => replyMessage(h, read)),
    bench('for scale: new Uint8Array(20)', () => new Uint8Array(20)),
    bench('for scale: hand-written reply into a reused buffer', () => {
      const v = new DataView(scratch.buffer);
      v.setUint16(0, h.msgId, true);
      v.setUint16(2, h.command, true);
      v.setUint32(4, 36, true);
      v.setUint32(8, 1, true);
      v.setUint32(12, 0, true);
      scratch.set(read, 16);
      v.setUint32(32, 0x12345678, true);
      return scratch;
    }),
  ];
  native.close(a!);
  native.close(b!);
  fast.close();
  return rows;
}

/** A ready session on a device with in-memory host ops (the tests' FakeHost), and SCRATCH accesses for its fast path. */
function fastSession(): { read(): boolean; write(): boolean; close(): void } {
  const host = new FakeHost();
  const device = new MdgpuDevice({ name: 'bench', apertureSize: 1 << 16, host });
  const conn = { send() {}, sendCopy() {}, close() {}, isClosed: false };
  const session = new Session(conn, device.pci, () => {});
  const version = encodeMessage({ msgId: 0, command: Command.Version, flags: MessageType.Command }, encodeVersion({ major: 0, minor: 0 }));
  // Negotiate quietly: the session logs each client that connects.
  const restore = setLogSink(() => {});
  session.handleFrame({ header: HeaderLayout.decode(version), payload: version.subarray(16), fds: [] });
  setLogSink(restore);
  const at = (message: Uint8Array) => {
    const bytes = new Uint8Array(new ArrayBuffer(64));
    bytes.set(message);
    return { bytes, view: new DataView(bytes.buffer), size: message.length };
  };
  const offset = BigInt(MDGPU_REGS.SCRATCH.offset);
  const r = at(
    encodeMessage({ msgId: 1, command: Command.RegionRead, flags: MessageType.Command }, encodeRegionReadRequest({ offset, region: REGISTER_BAR, count: 4 })),
  );
  const w = at(
    encodeMessage(
      { msgId: 2, command: Command.RegionWrite, flags: MessageType.Command },
      encodeRegionWriteRequest({ offset, region: REGISTER_BAR, data: Uint8Array.of(1, 2, 3, 4) }),
    ),
  );
  return {
    read: () => session.handleFast(r.bytes, r.view, 0, r.size),
    write: () => session.handleFast(w.bytes, w.view, 0, w.size),
    close: () => device.close(),
  };
}

export async function runProfile(opts: { n: number }): Promise<void> {
  buildTrapC();
  const ncpu = os.availableParallelism();
  const cpus = { server: '0', client: arg('client-cpu', 'same') === 'other' && ncpu > 1 ? '1' : '0' };
  const work = fs.mkdtempSync(path.join(os.tmpdir(), 'mdgpu-bench-trap-prof-'));
  try {
    const mdgpu = await measureServer('mdgpu', work, opts.n, cpus);
    const c = await measureServer('C responder', work, opts.n, cpus);
    const micro = microbench();

    console.log(
      `\nprofile of mdgpu's REGION_READ/WRITE path — bench/trap/client.c, ${opts.n} reads + ${opts.n} writes, one per server wakeup; client and server on CPU ${cpus.server}${cpus.client !== cpus.server ? ` and ${cpus.client}` : ''}\n`,
    );
    console.log('1. CPU per message (every thread of the server) and the client-side round trip');
    console.log(
      table(
        ['server', 'CPU µs/msg', 'user µs', 'system µs', 'context switches/msg', 'REGION_READ RTT µs (median)', 'REGION_WRITE RTT µs (median)'],
        [mdgpu, c].map((r, i) => [
          i === 0 ? 'mdgpu' : 'C responder',
          us(r.cpu.total),
          us(r.cpu.user),
          us(r.cpu.sys),
          r.cpu.switches.toFixed(2),
          us(r.rtt.read),
          us(r.rtt.write),
        ]),
      ),
    );
    console.log('\n2. syscalls per message (strace -f -c, 2000 reads + 2000 writes)');
    const names = [...new Set([...mdgpu.syscalls.keys(), ...c.syscalls.keys()])]
      .filter((s) => (mdgpu.syscalls.get(s) ?? 0) + (c.syscalls.get(s) ?? 0) >= 0.01)
      .sort();
    console.log(
      table(
        ['syscall', 'mdgpu', 'C responder'],
        names.map((s) => [s, (mdgpu.syscalls.get(s) ?? 0).toFixed(2), (c.syscalls.get(s) ?? 0).toFixed(2)]),
      ),
    );
    console.log('\n3. where the CPU goes (perf record -e cpu-clock -g; inclusive, µs per message from 1.)');
    console.log(
      table(['where', 'µs/msg', 'share'], [...mdgpuBreakdown(mdgpu.perf.incl, mdgpu.cpu.total), ...cBreakdown(c.perf.incl, c.perf.self, c.cpu.total)]),
    );
    console.log("\n   mdgpu's hottest symbols (self time)");
    console.log(table(['symbol', 'µs/msg', 'share'], hottest(mdgpu.perf.self, mdgpu.cpu.total, 15)));
    console.log('\n4. native calls and pure functions on the path (ns per call, warm, in this process)');
    console.log(table(['call', 'ns'], micro));
  } finally {
    fs.rmSync(work, { recursive: true, force: true });
  }
}
