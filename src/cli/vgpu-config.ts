/** Parsing vGPU definitions from `--vgpu socket=…,aperture=…` and from a JSON config file. */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import type { StrikePolicy } from '../sched/strikes.js';
import type { VgpuConfig } from './daemon.js';
import { parseSize } from './sizes.js';

type Defaults = Omit<VgpuConfig, 'name' | 'socket'>;

/** Where `mdgpu serve` listens for `mdgpu status` unless told otherwise. */
export function defaultControlSocket(): string {
  const runtime = process.env.XDG_RUNTIME_DIR;
  if (runtime) return path.join(runtime, 'mdgpu.sock');
  return path.join(os.tmpdir(), `mdgpu-${process.getuid?.() ?? 'user'}.sock`);
}

function positiveInt(key: string, value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n <= 0) throw new Error(`${key} must be a positive integer: ${value}`);
  return n;
}

function applyField(config: VgpuConfig, key: string, value: string): void {
  switch (key) {
    case 'socket':
      config.socket = value;
      break;
    case 'name':
      if (!/^[A-Za-z0-9_.-]{1,32}$/.test(value)) throw new Error(`Bad vGPU name: ${value}`);
      config.name = value;
      break;
    case 'aperture':
      config.apertureSize = parseSize(value);
      break;
    case 'quota':
      config.quota = parseSize(value);
      break;
    case 'weight': {
      const w = Number(value);
      if (!(w > 0) || !Number.isFinite(w)) throw new Error(`weight must be positive: ${value}`);
      config.weight = w;
      break;
    }
    case 'max-queues':
      config.maxQueues = positiveInt(key, value);
      break;
    case 'max-kernels':
      config.maxKernels = positiveInt(key, value);
      break;
    case 'max-inflight':
      config.maxInFlight = positiveInt(key, value);
      break;
    case 'max-contexts':
      config.maxContexts = positiveInt(key, value);
      break;
    case 'max-buffers':
      config.maxBuffers = positiveInt(key, value);
      break;
    default:
      throw new Error(`Unknown vGPU setting: ${key}`);
  }
}

/** `socket=/run/vm1.sock,aperture=256M,quota=128M,weight=2` */
export function parseVgpuSpec(spec: string, defaultName: string, defaults: Defaults): VgpuConfig {
  const config: VgpuConfig = { name: defaultName, socket: '', ...defaults };
  for (const part of spec
    .split(',')
    .map((p) => p.trim())
    .filter(Boolean)) {
    const eq = part.indexOf('=');
    if (eq <= 0) throw new Error(`Expected key=value in --vgpu: ${part}`);
    applyField(config, part.slice(0, eq), part.slice(eq + 1));
  }
  if (config.socket === '') throw new Error(`--vgpu needs socket=PATH: ${spec}`);
  return config;
}

/** `{ "vgpus": [ { "socket": "...", "aperture": "256M", "weight": 2 } ] }` */
export function readConfig(file: string, defaults: Defaults): VgpuConfig[] {
  const parsed = JSON.parse(fs.readFileSync(file, 'utf8')) as { vgpus?: unknown };
  if (!Array.isArray(parsed.vgpus)) throw new Error(`${file}: expected { "vgpus": [ ... ] }`);
  return parsed.vgpus.map((entry, i) => {
    if (typeof entry !== 'object' || entry === null) throw new Error(`${file}: vgpus[${i}] is not an object`);
    const config: VgpuConfig = { name: `vgpu${i}`, socket: '', ...defaults };
    for (const [key, value] of Object.entries(entry as Record<string, unknown>)) applyField(config, key, String(value));
    if (config.socket === '') throw new Error(`${file}: vgpus[${i}] needs a socket`);
    return config;
  });
}

/** `--reset-budget N/SECONDS`: N strikes within the window cool a VM off for the window. */
export function parseResetBudget(spec: string): StrikePolicy {
  const m = /^(\d+)\/(\d+)$/.exec(spec.trim());
  if (m === null) throw new Error(`--reset-budget: expected N/SECONDS (e.g. 3/60), got ${spec}`);
  const windowMs = Number(m[2]) * 1000;
  if (windowMs <= 0) throw new Error(`--reset-budget: the window must be at least 1 s, got ${spec}`);
  return { strikes: Number(m[1]), windowMs, coolOffMs: windowMs };
}
