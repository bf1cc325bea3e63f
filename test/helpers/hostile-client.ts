/**
 * A hostile vfio-user client (a compromised QEMU), run as its own process so its loops never share
 * the daemon's event loop: raw messages on a Unix socket through the native addon, one attack per
 * run, a JSON summary on stdout at the end.
 *
 *   node build/test/helpers/hostile-client.js <socket> <attack> [seconds]
 *
 * Attacks (issue 9, F4 and the "Low" items):
 * - `reply-flood`: 400 one-MiB REGION_READs of BAR0, replies never read (F4a).
 * - `dma-maps`: 4 KiB memfd DMA_MAPs at fresh IOVAs until refused or 70,000 sent (F4b).
 * - `config-flood`: keeps the socket full of 4-byte config-space reads, reading replies (F4c).
 * - `malformed`: connects, sends a header with bad type bits, repeats (the log flood).
 *
 * Bounded in count and time: every attack stops by itself after `seconds` (default 3).
 */
import { loadNative, isErrno, type NativeBinding } from '../../src/native/binding.js';
import { Command, HEADER_SIZE, HeaderLayout, HeaderFlag, MessageType } from '../../src/protocol/commands.js';
import { encodeMessage } from '../../src/protocol/message.js';
import { encodeVersionRequest } from '../../src/protocol/codec/version.js';
import { encodeRegionReadRequest } from '../../src/protocol/codec/region-read.js';
import { encodeDmaMapRequest } from '../../src/protocol/codec/dma-map.js';

export type Attack = 'reply-flood' | 'dma-maps' | 'config-flood' | 'malformed';
export const ATTACKS: readonly Attack[] = ['reply-flood', 'dma-maps', 'config-flood', 'malformed'];

/** What an attack saw, printed as one JSON line. */
export interface AttackSummary {
  attack: Attack;
  /** Requests written to the socket. */
  sent: number;
  /** Success replies read. */
  replies: number;
  /** Error replies read, by errno. */
  errors: Record<string, number>;
  /** Times the server closed the connection on us. */
  disconnects: number;
  /** Connections made. */
  connections: number;
  /** Requests that could not be written because the socket stayed full. */
  blockedWrites: number;
  seconds: number;
}

const CONFIG_REGION = 7;
const BAR0 = 0;
const MiB = 1 << 20;

function sleepMs(ms: number): void {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
}

/** A raw client socket: blocking-style writes with a deadline, non-blocking reads of whole replies. */
class RawSocket {
  private readonly scratch = new Uint8Array(2 * MiB);
  private have = 0;
  closed = false;
  private nextId = 1;

  constructor(
    private readonly native: NativeBinding,
    readonly fd: number,
  ) {}

  /** Write all of `message`; false if the socket stayed full past `deadline` or the peer closed. */
  write(message: Uint8Array, fds: number[] = [], deadline = Date.now() + 2000): boolean {
    let at = 0;
    while (at < message.length) {
      try {
        at += this.native.sendmsg(this.fd, message.subarray(at), at === 0 ? fds : []);
      } catch (err) {
        if (isErrno(err, 'EAGAIN')) {
          if (Date.now() > deadline) return false;
          sleepMs(1);
          continue;
        }
        this.closed = true;
        return false;
      }
    }
    return true;
  }

  /** Write as much of `bytes` as fits now; the number of bytes written (0 when the socket is full). */
  tryWriteSome(bytes: Uint8Array): number {
    try {
      return this.native.sendmsg(this.fd, bytes, []);
    } catch (err) {
      if (!isErrno(err, 'EAGAIN')) this.closed = true;
      return 0;
    }
  }

  /** Encode a command with the next message id. */
  request(command: number, payload: Uint8Array, flags: number = MessageType.Command): Uint8Array {
    const id = this.nextId;
    this.nextId = (this.nextId + 1) & 0xffff;
    return encodeMessage({ msgId: id, command, flags }, payload);
  }

  /** Read whatever replies are available; returns their headers. */
  drain(): { flags: number; error: number }[] {
    const out: { flags: number; error: number }[] = [];
    for (;;) {
      if (this.closed) return out;
      let got: { bytes: number; fds: number[] };
      try {
        got = this.native.recvmsg(this.fd, this.scratch, this.have, this.scratch.length - this.have, 8);
      } catch (err) {
        if (!isErrno(err, 'EAGAIN')) this.closed = true;
        return out;
      }
      for (const fd of got.fds) this.native.close(fd);
      if (got.bytes === 0) {
        this.closed = true;
        return out;
      }
      this.have += got.bytes;
      let at = 0;
      while (this.have - at >= HEADER_SIZE) {
        const header = HeaderLayout.decode(this.scratch.subarray(at, at + HEADER_SIZE));
        if (this.have - at < header.size) break;
        out.push({ flags: header.flags, error: header.error });
        at += header.size;
      }
      this.scratch.copyWithin(0, at, this.have);
      this.have -= at;
    }
  }

  /** Wait up to `ms` for `n` replies. */
  await(n: number, ms: number): { flags: number; error: number }[] {
    const deadline = Date.now() + ms;
    const out: { flags: number; error: number }[] = [];
    while (out.length < n && !this.closed && Date.now() < deadline) {
      const got = this.drain();
      out.push(...got);
      if (got.length === 0) sleepMs(1);
    }
    return out;
  }

  close(): void {
    if (this.fd >= 0) this.native.close(this.fd);
  }
}

function versionMessage(sock: RawSocket): Uint8Array {
  return sock.request(
    Command.Version,
    encodeVersionRequest({ major: 0, minor: 0, capabilities: { maxMsgFds: 16, maxDataXferSize: MiB, pgsizes: 4096, maxDmaMaps: 65535 } }),
  );
}

function tally(summary: AttackSummary, replies: { flags: number; error: number }[]): void {
  for (const r of replies) {
    if ((r.flags & HeaderFlag.Error) !== 0) summary.errors[String(r.error)] = (summary.errors[String(r.error)] ?? 0) + 1;
    else summary.replies++;
  }
}

function connect(native: NativeBinding, socketPath: string, summary: AttackSummary): RawSocket {
  summary.connections++;
  return new RawSocket(native, native.connectUnix(socketPath));
}

function handshake(sock: RawSocket, summary: AttackSummary): void {
  if (!sock.write(versionMessage(sock))) throw new Error('VERSION not sent');
  const reply = sock.await(1, 5000);
  if (reply.length !== 1 || (reply[0]!.flags & HeaderFlag.Error) !== 0) throw new Error('no VERSION reply');
  summary.sent++;
  summary.replies++;
}

export function runAttack(native: NativeBinding, socketPath: string, attack: Attack, seconds: number): AttackSummary {
  const started = Date.now();
  const until = started + seconds * 1000;
  const summary: AttackSummary = { attack, sent: 0, replies: 0, errors: {}, disconnects: 0, connections: 0, blockedWrites: 0, seconds: 0 };
  switch (attack) {
    case 'reply-flood': {
      // Ask for 400 MiB of replies and never read one: only the server's memory can hold them.
      const sock = connect(native, socketPath, summary);
      handshake(sock, summary);
      const read = sock.request(Command.RegionRead, encodeRegionReadRequest({ offset: 0n, region: BAR0, count: MiB }));
      for (let i = 0; i < 400; i++) {
        if (sock.write(read, [], until)) summary.sent++;
        else summary.blockedWrites++;
      }
      while (Date.now() < until && !sock.closed) sleepMs(20);
      if (sock.closed) summary.disconnects++;
      sock.close();
      break;
    }
    case 'dma-maps': {
      // One 4 KiB memfd, a fresh fd number per DMA_MAP (as QEMU sends), a fresh IOVA each time.
      const sock = connect(native, socketPath, summary);
      handshake(sock, summary);
      const memfd = native.memfdCreate('hostile-ram', 0);
      native.ftruncate(memfd, 4096);
      const batch = 256;
      let iova = 0x1_0000_0000n;
      while (summary.sent < 70_000 && Date.now() < until && !sock.closed) {
        let inBatch = 0;
        for (; inBatch < batch; inBatch++) {
          const map = sock.request(Command.DmaMap, encodeDmaMapRequest({ argsz: 32, flags: 3, offset: 0n, address: iova, size: 4096n }));
          iova += 4096n;
          if (!sock.write(map, [memfd], until)) break;
          summary.sent++;
        }
        tally(summary, sock.await(inBatch, 5000));
      }
      if (sock.closed) summary.disconnects++;
      native.close(memfd);
      sock.close();
      break;
    }
    case 'config-flood': {
      // Keep the server's receive buffer full of the cheapest request there is: 4096 of them per
      // write, refilled as soon as there is room, replies read in between.
      const sock = connect(native, socketPath, summary);
      handshake(sock, summary);
      const read = sock.request(Command.RegionRead, encodeRegionReadRequest({ offset: 0n, region: CONFIG_REGION, count: 4 }));
      const batch = new Uint8Array(read.length * 4096);
      for (let i = 0; i < 4096; i++) batch.set(read, i * read.length);
      let pending = batch.subarray(0, 0);
      while (Date.now() < until && !sock.closed) {
        if (pending.length === 0) pending = batch;
        const wrote = sock.tryWriteSome(pending);
        if (wrote === 0) summary.blockedWrites++;
        summary.sent += Math.floor((batch.length - pending.length + wrote) / read.length) - Math.floor((batch.length - pending.length) / read.length);
        pending = pending.subarray(wrote);
        tally(summary, sock.drain());
      }
      if (sock.closed) summary.disconnects++;
      sock.close();
      break;
    }
    case 'malformed': {
      // A header with type bits 0xf: the server must close the stream; then again, and again.
      const bad = HeaderLayout.encode({ msgId: 1, command: Command.Version, size: HEADER_SIZE, flags: 0xf, error: 0 });
      while (Date.now() < until) {
        let sock: RawSocket;
        try {
          sock = connect(native, socketPath, summary);
        } catch {
          sleepMs(1);
          continue;
        }
        if (sock.write(bad, [], until)) summary.sent++;
        sock.await(1, 200);
        if (sock.closed) summary.disconnects++;
        sock.close();
      }
      break;
    }
  }
  summary.seconds = (Date.now() - started) / 1000;
  return summary;
}

// Run as a script: node hostile-client.js <socket> <attack> [seconds]
if (process.argv[1] !== undefined && import.meta.url.endsWith(process.argv[1].split('/').pop()!)) {
  const [socketPath, attack, seconds] = process.argv.slice(2);
  if (socketPath === undefined || !ATTACKS.includes(attack as Attack)) {
    process.stderr.write(`usage: hostile-client <socket> <${ATTACKS.join('|')}> [seconds]\n`);
    process.exit(2);
  }
  const summary = runAttack(loadNative(), socketPath, attack as Attack, Number(seconds ?? 3));
  process.stdout.write(`${JSON.stringify(summary)}\n`);
}
