/**
 * Where the host's apt gets Debian from, and what can verify it: the kit and the Debian trees
 * built with mmdebstrap (the guest root, the setup test's root) use the archive mirror the host
 * is configured with and the host's keyrings, never a host name written into the project.
 */
import * as fsp from 'node:fs/promises';
import * as path from 'node:path';

/** One deb source entry of the host's apt configuration. */
export interface AptSource {
  uri: string;
  suites: string[];
  components: string[];
  file: string;
}

/** Parse deb822 `.sources` text into `deb` entries (disabled and `deb-src` entries are dropped). */
export function parseDeb822Sources(text: string, file = ''): AptSource[] {
  const out: AptSource[] = [];
  const stanzas = text.split(/\n\s*\n/);
  for (const stanza of stanzas) {
    const fields = new Map<string, string>();
    let last: string | undefined;
    for (const raw of stanza.split('\n')) {
      if (raw.startsWith('#')) continue;
      if (/^\s/.test(raw) && last !== undefined) {
        fields.set(last, `${fields.get(last) ?? ''} ${raw.trim()}`);
        continue;
      }
      const m = /^([A-Za-z0-9-]+):\s*(.*)$/.exec(raw);
      if (!m) continue;
      last = m[1]!.toLowerCase();
      fields.set(last, m[2]!.trim());
    }
    const types = (fields.get('types') ?? '').split(/\s+/);
    if (!types.includes('deb')) continue;
    if ((fields.get('enabled') ?? 'yes').toLowerCase() === 'no') continue;
    const suites = (fields.get('suites') ?? '').split(/\s+/).filter(Boolean);
    const components = (fields.get('components') ?? '').split(/\s+/).filter(Boolean);
    for (const uri of (fields.get('uris') ?? '').split(/\s+/).filter(Boolean)) {
      out.push({ uri, suites, components, file });
    }
  }
  return out;
}

/** Parse one-line-style `sources.list` text into `deb` entries. */
export function parseOneLineSources(text: string, file = ''): AptSource[] {
  const out: AptSource[] = [];
  for (const raw of text.split('\n')) {
    const line = raw.replace(/#.*$/, '').trim();
    const m = /^deb\s+(?:\[[^\]]*\]\s+)?(\S+)\s+(\S+)\s*(.*)$/.exec(line);
    if (!m) continue;
    out.push({ uri: m[1]!, suites: [m[2]!], components: m[3]!.split(/\s+/).filter(Boolean), file });
  }
  return out;
}

/**
 * Pick the Debian archive mirror among the host's sources: an entry that carries a plain
 * release suite (`bookworm`, `trixie`, …; not `-security`/`-updates`) with `main`, preferring
 * URIs whose path ends in `/debian`. Returns the URI without a trailing slash.
 */
export function pickDebianMirror(sources: AptSource[]): string | undefined {
  const plain = sources.filter((s) => s.suites.some((x) => /^[a-z]+$/.test(x)) && s.components.includes('main') && !/security/.test(s.uri));
  const ranked = [...plain.filter((s) => /\/debian\/?$/.test(s.uri)), ...plain];
  return ranked[0]?.uri.replace(/\/+$/, '');
}

/** The mirror the host's apt is configured with (`MDGPU_APT_MIRROR` overrides). */
export async function hostMirror(env: NodeJS.ProcessEnv = process.env, etcApt = '/etc/apt'): Promise<string> {
  if (env.MDGPU_APT_MIRROR) return env.MDGPU_APT_MIRROR.replace(/\/+$/, '');
  const sources: AptSource[] = [];
  const tryRead = async (f: string) => {
    try {
      return await fsp.readFile(f, 'utf8');
    } catch {
      return undefined;
    }
  };
  let names: string[] = [];
  try {
    names = (await fsp.readdir(path.join(etcApt, 'sources.list.d'))).sort();
  } catch {
    /* no directory */
  }
  for (const n of names) {
    const f = path.join(etcApt, 'sources.list.d', n);
    const text = n.endsWith('.sources') || n.endsWith('.list') ? await tryRead(f) : undefined;
    if (text === undefined) continue;
    sources.push(...(n.endsWith('.sources') ? parseDeb822Sources(text, f) : parseOneLineSources(text, f)));
  }
  const list = await tryRead(path.join(etcApt, 'sources.list'));
  if (list !== undefined) sources.push(...parseOneLineSources(list, path.join(etcApt, 'sources.list')));
  const mirror = pickDebianMirror(sources);
  if (!mirror) {
    throw new Error(
      `No Debian mirror found in ${etcApt}/sources.list.d/*.sources or ${etcApt}/sources.list: set MDGPU_APT_MIRROR (e.g. http://mirror.example/debian)`,
    );
  }
  return mirror;
}

/**
 * Keyrings that can verify the recipe's suite: files named after it in the host's apt
 * trust stores (bookworm's debian-archive-keyring ≥ 2023.3+deb12u1 ships the trixie keys).
 * `MDGPU_APT_KEYRING` names one explicitly (it is then passed to mmdebstrap).
 */
export async function suiteKeyrings(suite: string, dirs = ['/usr/share/keyrings', '/etc/apt/trusted.gpg.d']): Promise<string[]> {
  const found: string[] = [];
  for (const d of dirs) {
    let names: string[] = [];
    try {
      names = await fsp.readdir(d);
    } catch {
      continue;
    }
    for (const n of names) if (n.includes(suite) && /\.(gpg|asc)$/.test(n)) found.push(path.join(d, n));
  }
  return found;
}
