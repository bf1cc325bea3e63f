/**
 * The project's own C and C++ sources, for clang-format: everything under host-driver/,
 * guest-driver/, native/src/ and bench/ except build output and the headers generated from the
 * TypeScript tables (they have their own generator and test).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';

const ROOTS = ['host-driver', 'guest-driver', 'native/src', 'bench'];
const SKIP_DIRS = new Set(['build', 'node_modules', '.git']);
const GENERATED = new Set(['guest-driver/include/mdgpu_hw.h', 'guest-driver/lib/mdgpu_cmd.h']);

export function cSources(root: string): string[] {
  const out: string[] = [];
  const walk = (rel: string) => {
    const dir = path.join(root, rel);
    if (!fs.existsSync(dir)) return;
    for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
      const child = path.posix.join(rel, e.name);
      if (e.isDirectory()) {
        if (!SKIP_DIRS.has(e.name)) walk(child);
      } else if (/\.(c|h|cc)$/.test(e.name) && !GENERATED.has(child)) {
        out.push(child);
      }
    }
  };
  for (const r of ROOTS) walk(r);
  return out.sort();
}

// `node build/scripts/c-sources.js` prints the list (npm run format uses it).
if (process.argv[1] !== undefined && import.meta.url === `file://${process.argv[1]}`) {
  process.stdout.write(`${cSources(process.cwd()).join('\n')}\n`);
}
