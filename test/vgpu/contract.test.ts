import t from 'tap';
import * as fs from 'node:fs';
import { MDGPU_CONTRACT_MAJOR, MDGPU_CONTRACT_MINOR, MDGPU_REGS } from '../../src/vgpu/regs.js';

const doc = fs.readFileSync(new URL('../../../docs/device.md', import.meta.url), 'utf8');

t.test('docs/device.md documents every register at its offset', (t) => {
  for (const [name, reg] of Object.entries(MDGPU_REGS)) {
    const row = doc.split('\n').find((line) => line.startsWith(`| \`${name}\` |`));
    t.ok(row, `${name} has a row`);
    t.match(row ?? '', `\`0x${reg.offset.toString(16).padStart(3, '0')}\``, `${name} offset`);
  }
  const documented = doc.split('\n').filter((l) => /^\| `[A-Z_]+` \| `0x/.test(l)).length;
  t.equal(documented, Object.keys(MDGPU_REGS).length, 'no undocumented or stale rows');
  t.match(doc, `Version **${MDGPU_CONTRACT_MAJOR}.${MDGPU_CONTRACT_MINOR}**`);
  t.end();
});
