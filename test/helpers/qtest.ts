/**
 * A client for QEMU's qtest protocol (`-accel qtest -qtest unix:PATH`), for guest-less
 * tests: the test reads and writes guest-physical memory and I/O ports itself, so it can
 * program a device's config space and BARs without booting anything.
 *
 * As in QEMU's libqtest (`tests/qtest/libqtest.c`, `qtest_init_without_qmp_handshake`),
 * the test side listens on two Unix sockets first and QEMU connects to both at startup:
 * the qtest socket (`-qtest unix:PATH`, a chardev in client mode) and a QMP monitor
 * (`-qmp unix:PATH`, also a client; `-mon` is deprecated in QEMU 11).
 *
 * qtest protocol: one command per line, one reply line per command, in order: `OK [value]`
 * or `FAIL reason`. Lines starting with `IRQ raise|lower N` arrive asynchronously once an
 * IRQ is intercepted (`irq_intercept_in/out`) and are not replies.
 */
import { EventEmitter } from 'node:events';
import * as fsp from 'node:fs/promises';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import type { Kit } from '../../src/kit/kit-tree.js';
import { qemuArgs, spawnQemu, type QemuArgsOptions, type QemuExit, type QemuProcess } from '../../src/kit/qemu.js';

/** An address or value: numbers must be safe integers; use bigint above 2^53. */
export type Addr = number | bigint;

const hex = (v: Addr) => `0x${BigInt(v).toString(16)}`;

/** Memory and port access, as the PCI helpers need it (implemented by {@link Qtest}). */
export interface PhysIo {
  readb(addr: Addr): Promise<number>;
  readw(addr: Addr): Promise<number>;
  readl(addr: Addr): Promise<number>;
  writeb(addr: Addr, value: number): Promise<void>;
  writew(addr: Addr, value: number): Promise<void>;
  writel(addr: Addr, value: number): Promise<void>;
  inb(port: number): Promise<number>;
  inw(port: number): Promise<number>;
  inl(port: number): Promise<number>;
  outb(port: number, value: number): Promise<void>;
  outw(port: number, value: number): Promise<void>;
  outl(port: number, value: number): Promise<void>;
}

/** A line-oriented connection accepted on a listening Unix socket. */
class LineConn {
  private buf = '';
  private readonly sock: net.Socket;
  onLine: (line: string) => void = () => undefined;
  onClose: (err?: Error) => void = () => undefined;
  constructor(sock: net.Socket) {
    this.sock = sock;
    sock.setEncoding('utf8');
    sock.on('data', (c: string) => {
      this.buf += c;
      let i: number;
      while ((i = this.buf.indexOf('\n')) >= 0) {
        const line = this.buf.slice(0, i).replace(/\r$/, '');
        this.buf = this.buf.slice(i + 1);
        this.onLine(line);
      }
    });
    sock.on('error', (e) => this.onClose(e));
    sock.on('close', () => this.onClose());
  }
  write(s: string): void {
    this.sock.write(s);
  }
  destroy(): void {
    this.sock.destroy();
  }
}

/** Listen on a Unix socket. */
function listenUnix(file: string): Promise<net.Server> {
  const server = net.createServer();
  return new Promise<net.Server>((resolve, reject) => {
    server.once('error', reject);
    server.listen(file, () => resolve(server));
  });
}

/** The first connection on `server` (which is then closed); rejects if `abort` settles first or on timeout. */
async function acceptOne(server: net.Server, abort: Promise<unknown>, timeoutMs: number, what: string): Promise<net.Socket> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([
      new Promise<net.Socket>((resolve) => server.once('connection', resolve)),
      abort.then(() => {
        throw new Error(`QEMU exited before connecting to the ${what} socket`);
      }),
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`QEMU did not connect to the ${what} socket within ${timeoutMs} ms`)), timeoutMs);
      }),
    ]);
  } finally {
    clearTimeout(timer);
    server.close();
  }
}

interface Pending {
  cmd: string;
  resolve: (v: string) => void;
  reject: (e: Error) => void;
}

export interface QtestOptions extends Omit<QemuArgsOptions, 'accel' | 'kernel' | 'initrd' | 'append' | 'serial'> {
  /** Lifetime deadline of the QEMU process (default 120 s); it is killed afterwards. */
  timeoutMs?: number;
  /** How long QEMU may take to connect (default 30 s). */
  connectTimeoutMs?: number;
  /** Trace of every qtest command and reply, and QEMU's stderr. */
  log?: (line: string) => void;
}

export interface QmpError extends Error {
  qmpClass?: string;
}

/**
 * A QEMU started with `-accel qtest`, with a qtest connection and a QMP connection.
 * Values of 8, 16 and 32 bits are numbers; 64-bit values are bigints.
 */
export class Qtest extends EventEmitter implements PhysIo {
  /** Levels of intercepted IRQ lines, from `IRQ raise/lower` lines. */
  readonly irqLevels = new Map<number, boolean>();
  /** QMP events received so far (oldest first). */
  readonly events: Record<string, unknown>[] = [];
  private readonly pending: Pending[] = [];
  private readonly qmpPending: Pending[] = [];
  private closed?: Error;

  private constructor(
    private readonly conn: LineConn,
    private readonly qmpConn: LineConn,
    readonly qemu: QemuProcess,
    readonly args: string[],
    private readonly dir: string,
    private readonly log?: (line: string) => void,
  ) {
    super();
    this.greeted.catch(() => undefined); // awaited in start(); never an unhandled rejection
    conn.onLine = (l) => this.onQtestLine(l);
    qmpConn.onLine = (l) => this.onQmpLine(l);
    const fail = (err?: Error) => this.failAll(new Error(`QEMU connection closed${err ? `: ${err.message}` : ''}`));
    conn.onClose = fail;
    qmpConn.onClose = fail;
    void qemu.exited.then((r) => this.failAll(new Error(`QEMU exited (${r.code ?? r.signal}${r.timedOut ? ', timed out' : ''}): ${r.stderr.trim()}`)));
  }

  /** Start the kit's QEMU in qtest mode with the given devices (root ports etc. as for a guest). */
  static async start(kit: Pick<Kit, 'qemu'>, opts: QtestOptions = {}): Promise<Qtest> {
    const dir = await fsp.mkdtemp(path.join(os.tmpdir(), 'mdgpu-qtest-'));
    const qtestSock = path.join(dir, 'qtest.sock');
    const qmpSock = path.join(dir, 'qmp.sock');
    const { timeoutMs, connectTimeoutMs, log, ...rest } = opts;
    const args = [...qemuArgs({ ...rest, accel: 'qtest' }), '-qtest', `unix:${qtestSock}`, '-qtest-log', '/dev/null', '-qmp', `unix:${qmpSock}`];
    log?.(`qtest: starting QEMU ${args.join(' ')}`);
    // Both sockets listen before QEMU starts: it connects to them while it initialises.
    const servers = await Promise.all([listenUnix(qtestSock), listenUnix(qmpSock)]);
    const qemu = spawnQemu(kit, args, { timeoutMs: timeoutMs ?? 120_000, onStderr: (c) => log?.(`qemu stderr: ${c.trimEnd()}`) });
    const names = ['qtest', 'QMP'];
    let socks: net.Socket[];
    try {
      socks = await Promise.all(servers.map((s, i) => acceptOne(s, qemu.exited, connectTimeoutMs ?? 30_000, names[i]!)));
    } catch (e) {
      for (const s of servers) s.close();
      const r = await qemu.kill();
      await fsp.rm(dir, { recursive: true, force: true });
      throw new Error(`${(e as Error).message}; QEMU stderr: ${r.stderr.trim()}`);
    }
    const qt = new Qtest(new LineConn(socks[0]!), new LineConn(socks[1]!), qemu, args, dir, log);
    try {
      await qt.qmpGreeting();
      const endian = await qt.command('endianness');
      if (endian !== 'little') throw new Error(`Unexpected target endianness: ${endian}`);
    } catch (e) {
      // QEMU connects to both sockets before it realizes devices, so a device that fails
      // (e.g. a vfio-user server that is not listening) shows up here: report why.
      const r = await qt.close();
      throw new Error(`${(e as Error).message}; QEMU exited (${r.code ?? r.signal}): ${r.stderr.trim()}`);
    }
    return qt;
  }

  private failAll(err: Error): void {
    if (!this.closed) this.closed = err;
    this.greeting.reject(new Error(`QMP greeting: ${err.message}`));
    for (const p of this.pending.splice(0)) p.reject(new Error(`qtest ${p.cmd}: ${err.message}`));
    for (const p of this.qmpPending.splice(0)) p.reject(new Error(`QMP ${p.cmd}: ${err.message}`));
  }

  private onQtestLine(line: string): void {
    this.log?.(`qtest < ${line}`);
    const irq = /^IRQ (raise|lower) (\d+)$/.exec(line);
    if (irq) {
      const n = Number(irq[2]);
      this.irqLevels.set(n, irq[1] === 'raise');
      this.emit('irq', { line: n, level: irq[1] === 'raise' });
      return;
    }
    const p = this.pending.shift();
    if (!p) {
      this.log?.(`qtest: unexpected line ${line}`);
      return;
    }
    if (line === 'OK') p.resolve('');
    else if (line.startsWith('OK ')) p.resolve(line.slice(3));
    else p.reject(new Error(`qtest ${p.cmd}: ${line}`));
  }

  private greeting!: { resolve: () => void; reject: (e: Error) => void };
  private readonly greeted = new Promise<void>((resolve, reject) => (this.greeting = { resolve, reject }));

  private onQmpLine(line: string): void {
    this.log?.(`qmp < ${line}`);
    let msg: Record<string, unknown>;
    try {
      msg = JSON.parse(line) as Record<string, unknown>;
    } catch {
      return;
    }
    if ('QMP' in msg) {
      this.greeting.resolve();
      return;
    }
    if ('event' in msg) {
      this.events.push(msg);
      this.emit('event', msg);
      return;
    }
    const p = this.qmpPending.shift();
    if (!p) return;
    if ('error' in msg) {
      const e = msg.error as { class?: string; desc?: string };
      const err: QmpError = new Error(`QMP ${p.cmd}: ${e.class ?? 'Error'}: ${e.desc ?? ''}`);
      err.qmpClass = e.class;
      p.reject(err);
    } else {
      p.resolve(JSON.stringify(msg.return ?? null));
    }
  }

  private async qmpGreeting(): Promise<void> {
    await this.greeted;
    await this.qmp('qmp_capabilities');
  }

  /** Send a raw qtest command line; resolves with the text after `OK`. */
  command(cmd: string): Promise<string> {
    if (this.closed) return Promise.reject(new Error(`qtest ${cmd}: ${this.closed.message}`));
    return new Promise<string>((resolve, reject) => {
      this.pending.push({ cmd, resolve, reject });
      this.log?.(`qtest > ${cmd}`);
      this.conn.write(`${cmd}\n`);
    });
  }

  /** Run a QMP command; resolves with its `return` value. */
  async qmp<T = unknown>(execute: string, args?: Record<string, unknown>): Promise<T> {
    if (this.closed) throw new Error(`QMP ${execute}: ${this.closed.message}`);
    const text = await new Promise<string>((resolve, reject) => {
      this.qmpPending.push({ cmd: execute, resolve, reject });
      const line = JSON.stringify(args ? { execute, arguments: args } : { execute });
      this.log?.(`qmp > ${line}`);
      this.qmpConn.write(`${line}\n`);
    });
    return JSON.parse(text) as T;
  }

  /** Run an HMP (human monitor) command through QMP and return its text output. */
  hmp(commandLine: string): Promise<string> {
    return this.qmp<string>('human-monitor-command', { 'command-line': commandLine });
  }

  private async readN(cmd: string, addr: Addr): Promise<number> {
    return Number(await this.command(`${cmd} ${hex(addr)}`));
  }

  readb(addr: Addr): Promise<number> {
    return this.readN('readb', addr);
  }
  readw(addr: Addr): Promise<number> {
    return this.readN('readw', addr);
  }
  readl(addr: Addr): Promise<number> {
    return this.readN('readl', addr);
  }
  async readq(addr: Addr): Promise<bigint> {
    return BigInt(await this.command(`readq ${hex(addr)}`));
  }
  async writeb(addr: Addr, value: number): Promise<void> {
    await this.command(`writeb ${hex(addr)} ${hex(value & 0xff)}`);
  }
  async writew(addr: Addr, value: number): Promise<void> {
    await this.command(`writew ${hex(addr)} ${hex(value & 0xffff)}`);
  }
  async writel(addr: Addr, value: number): Promise<void> {
    await this.command(`writel ${hex(addr)} ${hex(value >>> 0)}`);
  }
  async writeq(addr: Addr, value: bigint | number): Promise<void> {
    await this.command(`writeq ${hex(addr)} ${hex(BigInt.asUintN(64, BigInt(value)))}`);
  }

  /** Read `size` bytes of guest-physical memory. */
  async read(addr: Addr, size: number): Promise<Buffer> {
    if (size === 0) return Buffer.alloc(0);
    const v = await this.command(`read ${hex(addr)} ${hex(size)}`);
    return Buffer.from(v.replace(/^0x/, ''), 'hex');
  }
  /** Write bytes to guest-physical memory. */
  async write(addr: Addr, data: Uint8Array): Promise<void> {
    if (data.length === 0) return;
    await this.command(`write ${hex(addr)} ${hex(data.length)} 0x${Buffer.from(data).toString('hex')}`);
  }
  /** Fill guest-physical memory with a byte. */
  async memset(addr: Addr, size: number, byte: number): Promise<void> {
    await this.command(`memset ${hex(addr)} ${hex(size)} ${hex(byte & 0xff)}`);
  }

  private async inN(cmd: string, port: number): Promise<number> {
    return Number(await this.command(`${cmd} ${hex(port)}`));
  }
  inb(port: number): Promise<number> {
    return this.inN('inb', port);
  }
  inw(port: number): Promise<number> {
    return this.inN('inw', port);
  }
  inl(port: number): Promise<number> {
    return this.inN('inl', port);
  }
  async outb(port: number, value: number): Promise<void> {
    await this.command(`outb ${hex(port)} ${hex(value & 0xff)}`);
  }
  async outw(port: number, value: number): Promise<void> {
    await this.command(`outw ${hex(port)} ${hex(value & 0xffff)}`);
  }
  async outl(port: number, value: number): Promise<void> {
    await this.command(`outl ${hex(port)} ${hex(value >>> 0)}`);
  }

  /** Advance the virtual clock by `ns` (or to the next timer); returns the new clock in ns. */
  async clockStep(ns?: number): Promise<bigint> {
    return BigInt(await this.command(ns === undefined ? 'clock_step' : `clock_step ${ns}`));
  }

  /** Intercept the GPIO inputs of a QOM device (e.g. `/machine/ioapic` or the I/O APIC's path); levels arrive as `irq` events. */
  async irqInterceptIn(qomPath: string): Promise<void> {
    await this.command(`irq_intercept_in ${qomPath}`);
  }

  /** Quit QEMU (QMP `quit`, then SIGTERM/SIGKILL if it lingers) and clean up. */
  async close(): Promise<QemuExit> {
    if (!this.closed) {
      await Promise.race([this.qmp('quit').catch(() => undefined), new Promise((r) => setTimeout(r, 2000))]);
    }
    const exit = await Promise.race([this.qemu.exited, new Promise<undefined>((r) => setTimeout(() => r(undefined), 5000))]);
    const r = exit ?? (await this.qemu.kill());
    this.conn.destroy();
    this.qmpConn.destroy();
    await fsp.rm(this.dir, { recursive: true, force: true });
    return r;
  }
}

/** Shorthand for {@link Qtest.start}. */
export function startQtest(kit: Pick<Kit, 'qemu'>, opts: QtestOptions = {}): Promise<Qtest> {
  return Qtest.start(kit, opts);
}
