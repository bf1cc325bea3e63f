/**
 * Writes the seed corpus of the session fuzz target (test/fuzz/corpus/session/): one valid
 * stream per request of the fixture table (VERSION first, as a client must), and a QEMU-like
 * session that reaches the mailbox. The fuzzer starts from these instead of from nothing.
 *
 *   npm run build && node build/test/helpers/fuzz-corpus.js
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Command, HeaderFlag, MessageType, encodeMessage } from '../../src/protocol/index.js';
import { encodeRegionReadRequest, encodeRegionWriteRequest, encodeVersion, encodeDmaMapRequest } from '../../src/protocol/index.js';
import { MDGPU_REGS } from '../../src/vgpu/regs.js';
import { MAILBOX_OPS } from '../../src/vgpu/mailbox-ops.js';
import { REGISTER_BAR } from '../../src/vgpu/device.js';
import { CASES } from '../protocol/fixtures.js';

export const CORPUS_DIR = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../../test/fuzz/corpus/session');

let nextId = 1;
function command(cmd: number, payload: Uint8Array, flags = 0): Uint8Array {
  const msgId = nextId;
  nextId += 2; // odd ids: DMA_MAPs get a guest-RAM fd from the harness
  return encodeMessage({ msgId, command: cmd, flags: MessageType.Command | flags }, payload);
}

const version = () =>
  command(Command.Version, encodeVersion({ major: 0, minor: 0, capabilities: { maxMsgFds: 16, maxDataXferSize: 1 << 20, pgsizes: 4096, maxDmaMaps: 65535 } }));

function u32(v: number): Uint8Array {
  const b = new Uint8Array(4);
  new DataView(b.buffer).setUint32(0, v >>> 0, true);
  return b;
}

function seeds(): Map<string, Uint8Array> {
  const out = new Map<string, Uint8Array>();
  for (const c of CASES) {
    if (c.direction !== 'request') continue;
    nextId = 1;
    const name = c.name
      .toLowerCase()
      .replace(/[^a-z0-9]+/g, '-')
      .replace(/-+$/, '');
    out.set(name, Buffer.concat([version(), command(c.command, c.bytes)]));
  }
  nextId = 1;
  const reg = (name: keyof typeof MDGPU_REGS, v: number, posted = false) =>
    command(
      Command.RegionWrite,
      encodeRegionWriteRequest({ region: REGISTER_BAR, offset: BigInt(MDGPU_REGS[name].offset), data: u32(v) }),
      posted ? HeaderFlag.NoReply : 0,
    );
  out.set(
    'qemu-session',
    Buffer.concat([
      version(),
      command(Command.DmaMap, encodeDmaMapRequest({ argsz: 32, flags: 3, offset: 0n, address: 0n, size: 0x10000n })),
      command(Command.DeviceGetInfo, Buffer.concat([u32(16), u32(0), u32(0), u32(0)])),
      command(Command.RegionRead, encodeRegionReadRequest({ region: 7, offset: 0n, count: 4096 })),
      reg('MBOX_OPCODE', MAILBOX_OPS.CTX_CREATE.code),
      reg('MBOX_DOORBELL', 1, true),
      command(Command.RegionRead, encodeRegionReadRequest({ region: REGISTER_BAR, offset: BigInt(MDGPU_REGS.MBOX_RET0.offset), count: 4 })),
      reg('MBOX_ARG0', 1),
      reg('MBOX_ARG1', 0x1000),
      reg('MBOX_OPCODE', MAILBOX_OPS.BO_ALLOC.code),
      reg('MBOX_DOORBELL', 1),
      command(Command.DeviceReset, new Uint8Array(0)),
    ]),
  );
  return out;
}

if (process.argv[1] !== undefined && import.meta.url.endsWith(path.basename(process.argv[1]))) {
  fs.mkdirSync(CORPUS_DIR, { recursive: true });
  for (const [name, bytes] of seeds()) fs.writeFileSync(path.join(CORPUS_DIR, `seed-${name}`), bytes);
  process.stdout.write(`wrote ${seeds().size} seeds to ${CORPUS_DIR}\n`);
}
