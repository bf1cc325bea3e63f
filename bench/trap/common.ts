/**
 * Shared by bench/trap/run.ts and bench/trap/profile.ts: the C parts, the servers under test,
 * CPU pinning and quantiles.
 */
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');
const TRAP_DIR = path.join(ROOT, 'bench/trap');
export const RESPONDER_BIN = path.join(TRAP_DIR, 'build/trap-responder');
export const CLIENT_BIN = path.join(TRAP_DIR, 'build/trap-client');
const MDGPU_BIN = path.join(ROOT, 'bin/mdgpu.js');

/** Build the C responder and client with the host's cc. */
export function buildTrapC(): void {
  execFileSync('make', ['-s', '-C', TRAP_DIR], { stdio: 'inherit' });
}

/** Wait until `file` exists (a server bound its socket), or the process died. */
export async function waitForSocket(file: string, child: ChildProcess, what: string, ms = 20_000): Promise<void> {
  const start = Date.now();
  while (!fs.existsSync(file)) {
    if (child.exitCode !== null || child.signalCode !== null) throw new Error(`${what} exited before listening (${child.exitCode ?? child.signalCode})`);
    if (Date.now() - start > ms) throw new Error(`${what} did not listen on ${file} within ${ms} ms`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** `mdgpu serve` for one vGPU, no compute device (the trapped register path does not use it). */
export function spawnMdgpu(socket: string, control: string, nodeArgs: string[] = []): ChildProcess {
  return spawn(process.execPath, [...nodeArgs, ...spawnMdgpuArgs(socket, control)], { stdio: ['ignore', 'inherit', 'inherit'] });
}

/** Node's arguments for {@link spawnMdgpu}. */
export function spawnMdgpuArgs(socket: string, control: string): string[] {
  return [MDGPU_BIN, 'serve', '--socket', socket, '--no-compute', '--aperture', '16M', '--control', control, '--log-level', 'quiet'];
}

export function spawnResponder(socket: string): ChildProcess {
  return spawn(RESPONDER_BIN, [socket], { stdio: ['ignore', 'ignore', 'inherit'] });
}

/** Set the CPU affinity of every thread of `pid` (taskset -a). */
export function pin(pid: number, cpus: string): void {
  execFileSync('taskset', ['-a', '-p', '-c', cpus, String(pid)], { stdio: 'ignore' });
}

export function stop(child: ChildProcess, signal: NodeJS.Signals = 'SIGINT'): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    const t = setTimeout(() => child.kill('SIGKILL'), 5000);
    child.once('exit', () => {
      clearTimeout(t);
      resolve();
    });
    child.kill(signal);
  });
}

export function quantile(sorted: Float64Array, q: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]!;
}
