/** CPU priority of the daemon's helper processes (the compute worker, the kernel builder). */
import type { ChildProcess } from 'node:child_process';
import * as os from 'node:os';

/** Lower a child's CPU priority (best effort: a process may not be allowed to). */
export function lowerPriority(child: ChildProcess, nice: number): void {
  if (child.pid === undefined) return;
  try {
    os.setPriority(child.pid, Math.min(19, os.getPriority(process.pid) + nice));
  } catch {
    // Not permitted here: the child runs at the daemon's priority.
  }
}
