/**
 * Layering, enforced: imports point one way (docs/architecture.md, Layers). The device model
 * knows nothing of vfio-user, the protocol nothing of anything else, the syscall layer nothing of
 * the device; there are no import cycles anywhere in src/; and src/ holds only what the program
 * runs — a module that only tests and benches use belongs in test/helpers.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import t from 'tap';
import { importCycles, importGraph, reachable } from './helpers/import-graph.js';

/** The sources (this file runs from build/test/). */
const srcRoot = new URL('../../src/', import.meta.url).pathname;

/** Which top-level src/ directories each layer may import from (the shared files below are open to all). */
const allowed: Record<string, string[]> = {
  layout: ['layout'],
  protocol: ['protocol', 'layout'],
  transport: ['transport', 'protocol', 'native'],
  pci: ['pci'],
  vgpu: ['vgpu', 'pci', 'layout'],
  // Syscalls only: what the device needs from them is wired in cli/host-ops.ts.
  native: ['native'],
  server: ['server', 'transport', 'protocol', 'pci', 'native'],
  client: ['client', 'transport', 'protocol', 'native'],
  kit: ['kit'],
  guest: ['guest', 'kit'],
  sched: ['sched'],
  backend: ['backend', 'native'],
  exec: ['exec', 'vgpu', 'sched', 'backend'],
  cli: ['cli', 'kit', 'server', 'vgpu', 'native', 'pci', 'client', 'protocol', 'backend', 'guest', 'sched', 'exec'],
};

/**
 * Top-level files every layer may import: logging, errno names, the vocabulary of how work on the
 * device can end, and the one shape of a validated command from the validator to the host driver.
 * They import nothing from the layers.
 */
const SHARED = ['log.ts', 'errno.ts', 'execution-errors.ts', 'device-commands.ts'];

/**
 * Modules of src/ that no entry point reaches, kept in src/ on purpose: library code that tests,
 * benches and tools use. Anything else unreachable is scaffolding that belongs in test/helpers.
 */
const LIBRARY: Record<string, string> = {
  'client/client.ts': 'a vfio-user client that speaks like QEMU (tests, benches, tools)',
  'protocol/index.ts': "the protocol's public surface",
  'protocol/codec/mig-data.ts': 'every message of the spec is declared, migration included (mdgpu refuses it)',
  'protocol/codec/mig-data-read.ts': 'as mig-data.ts',
  'protocol/codec/mig-data-write.ts': 'as mig-data.ts',
  'vgpu/command-builder.ts': "the command format's encoder, the host-side twin of libmdgpu's (tests, benches)",
};

const graph = importGraph(srcRoot);
const rel = (file: string) => path.relative(srcRoot, file);
const layerOf = (file: string) => (rel(file).includes('/') ? rel(file).split('/')[0]! : '.');

t.test('imports follow the layers', (t) => {
  t.ok(graph.files.length > 20, 'found the sources');
  for (const file of graph.files) {
    const layer = layerOf(file);
    if (layer === '.') {
      t.ok(SHARED.includes(rel(file)), `${rel(file)} is a shared top-level file (or belongs in a layer)`);
      for (const dep of graph.imports.get(file)!) t.ok(SHARED.includes(rel(dep)), `${rel(file)} imports only shared files, not ${rel(dep)}`);
      continue;
    }
    const rules = allowed[layer];
    t.ok(rules, `${layer} has layering rules`);
    for (const dep of graph.imports.get(file)!) {
      if (rel(dep).startsWith('..')) t.fail(`${rel(file)} imports outside src/: ${rel(dep)}`);
      else if (!fs.existsSync(dep)) t.fail(`${rel(file)} imports ${rel(dep)}, which does not exist`);
      else if (layerOf(dep) === '.' ? !SHARED.includes(rel(dep)) : !rules?.includes(layerOf(dep)))
        t.fail(`${rel(file)} (${layer}) must not import ${rel(dep)}`);
    }
  }
  t.end();
});

t.test('no import cycles in src/ (type-only imports count)', (t) => {
  const cycles = importCycles(graph.imports);
  t.same(
    cycles.map((c) => c.map(rel)),
    [],
    'every cycle listed here must be broken (move the shared part down a level)',
  );
  t.end();
});

t.test('the cycle search finds cycles', (t) => {
  const g = new Map<string, string[]>([
    ['a', ['b']],
    ['b', ['c', 'd']],
    ['c', ['a']],
    ['d', []],
    ['e', ['e']],
    ['f', ['d', 'g']],
    ['g', ['f']],
  ]);
  t.same(importCycles(g), [['a', 'b', 'c'], ['e'], ['f', 'g']]);
  t.same(
    importCycles(
      new Map([
        ['x', ['y']],
        ['y', []],
      ]),
    ),
    [],
    'a chain is no cycle',
  );
  const chain = new Map(Array.from({ length: 50_000 }, (_, i) => [String(i), [String(i + 1)]]));
  chain.set('50000', ['0']);
  t.equal(importCycles(chain)[0]?.length, 50_001, 'a long cycle, without overflowing the stack');
  t.end();
});

t.test('src/ holds what the program runs: every module is reached from an entry point', (t) => {
  // Entry points: the CLI (bin/mdgpu.js), scripts that run themselves (`node build/src/…`), and
  // the workers they start by path (reached through `new URL('./x.js', import.meta.url)`).
  const entries = graph.files.filter((f) => rel(f) === 'cli/main.ts' || /\bprocess\.argv\[1\]/.test(fs.readFileSync(f, 'utf8')));
  t.ok(entries.length >= 1, `entry points: ${entries.map(rel).join(', ')}`);
  const seen = reachable(graph, entries);
  for (const [file, why] of Object.entries(LIBRARY)) t.ok(fs.existsSync(path.join(srcRoot, file)), `library module ${file} exists (${why})`);
  const unreached = graph.files.map(rel).filter((f) => !seen.has(path.join(srcRoot, f)) && !(f in LIBRARY));
  t.same(unreached, [], 'modules only tests or benches use belong in test/helpers (or in LIBRARY above, with why)');
  t.end();
});
