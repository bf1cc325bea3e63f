import t from 'tap';
import * as fs from 'node:fs';
import { fileURLToPath } from 'node:url';
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
  const { QueueControl } = await import('../../src/vgpu/queue-ring.js');
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

t.test("the device's limits in mdgpu_hw.h are the TypeScript tables', and the uapi header promises the same", async (t) => {
  const { DEVICE_LIMITS, IRQ_SOURCE_DEFINES } = await import('../../src/vgpu/c-header.js');
  const header = generateHeader();
  const cValue = (name: string): bigint | undefined => {
    const m = new RegExp(`#define\\s+${name}\\s+(\\(1ULL << (\\d+)\\)|0x[0-9a-f]+\\b|\\d+\\b)`, 'i').exec(header);
    if (!m) return undefined;
    return m[2] !== undefined ? 1n << BigInt(m[2]) : BigInt(m[1]!);
  };
  for (const l of DEVICE_LIMITS) t.equal(cValue(l.name), BigInt(l.value), `${l.name} = ${l.value}`);
  for (const [name, source] of Object.entries(IRQ_SOURCE_DEFINES)) t.equal(cValue(name), BigInt(source), `${name} = ${source}`);
  // Where the uapi repeats a limit, the kernel module and libmdgpu refuse to build if it differs.
  const twins = DEVICE_LIMITS.filter((l) => l.uapi !== undefined);
  t.ok(twins.length >= 12, `${twins.length} limits the uapi repeats`);
  for (const file of ['guest-driver/kmod/mdgpu_file.c', 'guest-driver/lib/libmdgpu.c']) {
    const text = fs.readFileSync(new URL(`../../../${file}`, import.meta.url), 'utf8');
    for (const l of twins) {
      t.match(text, new RegExp(`static_assert\\(${l.uapi} == ${l.name}\\b`, 'i'), `${file} asserts ${l.uapi} == ${l.name}`);
    }
  }
});

t.test('a C compiler lays out every generated struct and limit as the TypeScript tables do', async (t) => {
  const { execFile } = await import('node:child_process');
  const { promisify } = await import('node:util');
  const os = await import('node:os');
  const path = await import('node:path');
  const { COMMAND_STRUCTS, DEVICE_LIMITS } = await import('../../src/vgpu/c-header.js');
  const { QueueControl } = await import('../../src/vgpu/queue-ring.js');
  const { CMD_ALIGN } = await import('../../src/vgpu/commands.js');
  const snake = (name: string) => name.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`);
  const structs = [...COMMAND_STRUCTS, QueueControl];
  // The program prints what the compiler made of the headers; the expectations come from TS.
  const body: string[] = [];
  for (const s of structs) {
    body.push(`\tprintf("struct ${s.name} %zu\\n", sizeof(struct ${s.name}));`);
    for (const f of Object.keys(s.fields)) {
      body.push(`\tprintf("field ${s.name}.${f} %zu %zu\\n", offsetof(struct ${s.name}, ${snake(f)}), sizeof(((struct ${s.name} *)0)->${snake(f)}));`);
    }
  }
  for (const l of DEVICE_LIMITS) {
    body.push(`\tprintf("limit ${l.name} %llu\\n", (unsigned long long)(${l.name}));`);
    if (l.uapi) body.push(`\tprintf("uapi ${l.uapi} %llu\\n", (unsigned long long)(${l.uapi}));`);
  }
  body.push('\tprintf("align %u\\n", (unsigned)MDGPU_CMD_ALIGN);');
  const program = [
    '#include <stddef.h>',
    '#include <stdio.h>',
    '#include "mdgpu_hw.h"',
    '#include "uapi/mdgpu.h"',
    '#include "mdgpu_cmd.h"',
    'int main(void)',
    '{',
    ...body,
    '\treturn 0;',
    '}',
    '',
  ].join('\n');
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'mdgpu-layout-'));
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  const src = path.join(dir, 'layout.c');
  const exe = path.join(dir, 'layout');
  fs.writeFileSync(src, program);
  const guest = fileURLToPath(new URL('../../../guest-driver/', import.meta.url));
  const run = promisify(execFile);
  await run('cc', ['-std=c11', '-Wall', '-Werror', `-I${path.join(guest, 'include')}`, `-I${path.join(guest, 'lib')}`, '-o', exe, src]);
  const { stdout } = await run(exe);
  const got = new Map(
    stdout
      .trim()
      .split('\n')
      .map((l) => [l.split(' ').slice(0, 2).join(' '), l.split(' ').slice(2).map(Number)] as const),
  );
  for (const s of structs) {
    t.same(got.get(`struct ${s.name}`), [s.size], `sizeof(struct ${s.name}) = ${s.size}`);
    for (const [f, info] of Object.entries(s.fields)) {
      t.same(got.get(`field ${s.name}.${f}`), [info.offset, info.size], `${s.name}.${snake(f)}: offset ${info.offset}, ${info.size} bytes`);
    }
  }
  for (const l of DEVICE_LIMITS) {
    // %llu of 2^63 does not survive Number(); compare as strings.
    const line = stdout.split('\n').find((x) => x.startsWith(`limit ${l.name} `));
    t.equal(line?.split(' ')[2], String(l.value), `${l.name} = ${l.value}`);
    if (l.uapi)
      t.equal(
        stdout
          .split('\n')
          .find((x) => x.startsWith(`uapi ${l.uapi} `))
          ?.split(' ')[2],
        String(l.value),
        `uapi ${l.uapi} = ${l.value}`,
      );
  }
  t.match(stdout, new RegExp(`^align ${CMD_ALIGN}$`, 'm'), `MDGPU_CMD_ALIGN = ${CMD_ALIGN}`);
});

t.test("libmdgpu's encoder places command fields through the generated structs, never at literal offsets", (t) => {
  const src = fs.readFileSync(new URL('../../../guest-driver/lib/mdgpu_queue.c', import.meta.url), 'utf8');
  const code = src.replace(/\/\*[\s\S]*?\*\//g, '');
  const offenders = code
    .split('\n')
    .map((line, i) => ({ line: line.trim(), n: i + 1 }))
    // A number added to a pointer, or a byte indexed by number, in a field store or load.
    .filter(({ line }) => /\b(put|get)_\w*\(/.test(line) && /[+-]\s*(0x[0-9a-f]+|\d+)\b|\[\d+\]/i.test(line));
  t.same(offenders, [], 'no put/get at a literal offset');
  t.notMatch(code, /\bput_le(16|32|64)\b/, 'no fixed-width stores that bypass the struct layouts');
  for (const command of ['submit', 'copy', 'fill', 'dispatch', 'fence', 'wait', 'timestamp']) {
    t.match(code, new RegExp(`put_field\\([^,]+, mdgpu_cmd_${command},`), `mdgpu_cmd_${command} fields are stored through the struct`);
  }
  t.match(code, /put_field\(b, mdgpu_dispatch_binding,/, 'bindings through struct mdgpu_dispatch_binding');
  t.match(code, /MDGPU_SUBMIT_ERROR_NAMES/, 'submission error names from the generated table');
  t.end();
});

t.test('docs/device.md lists every limit with its value and its names', async (t) => {
  const { DEVICE_LIMITS, cValue } = await import('../../src/vgpu/c-header.js');
  for (const l of DEVICE_LIMITS) {
    const line = lines.find((x) => x.startsWith('| ') && x.includes(`| \`${l.name}\` |`)) ?? '';
    t.ok(line, `${l.name} has a row`);
    t.ok(line.includes(`| ${cValue(l.value)} |`), `${l.name}: ${cValue(l.value)}`);
    if (l.uapi) t.ok(line.includes(`| \`${l.uapi}\` |`), `${l.name}: the uapi calls it ${l.uapi}`);
  }
  t.end();
});
