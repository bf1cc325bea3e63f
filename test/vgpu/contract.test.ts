import t from 'tap';
import * as fs from 'node:fs';
import { MDGPU_CONTRACT_MAJOR, MDGPU_CONTRACT_MINOR, MDGPU_REGS } from '../../src/vgpu/regs.js';
import { MAILBOX_OPS, MAILBOX_RESULTS, QUERY_PARAMS } from '../../src/vgpu/mailbox-ops.js';
import { commandHeaderFile, generateCommandHeader, generateHeader, headerFile } from '../../src/vgpu/c-header.js';

const doc = fs.readFileSync(new URL('../../../docs/device.md', import.meta.url), 'utf8');
const lines = doc.split('\n');
const row = (name: string) => lines.find((line) => line.startsWith(`| \`${name}\` |`));

t.test('docs/device.md documents every register at its offset', (t) => {
  for (const [name, reg] of Object.entries(MDGPU_REGS)) {
    t.ok(row(name), `${name} has a row`);
    t.match(row(name) ?? '', `\`0x${reg.offset.toString(16).padStart(3, '0')}\``, `${name} offset`);
  }
  const documented = lines.filter((l) => /^\| `[A-Z_0-9]+` \| `0x[0-9a-f]{3}` \|/.test(l)).length;
  t.equal(documented, Object.keys(MDGPU_REGS).length, 'no undocumented or stale register rows');
  t.match(doc, `Version **${MDGPU_CONTRACT_MAJOR}.${MDGPU_CONTRACT_MINOR}**`);
  t.end();
});

t.test('docs/device.md documents every mailbox operation, result and query parameter', (t) => {
  for (const [name, op] of Object.entries(MAILBOX_OPS)) {
    t.match(row(name) ?? '', `\`0x${op.code.toString(16).padStart(4, '0')}\``, `operation ${name}`);
    for (const arg of op.args) t.match(row(name) ?? '', arg, `${name} argument ${arg}`);
  }
  const hasRow = (name: string, code: number) => lines.some((l) => l.startsWith(`| \`${name}\` | ${code} |`));
  for (const [name, r] of Object.entries(MAILBOX_RESULTS)) t.ok(hasRow(name, r.code), `result ${name}`);
  for (const [name, p] of Object.entries(QUERY_PARAMS)) t.ok(hasRow(name, p.code), `query ${name}`);
  t.end();
});

t.test('the committed C header is what the generator writes', (t) => {
  t.equal(fs.readFileSync(headerFile(), 'utf8'), generateHeader(), 'run `npm run gen-header` after changing the tables');
  const header = generateHeader();
  for (const [name, reg] of Object.entries(MDGPU_REGS))
    t.match(header, new RegExp(`#define MDGPU_REG_${name} +0x${reg.offset.toString(16).padStart(3, '0')}u`));
  t.match(header, /#define MDGPU_OP_BO_ALLOC +0x0010/);
  t.match(header, /#define MDGPU_RESULT_OVER_QUOTA +6/);
  t.end();
});

t.test('docs/device.md gives each command its opcode and size', async (t) => {
  const { CMD, CMD_LAYOUTS, SUBMIT_ERRORS } = await import('../../src/vgpu/commands.js');
  for (const [name, opcode] of Object.entries(CMD)) {
    const line = lines.find((l) => l.startsWith(`| \`${name}\` | ${opcode} |`));
    t.ok(line, `command ${name} row with opcode ${opcode}`);
    const size = CMD_LAYOUTS[name as keyof typeof CMD_LAYOUTS].size;
    if (size > 8) t.match(line ?? '', `(${size} bytes)`, `${name} is ${size} bytes`);
  }
  for (const [name, e] of Object.entries(SUBMIT_ERRORS)) {
    if (name !== 'OK')
      t.ok(
        lines.some((l) => l.startsWith(`| \`${name}\` | ${e.code} |`)),
        `submission error ${name}`,
      );
  }
});

t.test("the guest library's command header (mdgpu_cmd.h) agrees with the TypeScript tables", async (t) => {
  const { CMD, CMD_LAYOUTS, DispatchBinding, SUBMIT_ERRORS, CMD_FLAG_IRQ, DEFAULT_COMMAND_LIMITS } = await import('../../src/vgpu/commands.js');
  const { QueueControl } = await import('../../src/vgpu/queues.js');
  const header = fs.readFileSync(commandHeaderFile(), 'utf8');
  t.equal(header, generateCommandHeader(), 'the committed header is what the generator writes (run `npm run gen-header`)');
  const define = (name: string) => {
    const m = new RegExp(`#define\\s+${name}\\s+\\(?(0x[0-9a-f]+|\\d+)(u\\s*<<\\s*(\\d+))?`, 'i').exec(header);
    if (!m) return undefined;
    return Number(m[1]) * 2 ** Number(m[3] ?? 0);
  };
  for (const [name, opcode] of Object.entries(CMD)) {
    t.equal(define(`MDGPU_CMD_${name}`), opcode, `opcode ${name}`);
    // NOP has any length: the header has no fixed size for it.
    if (name !== 'NOP') t.equal(define(`MDGPU_CMD_${name}_SIZE`), CMD_LAYOUTS[name as keyof typeof CMD_LAYOUTS].size, `size of ${name}`);
  }
  t.equal(define('MDGPU_CMD_BINDING_SIZE'), DispatchBinding.size);
  t.equal(define('MDGPU_CMD_FLAG_IRQ'), CMD_FLAG_IRQ);
  t.equal(define('MDGPU_SUBMIT_MAX_BYTES'), DEFAULT_COMMAND_LIMITS.maxSubmissionBytes);
  t.equal(define('MDGPU_SUBMIT_MAX_COMMANDS'), DEFAULT_COMMAND_LIMITS.maxCommands);
  for (const [name, e] of Object.entries(SUBMIT_ERRORS)) t.equal(define(`MDGPU_SUBMIT_${name}`), e.code, `submission error ${name}`);
  for (const [field, c] of [
    ['head', 'head'],
    ['doorbellNeeded', 'doorbell_needed'],
    ['completed', 'completed'],
    ['errorFence', 'error_fence'],
    ['errorCode', 'error_code'],
    ['errorHead', 'error_head'],
  ] as const) {
    const m = new RegExp(`offsetof\\(struct mdgpu_queue_control, ${c}\\) == (0x[0-9a-f]+)`).exec(header);
    t.equal(Number(m?.[1]), QueueControl.fields[field].offset, `control block ${c}`);
  }
  t.match(header, new RegExp(`sizeof\\(struct mdgpu_queue_control\\) == 0x${QueueControl.size.toString(16)}`), 'control block size');
});
