/**
 * Conventions that enforce themselves: Biome formats and lints the TypeScript (biome.json), and
 * clang-format formats the C (the kernel's style in guest-driver/kmod, the house style in
 * .clang-format elsewhere). Both come from npm at pinned versions, so Debian 12 and 13 agree.
 * `npm run format` rewrites everything into shape.
 */
import t from 'tap';
import { spawnSync } from 'node:child_process';
import { cSources } from '../scripts/c-sources.js';

const root = new URL('../../', import.meta.url).pathname;
const bin = (name: string) => `${root}node_modules/.bin/${name}`;

t.test('TypeScript: biome ci (format and lint) is clean', (t) => {
  const r = spawnSync(bin('biome'), ['ci', '--reporter=summary', '.'], { cwd: root, encoding: 'utf8' });
  t.equal(r.status, 0, `biome ci: run \`npm run format\`\n${r.stdout}${r.stderr}`);
  t.end();
});

t.test('C: clang-format finds nothing to change', (t) => {
  const files = cSources(root);
  t.ok(files.length > 20, `found ${files.length} C sources`);
  const r = spawnSync(bin('clang-format'), ['--dry-run', '--Werror', ...files], { cwd: root, encoding: 'utf8' });
  t.equal(r.status, 0, `clang-format: run \`npm run format\`\n${r.stderr.split('\n').slice(0, 40).join('\n')}`);
  t.end();
});
