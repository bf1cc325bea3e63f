/**
 * vGPU definitions from `--vgpu socket=…,aperture=…` and from a JSON config file, validated by
 * one schema (zod): every setting is declared once below with its allowed range, and a refusal
 * names the setting, where it came from, the range and the value given (`mdgpu serve
 * --check-config` prints them without starting anything).
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { z } from 'zod';
import type { StrikePolicy } from '../sched/strikes.js';
import { DEFAULT_MAX_BUFFERS, DEFAULT_MAX_CONTEXTS, MIN_APERTURE_SIZE, MSIX_PBA_OFFSET, MSIX_TABLE_OFFSET } from '../vgpu/device.js';
import { DEFAULT_KERNEL_CACHE_ENTRIES } from '../vgpu/kernel-cache.js';
import { DEFAULT_MAX_KERNELS } from '../vgpu/kernels.js';
import type { VgpuConfig } from './daemon.js';
import { formatSize, parseSize } from './sizes.js';
import { CONTROL_FD_NAME } from './systemd.js';

type Defaults = Omit<VgpuConfig, 'name' | 'socket'>;

/** Where `mdgpu serve` listens for `mdgpu status` unless told otherwise. */
export function defaultControlSocket(): string {
  const runtime = process.env.XDG_RUNTIME_DIR;
  if (runtime) return path.join(runtime, 'mdgpu.sock');
  return path.join(os.tmpdir(), `mdgpu-${process.getuid?.() ?? 'user'}.sock`);
}

/** A configuration that does not validate: one line per problem, each naming its setting. */
export class ConfigError extends Error {
  constructor(readonly problems: string[]) {
    super(problems.length === 1 ? problems[0]! : `${problems.length} problems:\n  ${problems.join('\n  ')}`);
    this.name = 'ConfigError';
  }
}

/** The largest aperture (BAR0) a vGPU may have: a sparse memfd, but guest address space too. */
export const MAX_APERTURE_SIZE = 64 * 2 ** 30;
/** MSI-X vectors that fit the table in the register BAR (16 bytes each). */
export const MAX_MSIX_VECTORS = (MSIX_PBA_OFFSET - MSIX_TABLE_OFFSET) / 16;
/** sun_path holds 107 bytes and a NUL. */
export const MAX_SOCKET_PATH = 107;

const sizeText = (n: number) => (n === 0 ? '0' : formatSize(n).replace(/ /g, '').replace(/iB$/, ''));

/** A number or a string that is one (`--vgpu` values are strings). */
function numberish(value: unknown): number | undefined {
  if (typeof value === 'number') return value;
  if (typeof value === 'string' && /^\s*[0-9]+(\.[0-9]+)?\s*$/.test(value)) return Number(value);
  return undefined;
}

/** An integer setting in [min, max]. */
function int(min: number, max: number) {
  return z.unknown().transform((value, ctx) => {
    const n = numberish(value);
    if (n === undefined || !Number.isInteger(n) || n < min || n > max) {
      ctx.addIssue({ code: 'custom', message: `must be an integer from ${min} to ${max}, got ${JSON.stringify(value)}` });
      return z.NEVER;
    }
    return n;
  });
}

/** A size in bytes (`256M`, `1G`, `65536`) in [min, max], optionally a power of two. */
function size(min: number, max: number, powerOfTwo: boolean) {
  const allowed = `${powerOfTwo ? 'a power of two' : 'a size'} from ${sizeText(min)} to ${sizeText(max)} (e.g. 256M, 1G)`;
  return z.unknown().transform((value, ctx) => {
    let n: number | undefined;
    try {
      n = typeof value === 'number' ? value : typeof value === 'string' ? parseSize(value) : undefined;
    } catch {
      n = undefined;
    }
    if (n === undefined || !Number.isSafeInteger(n) || n < min || n > max || (powerOfTwo && (BigInt(n) & (BigInt(n) - 1n)) !== 0n)) {
      ctx.addIssue({ code: 'custom', message: `must be ${allowed}, got ${JSON.stringify(value)}` });
      return z.NEVER;
    }
    return n;
  });
}

const NAME = /^[A-Za-z0-9_.-]{1,32}$/;

/**
 * Every per-vGPU setting: its key in `--vgpu` and the config file, its schema, where it goes.
 * The order is the order `--help` and the docs list them.
 */
export const VGPU_SETTINGS = {
  socket: z.unknown().transform((value, ctx) => {
    if (typeof value !== 'string' || value.length === 0 || Buffer.byteLength(value) > MAX_SOCKET_PATH) {
      ctx.addIssue({ code: 'custom', message: `must be a socket path of 1 to ${MAX_SOCKET_PATH} bytes, got ${JSON.stringify(value)}` });
      return z.NEVER;
    }
    return value;
  }),
  name: z.unknown().transform((value, ctx) => {
    if (typeof value !== 'string' || !NAME.test(value) || value === CONTROL_FD_NAME) {
      ctx.addIssue({
        code: 'custom',
        message: `must be 1 to 32 of A-Z a-z 0-9 _ . - (not "${CONTROL_FD_NAME}"), got ${JSON.stringify(value)}`,
      });
      return z.NEVER;
    }
    return value;
  }),
  aperture: size(MIN_APERTURE_SIZE, MAX_APERTURE_SIZE, true),
  quota: size(0, MAX_APERTURE_SIZE, false),
  weight: z.unknown().transform((value, ctx) => {
    const n = numberish(value);
    if (n === undefined || !(n >= 0.01 && n <= 1000)) {
      ctx.addIssue({ code: 'custom', message: `must be a number from 0.01 to 1000, got ${JSON.stringify(value)}` });
      return z.NEVER;
    }
    return n;
  }),
  'max-queues': int(1, 1024),
  'max-kernels': int(1, 16 * DEFAULT_MAX_KERNELS),
  'max-inflight': int(1, 4096),
  'max-contexts': int(1, 16 * DEFAULT_MAX_CONTEXTS),
  'max-buffers': int(1, 64 * DEFAULT_MAX_BUFFERS),
  'kernel-cache': int(0, 16 * DEFAULT_KERNEL_CACHE_ENTRIES),
} as const;

export type VgpuSettingKey = keyof typeof VGPU_SETTINGS;
const KEYS = Object.keys(VGPU_SETTINGS) as VgpuSettingKey[];

const vgpuSchema = z.object(
  Object.fromEntries(KEYS.map((k) => [k, VGPU_SETTINGS[k].optional()])) as { [K in VgpuSettingKey]: z.ZodOptional<(typeof VGPU_SETTINGS)[K]> },
);

/** `where` and a setting: `file: vgpus[0].quota`, `--vgpu socket=/a,quota=1G: quota`. */
function fieldName(where: string, key: string): string {
  if (where === '') return key;
  return where.endsWith(']') ? `${where}.${key}` : `${where}: ${key}`;
}

/** The issues of a failed parse as `where…setting: message` lines. */
function problems(where: string, error: z.ZodError): string[] {
  return error.issues.map((issue) => {
    const at = issue.path.map((p) => (typeof p === 'number' ? `[${p}]` : `.${String(p)}`)).join('');
    const field = at === '' ? where : fieldName(where, at.replace(/^\./, ''));
    return field === '' ? issue.message : `${field}: ${issue.message}`;
  });
}

/** Keys that are no setting, as problems naming the allowed ones. */
function unknownKeys(where: string, entry: Record<string, unknown>): string[] {
  return Object.keys(entry)
    .filter((k) => !(KEYS as string[]).includes(k))
    .map((k) => `${where}: unknown vGPU setting "${k}" (allowed: ${KEYS.join(', ')})`);
}

/** One vGPU from its validated settings, over `defaults`. */
function toConfig(s: z.infer<typeof vgpuSchema>, name: string, defaults: Defaults): VgpuConfig {
  const config: VgpuConfig = { name: s.name ?? name, socket: s.socket ?? '', ...defaults };
  if (s.aperture !== undefined) config.apertureSize = s.aperture;
  if (s.quota !== undefined) config.quota = s.quota;
  if (s.weight !== undefined) config.weight = s.weight;
  if (s['max-queues'] !== undefined) config.maxQueues = s['max-queues'];
  if (s['max-kernels'] !== undefined) config.maxKernels = s['max-kernels'];
  if (s['max-inflight'] !== undefined) config.maxInFlight = s['max-inflight'];
  if (s['max-contexts'] !== undefined) config.maxContexts = s['max-contexts'];
  if (s['max-buffers'] !== undefined) config.maxBuffers = s['max-buffers'];
  if (s['kernel-cache'] !== undefined) config.kernelCache = s['kernel-cache'];
  return config;
}

/** Validate one vGPU's settings (from `--vgpu` or a config file entry); throws a ConfigError naming every bad one. */
function vgpuFrom(where: string, entry: Record<string, unknown>, defaultName: string, defaults: Defaults, socketRequired: boolean): VgpuConfig {
  const errors = unknownKeys(where, entry);
  const parsed = vgpuSchema.safeParse(entry);
  if (!parsed.success) errors.push(...problems(where, parsed.error));
  if (errors.length > 0) throw new ConfigError(errors);
  const config = toConfig(parsed.data!, defaultName, defaults);
  if (socketRequired && config.socket === '') {
    throw new ConfigError([`${fieldName(where, 'socket')}: required (a socket path)`]);
  }
  if (config.quota !== undefined && config.quota > config.apertureSize) {
    throw new ConfigError([`${fieldName(where, 'quota')}: must be at most the aperture (${sizeText(config.apertureSize)}), got ${sizeText(config.quota)}`]);
  }
  return config;
}

/** `socket=/run/vm1.sock,aperture=256M,quota=128M,weight=2` */
export function parseVgpuSpec(spec: string, defaultName: string, defaults: Defaults, where = `--vgpu ${spec}`): VgpuConfig {
  const entry: Record<string, unknown> = {};
  const errors: string[] = [];
  for (const part of spec
    .split(',')
    .map((p) => p.trim())
    .filter(Boolean)) {
    const eq = part.indexOf('=');
    if (eq <= 0) errors.push(`${where}: expected key=value, got "${part}"`);
    else entry[part.slice(0, eq)] = part.slice(eq + 1);
  }
  if (errors.length > 0) throw new ConfigError(errors);
  return vgpuFrom(where, entry, defaultName, defaults, true);
}

/**
 * `{ "vgpus": [ { "name": "vm1", "socket": "...", "aperture": "256M", "weight": 2 } ] }`. An entry
 * may leave out its socket when systemd passes it (the fd named after the vGPU): `mdgpu serve`
 * refuses to start a vGPU that has neither.
 */
export function readConfig(file: string, defaults: Defaults): VgpuConfig[] {
  let parsed: unknown;
  try {
    parsed = JSON.parse(fs.readFileSync(file, 'utf8'));
  } catch (err) {
    throw new ConfigError([`${file}: ${(err as Error).message}`]);
  }
  return configFrom(file, parsed, defaults);
}

/** {@link readConfig} of an already parsed document. */
export function configFrom(file: string, parsed: unknown, defaults: Defaults): VgpuConfig[] {
  const top = z
    .object({ vgpus: z.array(z.record(z.string(), z.unknown())).max(256) })
    .strict()
    .safeParse(parsed);
  if (!top.success) {
    throw new ConfigError([`${file}: expected { "vgpus": [ { "name": …, "socket": …, … }, … ] } (at most 256): ${problems('', top.error).join('; ')}`]);
  }
  const errors: string[] = [];
  const out: VgpuConfig[] = [];
  top.data.vgpus.forEach((entry, i) => {
    try {
      out.push(vgpuFrom(`${file}: vgpus[${i}]`, entry, `vgpu${i}`, defaults, false));
    } catch (err) {
      if (!(err instanceof ConfigError)) throw err;
      errors.push(...err.problems);
    }
  });
  if (errors.length > 0) throw new ConfigError(errors);
  return out;
}

/** Two vGPUs may not share a name or a socket path. */
export function checkUnique(vgpus: VgpuConfig[]): void {
  const errors: string[] = [];
  const seen = (key: 'name' | 'socket') => {
    const first = new Map<string, number>();
    vgpus.forEach((v, i) => {
      const value = v[key];
      if (value === '') return;
      const j = first.get(value);
      if (j !== undefined) errors.push(`vGPU ${i + 1} (${v.name}): ${key}: ${value} is already used by vGPU ${j + 1} (${vgpus[j]!.name})`);
      else first.set(value, i);
    });
  };
  seen('name');
  seen('socket');
  if (errors.length > 0) throw new ConfigError(errors);
}

/** `--reset-budget N/SECONDS`: N strikes within the window cool a VM off for the window. */
export function parseResetBudget(spec: string): StrikePolicy {
  const m = /^(\d+)\/(\d+)$/.exec(spec.trim());
  if (m === null || Number(m[1]) > 1000 || Number(m[2]) < 1 || Number(m[2]) > 86_400) {
    throw new ConfigError([`--reset-budget: must be N/SECONDS with N from 0 to 1000 and SECONDS from 1 to 86400 (e.g. 3/60), got ${JSON.stringify(spec)}`]);
  }
  const windowMs = Number(m[2]) * 1000;
  return { strikes: Number(m[1]), windowMs, coolOffMs: windowMs };
}

/** The daemon-wide options of `mdgpu serve`, with their ranges (yargs checks only their types). */
export const SERVE_OPTION_RANGES = {
  'msix-vectors': int(1, MAX_MSIX_VECTORS),
  'time-slice': z.unknown().transform((value, ctx) => {
    const n = numberish(value);
    if (n === undefined || !(n >= 0.05 && n <= 1000)) {
      ctx.addIssue({ code: 'custom', message: `must be a number of ms from 0.05 to 1000, got ${JSON.stringify(value)}` });
      return z.NEVER;
    }
    return n;
  }),
  'batch-limit': int(1, 3_600_000),
  'kernel-build-limit': int(100, 600_000),
  'kernel-build-memory': size(64 * 2 ** 20, 64 * 2 ** 30, false),
  metrics: int(0, 65535),
  'socket-mode': z.unknown().transform((value, ctx) => {
    if (typeof value !== 'string' || !/^0?[0-7]{3}$/.test(value) || (Number.parseInt(value, 8) & 0o600) !== 0o600) {
      ctx.addIssue({ code: 'custom', message: `must be an octal mode from 0600 to 0777 that keeps the owner's rw (e.g. 0660), got ${JSON.stringify(value)}` });
      return z.NEVER;
    }
    return Number.parseInt(value, 8);
  }),
} as const;

export type ServeOptionKey = keyof typeof SERVE_OPTION_RANGES;

/** Validate the daemon-wide options that were given; throws a ConfigError naming each bad one. */
export function checkServeOptions(args: Partial<Record<ServeOptionKey, unknown>>): { [K in ServeOptionKey]?: z.infer<(typeof SERVE_OPTION_RANGES)[K]> } {
  const errors: string[] = [];
  const out: Record<string, unknown> = {};
  for (const key of Object.keys(SERVE_OPTION_RANGES) as ServeOptionKey[]) {
    if (args[key] === undefined) continue;
    const r = SERVE_OPTION_RANGES[key].safeParse(args[key]);
    if (r.success) out[key] = r.data;
    else errors.push(...problems(`--${key}`, r.error));
  }
  if (errors.length > 0) throw new ConfigError(errors);
  return out as { [K in ServeOptionKey]?: z.infer<(typeof SERVE_OPTION_RANGES)[K]> };
}

/** A group name (from /etc/group) or a numeric gid. */
export function resolveGroup(spec: string, groupFile = '/etc/group'): number {
  if (/^\d+$/.test(spec)) return Number(spec);
  let text = '';
  try {
    text = fs.readFileSync(groupFile, 'utf8');
  } catch {
    // Then no name resolves.
  }
  for (const line of text.split('\n')) {
    const [name, , gid] = line.split(':');
    if (name === spec && gid !== undefined && /^\d+$/.test(gid)) return Number(gid);
  }
  throw new ConfigError([`--socket-group: no group named ${JSON.stringify(spec)} in ${groupFile} (give a name or a numeric gid)`]);
}

/** `--aperture` and `--quota`: the defaults of every vGPU, checked like its own settings. */
export function checkVgpuDefaults(aperture: string, quota: string | undefined): { apertureSize: number; quota?: number } {
  const errors: string[] = [];
  const a = VGPU_SETTINGS.aperture.safeParse(aperture);
  if (!a.success) errors.push(...problems('--aperture', a.error));
  const q = quota !== undefined ? VGPU_SETTINGS.quota.safeParse(quota) : undefined;
  if (q !== undefined && !q.success) errors.push(...problems('--quota', q.error));
  if (errors.length > 0) throw new ConfigError(errors);
  return { apertureSize: a.data!, ...(q?.data !== undefined ? { quota: q.data } : {}) };
}

/** Run each step; if any refuses the configuration, throw one ConfigError with every problem. */
export function gatherProblems<T>(steps: (() => T)[]): T[] {
  const out: T[] = [];
  const errors: string[] = [];
  for (const step of steps) {
    try {
      out.push(step());
    } catch (err) {
      if (!(err instanceof ConfigError)) throw err;
      errors.push(...err.problems);
    }
  }
  if (errors.length > 0) throw new ConfigError(errors);
  return out;
}
