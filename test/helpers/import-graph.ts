/**
 * The import graph of a TypeScript source tree, for the layering test (test/architecture.test.ts):
 * which files each file imports — static, dynamic, type-only imports and re-exports alike, since
 * a cycle of types is a cycle of design even when the compiler erases it — and which scripts it
 * starts as processes (`new URL('./x-worker.js', import.meta.url)`), which are entry points, not
 * imports. Relative specifiers only: packages and node: modules are not part of the tree.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';

export interface ImportGraph {
  /** Every .ts file under the root, absolute. */
  files: string[];
  /** file → the files it imports (resolved `.js` → `.ts`), in source order, each once. */
  imports: Map<string, string[]>;
  /** file → the scripts it starts as processes or workers. */
  starts: Map<string, string[]>;
}

/** Leading `//` lines and block comments that begin a line: doc comments may mention imports. */
function stripComments(text: string): string {
  return text.replace(/^\s*\/\*[\s\S]*?\*\//gm, '').replace(/^\s*\/\/.*$/gm, '');
}

const IMPORT = /(?:\bfrom\s*|\bimport\s*\(\s*|\bimport\s+)'(\.{1,2}\/[^']+)'/g;
const STARTS = /new URL\(\s*'(\.{1,2}\/[^']+)',\s*import\.meta\.url\s*\)/g;

function walk(dir: string): string[] {
  return fs
    .readdirSync(dir, { withFileTypes: true })
    .flatMap((e) => (e.isDirectory() ? walk(path.join(dir, e.name)) : e.name.endsWith('.ts') ? [path.join(dir, e.name)] : []));
}

/** The graph of every .ts file under `root`. */
export function importGraph(root: string): ImportGraph {
  const files = walk(root).sort();
  const imports = new Map<string, string[]>();
  const starts = new Map<string, string[]>();
  const resolve = (from: string, spec: string) => path.resolve(path.dirname(from), spec).replace(/\.js$/, '.ts');
  for (const file of files) {
    const text = stripComments(fs.readFileSync(file, 'utf8'));
    imports.set(file, [...new Set([...text.matchAll(IMPORT)].map((m) => resolve(file, m[1]!)))]);
    starts.set(file, [...new Set([...text.matchAll(STARTS)].map((m) => resolve(file, m[1]!)))]);
  }
  return { files, imports, starts };
}

/**
 * The import cycles: strongly connected components (Tarjan) of more than one file, and files that
 * import themselves. Each cycle is listed from its first file in sorted order.
 */
export function importCycles(edges: ReadonlyMap<string, readonly string[]>): string[][] {
  let next = 0;
  const index = new Map<string, number>();
  const low = new Map<string, number>();
  const stack: string[] = [];
  const onStack = new Set<string>();
  const cycles: string[][] = [];
  // Iterative, so a deep chain of imports cannot overflow the call stack.
  for (const start of [...edges.keys()].sort()) {
    if (index.has(start)) continue;
    const work: { node: string; i: number }[] = [{ node: start, i: 0 }];
    index.set(start, next);
    low.set(start, next++);
    stack.push(start);
    onStack.add(start);
    while (work.length > 0) {
      const top = work[work.length - 1]!;
      const deps = edges.get(top.node) ?? [];
      if (top.i < deps.length) {
        const dep = deps[top.i++]!;
        if (!index.has(dep)) {
          index.set(dep, next);
          low.set(dep, next++);
          stack.push(dep);
          onStack.add(dep);
          work.push({ node: dep, i: 0 });
        } else if (onStack.has(dep)) {
          low.set(top.node, Math.min(low.get(top.node)!, index.get(dep)!));
        }
        continue;
      }
      work.pop();
      const parent = work[work.length - 1];
      if (parent) low.set(parent.node, Math.min(low.get(parent.node)!, low.get(top.node)!));
      if (low.get(top.node) === index.get(top.node)) {
        const component: string[] = [];
        let member: string;
        do {
          member = stack.pop()!;
          onStack.delete(member);
          component.push(member);
        } while (member !== top.node);
        if (component.length > 1 || deps.includes(top.node)) cycles.push(component.sort());
      }
    }
  }
  return cycles.sort((a, b) => (a[0]! < b[0]! ? -1 : 1));
}

/** Files reachable from `entries` through imports and started scripts. */
export function reachable(graph: ImportGraph, entries: readonly string[]): Set<string> {
  const seen = new Set<string>();
  const todo = [...entries];
  while (todo.length > 0) {
    const file = todo.pop()!;
    if (seen.has(file)) continue;
    seen.add(file);
    todo.push(...(graph.imports.get(file) ?? []), ...(graph.starts.get(file) ?? []));
  }
  return seen;
}
