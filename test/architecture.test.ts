/**
 * Layering, enforced: imports point one way (docs/architecture.md). The device model knows
 * nothing of vfio-user; the protocol knows nothing of anything else.
 */
import t from 'tap';
import * as fs from 'node:fs';
import * as path from 'node:path';

const srcRoot = new URL('../../src/', import.meta.url).pathname;

/** Which top-level src/ directories each layer may import from (log.ts and execution-errors.ts are shared by all). */
const allowed: Record<string, string[]> = {
  layout: ['layout'],
  protocol: ['protocol', 'layout'],
  transport: ['transport', 'protocol', 'native'],
  pci: ['pci'],
  vgpu: ['vgpu', 'pci', 'layout'],
  native: ['native', 'vgpu', 'pci'],
  server: ['server', 'transport', 'protocol', 'pci', 'native'],
  client: ['client', 'transport', 'protocol', 'native'],
  kit: ['kit'],
  guest: ['guest', 'kit'],
  sched: ['sched'],
  backend: ['backend', 'native'],
  exec: ['exec', 'vgpu', 'sched', 'backend'],
  cli: ['cli', 'kit', 'server', 'vgpu', 'native', 'pci', 'client', 'protocol', 'backend', 'guest', 'sched', 'exec'],
};

function walk(dir: string): string[] {
  return fs
    .readdirSync(dir, { withFileTypes: true })
    .flatMap((e) => (e.isDirectory() ? walk(path.join(dir, e.name)) : e.name.endsWith('.ts') ? [path.join(dir, e.name)] : []));
}

t.test('imports follow the layers', (t) => {
  const files = walk(srcRoot);
  t.ok(files.length > 20, 'found the sources');
  for (const file of files) {
    const rel = path.relative(srcRoot, file);
    const layer = rel.includes('/') ? rel.split('/')[0]! : '.';
    if (layer === '.') continue;
    const rules = allowed[layer];
    t.ok(rules, `${layer} has layering rules`);
    const text = fs.readFileSync(file, 'utf8');
    for (const m of text.matchAll(/from '(\.[^']+)'|import\('(\.[^']+)'\)/g)) {
      const spec = m[1] ?? m[2]!;
      const target = path.relative(srcRoot, path.resolve(path.dirname(file), spec));
      if (target.startsWith('..')) t.fail(`${rel} imports outside src/: ${spec}`);
      const targetLayer = target.includes('/') ? target.split('/')[0]! : '.';
      // Shared by every layer: logging, and the vocabulary of how work on the device can end.
      if (targetLayer === '.' && ['log.js', 'execution-errors.js', 'device-commands.js'].includes(target)) continue;
      if (!rules?.includes(targetLayer)) t.fail(`${rel} (${layer}) must not import ${target}`);
    }
  }
  t.end();
});
